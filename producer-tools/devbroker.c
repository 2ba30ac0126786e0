/* devbroker.c - thopter-devbroker: an embedded Kafka-protocol broker for
 * development and tests (librdkafka's mock cluster).
 *
 * Creates the four topics of contract section 1 with their recommended
 * partition counts, prints "bootstrap.servers=HOST:PORT" as its first line,
 * and runs until stdin closes or SIGTERM/SIGINT. Any process (kcat, the
 * consumer, kafkajs) can connect to it over TCP.
 */
#include "err.h"
#include "kafka_conf.h"
#include "log.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
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
        fprintf(out,
                "Usage: thopter-devbroker [--brokers N] [--topic NAME:PARTITIONS]... [--no-stdin] [-X key=value]...\n"
                "\n"
                "Runs librdkafka's mock Kafka cluster as a broker for development and tests.\n"
                "Creates thopter.provision:1, thopter.destroy:6, thopter.dlq:1, thopter.events:3\n"
                "(topic names follow THOPTER_*_TOPIC when set) plus each --topic, prints\n"
                "bootstrap.servers=HOST:PORT[,…] on its first line, and runs until stdin closes\n"
                "(unless --no-stdin) or it gets SIGTERM/SIGINT. A line \"down\" or \"up\" on stdin\n"
                "takes every broker down or brings it back (for tests of broker outages).\n"
                "\n"
                "  --brokers N          number of mock brokers (default 1)\n"
                "  --topic NAME:PARTS   another topic to create (repeatable)\n"
                "  --no-stdin           do not stop when stdin closes\n"
                "  -X key=value         librdkafka property of the hosting handle\n"
                "  -h, --help           this text;  -V, --version  the version\n"
                "\n"
                "Not for production: the mock keeps everything in memory.\n");
}

/* Test control over stdin: "down" / "up" takes every broker down or up. */
static void control(rd_kafka_mock_cluster_t *mc, int nbrokers, const char *line) {
        int down = strncmp(line, "down", 4) == 0;
        if (!down && strncmp(line, "up", 2) != 0)
                return;
        for (int b = 1; b <= nbrokers; b++) {
                if (down)
                        rd_kafka_mock_broker_set_down(mc, b);
                else
                        rd_kafka_mock_broker_set_up(mc, b);
        }
        fprintf(stderr, "thopter-devbroker: brokers %s\n", down ? "down" : "up");
}

static const char *env_or(const char *name, const char *def) {
        const char *v = getenv(name);
        return v && *v ? v : def;
}

int main(int argc, char **argv) {
        int nbrokers = 1, watch_stdin = 1;
        char *extra[64];
        int nextra = 0;
        char *props[64];
        int nprops = 0;
        struct err err = {0};
        char errstr[512];

        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
                        usage(stdout);
                        return 0;
                } else if (!strcmp(argv[i], "-V") || !strcmp(argv[i], "--version")) {
                        printf("thopter-devbroker %s (librdkafka %s)\n", THOPTER_VERSION, rd_kafka_version_str());
                        return 0;
                } else if (!strcmp(argv[i], "--brokers") && i + 1 < argc) {
                        nbrokers = atoi(argv[++i]);
                        if (nbrokers < 1 || nbrokers > 9) {
                                fprintf(stderr, "thopter-devbroker: --brokers: must be 1 to 9\n");
                                return 2;
                        }
                } else if (!strcmp(argv[i], "--topic") && i + 1 < argc && nextra < 64) {
                        extra[nextra++] = argv[++i];
                } else if (!strcmp(argv[i], "--no-stdin")) {
                        watch_stdin = 0;
                } else if (!strcmp(argv[i], "-X") && i + 1 < argc && nprops < 64) {
                        props[nprops++] = argv[++i];
                } else {
                        fprintf(stderr, "thopter-devbroker: unknown argument \"%s\" (see --help)\n", argv[i]);
                        return 2;
                }
        }

        rd_kafka_conf_t *conf = kafka_conf_new(NULL, props, nprops, &err);
        if (!conf || kafka_conf_default(conf, props, nprops, "log_level", "3", &err) == -1) {
                fprintf(stderr, "thopter-devbroker: %s\n", err.msg);
                return 2;
        }
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "thopter-devbroker: %s\n", errstr);
                return 1;
        }
        rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, nbrokers);
        if (!mc) {
                fprintf(stderr, "thopter-devbroker: could not start the mock cluster\n");
                rd_kafka_destroy(rk);
                return 1;
        }
        struct {
                const char *name;
                int parts;
        } topics[] = {
            {env_or("THOPTER_PROVISION_TOPIC", "thopter.provision"), 1},
            {env_or("THOPTER_DESTROY_TOPIC", "thopter.destroy"), 6},
            {env_or("THOPTER_DLQ_TOPIC", "thopter.dlq"), 1},
            {env_or("THOPTER_EVENTS_TOPIC", "thopter.events"), 3},
        };
        int rc = 0;
        for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
                if (rd_kafka_mock_topic_create(mc, topics[i].name, topics[i].parts, nbrokers < 3 ? nbrokers : 3)) {
                        fprintf(stderr, "thopter-devbroker: could not create topic %s\n", topics[i].name);
                        rc = 1;
                }
        }
        for (int i = 0; i < nextra; i++) {
                char name[256];
                const char *colon = strrchr(extra[i], ':');
                int parts = colon ? atoi(colon + 1) : 1;
                size_t len = colon ? (size_t)(colon - extra[i]) : strlen(extra[i]);
                if (len == 0 || len >= sizeof(name) || parts < 1) {
                        fprintf(stderr, "thopter-devbroker: --topic %s: expected NAME:PARTITIONS\n", extra[i]);
                        rc = 2;
                        continue;
                }
                memcpy(name, extra[i], len);
                name[len] = '\0';
                rd_kafka_mock_topic_create(mc, name, parts, nbrokers < 3 ? nbrokers : 3);
        }
        if (rc == 0) {
                printf("bootstrap.servers=%s\n", rd_kafka_mock_cluster_bootstraps(mc));
                fflush(stdout);
                signal(SIGTERM, on_signal);
                signal(SIGINT, on_signal);
                signal(SIGPIPE, SIG_IGN);
                while (!stop) {
                        struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
                        if (!watch_stdin) {
                                pause();
                                continue;
                        }
                        if (poll(&pfd, 1, 500) > 0) {
                                char buf[256];
                                ssize_t n = read(STDIN_FILENO, buf, sizeof(buf) - 1);
                                if (n <= 0)
                                        break;
                                buf[n] = '\0';
                                control(mc, nbrokers, buf);
                        }
                }
        }
        rd_kafka_mock_cluster_destroy(mc);
        rd_kafka_destroy(rk);
        return rc;
}
