/* kafka_loop.h - one consumer group's loop: poll, hand records to a
 * handler's workers, commit only what is finished.
 *
 * The poll thread (the caller of kafka_loop_run) owns the librdkafka handle
 * and the offset tracker. It hands valid records to max_in_flight worker
 * threads, never two with the same exclusive key at once, pauses the
 * assignment while the loop is full (max_in_flight running plus a queue
 * that fills to prefetch_high, with hysteresis down to prefetch_low), while
 * the fly circuit is open and while a job holds intake, and keeps polling
 * meanwhile (so group membership and max.poll.interval.ms stay healthy). It
 * commits a partition's contiguous finished prefix. A record is finished
 * when the broker acknowledged its final status event ("completed" after
 * its work, or "failed") and, for a failure, its dead letter.
 *
 * Rebalances are eager (range): on revoke, queued records are dropped (they
 * are redelivered to the new owner), running ones get up to the revoke
 * timeout to finish and commit, and are cancelled after it. Stopping works
 * the same way with the drain timeout, then closes.
 *
 * What a handler sees of a record is job.h.
 *
 * Callers: consumer.c (life cycle) and health_server.c (readiness, liveness,
 * lag).
 */
#ifndef THOPTER_KAFKA_LOOP_H
#define THOPTER_KAFKA_LOOP_H

#include "err.h"
#include "fly_breaker.h"
#include "job.h"
#include "kafka_producer.h"

#include <librdkafka/rdkafka.h>

struct kafka_loop;

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
        struct kafka_producer *producer;
        const char *dlq_topic;
        const char *events_topic;
        struct fly_breaker *breaker; /* optional: paused while open */
        long drain_timeout_ms;       /* on stop */
        long revoke_timeout_ms;      /* on revoke; 0 = drain_timeout_ms */
};

/** @brief Ready to run (subscribes in kafka_loop_run()). @p handler is
 * copied. */
struct kafka_loop *kafka_loop_new(const struct kafka_loop_opts *opts,
                                  const struct job_handler *handler,
                                  struct err *err);

enum kafka_loop_exit {
        KAFKA_LOOP_DRAINED,   /* graceful: all work finished and committed */
        KAFKA_LOOP_ABANDONED, /* the drain deadline cut work short, or a
                                 record could not be tracked: it will be
                                 redelivered */
        KAFKA_LOOP_STUCK,     /* workers are still inside calls that cannot
                                 be interrupted: the caller must not free
                                 what they use (exit the process) */
};

/**
 * @brief Poll until stopped and drained, then close.
 * @locality the thread that owns the loop.
 */
enum kafka_loop_exit kafka_loop_run(struct kafka_loop *loop);

/** @brief Ask for a graceful stop (any thread, not a signal handler). */
void kafka_loop_stop(struct kafka_loop *loop);

/**
 * @brief Ready = joined its group, no final event or dead letter stuck, and
 * the brokers answer a metadata request within @p timeout_ms. @p why gets
 * the reason when not ready. @locality any thread.
 */
int kafka_loop_ready(struct kafka_loop *loop,
                     int timeout_ms,
                     char *why,
                     size_t cap);

/** @brief Milliseconds since the poll thread last ticked (liveness). */
long kafka_loop_poll_age_ms(struct kafka_loop *loop);

/** @brief The loop's name and topic (borrowed; live as long as the loop). */
const char *kafka_loop_name(const struct kafka_loop *loop);
const char *kafka_loop_topic(const struct kafka_loop *loop);

/** @brief Free everything; after kafka_loop_run() returned (or instead of
 * it). NULL is a no-op. */
void kafka_loop_destroy(struct kafka_loop *loop);

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
