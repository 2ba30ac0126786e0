/* kafka_loop_int.h - what the kafka_*.c files of one Kafka loop share; not
 * for anyone else (the public contract is kafka_loop.h).
 *
 *   kafka_loop.c     life cycle, the poll thread, dispatch of records
 *   kafka_workers.c  worker threads: run jobs, never two with one key
 *   kafka_finish.c   final events, dead letters and their acknowledgements
 *   kafka_commit.c   commits of the finished prefix, rebalances, draining
 *   kafka_pause.c    pausing and resuming intake
 *   kafka_join.c     saying why partitions are slow to come
 *   kafka_job.c      jobs made from records and freed; the job_ops
 *
 * Calls go one way: kafka_loop.c -> kafka_commit.c -> kafka_workers.c ->
 * kafka_finish.c -> kafka_job.c (tests/unit/test_lib_layers.py checks it).
 *
 * Who owns what (librdkafka's @locality): each field of struct kafka_loop
 * below says which thread may touch it. "fixed" fields are set by
 * kafka_loop_new() before any thread starts and only read after; "poll"
 * fields are the poll thread's alone (kafka_loop_run() and the rebalance and
 * commit callbacks, which librdkafka runs from the poll); "lock" fields are
 * read and written under `lock` by any thread; atomics by any thread.
 */
#ifndef THOPTER_KAFKA_LOOP_INT_H
#define THOPTER_KAFKA_LOOP_INT_H

#include "kafka_loop.h"
#include "offset_tracker.h"

#include <pthread.h>
#include <stdatomic.h>

/* A job as the loop owns it: the handler's view plus the finishing state. */
struct kafka_job {
        struct job job; /* first: a struct job * is a struct kafka_job * */

        uint64_t generation; /* assignment generation it was received in */
        int abandoned;       /* cancelled: neither commit nor dead letter */

        /* Finishing: the final event and, for a failure, the dead letter must
         * be acknowledged before the offset may be committed. */
        struct err failure; /* why it is dead-lettered */
        int final_failed;   /* the final event is "failed" (+ dead letter) */
        int event_done, dlq_done;   /* acknowledged */
        int event_retry, dlq_retry; /* to send again */
        int in_resend;              /* on the resend list */
        int send_tries;             /* sends that failed */
        int dlq_reduced;      /* send the reduced form (the original was big) */
        int64_t next_send_ms; /* monotonic time of the next send */
        size_t finishing_bytes; /* its share of the loop's finishing_bytes */

        struct kafka_job *next;
};

struct kafka_loop {
        /* fixed */
        char *name, *topic, *group, *dlq_topic, *events_topic;
        int max_in_flight;
        int prefetch_high, prefetch_low;
        long drain_timeout_ms, revoke_timeout_ms;
        struct job_handler handler;
        struct kafka_producer *producer;
        struct fly_breaker *breaker;
        rd_kafka_t *rk;          /* its calls are safe from any thread */
        rd_kafka_queue_t *queue; /* the consumer queue, to yield (any) */
        char labels[192];        /* topic="…" */
        long session_timeout_ms; /* in force (kafka_join.c) */

        /* poll */
        struct offset_tracker *tracker;
        uint64_t generation;      /* assignment generation, +1 per rebalance */
        int paused_applied;       /* the assignment is paused (kafka_pause.c) */
        int64_t stop_deadline;    /* drain deadline once stopping, else 0 */
        int64_t last_recommit_ms; /* kafka_commit.c */
        /* kafka_join.c: waiting for partitions since (0: not waiting), the
         * next notice. */
        int64_t join_wait_since_ms, join_next_log_ms;

        /* lock */
        pthread_mutex_t lock;
        pthread_cond_t cond;      /* workers: pending changed, or exit */
        pthread_cond_t idle_cond; /* poll thread: running/finishing changed */
        struct kafka_job *pending_head, *pending_tail;
        struct kafka_job *done_head;
        struct kafka_job *resend_head; /* final events/dead letters to resend */
        struct kafka_job **running;    /* max_in_flight slots */
        int n_pending, n_running, n_finishing;
        size_t finishing_bytes; /* the finishing records' key + value bytes */
        int workers_exit;

        /* the life cycle's: kafka_loop_new() starts them, the poll thread
         * (at the end of kafka_loop_run) or kafka_loop_destroy() joins. */
        pthread_t *workers;
        int n_workers;

        /* atomic, any thread */
        atomic_int stopping;
        atomic_int hold;   /* jobs holding intake (job_hold_intake) */
        atomic_int failed; /* a record could not be tracked: stop, exit 1 */
        atomic_int joined;
        atomic_llong last_poll_ms;
};

/* kafka_job.c: the floor of the files above; it calls none of them. */
/** Poll thread: a job for @p rkm (copied; the caller still destroys it), in
 * the current generation, with the loop's job_ops. NULL when out of memory. */
struct kafka_job *kafka_job_new(struct kafka_loop *loop,
                                const rd_kafka_message_t *rkm);
/** Any thread: release the handler's request, free the record. NULL is a
 * no-op. */
void kafka_job_free(struct kafka_loop *loop, struct kafka_job *kj);
/** Any thread: wake the poll thread (rd_kafka_queue_yield()), so it sees a
 * finished job or a change of hold at once. */
void kafka_job_wake_poll(struct kafka_loop *loop);

/* kafka_workers.c */
int kafka_workers_start(struct kafka_loop *loop, struct err *err);
void kafka_workers_join(struct kafka_loop *loop);
/** Queue a prepared job for the workers. */
void kafka_workers_enqueue(struct kafka_loop *loop, struct kafka_job *kj);
/** Tell running jobs to give up: all, or only those merely waiting. */
void kafka_workers_cancel(struct kafka_loop *loop, int only_interruptible);
/** Queued (not started) jobs go back to Kafka: freed, never committed. */
void kafka_workers_drop_pending(struct kafka_loop *loop);

/* kafka_finish.c */
/** Send what finishes @p kj: its final event and, for a failure (@p failure
 * not NULL), its dead letter. Any thread; lock not held. */
void kafka_finish(struct kafka_loop *loop,
                  struct kafka_job *kj,
                  const struct err *failure);
/** Lock held: count @p kj as finishing (n_finishing, finishing_bytes). */
void kafka_finish_count(struct kafka_loop *loop, struct kafka_job *kj);
/** The same as kafka_finish(), for a job already counted with
 * kafka_finish_count() (under the lock, in the same critical section that
 * took it out of its running slot). */
void kafka_finish_counted(struct kafka_loop *loop,
                          struct kafka_job *kj,
                          const struct err *failure);
/** Poll thread: send again what is due on the resend list. */
void kafka_finish_resend_due(struct kafka_loop *loop);
/** Final events or dead letters that failed 3+ times (for /readyz). */
int kafka_finish_stuck(struct kafka_loop *loop);

/* kafka_commit.c */
/** Poll thread: commit what finished; resend; recommit what is unconfirmed. */
void kafka_commit_process_done(struct kafka_loop *loop);
/** Poll thread: wait until nothing runs (and, @p with_acks, nothing awaits
 * an acknowledgement), or @p deadline. 0 when idle. */
int kafka_commit_drain(struct kafka_loop *loop,
                       int64_t deadline,
                       int with_acks);
/** Commit what is finished, waiting up to @p timeout_ms for the broker. */
void kafka_commit_final(struct kafka_loop *loop, long timeout_ms);
void kafka_commit_cb(rd_kafka_t *rk,
                     rd_kafka_resp_err_t e,
                     rd_kafka_topic_partition_list_t *offsets,
                     void *opaque);
void kafka_rebalance_cb(rd_kafka_t *rk,
                        rd_kafka_resp_err_t e,
                        rd_kafka_topic_partition_list_t *parts,
                        void *opaque);

/* kafka_pause.c */
/** Poll thread: pause or resume the assignment as the loop's state says. */
void kafka_pause_update(struct kafka_loop *loop);
/** Whether intake should be paused now. */
int kafka_pause_wanted(struct kafka_loop *loop);
int kafka_pause_apply(struct kafka_loop *loop,
                      rd_kafka_topic_partition_list_t *parts,
                      int pause);

/* kafka_join.c */
/** session.timeout.ms of @p conf (before rd_kafka_new() takes it); 0 when
 * unknown. */
long kafka_join_session_timeout(rd_kafka_conf_t *conf);
/** Poll thread: the loop subscribed, or lost its partitions: waiting. */
void kafka_join_waiting(struct kafka_loop *loop);
/** Poll thread, each iteration: log the wait every few seconds. */
void kafka_join_tick(struct kafka_loop *loop);
/** Poll thread: partitions assigned (logs the wait when it was long). */
void kafka_join_done(struct kafka_loop *loop);

#endif
