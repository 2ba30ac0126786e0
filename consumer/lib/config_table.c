/* config_table.c - the table of every setting (its environment name, type,
 * default, range, the roles that require it, whether it is a secret, its
 * help line), the flag names made from it, and --help.
 *
 * DESIGN
 * ------
 * One row per setting; config.c walks the rows to load and check them, and
 * --help, the man page and the bash completion (deploy/gen-cli-docs.py reads
 * --help) list them by the groups below. Nothing here reads the environment
 * or a file.
 */
#include "config_int.h"

#include <ctype.h>
#include <stddef.h>
#include <string.h>

#define STR(f)  S_STR, offsetof(struct config, f)
#define INT(f)  S_INT, offsetof(struct config, f)
#define BOOL(f) S_BOOL, offsetof(struct config, f)
#define SECS(f) S_SECS, offsetof(struct config, f)
#define MSEC(f) S_MSEC, offsetof(struct config, f)

const struct setting config_table[] = {
    {"KAFKA_BROKERS", STR(kafka_brokers), NULL, 0, 0, BOTH, 0,
     "bootstrap servers, host:port[,host:port] (also -b)"},
    {"THOPTER_PROVISION_TOPIC", STR(provision_topic), "thopter.provision", 0, 0,
     0, 0, "provision request topic"},
    {"THOPTER_DESTROY_TOPIC", STR(destroy_topic), "thopter.destroy", 0, 0, 0, 0,
     "destroy request topic"},
    {"THOPTER_DLQ_TOPIC", STR(dlq_topic), "thopter.dlq", 0, 0, 0, 0,
     "dead-letter topic"},
    {"THOPTER_EVENTS_TOPIC", STR(events_topic), "thopter.events", 0, 0, 0, 0,
     "status event topic"},
    {"THOPTER_PROVISION_GROUP", STR(provision_group), "thopter-provisioner", 0,
     0, 0, 0, "provision consumer group"},
    {"THOPTER_DESTROY_GROUP", STR(destroy_group), "thopter-destroyer", 0, 0, 0,
     0, "destroy consumer group"},
    {"APP_NAME", STR(app_name), NULL, 0, 0, BOTH, 0,
     "the fly app the thopters live in"},
    {"REGION", STR(region), NULL, 0, 0, NEED_PROVISION, 0,
     "fly region for new machines and volumes"},
    {"FLY_DEPLOY_KEY", STR(fly_deploy_key), NULL, 0, 0, BOTH, 1,
     "fly API token (secret: the environment or FLY_DEPLOY_KEY_FILE; the "
     "flag is refused)"},
    {"FLY_DEPLOY_KEY_FILE", STR(fly_deploy_key_file), NULL, 0, 0, 0, 0,
     "file holding FLY_DEPLOY_KEY (instead of the environment)"},
    {"FLY_API_BASE", STR(fly_api_base), "https://api.machines.dev", 0, 0, 0, 0,
     "Machines API base URL"},
    {"THOPTER_FLY_PROXY", STR(fly_proxy), NULL, 0, 0, 0, 0,
     "proxy for fly API calls (http://, https://, socks5h://HOST:PORT); "
     "unset: none, whatever http_proxy and the like say"},
    {"MAX_THOPTERS", INT(max_thopters), "10", 1, 100000, 0, 0,
     "started thopters at most; provisioning waits above"},
    {"MAX_CONCURRENT_PROVISIONS", INT(max_concurrent_provisions), "1", 1, 16, 0,
     0,
     "provisions in flight at most (1: one at a time, as the hub asks; more: "
     "docs/OPERATIONS.md, parallel provisioning)"},
    {"THOPTER_GC_COPY_CONCURRENCY", INT(gc_copy_concurrency), "1", 1, 16, 0, 0,
     "Golden Claude copies from one Golden Claude at a time at most (the "
     "rest wait, step golden_claude_wait)"},
    {"THOPTER_FLY_PACING", STR(fly_pacing_mode), "auto", 0, 0, 0, 0,
     "1: pace app-scoped fly calls (list, create) to fly's published rate "
     "limit, 1/s per action with bursts of 3; 0: send at once; auto: 1 when "
     "MAX_CONCURRENT_PROVISIONS is above 1"},
    {"MAX_CONCURRENT_DESTROYS", INT(max_concurrent_destroys), "5", 1, 64, 0, 0,
     "destroys in flight at most"},
    {"THOPTER_DESTROY_BACKLOG", INT(destroy_backlog), "0", 0, 100000, 0, 0,
     "destroy requests queued beyond those in flight before intake pauses (0: "
     "50 x MAX_CONCURRENT_DESTROYS)"},
    {"THOPTER_VM_SIZE", STR(vm_size), "shared-cpu-1x", 0, 0, 0, 0,
     "fly VM size name"},
    {"THOPTER_VOLUME_SIZE", INT(volume_size_gb), "10", 1, 500, 0, 0,
     "size of new thopter_data volumes, GB"},
    {"THOPTER_IMAGE", STR(image), NULL, 0, 0, NEED_PROVISION, 0,
     "thopter machine image"},
    {"THOPTER_IMAGE_PREFIXES", STR(image_prefixes), NULL, 0, 0, 0, 0,
     "comma-separated prefixes a request's image must start with (the "
     "machine gets the secrets; default registry.fly.io/APP_NAME)"},
    {"GITHUB_INTEGRATION_JSON", STR(github_integration_json), NULL, 0, 0,
     NEED_PROVISION, 1,
     "{\"repositories\":{\"owner/"
     "repo\":{\"agentCoderPAT\",\"userName\",\"userEmail\"}}} (secret: the "
     "environment or GITHUB_INTEGRATION_JSON_FILE; the flag is refused)"},
    {"GITHUB_INTEGRATION_JSON_FILE", STR(github_integration_json_file), NULL, 0,
     0, 0, 0, "file holding GITHUB_INTEGRATION_JSON"},
    {"THOPTER_KAFKA_CONFIG_FILE", STR(kafka_config_file), NULL, 0, 0, 0, 0,
     "librdkafka properties file (key=value lines), applied before -X; the "
     "only place for secret properties such as sasl.password"},
    {"WEB_TERMINAL_PORT", STR(web_terminal_port), NULL, 0, 0, 0, 0,
     "passed to new machines when set"},
    {"HUB_STATUS_PORT", STR(hub_status_port), NULL, 0, 0, 0, 0,
     "the hub's status port, passed to new machines (their observer reports "
     "there); required for the provision role unless THOPTER_OBSERVER=0"},
    {"METADATA_SERVICE_HOST", STR(metadata_service_host), NULL, 0, 0, 0, 0,
     "the hub's metadata host, passed to new machines; required for the "
     "provision role unless THOPTER_OBSERVER=0"},
    {"THOPTER_OBSERVER", BOOL(observer), "1", 0, 1, 0, 0,
     "0: thopters run without the hub status observer (METADATA_SERVICE_HOST "
     "and HUB_STATUS_PORT may then be unset; the dashboard shows nothing of "
     "them)"},
    {"DANGEROUSLY_SKIP_FIREWALL", STR(dangerously_skip_firewall), NULL, 0, 0, 0,
     0, "passed to new machines when set"},
    {"ALLOWED_DOMAINS", STR(allowed_domains), NULL, 0, 0, 0, 0,
     "passed to new machines when set"},
    {"THOPTER_SSH_KEY", STR(ssh_key), NULL, 0, 0, NEED_PROVISION, 0,
     "private key file (ed25519 or ECDSA)"},
    {"THOPTER_SSH_KNOWN_HOSTS", STR(ssh_known_hosts), NULL, 0, 0, 0, 0,
     "known_hosts file thopter host keys must match"},
    {"THOPTER_SSH_INSECURE", BOOL(ssh_insecure), "0", 0, 1, 0, 0,
     "1: accept any host key (development only)"},
    {"THOPTER_SSH_HOST", STR(ssh_host), "{id}.vm.{app}.internal", 0, 0, 0, 0,
     "host template: {id} {app} {private_ip}"},
    {"THOPTER_SSH_PORT", INT(ssh_port), "2222", 1, 65535, 0, 0,
     "ssh port of the thopter image's sshd (not 22: on fly that is fly's own "
     "SSH server, hallpass)"},
    {"THOPTER_SSH_USER", STR(ssh_user), "root", 0, 0, 0, 0, "ssh login user"},
    {"THOPTER_REMOTE_HOME", STR(remote_home), "/data/thopter", 0, 0, 0, 0,
     "thopter user's home on the machine"},
    {"THOPTER_REMOTE_USER", STR(remote_user), "thopter", 0, 0, 0, 0,
     "user commands run as (su - USER -c)"},
    {"THOPTER_REMOTE_LOG", STR(remote_log), "/thopter/log", 0, 0, 0, 0,
     "provisioner log file on the machine"},
    {"THOPTER_TMUX_SESSION", STR(tmux_session), "thopter", 0, 0, 0, 0,
     "tmux session the agent runs in"},
    {"THOPTER_AGENT_COMMAND", STR(agent_command),
     "claude --dangerously-skip-permissions \"read ./prompt.md for your "
     "instructions\"",
     0, 0, 0, 0, "what is typed into tmux"},
    {"THOPTER_GIT_URL", STR(git_url), "https://github.com/{repository}.git", 0,
     0, 0, 0, "clone URL template"},
    {"THOPTER_PROMPTS_DIR", STR(prompts_dir), NULL, 0, 0, 0, 0,
     "prompt templates NAME.md (default: installed data dir)"},
    {"THOPTER_READY_TIMEOUT", SECS(ready_timeout_s), "120", 1, 3600, 0, 0,
     "from the create: machine started and ssh answering"},
    {"THOPTER_ENV_FILE", STR(env_file), NULL, 0, 0, 0, 0,
     "local .env.thopters given to each new thopter (read per provision)"},
    {"THOPTER_POST_CHECKOUT_FILE", STR(post_checkout_file), NULL, 0, 0, 0, 0,
     "local post-checkout.sh given to each new thopter (read per "
     "provision)"},
    {"THOPTER_FALLBACK_REGIONS", STR(fallback_regions), NULL, 0, 0, 0, 0,
     "regions tried in order when REGION has no capacity (comma or space "
     "separated)"},
    {"THOPTER_KEEP_FAILED", BOOL(keep_failed), "0", 0, 1, 0, 0,
     "1: keep a failed provision's machine"},
    {"THOPTER_GOLDEN_CLAUDE_REQUIRED", BOOL(golden_claude_required), "0", 0, 1,
     0, 0,
     "1: a provision whose Golden Claude copy is skipped (none running, host "
     "key not pinned or wrong, unreachable) or fails is dead-lettered (class "
     "ssh, step golden_claude); 0: it completes with a warning"},
    {"THOPTER_METRICS_ADDR", STR(metrics_addr), "127.0.0.1:9464", 0, 0, 0, 0,
     "/metrics /livez /readyz address ('off' disables)"},
    {"THOPTER_LOG_LEVEL", STR(log_level), "info", 0, 0, 0, 0,
     "debug, info, warn or error"},
    {"THOPTER_DRAIN_TIMEOUT", SECS(drain_timeout_s), "30", 1, 3600, 0, 0,
     "on SIGTERM, how long in-flight work may finish"},
    {"THOPTER_FLY_TIMEOUT", SECS(fly_timeout_s), "30", 1, 600, 0, 0,
     "one fly API request's timeout"},
    {"THOPTER_FLY_RETRIES", INT(fly_retries), "6", 1, 100, 0, 0,
     "attempts per fly call before giving up"},
    {"THOPTER_RETRY_BASE_MS", MSEC(retry_base_ms), "250", 1, 60000, 0, 0,
     "first retry delay (doubles, with jitter)"},
    {"THOPTER_RETRY_MAX_MS", MSEC(retry_max_ms), "5000", 1, 600000, 0, 0,
     "longest retry delay"},
    {"THOPTER_BREAKER_THRESHOLD", INT(breaker_threshold), "3", 1, 64, 0, 0,
     "consecutive transient fly failures (from different messages) that open "
     "the circuit"},
    {"THOPTER_BREAKER_PROBE_MS", MSEC(breaker_probe_ms), "3000", 10, 600000, 0,
     0, "probe interval while the circuit is open"},
    {"THOPTER_CAPACITY_RECHECK_MAX", SECS(capacity_recheck_max_s), "30", 1,
     3600, 0, 0, "longest wait between capacity checks"},
    {"THOPTER_SSH_TIMEOUT", SECS(ssh_timeout_s), "300", 1, 86400, 0, 0,
     "deadline of one remote command"},
    /* thopter-reaper (producer-tools/reaper.c); the consumer ignores them. */
    {"THOPTER_MAX_LIFETIME", STR(max_lifetime), "72h", 0, 0, 0, 0,
     "thopter-reaper: destroy thopters created longer ago than this (72h, "
     "1h30m, ... or off)"},
    {"THOPTER_REAP_STOPPED_AFTER", STR(reap_stopped_after), "30m", 0, 0, 0, 0,
     "thopter-reaper: destroy thopters stopped or failed for longer than this "
     "(since updated_at; or off)"},
    {"THOPTER_ORPHAN_GRACE", STR(orphan_grace), "1h", 0, 0, 0, 0,
     "thopter-reaper: destroy thopters older than this whose provision never "
     "completed (no thopter_provisioned mark; or off)"},
    {"THOPTER_IDLE_AFTER", STR(idle_after), NULL, 0, 0, 0, 0,
     "thopter-reaper: destroy agents whose tmux session has had no activity "
     "for this long (checked over ssh; unset: off)"},
    {"THOPTER_REAP_INTERVAL", STR(reap_interval), "5m", 0, 0, 0, 0,
     "thopter-reaper: time between passes (without --once)"},
};

#define NSETTINGS (sizeof(config_table) / sizeof(config_table[0]))

const size_t config_table_len = NSETTINGS;

const char *const *config_setting_names(void) {
        static const char *names[NSETTINGS + 1];
        for (size_t i = 0; i < NSETTINGS; i++)
                names[i] = config_table[i].env;
        names[NSETTINGS] = NULL;
        return names;
}

void config_flag_name(const char *env, char *out, size_t cap) {
        size_t i = 0;
        for (; env[i] && i + 1 < cap; i++)
                out[i] =
                    env[i] == '_' ? '-' : (char)tolower((unsigned char)env[i]);
        out[i] = '\0';
}

/* --help's sections, in the order of docs/CONTRACT.md section 7. A setting
 * in none of them is listed under "Other" (add it to one). */
static const char *const group_kafka[] = {"KAFKA_BROKERS",
                                          "THOPTER_KAFKA_CONFIG_FILE",
                                          "THOPTER_PROVISION_TOPIC",
                                          "THOPTER_DESTROY_TOPIC",
                                          "THOPTER_DLQ_TOPIC",
                                          "THOPTER_EVENTS_TOPIC",
                                          "THOPTER_PROVISION_GROUP",
                                          "THOPTER_DESTROY_GROUP",
                                          NULL};
static const char *const group_fly[] = {"APP_NAME",
                                        "REGION",
                                        "THOPTER_FALLBACK_REGIONS",
                                        "FLY_DEPLOY_KEY",
                                        "FLY_DEPLOY_KEY_FILE",
                                        "FLY_API_BASE",
                                        "MAX_THOPTERS",
                                        "MAX_CONCURRENT_PROVISIONS",
                                        "MAX_CONCURRENT_DESTROYS",
                                        "THOPTER_DESTROY_BACKLOG",
                                        "THOPTER_VM_SIZE",
                                        "THOPTER_VOLUME_SIZE",
                                        "THOPTER_IMAGE",
                                        "THOPTER_IMAGE_PREFIXES",
                                        "THOPTER_FLY_TIMEOUT",
                                        "THOPTER_FLY_PROXY",
                                        "THOPTER_FLY_RETRIES",
                                        "THOPTER_FLY_PACING",
                                        "THOPTER_RETRY_BASE_MS",
                                        "THOPTER_RETRY_MAX_MS",
                                        "THOPTER_BREAKER_THRESHOLD",
                                        "THOPTER_BREAKER_PROBE_MS",
                                        "WEB_TERMINAL_PORT",
                                        "HUB_STATUS_PORT",
                                        "METADATA_SERVICE_HOST",
                                        "DANGEROUSLY_SKIP_FIREWALL",
                                        "ALLOWED_DOMAINS",
                                        NULL};
static const char *const group_ssh[] = {
    "THOPTER_SSH_KEY",      "THOPTER_SSH_KNOWN_HOSTS",
    "THOPTER_SSH_INSECURE", "THOPTER_SSH_HOST",
    "THOPTER_SSH_PORT",     "THOPTER_SSH_USER",
    "THOPTER_SSH_TIMEOUT",  NULL};
static const char *const group_provision[] = {"GITHUB_INTEGRATION_JSON",
                                              "GITHUB_INTEGRATION_JSON_FILE",
                                              "THOPTER_REMOTE_HOME",
                                              "THOPTER_REMOTE_USER",
                                              "THOPTER_REMOTE_LOG",
                                              "THOPTER_TMUX_SESSION",
                                              "THOPTER_AGENT_COMMAND",
                                              "THOPTER_GIT_URL",
                                              "THOPTER_PROMPTS_DIR",
                                              "THOPTER_READY_TIMEOUT",
                                              "THOPTER_ENV_FILE",
                                              "THOPTER_POST_CHECKOUT_FILE",
                                              "THOPTER_CAPACITY_RECHECK_MAX",
                                              "THOPTER_KEEP_FAILED",
                                              "THOPTER_OBSERVER",
                                              "THOPTER_GOLDEN_CLAUDE_REQUIRED",
                                              "THOPTER_GC_COPY_CONCURRENCY",
                                              NULL};
static const char *const group_operations[] = {
    "THOPTER_METRICS_ADDR", "THOPTER_LOG_LEVEL", "THOPTER_DRAIN_TIMEOUT", NULL};
static const char *const group_reaper[] = {
    "THOPTER_MAX_LIFETIME",  "THOPTER_REAP_STOPPED_AFTER",
    "THOPTER_ORPHAN_GRACE",  "THOPTER_IDLE_AFTER",
    "THOPTER_REAP_INTERVAL", NULL};

static const struct {
        const char *title;
        const char *const *names;
} groups[] = {
    {"Kafka", group_kafka},
    {"fly", group_fly},
    {"SSH (the provision role)", group_ssh},
    {"Provision", group_provision},
    {"Operations", group_operations},
    {"thopter-reaper (the consumer ignores these; durations like 72h, 30m, "
     "1h30m, or off)",
     group_reaper},
};

static int in_a_group(const char *env) {
        for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++)
                for (const char *const *n = groups[g].names; *n; n++)
                        if (strcmp(*n, env) == 0)
                                return 1;
        return 0;
}

/* "required", "required for provision", or "" for @p s. */
static const char *required_mark(const struct setting *s) {
        if (strcmp(s->env, "THOPTER_SSH_KNOWN_HOSTS") == 0)
                return "  (required for provision unless "
                       "THOPTER_SSH_INSECURE=1)";
        if (s->need == BOTH)
                return "  (required)";
        if (s->need == NEED_PROVISION)
                return "  (required for provision)";
        return "";
}

/* Two lines: the name, its flag and (@p marks) whether the consumer needs
 * it; what it is, with its default and range. */
static void print_setting(FILE *out, const struct setting *s, int marks) {
        char flag[64];
        const char *unit = s->type == S_SECS   ? " s"
                           : s->type == S_MSEC ? " ms"
                                               : "";
        int duration = s->type == S_SECS || s->type == S_MSEC;

        config_flag_name(s->env, flag, sizeof(flag));
        fprintf(out, "  %-28s --%s%s%s\n", s->env, flag,
                duration ? " DURATION" : "", marks ? required_mark(s) : "");
        fprintf(out, "      %s", s->help);
        if (s->def && !s->secret && s->type == S_STR)
                fprintf(out, " [default: %s]", s->def);
        else if (s->def && s->type == S_BOOL)
                fprintf(out, " [default: %s; 0 or 1]", s->def);
        else if (s->def)
                fprintf(out, " [default: %s%s; %ld to %ld%s]", s->def, unit,
                        s->min, s->max, unit);
        fprintf(out, "\n");
}

void config_print_help(FILE *out, const char *prog) {
        int other = 0;

        fprintf(out,
                "Usage: %s [--role provision|destroy|all] [-b BROKERS] [-X "
                "key=value]... [--SETTING VALUE]...\n"
                "\n"
                "Consumes thopter provision and destroy requests from Kafka "
                "and carries them out\n"
                "against the fly.io Machines API and over SSH. Offsets are "
                "committed only after a\n"
                "request's work finished or its dead letter was acknowledged.\n"
                "\n"
                "Options:\n"
                "  --role ROLE        provision, destroy or all (default: all, "
                "both groups)\n"
                "  -b, --brokers B    Kafka bootstrap servers (same as "
                "KAFKA_BROKERS)\n"
                "  -X key=value       any librdkafka property (repeatable), as "
                "kcat does;\n"
                "                     secrets (sasl.password, ...) only in "
                "THOPTER_KAFKA_CONFIG_FILE\n"
                "  -h, --help         this text\n"
                "  -V, --version      print the version\n"
                "\n"
                "Settings: each an environment variable, or the flag shown "
                "(the flag wins).\n"
                "\"required\" ones stop the consumer at start when not set; "
                "\"for provision\" means\n"
                "for --role provision and all. A DURATION is a number in the "
                "unit of its default\n"
                "(s or ms), or a number with units: 500ms, 90s, 2m, 1h30m.\n",
                prog);
        for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
                fprintf(out, "\n%s:\n", groups[g].title);
                for (const char *const *n = groups[g].names; *n; n++)
                        for (size_t i = 0; i < NSETTINGS; i++)
                                if (strcmp(config_table[i].env, *n) == 0)
                                        print_setting(out, &config_table[i], 1);
        }
        for (size_t i = 0; i < NSETTINGS; i++) {
                if (in_a_group(config_table[i].env))
                        continue;
                if (!other++)
                        fprintf(out, "\nOther:\n");
                print_setting(out, &config_table[i], 1);
        }
        fprintf(out, "\nExit status: 0 after a graceful stop, 1 on failure, 2 "
                     "on a bad setting or usage.\n");
}

void config_print_settings(FILE *out, const char *const *names) {
        for (; names && *names; names++)
                for (size_t i = 0; i < NSETTINGS; i++)
                        if (strcmp(config_table[i].env, *names) == 0)
                                print_setting(out, &config_table[i], 0);
}
