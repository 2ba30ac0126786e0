/* test_destroy_mock.c - destroy.c's handler in process, its fly client
 * pointed at the fake fly API (tests/fakes/fake_fly.py, started per test).
 *
 * Each test seeds the fake, runs prepare() and run() of destroy_handler()
 * on a job whose ops record the events, and asserts on what reached the
 * fake (method, route, path, query, auth) and on the machine it left.
 */
#include "destroy.h"
#include "fake_fly_proc.h"
#include "fly_client.h"
#include "test_helpers.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

struct world {
        struct fake_fly ff;
        struct fly_client *fly;
        struct fly_retry retry;
        struct destroy_deps deps;
        struct job_handler h;
        struct job job;
        struct test_events ev;
        char value[256];
};

static struct world w;

static void setup(void) {
        memset(&w, 0, sizeof(w));
        fake_fly_start(&w.ff, NULL);
        w.fly = fake_fly_client(&w.ff);
        w.retry = (struct fly_retry){3, 5, 20, NULL};
        w.deps = (struct destroy_deps){w.fly, &w.retry};
        w.h = destroy_handler(&w.deps);
}

static void teardown(void) {
        fly_client_destroy(w.fly);
        fake_fly_stop(&w.ff);
}

TestSuite(destroy_mock, .init = setup, .fini = teardown, .timeout = 30);

/* prepare() and run() of one destroy request for machine @p id. */
static int destroy(const char *id, struct err *err) {
        snprintf(w.value, sizeof(w.value),
                 "{\"thopterId\":\"%s\",\"requestId\":\"destroy-t1\"}", id);
        memset(&w.job, 0, sizeof(w.job));
        w.job.rec.topic = "thopter.destroy";
        w.job.rec.kind = "destroy";
        w.job.rec.value = w.value;
        w.job.rec.value_len = strlen(w.value);
        w.job.ops = &test_recording_ops;
        w.job.ops_ctx = &w.ev;
        assert_ok(w.h.prepare(&w.job, w.h.opaque, err), err);
        cr_expect_str_eq(w.job.request_id, "destroy-t1");
        cr_expect_str_eq(w.job.exclusive_key, id);
        int rc = w.h.run(&w.job, w.h.opaque, err);
        w.h.release(&w.job, w.h.opaque);
        return rc;
}

static const char *machine_state(const char *id) {
        static char state[32];
        char path[128];
        snprintf(path, sizeof(path), "/_fake/machines/%s", id);
        cJSON *m = fake_fly_control(&w.ff, "GET", path, NULL);
        const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(m, "state"));
        snprintf(state, sizeof(state), "%s", s ? s : "");
        cJSON_Delete(m);
        return state;
}

Test(destroy_mock, started_thopter_is_stopped_then_deleted_with_force) {
        struct err err = {0};

        fake_fly_seed_machine(&w.ff, "0000000000000a", "thopter-abc",
                              "started");
        assert_ok(destroy("0000000000000a", &err), &err);
        fake_fly_expect_calls(&w.ff, "GET machines.get,POST machines.stop,"
                                     "DELETE machines.delete");

        cJSON *calls = fake_fly_calls(&w.ff);
        cJSON *c;
        cJSON_ArrayForEach(c, calls) {
                cr_expect_str_eq(
                    cJSON_GetStringValue(cJSON_GetObjectItem(c, "auth")),
                    "Bearer " FAKE_FLY_TOKEN);
                cr_expect_str_eq(
                    cJSON_GetStringValue(cJSON_GetObjectItem(c, "machine")),
                    "0000000000000a");
        }
        cJSON *del = cJSON_GetArrayItem(calls, 2);
        cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(del, "path")),
                         "/v1/apps/" FAKE_FLY_APP "/machines/0000000000000a");
        cJSON *force =
            cJSON_GetObjectItem(cJSON_GetObjectItem(del, "query"), "force");
        cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetArrayItem(force, 0)),
                         "true");
        cJSON_Delete(calls);

        const char *s = machine_state("0000000000000a");
        cr_expect(strcmp(s, "destroying") == 0 || strcmp(s, "destroyed") == 0,
                  "machine m1 is %s", s);
        cr_expect_str_eq(w.job.machine_name, "thopter-abc");
}

Test(destroy_mock, stopped_thopter_is_deleted_without_a_stop) {
        struct err err = {0};

        fake_fly_seed_machine(&w.ff, "0000000000000b", "thopter-stopped",
                              "stopped");
        assert_ok(destroy("0000000000000b", &err), &err);
        fake_fly_expect_calls(&w.ff, "GET machines.get,DELETE machines.delete");
}

Test(destroy_mock, gone_machine_is_done_after_the_lookup) {
        struct err err = {0};

        assert_ok(destroy("00000000000bad", &err), &err);
        fake_fly_expect_calls(&w.ff, "GET machines.get");
}

Test(destroy_mock, machine_not_named_thopter_is_refused_and_left_alone) {
        struct err err = {0};

        fake_fly_seed_machine(&w.ff, "000000000000b1", "hub", "started");
        cr_assert_eq(destroy("000000000000b1", &err), -1);
        cr_expect_eq(err.cls, ERRC_FORBIDDEN_TARGET);
        cr_expect_str_eq(err.step, "guard");
        fake_fly_expect_calls(&w.ff, "GET machines.get");
        cr_expect_str_eq(machine_state("000000000000b1"), "started");
}

Test(destroy_mock, transient_delete_failures_are_retried_with_events) {
        struct err err = {0};

        fake_fly_seed_machine(&w.ff, "0000000000000c", "thopter-flaky",
                              "stopped");
        fake_fly_post(&w.ff, "/_fake/faults",
                      "{\"route\":\"machines.delete\",\"status\":503,"
                      "\"count\":2}");
        assert_ok(destroy("0000000000000c", &err), &err);
        fake_fly_expect_calls(&w.ff,
                              "GET machines.get,DELETE machines.delete,"
                              "DELETE machines.delete,DELETE machines.delete");
        cr_expect(strstr(w.ev.list, "retrying") != NULL, "events: %s",
                  w.ev.list);
        cr_expect_eq(w.job.attempt, 3);
}

Test(destroy_mock, rejected_delete_fails_permanently_at_step_delete) {
        struct err err = {0};

        fake_fly_seed_machine(&w.ff, "0000000000000d", "thopter-rejected",
                              "stopped");
        fake_fly_post(&w.ff, "/_fake/faults",
                      "{\"route\":\"machines.delete\",\"status\":422,"
                      "\"count\":-1}");
        cr_assert_eq(destroy("0000000000000d", &err), -1);
        cr_expect_eq(err.cls, ERRC_FLY_REJECTED);
        cr_expect_str_eq(err.step, "delete");
        cr_expect_eq(err.code, 422);
        fake_fly_expect_calls(&w.ff, "GET machines.get,DELETE machines.delete");
        cr_expect_str_eq(machine_state("0000000000000d"), "stopped");
}
