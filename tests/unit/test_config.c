/* test_config.c - config.c: settings from a controlled environment and
 * argv. Criterion runs each test in its own process, so setenv() here
 * touches no other test; the suite's init clears every setting first.
 * GITHUB_INTEGRATION_JSON shapes are files in tests/data/config. */
#include "config.h"
#include "log.h"
#include "test_helpers.h"

#include <criterion/criterion.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DATA TEST_DATA_DIR "/config/"

static void clean_env(void) {
        for (const char *const *n = config_setting_names(); *n; n++)
                unsetenv(*n);
        log_clear_secrets();
}

TestSuite(config, .init = clean_env);

static void set_github(const char *file) {
        char path[512];
        size_t len;
        char *json;

        snprintf(path, sizeof(path), DATA "%s", file);
        json = test_slurp_str(path, &len);
        setenv("GITHUB_INTEGRATION_JSON", json, 1);
        free(json);
}

/* What the destroy role needs. */
static void destroy_env(void) {
        setenv("KAFKA_BROKERS", "env-broker:9092", 1);
        setenv("APP_NAME", "thopters", 1);
        setenv("FLY_DEPLOY_KEY", "fm2_test-secret-token-ABCDEF0123456789", 1);
}

/* What the provision role needs. */
static void provision_env(void) {
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

/* config_load() with argv = {"thopter-consumer", args..., NULL}. */
static int
load_argv(struct config *cfg, struct err *err, const char *const *args) {
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

/* config_load() with the arguments after @p err (NULL-terminated). */
static int load(struct config *cfg, struct err *err, ...) {
        const char *args[32];

        COLLECT_ARGS(args, err);
        return load_argv(cfg, err, args);
}

/* Loads with the arguments after @p want (NULL-terminated), expecting the
 * one-line message @p want. */
static void expect_refused(const char *what, const char *want, ...) {
        const char *args[32];
        struct config cfg;
        struct err err;

        COLLECT_ARGS(args, want);
        cr_expect_eq(load_argv(&cfg, &err, args), -1, "%s: accepted", what);
        cr_expect_str_eq(err.msg, want, "%s", what);
        cr_expect_eq(err.kind, ERR_PERMANENT, "%s", what);
        config_free(&cfg);
}

/* ---- required settings ----------------------------------------------------
 */

struct required_case {
        const char *role;
        const char *unset;
        const char *want;
};

Test(config, each_required_setting_is_named_when_missing) {
        static const struct required_case cases[] = {
            {"destroy", "KAFKA_BROKERS",
             "KAFKA_BROKERS: required but not set (environment or "
             "--kafka-brokers)"},
            {"destroy", "APP_NAME",
             "APP_NAME: required but not set (environment or --app-name)"},
            {"destroy", "FLY_DEPLOY_KEY",
             "FLY_DEPLOY_KEY: required but not set (environment, or "
             "FLY_DEPLOY_KEY_FILE)"},
            {"provision", "KAFKA_BROKERS",
             "KAFKA_BROKERS: required but not set (environment or "
             "--kafka-brokers)"},
            {"provision", "REGION",
             "REGION: required for the provision role but not set "
             "(environment or --region)"},
            {"provision", "THOPTER_IMAGE",
             "THOPTER_IMAGE: required for the provision role but not set "
             "(environment or --thopter-image)"},
            {"provision", "GITHUB_INTEGRATION_JSON",
             "GITHUB_INTEGRATION_JSON: required for the provision role but "
             "not set (environment, or GITHUB_INTEGRATION_JSON_FILE)"},
            {"provision", "THOPTER_SSH_KEY",
             "THOPTER_SSH_KEY: required for the provision role but not set "
             "(environment or --thopter-ssh-key)"},
            {"provision", "THOPTER_SSH_KNOWN_HOSTS",
             "THOPTER_SSH_KNOWN_HOSTS: required for the provision role (or "
             "THOPTER_SSH_INSECURE=1 for development)"},
            /* Without them each thopter's observer exits (one line names
             * both, and the way out). */
            {"provision", "METADATA_SERVICE_HOST",
             "METADATA_SERVICE_HOST and HUB_STATUS_PORT: both required for "
             "the provision role, or each thopter's observer exits and the "
             "hub sees nothing of it (set THOPTER_OBSERVER=0 to run thopters "
             "without it)"},
            {"provision", "HUB_STATUS_PORT",
             "METADATA_SERVICE_HOST and HUB_STATUS_PORT: both required for "
             "the provision role, or each thopter's observer exits and the "
             "hub sees nothing of it (set THOPTER_OBSERVER=0 to run thopters "
             "without it)"},
            /* Both roles (the default) need what provision needs. */
            {"all", "REGION",
             "REGION: required for the provision role but not set "
             "(environment or --region)"},
            {"all", "APP_NAME",
             "APP_NAME: required but not set (environment or --app-name)"},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const struct required_case *c = &cases[i];

                /* Unset, then set but empty: the same. */
                for (int empty = 0; empty <= 1; empty++) {
                        clean_env();
                        provision_env();
                        if (empty)
                                setenv(c->unset, "", 1);
                        else
                                unsetenv(c->unset);
                        expect_refused(c->unset, c->want, "--role", c->role,
                                       NULL);
                }
        }
}

Test(config, destroy_role_needs_no_provision_setting) {
        struct config cfg;
        struct err err;

        destroy_env();
        assert_ok(load(&cfg, &err, "--role", "destroy", NULL), &err);
        cr_expect_eq(cfg.role, ROLE_DESTROY);
        cr_expect_null(cfg.region);
        cr_expect_null(cfg.ssh_key);
        cr_expect_eq(cfg.n_repos, 0);
        config_free(&cfg);
}

Test(config, provision_role_loads_with_its_settings) {
        static const char *const roles[] = {"provision", "all"};

        for (size_t i = 0; i < 2; i++) {
                struct config cfg;
                struct err err;

                clean_env();
                provision_env();
                assert_ok(load(&cfg, &err, "--role", roles[i], NULL), &err);
                cr_expect_str_eq(cfg.region, "ord");
                cr_expect_eq(cfg.n_repos, 2);
                config_free(&cfg);
        }
}

Test(config, observer_off_needs_no_hub_address) {
        struct config cfg;
        struct err err;

        provision_env();
        unsetenv("METADATA_SERVICE_HOST");
        unsetenv("HUB_STATUS_PORT");
        setenv("THOPTER_OBSERVER", "0", 1);
        assert_ok(load(&cfg, &err, "--role", "provision", NULL), &err);
        cr_expect_eq(cfg.observer, 0);
        cr_expect_null(cfg.metadata_service_host);
        config_free(&cfg);
        /* The destroy role never needs them. */
        clean_env();
        destroy_env();
        assert_ok(load(&cfg, &err, "--role", "destroy", NULL), &err);
        cr_expect_eq(cfg.observer, 1);
        config_free(&cfg);
}

Test(config, ssh_port_22_starts_with_a_warning_that_says_why) {
        struct config cfg;
        struct err err;
        const char *w;

        provision_env();
        assert_ok(load(&cfg, &err, "--role", "provision", NULL), &err);
        cr_expect_eq(cfg.ssh_port, 2222);
        cr_expect_null(config_ssh_port_warning(&cfg));
        config_free(&cfg);

        setenv("THOPTER_SSH_PORT", "22", 1);
        assert_ok(load(&cfg, &err, "--role", "provision", NULL), &err);
        w = config_ssh_port_warning(&cfg);
        cr_assert_not_null(w);
        cr_expect(strstr(w, "THOPTER_SSH_PORT=22") == w, "%s", w);
        cr_expect_not_null(strstr(w, "hallpass"), "%s", w);
        cr_expect_not_null(strstr(w, "2222"), "%s", w);
        config_free(&cfg);

        setenv("THOPTER_SSH_PORT", "2022", 1);
        assert_ok(load(&cfg, &err, "--role", "provision", NULL), &err);
        cr_expect_null(config_ssh_port_warning(&cfg));
        config_free(&cfg);
}

struct insecure_case {
        const char *value;
        int ok;
        int insecure;
};

Test(config, ssh_insecure_stands_in_for_known_hosts) {
        static const struct insecure_case cases[] = {
            {"1", 1, 1},
            {"true", 1, 1},
            {"0", 0, 0},
            {"false", 0, 0},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct config cfg;
                struct err err;
                int rc;

                clean_env();
                provision_env();
                unsetenv("THOPTER_SSH_KNOWN_HOSTS");
                setenv("THOPTER_SSH_INSECURE", cases[i].value, 1);
                rc = load(&cfg, &err, "--role", "provision", NULL);
                cr_expect_eq(rc == 0, cases[i].ok, "%s: %s", cases[i].value,
                             err.msg);
                if (rc == 0)
                        cr_expect_eq(cfg.ssh_insecure, cases[i].insecure);
                else
                        cr_expect_eq(
                            strncmp(err.msg, "THOPTER_SSH_KNOWN_HOSTS: ", 25),
                            0, "%s", err.msg);
                config_free(&cfg);
        }
}

/* ---- flags ----------------------------------------------------------------
 */

struct flag_case {
        const char *args[6];
        const char *brokers;
};

Test(config, flags_override_the_environment) {
        static const struct flag_case cases[] = {
            {{NULL}, "env-broker:9092"},
            {{"--kafka-brokers=flag:1"}, "flag:1"},
            {{"--kafka-brokers", "flag:2"}, "flag:2"},
            {{"-b", "flag:3"}, "flag:3"},
            {{"--brokers", "flag:4"}, "flag:4"},
            {{"--brokers=flag:5"}, "flag:5"},
            {{"-b", "first:1", "--kafka-brokers", "last:2"}, "last:2"},
        };

        destroy_env();
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const char *args[8] = {"--role", "destroy"};
                struct config cfg;
                struct err err;

                for (size_t k = 0; cases[i].args[k]; k++)
                        args[2 + k] = cases[i].args[k];
                assert_ok(load_argv(&cfg, &err, args), &err);
                cr_expect_str_eq(cfg.kafka_brokers, cases[i].brokers,
                                 "case %zu", i);
                config_free(&cfg);
        }
}

Test(config, every_setting_is_also_a_flag) {
        struct config cfg;
        struct err err;

        destroy_env();
        setenv("MAX_THOPTERS", "7", 1);
        setenv("THOPTER_DLQ_TOPIC", "env.dlq", 1);
        assert_ok(load(&cfg, &err, "--role=destroy", "--max-thopters", "9",
                       "--thopter-dlq-topic=flag.dlq", "--app-name", "flagapp",
                       NULL),
                  &err);
        cr_expect_eq(cfg.max_thopters, 9);
        cr_expect_str_eq(cfg.dlq_topic, "flag.dlq");
        cr_expect_str_eq(cfg.app_name, "flagapp");
        config_free(&cfg);
}

Test(config, a_flag_without_its_value_is_refused) {
        destroy_env();
        expect_refused("--kafka-brokers", "--kafka-brokers: needs a value",
                       "--role", "destroy", "--kafka-brokers", NULL);
        expect_refused("-b", "-b: needs a value", "--role", "destroy", "-b",
                       NULL);
        expect_refused("-X", "-X: needs a value", "--role", "destroy", "-X",
                       NULL);
        expect_refused("--role", "--role: needs a value", "--role", NULL);
}

Test(config, unknown_options_and_arguments_are_refused) {
        destroy_env();
        expect_refused("unknown", "unknown option \"--nope\" (see --help)",
                       "--role", "destroy", "--nope", "x", NULL);
        expect_refused(
            "unknown with =", "unknown option \"--nope\" (see --help)",
            "--nope=1", NULL);
        expect_refused("positional",
                       "unexpected argument \"destroy\" (see --help)",
                       "destroy", NULL);
}

Test(config, help_and_version_skip_validation) {
        struct config cfg;
        struct err err;

        /* Nothing set at all: not an error when only help is asked for. */
        assert_ok(load(&cfg, &err, "--help", NULL), &err);
        cr_expect(cfg.show_help);
        config_free(&cfg);
        assert_ok(load(&cfg, &err, "-V", NULL), &err);
        cr_expect(cfg.show_version);
        config_free(&cfg);
}

Test(config, x_properties_are_repeatable_and_kept_in_order) {
        struct config cfg;
        struct err err;
        char path[] = "/tmp/test_config_props_XXXXXX";
        int fd = mkstemp(path);
        const char *file = "# SASL\nsasl.password=hunter2-very-secret\n";

        cr_assert_geq(fd, 0);
        cr_assert_eq(write(fd, file, strlen(file)), (ssize_t)strlen(file));
        close(fd);
        destroy_env();
        setenv("THOPTER_KAFKA_CONFIG_FILE", path, 1);
        /* The file's properties first, then -X in the order given. */
        assert_ok(load(&cfg, &err, "--role", "destroy", "-X",
                       "security.protocol=SASL_SSL", "-X", "client.id=a=b",
                       NULL),
                  &err);
        unlink(path);
        cr_assert_eq(cfg.n_kafka_props, 3);
        cr_expect_str_eq(cfg.kafka_props[0],
                         "sasl.password=hunter2-very-secret");
        cr_expect_str_eq(cfg.kafka_props[1], "security.protocol=SASL_SSL");
        cr_expect_str_eq(cfg.kafka_props[2], "client.id=a=b");
        config_free(&cfg);

        /* A password read from the file is a secret from then on. */
        char line[128] = "SASL: auth failed for hunter2-very-secret";
        log_redact(line, sizeof(line));
        cr_expect_str_eq(line, "SASL: auth failed for [REDACTED]");
}

Test(config, secret_x_property_is_refused) {
        destroy_env();
        expect_refused("-X sasl.password",
                       "-X sasl.password: a secret is never taken on the "
                       "command line, where every user of the host can read "
                       "it: put it in the librdkafka properties file named by "
                       "THOPTER_KAFKA_CONFIG_FILE",
                       "--role", "destroy", "-X", "sasl.password=hunter2",
                       NULL);
}

Test(config, x_property_needs_key_equals_value) {
        destroy_env();
        expect_refused("no =", "-X: expected key=value (got \"acks\")", "-X",
                       "acks", NULL);
        expect_refused("no key", "-X: expected key=value (got \"=1\")", "-X",
                       "=1", NULL);
}

/* ---- values ---------------------------------------------------------------
 */

struct int_case {
        const char *env; /* set in the environment, or NULL: as a flag */
        const char *flag;
        const char *value;
        const char *want; /* NULL: accepted */
};

Test(config, integers_out_of_range_are_refused_with_the_name) {
        static const struct int_case cases[] = {
            {"MAX_CONCURRENT_DESTROYS", NULL, "lots",
             "MAX_CONCURRENT_DESTROYS: must be an integer from 1 to 64 (got "
             "\"lots\" from the environment)"},
            {"MAX_CONCURRENT_DESTROYS", NULL, "0",
             "MAX_CONCURRENT_DESTROYS: must be an integer from 1 to 64 (got "
             "\"0\" from the environment)"},
            {"MAX_CONCURRENT_DESTROYS", NULL, "65",
             "MAX_CONCURRENT_DESTROYS: must be an integer from 1 to 64 (got "
             "\"65\" from the environment)"},
            {"MAX_CONCURRENT_DESTROYS", NULL, "5x",
             "MAX_CONCURRENT_DESTROYS: must be an integer from 1 to 64 (got "
             "\"5x\" from the environment)"},
            {"MAX_CONCURRENT_DESTROYS", NULL, "99999999999999999999",
             "MAX_CONCURRENT_DESTROYS: must be an integer from 1 to 64 (got "
             "\"99999999999999999999\" from the environment)"},
            {"MAX_CONCURRENT_DESTROYS", NULL, "1", NULL},
            {"MAX_CONCURRENT_DESTROYS", NULL, "64", NULL},
            {NULL, "--max-concurrent-destroys", "0",
             "MAX_CONCURRENT_DESTROYS: must be an integer from 1 to 64 (got "
             "\"0\" from the command line)"},
            {"MAX_CONCURRENT_PROVISIONS", NULL, "17",
             "MAX_CONCURRENT_PROVISIONS: must be an integer from 1 to 16 (got "
             "\"17\" from the environment)"},
            {"MAX_CONCURRENT_PROVISIONS", NULL, "3", NULL},
            {NULL, "--max-concurrent-provisions", "0",
             "MAX_CONCURRENT_PROVISIONS: must be an integer from 1 to 16 (got "
             "\"0\" from the command line)"},
            {"THOPTER_GC_COPY_CONCURRENCY", NULL, "0",
             "THOPTER_GC_COPY_CONCURRENCY: must be an integer from 1 to 16 "
             "(got \"0\" from the environment)"},
            {"THOPTER_SSH_PORT", NULL, "70000",
             "THOPTER_SSH_PORT: must be an integer from 1 to 65535 (got "
             "\"70000\" from the environment)"},
            {"THOPTER_BREAKER_PROBE_MS", NULL, "9",
             "THOPTER_BREAKER_PROBE_MS: must be a duration from 10 ms to "
             "600000 ms: a number of milliseconds, or with units such as "
             "500ms, 90s, 2m, 1h30m (got \"9\" from the environment)"},
            {"THOPTER_BREAKER_PROBE_MS", NULL, "10", NULL},
            {NULL, "--thopter-fly-retries", "-1",
             "THOPTER_FLY_RETRIES: must be an integer from 1 to 100 (got "
             "\"-1\" from the command line)"},
            {"THOPTER_KEEP_FAILED", NULL, "yes",
             "THOPTER_KEEP_FAILED: must be 0 or 1 (got \"yes\" from the "
             "environment)"},
            {"THOPTER_KEEP_FAILED", NULL, "2",
             "THOPTER_KEEP_FAILED: must be 0 or 1 (got \"2\" from the "
             "environment)"},
            {"THOPTER_KEEP_FAILED", NULL, "true", NULL},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const struct int_case *c = &cases[i];
                struct config cfg;
                struct err err;
                int rc;

                clean_env();
                destroy_env();
                if (c->env)
                        setenv(c->env, c->value, 1);
                rc = c->env ? load(&cfg, &err, "--role", "destroy", NULL)
                            : load(&cfg, &err, "--role", "destroy", c->flag,
                                   c->value, NULL);
                if (c->want) {
                        cr_expect_eq(rc, -1, "case %zu: accepted", i);
                        cr_expect_str_eq(err.msg, c->want, "case %zu", i);
                } else {
                        cr_expect_eq(rc, 0, "case %zu: %s", i, err.msg);
                }
                config_free(&cfg);
        }
}

struct validate_case {
        const char *env, *value;
        const char *want; /* NULL: accepted */
};

Test(config, other_values_are_checked_with_the_name) {
        static const struct validate_case cases[] = {
            {"THOPTER_LOG_LEVEL", "verbose",
             "THOPTER_LOG_LEVEL: must be debug, info, warn or error (got "
             "\"verbose\")"},
            {"THOPTER_LOG_LEVEL", "debug", NULL},
            {"THOPTER_METRICS_ADDR", "off", NULL},
            {"THOPTER_METRICS_ADDR", "127.0.0.1:0", NULL},
            {"THOPTER_METRICS_ADDR", "[::1]:9464", NULL},
            {"THOPTER_METRICS_ADDR", "localhost:9464",
             "THOPTER_METRICS_ADDR: \"localhost\" is not an IPv4 address "
             "(write IPv6 as [ADDR]:PORT)"},
            {"THOPTER_METRICS_ADDR", "127.0.0.1",
             "THOPTER_METRICS_ADDR: expected IPV4:PORT or [IPV6]:PORT, or off "
             "(got \"127.0.0.1\")"},
            {"THOPTER_METRICS_ADDR", "127.0.0.1:65536",
             "THOPTER_METRICS_ADDR: port must be 0 to 65535 "
             "(got \"127.0.0.1:65536\")"},
            {"THOPTER_METRICS_ADDR", "::1:9464",
             "THOPTER_METRICS_ADDR: \"::1\" is not an IPv4 address "
             "(write IPv6 as [ADDR]:PORT)"},
            {"FLY_API_BASE", "ftp://api.machines.dev",
             "FLY_API_BASE: must start with http:// or https:// (got "
             "\"ftp://api.machines.dev\")"},
            {"FLY_API_BASE", "http://127.0.0.1:4280", NULL},
            {"THOPTER_RETRY_MAX_MS", "100",
             "THOPTER_RETRY_MAX_MS: must not be below THOPTER_RETRY_BASE_MS"},
            /* What reaches remote shells as names (provision role). */
            {"THOPTER_REMOTE_USER", "thop ter",
             "THOPTER_REMOTE_USER: must be a user name of [A-Za-z0-9._-] (got "
             "\"thop ter\")"},
            {"THOPTER_REMOTE_USER", "$(reboot)",
             "THOPTER_REMOTE_USER: must be a user name of [A-Za-z0-9._-] (got "
             "\"$(reboot)\")"},
            {"THOPTER_TMUX_SESSION", "a.b",
             "THOPTER_TMUX_SESSION: must be a name of [A-Za-z0-9_-] (got "
             "\"a.b\")"},
            {"THOPTER_TMUX_SESSION", "s:1",
             "THOPTER_TMUX_SESSION: must be a name of [A-Za-z0-9_-] (got "
             "\"s:1\")"},
            {"THOPTER_REMOTE_HOME", "data/thopter",
             "THOPTER_REMOTE_HOME: must be an absolute path"},
            {"THOPTER_REMOTE_LOG", "log",
             "THOPTER_REMOTE_LOG: must be an absolute path"},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const struct validate_case *c = &cases[i];
                struct config cfg;
                struct err err;
                int rc;

                clean_env();
                provision_env();
                setenv(c->env, c->value, 1);
                rc = load(&cfg, &err, "--role", "provision", NULL);
                if (c->want) {
                        cr_expect_eq(rc, -1, "%s=%s accepted", c->env,
                                     c->value);
                        cr_expect_str_eq(err.msg, c->want, "%s", c->env);
                } else {
                        cr_expect_eq(rc, 0, "%s=%s: %s", c->env, c->value,
                                     err.msg);
                }
                config_free(&cfg);
        }
}

/* ---- GITHUB_INTEGRATION_JSON ----------------------------------------------
 */

#define NOT_AN_OBJECT                                                          \
        "GITHUB_INTEGRATION_JSON: must be a JSON object with a "               \
        "\"repositories\" object"
#define NEEDS_FIELDS                                                           \
        "GITHUB_INTEGRATION_JSON: repositories.owner/repo: needs string "      \
        "agentCoderPAT, userName and userEmail"

struct github_case {
        const char *file;
        const char *want;
};

Test(config, github_integration_shapes_are_checked_without_echo) {
        static const struct github_case cases[] = {
            {"github-bad-json.txt", NOT_AN_OBJECT},
            {"github-not-an-object.json", NOT_AN_OBJECT},
            {"github-no-repositories.json", NOT_AN_OBJECT},
            {"github-repositories-array.json", NOT_AN_OBJECT},
            {"github-missing-email.json", NEEDS_FIELDS},
            {"github-missing-pat.json", NEEDS_FIELDS},
            {"github-empty-pat.json", NEEDS_FIELDS},
            {"github-pat-not-a-string.json", NEEDS_FIELDS},
            {"github-repo-not-an-object.json", NEEDS_FIELDS},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                clean_env();
                provision_env();
                set_github(cases[i].file);
                expect_refused(cases[i].file, cases[i].want, "--role",
                               "provision", NULL);
        }
}

/* An entry that is an array: config.c used to walk its members and take
 * each string member's name (NULL in an array) to strstr(), dying on
 * SIGSEGV instead of naming the setting. */
Test(config, github_integration_entry_that_is_an_array_is_refused) {
        provision_env();
        set_github("github-repo-an-array.json");
        expect_refused("array entry", NEEDS_FIELDS, "--role", "provision",
                       NULL);
}

Test(config, repositories_are_looked_up_by_exact_name) {
        struct config cfg;
        struct err err;
        const struct repo_cred *c;

        provision_env();
        assert_ok(load(&cfg, &err, "--role", "provision", NULL), &err);
        c = config_repo(&cfg, "owner/repo");
        cr_assert_not_null(c);
        cr_expect_str_eq(c->repository, "owner/repo");
        cr_expect_str_eq(c->pat, "ghp_okpat0000000000000000000000000001");
        cr_expect_str_eq(c->user_name, "Thopter Bot");
        cr_expect_str_eq(c->user_email, "bot@example.com");
        c = config_repo(&cfg, "other/one");
        cr_assert_not_null(c);
        cr_expect_str_eq(c->user_name, "Other Bot");
        cr_expect_null(config_repo(&cfg, "Owner/Repo"));
        cr_expect_null(config_repo(&cfg, "owner/repo2"));
        cr_expect_null(config_repo(&cfg, "owner"));
        cr_expect_null(config_repo(&cfg, ""));
        config_free(&cfg);
}

Test(config, secrets_are_registered_as_they_are_read) {
        struct config cfg;
        struct err err;
        char line[512];

        provision_env();
        assert_ok(load(&cfg, &err, "--role", "provision", NULL), &err);
        snprintf(line, sizeof(line), "%s %s %s %s",
                 "fm2_test-secret-token-ABCDEF0123456789",
                 "ghp_okpat0000000000000000000000000001",
                 "ghp_issues000000000000000000000000002",
                 "ghp_okpat0000000000000000000000000003");
        log_redact(line, sizeof(line));
        cr_expect_str_eq(line, "[REDACTED] [REDACTED] [REDACTED] [REDACTED]");
        config_free(&cfg);
}

/* ---- roles and defaults ---------------------------------------------------
 */

struct role_case {
        const char *args[3];
        int ok;
        enum config_role role;
        const char *want;
};

Test(config, role_values) {
        static const struct role_case cases[] = {
            {{NULL}, 1, ROLE_ALL, NULL},
            {{"--role", "all"}, 1, ROLE_ALL, NULL},
            {{"--role", "provision"}, 1, ROLE_PROVISION, NULL},
            {{"--role", "destroy"}, 1, ROLE_DESTROY, NULL},
            {{"--role=destroy"}, 1, ROLE_DESTROY, NULL},
            {{"--role", "Destroy"},
             0,
             ROLE_ALL,
             "--role: must be provision, destroy or all (got \"Destroy\")"},
            {{"--role="},
             0,
             ROLE_ALL,
             "--role: must be provision, destroy or all (got \"\")"},
        };

        provision_env();
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const struct role_case *c = &cases[i];
                struct config cfg;
                struct err err;
                int rc = load_argv(&cfg, &err, c->args);

                cr_expect_eq(rc == 0, c->ok, "case %zu: %s", i, err.msg);
                if (c->ok)
                        cr_expect_eq(cfg.role, c->role, "case %zu", i);
                else
                        cr_expect_str_eq(err.msg, c->want, "case %zu", i);
                config_free(&cfg);
        }
        cr_expect_str_eq(config_role_name(ROLE_ALL), "all");
        cr_expect_str_eq(config_role_name(ROLE_PROVISION), "provision");
        cr_expect_str_eq(config_role_name(ROLE_DESTROY), "destroy");
}

Test(config, defaults) {
        struct config cfg;
        struct err err;

        destroy_env();
        assert_ok(load(&cfg, &err, "--role", "destroy", NULL), &err);
        cr_expect_str_eq(cfg.provision_topic, "thopter.provision");
        cr_expect_str_eq(cfg.destroy_topic, "thopter.destroy");
        cr_expect_str_eq(cfg.dlq_topic, "thopter.dlq");
        cr_expect_str_eq(cfg.events_topic, "thopter.events");
        cr_expect_str_eq(cfg.provision_group, "thopter-provisioner");
        cr_expect_str_eq(cfg.destroy_group, "thopter-destroyer");
        cr_expect_str_eq(cfg.fly_api_base, "https://api.machines.dev");
        cr_expect_eq(cfg.max_thopters, 10);
        cr_expect_eq(cfg.max_concurrent_destroys, 5);
        cr_expect_eq(cfg.max_concurrent_provisions, 1);
        cr_expect_eq(cfg.gc_copy_concurrency, 1);
        cr_expect_eq(cfg.fly_pacing, 1);
        cr_expect_eq(cfg.destroy_backlog, 0);
        cr_expect_str_eq(cfg.vm_size, "shared-cpu-1x");
        cr_expect_eq(cfg.volume_size_gb, 10);
        cr_expect_null(cfg.image);
        cr_expect_null(cfg.web_terminal_port);
        cr_expect_eq(cfg.ssh_insecure, 0);
        cr_expect_str_eq(cfg.ssh_host, "{id}.vm.{app}.internal");
        cr_expect_eq(cfg.ssh_port, 2222);
        cr_expect_eq(cfg.observer, 1);
        cr_expect_eq(cfg.golden_claude_required, 0);
        cr_expect_str_eq(cfg.ssh_user, "root");
        cr_expect_str_eq(cfg.remote_home, "/data/thopter");
        cr_expect_str_eq(cfg.remote_user, "thopter");
        cr_expect_str_eq(cfg.remote_log, "/thopter/log");
        cr_expect_str_eq(cfg.tmux_session, "thopter");
        cr_expect_str_eq(cfg.agent_command,
                         "claude --dangerously-skip-permissions \"read "
                         "./prompt.md for your instructions\"");
        cr_expect_str_eq(cfg.git_url, "https://github.com/{repository}.git");
        cr_expect_null(cfg.prompts_dir);
        cr_expect_eq(cfg.ready_timeout_s, 120);
        cr_expect_eq(cfg.keep_failed, 0);
        cr_expect_str_eq(cfg.metrics_addr, "127.0.0.1:9464");
        cr_expect_str_eq(cfg.log_level, "info");
        cr_expect_eq(cfg.drain_timeout_s, 30);
        cr_expect_eq(cfg.fly_timeout_s, 30);
        cr_expect_eq(cfg.fly_retries, 6);
        cr_expect_eq(cfg.retry_base_ms, 250);
        cr_expect_eq(cfg.retry_max_ms, 5000);
        cr_expect_eq(cfg.breaker_threshold, 3);
        cr_expect_eq(cfg.breaker_probe_ms, 3000);
        cr_expect_eq(cfg.capacity_recheck_max_s, 30);
        cr_expect_eq(cfg.ssh_timeout_s, 300);
        cr_expect_eq(cfg.n_kafka_props, 0);
        config_free(&cfg);
}

Test(config, setting_names_list_every_setting_once) {
        const char *const *names = config_setting_names();
        size_t n = 0;

        for (; names[n]; n++)
                for (size_t k = 0; k < n; k++)
                        cr_expect_str_neq(names[k], names[n]);
        cr_expect_eq(n, 67);
        cr_expect_str_eq(names[0], "KAFKA_BROKERS");
}

/* ---- durations, all missing at once, the prompts dir, --help (issue 22) --
 */

Test(config, durations_take_units_and_bare_numbers_keep_theirs) {
        static const struct {
                const char *env, *value;
                size_t off;
                int want;
        } cases[] = {
            {"THOPTER_DRAIN_TIMEOUT", "30s",
             offsetof(struct config, drain_timeout_s), 30},
            {"THOPTER_DRAIN_TIMEOUT", "2m",
             offsetof(struct config, drain_timeout_s), 120},
            {"THOPTER_DRAIN_TIMEOUT", "45",
             offsetof(struct config, drain_timeout_s), 45},
            {"THOPTER_READY_TIMEOUT", "1m30s",
             offsetof(struct config, ready_timeout_s), 90},
            {"THOPTER_SSH_TIMEOUT", "1h",
             offsetof(struct config, ssh_timeout_s), 3600},
            {"THOPTER_RETRY_BASE_MS", "1s",
             offsetof(struct config, retry_base_ms), 1000},
            {"THOPTER_RETRY_MAX_MS", "7000",
             offsetof(struct config, retry_max_ms), 7000},
            {"THOPTER_BREAKER_PROBE_MS", "500ms",
             offsetof(struct config, breaker_probe_ms), 500},
            {"THOPTER_CAPACITY_RECHECK_MAX", "2m",
             offsetof(struct config, capacity_recheck_max_s), 120},
            {"THOPTER_FLY_TIMEOUT", "10s",
             offsetof(struct config, fly_timeout_s), 10},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct config cfg;
                struct err err;

                clean_env();
                destroy_env();
                setenv(cases[i].env, cases[i].value, 1);
                assert_ok(load(&cfg, &err, "--role", "destroy", NULL), &err);
                cr_expect_eq(*(int *)((char *)&cfg + cases[i].off),
                             cases[i].want, "%s=%s", cases[i].env,
                             cases[i].value);
                config_free(&cfg);
        }
        destroy_env();
        expect_refused("not whole seconds",
                       "THOPTER_DRAIN_TIMEOUT: must be a duration from 1 s to "
                       "3600 s: a number of seconds, or with units such as "
                       "500ms, 90s, 2m, 1h30m (got \"1500ms\" from the "
                       "command line)",
                       "--role", "destroy", "--thopter-drain-timeout", "1500ms",
                       NULL);
        expect_refused("too long",
                       "THOPTER_DRAIN_TIMEOUT: must be a duration from 1 s to "
                       "3600 s: a number of seconds, or with units such as "
                       "500ms, 90s, 2m, 1h30m (got \"2h\" from the command "
                       "line)",
                       "--role", "destroy", "--thopter-drain-timeout", "2h",
                       NULL);
}

Test(config, every_missing_setting_is_reported_at_once) {
        static const char *const want[] = {
            "KAFKA_BROKERS: required but not set (environment or "
            "--kafka-brokers)",
            "APP_NAME: required but not set (environment or --app-name)",
            "REGION: required for the provision role but not set "
            "(environment or --region)",
            "FLY_DEPLOY_KEY: required but not set (environment, or "
            "FLY_DEPLOY_KEY_FILE)",
            "THOPTER_IMAGE: required for the provision role but not set "
            "(environment or --thopter-image)",
            "GITHUB_INTEGRATION_JSON: required for the provision role but "
            "not set (environment, or GITHUB_INTEGRATION_JSON_FILE)",
            "THOPTER_SSH_KEY: required for the provision role but not set "
            "(environment or --thopter-ssh-key)",
            "THOPTER_SSH_KNOWN_HOSTS: required for the provision role (or "
            "THOPTER_SSH_INSECURE=1 for development)",
            "METADATA_SERVICE_HOST and HUB_STATUS_PORT: both required for the "
            "provision role, or each thopter's observer exits and the hub "
            "sees nothing of it (set THOPTER_OBSERVER=0 to run thopters "
            "without it)",
        };
        struct config cfg;
        struct err err;

        cr_assert_eq(load(&cfg, &err, "--role", "provision", NULL), -1);
        cr_assert_eq(cfg.n_missing, (int)(sizeof(want) / sizeof(want[0])));
        for (int i = 0; i < cfg.n_missing; i++)
                cr_expect_str_eq(cfg.missing[i], want[i]);
        cr_expect_str_eq(err.msg, want[0]);
        config_free(&cfg);

        /* The destroy role: its three only. */
        cr_assert_eq(load(&cfg, &err, "--role", "destroy", NULL), -1);
        cr_expect_eq(cfg.n_missing, 3);
        config_free(&cfg);
}

Test(config, prompts_dir_is_checked_at_start) {
        struct config cfg;
        struct err err;

        provision_env();
        setenv("THOPTER_PROMPTS_DIR", "/nonexistent", 1);
        cr_assert_eq(load(&cfg, &err, "--role", "provision", NULL), -1);
        cr_expect(strstr(err.msg, "THOPTER_PROMPTS_DIR: cannot read "
                                  "/nonexistent: ") == err.msg,
                  "%s", err.msg);
        config_free(&cfg);
        setenv("THOPTER_PROMPTS_DIR", TEST_DATA_DIR "/config", 1);
        cr_assert_eq(load(&cfg, &err, "--role", "provision", NULL), -1);
        cr_expect(strstr(err.msg, "has no readable default.md"), "%s", err.msg);
        config_free(&cfg);
        setenv("THOPTER_PROMPTS_DIR", THOPTER_SOURCE_DATA_DIR "/prompts", 1);
        assert_ok(load(&cfg, &err, "--role", "provision", NULL), &err);
        config_free(&cfg);
        /* The destroy role never reads prompts. */
        setenv("THOPTER_PROMPTS_DIR", "/nonexistent", 1);
        assert_ok(load(&cfg, &err, "--role", "destroy", NULL), &err);
        config_free(&cfg);
}

Test(config, help_groups_every_setting_and_marks_the_required) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);

        config_print_help(f, "thopter-consumer");
        fclose(f);
        for (const char *g = "Kafka:\n|fly:\n|SSH (|Provision:\n|Operations:"
                             "\n|thopter-reaper (";
             *g;) {
                const char *bar = strchr(g, '|');
                size_t n = bar ? (size_t)(bar - g) : strlen(g);
                char want[64];
                snprintf(want, sizeof(want), "\n%.*s", (int)n, g);
                cr_expect(strstr(text, want), "no section %s", want);
                g += n + (bar ? 1 : 0);
        }
        cr_expect_null(strstr(text, "\nOther:\n"),
                       "a setting in no section of --help");
        for (const char *const *n = config_setting_names(); *n; n++) {
                char line[96];
                snprintf(line, sizeof(line), "\n  %-28s --", *n);
                const char *at = strstr(text, line);
                cr_expect(at, "%s not in --help", *n);
                cr_expect(!at || !strstr(at + 1, line), "%s twice", *n);
        }
        cr_expect(strstr(text, "--kafka-brokers  (required)\n"));
        cr_expect(strstr(text, "--region  (required for provision)\n"));
        cr_expect(strstr(text, "--thopter-ssh-known-hosts  (required for "
                               "provision unless THOPTER_SSH_INSECURE=1)\n"));
        cr_expect(strstr(text, "--thopter-drain-timeout DURATION\n"));
        cr_expect(strstr(text, "[default: 30 s; 1 to 3600 s]"));
        cr_expect(strstr(text, "[default: 250 ms; 1 to 60000 ms]"));
        free(text);
}
