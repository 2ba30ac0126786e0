/* config_helpers.c - see config_helpers.h. */
#include "config_helpers.h"

#include "log.h"
#include "test_helpers.h"

#include <criterion/criterion.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DATA TEST_DATA_DIR "/config/"

void clean_env(void) {
        for (const char *const *n = config_setting_names(); *n; n++)
                unsetenv(*n);
        log_clear_secrets();
}

void set_github(const char *file) {
        char path[512];
        size_t len;
        char *json;

        snprintf(path, sizeof(path), DATA "%s", file);
        json = test_slurp_str(path, &len);
        setenv("GITHUB_INTEGRATION_JSON", json, 1);
        free(json);
}

void destroy_env(void) {
        setenv("KAFKA_BROKERS", "env-broker:9092", 1);
        setenv("APP_NAME", "thopters", 1);
        setenv("FLY_DEPLOY_KEY", "fm2_test-secret-token-ABCDEF0123456789", 1);
}

void provision_env(void) {
        destroy_env();
        setenv("REGION", "ord", 1);
        setenv("THOPTER_IMAGE", "registry.fly.io/thopter:1", 1);
        set_github("github-ok.json");
        setenv("THOPTER_SSH_KEY", "/etc/thopter/id_ed25519", 1);
        setenv("THOPTER_SSH_KNOWN_HOSTS", "/etc/thopter/known_hosts", 1);
        setenv("METADATA_SERVICE_HOST",
               "1.redis.kv._metadata.thopters.internal", 1);
        setenv("HUB_STATUS_PORT", "8081", 1);
}

int load_argv(struct config *cfg, struct err *err, const char *const *args) {
        char *argv[32] = {"thopter-consumer"};
        int argc = 1;

        for (; args && args[argc - 1]; argc++) {
                cr_assert_lt(argc, 31);
                argv[argc] = (char *)args[argc - 1];
        }
        argv[argc] = NULL;
        memset(err, 0, sizeof(*err));
        int rc = config_load(cfg, argc, argv, err);
        cr_expect_null(strchr(err->msg, '\n'), "not one line: %s", err->msg);
        return rc;
}

/* The NULL-terminated const char * arguments of @p ap into @p args. */
#define COLLECT_ARGS(args, last)                                               \
        do {                                                                   \
                size_t n_ = 0;                                                 \
                va_list ap_;                                                   \
                va_start(ap_, last);                                           \
                do {                                                           \
                        cr_assert_lt(n_, 32);                                  \
                        (args)[n_] = va_arg(ap_, const char *);                \
                } while ((args)[n_++]);                                        \
                va_end(ap_);                                                   \
        } while (0)

int load(struct config *cfg, struct err *err, ...) {
        const char *args[32];

        COLLECT_ARGS(args, err);
        return load_argv(cfg, err, args);
}

void expect_refused(const char *what, const char *want, ...) {
        const char *args[32];
        struct config cfg;
        struct err err;

        COLLECT_ARGS(args, want);
        cr_expect_eq(load_argv(&cfg, &err, args), -1, "%s: accepted", what);
        cr_expect_str_eq(err.msg, want, "%s", what);
        cr_expect_eq(err.kind, ERR_PERMANENT, "%s", what);
        config_free(&cfg);
}
