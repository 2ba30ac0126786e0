/* test_health_server.c - health_server.c over HTTP (libcurl) in process,
 * serving one Kafka loop that runs on librdkafka's mock cluster.
 *
 * /readyz answers 503 until the loop joined its group and 200 after;
 * /livez 200 while the poll thread ticks; /metrics the registry plus the
 * per-scrape series (lag, poll age, ready). Answers are kept for 1 s, so a
 * change is awaited with a deadline, never a sleep.
 */
#include "health_server.h"
#include "kafka_conf.h"
#include "kafka_loop.h"
#include "kafka_producer.h"
#include "metrics.h"
#include "test_helpers.h"

#include <curl/curl.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TOPIC "health.requests"

static int prepare(struct job *job, void *opaque, struct err *err) {
        (void)job;
        (void)opaque;
        (void)err;
        return 0;
}

static int run(struct job *job, void *opaque, struct err *err) {
        (void)job;
        (void)opaque;
        (void)err;
        return 0;
}

static void release(struct job *job, void *opaque) {
        (void)job;
        (void)opaque;
}

static rd_kafka_conf_t *conf_of(const char *brokers, char **props, int n) {
        struct err err = {0};
        rd_kafka_conf_t *conf = kafka_conf_new(brokers, props, n, &err);
        cr_assert(conf, "kafka_conf_new: %s", err.msg);
        return conf;
}

/* A port nobody listens on now (bound, read back, closed). */
static int free_port(void) {
        struct sockaddr_in a = {.sin_family = AF_INET};
        socklen_t len = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        cr_assert(fd >= 0);
        cr_assert(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
        cr_assert(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
        close(fd);
        return ntohs(a.sin_port);
}

struct answer {
        long status;
        char body[65536];
        size_t len;
};

static size_t collect(char *data, size_t size, size_t n, void *arg) {
        struct answer *a = arg;
        size_t k = size * n;
        if (a->len + k >= sizeof(a->body))
                k = sizeof(a->body) - 1 - a->len;
        memcpy(a->body + a->len, data, k);
        a->len += k;
        a->body[a->len] = '\0';
        return size * n;
}

static int port;

static void get(const char *method, const char *path, struct answer *a) {
        char url[128];
        CURL *c = curl_easy_init();

        memset(a, 0, sizeof(*a));
        cr_assert(c);
        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, test_ms(10000));
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
        CURLcode rc = curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->status);
        curl_easy_cleanup(c);
        cr_assert_eq(rc, CURLE_OK, "GET %s: %s", path, curl_easy_strerror(rc));
}

static struct kafka_loop *loop;

static void *loop_main(void *arg) {
        (void)arg;
        kafka_loop_run(loop);
        return NULL;
}

static int ready(void *arg) {
        struct answer *a = arg;
        get("GET", "/readyz", a);
        return a->status == 200;
}

/* /metrics until it has @p line (cached answers: up to about 1 s). */
struct want_line {
        struct answer a;
        const char *line;
};

static int has_line(void *arg) {
        struct want_line *w = arg;
        get("GET", "/metrics", &w->a);
        return w->a.status == 200 && strstr(w->a.body, w->line) != NULL;
}

Test(health_server,
     endpoints_answer_for_a_loop_on_the_mock_cluster,
     .timeout = 60) {
        char errstr[512], addr[64];
        char *mock[] = {"test.mock.num.brokers=1"};
        char *props[] = {"session.timeout.ms=6000", "heartbeat.interval.ms=500",
                         "fetch.wait.max.ms=10"};
        struct err err = {0};
        struct answer a;
        pthread_t t;

        metrics_reset();
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf_of(NULL, mock, 1),
                                      errstr, sizeof(errstr));
        cr_assert(rk, "%s", errstr);
        rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(rk);
        const char *brokers = rd_kafka_mock_cluster_bootstraps(mc);
        cr_assert_eq(rd_kafka_mock_topic_create(mc, TOPIC, 1, 1), 0);
        cr_assert_eq(rd_kafka_mock_topic_create(mc, "health.dlq", 1, 1), 0);
        cr_assert_eq(rd_kafka_mock_topic_create(mc, "health.events", 1, 1), 0);
        for (int i = 0; i < 3; i++)
                cr_assert_eq(
                    rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(TOPIC),
                                      RD_KAFKA_V_PARTITION(0),
                                      RD_KAFKA_V_VALUE("x", 1),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_END),
                    0);
        cr_assert_eq(rd_kafka_flush(rk, (int)test_ms(10000)), 0);

        struct kafka_producer *producer =
            kafka_producer_new(conf_of(brokers, NULL, 0), &err);
        cr_assert(producer, "%s", err.msg);
        struct job_handler h = {prepare, run, release, NULL};
        struct kafka_loop_opts o = {
            .name = "destroy",
            .topic = TOPIC,
            .group = "health-test",
            .max_in_flight = 1,
            .conf = conf_of(brokers, props, 3),
            .producer = producer,
            .dlq_topic = "health.dlq",
            .events_topic = "health.events",
            .drain_timeout_ms = 5000,
        };
        loop = kafka_loop_new(&o, &h, &err);
        cr_assert(loop, "%s", err.msg);

        port = free_port();
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
        struct kafka_loop *loops[1] = {loop};
        struct health_server *hs = health_server_start(addr, loops, 1, &err);
        cr_assert(hs, "health_server_start(%s): %s", addr, err.msg);

        /* Not subscribed yet: not ready, but alive. */
        get("GET", "/readyz", &a);
        cr_expect_eq(a.status, 503, "/readyz before the join: %ld %s", a.status,
                     a.body);
        cr_expect(strstr(a.body, "not yet joined") != NULL, "%s", a.body);
        get("GET", "/livez", &a);
        cr_expect_eq(a.status, 200);
        cr_expect_str_eq(a.body, "ok\n");

        cr_assert_eq(pthread_create(&t, NULL, loop_main, NULL), 0);
        cr_assert(test_wait_for(ready, &a, 20000), "/readyz never 200: %ld %s",
                  a.status, a.body);

        struct want_line w = {
            .line = "thopter_messages_finished_total{topic=\"" TOPIC "\"} 3"};
        cr_assert(test_wait_for(has_line, &w, 15000), "no `%s` in:\n%s", w.line,
                  w.a.body);
        w.line = "thopter_consumer_lag{topic=\"" TOPIC "\",partition=\"0\"} 0";
        cr_expect(test_wait_for(has_line, &w, 10000), "no `%s` in:\n%s", w.line,
                  w.a.body);
        w.line = "thopter_ready{loop=\"destroy\"} 1";
        cr_expect(test_wait_for(has_line, &w, 10000), "no `%s` in:\n%s", w.line,
                  w.a.body);
        cr_expect(strstr(w.a.body, "# TYPE thopter_messages_received_total "
                                   "counter") != NULL,
                  "%s", w.a.body);
        cr_expect(
            strstr(w.a.body, "thopter_poll_age_seconds{loop=\"destroy\"}"),
            "%s", w.a.body);

        get("GET", "/nope", &a);
        cr_expect_eq(a.status, 404);
        get("POST", "/metrics", &a);
        cr_expect_eq(a.status, 405);

        health_server_stop(hs);
        kafka_loop_stop(loop);
        pthread_join(t, NULL);
        kafka_producer_destroy(producer);
        kafka_loop_destroy(loop);
        rd_kafka_destroy(rk);
}
