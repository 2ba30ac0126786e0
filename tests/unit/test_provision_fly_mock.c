/* test_provision_fly_mock.c - provision_fly.c's capacity, volume and create
 * steps in process, against the fake fly API (tests/fakes/fake_fly.py).
 *
 * The configuration is config_load()'s, from the environment a provision
 * consumer needs; the provision context is built by hand (provision_int.h)
 * with a fixed key, so no key file is read. Tests assert on the calls that
 * reached the fake and on the machine and volume it ended with.
 */
#include "clock.h"
#include "fake_fly_proc.h"
#include "fly_client.h"
#include "provision_int.h"
#include "test_helpers.h"

#include <criterion/criterion.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct world {
        struct fake_fly ff;
        struct config cfg;
        struct fly_client *fly;
        struct fly_retry retry;
        struct provision_ctx ctx;
        struct provision_request req;
        struct job job;
        struct test_events seen;
        struct provision_run r;
        unsigned char key[32];
};

static struct world w;

static void set_env(const char *max_thopters, const char *fallback) {
        char path[512];
        size_t len;

        snprintf(path, sizeof(path), "%s/config/github-ok.json", TEST_DATA_DIR);
        char *json = test_slurp_str(path, &len);
        for (const char *const *n = config_setting_names(); *n; n++)
                unsetenv(*n);
        setenv("GITHUB_INTEGRATION_JSON", json, 1);
        free(json);
        setenv("KAFKA_BROKERS", "127.0.0.1:1", 1);
        setenv("APP_NAME", FAKE_FLY_APP, 1);
        setenv("FLY_DEPLOY_KEY", FAKE_FLY_TOKEN, 1);
        setenv("FLY_API_BASE", w.ff.base_url, 1);
        setenv("REGION", "ord", 1);
        setenv("THOPTER_IMAGE", "registry.fly.io/thopter:1", 1);
        setenv("THOPTER_SSH_KEY", "/nonexistent/id_ed25519", 1);
        setenv("THOPTER_SSH_KNOWN_HOSTS", "/nonexistent/known_hosts", 1);
        setenv("METADATA_SERVICE_HOST", "redis.internal", 1);
        setenv("HUB_STATUS_PORT", "8081", 1);
        setenv("MAX_THOPTERS", max_thopters, 1);
        setenv("THOPTER_CAPACITY_RECHECK_MAX", "1s", 1);
        if (fallback)
                setenv("THOPTER_FALLBACK_REGIONS", fallback, 1);
}

/* The world for one test: the fake with @p fake_config, MAX_THOPTERS
 * @p max_thopters, THOPTER_FALLBACK_REGIONS @p fallback (optional). */
static void
start(const char *fake_config, const char *max_thopters, const char *fallback) {
        struct err err = {0};
        char *argv[] = {"thopter-consumer", NULL};

        memset(&w, 0, sizeof(w));
        fake_fly_start(&w.ff, fake_config);
        set_env(max_thopters, fallback);
        assert_ok(config_load_role(&w.cfg, ROLE_PROVISION, 1, argv, &err),
                  &err);
        w.fly = fake_fly_client(&w.ff);
        w.retry = (struct fly_retry){2, 5, 20, NULL};
        w.ctx.deps = (struct provision_deps){&w.cfg, w.fly, &w.retry};
        w.ctx.destroy = (struct destroy_deps){w.fly, &w.retry};
        w.ctx.seed = 42;
        w.ctx.claims = provision_claims_new();
        cr_assert(w.ctx.claims);
        cr_assert_eq(pthread_mutex_init(&w.ctx.seed_lock, NULL), 0);
        memset(w.key, 7, sizeof(w.key));
        w.ctx.key_secret = w.key;
        w.ctx.key_secret_len = sizeof(w.key);
        w.ctx.authorized_key = "ssh-ed25519 AAAAtest consumer";

        test_load_provision(TEST_DATA_DIR "/provision/request-minimal.json",
                            &w.req);
        w.job.rec.topic = "thopter.provision";
        w.job.rec.kind = "provision";
        snprintf(w.job.request_id, sizeof(w.job.request_id), "%s",
                 w.req.request_id);
        w.job.ops = &test_recording_ops;
        w.job.ops_ctx = &w.seen;
        w.r.ctx = &w.ctx;
        w.r.cfg = &w.cfg;
        w.r.job = &w.job;
        w.r.req = &w.req;
        w.r.repo = &w.cfg.repos[0];
        assert_ok(host_keys_derive_host_key(w.key, sizeof(w.key),
                                            w.req.request_id, &w.r.host_key,
                                            &err),
                  &err);
}

static void stop(void) {
        host_keys_wipe(&w.r.host_key);
        provision_claims_free(w.ctx.claims);
        pthread_mutex_destroy(&w.ctx.seed_lock);
        request_provision_free(&w.req);
        fly_client_destroy(w.fly);
        config_free(&w.cfg);
        fake_fly_stop(&w.ff);
}

TestSuite(provision_fly_mock, .fini = stop, .timeout = 30);

static void seed_volume(const char *id, const char *region, const char *on) {
        char body[256];
        if (on)
                fake_fly_seed_machine(&w.ff, on, "thopter-owner", "stopped");
        snprintf(body, sizeof(body),
                 "{\"id\":\"%s\",\"name\":\"" PROVISION_VOLUME_NAME
                 "\",\"region\":\"%s\"%s%s%s}",
                 id, region, on ? ",\"attached_machine_id\":\"" : "",
                 on ? on : "", on ? "\"" : "");
        fake_fly_post(&w.ff, "/_fake/volumes", body);
}

/* The JSON body of the last call to @p route (cJSON_Delete() it). */
static cJSON *last_body(const char *route) {
        cJSON *calls = fake_fly_calls(&w.ff), *c, *found = NULL;
        cJSON_ArrayForEach(c, calls) {
                const char *r =
                    cJSON_GetStringValue(cJSON_GetObjectItem(c, "route"));
                if (r && strcmp(r, route) == 0)
                        found = cJSON_GetObjectItem(c, "body");
        }
        cr_assert(found, "no %s call", route);
        cJSON *copy = cJSON_Duplicate(found, 1);
        cJSON_Delete(calls);
        return copy;
}

static const char *mount_of(const cJSON *body) {
        const cJSON *m = cJSON_GetArrayItem(
            cJSON_GetObjectItem(cJSON_GetObjectItem(body, "config"), "mounts"),
            0);
        const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(m, "volume"));
        return v ? v : "";
}

Test(provision_fly_mock, below_max_thopters_does_not_wait) {
        struct err err = {0};

        start(NULL, "2", NULL);
        fake_fly_seed_machine(&w.ff, "0000000000000a", "thopter-one",
                              "started");
        fake_fly_seed_machine(&w.ff, "0000000000000b", "hub", "started");
        fake_fly_seed_machine(&w.ff, "0000000000000c", "thopter-stopped",
                              "stopped");
        assert_ok(provision_capacity(&w.r, &err), &err);
        fake_fly_expect_calls(&w.ff, "GET machines.list");
        cr_expect_str_eq(w.seen.list, "step:capacity");
        cr_expect_eq(atomic_load(&w.seen.holds), 0);
}

struct capacity_thread {
        pthread_t t;
        int rc;
        struct err err;
        atomic_int done;
};

static void *run_capacity(void *arg) {
        struct capacity_thread *ct = arg;
        ct->rc = provision_capacity(&w.r, &ct->err);
        atomic_store(&ct->done, 1);
        return NULL;
}

static int waiting(void *arg) {
        (void)arg;
        return test_events_count(&w.seen, "waiting_capacity") &&
               atomic_load(&w.seen.hold_on);
}

static int capacity_done(void *arg) {
        return atomic_load(&((struct capacity_thread *)arg)->done);
}

Test(provision_fly_mock, at_max_thopters_holds_intake_until_one_stops) {
        struct capacity_thread ct = {0};

        start(NULL, "2", NULL);
        fake_fly_seed_machine(&w.ff, "0000000000000a", "thopter-one",
                              "started");
        fake_fly_seed_machine(&w.ff, "0000000000000b", "thopter-two",
                              "started");
        cr_assert_eq(pthread_create(&ct.t, NULL, run_capacity, &ct), 0);
        cr_assert(test_wait_for(waiting, NULL, 5000),
                  "no waiting_capacity event and hold: %s", w.seen.list);
        cr_expect_eq(atomic_load(&ct.done), 0, "it did not wait");
        cr_expect(atomic_load(&w.job.interruptible), "the wait is not marked "
                                                     "interruptible");

        fake_fly_post(&w.ff, "/_fake/machines/0000000000000b/state",
                      "{\"state\":\"stopped\"}");
        cr_assert(test_wait_for(capacity_done, &ct, 10000),
                  "still waiting after a thopter stopped");
        pthread_join(ct.t, NULL);
        cr_expect_eq(ct.rc, 0, "%s", ct.err.msg);
        cr_expect_eq(atomic_load(&w.seen.hold_on), 0, "intake still held");
        cr_expect_eq(atomic_load(&w.seen.holds), 2);
        cr_expect_eq(atomic_load(&w.job.interruptible), 0);
        cr_expect_str_eq(w.seen.list,
                         "step:capacity,waiting_capacity:capacity");
        cJSON *calls = fake_fly_calls(&w.ff);
        cr_expect_geq(cJSON_GetArraySize(calls), 2, "one list per check");
        cJSON_Delete(calls);
}

Test(provision_fly_mock, capacity_wait_ends_when_cancelled) {
        struct capacity_thread ct = {0};

        start(NULL, "1", NULL);
        fake_fly_seed_machine(&w.ff, "0000000000000a", "thopter-one",
                              "started");
        cr_assert_eq(pthread_create(&ct.t, NULL, run_capacity, &ct), 0);
        cr_assert(test_wait_for(waiting, NULL, 5000), "no wait: %s",
                  w.seen.list);
        atomic_store(&w.job.cancel, 1);
        cr_assert(test_wait_for(capacity_done, &ct, 5000),
                  "the wait ignored its cancellation");
        pthread_join(ct.t, NULL);
        cr_expect_eq(ct.rc, -1);
        cr_expect_eq(ct.err.cause, ERR_CAUSE_CANCELLED);
        cr_expect_eq(atomic_load(&w.seen.hold_on), 0, "intake still held");
}

Test(provision_fly_mock, create_takes_the_free_volume_not_the_attached_one) {
        struct err err = {0};

        start(NULL, "5", NULL);
        seed_volume("vol_attached", "ord", "0000000000000e");
        seed_volume("vol_free", "ord", NULL);
        seed_volume("vol_elsewhere", "iad", NULL);
        assert_ok(provision_create(&w.r, &err), &err);
        fake_fly_expect_calls(&w.ff, "GET volumes.list,POST machines.create");
        cJSON *body = last_body("machines.create");
        cr_expect_str_eq(mount_of(body), "vol_free");
        cr_expect_str_eq(
            cJSON_GetStringValue(cJSON_GetObjectItem(body, "region")), "ord");
        cJSON_Delete(body);
        cr_expect(w.r.have_machine);
        cr_expect_str_eq(w.r.machine.region, "ord");
        cr_expect_str_eq(w.job.thopter_id, w.r.machine.id);
        cr_expect(strncmp(w.r.machine.name, "thopter-", 8) == 0, "%s",
                  w.r.machine.name);
        cr_expect_str_eq(w.seen.list, "step:volume,step:create");
}

/* MAX_CONCURRENT_PROVISIONS > 1: another provision in flight here picked
 * the free volume from the same list; this one makes its own. */
Test(provision_fly_mock, a_volume_another_provision_claimed_is_skipped) {
        struct err err = {0};

        start(NULL, "5", NULL);
        seed_volume("vol_free", "ord", NULL);
        cr_assert_eq(provision_claims_volume(w.ctx.claims, "vol_free",
                                             "another-request"),
                     1);
        assert_ok(provision_create(&w.r, &err), &err);
        fake_fly_expect_calls(&w.ff, "GET volumes.list,POST volumes.create,"
                                     "POST machines.create");
        cJSON *body = last_body("machines.create");
        cr_expect_str_neq(mount_of(body), "vol_free");
        cr_expect_str_neq(mount_of(body), "");
        cJSON_Delete(body);
}

/* A slot another provision in flight holds counts before fly lists its
 * machine: MAX_THOPTERS 1, none started, one slot taken: this one waits. */
Test(provision_fly_mock, a_slot_another_provision_holds_counts) {
        struct capacity_thread ct = {0};

        start(NULL, "1", NULL);
        int in_use = -1;
        cr_assert_eq(provision_claims_slot(w.ctx.claims, "another-request",
                                           NULL, 0, 1, &in_use),
                     1);
        cr_assert_eq(pthread_create(&ct.t, NULL, run_capacity, &ct), 0);
        cr_assert(test_wait_for(waiting, NULL, 5000),
                  "no waiting_capacity with the only slot taken: %s",
                  w.seen.list);
        /* The other provision's run ends: its slot is given back. */
        provision_claims_release(w.ctx.claims, "another-request");
        cr_assert(test_wait_for(capacity_done, &ct, 10000),
                  "still waiting after the slot was given back");
        pthread_join(ct.t, NULL);
        cr_expect_eq(ct.rc, 0, "%s", ct.err.msg);
        cr_expect_eq(provision_claims_count(w.ctx.claims), 1,
                     "this provision holds its slot");
}

Test(provision_fly_mock, create_makes_a_volume_when_none_is_free) {
        struct err err = {0};

        start(NULL, "5", NULL);
        seed_volume("vol_attached", "ord", "0000000000000e");
        assert_ok(provision_create(&w.r, &err), &err);
        fake_fly_expect_calls(&w.ff, "GET volumes.list,POST volumes.create,"
                                     "POST machines.create");
        cJSON *vol = last_body("volumes.create");
        cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(vol, "name")),
                         PROVISION_VOLUME_NAME);
        cr_expect_str_eq(
            cJSON_GetStringValue(cJSON_GetObjectItem(vol, "region")), "ord");
        cJSON_Delete(vol);
        cJSON *body = last_body("machines.create");
        cr_expect_str_neq(mount_of(body), "vol_attached");
        cr_expect_str_neq(mount_of(body), "");
        cJSON_Delete(body);
}

Test(provision_fly_mock, no_capacity_falls_back_to_the_next_region) {
        struct err err = {0};

        start("{\"capacity_error\":{\"ord\":{\"status\":412}}}", "5", "iad");
        seed_volume("vol_ord", "ord", NULL);
        seed_volume("vol_iad", "iad", NULL);
        assert_ok(provision_create(&w.r, &err), &err);
        /* The second create looks the request up first: the first may
         * have made a machine after all. */
        fake_fly_expect_calls(
            &w.ff, "GET volumes.list,POST machines.create,"
                   "GET volumes.list,GET machines.list,POST machines.create");
        cJSON *body = last_body("machines.create");
        cr_expect_str_eq(mount_of(body), "vol_iad");
        cJSON_Delete(body);
        cr_expect_str_eq(w.r.machine.region, "iad");
        cr_expect(strstr(w.seen.list, "retrying:create") != NULL, "%s",
                  w.seen.list);
}

Test(provision_fly_mock, no_capacity_anywhere_is_a_capacity_failure) {
        struct err err = {0};

        start("{\"capacity_error\":{\"*\":{\"status\":412}}}", "5", "iad");
        cr_assert_eq(provision_create(&w.r, &err), -1);
        cr_expect_eq(err.cls, ERRC_CAPACITY);
        cr_expect_str_eq(err.step, "create");
        cr_expect_eq(w.r.have_machine, 0);
}
