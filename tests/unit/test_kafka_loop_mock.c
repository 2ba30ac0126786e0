/* test_kafka_loop_mock.c - the Kafka loop (kafka_loop.c, kafka_commit.c,
 * kafka_workers.c, kafka_finish.c, kafka_job.c) in process, over
 * librdkafka's mock cluster, with a handler that only counts.
 *
 * Each test makes its own cluster (test.mock.num.brokers on a producer that
 * also writes the test's records), a kafka_producer for the dead letters and
 * events, and a loop run on a thread of its own, as consumer.c does. What
 * the loop committed is read with rd_kafka_committed() on a separate handle
 * of the same group, and dead letters are read back from the DLQ topic.
 * The mock's first group join takes about 3 s; every wait is a deadline.
 */
#include "clock.h"
#include "kafka_conf.h"
#include "kafka_loop.h"
#include "kafka_producer.h"
#include "metrics.h"
#include "test_helpers.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOPIC  "requests"
#define DLQ    "requests.dlq"
#define EVENTS "requests.events"
#define GROUP  "loop-test"

#define MAX_RECORDS 64
#define MAX_KEYS    8

/* What the handler saw; shared by the workers and the test thread. */
struct seen {
        atomic_int handled[MAX_RECORDS]; /* per record number */
        atomic_int running;
        atomic_int max_running;
        atomic_int key_running[MAX_KEYS];
        atomic_int key_overlap; /* a key ran twice at once */
        atomic_int entered;     /* handler runs started */
        atomic_int gate_closed; /* record 0 waits while set */
        atomic_int gate_waiting;
        long work_ms;
};

static struct seen seen;

/* A record's value is "<n> <key> <ok|fail>"; invalid is anything else. */
struct rec {
        int n, key;
        int fail;
};

static int parse(const struct job *job, struct rec *r) {
        char word[8] = "";
        if (!job->rec.value ||
            sscanf(job->rec.value, "%d %d %7s", &r->n, &r->key, word) != 3 ||
            r->n < 0 || r->n >= MAX_RECORDS || r->key < 0 || r->key >= MAX_KEYS)
                return -1;
        r->fail = strcmp(word, "fail") == 0;
        return 0;
}

static int prepare(struct job *job, void *opaque, struct err *err) {
        struct rec r;
        (void)opaque;
        if (parse(job, &r) == -1) {
                err_set(err, ERR_PERMANENT, 0, "not a test record");
                return err_classify(err, ERRC_INVALID_REQUEST, "validate");
        }
        snprintf(job->request_id, sizeof(job->request_id), "req-%d", r.n);
        snprintf(job->exclusive_key, sizeof(job->exclusive_key), "key-%d",
                 r.key);
        return 0;
}

static void raise_max(atomic_int *max, int v) {
        int cur = atomic_load(max);
        while (v > cur && !atomic_compare_exchange_weak(max, &cur, v))
                ;
}

static int run(struct job *job, void *opaque, struct err *err) {
        struct rec r;
        (void)opaque;
        cr_assert(parse(job, &r) == 0, "run() of a record prepare() refused");
        atomic_fetch_add(&seen.entered, 1);
        raise_max(&seen.max_running, atomic_fetch_add(&seen.running, 1) + 1);
        if (atomic_fetch_add(&seen.key_running[r.key], 1) != 0)
                atomic_store(&seen.key_overlap, 1);
        if (r.n == 0 && atomic_load(&seen.gate_closed)) {
                atomic_store(&seen.gate_waiting, 1);
                while (atomic_load(&seen.gate_closed) && !job_cancelled(job))
                        clock_sleep_ms(1);
        }
        if (seen.work_ms)
                clock_sleep_ms(seen.work_ms);
        atomic_fetch_add(&seen.handled[r.n], 1);
        atomic_fetch_sub(&seen.key_running[r.key], 1);
        atomic_fetch_sub(&seen.running, 1);
        if (r.fail) {
                err_set(err, ERR_PERMANENT, 422, "record %d refused", r.n);
                return err_classify(err, ERRC_FLY_REJECTED, "delete");
        }
        return 0;
}

static void release(struct job *job, void *opaque) {
        (void)job;
        (void)opaque;
}

/* One test's world. */
struct world {
        rd_kafka_t *rk; /* the producer that owns the mock cluster */
        char brokers[256];
        struct kafka_producer *producer;
        struct kafka_loop *loop;
        rd_kafka_t *reader; /* rd_kafka_committed() of the group */
        int partitions;
        pthread_t thread;
        enum kafka_loop_exit exit;
        int running;
};

static void *loop_main(void *arg) {
        struct world *w = arg;
        w->exit = kafka_loop_run(w->loop);
        return NULL;
}

static rd_kafka_conf_t *conf_of(const char *brokers, char **props, int n) {
        struct err err = {0};
        rd_kafka_conf_t *conf = kafka_conf_new(brokers, props, n, &err);
        cr_assert(conf, "kafka_conf_new: %s", err.msg);
        return conf;
}

static void
world_start(struct world *w, int partitions, int max_in_flight, int prefetch) {
        char errstr[512];
        char *mock[] = {"test.mock.num.brokers=1"};
        struct err err = {0};

        memset(&seen, 0, sizeof(seen));
        memset(w, 0, sizeof(*w));
        metrics_reset();
        w->partitions = partitions;
        w->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf_of(NULL, mock, 1), errstr,
                             sizeof(errstr));
        cr_assert(w->rk, "mock producer: %s", errstr);
        rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(w->rk);
        cr_assert(mc);
        snprintf(w->brokers, sizeof(w->brokers), "%s",
                 rd_kafka_mock_cluster_bootstraps(mc));
        cr_assert_eq(rd_kafka_mock_topic_create(mc, TOPIC, partitions, 1), 0);
        cr_assert_eq(rd_kafka_mock_topic_create(mc, DLQ, 1, 1), 0);
        cr_assert_eq(rd_kafka_mock_topic_create(mc, EVENTS, 1, 1), 0);

        w->producer = kafka_producer_new(conf_of(w->brokers, NULL, 0), &err);
        cr_assert(w->producer, "kafka_producer_new: %s", err.msg);

        /* A short session: a rejoin on the mock waits session.timeout.ms. */
        char *props[] = {"session.timeout.ms=6000", "heartbeat.interval.ms=500",
                         "fetch.wait.max.ms=10"};
        struct job_handler h = {prepare, run, release, NULL};
        struct kafka_loop_opts o = {
            .name = "test",
            .topic = TOPIC,
            .group = GROUP,
            .max_in_flight = max_in_flight,
            .prefetch_high = prefetch,
            .prefetch_low = prefetch / 2,
            .conf = conf_of(w->brokers, props, 3),
            .producer = w->producer,
            .dlq_topic = DLQ,
            .events_topic = EVENTS,
            .drain_timeout_ms = 5000,
        };
        w->loop = kafka_loop_new(&o, &h, &err);
        cr_assert(w->loop, "kafka_loop_new: %s", err.msg);
        cr_assert_eq(pthread_create(&w->thread, NULL, loop_main, w), 0);
        w->running = 1;

        char *rprops[] = {"group.id=" GROUP};
        w->reader =
            rd_kafka_new(RD_KAFKA_CONSUMER, conf_of(w->brokers, rprops, 1),
                         errstr, sizeof(errstr));
        cr_assert(w->reader, "%s", errstr);
}

static enum kafka_loop_exit world_stop(struct world *w) {
        kafka_loop_stop(w->loop);
        pthread_join(w->thread, NULL);
        w->running = 0;
        kafka_producer_destroy(w->producer);
        kafka_loop_destroy(w->loop);
        rd_kafka_destroy(w->reader);
        rd_kafka_destroy(w->rk);
        return w->exit;
}

/* Record n with key k, on partition k % partitions (records with one key
 * share a partition, as requests partitioned by key do). */
static void produce(struct world *w, int n, int key, const char *what) {
        char value[64], k[16];
        snprintf(value, sizeof(value), "%d %d %s", n, key, what);
        snprintf(k, sizeof(k), "key-%d", key);
        rd_kafka_resp_err_t e = rd_kafka_producev(
            w->rk, RD_KAFKA_V_TOPIC(TOPIC),
            RD_KAFKA_V_PARTITION(key % w->partitions),
            RD_KAFKA_V_KEY(k, strlen(k)),
            RD_KAFKA_V_VALUE(value, strlen(value)),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        cr_assert_eq(e, 0, "produce: %s", rd_kafka_err2str(e));
}

static void produce_raw(struct world *w, const char *value) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            w->rk, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_PARTITION(0),
            RD_KAFKA_V_VALUE((void *)value, strlen(value)),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        cr_assert_eq(e, 0, "produce: %s", rd_kafka_err2str(e));
}

static void flush(struct world *w) {
        cr_assert_eq(rd_kafka_flush(w->rk, (int)test_ms(10000)), 0,
                     "the mock did not take the records");
}

/* The group's committed offset of each partition, asked on a handle of its
 * own (never the loop's). RD_KAFKA_OFFSET_INVALID when nothing is. */
static void committed(struct world *w, int partitions, int64_t *out) {
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(partitions);
        for (int p = 0; p < partitions; p++)
                rd_kafka_topic_partition_list_add(l, TOPIC, p);
        rd_kafka_resp_err_t e =
            rd_kafka_committed(w->reader, l, (int)test_ms(5000));
        cr_assert_eq(e, 0, "committed: %s", rd_kafka_err2str(e));
        for (int p = 0; p < partitions; p++)
                out[p] = l->elems[p].offset;
        rd_kafka_topic_partition_list_destroy(l);
}

/* The high watermark of each partition: what "everything committed" is. */
static int64_t high(struct world *w, const char *topic, int32_t partition) {
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(
            w->rk, topic, partition, &lo, &hi, (int)test_ms(5000));
        cr_assert_eq(e, 0, "watermarks: %s", rd_kafka_err2str(e));
        return hi;
}

struct commit_wait {
        struct world *w;
        int partitions;
        int64_t want[8];
};

static int all_committed(void *arg) {
        struct commit_wait *cw = arg;
        int64_t got[8];
        committed(cw->w, cw->partitions, got);
        for (int p = 0; p < cw->partitions; p++)
                if (got[p] != cw->want[p] && (cw->want[p] || got[p] >= 0))
                        return 0;
        return 1;
}

static int handled_all(void *arg) {
        int n = *(int *)arg;
        for (int i = 0; i < n; i++)
                if (atomic_load(&seen.handled[i]) == 0)
                        return 0;
        return 1;
}

static int gate_reached(void *arg) {
        (void)arg;
        return atomic_load(&seen.gate_waiting);
}

static double finished(void) {
        return metrics_get(M_MESSAGES_FINISHED, "topic=\"" TOPIC "\"");
}

static int two_finished(void *arg) {
        (void)arg;
        return finished() >= 2;
}

Test(kafka_loop_mock,
     each_record_once_in_flight_bounded_keys_exclusive_all_committed,
     .timeout = 60) {
        enum { N = 40, PARTS = 2, IN_FLIGHT = 3 };
        struct world w;

        world_start(&w, PARTS, IN_FLIGHT, 8);
        seen.work_ms = 5;
        for (int i = 0; i < N; i++)
                produce(&w, i, i % 4, "ok");
        flush(&w);

        int n = N;
        cr_assert(test_wait_for(handled_all, &n, 20000),
                  "not every record was handled within 20 s");
        struct commit_wait cw = {&w, PARTS, {0}};
        for (int p = 0; p < PARTS; p++)
                cw.want[p] = high(&w, TOPIC, p);
        cr_expect_eq(cw.want[0], N / 2);
        cr_expect_eq(cw.want[1], N / 2);
        cr_assert(test_wait_for(all_committed, &cw, 10000),
                  "the loop did not commit every partition's end");
        cr_expect_eq(world_stop(&w), KAFKA_LOOP_DRAINED);

        for (int i = 0; i < N; i++)
                cr_expect_eq(atomic_load(&seen.handled[i]), 1,
                             "record %d handled %d times", i,
                             atomic_load(&seen.handled[i]));
        cr_expect_leq(atomic_load(&seen.max_running), IN_FLIGHT,
                      "%d ran at once, max_in_flight is %d",
                      atomic_load(&seen.max_running), IN_FLIGHT);
        cr_expect_geq(atomic_load(&seen.max_running), 2,
                      "the workers never ran in parallel");
        cr_expect_eq(atomic_load(&seen.key_overlap), 0,
                     "two records with one key ran at once");
}

Test(kafka_loop_mock,
     commit_waits_for_the_handler_of_the_first_record,
     .timeout = 60) {
        struct world w;
        int64_t got[1];

        world_start(&w, 1, 2, 0);
        atomic_store(&seen.gate_closed, 1);
        produce(&w, 0, 0, "ok");
        produce(&w, 1, 1, "ok");
        produce(&w, 2, 2, "ok");
        flush(&w);

        cr_assert(test_wait_for(gate_reached, NULL, 20000),
                  "record 0 never reached its handler");
        /* Records 1 and 2 finish (final events acknowledged) while record 0
         * is still in its handler: nothing may be committed past it. */
        cr_assert(test_wait_for(two_finished, NULL, 10000),
                  "records 1 and 2 did not finish");
        cr_expect_eq(atomic_load(&seen.handled[0]), 0);
        committed(&w, 1, got);
        cr_expect(got[0] < 0, "committed @%lld while record 0 still runs",
                  (long long)got[0]);

        atomic_store(&seen.gate_closed, 0);
        struct commit_wait cw = {&w, 1, {3}};
        cr_assert(test_wait_for(all_committed, &cw, 10000),
                  "offset 3 not committed after the handler returned");
        cr_expect_eq(world_stop(&w), KAFKA_LOOP_DRAINED);
        for (int i = 0; i < 3; i++)
                cr_expect_eq(atomic_load(&seen.handled[i]), 1);
}

/* A dead letter as read back: its value and some of its headers. */
struct dead_letter {
        char value[64];
        char cls[32], step[32], offset[24];
};

static const char *header(const rd_kafka_message_t *m, const char *name) {
        rd_kafka_headers_t *hs = NULL;
        const void *v = NULL;
        size_t n = 0;
        static char buf[64];
        if (rd_kafka_message_headers(m, &hs) ||
            rd_kafka_header_get_last(hs, name, &v, &n) || n >= sizeof(buf))
                return "";
        memcpy(buf, v, n);
        buf[n] = '\0';
        return buf;
}

/* Reads the DLQ topic from its start until @p want records came or the
 * deadline. @returns how many came. */
static int read_dlq(struct world *w, struct dead_letter *out, int want) {
        char errstr[512];
        char *props[] = {"group.id=dlq-reader", "enable.auto.commit=false"};
        rd_kafka_t *c =
            rd_kafka_new(RD_KAFKA_CONSUMER, conf_of(w->brokers, props, 2),
                         errstr, sizeof(errstr));
        cr_assert(c, "%s", errstr);
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, DLQ, 0)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
        cr_assert_eq(rd_kafka_assign(c, l), 0);
        rd_kafka_topic_partition_list_destroy(l);

        int got = 0;
        int64_t deadline = clock_deadline(test_ms(10000));
        while (got < want && clock_left_ms(deadline) > 0) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
                if (!m)
                        continue;
                if (!m->err) {
                        struct dead_letter *d = &out[got++];
                        snprintf(d->value, sizeof(d->value), "%.*s",
                                 (int)m->len, (const char *)m->payload);
                        snprintf(d->cls, sizeof(d->cls), "%s",
                                 header(m, "thopter.dlq.error.class"));
                        snprintf(d->step, sizeof(d->step), "%s",
                                 header(m, "thopter.dlq.error.step"));
                        snprintf(d->offset, sizeof(d->offset), "%s",
                                 header(m, "thopter.dlq.offset"));
                }
                rd_kafka_message_destroy(m);
        }
        rd_kafka_consumer_close(c);
        rd_kafka_destroy(c);
        return got;
}

Test(kafka_loop_mock,
     failures_are_dead_lettered_and_the_offset_advances,
     .timeout = 60) {
        struct world w;
        struct dead_letter d[2];

        world_start(&w, 1, 2, 0);
        produce(&w, 0, 0, "ok");
        produce(&w, 1, 1, "fail");
        produce_raw(&w, "not a test record");
        produce(&w, 3, 3, "ok");
        flush(&w);

        struct commit_wait cw = {&w, 1, {4}};
        cr_assert(test_wait_for(all_committed, &cw, 20000),
                  "offset 4 not committed: a failure held the partition");
        /* Exactly the two failures, each once, with its class and step:
         * the offset is committed only after both were acknowledged. */
        int n = read_dlq(&w, d, 2);
        cr_expect_eq(high(&w, DLQ, 0), 2, "dead letters in the topic");
        cr_expect_eq(world_stop(&w), KAFKA_LOOP_DRAINED);
        cr_expect_eq(atomic_load(&seen.handled[0]), 1);
        cr_expect_eq(atomic_load(&seen.handled[1]), 1);
        cr_expect_eq(atomic_load(&seen.handled[3]), 1);
        cr_expect_eq(atomic_load(&seen.entered), 3,
                     "the invalid record reached run()");
        cr_assert_eq(n, 2, "%d dead letters read back", n);
        int fail = strcmp(d[0].value, "1 1 fail") == 0 ? 0 : 1;
        int invalid = 1 - fail;
        cr_expect_str_eq(d[fail].value, "1 1 fail");
        cr_expect_str_eq(d[fail].cls, "fly_rejected");
        cr_expect_str_eq(d[fail].step, "delete");
        cr_expect_str_eq(d[fail].offset, "1");
        cr_expect_str_eq(d[invalid].value, "not a test record");
        cr_expect_str_eq(d[invalid].cls, "invalid_request");
        cr_expect_str_eq(d[invalid].step, "validate");
        cr_expect_str_eq(d[invalid].offset, "2");
}
