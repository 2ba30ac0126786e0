/* test_config.c - config.c and config_table.c: what each role requires,
 * GITHUB_INTEGRATION_JSON, roles and defaults, every missing setting at
 * once, the prompts dir and --help. test_config_values.c has the flags and
 * the checks of values. The environment comes from config_helpers.h; the
 * suite's init clears every setting first.
 */
#include "config.h"
#include "config_helpers.h"
#include "log.h"
#include "test_helpers.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite(config, .init = clean_env);

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
        cr_expect_str_eq(cfg.fly_pacing_mode, "auto");
        cr_expect_eq(cfg.fly_pacing, 0, "auto, one provision at a time");
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

/* ---- all missing at once, the prompts dir, --help (issue 22) --------------
 */

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
