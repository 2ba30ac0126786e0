/* config.c - settings table, environment + flag parsing, validation.
 *
 * DESIGN
 * ------
 * One table lists every setting: its environment name, type, default, range,
 * which roles require it and its help line. Loading walks the table for the
 * environment, then argv for flags, then validates the result as a whole
 * (what is required depends on --role). Secrets are registered with the
 * logger the moment they are read.
 */
#include "config.h"
#include "duration.h"
#include "kafka_conf.h"
#include "listen_addr.h"
#include "log.h"
#include "secret_file.h"
#include "shell_quote.h"
#include "strfmt.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* S_SECS, S_MSEC: durations kept in seconds / milliseconds (duration.h). */
enum stype { S_STR, S_INT, S_BOOL, S_SECS, S_MSEC };

#define NEED_PROVISION 1
#define NEED_DESTROY   2

struct setting {
        const char *env;
        enum stype type;
        size_t off;
        const char *def;
        long min, max;
        int need; /* roles that require it */
        int secret;
        const char *help;
};

#define STR(f)  S_STR, offsetof(struct config, f)
#define INT(f)  S_INT, offsetof(struct config, f)
#define BOOL(f) S_BOOL, offsetof(struct config, f)
#define SECS(f) S_SECS, offsetof(struct config, f)
#define MSEC(f) S_MSEC, offsetof(struct config, f)
#define BOTH    (NEED_PROVISION | NEED_DESTROY)

static const struct setting settings[] = {
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
    {"THOPTER_FLY_PACING", BOOL(fly_pacing), "1", 0, 1, 0, 0,
     "1: pace app-scoped fly calls (list, create) to fly's published rate "
     "limit, 1/s per action with bursts of 3; 0: send at once"},
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

#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

const char *const *config_setting_names(void) {
        static const char *names[NSETTINGS + 1];
        for (size_t i = 0; i < NSETTINGS; i++)
                names[i] = settings[i].env;
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

static int set_value(struct config *cfg,
                     const struct setting *s,
                     const char *value,
                     const char *origin,
                     struct err *err) {
        char *base = (char *)cfg;

        if (s->type == S_STR) {
                char **slot = (char **)(base + s->off);
                free(*slot);
                *slot = strdup(value);
                if (!*slot)
                        return err_oom(err, s->env);
                if (s->secret)
                        log_add_secret(value);
                return 0;
        }
        char *end = NULL;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (s->type == S_SECS || s->type == S_MSEC) {
                const char *unit = s->type == S_SECS ? "s" : "ms";
                if (duration_parse(value, s->type == S_SECS ? 1000 : 1, &v) ==
                        -1 ||
                    v < s->min || v > s->max)
                        return err_set(err, ERR_PERMANENT, EINVAL,
                                       "%s: must be a duration from %ld %s to "
                                       "%ld %s: a number of %s, or with units "
                                       "such as 500ms, 90s, 2m, 1h30m (got "
                                       "\"%s\" from %s)",
                                       s->env, s->min, unit, s->max, unit,
                                       s->type == S_SECS ? "seconds"
                                                         : "milliseconds",
                                       value, origin);
        } else if (s->type == S_BOOL) {
                if (strcmp(value, "true") == 0)
                        v = 1, end = (char *)value + 4;
                else if (strcmp(value, "false") == 0)
                        v = 0, end = (char *)value + 5;
                if (errno || end == value || *end || (v != 0 && v != 1))
                        return err_set(
                            err, ERR_PERMANENT, EINVAL,
                            "%s: must be 0 or 1 (got \"%s\" from %s)", s->env,
                            value, origin);
        } else if (errno || end == value || *end || v < s->min || v > s->max) {
                return err_set(err, ERR_PERMANENT, EINVAL,
                               "%s: must be an integer from %ld to %ld (got "
                               "\"%s\" from %s)",
                               s->env, s->min, s->max, value, origin);
        }
        *(int *)(base + s->off) = (int)v;
        return 0;
}

/* Contract 5.10: a secret never in process arguments, where every user of
 * the host reads it (/proc/PID/cmdline, ps). Refused rather than taken and
 * overwritten in argv: the value was readable from exec until the overwrite
 * and stays in shell history, unit files and audit logs, so scrubbing would
 * only look safe. The messages name the setting, never the value. */
static int refuse_secret_flag(const char *flag,
                              int len,
                              const char *env,
                              struct err *err) {
        return err_set(err, ERR_PERMANENT, EINVAL,
                       "%.*s: a secret is never taken on the command line, "
                       "where every user of the host can read it: set %s in "
                       "the environment, or %s_FILE to a file holding it",
                       len, flag, env, env);
}

static int add_kafka_prop(struct config *cfg, const char *kv, struct err *err) {
        const char *eq = strchr(kv, '=');
        if (!eq || eq == kv)
                return err_set(err, ERR_PERMANENT, EINVAL,
                               "-X: expected key=value (got \"%s\")", kv);
        if (kafka_conf_is_secret(kv, (size_t)(eq - kv)))
                return err_set(err, ERR_PERMANENT, EINVAL,
                               "-X %.*s: a secret is never taken on the "
                               "command line, where every user of the host "
                               "can read it: put it in the librdkafka "
                               "properties file named by "
                               "THOPTER_KAFKA_CONFIG_FILE",
                               (int)(eq - kv), kv);
        char **props =
            realloc(cfg->kafka_props,
                    sizeof(char *) * (size_t)(cfg->n_kafka_props + 1));
        if (!props)
                return err_oom(err, "-X");
        cfg->kafka_props = props;
        props[cfg->n_kafka_props] = strdup(kv);
        if (!props[cfg->n_kafka_props])
                return err_oom(err, "-X");
        cfg->n_kafka_props++;
        return 0;
}

static const struct setting *find_flag(const char *name, size_t len) {
        char buf[64];
        for (size_t i = 0; i < NSETTINGS; i++) {
                config_flag_name(settings[i].env, buf, sizeof(buf));
                if (strlen(buf) == len && strncmp(buf, name, len) == 0)
                        return &settings[i];
        }
        return NULL;
}

static int parse_role(struct config *cfg, const char *v, struct err *err) {
        if (strcmp(v, "provision") == 0)
                cfg->role = ROLE_PROVISION;
        else if (strcmp(v, "destroy") == 0)
                cfg->role = ROLE_DESTROY;
        else if (strcmp(v, "all") == 0)
                cfg->role = ROLE_ALL;
        else
                return err_set(
                    err, ERR_PERMANENT, EINVAL,
                    "--role: must be provision, destroy or all (got \"%s\")",
                    v);
        return 0;
}

static int
parse_args(struct config *cfg, int argc, char **argv, struct err *err) {
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];
                const char *val = NULL;

                if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
                        cfg->show_help = 1;
                        continue;
                }
                if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
                        cfg->show_version = 1;
                        continue;
                }
                if (strcmp(a, "-b") == 0 || strcmp(a, "-X") == 0) {
                        if (i + 1 >= argc)
                                return err_set(err, ERR_PERMANENT, EINVAL,
                                               "%s: needs a value", a);
                        val = argv[++i];
                        if (a[1] == 'X') {
                                if (add_kafka_prop(cfg, val, err) == -1)
                                        return -1;
                                continue;
                        }
                        if (set_value(cfg, &settings[0], val, "-b", err) == -1)
                                return -1;
                        continue;
                }
                if (strncmp(a, "--", 2) != 0)
                        return err_set(
                            err, ERR_PERMANENT, EINVAL,
                            "unexpected argument \"%s\" (see --help)", a);
                const char *name = a + 2;
                const char *eq = strchr(name, '=');
                size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
                if (eq)
                        val = eq + 1;
                else if (i + 1 < argc)
                        val = argv[i + 1];
                int takes_next = !eq;

                if ((nlen == 4 && strncmp(name, "role", 4) == 0) ||
                    (nlen == 7 && strncmp(name, "brokers", 7) == 0)) {
                        if (!val)
                                return err_set(err, ERR_PERMANENT, EINVAL,
                                               "%s: needs a value", a);
                        if (takes_next)
                                i++;
                        if (name[0] == 'r') {
                                if (parse_role(cfg, val, err) == -1)
                                        return -1;
                        } else if (set_value(cfg, &settings[0], val,
                                             "--brokers", err) == -1) {
                                return -1;
                        }
                        continue;
                }
                const struct setting *s = find_flag(name, nlen);
                if (!s)
                        return err_set(err, ERR_PERMANENT, EINVAL,
                                       "unknown option \"%.*s\" (see --help)",
                                       (int)nlen + 2, a);
                if (!val)
                        return err_set(err, ERR_PERMANENT, EINVAL,
                                       "%.*s: needs a value", (int)nlen + 2, a);
                if (s->secret) /* "--name", never "=value" */
                        return refuse_secret_flag(a, (int)nlen + 2, s->env,
                                                  err);
                if (takes_next)
                        i++;
                if (set_value(cfg, s, val, "the command line", err) == -1)
                        return -1;
        }
        return 0;
}

static char *dup_json_string(const cJSON *obj, const char *key) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
        return cJSON_IsString(v) && v->valuestring ? strdup(v->valuestring)
                                                   : NULL;
}

static int parse_github_json(struct config *cfg, struct err *err) {
        int rc = -1;
        cJSON *root = cJSON_Parse(cfg->github_integration_json);
        const cJSON *repos =
            cJSON_GetObjectItemCaseSensitive(root, "repositories");
        const cJSON *r;

        if (!cJSON_IsObject(root) || !cJSON_IsObject(repos)) {
                err_set(err, ERR_PERMANENT, EINVAL,
                        "GITHUB_INTEGRATION_JSON: must be a JSON object with a "
                        "\"repositories\" object");
                goto out;
        }
        cfg->n_repos = cJSON_GetArraySize(repos);
        cfg->repos = calloc((size_t)cfg->n_repos + 1, sizeof(*cfg->repos));
        if (!cfg->repos) {
                err_oom(err, "GITHUB_INTEGRATION_JSON");
                goto out;
        }
        int i = 0;
        cJSON_ArrayForEach(r, repos) {
                struct repo_cred *c = &cfg->repos[i++];
                c->repository = strdup(r->string);
                c->pat = dup_json_string(r, "agentCoderPAT");
                c->user_name = dup_json_string(r, "userName");
                c->user_email = dup_json_string(r, "userEmail");
                /* Other fields (the hub's issuesPAT) are secrets we never use.
                 * Only an object's members have names. */
                const cJSON *f;
                if (cJSON_IsObject(r))
                        cJSON_ArrayForEach(f, r) {
                                if (cJSON_IsString(f) &&
                                    strstr(f->string, "PAT"))
                                        log_add_secret(f->valuestring);
                        }
                if (!cJSON_IsObject(r) || !c->pat || !*c->pat ||
                    !c->user_name || !c->user_email) {
                        err_set(err, ERR_PERMANENT, EINVAL,
                                "GITHUB_INTEGRATION_JSON: repositories.%s: "
                                "needs string "
                                "agentCoderPAT, userName and userEmail",
                                r->string);
                        goto out;
                }
        }
        rc = 0;
out:
        cJSON_Delete(root);
        return rc;
}

/* THOPTER_FALLBACK_REGIONS: region codes, comma or space separated. */
static int check_regions(const char *list, struct err *err) {
        for (const char *p = list; p && *p; p++)
                if (!(islower((unsigned char)*p) ||
                      isdigit((unsigned char)*p) || *p == ',' || *p == ' '))
                        return err_set(err, ERR_PERMANENT, EINVAL,
                                       "THOPTER_FALLBACK_REGIONS: region codes "
                                       "([a-z0-9]) separated by commas or "
                                       "spaces (got \"%s\")",
                                       list);
        return 0;
}

/* THOPTER_PROMPTS_DIR, when set: a directory with the default template,
 * checked at start rather than at the first provision. */
static int check_prompts_dir(const char *dir, struct err *err) {
        char path[4096];

        if (!dir || !*dir)
                return 0;
        if (access(dir, R_OK | X_OK) != 0)
                return err_set(err, ERR_PERMANENT, errno,
                               "THOPTER_PROMPTS_DIR: cannot read %s: %s", dir,
                               strerror(errno));
        snprintf(path, sizeof(path), "%s/default.md", dir);
        if (access(path, R_OK) != 0)
                return err_set(err, ERR_PERMANENT, errno,
                               "THOPTER_PROMPTS_DIR: %s has no readable "
                               "default.md (the template of a request "
                               "without a prompt, and of one whose prompt is "
                               "missing): %s",
                               dir, strerror(errno));
        return 0;
}

/* One line naming a required setting that is not set. */
static void missing_line(const struct setting *s, char *out, size_t cap) {
        char flag[64];
        const char *role =
            s->need == NEED_PROVISION ? " for the provision role" : "";

        config_flag_name(s->env, flag, sizeof(flag));
        if (s->secret)
                snprintf(out, cap,
                         "%s: required%s but not set (environment, or "
                         "%s_FILE)",
                         s->env, role, s->env);
        else
                snprintf(out, cap,
                         "%s: required%s but not set (environment or --%s)",
                         s->env, role, flag);
}

static int add_missing(struct config *cfg, const char *line) {
        char **v = realloc(cfg->missing,
                           sizeof(char *) * (size_t)(cfg->n_missing + 1));
        if (!v)
                return -1;
        cfg->missing = v;
        v[cfg->n_missing] = strdup(line);
        if (!v[cfg->n_missing])
                return -1;
        cfg->n_missing++;
        return 0;
}

/* Every required setting that is not set, at once (cfg->missing); the
 * first is also the error's message. */
static int check_required(struct config *cfg, int need, struct err *err) {
        char line[ERR_MSG_LEN];

        for (size_t i = 0; i < NSETTINGS; i++) {
                const struct setting *s = &settings[i];
                if (s->type != S_STR || !(s->need & need))
                        continue;
                char *v = *(char **)((char *)cfg + s->off);
                if (v && *v)
                        continue;
                missing_line(s, line, sizeof(line));
                if (add_missing(cfg, line) == -1)
                        return err_oom(err, s->env);
        }
        if ((need & NEED_PROVISION) &&
            (!cfg->ssh_known_hosts || !*cfg->ssh_known_hosts) &&
            !cfg->ssh_insecure &&
            add_missing(cfg, "THOPTER_SSH_KNOWN_HOSTS: required for the "
                             "provision role (or THOPTER_SSH_INSECURE=1 for "
                             "development)") == -1)
                return err_oom(err, "THOPTER_SSH_KNOWN_HOSTS");
        if ((need & NEED_PROVISION) && cfg->observer &&
            (!cfg->metadata_service_host || !*cfg->metadata_service_host ||
             !cfg->hub_status_port || !*cfg->hub_status_port) &&
            add_missing(cfg, "METADATA_SERVICE_HOST and HUB_STATUS_PORT: both "
                             "required for the provision role, or each "
                             "thopter's observer exits and the hub sees "
                             "nothing of it (set THOPTER_OBSERVER=0 to run "
                             "thopters without it)") == -1)
                return err_oom(err, "METADATA_SERVICE_HOST");
        if (cfg->n_missing)
                return err_set(err, ERR_PERMANENT, EINVAL, "%s",
                               cfg->missing[0]);
        return 0;
}

/* Every fly call carries the token: a proxy may only ever see it inside
 * TLS, so a plain-HTTP FLY_API_BASE is never proxied. */
static int check_fly_proxy(const struct config *cfg, struct err *err) {
        static const char *const schemes[] = {"http://", "https://",
                                              "socks5://", "socks5h://"};
        size_t i;

        for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
                if (!strncmp(cfg->fly_proxy, schemes[i], strlen(schemes[i])) &&
                    cfg->fly_proxy[strlen(schemes[i])])
                        break;
        if (i == sizeof(schemes) / sizeof(schemes[0]))
                return err_set(err, ERR_PERMANENT, EINVAL,
                               "THOPTER_FLY_PROXY: must be http://, https://, "
                               "socks5:// or socks5h://HOST:PORT (got \"%s\")",
                               cfg->fly_proxy);
        if (strncmp(cfg->fly_api_base, "https://", 8) != 0)
                return err_set(err, ERR_PERMANENT, EINVAL,
                               "THOPTER_FLY_PROXY: refused with the plain-HTTP "
                               "FLY_API_BASE %s: the proxy would read the fly "
                               "token (use an https:// FLY_API_BASE, or no "
                               "proxy)",
                               cfg->fly_api_base);
        return 0;
}

static int validate(struct config *cfg, struct err *err) {
        int need = cfg->role == ROLE_PROVISION ? NEED_PROVISION
                   : cfg->role == ROLE_DESTROY ? NEED_DESTROY
                   : cfg->role == ROLE_REAPER  ? 0
                                               : BOTH;
        enum log_level lvl;

        if (check_required(cfg, need, err) == -1)
                return -1;
        if (log_level_parse(cfg->log_level, &lvl) == -1)
                return err_set(err, ERR_PERMANENT, EINVAL,
                               "THOPTER_LOG_LEVEL: must be debug, info, warn "
                               "or error (got \"%s\")",
                               cfg->log_level);
        /* The health server's own parser, so what starts is what listens. */
        if (strcmp(cfg->metrics_addr, "off") != 0) {
                struct listen_addr a;
                if (listen_addr_parse("THOPTER_METRICS_ADDR", cfg->metrics_addr,
                                      &a, err) == -1)
                        return -1;
        }
        if (strncmp(cfg->fly_api_base, "http://", 7) != 0 &&
            strncmp(cfg->fly_api_base, "https://", 8) != 0)
                return err_set(err, ERR_PERMANENT, EINVAL,
                               "FLY_API_BASE: must start with http:// or "
                               "https:// (got \"%s\")",
                               cfg->fly_api_base);
        if (cfg->fly_proxy && *cfg->fly_proxy &&
            check_fly_proxy(cfg, err) == -1)
                return -1;
        if (cfg->retry_max_ms < cfg->retry_base_ms)
                return err_set(err, ERR_PERMANENT, EINVAL,
                               "THOPTER_RETRY_MAX_MS: must not be below "
                               "THOPTER_RETRY_BASE_MS");
        if (need & NEED_PROVISION) {
                if (parse_github_json(cfg, err) == -1)
                        return -1;
                /* These reach remote shells and tmux targets as names. */
                if (!shell_name_is_safe(cfg->remote_user))
                        return err_set(err, ERR_PERMANENT, EINVAL,
                                       "THOPTER_REMOTE_USER: must be a user "
                                       "name of [A-Za-z0-9._-] (got \"%s\")",
                                       cfg->remote_user);
                if (!shell_name_is_safe(cfg->tmux_session) ||
                    strpbrk(cfg->tmux_session, ".:"))
                        return err_set(err, ERR_PERMANENT, EINVAL,
                                       "THOPTER_TMUX_SESSION: must be a name "
                                       "of [A-Za-z0-9_-] (got \"%s\")",
                                       cfg->tmux_session);
                if (cfg->remote_home[0] != '/' || cfg->remote_log[0] != '/')
                        return err_set(err, ERR_PERMANENT, EINVAL,
                                       "%s: must be an absolute path",
                                       cfg->remote_home[0] != '/'
                                           ? "THOPTER_REMOTE_HOME"
                                           : "THOPTER_REMOTE_LOG");
                for (int i = 0; i < 2; i++) {
                        const char *path =
                            i ? cfg->post_checkout_file : cfg->env_file;
                        if (path && *path && access(path, R_OK) != 0)
                                return err_set(err, ERR_PERMANENT, errno,
                                               "%s: cannot read %s: %s",
                                               i ? "THOPTER_POST_CHECKOUT_FILE"
                                                 : "THOPTER_ENV_FILE",
                                               path, strerror(errno));
                }
                if (check_regions(cfg->fallback_regions, err) == -1 ||
                    check_prompts_dir(cfg->prompts_dir, err) == -1)
                        return -1;
        }
        return 0;
}

const char *config_ssh_port_warning(const struct config *cfg) {
        if (cfg->ssh_port != 22)
                return NULL;
        return "THOPTER_SSH_PORT=22: on fly, port 22 of a machine's private "
               "(6PN) address is fly's own SSH server (hallpass, what `fly "
               "ssh console` reaches), so the consumer meets its host key and "
               "refuses the machine; the thopter image's sshd listens on 2222 "
               "(deploy/thopter-image/sshd_config): unset THOPTER_SSH_PORT or "
               "set it to 2222, and roll out that image";
}

/* *@p value from the file *@p file when that is set (not both). */
static int secret_from_file(struct config *cfg,
                            const char *env,
                            const char *file,
                            struct err *err) {
        const struct setting *s = NULL, *f = NULL;

        for (size_t i = 0; i < NSETTINGS; i++) {
                if (strcmp(settings[i].env, env) == 0)
                        s = &settings[i];
                else if (strcmp(settings[i].env, file) == 0)
                        f = &settings[i];
        }
        char *path = *(char **)((char *)cfg + f->off);
        char **slot = (char **)((char *)cfg + s->off);
        if (!path || !*path)
                return 0;
        if (*slot && **slot)
                return err_set(err, ERR_PERMANENT, EINVAL,
                               "%s and %s are both set: set one", env, file);
        char *value = secret_file_read(path, file, err);
        if (!value)
                return -1;
        int rc = set_value(cfg, s, value, file, err);
        secret_wipe(value, strlen(value));
        free(value);
        return rc;
}

/* The secrets and properties that come from files (contract 5.10). */
static int load_files(struct config *cfg, struct err *err) {
        char **props = NULL;
        int n = 0;

        if (secret_from_file(cfg, "FLY_DEPLOY_KEY", "FLY_DEPLOY_KEY_FILE",
                             err) == -1 ||
            secret_from_file(cfg, "GITHUB_INTEGRATION_JSON",
                             "GITHUB_INTEGRATION_JSON_FILE", err) == -1)
                return -1;
        if (!cfg->kafka_config_file || !*cfg->kafka_config_file)
                return 0;
        /* The file's properties first: -X given on the command line wins. */
        int rc =
            kafka_conf_read_file(cfg->kafka_config_file,
                                 "THOPTER_KAFKA_CONFIG_FILE", &props, &n, err);
        char **all =
            rc == 0 ? realloc(props, sizeof(char *) *
                                         (size_t)(n + cfg->n_kafka_props + 1))
                    : NULL;
        if (rc == 0 && !all)
                rc = err_oom(err, "THOPTER_KAFKA_CONFIG_FILE");
        if (rc == -1) {
                for (int i = 0; i < n; i++)
                        free(props[i]);
                free(props);
                return -1;
        }
        for (int i = 0; i < cfg->n_kafka_props; i++)
                all[n + i] = cfg->kafka_props[i];
        free(cfg->kafka_props);
        cfg->kafka_props = all;
        cfg->n_kafka_props += n;
        return 0;
}

int config_load(struct config *cfg, int argc, char **argv, struct err *err) {
        return config_load_role(cfg, ROLE_ALL, argc, argv, err);
}

int config_load_role(struct config *cfg,
                     enum config_role role,
                     int argc,
                     char **argv,
                     struct err *err) {
        memset(cfg, 0, sizeof(*cfg));
        cfg->role = role;
        for (size_t i = 0; i < NSETTINGS; i++) {
                const char *v = getenv(settings[i].env);
                if (v && *v) {
                        if (set_value(cfg, &settings[i], v, "the environment",
                                      err) == -1)
                                return -1;
                } else if (settings[i].def &&
                           set_value(cfg, &settings[i], settings[i].def,
                                     "the default", err) == -1) {
                        return -1;
                }
        }
        if (parse_args(cfg, argc, argv, err) == -1)
                return -1;
        if (cfg->show_help || cfg->show_version)
                return 0;
        if (load_files(cfg, err) == -1)
                return -1;
        if (validate(cfg, err) == -1)
                return -1;
        return 0;
}

void config_free(struct config *cfg) {
        for (size_t i = 0; i < NSETTINGS; i++) {
                if (settings[i].type != S_STR)
                        continue;
                char *v = *(char **)((char *)cfg + settings[i].off);
                if (settings[i].secret)
                        secret_free(v);
                else
                        free(v);
        }
        for (int i = 0; i < cfg->n_kafka_props; i++)
                free(cfg->kafka_props[i]);
        free(cfg->kafka_props);
        for (int i = 0; i < cfg->n_missing; i++)
                free(cfg->missing[i]);
        free(cfg->missing);
        for (int i = 0; cfg->repos && i < cfg->n_repos; i++) {
                free(cfg->repos[i].repository);
                secret_free(cfg->repos[i].pat);
                free(cfg->repos[i].user_name);
                free(cfg->repos[i].user_email);
        }
        free(cfg->repos);
        memset(cfg, 0, sizeof(*cfg));
}

const struct repo_cred *config_repo(const struct config *cfg,
                                    const char *repository) {
        for (int i = 0; i < cfg->n_repos; i++)
                if (strcmp(cfg->repos[i].repository, repository) == 0)
                        return &cfg->repos[i];
        return NULL;
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
                                if (strcmp(settings[i].env, *n) == 0)
                                        print_setting(out, &settings[i], 1);
        }
        for (size_t i = 0; i < NSETTINGS; i++) {
                if (in_a_group(settings[i].env))
                        continue;
                if (!other++)
                        fprintf(out, "\nOther:\n");
                print_setting(out, &settings[i], 1);
        }
        fprintf(out, "\nExit status: 0 after a graceful stop, 1 on failure, 2 "
                     "on a bad setting or usage.\n");
}

const char *config_role_name(enum config_role role) {
        return role == ROLE_PROVISION ? "provision"
               : role == ROLE_DESTROY ? "destroy"
               : role == ROLE_REAPER  ? "reaper"
                                      : "all";
}

void config_print_settings(FILE *out, const char *const *names) {
        for (; names && *names; names++)
                for (size_t i = 0; i < NSETTINGS; i++)
                        if (strcmp(settings[i].env, *names) == 0)
                                print_setting(out, &settings[i], 0);
}
