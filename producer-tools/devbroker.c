/* devbroker.c - thopter-devbroker: an embedded Kafka-protocol broker for
 * development and tests (librdkafka's mock cluster).
 *
 * Creates the four topics of contract section 1 with their recommended
 * partition counts, prints "bootstrap.servers=HOST:PORT" as its first line,
 * and runs until stdin closes or SIGTERM/SIGINT. Any process (kcat, the
 * consumer, kafkajs) can connect to it over TCP.
 */
#include "cli.h"
#include "devbroker_args.h"
#include "err.h"
#include "kafka_conf.h"
#include "log.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
        (void)sig;
        stop = 1;
}

static void usage(FILE *out) {
        fprintf(
            out,
            "Usage: thopter-devbroker [--brokers N] [--topic "
            "NAME:PARTITIONS]... [--no-stdin] [-X key=value]...\n"
            "\n"
            "Runs librdkafka's mock Kafka cluster as a broker for development "
            "and tests.\n"
            "Creates thopter.provision:1, thopter.destroy:6, thopter.dlq:1, "
            "thopter.events:3\n"
            "(topic names follow THOPTER_*_TOPIC when set) plus each --topic, "
            "prints\n"
            "bootstrap.servers=HOST:PORT[,…] on its first line, and runs until "
            "stdin closes\n"
            "(unless --no-stdin, or started in the background of a terminal) "
            "or "
            "it gets\nSIGTERM/SIGINT.\n"
            "\n"
            "Fault injection (for tests): one command per line on stdin; each "
            "is\n"
            "acknowledged by a line \"thopter-devbroker: ok: ...\" (or "
            "\"error: ...\") on stderr.\n"
            "  down [N]                     take broker N (default: every "
            "broker) down\n"
            "  up [N]                       bring broker N (default: every "
            "broker) back up\n"
            "  err APIKEY COUNT ERRCODE     the next COUNT requests of APIKEY "
            "(e.g. 8 = OffsetCommit,\n"
            "                               9 = OffsetFetch, 10 = "
            "FindCoordinator, 12 = Heartbeat)\n"
            "                               fail with Kafka error code ERRCODE "
            "(e.g. 7 REQUEST_TIMED_OUT,\n"
            "                               15 COORDINATOR_NOT_AVAILABLE, 16 "
            "NOT_COORDINATOR,\n"
            "                               27 REBALANCE_IN_PROGRESS; -195 = a "
            "dropped connection)\n"
            "  clear APIKEY                 forget the errors still queued for "
            "APIKEY\n"
            "  coordinator GROUP BROKERID   move the group coordinator of "
            "GROUP to broker BROKERID\n"
            "  txncoordinator ID BROKERID   the same for a transactional id\n"
            "  rtt N MS                     broker N answers MS milliseconds "
            "late (0 = normal)\n"
            "  leader TOPIC PARTITION N     make broker N the leader of TOPIC "
            "[PARTITION]\n"
            "Brokers are numbered 1 to --brokers.\n"
            "\n"
            "  --brokers N          number of mock brokers (default 1)\n"
            "  --topic NAME:PARTS   another topic to create (repeatable)\n"
            "  --no-stdin           do not stop when stdin closes\n"
            "  -X key=value         librdkafka property of the hosting handle\n"
            "  -h, --help           this text;  -V, --version  the version\n"
            "\n"
            "Not for production: the mock keeps everything in memory.\n");
}

/* Test control over stdin: one command per line, see usage(). */
static void
control(rd_kafka_mock_cluster_t *mc, int nbrokers, const char *line) {
        char cmd[32] = "", a[200] = "", b[200] = "", c[32] = "";
        int n = sscanf(line, "%31s %199s %199s %31s", cmd, a, b, c);
        rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
        char *end = NULL;

        if (n < 1)
                return;
        if (!strcmp(cmd, "down") || !strcmp(cmd, "up")) {
                int down = cmd[0] == 'd';
                int first = 1, last = nbrokers;
                if (n >= 2) {
                        first = last = (int)strtol(a, &end, 10);
                        if (*end || first < 1 || first > nbrokers) {
                                fprintf(stderr,
                                        "thopter-devbroker: error: %s: no "
                                        "broker \"%s\" (1 to %d)\n",
                                        cmd, a, nbrokers);
                                return;
                        }
                }
                for (int id = first; id <= last && !e; id++)
                        e = down ? rd_kafka_mock_broker_set_down(mc, id)
                                 : rd_kafka_mock_broker_set_up(mc, id);
                if (e)
                        fprintf(stderr, "thopter-devbroker: error: %s: %s\n",
                                cmd, rd_kafka_err2str(e));
                else if (n >= 2)
                        fprintf(stderr, "thopter-devbroker: ok: broker %d %s\n",
                                first, cmd);
                else
                        fprintf(stderr, "thopter-devbroker: brokers %s\n",
                                cmd); /* the historical line */
                return;
        } else if (!strcmp(cmd, "err") && n == 4) {
                int16_t apikey = (int16_t)atoi(a);
                int count = atoi(b), code = atoi(c);
                if (count < 1 || count > 1000) {
                        fprintf(stderr, "thopter-devbroker: error: err: COUNT "
                                        "must be 1 to 1000\n");
                        return;
                }
                rd_kafka_resp_err_t *errs =
                    malloc(sizeof(*errs) * (size_t)count);
                if (!errs)
                        return;
                for (int i = 0; i < count; i++)
                        errs[i] = (rd_kafka_resp_err_t)code;
                rd_kafka_mock_push_request_errors_array(mc, apikey,
                                                        (size_t)count, errs);
                free(errs);
                fprintf(
                    stderr,
                    "thopter-devbroker: ok: err apikey %d x%d code %d (%s)\n",
                    apikey, count, code,
                    rd_kafka_err2name((rd_kafka_resp_err_t)code));
                return;
        } else if (!strcmp(cmd, "clear") && n == 2) {
                rd_kafka_mock_clear_request_errors(mc, (int16_t)atoi(a));
                fprintf(stderr, "thopter-devbroker: ok: clear apikey %s\n", a);
                return;
        } else if ((!strcmp(cmd, "coordinator") ||
                    !strcmp(cmd, "txncoordinator")) &&
                   n == 3) {
                e = rd_kafka_mock_coordinator_set(
                    mc, cmd[0] == 'c' ? "group" : "transaction", a,
                    (int32_t)atoi(b));
        } else if (!strcmp(cmd, "rtt") && n == 3) {
                e = rd_kafka_mock_broker_set_rtt(mc, (int32_t)atoi(a), atoi(b));
        } else if (!strcmp(cmd, "leader") && n == 4) {
                e = rd_kafka_mock_partition_set_leader(mc, a, (int32_t)atoi(b),
                                                       (int32_t)atoi(c));
        } else {
                fprintf(stderr,
                        "thopter-devbroker: error: unknown command \"%s\" (see "
                        "--help)\n",
                        cmd);
                return;
        }
        if (e)
                fprintf(stderr, "thopter-devbroker: error: %s: %s\n", cmd,
                        rd_kafka_err2str(e));
        else
                fprintf(stderr, "thopter-devbroker: ok: %s %s %s%s%s\n", cmd, a,
                        b, n == 4 ? " " : "", n == 4 ? c : "");
}

/* Started in the background of an interactive shell ("thopter-devbroker &"),
 * a read of the terminal would stop the process (SIGTTIN, "Stopped (tty
 * input)"), and the terminal is not its input anyway: then stdin is not
 * watched, as with --no-stdin. */
static int stdin_is_background_tty(void) {
        if (!isatty(STDIN_FILENO))
                return 0;
        pid_t fg = tcgetpgrp(STDIN_FILENO);
        return fg != -1 && fg != getpgrp();
}

/* The four topics of contract section 1, with their recommended partition
 * counts, and those of --topic. @returns 0, or 1 when one of the four could
 * not be created (said on stderr). */
static int create_topics(rd_kafka_mock_cluster_t *mc,
                         const struct devbroker_args *a) {
        int replicas = a->nbrokers < 3 ? a->nbrokers : 3;
        struct {
                const char *name;
                int parts;
        } topics[] = {
            {cli_env("THOPTER_PROVISION_TOPIC", "thopter.provision"), 1},
            {cli_env("THOPTER_DESTROY_TOPIC", "thopter.destroy"), 6},
            {cli_env("THOPTER_DLQ_TOPIC", "thopter.dlq"), 1},
            {cli_env("THOPTER_EVENTS_TOPIC", "thopter.events"), 3},
        };
        int rc = 0;

        for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
                if (rd_kafka_mock_topic_create(mc, topics[i].name,
                                               topics[i].parts, replicas)) {
                        fprintf(
                            stderr,
                            "thopter-devbroker: could not create topic %s\n",
                            topics[i].name);
                        rc = 1;
                }
        }
        for (int i = 0; i < a->ntopics; i++)
                rd_kafka_mock_topic_create(mc, a->topics[i].name,
                                           a->topics[i].partitions, replicas);
        return rc;
}

/* Until SIGTERM/SIGINT, or stdin closes when @p watch_stdin: each line of
 * stdin is a control() command. */
static void serve(rd_kafka_mock_cluster_t *mc, int nbrokers, int watch_stdin) {
        char buf[1024];
        size_t used = 0;

        signal(SIGTERM, on_signal);
        signal(SIGINT, on_signal);
        signal(SIGPIPE, SIG_IGN);
        /* Moved to the background later (Ctrl-Z, bg): a read of the
         * terminal fails with EIO instead of stopping the process, and
         * stdin is no longer watched. */
        signal(SIGTTIN, SIG_IGN);
        while (!stop) {
                struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
                if (!watch_stdin) {
                        pause();
                        continue;
                }
                if (poll(&pfd, 1, 500) <= 0)
                        continue;
                /* Lines may arrive split or several per read. */
                ssize_t n =
                    read(STDIN_FILENO, buf + used, sizeof(buf) - 1 - used);
                if (n < 0 && errno == EIO) {
                        watch_stdin = 0;
                        continue;
                }
                if (n <= 0)
                        break;
                used += (size_t)n;
                buf[used] = '\0';
                char *nl, *line = buf;
                while ((nl = strchr(line, '\n'))) {
                        *nl = '\0';
                        control(mc, nbrokers, line);
                        line = nl + 1;
                }
                used = strlen(line);
                memmove(buf, line, used + 1);
                if (used == sizeof(buf) - 1) {
                        /* an overlong line: take it as it is */
                        control(mc, nbrokers, buf);
                        used = 0;
                }
        }
}

int main(int argc, char **argv) {
        static struct devbroker_args a;
        struct err err = {0};
        char errstr[512];
        int rc;

        rc = devbroker_args_parse(argc, argv, &a);
        if (rc != CLI_OK)
                return rc;
        if (a.help) {
                usage(stdout);
                return 0;
        }
        if (a.version) {
                printf("thopter-devbroker %s (librdkafka %s)\n",
                       THOPTER_VERSION, rd_kafka_version_str());
                return 0;
        }
        rd_kafka_conf_t *conf = kafka_conf_new(NULL, a.props, a.nprops, &err);
        if (!conf || kafka_conf_default(conf, a.props, a.nprops, "log_level",
                                        "3", &err) == -1) {
                fprintf(stderr, "thopter-devbroker: %s\n", err.msg);
                return 2;
        }
        rd_kafka_t *rk =
            rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "thopter-devbroker: %s\n", errstr);
                return 1;
        }
        rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, a.nbrokers);
        if (!mc) {
                fprintf(
                    stderr,
                    "thopter-devbroker: could not start the mock cluster\n");
                rd_kafka_destroy(rk);
                return 1;
        }
        rc = create_topics(mc, &a);
        if (a.watch_stdin && stdin_is_background_tty()) {
                fprintf(stderr, "thopter-devbroker: started in the background "
                                "of a terminal: not reading stdin (stop it "
                                "with kill %%1 or SIGTERM)\n");
                a.watch_stdin = 0;
        }
        if (rc == 0) {
                printf("bootstrap.servers=%s\n",
                       rd_kafka_mock_cluster_bootstraps(mc));
                fflush(stdout);
                serve(mc, a.nbrokers, a.watch_stdin);
        }
        rd_kafka_mock_cluster_destroy(mc);
        rd_kafka_destroy(rk);
        return rc;
}
