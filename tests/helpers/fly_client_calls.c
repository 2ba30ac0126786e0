/* fly_client_calls.c - tests only: makes every Machines API call of
 * fly_client.h once, with the arguments the consumer and the reaper use, so
 * that tests/fakes/test_fly_contract.py can check what the client sent (and
 * what the fake answered) against fly's published spec.
 *
 *   FLY_API_BASE=http://127.0.0.1:PORT FLY_DEPLOY_KEY=TOKEN APP_NAME=APP \
 *       fly_client_calls
 *
 * The calls, in order: volume create and list; machine create (name,
 * region, image, guest, env, metadata, a mount, two config.files entries),
 * list (plain; by metadata; with include_deleted), get, wait started,
 * metadata set, stop, wait stopped (with the instance id), delete; a second
 * machine deleted with force; a get and a delete of a machine that is gone
 * (404s). One line per call on stdout: "<what> ok" or "<what> error <code>
 * <message>"; exit 0 once every call was made, whatever they answered.
 */
#include "fly_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void report(const char *what, int rc, const struct err *err) {
        if (rc == 0)
                printf("%s ok\n", what);
        else
                printf("%s error %d %s\n", what, err->code, err->msg);
}

/* A machine as the provision flow creates it (provision_fly.c). */
static int create(struct fly_client *fly,
                  const char *name,
                  const char *volume_id,
                  struct fly_machine *m,
                  struct err *err) {
        static const char host_key[] = "-----BEGIN OPENSSH PRIVATE KEY-----\n"
                                       "not a real key\n"
                                       "-----END OPENSSH PRIVATE KEY-----\n";
        static const char auth_key[] = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA "
                                       "thopter-consumer\n";
        struct fly_kv env[] = {
            {"APP_NAME", "thopters"},
            {"METADATA_SERVICE_HOST", "1.redis.kv._metadata.thopters.internal"},
            {"HUB_STATUS_PORT", "8081"},
            {"REPOSITORY", "acme/widgets"}};
        struct fly_kv meta[] = {{"thopter_request_id", name},
                                {"thopter_role", "agent"}};
        struct fly_file files[] = {
            {"/etc/thopter/ssh/ssh_host_ed25519_key", host_key,
             sizeof(host_key) - 1, 0600},
            {"/etc/thopter/ssh/authorized_keys", auth_key, sizeof(auth_key) - 1,
             0644},
        };
        struct fly_create_spec spec = {
            .name = name,
            .region = "ord",
            .image = "registry.fly.io/thopters:thopter-test-ssh",
            .cpu_kind = "shared",
            .cpus = 1,
            .memory_mb = 256,
            .env = env,
            .n_env = sizeof(env) / sizeof(env[0]),
            .metadata = meta,
            .n_metadata = sizeof(meta) / sizeof(meta[0]),
            .volume_id = volume_id,
            .mount_path = volume_id ? "/data" : NULL,
            .files = files,
            .n_files = sizeof(files) / sizeof(files[0]),
        };
        return fly_machine_create(fly, &spec, m, err);
}

int main(void) {
        struct fly_client_opts o = {.base_url = getenv("FLY_API_BASE"),
                                    .app = getenv("APP_NAME"),
                                    .token = getenv("FLY_DEPLOY_KEY"),
                                    .timeout_ms = 70000};
        struct fly_machine m = {0}, m2 = {0}, got = {0}, *ms = NULL;
        struct fly_volume v = {0}, *vs = NULL;
        struct fly_list_opts by_meta = {.meta_key = "thopter_request_id",
                                        .meta_value = "thopter-1-contract"};
        struct fly_list_opts deleted = {.include_deleted = true};
        struct err err = {0};
        struct fly_client *fly;
        size_t n = 0;
        int rc;

        if (!o.base_url || !o.app || !o.token) {
                fprintf(stderr, "fly_client_calls: set FLY_API_BASE, "
                                "FLY_DEPLOY_KEY and APP_NAME\n");
                return 2;
        }
        fly = fly_client_new(&o, &err);
        if (!fly) {
                fprintf(stderr, "fly_client_calls: %s\n", err.msg);
                return 1;
        }
#define CALL(what, expr)                                                       \
        do {                                                                   \
                err_clear(&err);                                               \
                rc = (expr);                                                   \
                report(what, rc, &err);                                        \
        } while (0)
        CALL("volumes.create",
             fly_volume_create(fly, "thopter_data", 10, "ord", &v, &err));
        CALL("volumes.list", fly_volume_list(fly, &vs, &n, &err));
        free(vs);
        CALL("machines.create", create(fly, "thopter-1-contract",
                                       v.id[0] ? v.id : NULL, &m, &err));
        CALL("machines.list", fly_machine_list(fly, NULL, &ms, &n, &err));
        free(ms);
        CALL("machines.list metadata",
             fly_machine_list(fly, &by_meta, &ms, &n, &err));
        free(ms);
        CALL("machines.get", fly_machine_get(fly, m.id, &got, &err));
        CALL("machines.wait started",
             fly_machine_wait(fly, m.id, "started", NULL, 30, &err));
        CALL("machines.metadata",
             fly_machine_set_metadata(fly, m.id, "thopter_provisioned",
                                      "thopter-1-contract", &err));
        CALL("machines.stop", fly_machine_stop(fly, m.id, &err));
        CALL("machines.get stopping", fly_machine_get(fly, m.id, &got, &err));
        CALL("machines.wait stopped",
             fly_machine_wait(fly, m.id, "stopped", got.instance_id, 30, &err));
        CALL("machines.delete", fly_machine_delete(fly, m.id, false, &err));
        CALL("machines.create second",
             create(fly, "thopter-2-contract", NULL, &m2, &err));
        CALL("machines.delete force",
             fly_machine_delete(fly, m2.id, true, &err));
        CALL("machines.wait destroyed",
             fly_machine_wait(fly, m2.id, "destroyed", NULL, 30, &err));
        CALL("machines.list include_deleted",
             fly_machine_list(fly, &deleted, &ms, &n, &err));
        free(ms);
        CALL("machines.get gone",
             fly_machine_get(fly, "0123456789abcd", &got, &err));
        CALL("machines.delete gone",
             fly_machine_delete(fly, "0123456789abcd", true, &err));
#undef CALL
        fly_client_destroy(fly);
        return 0;
}
