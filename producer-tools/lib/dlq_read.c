/* dlq_read.c - see dlq_read.h. */
#include "dlq_read.h"
#include "clock.h"
#include "topic_check.h"
#include "topic_parts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dlq_read_range *
dlq_read_ranges_new(rd_kafka_t *rk, const char *dlq, int *n, struct err *err) {
        static const char hint[] = "--dlq-topic / THOPTER_DLQ_TOPIC";
        struct topic_part *p;
        struct dlq_read_range *r;

        *n = 0;
        /* Before any topic handle: librdkafka asks for the metadata of a
         * handle's topic, which some brokers answer by creating it. */
        if (topic_check(rk, &dlq, 1, "--dlq-topic or THOPTER_DLQ_TOPIC", err) ==
            -1)
                return NULL;
        p = topic_parts_new(rk, dlq, hint, DLQ_READ_TIMEOUT_MS, n, err);
        if (!p)
                return NULL;
        r = calloc((size_t)*n, sizeof(*r));
        if (!r) {
                err_oom(err, "partitions");
                *n = 0;
        }
        for (int i = 0; r && i < *n; i++)
                r[i] = (struct dlq_read_range){
                    .partition = p[i].partition,
                    .start = p[i].low,
                    .end = p[i].high,
                };
        free(p);
        return r;
}

struct dlq_read_range *
dlq_read_range_of(struct dlq_read_range *r, int n, int32_t partition) {
        for (int i = 0; i < n; i++)
                if (r[i].partition == partition)
                        return &r[i];
        return NULL;
}

int dlq_read_ranges(rd_kafka_t *rk,
                    const char *topic,
                    struct dlq_read_range *r,
                    int n,
                    dlq_read_fn *fn,
                    void *arg,
                    struct err *err) {
        rd_kafka_topic_partition_list_t *tps =
            rd_kafka_topic_partition_list_new(n);
        int left = 0, rc = 0;
        int64_t deadline = clock_mono_ms() + DLQ_READ_IDLE_MS;
        char last[512] = "no records";

        for (int i = 0; i < n; i++) {
                r[i].done = r[i].start >= r[i].end;
                if (r[i].done)
                        continue;
                rd_kafka_topic_partition_list_add(tps, topic, r[i].partition)
                    ->offset = r[i].start;
                left++;
        }
        if (left == 0) {
                rd_kafka_topic_partition_list_destroy(tps);
                return 0;
        }
        rd_kafka_assign(rk, tps);
        rd_kafka_topic_partition_list_destroy(tps);
        while (left > 0 && rc == 0) {
                rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 200);
                struct dlq_read_range *p;

                if (clock_mono_ms() > deadline) {
                        rc = err_set(err, ERR_TRANSIENT, 0,
                                     "no progress reading %s for %d s (%s): "
                                     "check the brokers",
                                     topic, DLQ_READ_IDLE_MS / 1000, last);
                        if (rkm)
                                rd_kafka_message_destroy(rkm);
                        break;
                }
                if (!rkm)
                        continue;
                p = rkm->rkt && !strcmp(rd_kafka_topic_name(rkm->rkt), topic)
                        ? dlq_read_range_of(r, n, rkm->partition)
                        : NULL;
                if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        if (p && !p->done && rkm->offset >= p->end) {
                                p->done = 1;
                                left--;
                        }
                } else if (rkm->err) {
                        snprintf(last, sizeof(last), "%s",
                                 rd_kafka_message_errstr(rkm));
                        if (rkm->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
                            rkm->err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION ||
                            rkm->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE)
                                rc = err_set(err, ERR_PERMANENT, rkm->err,
                                             "reading %s: %s", topic, last);
                } else if (p && !p->done) {
                        deadline = clock_mono_ms() + DLQ_READ_IDLE_MS;
                        if (rkm->offset < p->end && fn(arg, rkm) != 0)
                                rc = 1;
                        if (rkm->offset + 1 >= p->end) {
                                p->done = 1;
                                left--;
                        }
                }
                rd_kafka_message_destroy(rkm);
        }
        rd_kafka_assign(rk, NULL);
        return rc < 0 ? -1 : 0;
}

/* The marks replay left (replay_mark.h), read before the dead letters. */
static int collect_mark(void *arg, const rd_kafka_message_t *rkm) {
        return replay_marks_add(arg, rkm) == -1 ? -1 : 0;
}

int dlq_read_marks(rd_kafka_t *rk,
                   const char *dlq,
                   struct dlq_read_range *r,
                   int n,
                   struct replay_marks *marks,
                   struct err *err) {
        return dlq_read_ranges(rk, dlq, r, n, collect_mark, marks, err);
}
