/* kafka_job.c - one Kafka loop's jobs: made from a record, freed, and the
 * job_ops a handler reaches the loop through (events, holding intake).
 *
 * The floor of the kafka_*.c files: kafka_loop.c, kafka_workers.c,
 * kafka_finish.c and kafka_commit.c all stand on it, and it calls none of
 * them (only events.h, the handler's release and librdkafka), so the loop's
 * files call each other in one direction (docs/DESIGN.md, "Layers").
 */
#include "kafka_loop_int.h"
#include "clock.h"
#include "events.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void ops_emit(void *ctx,
                     struct job *job,
                     const char *state,
                     const char *step,
                     const struct err *failure) {
        struct kafka_loop *loop = ctx;
        events_emit(loop->producer, loop->events_topic, job, state, step,
                    failure);
}

static void ops_hold(void *ctx, int on) {
        struct kafka_loop *loop = ctx;
        /* A count: with several provisions in flight, each waiting one
         * holds, and intake resumes when the last of them lets go. */
        if (on)
                atomic_fetch_add(&loop->hold, 1);
        else
                atomic_fetch_sub(&loop->hold, 1);
        kafka_job_wake_poll(loop);
}

static const struct job_ops loop_job_ops = {ops_emit, ops_hold};

static void *copy_bytes(const void *src, size_t len, int nul) {
        size_t n = len + (nul ? 1 : 0);
        char *p = malloc(n ? n : 1);
        if (p && len)
                memcpy(p, src, len);
        if (p && nul)
                p[len] = '\0';
        return p;
}

struct kafka_job *kafka_job_new(struct kafka_loop *loop,
                                const rd_kafka_message_t *rkm) {
        struct kafka_job *kj = calloc(1, sizeof(*kj));
        struct job_record *rec;
        rd_kafka_headers_t *hdrs = NULL;
        rd_kafka_timestamp_type_t tstype;

        if (!kj)
                return NULL;
        rec = &kj->job.rec;
        rec->topic = strdup(rd_kafka_topic_name(rkm->rkt));
        rec->partition = rkm->partition;
        rec->offset = rkm->offset;
        rec->timestamp_ms = rd_kafka_message_timestamp(rkm, &tstype);
        if (rkm->key) {
                rec->key = copy_bytes(rkm->key, rkm->key_len, 0);
                rec->key_len = rkm->key_len;
        }
        /* A tombstone (no payload) stays NULL, so its dead letter is one
         * too (contract section 4: byte for byte). */
        if (rkm->payload) {
                rec->value = copy_bytes(rkm->payload, rkm->len, 1);
                rec->value_len = rkm->len;
        }
        if (rd_kafka_message_headers(rkm, &hdrs) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            hdrs)
                rec->headers = rd_kafka_headers_copy(hdrs);
        rec->received_mono_ms = clock_mono_ms();
        rec->group = loop->group;
        rec->kind = loop->name;
        kj->job.attempt = 1;
        kj->job.ops = &loop_job_ops;
        kj->job.ops_ctx = loop;
        kj->generation = loop->generation;
        snprintf(kj->job.request_id, sizeof(kj->job.request_id),
                 "%s-%" PRId32 "-%" PRId64, rec->topic ? rec->topic : "?",
                 rec->partition, rec->offset);
        if (!rec->topic || (rkm->payload && !rec->value) ||
            (rkm->key && !rec->key)) {
                kafka_job_free(loop, kj);
                return NULL;
        }
        return kj;
}

void kafka_job_free(struct kafka_loop *loop, struct kafka_job *kj) {
        if (!kj)
                return;
        if (kj->job.request && loop->handler.release)
                loop->handler.release(&kj->job, loop->handler.opaque);
        free(kj->job.rec.topic);
        free(kj->job.rec.key);
        free(kj->job.rec.value);
        if (kj->job.rec.headers)
                rd_kafka_headers_destroy(kj->job.rec.headers);
        free(kj);
}

void kafka_job_wake_poll(struct kafka_loop *loop) {
        rd_kafka_queue_yield(loop->queue);
}
