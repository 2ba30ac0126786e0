/* kafka_loop.h - one consumer group's loop: poll, dispatch to workers,
 * commit only what is finished.
 *
 * The poll thread (the caller of kafka_loop_run) owns the librdkafka handle
 * and the offset tracker. It hands valid records to max_in_flight worker
 * threads, never two with the same exclusive key at once, pauses the
 * assignment while the loop is full (max_in_flight running plus a queue
 * that fills to prefetch_high, with hysteresis down to prefetch_low) (and keeps
 * polling, so the group membership and max.poll.interval.ms stay healthy), and
 * commits a partition's contiguous finished prefix. A record is finished when
 * the broker acknowledged its final status event ("completed" after its work,
 * or "failed") and, for a failure, its dead letter.
 *
 * Rebalances are eager (range): on revoke, queued records are dropped (they
 * are redelivered to the new owner), running ones get up to the drain
 * timeout to finish and commit. Stopping works the same way, then closes.
 */
#ifndef THOPTER_KAFKA_LOOP_H
#define THOPTER_KAFKA_LOOP_H

#include "breaker.h"
#include "err.h"
#include "job.h"
#include "producer.h"

#include <librdkafka/rdkafka.h>

struct kafka_loop;

/* What a consumer group does with its records. */
struct job_handler {
        /**
         * Parse and validate (poll thread; no I/O). Sets job->request_id
         * (preset to <topic>-<partition>-<offset>), job->exclusive_key and
         * job->request. -1: invalid, err classified; the record is
         * dead-lettered at once with one "failed" event.
         */
        int (*prepare)(struct job *job, void *opaque, struct err *err);
        /**
         * Do the work (worker thread). The loop emits "started" before and
         * "completed" or "failed" after. -1: err classified (class, step);
         * set job->abandoned instead when job->cancel made it stop (the
         * loop sets it when a stop's or a revoke's drain deadline passes,
         * and at once on stop for a job marked interruptible).
         */
        int (*run)(struct job *job, void *opaque, struct err *err);
        /* Free job->request (any thread). */
        void (*release)(struct job *job, void *opaque);
        void *opaque;
};

struct kafka_loop_opts {
        const char *name; /* "provision" | "destroy": logs, events, metrics */
        const char *topic;
        const char *group;
        int max_in_flight;
        /* Records received and queued (not started) beyond max_in_flight:
         * intake pauses when the queue reaches prefetch_high and resumes
         * when it falls to prefetch_low. The gap keeps workers busy across
         * the fetch that follows a resume (up to fetch.wait.max.ms, or
         * librdkafka's one-second wake-up), instead of a stall per record.
         * 0/0 = strict: pause as soon as max_in_flight are taken. Queued
         * records are tracked (never committed before they finish) and go
         * back to Kafka on revoke or stop. */
        int prefetch_high;
        int prefetch_low;
        rd_kafka_conf_t *conf; /* taken, also on failure */
        struct producer *producer;
        const char *dlq_topic;
        const char *events_topic;
        struct breaker *breaker; /* optional: paused while open */
        long drain_timeout_ms;   /* on stop */
        long revoke_timeout_ms;  /* on revoke; 0 = drain_timeout_ms */
};

struct kafka_loop *kafka_loop_new(const struct kafka_loop_opts *opts,
                                  const struct job_handler *handler,
                                  struct err *err);

/**
 * @brief Poll until stopped and drained, then close. Every worker has
 * returned when it returns 0 or -1; -2 means some are stuck in a call that
 * cannot be interrupted and the caller must not free what they use (exit).
 * @returns 0 after a graceful stop, -1 when the drain deadline passed.
 */
int kafka_loop_run(struct kafka_loop *loop);

/** @brief Ask for a graceful stop (any thread, not a signal handler). */
void kafka_loop_stop(struct kafka_loop *loop);

/** @brief Hold intake (provision capacity wait); any thread. */
void kafka_loop_hold(struct kafka_loop *loop, int on);

/** @brief Non-zero while workers are still running jobs (after run()). */
int kafka_loop_busy(struct kafka_loop *loop);

/** @brief Publish a status event for @p job (worker threads). */
void kafka_loop_emit(struct kafka_loop *loop,
                     struct job *job,
                     const char *state,
                     const char *step,
                     const struct err *failure);

/**
 * @brief Ready = joined its group and the brokers answer a metadata request
 * within @p timeout_ms. @p why gets the reason when not ready.
 */
int kafka_loop_ready(struct kafka_loop *loop,
                     int timeout_ms,
                     char *why,
                     size_t cap);

/** @brief Milliseconds since the poll thread last ticked (liveness). */
long kafka_loop_poll_age_ms(struct kafka_loop *loop);

const char *kafka_loop_name(const struct kafka_loop *loop);

void kafka_loop_destroy(struct kafka_loop *loop); /* NULL is a no-op */

/** @brief The topic the loop consumes (borrowed; lives as long as the loop). */
const char *kafka_loop_topic(const struct kafka_loop *loop);

typedef void
kafka_loop_lag_fn(const char *topic, int32_t partition, int64_t lag, void *arg);

/**
 * @brief Consumer lag of each partition assigned to this loop: the broker's
 * high watermark minus the group's committed offset (the low watermark when
 * nothing is committed yet), asked of the broker now, so it is also right
 * for paused partitions. Calls @p fn once per partition that answered.
 * Blocks up to about (1 + partitions) x @p timeout_ms when brokers are slow.
 * @returns partitions reported (0 before the first assignment), or -1 when
 * the assignment or the committed offsets could not be read.
 * @locality any thread (the health server's).
 */
int kafka_loop_lag(struct kafka_loop *loop,
                   int timeout_ms,
                   kafka_loop_lag_fn *fn,
                   void *arg);

#endif
