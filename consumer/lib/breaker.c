/* breaker.c - see breaker.h.
 *
 * DESIGN
 * ------
 * One mutex and one condition variable. The prober thread sleeps on the
 * condition variable while closed; when the circuit opens it wakes, probes
 * every probe_ms and closes the circuit on the first answer, broadcasting to
 * the jobs parked in breaker_wait_closed(). Waiters re-check their cancel
 * flag at least every 200 ms.
 */
#include "breaker.h"
#include "clock.h"
#include "log.h"
#include "metrics.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#define DISTINCT_JOBS 64 /* THOPTER_BREAKER_THRESHOLD's maximum */

struct breaker {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        pthread_t thread;
        int threshold;
        long probe_ms;
        breaker_probe_fn *probe;
        void *probe_arg;
        int open;
        int stop;
        int failures;                 /* consecutive, from distinct jobs */
        uint64_t jobs[DISTINCT_JOBS]; /* the jobs counted in failures */
        uint64_t opened;
};

static void deadline_in(struct timespec *ts, long ms) {
        clock_gettime(CLOCK_MONOTONIC, ts);
        ts->tv_sec += ms / 1000;
        ts->tv_nsec += (ms % 1000) * 1000000L;
        if (ts->tv_nsec >= 1000000000L) {
                ts->tv_sec++;
                ts->tv_nsec -= 1000000000L;
        }
}

/* Lock held. */
static void set_open(struct breaker *b, int open, const char *why) {
        if (b->open == open)
                return;
        b->open = open;
        b->failures = 0;
        if (open) {
                b->opened++;
                metrics_inc("thopter_circuit_opened_total", "", 1);
                log_warn("breaker",
                         "circuit open: %s; consumption paused, probing the "
                         "fly API every %ld ms",
                         why, b->probe_ms);
        } else {
                log_info("breaker", "circuit closed: %s; consumption resumes",
                         why);
        }
        metrics_set("thopter_circuit_open", "", open);
        pthread_cond_broadcast(&b->cond);
}

static void *prober(void *arg) {
        struct breaker *b = arg;
        struct timespec ts;

        pthread_mutex_lock(&b->lock);
        while (!b->stop) {
                if (!b->open) {
                        pthread_cond_wait(&b->cond, &b->lock);
                        continue;
                }
                deadline_in(&ts, b->probe_ms);
                while (!b->stop && b->open &&
                       pthread_cond_timedwait(&b->cond, &b->lock, &ts) !=
                           ETIMEDOUT)
                        ;
                if (b->stop || !b->open)
                        continue;
                pthread_mutex_unlock(&b->lock);
                struct err err = {0};
                int rc = b->probe(b->probe_arg, &err);
                pthread_mutex_lock(&b->lock);
                if (rc == 0)
                        set_open(b, 0, "a probe of the fly API succeeded");
                else
                        log_info("breaker", "probe failed: %s", err.msg);
        }
        pthread_mutex_unlock(&b->lock);
        return NULL;
}

struct breaker *breaker_new(int threshold,
                            long probe_ms,
                            breaker_probe_fn *probe,
                            void *probe_arg,
                            struct err *err) {
        struct breaker *b = calloc(1, sizeof(*b));
        pthread_condattr_t attr;

        if (!b) {
                err_set(err, ERR_PERMANENT, ENOMEM, "breaker: out of memory");
                return NULL;
        }
        b->threshold = threshold;
        b->probe_ms = probe_ms;
        b->probe = probe;
        b->probe_arg = probe_arg;
        pthread_mutex_init(&b->lock, NULL);
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&b->cond, &attr);
        pthread_condattr_destroy(&attr);
        metrics_describe("thopter_circuit_open", METRICS_GAUGE,
                         "1 while the fly API circuit breaker is open");
        metrics_describe("thopter_circuit_opened_total", METRICS_COUNTER,
                         "Times the fly API circuit breaker opened");
        metrics_set("thopter_circuit_open", "", 0);
        if (pthread_create(&b->thread, NULL, prober, b) != 0) {
                pthread_cond_destroy(&b->cond);
                pthread_mutex_destroy(&b->lock);
                free(b);
                err_set(err, ERR_PERMANENT, 0,
                        "breaker: cannot start its thread");
                return NULL;
        }
        return b;
}

void breaker_destroy(struct breaker *b) {
        if (!b)
                return;
        pthread_mutex_lock(&b->lock);
        b->stop = 1;
        pthread_cond_broadcast(&b->cond);
        pthread_mutex_unlock(&b->lock);
        pthread_join(b->thread, NULL);
        pthread_cond_destroy(&b->cond);
        pthread_mutex_destroy(&b->lock);
        free(b);
}

void breaker_record_success(struct breaker *b) {
        pthread_mutex_lock(&b->lock);
        b->failures = 0;
        if (b->open)
                set_open(b, 0, "a fly API call succeeded");
        pthread_mutex_unlock(&b->lock);
}

void breaker_record_failure(struct breaker *b,
                            uint64_t job_token,
                            const struct err *failure) {
        pthread_mutex_lock(&b->lock);
        if (!b->open) {
                int seen = 0;
                int n =
                    b->failures < DISTINCT_JOBS ? b->failures : DISTINCT_JOBS;
                for (int i = 0; i < n; i++)
                        seen |= b->jobs[i] == job_token;
                if (!seen) {
                        b->jobs[b->failures % DISTINCT_JOBS] = job_token;
                        b->failures++;
                }
                if (b->failures >= b->threshold)
                        set_open(b, 1,
                                 failure ? failure->msg
                                         : "consecutive failures");
        }
        pthread_mutex_unlock(&b->lock);
}

int breaker_is_open(struct breaker *b) {
        pthread_mutex_lock(&b->lock);
        int open = b->open;
        pthread_mutex_unlock(&b->lock);
        return open;
}

int breaker_confirm_outage(struct breaker *b) {
        struct err err = {0};
        if (b->probe(b->probe_arg, &err) == 0) {
                breaker_record_success(b);
                return 0;
        }
        pthread_mutex_lock(&b->lock);
        set_open(b, 1, err.msg[0] ? err.msg : "probe failed");
        pthread_mutex_unlock(&b->lock);
        return 1;
}

int breaker_wait_closed(struct breaker *b, const volatile int *cancel) {
        struct timespec ts;
        int rc = 0;

        pthread_mutex_lock(&b->lock);
        while (b->open && !b->stop) {
                if (cancel && *cancel) {
                        rc = -1;
                        break;
                }
                deadline_in(&ts, 200);
                pthread_cond_timedwait(&b->cond, &b->lock, &ts);
        }
        pthread_mutex_unlock(&b->lock);
        return rc;
}

uint64_t breaker_open_count(struct breaker *b) {
        pthread_mutex_lock(&b->lock);
        uint64_t n = b->opened;
        pthread_mutex_unlock(&b->lock);
        return n;
}
