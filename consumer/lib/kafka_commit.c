/* kafka_commit.c - commits of each partition's contiguous finished prefix,
 * and what a rebalance does to them. See kafka_loop_int.h.
 *
 * DESIGN
 * ------
 * A finished record (kafka_finish.c) goes to offset_tracker_finish(); when a
 * partition's committable offset advances, it is committed at once,
 * asynchronously, and the broker's answer (kafka_commit_cb) marks it
 * confirmed. Every RECOMMIT_EVERY_MS what is finished but unconfirmed is
 * committed again, so a refused commit (the broker in a rebalance, a
 * coordinator move) is not lost. On revoke, running work may finish (up to
 * the revoke timeout) and is committed synchronously before the partitions
 * go; on stop, kafka_commit_final() does the same, bounded.
 *
 * Why not rd_kafka_offsets_store() with librdkafka's auto-commit timer:
 * weighed, and kept by hand for three reasons. (1) A finished record is
 * committed when it finishes, not up to auto.commit.interval.ms later, so a
 * crash redoes only what was in flight (redone provisions cost fly lookups
 * and an SSH check each). (2) The revoke path must commit *after* draining
 * in-flight work and before unassigning; with auto-commit, 2.0.2 commits
 * the stored offsets of removed partitions itself at unassign time and
 * clears them (rdkafka_assignment.c), which gives no say over the order,
 * and a store for a revoked partition fails with _STATE. (3) A stop must be
 * bounded even with the brokers gone; here it is async commits polled up to
 * a deadline, where rd_kafka_consumer_close()'s own commit is not bounded
 * separately. The cost is this file: about 150 lines.
 */
#include "kafka_loop_int.h"
#include "clock.h"
#include "log.h"
#include "metrics.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#define RECOMMIT_EVERY_MS 1000

static void commit_one(struct kafka_loop *loop,
                       const char *topic,
                       int32_t partition,
                       int64_t offset,
                       int async) {
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, topic, partition)->offset = offset;
        rd_kafka_resp_err_t e = rd_kafka_commit(loop->rk, l, async);
        if (!async && !e)
                offset_tracker_committed(loop->tracker, topic, partition,
                                         offset);
        else if (e)
                log_warn(loop->name,
                         "commit of %s [%" PRId32 "] @%" PRId64 " failed: %s",
                         topic, partition, offset, rd_kafka_err2str(e));
        rd_kafka_topic_partition_list_destroy(l);
}

static void commit_async_cb(const char *topic,
                            int32_t partition,
                            int64_t offset,
                            void *arg) {
        commit_one(arg, topic, partition, offset, 1);
}

static void commit_sync_cb(const char *topic,
                           int32_t partition,
                           int64_t offset,
                           void *arg) {
        commit_one(arg, topic, partition, offset, 0);
}

static void
count_cb(const char *topic, int32_t partition, int64_t offset, void *arg) {
        (void)topic;
        (void)partition;
        (void)offset;
        (*(int *)arg)++;
}

void kafka_commit_cb(rd_kafka_t *rk,
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
                        metrics_set(M_LAST_COMMIT_TIMESTAMP, loop->labels,
                                    (double)clock_wall_ms() / 1000.0);
                } else {
                        metrics_inc(M_COMMIT_FAILURES, loop->labels, 1);
                        log_warn(loop->name,
                                 "commit of %s [%" PRId32
                                 "] failed: %s (will retry)",
                                 p->topic, p->partition,
                                 rd_kafka_err2str(e ? e : p->err));
                }
        }
}

void kafka_commit_process_done(struct kafka_loop *loop) {
        struct kafka_job *done;
        int64_t now = clock_mono_ms();

        pthread_mutex_lock(&loop->lock);
        done = loop->done_head;
        loop->done_head = NULL;
        pthread_mutex_unlock(&loop->lock);

        while (done) {
                struct kafka_job *kj = done;
                const struct job_record *rec = &kj->job.rec;
                int64_t commit;
                done = kj->next;
                if (!kj->abandoned && kj->generation == loop->generation &&
                    offset_tracker_finish(loop->tracker, rec->topic,
                                          rec->partition, rec->offset,
                                          &commit) == 1)
                        commit_one(loop, rec->topic, rec->partition, commit, 1);
                if (!kj->abandoned)
                        metrics_inc(M_MESSAGES_FINISHED, loop->labels, 1);
                kafka_job_free(loop, kj);
        }
        kafka_finish_resend_due(loop);
        if (now - loop->last_recommit_ms >= RECOMMIT_EVERY_MS) {
                offset_tracker_foreach_uncommitted(loop->tracker,
                                                   commit_async_cb, loop);
                loop->last_recommit_ms = now;
        }
}

int kafka_commit_drain(struct kafka_loop *loop,
                       int64_t deadline,
                       int with_acks) {
        int idle = 0;
        for (;;) {
                /* Waiting for work to finish is the loop being alive. */
                atomic_store(&loop->last_poll_ms, clock_mono_ms());
                kafka_commit_process_done(loop);
                pthread_mutex_lock(&loop->lock);
                idle = loop->n_running == 0 &&
                       (!with_acks || loop->n_finishing == 0);
                if (!idle && clock_left_ms(deadline) > 0)
                        clock_cond_wait_ms(&loop->idle_cond, &loop->lock, 50);
                pthread_mutex_unlock(&loop->lock);
                if (idle || clock_left_ms(deadline) <= 0)
                        break;
        }
        kafka_commit_process_done(loop);
        return idle ? 0 : -1;
}

/* Async commits plus polling, so a broker that is gone cannot hold the
 * stop. */
void kafka_commit_final(struct kafka_loop *loop, long timeout_ms) {
        int64_t end = clock_deadline(timeout_ms);
        int pending = 0;

        offset_tracker_foreach_uncommitted(loop->tracker, commit_async_cb,
                                           loop);
        for (;;) {
                pending = 0;
                offset_tracker_foreach_uncommitted(loop->tracker, count_cb,
                                                   &pending);
                if (!pending || clock_left_ms(end) <= 0)
                        break;
                rd_kafka_message_t *rkm = rd_kafka_consumer_poll(loop->rk, 100);
                if (rkm) /* paused: not ours now */
                        rd_kafka_message_destroy(rkm);
        }
        if (pending)
                log_warn(loop->name,
                         "%d partition(s) could not be committed before "
                         "closing; their finished requests will be "
                         "redelivered",
                         pending);
}

static void on_assign(struct kafka_loop *loop,
                      rd_kafka_topic_partition_list_t *parts,
                      const char *list) {
        loop->generation++;
        kafka_join_done(loop);
        log_info(loop->name, "assigned %s", parts->cnt ? list : "nothing");
        rd_kafka_assign(loop->rk, parts);
        atomic_store(&loop->joined, 1);
        loop->paused_applied = 0;
        if (parts->cnt && kafka_pause_wanted(loop)) {
                kafka_pause_apply(loop, parts, 1);
                loop->paused_applied = 1;
        }
}

/* Revoke, or an error: give up what we own (eager: all of it). */
static void on_revoke(struct kafka_loop *loop,
                      rd_kafka_resp_err_t e,
                      rd_kafka_topic_partition_list_t *parts,
                      const char *list) {
        rd_kafka_topic_partition_list_t *owned = NULL;
        int64_t deadline = clock_deadline(loop->revoke_timeout_ms);

        if (e != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
                log_warn(loop->name,
                         "rebalance error: %s; dropping the assignment",
                         rd_kafka_err2str(e));
                parts = NULL;
        }
        /* When stopping, the stop's own drain already ran. */
        if (loop->stop_deadline && loop->stop_deadline < deadline)
                deadline = loop->stop_deadline;
        atomic_store(&loop->joined, 0);
        kafka_join_waiting(loop);
        log_info(loop->name, "revoked %s; finishing in-flight work first",
                 parts && parts->cnt ? list : "nothing");
        kafka_workers_drop_pending(loop);
        if (kafka_commit_drain(loop, deadline, 1) == -1) {
                /* The new owner will redo these: make ours stop, so the same
                 * request never runs twice at once. */
                log_warn(loop->name,
                         "in-flight work still running at the revoke "
                         "deadline; abandoning it (the new owner redoes it)");
                kafka_workers_cancel(loop, 0);
        }
        /* When stopping, kafka_commit_final() already ran before close: a
         * sync commit could block long on a dead broker. */
        if (!rd_kafka_assignment_lost(loop->rk) && !loop->stop_deadline)
                offset_tracker_foreach_uncommitted(loop->tracker,
                                                   commit_sync_cb, loop);
        if (!parts &&
            rd_kafka_assignment(loop->rk, &owned) == RD_KAFKA_RESP_ERR_NO_ERROR)
                parts = owned;
        for (int i = 0; parts && i < parts->cnt; i++)
                offset_tracker_remove(loop->tracker, parts->elems[i].topic,
                                      parts->elems[i].partition);
        loop->generation++;
        /* Pause state survives an unassign in librdkafka: clear it. */
        if (parts && parts->cnt)
                kafka_pause_apply(loop, parts, 0);
        if (owned)
                rd_kafka_topic_partition_list_destroy(owned);
        loop->paused_applied = 0;
        rd_kafka_assign(loop->rk, NULL);
}

void kafka_rebalance_cb(rd_kafka_t *rk,
                        rd_kafka_resp_err_t e,
                        rd_kafka_topic_partition_list_t *parts,
                        void *opaque) {
        struct kafka_loop *loop = opaque;
        char list[512] = "";
        size_t len = 0;
        (void)rk;

        for (int i = 0; parts && i < parts->cnt && len < sizeof(list) - 32; i++)
                len += (size_t)snprintf(list + len, sizeof(list) - len,
                                        "%s%s[%" PRId32 "]", i ? "," : "",
                                        parts->elems[i].topic,
                                        parts->elems[i].partition);
        metrics_inc(M_REBALANCES, loop->labels, 1);
        if (e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
                on_assign(loop, parts, list);
        else
                on_revoke(loop, e, parts, list);
}
