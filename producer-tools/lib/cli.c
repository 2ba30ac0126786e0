/* cli.c - see cli.h. */
#include "cli.h"
#include "clock.h"
#include "kafka_conf.h"
#include "kafka_log.h"

#include <pthread.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The program name for librdkafka's log callback, which has no opaque of
 * ours before rd_kafka_new(); a tool has one cli. */
static const char *log_prog = "thopter";

/* Properties read from files (-F, THOPTER_KAFKA_CONFIG_FILE): static, so they
 * stay reachable for the tool's whole life. */
static char **file_props;
static int nfile_props;

/* Read @p path's properties; *first is the index of the first new one. */
static int read_props_file(const struct cli *cli,
                           const char *path,
                           const char *what,
                           int *first) {
        struct err err = {0};

        *first = nfile_props;
        if (kafka_conf_read_file(path, what, &file_props, &nfile_props, &err) ==
            -1) {
                cli_usage_error(cli, "%s", err.msg);
                return -1;
        }
        if (cli->nprops + (nfile_props - *first) > CLI_PROPS_MAX) {
                cli_usage_error(cli, "more than %d properties", CLI_PROPS_MAX);
                return -1;
        }
        return 0;
}

void cli_init(struct cli *cli, const char *prog) {
        memset(cli, 0, sizeof(*cli));
        cli->prog = prog;
        cli->brokers = cli_env("KAFKA_BROKERS", NULL);
        log_prog = prog;
}

const char *cli_env(const char *name, const char *def) {
        const char *v = getenv(name);
        return v && *v ? v : def;
}

int cli_flag(const char *arg, const char *lng, const char *shrt) {
        return !strcmp(arg, lng) || (shrt && !strcmp(arg, shrt));
}

int cli_value(struct cli *cli,
              int argc,
              char **argv,
              int *i,
              const char *lng,
              const char *shrt,
              const char **val) {
        const char *arg = argv[*i];
        size_t n = strlen(lng);

        if (!strncmp(arg, lng, n) && arg[n] == '=') {
                *val = arg + n + 1;
                return 1;
        }
        if (!cli_flag(arg, lng, shrt))
                return 0;
        if (*i + 1 >= argc) {
                cli_usage_error(cli, "%s needs a value", arg);
                return -1;
        }
        *val = argv[++*i];
        return 1;
}

int cli_common(struct cli *cli, int argc, char **argv, int *i) {
        const char *arg = argv[*i];
        const char *val = NULL;
        int r;

        if (cli_flag(arg, "--help", "-h")) {
                cli->help = 1;
                return 1;
        }
        if (cli_flag(arg, "--version", "-V")) {
                cli->version = 1;
                return 1;
        }
        r = cli_value(cli, argc, argv, i, "--brokers", "-b", &val);
        if (r != 0) {
                if (r == 1)
                        cli->brokers = val;
                return r;
        }
        /* -F FILE: librdkafka properties, as kcat -F; where secrets go */
        r = cli_value(cli, argc, argv, i, "-F", NULL, &val);
        if (r != 0) {
                int first;
                if (r == -1 || read_props_file(cli, val, "-F", &first) == -1)
                        return -1;
                for (int k = first; k < nfile_props; k++)
                        cli->props[cli->nprops++] = file_props[k];
                return 1;
        }
        /* -X key=value, and kcat's glued form -Xkey=value */
        if (!strcmp(arg, "-X")) {
                if (*i + 1 >= argc) {
                        cli_usage_error(cli, "-X needs key=value");
                        return -1;
                }
                val = argv[++*i];
        } else if (!strncmp(arg, "-X", 2)) {
                val = arg + 2;
        } else {
                return 0;
        }
        if (!strchr(val, '=') || val[0] == '=') {
                cli_usage_error(cli, "-X %s: expected key=value", val);
                return -1;
        }
        /* Contract 5.10: refused, not scrubbed from argv afterwards (it was
         * readable until then, and stays in shell history). */
        if (kafka_conf_is_secret(val, (size_t)(strchr(val, '=') - val))) {
                cli_usage_error(cli,
                                "-X %.*s: a secret is never taken on the "
                                "command line, where every user of the host "
                                "can read it: put it in a librdkafka "
                                "properties file given with -F FILE or "
                                "THOPTER_KAFKA_CONFIG_FILE",
                                (int)(strchr(val, '=') - val), val);
                return -1;
        }
        if (cli->nprops >= CLI_PROPS_MAX) {
                cli_usage_error(cli, "more than %d -X properties",
                                CLI_PROPS_MAX);
                return -1;
        }
        cli->props[cli->nprops++] = (char *)val;
        return 1;
}

static void
vreport(const struct cli *cli, const char *fmt, va_list ap, const char *tail) {
        char msg[1024];
        vsnprintf(msg, sizeof(msg), fmt, ap);
        fprintf(stderr, "%s: %s%s%s%s\n", cli->prog, msg, tail ? " (see " : "",
                tail ? cli->prog : "", tail ? " --help)" : "");
}

int cli_usage_error(const struct cli *cli, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vreport(cli, fmt, ap, "help");
        va_end(ap);
        return CLI_USAGE;
}

int cli_fail(const struct cli *cli, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vreport(cli, fmt, ap, NULL);
        va_end(ap);
        return CLI_FAIL;
}

void cli_print_version(const struct cli *cli) {
        printf("%s %s (librdkafka %s)\n", cli->prog, THOPTER_VERSION,
               rd_kafka_version_str());
}

/* A command-line tool speaks plain text on stderr, as kcat does, not the
 * daemon's JSON log records; a line it already wrote is not repeated
 * (kafka_log.h), so the tool's own message stays visible. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kafka_log_seen log_seen; /* under log_lock */

static void
log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
        char key[KAFKA_LOG_KEY_MAX];
        long suppressed = 0;
        int write;

        kafka_log_key(buf, rd_kafka_name(rk), key, sizeof(key));
        pthread_mutex_lock(&log_lock);
        write = kafka_log_admit(&log_seen, key, level, clock_mono_ms(),
                                &suppressed);
        pthread_mutex_unlock(&log_lock);
        if (write)
                fprintf(stderr, "%s: kafka: %s%s: %s\n", log_prog,
                        level <= 3 ? "error: " : "", fac, buf);
}

int cli_kafka_default(const struct cli *cli,
                      rd_kafka_conf_t *conf,
                      const char *key,
                      const char *value,
                      struct err *err) {
        return kafka_conf_default(conf, (char *const *)cli->props, cli->nprops,
                                  key, value, err);
}

rd_kafka_conf_t *
cli_kafka_conf(struct cli *cli, rd_kafka_type_t type, struct err *err) {
        rd_kafka_conf_t *conf;

        if (!cli->brokers || !*cli->brokers) {
                err_set(
                    err, ERR_PERMANENT, 0,
                    "no Kafka brokers: pass -b HOST:PORT or set KAFKA_BROKERS");
                return NULL;
        }
        /* THOPTER_KAFKA_CONFIG_FILE first, so the command line wins. */
        const char *env_file = cli_env("THOPTER_KAFKA_CONFIG_FILE", NULL);
        if (env_file && !cli->env_file_read) {
                int first = nfile_props, k = 0;
                if (kafka_conf_read_file(env_file, "THOPTER_KAFKA_CONFIG_FILE",
                                         &file_props, &nfile_props, err) == -1)
                        return NULL;
                int added = nfile_props - first;
                if (cli->nprops + added > CLI_PROPS_MAX) {
                        err_set(err, ERR_PERMANENT, 0,
                                "more than %d properties", CLI_PROPS_MAX);
                        return NULL;
                }
                memmove(cli->props + added, cli->props,
                        sizeof(char *) * (size_t)cli->nprops);
                for (k = 0; k < added; k++)
                        cli->props[k] = file_props[first + k];
                cli->nprops += added;
                cli->env_file_read = 1;
        }
        conf = kafka_conf_new_for(type, cli->brokers, (char *const *)cli->props,
                                  cli->nprops, err);
        if (!conf)
                return NULL;
        rd_kafka_conf_set_log_cb(conf, log_cb);
        if (cli_kafka_default(cli, conf, "log_level", "3", err) == -1) {
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        return conf;
}
