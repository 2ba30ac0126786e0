/* reaper.c - thopter-reaper: find the thopters that should be gone and
 * publish destroy requests for them (contract sections 6 and 7). This file
 * is the program: the command line, the settings, the fly client and Kafka
 * handles, and the loop of passes; reap_pass.c is one pass.
 *
 * DESIGN
 * ------
 * list the app's machines (one fly call, retried like the consumer's) ->
 * read thopter.events to its end for the evidence of who owns each machine
 * (reap_events.h; without KAFKA_BROKERS nothing unmarked is an orphan) ->
 * decide for each (reap_rules.h; an idle check over SSH only for a machine
 * nothing else condemns) -> build each destroy request, validated by the
 * consumer's own request_parse_destroy() -> without --apply print them and
 * stop there; with --apply produce them (key thopterId, murmur2_random,
 * idempotent, acks=all) and wait for every acknowledgement -> one line per
 * machine, one summary line (reap_pass.h).
 *
 * The reaper destroys nothing itself: the destroy consumer does, with its
 * own guard (contract 5.7), retries and dead letters. So several reapers
 * may run at once: they publish the same requests, and a destroy of a
 * machine already gone succeeds. Every request of one pass carries the
 * requestId reap-<machine id>-<pass start, YYYYMMDDHHMM UTC>, so two
 * reapers in the same minute even publish identical requests.
 *
 * Settings come from the consumer's table (config.h, role ROLE_REAPER):
 * the same environment file serves both.
 */
#include "cli.h"
#include "clock.h"
#include "config.h"
#include "err.h"
#include "fly_client.h"
#include "fly_retry.h"
#include "kafka_conf.h"
#include "log.h"
#include "reap_idle.h"
#include "reap_pass.h"
#include "reap_rules.h"
#include "host_keys.h"
#include "secret.h"
#include "topic_check.h"

#include <librdkafka/rdkafka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROG            "thopter-reaper"
#define IDLE_TIMEOUT_MS 10000L

/* The settings thopter-reaper reads, in the order --help shows them. */
static const char *const reaper_settings[] = {
    "KAFKA_BROKERS",
    "THOPTER_DESTROY_TOPIC",
    "THOPTER_EVENTS_TOPIC",
    "APP_NAME",
    "FLY_DEPLOY_KEY",
    "FLY_API_BASE",
    "THOPTER_FLY_PROXY",
    "THOPTER_FLY_TIMEOUT",
    "THOPTER_FLY_RETRIES",
    "THOPTER_RETRY_BASE_MS",
    "THOPTER_RETRY_MAX_MS",
    "THOPTER_MAX_LIFETIME",
    "THOPTER_REAP_STOPPED_AFTER",
    "THOPTER_ORPHAN_GRACE",
    "THOPTER_IDLE_AFTER",
    "THOPTER_REAP_INTERVAL",
    "THOPTER_READY_TIMEOUT",
    "THOPTER_SSH_TIMEOUT",
    "THOPTER_SSH_KEY",
    "THOPTER_SSH_KNOWN_HOSTS",
    "THOPTER_SSH_HOST",
    "THOPTER_SSH_PORT",
    "THOPTER_SSH_USER",
    "THOPTER_REMOTE_USER",
    "THOPTER_TMUX_SESSION",
    "THOPTER_LOG_LEVEL",
    NULL,
};

static volatile sig_atomic_t stop_signals;

static void on_stop(int sig) {
        static const char msg[] = PROG ": stopping (again to exit at once)\n";
        (void)sig;
        if (++stop_signals > 1)
                _exit(1);
        if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
                /* nothing more to do */
        }
}

static void usage(FILE *out) {
        fprintf(
            out,
            "Usage: " PROG
            " [--apply] [--adopt] [--once] [-b BROKERS] [-X key=value]... "
            "[--SETTING VALUE]...\n"
            "\n"
            "Lists the fly app's machines and asks for the destruction of the "
            "thopters that\n"
            "should be gone, by publishing destroy requests (source "
            "\"reaper\", with a reason)\n"
            "for the destroy consumer to carry out:\n"
            "  lifetime  created longer ago than THOPTER_MAX_LIFETIME\n"
            "  stopped   stopped or failed for longer than "
            "THOPTER_REAP_STOPPED_AFTER (since updated_at)\n"
            "  orphan    no request owns it (no thopter_provisioned mark, no "
            "completed provision\n"
            "            event on THOPTER_EVENTS_TOPIC naming it, its request "
            "not in flight) and\n"
            "            older than THOPTER_ORPHAN_GRACE\n"
            "  idle      when THOPTER_IDLE_AFTER is set: no activity in its "
            "tmux session for that\n"
            "            long (asked over ssh; a machine that cannot be "
            "checked is kept)\n"
            "Never a machine whose name does not start with thopter- (the "
            "hub, Redis, Golden\n"
            "Claudes gc-*), nor one already being destroyed, nor one with "
            "no thopter metadata\n"
            "at all (the original hub's thopters: \"unknown\", kept until "
            "--adopt marks them).\n"
            "\n"
            "Without --apply it publishes nothing: it prints what it would "
            "destroy and why.\n"
            "Output: one line per machine, \"VERDICT ID NAME STATE: REASON\" "
            "(VERDICT: destroy,\n"
            "would-destroy, adopt, would-adopt, keep, unchecked, skip, "
            "failed), then one summary\n"
            "line.\n"
            "\n"
            "Options:\n"
            "  --apply          publish the destroy requests (to "
            "THOPTER_DESTROY_TOPIC)\n"
            "  --adopt          mark the thopters with no thopter metadata "
            "(thopter_provisioned=\n"
            "                   " REAP_ADOPTED_MARK "; with --apply): the "
            "rules judge them from then on\n"
            "  --once           one pass, then exit; otherwise a pass every "
            "THOPTER_REAP_INTERVAL\n"
            "                   until SIGTERM/SIGINT\n"
            "  --json           one JSON object per machine "
            "({\"verdict\",\"id\",\"name\",\"state\",\n"
            "                   \"reason\"}, and \"rule\", "
            "\"topic\"/\"partition\"/\"offset\" or \"error\" for a\n"
            "                   destroy), then one {\"summary\", ...}\n"
            "  -b, --brokers B  Kafka bootstrap servers (same as "
            "KAFKA_BROKERS)\n"
            "  -X key=value     any librdkafka property (repeatable), as kcat "
            "does\n"
            "  -h, --help       this text\n"
            "  -V, --version    print the version\n"
            "\n"
            "Settings (environment variable, or the flag shown; durations "
            "like 72h, 30m, 90s,\n"
            "1h30m, or off):\n");
        config_print_settings(out, reaper_settings);
        fprintf(out,
                "\n"
                "Defaults of the producer: partitioner=murmur2_random (as "
                "kafkajs), acks=all,\n"
                "enable.idempotence=true, message.timeout.ms=30000; each can "
                "be changed with -X.\n"
                "Exit status: 0 success (with --once: the pass completed and "
                "every request was\n"
                "acknowledged; without: a graceful stop), 1 failure, 2 bad "
                "usage or setting.\n");
}

/* ------------------------------------------------------------------ */
/* The command line */

struct args {
        int apply, once, json, adopt;
        char **argv; /* for config_load_role(): the rest, -Xk=v split */
        int argc;
};

static int is_setting_flag(const char *name, size_t len) {
        char buf[64];
        if (len == 7 && strncmp(name, "brokers", 7) == 0)
                return 1;
        for (size_t i = 0; reaper_settings[i]; i++) {
                config_flag_name(reaper_settings[i], buf, sizeof(buf));
                if (strlen(buf) == len && strncmp(buf, name, len) == 0)
                        return 1;
        }
        return 0;
}

/* Takes --apply and --once; refuses any option the reaper does not read
 * (the settings table is the consumer's too); passes the rest on. */
static int parse_args(int argc, char **argv, struct args *a) {
        a->argv = calloc((size_t)argc * 2 + 1, sizeof(char *));
        if (!a->argv) {
                fprintf(stderr, PROG ": out of memory\n");
                return -1;
        }
        a->argv[a->argc++] = argv[0];
        for (int i = 1; i < argc; i++) {
                const char *arg = argv[i];
                if (!strcmp(arg, "--apply")) {
                        a->apply = 1;
                } else if (!strcmp(arg, "--once")) {
                        a->once = 1;
                } else if (!strcmp(arg, "--json")) {
                        a->json = 1;
                } else if (!strcmp(arg, "--adopt")) {
                        a->adopt = 1;
                } else if (!strcmp(arg, "-h") || !strcmp(arg, "--help") ||
                           !strcmp(arg, "-V") || !strcmp(arg, "--version")) {
                        a->argv[a->argc++] = argv[i];
                } else if (!strncmp(arg, "-X", 2) && arg[2]) {
                        /* kcat's glued form */
                        a->argv[a->argc++] = "-X";
                        a->argv[a->argc++] = argv[i] + 2;
                } else if (!strcmp(arg, "-b") || !strcmp(arg, "-X")) {
                        a->argv[a->argc++] = argv[i];
                        if (i + 1 < argc)
                                a->argv[a->argc++] = argv[++i];
                } else if (!strncmp(arg, "--", 2)) {
                        const char *eq = strchr(arg + 2, '=');
                        size_t len =
                            eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
                        if (!is_setting_flag(arg + 2, len)) {
                                fprintf(stderr,
                                        PROG
                                        ": unknown option \"%.*s\" (see " PROG
                                        " --help)\n",
                                        (int)len + 2, arg);
                                return -1;
                        }
                        a->argv[a->argc++] = argv[i];
                        if (!eq && i + 1 < argc)
                                a->argv[a->argc++] = argv[++i];
                } else {
                        fprintf(stderr,
                                PROG ": unexpected argument \"%s\" (see " PROG
                                     " --help)\n",
                                arg);
                        return -1;
                }
        }
        return 0;
}

/* ------------------------------------------------------------------ */
/* Set-up */

struct reaper {
        struct config cfg;
        struct reap_settings rs;
        struct args args;
        struct fly_client *fly;
        struct fly_retry retry;
        struct reap_idle_opts idle;
        unsigned char *secret;
        size_t secret_len;
        rd_kafka_t *rk;
        rd_kafka_t *events_rk; /* NULL without KAFKA_BROKERS */
        const char *topic;
};


/* The tools' Kafka settings from the reaper's configuration: its brokers
 * and -X properties (config_load() already read THOPTER_KAFKA_CONFIG_FILE). */
static int
cli_of_config(const struct reaper *r, struct cli *cli, struct err *err) {
        cli_init(cli, PROG);
        cli->brokers = r->cfg.kafka_brokers;
        if (r->cfg.n_kafka_props > CLI_PROPS_MAX)
                return err_set(err, ERR_PERMANENT, 0,
                               "more than %d -X properties", CLI_PROPS_MAX);
        for (int i = 0; i < r->cfg.n_kafka_props; i++)
                cli->props[cli->nprops++] = r->cfg.kafka_props[i];
        cli->env_file_read = 1;
        return 0;
}

static int make_producer(struct reaper *r, struct err *err) {
        struct cli cli;
        char errstr[512];
        rd_kafka_conf_t *conf;

        if (cli_of_config(r, &cli, err) == -1)
                return -1;
        conf = cli_kafka_conf(&cli, RD_KAFKA_PRODUCER, err);
        if (!conf)
                return -1;
        if (cli_kafka_default(&cli, conf, "partitioner", "murmur2_random",
                              err) == -1 ||
            cli_kafka_default(&cli, conf, "enable.idempotence", "true", err) ==
                -1 ||
            cli_kafka_default(&cli, conf, "acks", "all", err) == -1 ||
            cli_kafka_default(&cli, conf, "message.timeout.ms", "30000", err) ==
                -1 ||
            cli_kafka_default(&cli, conf, "linger.ms", "5", err) == -1) {
                rd_kafka_conf_destroy(conf);
                return -1;
        }
        rd_kafka_conf_set_dr_msg_cb(conf, reap_pass_delivery);
        r->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!r->rk) {
                rd_kafka_conf_destroy(conf);
                return err_set(err, ERR_PERMANENT, 0, "%s", errstr);
        }
        return 0;
}

/* A reader of thopter.events: assign() only, nothing committed. */
static int make_events_reader(struct reaper *r, struct err *err) {
        struct cli cli;
        char errstr[512];
        rd_kafka_conf_t *conf;

        if (cli_of_config(r, &cli, err) == -1)
                return -1;
        conf = cli_kafka_conf(&cli, RD_KAFKA_CONSUMER, err);
        if (!conf)
                return -1;
        if (cli_kafka_default(&cli, conf, "group.id", "thopter-reaper-reader",
                              err) == -1 ||
            cli_kafka_default(&cli, conf, "enable.auto.commit", "false", err) ==
                -1 ||
            cli_kafka_default(&cli, conf, "enable.auto.offset.store", "false",
                              err) == -1 ||
            kafka_conf_set(conf, "enable.partition.eof", "true", err) == -1) {
                rd_kafka_conf_destroy(conf);
                return -1;
        }
        r->events_rk =
            rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
        if (!r->events_rk) {
                rd_kafka_conf_destroy(conf);
                return err_set(err, ERR_PERMANENT, 0, "%s", errstr);
        }
        rd_kafka_poll_set_consumer(r->events_rk);
        return 0;
}

/* @returns CLI_OK to go on (-1 in *done: nothing to do), or an exit code. */
static int setup(struct reaper *r, int argc, char **argv, int *done) {
        struct err err = {0};
        char warning[256];

        *done = 1;
        if (parse_args(argc, argv, &r->args) == -1)
                return CLI_USAGE;
        if (config_load_role(&r->cfg, ROLE_REAPER, r->args.argc, r->args.argv,
                             &err) == -1) {
                fprintf(stderr, PROG ": %s\n", err.msg);
                return CLI_USAGE;
        }
        if (r->cfg.show_help) {
                usage(stdout);
                return CLI_OK;
        }
        if (r->cfg.show_version) {
                printf(PROG " %s (librdkafka %s)\n", THOPTER_VERSION,
                       rd_kafka_version_str());
                return CLI_OK;
        }
        if (reap_settings_load(&r->cfg, r->args.apply, &r->rs, warning,
                               sizeof(warning), &err) == -1) {
                fprintf(stderr, PROG ": %s\n", err.msg);
                return CLI_USAGE;
        }
        r->rs.adopt = r->args.adopt;
        if (warning[0])
                fprintf(stderr, PROG ": warning: %s\n", warning);
        enum log_level lvl = LOG_INFO;
        log_level_parse(r->cfg.log_level, &lvl);
        log_set_level(lvl);

        if (r->rs.idle_after_s && config_ssh_port_warning(&r->cfg))
                fprintf(stderr, PROG ": warning: %s\n",
                        config_ssh_port_warning(&r->cfg));
        if (r->rs.idle_after_s) {
                r->secret =
                    host_keys_read_file(r->cfg.ssh_key, &r->secret_len, &err);
                if (!r->secret) {
                        fprintf(stderr, PROG ": THOPTER_SSH_KEY: %s\n",
                                err.msg);
                        return CLI_USAGE;
                }
        }
        r->idle = (struct reap_idle_opts){
            .host_template = r->cfg.ssh_host,
            .app = r->cfg.app_name,
            .port = r->cfg.ssh_port,
            .user = r->cfg.ssh_user,
            .key_path = r->cfg.ssh_key,
            .known_hosts = r->cfg.ssh_known_hosts,
            .secret = r->secret,
            .secret_len = r->secret_len,
            .remote_user = r->cfg.remote_user,
            .tmux_session = r->cfg.tmux_session,
            .timeout_ms = IDLE_TIMEOUT_MS,
        };
        r->retry = (struct fly_retry){
            .max_attempts = r->cfg.fly_retries,
            .base_ms = r->cfg.retry_base_ms,
            .max_ms = r->cfg.retry_max_ms,
        };
        struct fly_client_opts fo = {
            .base_url = r->cfg.fly_api_base,
            .app = r->cfg.app_name,
            .token = r->cfg.fly_deploy_key,
            .timeout_ms = r->cfg.fly_timeout_s * 1000L,
            .proxy = r->cfg.fly_proxy,
        };
        r->fly = fly_client_new(&fo, &err);
        if (!r->fly) {
                fprintf(stderr, PROG ": %s\n", err.msg);
                return CLI_FAIL;
        }
        r->topic = r->cfg.destroy_topic;
        if (r->args.apply && make_producer(r, &err) == -1) {
                fprintf(stderr, PROG ": %s\n", err.msg);
                return CLI_USAGE;
        }
        /* A misspelt topic is refused, never auto-created by the first
         * destroy request; brokers that do not answer yet are the publish
         * step's concern (its failures are reported per pass). */
        if (r->args.apply && topic_check(r->rk, &r->topic, 1,
                                         "THOPTER_DESTROY_TOPIC", &err) == -1) {
                fprintf(stderr, PROG ": %s%s\n", err.msg,
                        err.kind == ERR_TRANSIENT ? "; going on" : "");
                if (err.kind != ERR_TRANSIENT)
                        return CLI_FAIL;
        }
        if (r->cfg.kafka_brokers && *r->cfg.kafka_brokers &&
            make_events_reader(r, &err) == -1) {
                fprintf(stderr, PROG ": %s\n", err.msg);
                return CLI_USAGE;
        }
        *done = 0;
        return CLI_OK;
}

static void teardown(struct reaper *r) {
        if (r->events_rk) {
                rd_kafka_consumer_close(r->events_rk);
                rd_kafka_destroy(r->events_rk);
        }
        if (r->rk) {
                rd_kafka_flush(r->rk, 10000);
                rd_kafka_destroy(r->rk);
        }
        fly_client_destroy(r->fly);
        if (r->secret) {
                secret_wipe(r->secret, r->secret_len);
                free(r->secret);
        }
        free(r->args.argv);
        config_free(&r->cfg);
}

int main(int argc, char **argv) {
        static struct reaper r;
        struct sigaction sa;
        int done = 0, rc;

        rc = setup(&r, argc, argv, &done);
        if (done) {
                teardown(&r);
                return rc;
        }
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_stop; /* no SA_RESTART: waits end at once */
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);

        struct reap_pass pass = {
            .apply = r.args.apply,
            .json = r.args.json,
            .adopt = r.args.adopt,
            .rs = &r.rs,
            .fly = r.fly,
            .retry = &r.retry,
            .idle = &r.idle,
            .producer = r.rk,
            .events = r.events_rk,
            .destroy_topic = r.topic,
            .events_topic = r.cfg.events_topic,
            .app = r.cfg.app_name,
            .stop = &stop_signals,
        };
        if (r.args.once) {
                rc = reap_pass_run(&pass) == 0 ? CLI_OK : CLI_FAIL;
        } else {
                char every[32];
                reap_format_duration(r.rs.interval_s, every, sizeof(every));
                fprintf(
                    stderr, PROG ": %s: a pass every %s until SIGTERM/SIGINT\n",
                    r.args.apply ? "publishing destroy requests" : "dry run",
                    every);
                while (!stop_signals) {
                        int64_t next =
                            clock_mono_ms() + r.rs.interval_s * 1000LL;
                        /* A failed pass is reported; the next one tries
                         * again. */
                        reap_pass_run(&pass);
                        while (!stop_signals && clock_mono_ms() < next)
                                clock_sleep_ms(200);
                }
                fprintf(stderr, PROG ": stopped\n");
                rc = CLI_OK;
        }
        teardown(&r);
        return rc;
}
