/* kafka_loop.c - the life cycle and the poll thread of a Kafka loop; see
 * kafka_loop.h, and kafka_loop_int.h for how the loop is split in files.
 *
 * DESIGN
 * ------
 * Threads: one poll thread (kafka_loop_run), max_in_flight workers
 * (kafka_workers.c), and the producer's delivery thread, which reports final
 * events and dead letters acknowledged (kafka_finish.c). Everything
 * Kafka-side (assign, pause, commit, the offset tracker) happens on the poll
 * thread. Workers and the delivery thread hand finished jobs back through
 * `done` under `lock` and wake the poll thread with rd_kafka_queue_yield(),
 * so a finished job is committed (and a paused partition resumed) without
 * waiting for the poll timeout.
 *
 */
/* clang-format off */
/*
 *   poll -> prepare --invalid--> "failed" event + dead letter --both acked--> done
 *                   \--valid---> pending -> worker -> run
 *                                  run --ok----> "completed" event --acked--> done
 *                                  run --fail--> "failed" event + dead letter --both acked--> done
 *                                  run --cancelled--> done (abandoned: not committed)
 *   done -> offset_tracker_finish -> commit the contiguous finished prefix
 */
/* clang-format on */
/*
 * Intake is paused while the queue is full (hysteresis between prefetch_low
 * and prefetch_high queued records beyond max_in_flight), while the fly
 * circuit is open, while a job holds intake (provision capacity), and while
 * stopping (kafka_pause.c). Pausing purges librdkafka's prefetch, so a
 * record seen here is a record the tracker knows; none is skipped.
 */
#include "kafka_loop_int.h"
#include "clock.h"
#include "kafka_conf.h"
#include "kafka_offsets.h"
#include "log.h"
#include "metrics.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Dispatch */

/* A record the loop cannot track must not be committed past: stop, exit
 * non-zero, and let it be redelivered. */
static void fail_loop(struct kafka_loop *loop, const char *why) {
        log_error(loop->name, "%s: stopping so that it is redelivered", why);
        atomic_store(&loop->failed, 1);
        atomic_store(&loop->stopping, 1);
}

static void on_message(struct kafka_loop *loop, rd_kafka_message_t *rkm) {
        struct err err = {0};
        struct kafka_job *kj;

        if (rkm->err) {
                if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                        log_warn(loop->name, "consumer: %s",
                                 rd_kafka_message_errstr(rkm));
                return;
        }
        metrics_inc(M_MESSAGES_RECEIVED, loop->labels, 1);
        if (atomic_load(&loop->stopping))
                return; /* not tracked: redelivered */
        kj = kafka_job_new(loop, rkm);
        if (!kj) {
                fail_loop(loop, "out of memory copying a record");
                return;
        }
        struct job_record *rec = &kj->job.rec;
        switch (offset_tracker_add(loop->tracker, rec->topic, rec->partition,
                                   rec->offset)) {
        case OFFSET_TRACKER_ADDED:
                break;
        case OFFSET_TRACKER_OUT_OF_ORDER:
                log_warn(loop->name,
                         "%s [%" PRId32 "] @%" PRId64
                         " delivered out of order; worked on but not tracked "
                         "for commit",
                         rec->topic, rec->partition, rec->offset);
                break;
        case OFFSET_TRACKER_OOM:
                kafka_job_free(loop, kj);
                fail_loop(loop, "out of memory tracking an offset");
                return;
        }
        if (loop->handler.prepare(&kj->job, loop->handler.opaque, &err) == -1) {
                if (err.cls == ERRC_NONE)
                        err_classify(&err, ERRC_INVALID_REQUEST, "validate");
                kafka_finish(loop, kj, &err);
                return;
        }
        kafka_workers_enqueue(loop, kj);
}

/* ------------------------------------------------------------------ */
/* Running and stopping */

/* rd_kafka_consumer_close(), but bounded: with the brokers gone it can wait
 * a long time to leave the group, and a stop must not. The rebalance
 * callback still runs, from this queue. */
static void close_bounded(struct kafka_loop *loop, long timeout_ms) {
        rd_kafka_queue_t *q = rd_kafka_queue_new(loop->rk);
        rd_kafka_error_t *e = rd_kafka_consumer_close_queue(loop->rk, q);
        int64_t end = clock_deadline(timeout_ms);

        if (e) {
                log_warn(loop->name, "close: %s", rd_kafka_error_string(e));
                rd_kafka_error_destroy(e);
        } else {
                while (!rd_kafka_consumer_closed(loop->rk) &&
                       clock_left_ms(end) > 0)
                        rd_kafka_queue_poll_callback(q, 100);
                if (!rd_kafka_consumer_closed(loop->rk))
                        log_warn(loop->name,
                                 "the consumer did not close within %ld ms "
                                 "(brokers unreachable?); the group notices "
                                 "when its session times out",
                                 timeout_ms);
        }
        rd_kafka_queue_destroy(q);
}

/* Counters under the lock. */
static void counts(struct kafka_loop *loop, int *running, int *finishing) {
        pthread_mutex_lock(&loop->lock);
        *running = loop->n_running;
        *finishing = loop->n_finishing;
        pthread_mutex_unlock(&loop->lock);
}

/* One tick of a stop: 1 when the loop may leave the poll loop. */
static int stop_tick(struct kafka_loop *loop, enum kafka_loop_exit *rc) {
        int running, finishing;

        if (!loop->stop_deadline) {
                loop->stop_deadline = clock_deadline(loop->drain_timeout_ms);
                kafka_workers_drop_pending(loop);
                /* A job that only waits (capacity) has done nothing yet: it
                 * goes back to Kafka now. */
                kafka_workers_cancel(loop, 1);
                log_info(loop->name,
                         "stopping: taking nothing new, finishing in-flight "
                         "work (up to %ld ms)",
                         loop->drain_timeout_ms);
        }
        counts(loop, &running, &finishing);
        if (running == 0 && finishing == 0)
                return 1;
        if (clock_left_ms(loop->stop_deadline) > 0)
                return 0;
        if (running) {
                /* Work itself is cut short. */
                log_warn(loop->name,
                         "drain deadline passed; abandoning %d job(s) in "
                         "flight (they will be redelivered)",
                         running);
                *rc = KAFKA_LOOP_ABANDONED;
        } else {
                /* The work is done; only the broker's acknowledgements are
                 * missing. */
                log_warn(loop->name,
                         "drain deadline passed; %d finished request(s) whose "
                         "final event or dead letter the broker did not "
                         "acknowledge stay uncommitted and will be "
                         "redelivered",
                         finishing);
        }
        kafka_workers_cancel(loop, 0);
        return 1;
}

enum kafka_loop_exit kafka_loop_run(struct kafka_loop *loop) {
        rd_kafka_topic_partition_list_t *topics =
            rd_kafka_topic_partition_list_new(1);
        enum kafka_loop_exit rc = KAFKA_LOOP_DRAINED;
        rd_kafka_resp_err_t e;

        rd_kafka_topic_partition_list_add(topics, loop->topic,
                                          RD_KAFKA_PARTITION_UA);
        e = rd_kafka_subscribe(loop->rk, topics);
        rd_kafka_topic_partition_list_destroy(topics);
        if (e) {
                log_error(loop->name, "subscribe to %s: %s", loop->topic,
                          rd_kafka_err2str(e));
                return KAFKA_LOOP_ABANDONED;
        }
        log_info(loop->name, "consuming %s in group %s, %d in flight at most",
                 loop->topic, loop->group, loop->max_in_flight);
        kafka_join_waiting(loop);

        for (;;) {
                atomic_store(&loop->last_poll_ms, clock_mono_ms());
                kafka_commit_process_done(loop);
                if (atomic_load(&loop->stopping) && stop_tick(loop, &rc))
                        break;
                kafka_pause_update(loop);
                kafka_join_tick(loop);
                rd_kafka_message_t *rkm = rd_kafka_consumer_poll(loop->rk, 100);
                if (rkm) {
                        on_message(loop, rkm);
                        rd_kafka_message_destroy(rkm);
                }
        }
        if (atomic_load(&loop->failed))
                rc = KAFKA_LOOP_ABANDONED;

        /* Let cancelled jobs return (their steps watch job->cancel). */
        kafka_commit_drain(loop, clock_deadline(5000), 0);
        kafka_commit_final(loop, 5000);
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
                log_warn(loop->name,
                         "%d job(s) still in a remote call; not waiting for "
                         "them",
                         stuck);
                return KAFKA_LOOP_STUCK;
        }
        kafka_workers_join(loop);
        log_info(loop->name, "stopped");
        return rc;
}

void kafka_loop_stop(struct kafka_loop *loop) {
        atomic_store(&loop->stopping, 1);
        kafka_job_wake_poll(loop);
}

/* ------------------------------------------------------------------ */
/* Health */

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
        int stuck = kafka_finish_stuck(loop);
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

const char *kafka_loop_topic(const struct kafka_loop *loop) {
        return loop->topic;
}

/* Lag is computed from the broker, not from librdkafka's statistics: the
 * statistics' hi_offset is not refreshed for paused partitions (librdkafka
 * #4996), and a full loop is exactly a paused one. rd_kafka_assignment(),
 * kafka_offsets_committed() and kafka_offsets_query() are safe from any thread;
 * they only queue requests for librdkafka's own threads. (Not
 * rd_kafka_query_watermark_offsets(): it hangs while a leader is down,
 * kafka_offsets.h.) A partition whose leader does not answer in time is
 * left out of this scrape. */
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
        e = kafka_offsets_committed(loop->rk, parts, timeout_ms);
        if (e) {
                rd_kafka_topic_partition_list_destroy(parts);
                return -1;
        }
        for (int i = 0; i < parts->cnt; i++) {
                rd_kafka_topic_partition_t *p = &parts->elems[i];
                int64_t lo = 0, hi = 0;
                if (p->err)
                        continue;
                e = kafka_offsets_query(loop->rk, p->topic, p->partition,
                                        p->offset >= 0 ? NULL : &lo, &hi,
                                        timeout_ms);
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
                err_oom(err, opts->name);
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
        clock_cond_init(&loop->idle_cond);
        atomic_store(&loop->last_poll_ms, clock_mono_ms());
        if (!loop->name || !loop->topic || !loop->group || !loop->dlq_topic ||
            !loop->events_topic || !loop->tracker || !loop->running) {
                rd_kafka_conf_destroy(conf);
                err_oom(err, opts->name);
                goto fail;
        }
        /* Every per-topic series exists from the start (at 0), so alerts
         * and dashboards see them before the first event. */
        metrics_set(M_IN_FLIGHT, loop->labels, 0);
        metrics_set(M_PAUSED, loop->labels, 0);
        static const enum metrics_id zero[] = {
            M_MESSAGES_RECEIVED,         M_MESSAGES_FINISHED,
            M_COMMIT_FAILURES,           M_REBALANCES,
            M_DEAD_LETTER_SEND_FAILURES, M_EVENT_SEND_FAILURES};
        for (size_t i = 0; i < sizeof(zero) / sizeof(zero[0]); i++)
                metrics_inc(zero[i], loop->labels, 0);
        for (int c = ERRC_INVALID_REQUEST; c <= ERRC_INTERNAL; c++) {
                char labels[256];
                snprintf(labels, sizeof(labels), "topic=\"%s\",class=\"%s\"",
                         opts->topic, err_class_name((enum err_class)c));
                metrics_inc(M_DEAD_LETTERS, labels, 0);
        }

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
        loop->session_timeout_ms = kafka_join_session_timeout(conf);
        rd_kafka_conf_set_opaque(conf, loop);
        rd_kafka_conf_set_rebalance_cb(conf, kafka_rebalance_cb);
        rd_kafka_conf_set_offset_commit_cb(conf, kafka_commit_cb);
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
        if (kafka_workers_start(loop, err) == -1)
                goto fail;
        return loop;
fail:
        kafka_loop_destroy(loop);
        return NULL;
}

void kafka_loop_destroy(struct kafka_loop *loop) {
        if (!loop)
                return;
        kafka_workers_cancel(loop, 0);
        kafka_workers_join(loop);
        /* The producer is destroyed before the loops, so every final event
         * and dead letter has reported back by now: free what is left. */
        kafka_workers_drop_pending(loop);
        for (struct kafka_job **list = &loop->done_head; list;
             list = list == &loop->done_head ? &loop->resend_head : NULL) {
                while (*list) {
                        struct kafka_job *kj = *list;
                        *list = kj->next;
                        kafka_job_free(loop, kj);
                }
        }
        if (loop->queue)
                rd_kafka_queue_destroy(loop->queue);
        if (loop->rk)
                rd_kafka_destroy(loop->rk);
        offset_tracker_destroy(loop->tracker);
        free(loop->running);
        free(loop->workers);
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
