/* kafka_workers.c - the worker threads of a Kafka loop: take queued jobs,
 * never two with the same exclusive key at once, run the handler, hand the
 * outcome to kafka_finish.c. See kafka_loop_int.h.
 */
#include "kafka_loop_int.h"
#include "clock.h"
#include "events.h"
#include "log.h"
#include "metrics.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Lock held. The first pending job whose exclusive key is not running. */
static struct kafka_job *take_runnable(struct kafka_loop *loop) {
        struct kafka_job *prev = NULL;
        for (struct kafka_job *j = loop->pending_head; j;
             prev = j, j = j->next) {
                const char *key = j->job.exclusive_key;
                int busy = 0;
                for (int i = 0; i < loop->max_in_flight && !busy; i++)
                        busy = loop->running[i] && key[0] &&
                               strcmp(loop->running[i]->job.exclusive_key,
                                      key) == 0;
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

/* Run one job on this worker thread (lock not held). Returns 1 when it was
 * cancelled (abandoned), else 0 with *failed set and @p err the failure. */
static int run_job(struct kafka_loop *loop,
                   struct kafka_job *kj,
                   int *failed,
                   struct err *err) {
        struct job *job = &kj->job;
        int64_t t0 = clock_mono_ms();

        events_emit(loop->producer, loop->events_topic, job, "started", NULL,
                    NULL);
        int rc = loop->handler.run(job, loop->handler.opaque, err);
        double secs = (double)(clock_mono_ms() - t0) / 1000.0;
        metrics_observe(M_JOB_DURATION, loop->labels, secs);

        *failed = rc == -1;
        if (rc == -1 &&
            (err->cause == ERR_CAUSE_CANCELLED || job_cancelled(job))) {
                /* Neither committed nor dead-lettered: redelivered. */
                job_log(job, LOG_WARN,
                        "abandoned (stop or rebalance); it will be "
                        "redelivered");
                return 1;
        }
        if (rc == 0)
                job_log(job, LOG_INFO,
                        "completed %s [%" PRId32 "] @%" PRId64 " in %.3f s",
                        job->rec.topic, job->rec.partition, job->rec.offset,
                        secs);
        else if (err->cls == ERRC_NONE)
                err_classify(err, ERRC_INTERNAL,
                             err->step[0] ? err->step : "internal");
        return 0;
}

static void *worker_main(void *arg) {
        struct kafka_loop *loop = arg;

        pthread_mutex_lock(&loop->lock);
        for (;;) {
                struct kafka_job *kj = NULL;
                struct err err = {0};
                int slot, failed = 0;
                while (!loop->workers_exit && !(kj = take_runnable(loop)))
                        pthread_cond_wait(&loop->cond, &loop->lock);
                if (!kj)
                        break;
                for (slot = 0; loop->running[slot]; slot++)
                        ;
                loop->running[slot] = kj;
                loop->n_running++;
                metrics_set(M_IN_FLIGHT, loop->labels, loop->n_running);
                pthread_mutex_unlock(&loop->lock);

                int abandoned = run_job(loop, kj, &failed, &err);

                /* In one critical section: the job leaves its slot and is
                 * either done (abandoned) or counted as finishing, so the
                 * poll thread never sees it in neither. After this the job
                 * may be freed by the poll thread at any moment. */
                pthread_mutex_lock(&loop->lock);
                loop->running[slot] = NULL;
                loop->n_running--;
                metrics_set(M_IN_FLIGHT, loop->labels, loop->n_running);
                if (abandoned) {
                        kj->abandoned = 1;
                        kj->next = loop->done_head;
                        loop->done_head = kj;
                } else {
                        kafka_finish_count(loop, kj);
                }
                /* A job with the same key may be runnable now. */
                pthread_cond_broadcast(&loop->cond);
                pthread_cond_broadcast(&loop->idle_cond);
                pthread_mutex_unlock(&loop->lock);
                if (!abandoned)
                        kafka_finish_counted(loop, kj, failed ? &err : NULL);
                kafka_job_wake_poll(loop);
                pthread_mutex_lock(&loop->lock);
        }
        pthread_mutex_unlock(&loop->lock);
        return NULL;
}

int kafka_workers_start(struct kafka_loop *loop, struct err *err) {
        loop->workers = calloc((size_t)loop->max_in_flight, sizeof(pthread_t));
        for (int i = 0; loop->workers && i < loop->max_in_flight; i++) {
                if (pthread_create(&loop->workers[i], NULL, worker_main,
                                   loop) != 0)
                        break;
                loop->n_workers++;
        }
        if (loop->n_workers != loop->max_in_flight)
                return err_set(err, ERR_PERMANENT, 0,
                               "%s: cannot start worker threads", loop->name);
        return 0;
}

void kafka_workers_join(struct kafka_loop *loop) {
        pthread_mutex_lock(&loop->lock);
        loop->workers_exit = 1;
        pthread_cond_broadcast(&loop->cond);
        pthread_mutex_unlock(&loop->lock);
        for (int i = 0; i < loop->n_workers; i++)
                pthread_join(loop->workers[i], NULL);
        loop->n_workers = 0;
}

void kafka_workers_enqueue(struct kafka_loop *loop, struct kafka_job *kj) {
        pthread_mutex_lock(&loop->lock);
        if (loop->pending_tail)
                loop->pending_tail->next = kj;
        else
                loop->pending_head = kj;
        loop->pending_tail = kj;
        loop->n_pending++;
        pthread_cond_signal(&loop->cond);
        pthread_mutex_unlock(&loop->lock);
}

void kafka_workers_cancel(struct kafka_loop *loop, int only_interruptible) {
        pthread_mutex_lock(&loop->lock);
        for (int i = 0; loop->running && i < loop->max_in_flight; i++) {
                struct kafka_job *kj = loop->running[i];
                if (kj && (!only_interruptible ||
                           atomic_load(&kj->job.interruptible)))
                        atomic_store(&kj->job.cancel, 1);
        }
        pthread_mutex_unlock(&loop->lock);
}

void kafka_workers_drop_pending(struct kafka_loop *loop) {
        pthread_mutex_lock(&loop->lock);
        struct kafka_job *j = loop->pending_head;
        int n = loop->n_pending;
        loop->pending_head = loop->pending_tail = NULL;
        loop->n_pending = 0;
        pthread_mutex_unlock(&loop->lock);
        if (n)
                log_info(loop->name, "%d queued request(s) left for redelivery",
                         n);
        while (j) {
                struct kafka_job *next = j->next;
                kafka_job_free(loop, j);
                j = next;
        }
}
