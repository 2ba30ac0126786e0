/* config.c - settings from the environment, flags and files, validated.
 *
 * DESIGN
 * ------
 * One table lists every setting (config_table.c). Loading walks the table for
 * the environment, then argv for flags, then the files that hold secrets and
 * Kafka properties, then validates the result as a whole (what is required
 * depends on --role). Secrets are registered with the logger the moment they
 * are read. The only file that calls getenv().
 */
#include "config_int.h"
#include "duration.h"
#include "kafka_conf.h"
#include "listen_addr.h"
#include "log.h"
#include "secret.h"
#include "secret_file.h"
#include "shell_quote.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
        for (size_t i = 0; i < config_table_len; i++) {
                config_flag_name(config_table[i].env, buf, sizeof(buf));
                if (strlen(buf) == len && strncmp(buf, name, len) == 0)
                        return &config_table[i];
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
                        if (set_value(cfg, &config_table[0], val, "-b", err) ==
                            -1)
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
                        } else if (set_value(cfg, &config_table[0], val,
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

        for (size_t i = 0; i < config_table_len; i++) {
                const struct setting *s = &config_table[i];
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
        /* Serial provisions never come near fly's 1/s per app action on a
         * real machine's minute-long provision, and pacing them would slow
         * fast test rigs for nothing: auto paces when they run in parallel. */
        if (strcmp(cfg->fly_pacing_mode, "auto") == 0)
                cfg->fly_pacing = cfg->max_concurrent_provisions > 1;
        else if (strcmp(cfg->fly_pacing_mode, "1") == 0 ||
                 strcmp(cfg->fly_pacing_mode, "0") == 0)
                cfg->fly_pacing = cfg->fly_pacing_mode[0] == '1';
        else
                return err_set(err, ERR_PERMANENT, EINVAL,
                               "THOPTER_FLY_PACING: must be auto, 1 or 0 (got "
                               "\"%s\")",
                               cfg->fly_pacing_mode);
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

        for (size_t i = 0; i < config_table_len; i++) {
                if (strcmp(config_table[i].env, env) == 0)
                        s = &config_table[i];
                else if (strcmp(config_table[i].env, file) == 0)
                        f = &config_table[i];
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
        for (size_t i = 0; i < config_table_len; i++) {
                const char *v = getenv(config_table[i].env);
                if (v && *v) {
                        if (set_value(cfg, &config_table[i], v,
                                      "the environment", err) == -1)
                                return -1;
                } else if (config_table[i].def &&
                           set_value(cfg, &config_table[i], config_table[i].def,
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
        for (size_t i = 0; i < config_table_len; i++) {
                if (config_table[i].type != S_STR)
                        continue;
                char *v = *(char **)((char *)cfg + config_table[i].off);
                if (config_table[i].secret)
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

const char *config_role_name(enum config_role role) {
        return role == ROLE_PROVISION ? "provision"
               : role == ROLE_DESTROY ? "destroy"
               : role == ROLE_REAPER  ? "reaper"
                                      : "all";
}
