/* test_config_values.c - config.c and config_table.c: flags over the
 * environment, -X librdkafka properties, and every value checked with its
 * setting's name (integers, addresses, names, durations). The environment
 * comes from config_helpers.h; the suite's init clears every setting first.
 */
#include "config.h"
#include "config_helpers.h"
#include "log.h"
#include "test_helpers.h"

#include <criterion/criterion.h>

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TestSuite(config, .init = clean_env);

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

/* auto (the default) paces fly calls only when provisions run in parallel. */
Test(config, fly_pacing_follows_the_provisions_in_flight) {
        static const struct {
                const char *mode, *provisions;
                int want;
        } cases[] = {
            {NULL, NULL, 0},  {NULL, "3", 1}, {"auto", "1", 0},
            {"auto", "2", 1}, {"1", NULL, 1}, {"0", "3", 0},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct config cfg;
                struct err err;

                clean_env();
                destroy_env();
                if (cases[i].mode)
                        setenv("THOPTER_FLY_PACING", cases[i].mode, 1);
                if (cases[i].provisions)
                        setenv("MAX_CONCURRENT_PROVISIONS", cases[i].provisions,
                               1);
                assert_ok(load(&cfg, &err, "--role", "destroy", NULL), &err);
                cr_expect_eq(cfg.fly_pacing, cases[i].want, "case %zu", i);
                config_free(&cfg);
        }
}

Test(config, other_values_are_checked_with_the_name) {
        static const struct validate_case cases[] = {
            {"THOPTER_LOG_LEVEL", "verbose",
             "THOPTER_LOG_LEVEL: must be debug, info, warn or error (got "
             "\"verbose\")"},
            {"THOPTER_LOG_LEVEL", "debug", NULL},
            {"THOPTER_FLY_PACING", "yes",
             "THOPTER_FLY_PACING: must be auto, 1 or 0 (got \"yes\")"},
            {"THOPTER_FLY_PACING", "0", NULL},
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

/* ---- durations (issue 22) ---------------------------------------------------
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
