/* job.h - one Kafka record being worked on, as a handler sees it: the one
 * page a handler author reads.
 *
 * The Kafka loop (kafka_loop.h) turns each record into a job and hands it
 * to the handler of its consumer group (destroy.c, provision.c):
 *
 *   prepare()  on the poll thread, no I/O: parse job->rec.value, set
 *              job->request_id, job->exclusive_key and job->request.
 *              -1 = invalid: err classified (invalid_request when not); the
 *              record is dead-lettered at once, with one "failed" event.
 *   run()      on a worker thread: do the work. 0 = completed. -1 = failed:
 *              err classified (class and step) and the record is
 *              dead-lettered; or cancelled (err->cause ERR_CAUSE_CANCELLED,
 *              or job_cancelled() true): the record is neither committed nor
 *              dead-lettered, so it is redelivered.
 *   release()  any thread: free job->request.
 *
 * The loop emits "started" before run() and "completed" or "failed" after
 * it, sends the dead letter, and commits; never two jobs with the same
 * exclusive key run at once. In between, a handler talks to the loop only
 * through the job_*() functions below: it reports (events, what machine it
 * works on, attempts), asks (hold intake while waiting for capacity), and
 * listens (cancellation). Data flows one way: the loop calls the handler;
 * the handler never calls the loop.
 *
 * Threads: `rec` is written before prepare() and never changes; the
 * identity fields are written by prepare() before the job is queued; the
 * progress fields by run()'s thread only. `cancel` and `interruptible`
 * cross threads and are atomic.
 *
 * Callers: handlers (destroy.c, provision*.c) and fly_retry.c; the Kafka
 * loop implements job_ops.
 */
#ifndef THOPTER_JOB_H
#define THOPTER_JOB_H

#include "err.h"
#include "log.h"

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdint.h>

/* Where the record came from (copied at poll time; read-only). */
struct job_record {
        char *topic;
        int32_t partition;
        int64_t offset;
        int64_t timestamp_ms; /* the record's own timestamp, -1 if none */
        void *key;            /* NULL when the record has no key */
        size_t key_len;
        void *value;      /* NUL-terminated copy; NULL for a tombstone */
        size_t value_len; /* 0 for a tombstone */
        rd_kafka_headers_t *headers; /* a copy, or NULL */
        int64_t received_mono_ms;    /* when the consumer received it */
        const char *group;           /* the consumer group (borrowed) */
        const char *kind;            /* "provision" | "destroy" (borrowed) */
};

struct job;

/* How a job reaches the loop that owns it (kafka_loop.c implements it). */
struct job_ops {
        void (*emit)(void *ctx,
                     struct job *job,
                     const char *state,
                     const char *step,
                     const struct err *failure);
        void (*hold)(void *ctx, int on);
};

#define JOB_ID_LEN 160

struct job {
        struct job_record rec;

        /* Identity: set by prepare(). */
        char
            request_id[JOB_ID_LEN]; /* preset to <topic>-<partition>-<offset> */
        char exclusive_key[JOB_ID_LEN]; /* never two running with this key */
        void *request;                  /* the parsed request (handler's) */

        /* Progress: set by run()'s thread; shown in events. */
        char thopter_id[64];
        char machine_name[128];
        char region[32];
        int attempt;           /* counts from 1 */
        char left_behind[64];  /* a machine a failed request could not remove
                                  (named in its dead letter) */
        char warning_code[40]; /* what its completed event warns of ("":
                                  nothing), e.g. golden_claude_unreachable */
        char warning[ERR_MSG_LEN]; /* ...and the line for people */

        /* Control, across threads. */
        atomic_int cancel;        /* the loop: give up now */
        atomic_int interruptible; /* the handler: only waiting, nothing done */

        const struct job_ops *ops; /* set by the loop */
        void *ops_ctx;
};

/* What a consumer group does with its records. */
struct job_handler {
        int (*prepare)(struct job *job, void *opaque, struct err *err);
        int (*run)(struct job *job, void *opaque, struct err *err);
        void (*release)(struct job *job, void *opaque);
        void *opaque;
};

/**
 * @brief Publish a status event (contract section 3) for @p job: "step",
 * "retrying", "waiting_capacity", "waiting_fly". Not acknowledged; the
 * final event is the loop's. @p step and @p failure are optional.
 */
void job_emit(struct job *job,
              const char *state,
              const char *step,
              const struct err *failure);

/** @brief "step" event and log line: @p step begins. */
void job_step(struct job *job, const char *step);

/**
 * @brief Pause (or resume) the loop's intake while this job only waits
 * (provision capacity): the partitions stay assigned, nothing new comes in.
 * Calls pair up (on, then off): intake resumes once no job holds it.
 */
void job_hold_intake(struct job *job, int on);

/** @brief Non-zero once the loop told this job to give up. */
int job_cancelled(const struct job *job);

/**
 * @brief Mark the job as only waiting (nothing done yet that a redelivery
 * would repeat): a stop may then cancel it at once instead of draining it.
 */
void job_set_interruptible(struct job *job, int on);

/**
 * @brief Sleep @p ms unless cancelled.
 * @returns 0, or -1 with err_cancelled(@p err) when cancelled.
 */
int job_sleep(struct job *job, int64_t ms, struct err *err);

/** @brief The machine the job works on, for its events (NULL: keep). */
void job_set_machine(struct job *job,
                     const char *id,
                     const char *name,
                     const char *region);

/** @brief A failed request leaves machine @p id behind (its clean-up gave
 * up): the dead letter names it (thopter.dlq.left_machine) for an operator
 * or thopter-reaper. */
void job_set_left_behind(struct job *job, const char *id);

/**
 * @brief The request completes, but with something an operator should see:
 * its completed event carries "warning" {code, message} (the last one set
 * wins; NULL @p code clears it). Logged at warn level.
 */
void job_set_warning(struct job *job, const char *code, const char *message);

/** @brief Raise the attempt count shown in events to @p attempt. */
void job_note_attempt(struct job *job, int attempt);

/** @brief A log line with the job's kind as component and its request id. */
void job_log(const struct job *job, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
