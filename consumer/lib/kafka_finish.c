/* kafka_finish.c - finishing a record: its final status event and, for a
 * failure, its dead letter, and waiting for the broker to acknowledge both.
 * See kafka_loop_int.h.
 *
 * DESIGN
 * ------
 * A record is finished, and its offset may be committed, once the broker has
 * acknowledged its final status event ("completed" or "failed") and, for a
 * failure, its dead letter. Committing first would let a crash lose them for
 * good: the record would not be redelivered to send them again. A send that
 * fails is retried with growing pauses (a dead letter too big for the topic
 * is sent reduced); meanwhile the offset stays uncommitted and /readyz says
 * so. Acknowledgements arrive on the producer's delivery thread; a finished
 * job is handed to the poll thread through `done`.
 */
#include "kafka_loop_int.h"
#include "clock.h"
#include "dlq.h"
#include "events.h"
#include "log.h"
#include "metrics.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum send_kind { SEND_EVENT, SEND_DLQ };

static void send_final_event(struct kafka_loop *loop, struct kafka_job *kj);
static void send_dead_letter(struct kafka_loop *loop, struct kafka_job *kj);

/* Lock held. */
static void maybe_finished(struct kafka_loop *loop, struct kafka_job *kj) {
        if (!kj->event_done || (kj->final_failed && !kj->dlq_done) ||
            kj->in_resend)
                return;
        loop->n_finishing--;
        loop->finishing_bytes -= kj->finishing_bytes;
        kj->finishing_bytes = 0;
        kj->next = loop->done_head;
        loop->done_head = kj;
        pthread_cond_broadcast(&loop->idle_cond);
}

/* Lock held. Put @p kj on the resend list for @p kind. */
static void requeue(struct kafka_loop *loop,
                    struct kafka_job *kj,
                    enum send_kind kind,
                    rd_kafka_resp_err_t e,
                    const char *why) {
        const char *what = kind == SEND_DLQ ? "dead letter" : "final event";
        const char *topic =
            kind == SEND_DLQ ? loop->dlq_topic : loop->events_topic;

        if (kind == SEND_DLQ && e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE &&
            !kj->dlq_reduced) {
                kj->dlq_reduced = 1;
                kj->next_send_ms = 0;
                job_log(&kj->job, LOG_WARN,
                        "dead letter too large for %s (key %zu bytes, value "
                        "%zu bytes): sending it reduced",
                        topic, kj->job.rec.key_len, kj->job.rec.value_len);
        } else {
                long delay = 1000L << (kj->send_tries < 6 ? kj->send_tries : 6);
                kj->send_tries++;
                kj->next_send_ms = clock_deadline(delay);
                if (kj->send_tries == 1 || kj->send_tries % 10 == 0)
                        job_log(&kj->job, LOG_ERROR,
                                "%s to %s failed (%d time(s)): %s; next try in "
                                "%ld ms; its offset stays uncommitted",
                                what, topic, kj->send_tries, why, delay);
                metrics_inc(kind == SEND_DLQ ? M_DEAD_LETTER_SEND_FAILURES
                                             : M_EVENT_SEND_FAILURES,
                            loop->labels, 1);
        }
        if (kind == SEND_DLQ)
                kj->dlq_retry = 1;
        else
                kj->event_retry = 1;
        if (!kj->in_resend) {
                kj->in_resend = 1;
                kj->next = loop->resend_head;
                loop->resend_head = kj;
        }
}

/* Delivery thread (or the sender, when the send failed at once). */
static void
on_sent(struct kafka_job *kj, enum send_kind kind, rd_kafka_resp_err_t e) {
        struct kafka_loop *loop = kj->job.ops_ctx;

        pthread_mutex_lock(&loop->lock);
        if (e)
                requeue(loop, kj, kind, e, rd_kafka_err2str(e));
        else if (kind == SEND_DLQ)
                kj->dlq_done = 1;
        else
                kj->event_done = 1;
        maybe_finished(loop, kj);
        pthread_mutex_unlock(&loop->lock);
        kafka_job_wake_poll(loop);
}

static void on_event_acked(void *arg, rd_kafka_resp_err_t e) {
        on_sent(arg, SEND_EVENT, e);
}

static void on_dead_letter_acked(void *arg, rd_kafka_resp_err_t e) {
        on_sent(arg, SEND_DLQ, e);
}

/* A send that failed before reaching the producer's queue. */
static void send_failed(struct kafka_loop *loop,
                        struct kafka_job *kj,
                        enum send_kind kind,
                        const struct err *err) {
        pthread_mutex_lock(&loop->lock);
        requeue(loop, kj, kind, (rd_kafka_resp_err_t)err->code, err->msg);
        pthread_mutex_unlock(&loop->lock);
        kafka_job_wake_poll(loop);
}

static void send_final_event(struct kafka_loop *loop, struct kafka_job *kj) {
        struct err err = {0};
        const struct err *f = kj->final_failed ? &kj->failure : NULL;
        char *json = events_json(&kj->job, f ? "failed" : "completed",
                                 f ? f->step : NULL, f, clock_wall_ms(),
                                 clock_mono_ms());
        int rc = json ? kafka_producer_send(
                            loop->producer, loop->events_topic,
                            kj->job.request_id, strlen(kj->job.request_id),
                            json, strlen(json), NULL, on_event_acked, kj, &err)
                      : err_oom(&err, "final event");
        free(json);
        if (rc == -1)
                send_failed(loop, kj, SEND_EVENT, &err);
}

static void send_dead_letter(struct kafka_loop *loop, struct kafka_job *kj) {
        struct err err = {0};
        if (dlq_publish(loop->producer, loop->dlq_topic, &kj->job, &kj->failure,
                        kj->dlq_reduced, on_dead_letter_acked, kj, &err) == -1)
                send_failed(loop, kj, SEND_DLQ, &err);
}

void kafka_finish_counted(struct kafka_loop *loop,
                          struct kafka_job *kj,
                          const struct err *failure) {
        if (failure) {
                const struct job_record *rec = &kj->job.rec;
                char labels[256];
                kj->final_failed = 1;
                kj->failure = *failure;
                job_log(&kj->job, LOG_WARN,
                        "dead-lettering %s [%" PRId32 "] @%" PRId64
                        ": %s at step %s: %s",
                        rec->topic, rec->partition, rec->offset,
                        err_class_name(failure->cls), failure->step,
                        failure->msg);
                snprintf(labels, sizeof(labels), "topic=\"%s\",class=\"%s\"",
                         rec->topic,
                         err_class_name(failure->cls ? failure->cls
                                                     : ERRC_INTERNAL));
                metrics_inc(M_DEAD_LETTERS, labels, 1);
        }
        send_final_event(loop, kj);
        if (failure)
                send_dead_letter(loop, kj);
}

void kafka_finish_count(struct kafka_loop *loop, struct kafka_job *kj) {
        /* The record's copy is held until the acknowledgement, and its
         * dead letter carries it again in the producer's queue. */
        kj->finishing_bytes = kj->job.rec.key_len + kj->job.rec.value_len;
        loop->n_finishing++;
        loop->finishing_bytes += kj->finishing_bytes;
}

void kafka_finish(struct kafka_loop *loop,
                  struct kafka_job *kj,
                  const struct err *failure) {
        pthread_mutex_lock(&loop->lock);
        kafka_finish_count(loop, kj);
        pthread_mutex_unlock(&loop->lock);
        kafka_finish_counted(loop, kj, failure);
}

void kafka_finish_resend_due(struct kafka_loop *loop) {
        struct kafka_job *due = NULL;
        int64_t now = clock_mono_ms();

        pthread_mutex_lock(&loop->lock);
        for (struct kafka_job **pp = &loop->resend_head; *pp;) {
                struct kafka_job *kj = *pp;
                if (kj->next_send_ms <= now) {
                        *pp = kj->next;
                        kj->in_resend = 0;
                        kj->next = due;
                        due = kj;
                } else {
                        pp = &kj->next;
                }
        }
        pthread_mutex_unlock(&loop->lock);

        while (due) {
                struct kafka_job *kj = due;
                due = kj->next;
                kj->next = NULL;
                pthread_mutex_lock(&loop->lock);
                int event = kj->event_retry, dlq = kj->dlq_retry;
                kj->event_retry = kj->dlq_retry = 0;
                pthread_mutex_unlock(&loop->lock);
                if (event)
                        send_final_event(loop, kj);
                if (dlq)
                        send_dead_letter(loop, kj);
        }
}

int kafka_finish_stuck(struct kafka_loop *loop) {
        int stuck = 0;
        pthread_mutex_lock(&loop->lock);
        for (struct kafka_job *kj = loop->resend_head; kj; kj = kj->next)
                stuck += kj->send_tries >= 3;
        pthread_mutex_unlock(&loop->lock);
        return stuck;
}
