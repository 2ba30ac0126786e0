/* kafka_loop.c - poll, dispatch, commit after work; see kafka_loop.h.
 *
 * DESIGN
 * ------
 * Threads: one poll thread (kafka_loop_run), max_in_flight workers, and the
 * producer's delivery thread, which reports dead letters acknowledged.
 * Everything Kafka-side (assign, pause, commit, the offset tracker) happens
 * on the poll thread. Workers and the delivery thread hand finished jobs
 * back through `done` under `lock` and wake the poll thread with
 * rd_kafka_queue_yield(), so a finished job is committed (and a paused
 * partition resumed) without waiting for the poll timeout.
 *
 *   poll -> prepare --invalid--> "failed" event + dead letter --both acked-->
 * done
 *                   \--valid---> pending -> worker -> run --ok----> "completed"
 * event --acked--> done
 *                                                        \--fail--> "failed"
 * event + dead letter --both acked--> done done -> offset_tracker_finish ->
 * commit the contiguous prefix
 *
 * Intake is paused while the queue is full (hysteresis between prefetch_low
 * and prefetch_high queued records beyond max_in_flight), while the
 * fly circuit is open, while the provision capacity hold is on, and while
 * stopping. Pausing purges librdkafka's prefetch, so a record seen here is a
 * record the tracker knows; none is skipped.
 */
#include "kafka_loop.h"
#include "clock.h"
#include "dlq.h"
#include "events.h"
#include "kafka_conf.h"
#include "log.h"
#include "metrics.h"
#include "offset_tracker.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Records whose final event or dead letter is not yet acknowledged: pause
 * at HIGH, resume at LOW (bounds memory on the dead-letter path). */
#define FINISHING_HIGH    2000
#define FINISHING_LOW     500
#define RECOMMIT_EVERY_MS 1000

struct kafka_loop {
        char *name, *topic, *group, *dlq_topic, *events_topic;
        int max_in_flight;
        int prefetch_high, prefetch_low;
        long drain_timeout_ms, revoke_timeout_ms;
        struct job_handler handler;
        struct producer *producer;
        struct breaker *breaker;
        rd_kafka_t *rk;
        rd_kafka_queue_t *queue;        /* the consumer queue, to yield */
        struct offset_tracker *tracker; /* poll thread only */
        char labels[192];               /* topic="…" */

        pthread_mutex_t lock;
        pthread_cond_t cond;      /* workers: pending changed, or exit */
        pthread_cond_t idle_cond; /* poll thread: running/dlq changed */
        struct job *pending_head, *pending_tail;
        struct job *done_head;
        struct job *resend_head; /* dead letters to send again */
        struct job **running;    /* max_in_flight slots */
        int n_pending, n_running, n_finishing;
        int workers_exit;
        pthread_t *workers;
        int n_workers;

        uint64_t generation;
        int paused_applied;
        atomic_int stopping;
        atomic_int hold;
        atomic_int cancel; /* every job must give up (stop deadline) */
        int64_t stop_deadline;
        atomic_int joined;
        atomic_llong last_poll_ms;
        int64_t last_recommit_ms, last_commit_wall_ms;
};

/* ------------------------------------------------------------------ */
/* Jobs */

static struct job *job_from_message(struct kafka_loop *loop,
                                    const rd_kafka_message_t *rkm) {
        struct job *job = calloc(1, sizeof(*job));
        rd_kafka_headers_t *hdrs = NULL;
        rd_kafka_timestamp_type_t tstype;

        if (!job)
                return NULL;
        job->topic = strdup(rd_kafka_topic_name(rkm->rkt));
        job->partition = rkm->partition;
        job->offset = rkm->offset;
        job->timestamp_ms = rd_kafka_message_timestamp(rkm, &tstype);
        if (rkm->key) {
                job->key = malloc(rkm->key_len ? rkm->key_len : 1);
                if (job->key)
                        memcpy(job->key, rkm->key, rkm->key_len);
                job->key_len = rkm->key_len;
        }
        job->value = malloc(rkm->len + 1);
        if (job->value) {
                if (rkm->len)
                        memcpy(job->value, rkm->payload, rkm->len);
                ((char *)job->value)[rkm->len] = '\0';
        }
        job->value_len = rkm->len;
        if (rd_kafka_message_headers(rkm, &hdrs) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            hdrs)
                job->headers = rd_kafka_headers_copy(hdrs);
        job->received_mono_ms = clock_mono_ms();
        job->group = loop->group;
        job->kind = loop->name;
        job->loop = loop;
        job->generation = loop->generation;
        job->attempt = 1;
        snprintf(job->request_id, sizeof(job->request_id),
                 "%s-%" PRId32 "-%" PRId64, job->topic ? job->topic : "?",
                 job->partition, job->offset);
        if (!job->topic || !job->value || (rkm->key && !job->key)) {
                free(job->topic);
                free(job->key);
                free(job->value);
                if (job->headers)
                        rd_kafka_headers_destroy(job->headers);
                free(job);
                return NULL;
        }
        return job;
}

static void job_free(struct kafka_loop *loop, struct job *job) {
        if (!job)
                return;
        if (job->request && loop->handler.release)
                loop->handler.release(job, loop->handler.opaque);
        free(job->topic);
        free(job->key);
        free(job->value);
        if (job->headers)
                rd_kafka_headers_destroy(job->headers);
        free(job);
}

static void wake_poll(struct kafka_loop *loop) {
        rd_kafka_queue_yield(loop->queue);
}

/* Lock held. */
static void push_done(struct kafka_loop *loop, struct job *job) {
        job->next = loop->done_head;
        loop->done_head = job;
}

void kafka_loop_emit(struct kafka_loop *loop,
                     struct job *job,
                     const char *state,
                     const char *step,
                     const struct err *failure) {
        events_emit(loop->producer, loop->events_topic, job, state, step,
                    failure);
}

/* ------------------------------------------------------------------ */
/* Finishing: the final event and, for a failure, the dead letter
 *
 * A record is finished, and its offset may be committed, once the broker has
 * acknowledged its final status event ("completed" or "failed") and, for a
 * failure, its dead letter. Committing first would let a crash lose them for
 * good: the record would not be redelivered to send them again. A send that
 * fails is retried with growing pauses (a dead letter too big for the topic
 * is sent reduced); meanwhile the offset stays uncommitted and /readyz says so.
 */

enum resend_kind { RESEND_EVENT, RESEND_DLQ };

static void send_final_event(struct kafka_loop *loop, struct job *job);
static void send_dead_letter(struct kafka_loop *loop, struct job *job);

static int too_large(rd_kafka_resp_err_t e) {
        return e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE;
}

/* Lock held. */
static void maybe_finished(struct kafka_loop *loop, struct job *job) {
        if (!job->event_done || (job->final_failed && !job->dlq_done) ||
            job->in_resend)
                return;
        loop->n_finishing--;
        push_done(loop, job);
        pthread_cond_broadcast(&loop->idle_cond);
}

/* Lock held. */
static void requeue(struct kafka_loop *loop,
                    struct job *job,
                    enum resend_kind kind,
                    rd_kafka_resp_err_t e,
                    const char *why) {
        const char *what = kind == RESEND_DLQ ? "dead letter" : "final event";
        const char *topic =
            kind == RESEND_DLQ ? loop->dlq_topic : loop->events_topic;

        if (kind == RESEND_DLQ && too_large(e) && !job->dlq_reduced) {
                job->dlq_reduced = 1;
                job->next_send_ms = 0;
                log_write(LOG_WARN, loop->name, job->request_id,
                          "dead letter too large for %s (%zu bytes): sending "
                          "it reduced",
                          topic, job->value_len);
        } else {
                long delay = 1000L
                             << (job->send_tries < 6 ? job->send_tries : 6);
                job->send_tries++;
                job->next_send_ms = clock_mono_ms() + delay;
                if (job->send_tries == 1 || job->send_tries % 10 == 0)
                        log_write(LOG_ERROR, loop->name, job->request_id,
                                  "%s to %s failed (%d time(s)): %s; next try "
                                  "in %ld ms; "
                                  "its offset stays uncommitted",
                                  what, topic, job->send_tries, why, delay);
                metrics_inc(kind == RESEND_DLQ
                                ? "thopter_dead_letter_send_failures_total"
                                : "thopter_event_send_failures_total",
                            loop->labels, 1);
        }
        if (kind == RESEND_DLQ)
                job->dlq_retry = 1;
        else
                job->event_retry = 1;
        if (!job->in_resend) {
                job->in_resend = 1;
                job->next = loop->resend_head;
                loop->resend_head = job;
        }
}

static void
on_sent(struct job *job, enum resend_kind kind, rd_kafka_resp_err_t rkerr) {
        struct kafka_loop *loop = job->loop;

        pthread_mutex_lock(&loop->lock);
        if (rkerr)
                requeue(loop, job, kind, rkerr, rd_kafka_err2str(rkerr));
        else if (kind == RESEND_DLQ)
                job->dlq_done = 1;
        else
                job->event_done = 1;
        maybe_finished(loop, job);
        pthread_mutex_unlock(&loop->lock);
        wake_poll(loop);
}

static void on_event_acked(void *arg, rd_kafka_resp_err_t rkerr) {
        on_sent(arg, RESEND_EVENT, rkerr);
}

static void on_dead_letter_acked(void *arg, rd_kafka_resp_err_t rkerr) {
        on_sent(arg, RESEND_DLQ, rkerr);
}

static void send_final_event(struct kafka_loop *loop, struct job *job) {
        struct err err = {0};
        const struct err *f = job->final_failed ? &job->failure : NULL;
        char *json = events_json(
            job, job->final_failed ? "failed" : "completed", f ? f->step : NULL,
            f, clock_wall_ms(), clock_mono_ms());
        int rc =
            json ? producer_send(loop->producer, loop->events_topic,
                                 job->request_id, strlen(job->request_id), json,
                                 strlen(json), NULL, on_event_acked, job, &err)
                 : err_set(&err, ERR_TRANSIENT, 0, "out of memory");
        free(json);
        if (rc == -1) {
                pthread_mutex_lock(&loop->lock);
                requeue(loop, job, RESEND_EVENT, (rd_kafka_resp_err_t)err.code,
                        err.msg);
                pthread_mutex_unlock(&loop->lock);
                wake_poll(loop);
        }
}

static void send_dead_letter(struct kafka_loop *loop, struct job *job) {
        struct err err = {0};
        if (dlq_publish(loop->producer, loop->dlq_topic, job, &job->failure,
                        job->attempt, on_dead_letter_acked, job, &err) == -1) {
                pthread_mutex_lock(&loop->lock);
                requeue(loop, job, RESEND_DLQ, (rd_kafka_resp_err_t)err.code,
                        err.msg);
                pthread_mutex_unlock(&loop->lock);
                wake_poll(loop);
        }
}

/* Send what finishes @p job: its final event, and for a failure
 * (@p failure not NULL) its dead letter. */
static void
finish(struct kafka_loop *loop, struct job *job, const struct err *failure) {
        if (failure) {
                job->final_failed = 1;
                job->failure = *failure;
                log_write(LOG_WARN, loop->name, job->request_id,
                          "dead-lettering %s [%" PRId32 "] @%" PRId64
                          ": %s at step %s: %s",
                          job->topic, job->partition, job->offset,
                          err_class_name(failure->cls), failure->step,
                          failure->msg);
                char labels[256];
                snprintf(labels, sizeof(labels), "topic=\"%s\",class=\"%s\"",
                         job->topic,
                         err_class_name(failure->cls ? failure->cls
                                                     : ERRC_INTERNAL));
                metrics_inc("thopter_dead_letters_total", labels, 1);
        }
        pthread_mutex_lock(&loop->lock);
        loop->n_finishing++;
        pthread_mutex_unlock(&loop->lock);
        send_final_event(loop, job);
        if (failure)
                send_dead_letter(loop, job);
}

/* ------------------------------------------------------------------ */
/* Workers */

/* Lock held. The first pending job whose exclusive key is not running. */
static struct job *take_runnable(struct kafka_loop *loop) {
        struct job *prev = NULL;
        for (struct job *j = loop->pending_head; j; prev = j, j = j->next) {
                int busy = 0;
                for (int i = 0; i < loop->max_in_flight && !busy; i++)
                        busy = loop->running[i] && j->exclusive_key[0] &&
                               strcmp(loop->running[i]->exclusive_key,
                                      j->exclusive_key) == 0;
                if (busy)
                        continue;
                if (prev)
                        prev->next = j->next;
                else
                        loop->pending_head = j->next;
                if (loop->pending_tail == j)
                        loop->pending_tail = prev;
                j->next = NULL;
                loop->n_pending--;
                return j;
        }
        return NULL;
}

static void *worker_main(void *arg) {
        struct kafka_loop *loop = arg;
        int slot = -1;

        pthread_mutex_lock(&loop->lock);
        for (;;) {
                struct job *job = NULL;
                while (!loop->workers_exit && !(job = take_runnable(loop)))
                        pthread_cond_wait(&loop->cond, &loop->lock);
                if (!job)
                        break;
                for (slot = 0; loop->running[slot]; slot++)
                        ;
                loop->running[slot] = job;
                loop->n_running++;
                metrics_set("thopter_in_flight", loop->labels, loop->n_running);
                pthread_mutex_unlock(&loop->lock);

                struct err err = {0};
                int64_t t0 = clock_mono_ms();
                kafka_loop_emit(loop, job, "started", NULL, NULL);
                int rc = loop->handler.run(job, loop->handler.opaque, &err);
                double secs = (double)(clock_mono_ms() - t0) / 1000.0;
                metrics_observe("thopter_job_duration_seconds", loop->labels,
                                secs);

                if (job->abandoned || (rc == -1 && job->cancel)) {
                        job->abandoned = 1;
                        log_write(
                            LOG_WARN, loop->name, job->request_id,
                            "abandoned at shutdown; it will be redelivered");
                } else if (rc == 0) {
                        log_write(
                            LOG_INFO, loop->name, job->request_id,
                            "completed %s [%" PRId32 "] @%" PRId64 " in %.3f s",
                            job->topic, job->partition, job->offset, secs);
                } else if (err.cls == ERRC_NONE) {
                        err_classify(&err, ERRC_INTERNAL,
                                     err.step[0] ? err.step : "internal");
                }

                pthread_mutex_lock(&loop->lock);
                loop->running[slot] = NULL;
                loop->n_running--;
                metrics_set("thopter_in_flight", loop->labels, loop->n_running);
                if (job->abandoned) {
                        push_done(loop, job);
                } else {
                        pthread_mutex_unlock(&loop->lock);
                        finish(loop, job, rc == 0 ? NULL : &err);
                        pthread_mutex_lock(&loop->lock);
                }
                /* A job with the same key may be runnable now. */
                pthread_cond_broadcast(&loop->cond);
                pthread_cond_broadcast(&loop->idle_cond);
                pthread_mutex_unlock(&loop->lock);
                wake_poll(loop);
                pthread_mutex_lock(&loop->lock);
        }
        pthread_mutex_unlock(&loop->lock);
        return NULL;
}

/* Lock not held. Tell running jobs to give up: all of them, or only those
 * that are merely waiting (capacity, circuit breaker). */
static void cancel_running(struct kafka_loop *loop, int only_interruptible) {
        pthread_mutex_lock(&loop->lock);
        for (int i = 0; i < loop->max_in_flight; i++)
                if (loop->running[i] &&
                    (!only_interruptible || loop->running[i]->interruptible))
                        loop->running[i]->cancel = 1;
        pthread_mutex_unlock(&loop->lock);
}

/* ------------------------------------------------------------------ */
/* Offsets */

static void commit_one(struct kafka_loop *loop,
                       const char *topic,
                       int32_t partition,
                       int64_t offset,
                       int async) {
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, topic, partition)->offset = offset;
        rd_kafka_resp_err_t e = rd_kafka_commit(loop->rk, l, async);
        if (!async && !e) {
                offset_tracker_committed(loop->tracker, topic, partition,
                                         offset);
                loop->last_commit_wall_ms = clock_wall_ms();
        } else if (e) {
                log_warn(loop->name,
                         "commit of %s [%" PRId32 "] @%" PRId64 " failed: %s",
                         topic, partition, offset, rd_kafka_err2str(e));
        }
        rd_kafka_topic_partition_list_destroy(l);
}

static void
recommit_cb(const char *topic, int32_t partition, int64_t offset, void *arg) {
        commit_one(arg, topic, partition, offset, 1);
}

static void
count_cb(const char *topic, int32_t partition, int64_t offset, void *arg) {
        (void)topic;
        (void)partition;
        (void)offset;
        (*(int *)arg)++;
}

static void commit_sync_cb(const char *topic,
                           int32_t partition,
                           int64_t offset,
                           void *arg) {
        commit_one(arg, topic, partition, offset, 0);
}

static void offset_commit_cb(rd_kafka_t *rk,
                             rd_kafka_resp_err_t e,
                             rd_kafka_topic_partition_list_t *offsets,
                             void *opaque) {
        struct kafka_loop *loop = opaque;
        (void)rk;
        if (e == RD_KAFKA_RESP_ERR__NO_OFFSET)
                return;
        for (int i = 0; offsets && i < offsets->cnt; i++) {
                rd_kafka_topic_partition_t *p = &offsets->elems[i];
                if (!e && !p->err && p->offset >= 0) {
                        offset_tracker_committed(loop->tracker, p->topic,
                                                 p->partition, p->offset);
                        loop->last_commit_wall_ms = clock_wall_ms();
                        metrics_set("thopter_last_commit_timestamp_seconds",
                                    loop->labels,
                                    (double)loop->last_commit_wall_ms / 1000.0);
                } else {
                        metrics_inc("thopter_commit_failures_total",
                                    loop->labels, 1);
                        log_warn(loop->name,
                                 "commit of %s [%" PRId32
                                 "] failed: %s (will retry)",
                                 p->topic, p->partition,
                                 rd_kafka_err2str(e ? e : p->err));
                }
        }
}

/* Poll thread: turn finished jobs into commits; resend dead letters. */
static void process_done(struct kafka_loop *loop) {
        struct job *done, *resend = NULL;
        int64_t now = clock_mono_ms();

        pthread_mutex_lock(&loop->lock);
        done = loop->done_head;
        loop->done_head = NULL;
        if (loop->resend_head) {
                /* Take the dead letters that are due; leave the others. */
                struct job **pp = &loop->resend_head;
                while (*pp) {
                        struct job *j = *pp;
                        if (j->next_send_ms <= now) {
                                *pp = j->next;
                                j->in_resend = 0;
                                j->next = resend;
                                resend = j;
                        } else {
                                pp = &j->next;
                        }
                }
        }
        pthread_mutex_unlock(&loop->lock);

        while (done) {
                struct job *job = done;
                int64_t commit;
                done = job->next;
                if (!job->abandoned && job->generation == loop->generation &&
                    offset_tracker_finish(loop->tracker, job->topic,
                                          job->partition, job->offset,
                                          &commit) == 1)
                        commit_one(loop, job->topic, job->partition, commit, 1);
                if (!job->abandoned)
                        metrics_inc("thopter_messages_finished_total",
                                    loop->labels, 1);
                job_free(loop, job);
        }
        while (resend) {
                struct job *job = resend;
                resend = job->next;
                job->next = NULL;
                pthread_mutex_lock(&loop->lock);
                int event = job->event_retry, dlq = job->dlq_retry;
                job->event_retry = job->dlq_retry = 0;
                pthread_mutex_unlock(&loop->lock);
                if (event)
                        send_final_event(loop, job);
                if (dlq)
                        send_dead_letter(loop, job);
        }
        if (now - loop->last_recommit_ms >= RECOMMIT_EVERY_MS) {
                offset_tracker_foreach_uncommitted(loop->tracker, recommit_cb,
                                                   loop);
                loop->last_recommit_ms = now;
        }
}

/* ------------------------------------------------------------------ */
/* Pause / resume */

static int apply_pause(struct kafka_loop *loop,
                       rd_kafka_topic_partition_list_t *parts,
                       int pause) {
        rd_kafka_resp_err_t e =
            pause ? rd_kafka_pause_partitions(loop->rk, parts)
                  : rd_kafka_resume_partitions(loop->rk, parts);
        if (e)
                log_warn(loop->name, "%s partitions: %s",
                         pause ? "pause" : "resume", rd_kafka_err2str(e));
        return e ? -1 : 0;
}

/* With hysteresis: a paused loop stays paused until the queue has drained
 * to the low mark, so each resume buys a batch of records, not one. */
/* librdkafka 2.0.2 starts fetching a resumed partition only when its broker
 * thread next looks (up to a second later when no fetch is outstanding). A
 * seek to the position it would resume from anyway wakes it now. */
static void kick_fetch(struct kafka_loop *loop,
                       rd_kafka_topic_partition_list_t *parts) {
        rd_kafka_topic_partition_list_t *pos =
            rd_kafka_topic_partition_list_copy(parts);
        rd_kafka_topic_partition_list_t *seek =
            rd_kafka_topic_partition_list_new(pos->cnt);

        if (rd_kafka_position(loop->rk, pos) == RD_KAFKA_RESP_ERR_NO_ERROR) {
                for (int i = 0; i < pos->cnt; i++)
                        if (pos->elems[i].offset >= 0)
                                rd_kafka_topic_partition_list_add(
                                    seek, pos->elems[i].topic,
                                    pos->elems[i].partition)
                                    ->offset = pos->elems[i].offset;
        }
        if (seek->cnt) {
                rd_kafka_error_t *e =
                    rd_kafka_seek_partitions(loop->rk, seek, 0);
                if (e)
                        rd_kafka_error_destroy(e);
        }
        rd_kafka_topic_partition_list_destroy(seek);
        rd_kafka_topic_partition_list_destroy(pos);
}

static int want_pause(struct kafka_loop *loop) {
        int full;
        pthread_mutex_lock(&loop->lock);
        int taken = loop->n_pending + loop->n_running;
        if (loop->paused_applied)
                full = taken > loop->max_in_flight + loop->prefetch_low -
                                   (loop->prefetch_high == 0) ||
                       loop->n_finishing > FINISHING_LOW;
        else
                full = taken >= loop->max_in_flight + loop->prefetch_high ||
                       loop->n_finishing >= FINISHING_HIGH;
        pthread_mutex_unlock(&loop->lock);
        return full || atomic_load(&loop->stopping) ||
               atomic_load(&loop->hold) ||
               (loop->breaker && breaker_is_open(loop->breaker));
}

static void update_pause(struct kafka_loop *loop) {
        int want = want_pause(loop);
        rd_kafka_topic_partition_list_t *parts = NULL;

        if (want == loop->paused_applied)
                return;
        if (rd_kafka_assignment(loop->rk, &parts) !=
                RD_KAFKA_RESP_ERR_NO_ERROR ||
            !parts)
                return; /* try again on the next tick */
        int ok = !parts->cnt || apply_pause(loop, parts, want) == 0;
        if (ok && !want && parts->cnt)
                kick_fetch(loop, parts);
        rd_kafka_topic_partition_list_destroy(parts);
        if (!ok)
                return;
        loop->paused_applied = want;
        metrics_set("thopter_paused", loop->labels, want);
}

/* ------------------------------------------------------------------ */
/* Rebalance */

/* Poll thread. Wait until nothing runs and no dead letter is unacknowledged,
 * or the deadline; keeps committing what finishes meanwhile. */
static int drain(struct kafka_loop *loop, int64_t deadline, int with_acks) {
        int idle = 0;
        for (;;) {
                /* Waiting for work to finish is the loop being alive. */
                atomic_store(&loop->last_poll_ms, clock_mono_ms());
                process_done(loop);
                pthread_mutex_lock(&loop->lock);
                idle = loop->n_running == 0 &&
                       (!with_acks || loop->n_finishing == 0);
                if (!idle && clock_mono_ms() < deadline) {
                        struct timespec ts;
                        clock_gettime(CLOCK_REALTIME, &ts);
                        ts.tv_nsec += 50 * 1000000L;
                        if (ts.tv_nsec >= 1000000000L) {
                                ts.tv_sec++;
                                ts.tv_nsec -= 1000000000L;
                        }
                        pthread_cond_timedwait(&loop->idle_cond, &loop->lock,
                                               &ts);
                }
                pthread_mutex_unlock(&loop->lock);
                if (idle || clock_mono_ms() >= deadline)
                        break;
        }
        process_done(loop);
        return idle ? 0 : -1;
}

/* Lock not held. Queued (not started) jobs go back to Kafka: not finished,
 * so not committed, so redelivered. */
static void drop_pending(struct kafka_loop *loop) {
        pthread_mutex_lock(&loop->lock);
        struct job *j = loop->pending_head;
        int n = loop->n_pending;
        loop->pending_head = loop->pending_tail = NULL;
        loop->n_pending = 0;
        pthread_mutex_unlock(&loop->lock);
        if (n)
                log_info(loop->name, "%d queued request(s) left for redelivery",
                         n);
        while (j) {
                struct job *next = j->next;
                job_free(loop, j);
                j = next;
        }
}

static void rebalance_cb(rd_kafka_t *rk,
                         rd_kafka_resp_err_t e,
                         rd_kafka_topic_partition_list_t *parts,
                         void *opaque) {
        struct kafka_loop *loop = opaque;
        char list[512] = "";
        size_t len = 0;

        for (int i = 0; parts && i < parts->cnt && len < sizeof(list) - 32; i++)
                len += (size_t)snprintf(list + len, sizeof(list) - len,
                                        "%s%s[%" PRId32 "]", i ? "," : "",
                                        parts->elems[i].topic,
                                        parts->elems[i].partition);
        metrics_inc("thopter_rebalances_total", loop->labels, 1);
        if (e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                loop->generation++;
                log_info(loop->name, "assigned %s",
                         parts->cnt ? list : "nothing");
                rd_kafka_assign(rk, parts);
                atomic_store(&loop->joined, 1);
                loop->paused_applied = 0;
                if (parts->cnt && want_pause(loop)) {
                        apply_pause(loop, parts, 1);
                        loop->paused_applied = 1;
                }
                return;
        }
        /* Revoke, or an error: give up what we own (eager: all of it). */
        {
                if (e != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
                        parts = NULL;
                int64_t deadline = clock_mono_ms() + loop->revoke_timeout_ms;
                /* When stopping, the stop's own drain already ran. */
                if (loop->stop_deadline && loop->stop_deadline < deadline)
                        deadline = loop->stop_deadline;
                if (e != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
                        log_warn(loop->name,
                                 "rebalance error: %s; dropping the assignment",
                                 rd_kafka_err2str(e));
                atomic_store(&loop->joined, 0);
                log_info(loop->name,
                         "revoked %s; finishing in-flight work first",
                         parts && parts->cnt ? list : "nothing");
                drop_pending(loop);
                if (drain(loop, deadline, 1) == -1) {
                        /* The new owner will redo these: make ours stop, so
                         * the same request never runs twice at once. */
                        log_warn(loop->name,
                                 "in-flight work still running at the revoke "
                                 "deadline; "
                                 "abandoning it (the new owner redoes it)");
                        cancel_running(loop, 0);
                }
                /* When stopping, commit_final() already ran before close:
                 * a sync commit could block long on a dead broker. */
                if (!rd_kafka_assignment_lost(rk) && !loop->stop_deadline)
                        offset_tracker_foreach_uncommitted(
                            loop->tracker, commit_sync_cb, loop);
                rd_kafka_topic_partition_list_t *owned = NULL;
                if (!parts && rd_kafka_assignment(rk, &owned) ==
                                  RD_KAFKA_RESP_ERR_NO_ERROR)
                        parts = owned;
                for (int i = 0; parts && i < parts->cnt; i++)
                        offset_tracker_remove(loop->tracker,
                                              parts->elems[i].topic,
                                              parts->elems[i].partition);
                loop->generation++;
                /* Pause state survives an unassign in librdkafka: clear it. */
                if (parts && parts->cnt)
                        apply_pause(loop, parts, 0);
                if (owned)
                        rd_kafka_topic_partition_list_destroy(owned);
                loop->paused_applied = 0;
                rd_kafka_assign(rk, NULL);
                return;
        }
}

/* ------------------------------------------------------------------ */
/* Life cycle */

struct kafka_loop *kafka_loop_new(const struct kafka_loop_opts *opts,
                                  const struct job_handler *handler,
                                  struct err *err) {
        char errstr[512];
        rd_kafka_conf_t *conf = opts->conf;
        struct kafka_loop *loop = calloc(1, sizeof(*loop));

        if (!loop) {
                rd_kafka_conf_destroy(conf);
                err_set(err, ERR_PERMANENT, 0, "%s: out of memory", opts->name);
                return NULL;
        }
        loop->name = strdup(opts->name);
        loop->topic = strdup(opts->topic);
        loop->group = strdup(opts->group);
        loop->dlq_topic = strdup(opts->dlq_topic);
        loop->events_topic = strdup(opts->events_topic);
        loop->max_in_flight = opts->max_in_flight < 1 ? 1 : opts->max_in_flight;
        loop->prefetch_high = opts->prefetch_high < 0 ? 0 : opts->prefetch_high;
        loop->prefetch_low = opts->prefetch_low < 0 ? 0
                             : opts->prefetch_low > loop->prefetch_high
                                 ? loop->prefetch_high
                                 : opts->prefetch_low;
        loop->drain_timeout_ms = opts->drain_timeout_ms;
        loop->revoke_timeout_ms = opts->revoke_timeout_ms > 0
                                      ? opts->revoke_timeout_ms
                                      : opts->drain_timeout_ms;
        loop->handler = *handler;
        loop->producer = opts->producer;
        loop->breaker = opts->breaker;
        loop->tracker = offset_tracker_new();
        loop->running =
            calloc((size_t)loop->max_in_flight, sizeof(*loop->running));
        snprintf(loop->labels, sizeof(loop->labels), "topic=\"%s\"",
                 opts->topic);
        pthread_mutex_init(&loop->lock, NULL);
        pthread_cond_init(&loop->cond, NULL);
        pthread_cond_init(&loop->idle_cond, NULL);
        atomic_store(&loop->last_poll_ms, clock_mono_ms());
        if (!loop->name || !loop->topic || !loop->group || !loop->dlq_topic ||
            !loop->events_topic || !loop->tracker || !loop->running) {
                rd_kafka_conf_destroy(conf);
                err_set(err, ERR_PERMANENT, 0, "%s: out of memory", opts->name);
                goto fail;
        }

        metrics_describe("thopter_in_flight", METRICS_GAUGE,
                         "Requests being worked on");
        metrics_describe("thopter_paused", METRICS_GAUGE,
                         "1 while the loop's partitions are paused");
        metrics_describe("thopter_messages_received_total", METRICS_COUNTER,
                         "Records received from Kafka");
        metrics_describe(
            "thopter_messages_finished_total", METRICS_COUNTER,
            "Records finished (completed, or dead letter acknowledged)");
        metrics_describe("thopter_requests_total", METRICS_COUNTER,
                         "Requests by outcome");
        metrics_describe("thopter_dead_letters_total", METRICS_COUNTER,
                         "Dead letters by class");
        metrics_describe(
            "thopter_dead_letter_send_failures_total", METRICS_COUNTER,
            "Dead-letter sends that failed (their offsets stay uncommitted)");
        metrics_describe("thopter_event_send_failures_total", METRICS_COUNTER,
                         "Final status events not acknowledged (their offsets "
                         "stay uncommitted)");
        metrics_describe("thopter_rebalances_total", METRICS_COUNTER,
                         "Rebalance callbacks");
        metrics_describe("thopter_commit_failures_total", METRICS_COUNTER,
                         "Offset commits that failed");
        metrics_describe(
            "thopter_last_commit_timestamp_seconds", METRICS_GAUGE,
            "Unix time of the last offset commit the broker confirmed");
        metrics_describe("thopter_job_duration_seconds", METRICS_HISTOGRAM,
                         "Time to work one request");
        metrics_set("thopter_in_flight", loop->labels, 0);

        if (kafka_conf_set(conf, "group.id", opts->group, err) == -1 ||
            kafka_conf_set(conf, "enable.auto.commit", "false", err) == -1 ||
            kafka_conf_set(conf, "enable.auto.offset.store", "false", err) ==
                -1 ||
            kafka_conf_set(conf, "partition.assignment.strategy", "range",
                           err) == -1 ||
            kafka_conf_set(conf, "auto.offset.reset", "earliest", err) == -1) {
                rd_kafka_conf_destroy(conf);
                goto fail;
        }
        rd_kafka_conf_set_opaque(conf, loop);
        rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
        rd_kafka_conf_set_offset_commit_cb(conf, offset_commit_cb);
        loop->rk =
            rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
        if (!loop->rk) {
                rd_kafka_conf_destroy(conf);
                err_set(err, ERR_PERMANENT, 0, "%s: consumer: %s", opts->name,
                        errstr);
                goto fail;
        }
        rd_kafka_poll_set_consumer(loop->rk);
        loop->queue = rd_kafka_queue_get_consumer(loop->rk);

        loop->workers = calloc((size_t)loop->max_in_flight, sizeof(pthread_t));
        for (int i = 0; loop->workers && i < loop->max_in_flight; i++) {
                if (pthread_create(&loop->workers[i], NULL, worker_main,
                                   loop) != 0)
                        break;
                loop->n_workers++;
        }
        if (loop->n_workers != loop->max_in_flight) {
                err_set(err, ERR_PERMANENT, 0,
                        "%s: cannot start worker threads", opts->name);
                goto fail;
        }
        return loop;
fail:
        kafka_loop_destroy(loop);
        return NULL;
}

static void on_message(struct kafka_loop *loop, rd_kafka_message_t *rkm) {
        struct err err = {0};
        struct job *job;

        if (rkm->err) {
                if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                        log_warn(loop->name, "consumer: %s",
                                 rd_kafka_message_errstr(rkm));
                return;
        }
        metrics_inc("thopter_messages_received_total", loop->labels, 1);
        job = job_from_message(loop, rkm);
        if (!job) {
                /* An untracked record would be committed past by the next
                 * one: better to die and have it redelivered. */
                log_error(loop->name, "out of memory copying a record; "
                                      "aborting so it is redelivered");
                abort();
        }
        if (atomic_load(&loop->stopping)) {
                job_free(loop, job);
                return;
        }
        int added = offset_tracker_add(loop->tracker, job->topic,
                                       job->partition, job->offset);
        if (added == -2) {
                log_error(loop->name, "out of memory tracking an offset; "
                                      "aborting so it is redelivered");
                abort();
        }
        if (added == -1)
                log_warn(loop->name,
                         "%s [%" PRId32 "] @%" PRId64
                         " delivered out of order; "
                         "worked on but not tracked for commit",
                         job->topic, job->partition, job->offset);
        if (loop->handler.prepare(job, loop->handler.opaque, &err) == -1) {
                if (err.cls == ERRC_NONE)
                        err_classify(&err, ERRC_INVALID_REQUEST, "validate");
                finish(loop, job, &err);
                return;
        }
        pthread_mutex_lock(&loop->lock);
        if (loop->pending_tail)
                loop->pending_tail->next = job;
        else
                loop->pending_head = job;
        loop->pending_tail = job;
        loop->n_pending++;
        pthread_cond_signal(&loop->cond);
        pthread_mutex_unlock(&loop->lock);
}

/* Commit what is finished, waiting up to @p timeout_ms for the broker: async
 * commits plus polling, so a broker that is gone cannot hold the stop. */
static void commit_final(struct kafka_loop *loop, long timeout_ms) {
        int64_t end = clock_mono_ms() + timeout_ms;
        int pending = 0;

        offset_tracker_foreach_uncommitted(loop->tracker, recommit_cb, loop);
        for (;;) {
                pending = 0;
                offset_tracker_foreach_uncommitted(loop->tracker, count_cb,
                                                   &pending);
                if (!pending || clock_mono_ms() >= end)
                        break;
                rd_kafka_message_t *rkm = rd_kafka_consumer_poll(loop->rk, 100);
                if (rkm)
                        rd_kafka_message_destroy(
                            rkm); /* paused: not ours now */
        }
        if (pending)
                log_warn(
                    loop->name,
                    "%d partition(s) could not be committed before closing; "
                    "their finished requests will be redelivered",
                    pending);
}

/* rd_kafka_consumer_close(), but bounded: with the brokers gone it can wait
 * a long time to leave the group, and a stop must not. The rebalance
 * callback still runs, from this queue. */
static void close_bounded(struct kafka_loop *loop, long timeout_ms) {
        rd_kafka_queue_t *q = rd_kafka_queue_new(loop->rk);
        rd_kafka_error_t *e = rd_kafka_consumer_close_queue(loop->rk, q);
        int64_t end = clock_mono_ms() + timeout_ms;

        if (e) {
                log_warn(loop->name, "close: %s", rd_kafka_error_string(e));
                rd_kafka_error_destroy(e);
        } else {
                while (!rd_kafka_consumer_closed(loop->rk) &&
                       clock_mono_ms() < end)
                        rd_kafka_queue_poll_callback(q, 100);
                if (!rd_kafka_consumer_closed(loop->rk))
                        log_warn(loop->name,
                                 "the consumer did not close within %ld ms "
                                 "(brokers unreachable?); "
                                 "the group notices when its session times out",
                                 timeout_ms);
        }
        rd_kafka_queue_destroy(q);
}

int kafka_loop_run(struct kafka_loop *loop) {
        rd_kafka_topic_partition_list_t *topics =
            rd_kafka_topic_partition_list_new(1);
        rd_kafka_resp_err_t e;
        int rc = 0;

        rd_kafka_topic_partition_list_add(topics, loop->topic,
                                          RD_KAFKA_PARTITION_UA);
        e = rd_kafka_subscribe(loop->rk, topics);
        rd_kafka_topic_partition_list_destroy(topics);
        if (e) {
                log_error(loop->name, "subscribe to %s: %s", loop->topic,
                          rd_kafka_err2str(e));
                return -1;
        }
        log_info(loop->name, "consuming %s in group %s, %d in flight at most",
                 loop->topic, loop->group, loop->max_in_flight);

        for (;;) {
                atomic_store(&loop->last_poll_ms, clock_mono_ms());
                process_done(loop);
                if (atomic_load(&loop->stopping)) {
                        if (!loop->stop_deadline) {
                                loop->stop_deadline =
                                    clock_mono_ms() + loop->drain_timeout_ms;
                                drop_pending(loop);
                                /* A job that only waits (capacity) has done
                                 * nothing yet: it goes back to Kafka now. */
                                cancel_running(loop, 1);
                                log_info(loop->name,
                                         "stopping: taking nothing new, "
                                         "finishing in-flight work "
                                         "(up to %ld ms)",
                                         loop->drain_timeout_ms);
                        }
                        pthread_mutex_lock(&loop->lock);
                        int idle = loop->n_running == 0 &&
                                   loop->n_finishing == 0 && !loop->n_pending;
                        pthread_mutex_unlock(&loop->lock);
                        if (idle)
                                break;
                        if (clock_mono_ms() >= loop->stop_deadline) {
                                pthread_mutex_lock(&loop->lock);
                                int running = loop->n_running;
                                int finishing = loop->n_finishing;
                                pthread_mutex_unlock(&loop->lock);
                                if (running) {
                                        /* Work itself is cut short. */
                                        log_warn(
                                            loop->name,
                                            "drain deadline passed; abandoning "
                                            "%d job(s) in flight (they will "
                                            "be redelivered)",
                                            running);
                                        rc = -1;
                                } else {
                                        /* The work is done; only the broker's
                                         * acknowledgements are missing. */
                                        log_warn(
                                            loop->name,
                                            "drain deadline passed; %d "
                                            "finished request(s) whose final "
                                            "event or dead letter the broker "
                                            "did not acknowledge stay "
                                            "uncommitted and will be "
                                            "redelivered",
                                            finishing);
                                }
                                atomic_store(&loop->cancel, 1);
                                cancel_running(loop, 0);
                                break;
                        }
                }
                update_pause(loop);
                rd_kafka_message_t *rkm = rd_kafka_consumer_poll(loop->rk, 100);
                if (rkm) {
                        on_message(loop, rkm);
                        rd_kafka_message_destroy(rkm);
                }
        }

        /* Let cancelled jobs return (their steps watch job->cancel). */
        drain(loop, clock_mono_ms() + 5000, 0);
        commit_final(loop, 5000);
        pthread_mutex_lock(&loop->lock);
        loop->workers_exit = 1;
        pthread_cond_broadcast(&loop->cond);
        int stuck = loop->n_running;
        pthread_mutex_unlock(&loop->lock);
        log_info(loop->name, "closing the consumer");
        close_bounded(loop, 10000);
        if (stuck) {
                /* A worker is inside a call that cannot be interrupted
                 * (HTTP, SSH). Joining it could take minutes; freeing what it
                 * uses would crash it. The caller exits instead. */
                log_warn(
                    loop->name,
                    "%d job(s) still in a remote call; not waiting for them",
                    stuck);
                return -2;
        }
        for (int i = 0; i < loop->n_workers; i++)
                pthread_join(loop->workers[i], NULL);
        loop->n_workers = 0;
        log_info(loop->name, "stopped");
        return rc;
}

int kafka_loop_busy(struct kafka_loop *loop) {
        pthread_mutex_lock(&loop->lock);
        int n = loop->n_running;
        pthread_mutex_unlock(&loop->lock);
        return n;
}

void kafka_loop_stop(struct kafka_loop *loop) {
        atomic_store(&loop->stopping, 1);
        wake_poll(loop);
}

void kafka_loop_hold(struct kafka_loop *loop, int on) {
        atomic_store(&loop->hold, on);
        wake_poll(loop);
}

int kafka_loop_ready(struct kafka_loop *loop,
                     int timeout_ms,
                     char *why,
                     size_t cap) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t e;

        if (!atomic_load(&loop->joined)) {
                snprintf(why, cap, "%s: not yet joined group %s", loop->name,
                         loop->group);
                return 0;
        }
        int stuck = 0;
        pthread_mutex_lock(&loop->lock);
        for (struct job *j = loop->resend_head; j; j = j->next)
                stuck += j->send_tries >= 3;
        pthread_mutex_unlock(&loop->lock);
        if (stuck) {
                snprintf(why, cap,
                         "%s: %d dead letter(s) or final event(s) cannot be "
                         "delivered",
                         loop->name, stuck);
                return 0;
        }
        e = rd_kafka_metadata(loop->rk, 0, NULL, &md, timeout_ms);
        if (e) {
                snprintf(why, cap, "%s: brokers do not answer: %s", loop->name,
                         rd_kafka_err2str(e));
                return 0;
        }
        rd_kafka_metadata_destroy(md);
        return 1;
}

long kafka_loop_poll_age_ms(struct kafka_loop *loop) {
        return (long)(clock_mono_ms() - atomic_load(&loop->last_poll_ms));
}

const char *kafka_loop_name(const struct kafka_loop *loop) {
        return loop->name;
}

void kafka_loop_destroy(struct kafka_loop *loop) {
        if (!loop)
                return;
        pthread_mutex_lock(&loop->lock);
        loop->workers_exit = 1;
        atomic_store(&loop->cancel, 1);
        for (int i = 0; i < loop->max_in_flight && loop->running; i++)
                if (loop->running[i])
                        loop->running[i]->cancel = 1;
        pthread_cond_broadcast(&loop->cond);
        pthread_mutex_unlock(&loop->lock);
        for (int i = 0; i < loop->n_workers; i++)
                pthread_join(loop->workers[i], NULL);
        free(loop->workers);
        /* The producer is destroyed before the loops, so every dead letter
         * has reported back by now: free what is left without sending. */
        drop_pending(loop);
        for (struct job **list = &loop->done_head; list;
             list = list == &loop->done_head ? &loop->resend_head : NULL) {
                while (*list) {
                        struct job *j = *list;
                        *list = j->next;
                        job_free(loop, j);
                }
        }
        if (loop->queue)
                rd_kafka_queue_destroy(loop->queue);
        if (loop->rk)
                rd_kafka_destroy(loop->rk);
        offset_tracker_destroy(loop->tracker);
        free(loop->running);
        pthread_cond_destroy(&loop->cond);
        pthread_cond_destroy(&loop->idle_cond);
        pthread_mutex_destroy(&loop->lock);
        free(loop->name);
        free(loop->topic);
        free(loop->group);
        free(loop->dlq_topic);
        free(loop->events_topic);
        free(loop);
}

/* ------------------------------------------------------------------ */
/* Lag (for the health server's /metrics) */

const char *kafka_loop_topic(const struct kafka_loop *loop) {
        return loop->topic;
}

/* Lag is computed from the broker, not from librdkafka's statistics: the
 * statistics' hi_offset is not refreshed for paused partitions (librdkafka
 * #4996), and a full loop is exactly a paused one. rd_kafka_assignment(),
 * rd_kafka_committed() and rd_kafka_query_watermark_offsets() are safe from
 * any thread; they only queue requests for librdkafka's own threads. */
int kafka_loop_lag(struct kafka_loop *loop,
                   int timeout_ms,
                   kafka_loop_lag_fn *fn,
                   void *arg) {
        rd_kafka_topic_partition_list_t *parts = NULL;
        rd_kafka_resp_err_t e;
        int n = 0;

        if (!atomic_load(&loop->joined))
                return 0;
        e = rd_kafka_assignment(loop->rk, &parts);
        if (e || !parts)
                return -1;
        if (parts->cnt == 0) {
                rd_kafka_topic_partition_list_destroy(parts);
                return 0;
        }
        e = rd_kafka_committed(loop->rk, parts, timeout_ms);
        if (e) {
                rd_kafka_topic_partition_list_destroy(parts);
                return -1;
        }
        for (int i = 0; i < parts->cnt; i++) {
                rd_kafka_topic_partition_t *p = &parts->elems[i];
                int64_t lo = 0, hi = 0;
                if (p->err)
                        continue;
                e = rd_kafka_query_watermark_offsets(
                    loop->rk, p->topic, p->partition, &lo, &hi, timeout_ms);
                if (e)
                        continue;
                /* Nothing committed yet: the group starts at the earliest
                 * offset (auto.offset.reset=earliest), so all of it is lag. */
                int64_t from = p->offset >= 0 ? p->offset : lo;
                fn(p->topic, p->partition, hi > from ? hi - from : 0, arg);
                n++;
        }
        rd_kafka_topic_partition_list_destroy(parts);
        return n;
}
