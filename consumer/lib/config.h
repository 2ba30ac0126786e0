/* config.h - every setting of the consumer, from the environment and flags.
 *
 * The only module that calls getenv(). Each setting of contract section 7 is
 * an environment variable and also a flag: the variable's name in lower case
 * with '_' turned into '-' (KAFKA_BROKERS -> --kafka-brokers VALUE or
 * --kafka-brokers=VALUE). Flags win over the environment. A malformed
 * setting fails config_load() with one line that names it; so do missing
 * required ones, all of them listed in cfg->missing. Durations take units
 * (duration.h).
 *
 * Callers: main.c (loads it), consumer.c and the flows read it; nothing else
 * calls getenv().
 */
#ifndef THOPTER_CONFIG_H
#define THOPTER_CONFIG_H

#include "err.h"

#include <stdio.h>

/* ROLE_REAPER: thopter-reaper reads the same table (config_load_role()); no
 * setting is required by the table for it, the reaper checks its own. */
enum config_role { ROLE_ALL = 0, ROLE_PROVISION, ROLE_DESTROY, ROLE_REAPER };

/* One entry of GITHUB_INTEGRATION_JSON's "repositories". */
struct repo_cred {
        char *repository; /* owner/name */
        char *pat;        /* agentCoderPAT: a secret */
        char *user_name;
        char *user_email;
};

struct config {
        enum config_role role;
        int show_help;
        int show_version;

        /* Kafka */
        char *kafka_brokers;
        char **kafka_props; /* "key=value": THOPTER_KAFKA_CONFIG_FILE's,
                               then -X, in order */
        int n_kafka_props;
        char *provision_topic, *destroy_topic, *dlq_topic, *events_topic;
        char *provision_group, *destroy_group;

        /* fly */
        char *app_name, *region, *fly_deploy_key, *fly_api_base;
        char *fly_proxy; /* optional: the only proxy fly calls may use */
        int max_thopters, max_concurrent_destroys;
        int max_concurrent_provisions; /* 1: serial, the contract's default */
        int gc_copy_concurrency;       /* copies per Golden Claude at once */
        char *fly_pacing_mode;         /* THOPTER_FLY_PACING: auto, 1 or 0 */
        int fly_pacing;                /* derived: pace app-scoped fly calls */
        int destroy_backlog;           /* 0: 50 x max_concurrent_destroys */
        char *vm_size;
        int volume_size_gb;
        char *image;
        char *image_prefixes; /* optional: allowed request images */
        char *github_integration_json;
        /* Files the two secrets above may come from instead (5.10), and
         * the librdkafka properties file. */
        char *fly_deploy_key_file, *github_integration_json_file;
        char *kafka_config_file;
        struct repo_cred *repos;
        int n_repos;
        char *web_terminal_port, *hub_status_port, *metadata_service_host;
        char *dangerously_skip_firewall, *allowed_domains;

        /* ssh and the machine */
        char *ssh_key, *ssh_known_hosts, *ssh_host, *ssh_user;
        int ssh_insecure, ssh_port;
        char *remote_home, *remote_user, *remote_log, *tmux_session;
        char *agent_command, *git_url, *prompts_dir;
        char *env_file, *post_checkout_file; /* optional local files */
        char *fallback_regions;              /* optional */
        int ready_timeout_s;
        int keep_failed;
        int observer;               /* THOPTER_OBSERVER */
        int golden_claude_required; /* THOPTER_GOLDEN_CLAUDE_REQUIRED */

        /* thopter-reaper: durations as given ("72h", "1h30m", "off"); the
         * reaper parses them (producer-tools/lib/reap_rules.h). */
        char *max_lifetime, *reap_stopped_after, *orphan_grace, *idle_after;
        char *reap_interval;

        /* operations */
        char *metrics_addr;
        char *log_level;
        int drain_timeout_s;
        int fly_timeout_s;
        int fly_retries;
        int retry_base_ms, retry_max_ms;
        int breaker_threshold, breaker_probe_ms;
        int capacity_recheck_max_s;
        int ssh_timeout_s;

        /* After a failed config_load(): one line per required setting
         * that is not set (all of them; err->msg is the first). */
        char **missing;
        int n_missing;
};

/**
 * @brief Read the environment, then @p argv (flags override), validate.
 * @returns 0, or -1 with err->msg the one line to print (usage errors).
 * On -1 the config may be partly filled: config_free() it anyway.
 */
int config_load(struct config *cfg, int argc, char **argv, struct err *err);
void config_free(struct config *cfg);

/**
 * @brief config_load() for a program with a fixed role (thopter-reaper:
 * ROLE_REAPER); --role is then not expected in @p argv.
 */
int config_load_role(struct config *cfg,
                     enum config_role role,
                     int argc,
                     char **argv,
                     struct err *err);

/** @brief The --help lines of the settings named in @p names (NULL-ended),
 * in the same form as config_print_help(); unknown names are skipped. */
void config_print_settings(FILE *out, const char *const *names);

/**
 * @brief The start-up warning for a THOPTER_SSH_PORT that cannot work on fly
 * (22: fly's own SSH server holds it on the 6PN address), or NULL.
 * @returns a static string; the caller logs it.
 */
const char *config_ssh_port_warning(const struct config *cfg);

/** @brief The --help text. */
void config_print_help(FILE *out, const char *prog);

/** @brief "all", "provision" or "destroy". */
const char *config_role_name(enum config_role role);

/** @brief Credentials of @p repository, or NULL when none is configured. */
const struct repo_cred *config_repo(const struct config *cfg,
                                    const char *repository);

/** @brief Every setting name config_load() reads (NULL-terminated). */
const char *const *config_setting_names(void);

/** @brief The flag of setting @p env: "THOPTER_SSH_KEY" -> "thopter-ssh-key"
 * (no leading dashes), cut to fit @p cap. */
void config_flag_name(const char *env, char *out, size_t cap);

#endif
