/* fly_breaker.c - see fly_breaker.h (the state machine is drawn there).
 *
 * DESIGN
 * ------
 * One mutex and one condition variable (on CLOSED -> CHECKING, on OPEN and
 * on close). The prober thread sleeps while CLOSED; in CHECKING it probes
 * once; in OPEN it probes every probe_ms until one answers. A call that
 * spent its budget probes on its own thread (fly_breaker_outage()), unless a
 * probe answered less than probe_ms ago. Waiters re-check their cancel flag
 * at least every 200 ms. The probe itself runs without the lock.
 */
#include "fly_breaker.h"
#include "clock.h"
#include "log.h"
#include "metrics.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TARGETS 64 /* THOPTER_BREAKER_THRESHOLD's maximum */
#define TARGET_LEN  96

struct fly_breaker {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        pthread_t thread;
        int threshold;
        long probe_ms;
        fly_breaker_probe_fn *probe;
        void *probe_arg;
        enum fly_breaker_state state;
        int stop;
        /* Distinct targets that failed since the last answer or check. */
        char targets[MAX_TARGETS][TARGET_LEN];
        int ntargets;
        char last_failure[ERR_MSG_LEN];
        int64_t answered_at; /* last probe that answered (monotonic ms) */
        int64_t quiet_until; /* no new check before this */
        uint64_t opened, probes;
};

/* Lock held. */
static void
set_state(struct fly_breaker *b, enum fly_breaker_state to, const char *why) {
        enum fly_breaker_state from = b->state;

        if (from == to)
                return;
        b->state = to;
        b->ntargets = 0;
        if (to == FLY_BREAKER_OPEN) {
                b->opened++;
                metrics_inc(M_CIRCUIT_OPENED, "", 1);
                log_warn("breaker",
                         "circuit open: %s; consumption paused, probing the "
                         "fly API every %ld ms",
                         why, b->probe_ms);
        } else if (to == FLY_BREAKER_CHECKING) {
                log_info("breaker", "%s; probing the fly API", why);
        } else if (from == FLY_BREAKER_OPEN) {
                log_info("breaker", "circuit closed: %s; consumption resumes",
                         why);
        } else {
                log_info("breaker",
                         "%s: the failures are those calls' own; they keep "
                         "spending their retry budgets",
                         why);
        }
        metrics_set(M_CIRCUIT_OPEN, "", to == FLY_BREAKER_OPEN);
        pthread_cond_broadcast(&b->cond);
}

/* Lock held on entry and exit; released while the probe runs. */
static int run_probe(struct fly_breaker *b) {
        struct err err = {0};

        b->probes++;
        pthread_mutex_unlock(&b->lock);
        int rc = b->probe(b->probe_arg, &err);
        metrics_inc(M_CIRCUIT_PROBES,
                    rc == 0 ? "result=\"ok\"" : "result=\"failed\"", 1);
        pthread_mutex_lock(&b->lock);
        if (rc == 0) {
                b->answered_at = clock_mono_ms();
                b->quiet_until = b->answered_at + b->probe_ms;
                set_state(b, FLY_BREAKER_CLOSED,
                          "a probe of the fly API answered");
                return 0;
        }
        if (b->state == FLY_BREAKER_OPEN)
                log_info("breaker", "probe failed: %s", err.msg);
        else
                set_state(b, FLY_BREAKER_OPEN,
                          err.msg[0] ? err.msg : "the probe failed");
        return -1;
}

static void *prober(void *arg) {
        struct fly_breaker *b = arg;

        pthread_mutex_lock(&b->lock);
        while (!b->stop) {
                if (b->state == FLY_BREAKER_CLOSED) {
                        pthread_cond_wait(&b->cond, &b->lock);
                        continue;
                }
                if (b->state == FLY_BREAKER_OPEN) {
                        int64_t due = clock_deadline(b->probe_ms);
                        while (!b->stop && b->state == FLY_BREAKER_OPEN &&
                               clock_left_ms(due) > 0)
                                clock_cond_wait_ms(&b->cond, &b->lock,
                                                   (long)clock_left_ms(due));
                        if (b->stop || b->state != FLY_BREAKER_OPEN)
                                continue;
                }
                run_probe(b);
        }
        pthread_mutex_unlock(&b->lock);
        return NULL;
}

struct fly_breaker *fly_breaker_new(int threshold,
                                    long probe_ms,
                                    fly_breaker_probe_fn *probe,
                                    void *probe_arg,
                                    struct err *err) {
        struct fly_breaker *b = calloc(1, sizeof(*b));

        if (!b) {
                err_oom(err, "breaker");
                return NULL;
        }
        b->threshold = threshold < 1             ? 1
                       : threshold > MAX_TARGETS ? MAX_TARGETS
                                                 : threshold;
        b->probe_ms = probe_ms;
        b->probe = probe;
        b->probe_arg = probe_arg;
        pthread_mutex_init(&b->lock, NULL);
        clock_cond_init(&b->cond);
        metrics_set(M_CIRCUIT_OPEN, "", 0);
        metrics_inc(M_CIRCUIT_OPENED, "", 0);
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

void fly_breaker_destroy(struct fly_breaker *b) {
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

void fly_breaker_record_success(struct fly_breaker *b) {
        pthread_mutex_lock(&b->lock);
        b->ntargets = 0;
        if (b->state != FLY_BREAKER_CLOSED)
                set_state(b, FLY_BREAKER_CLOSED, "a fly API call answered");
        pthread_mutex_unlock(&b->lock);
}

void fly_breaker_record_failure(struct fly_breaker *b,
                                const char *target,
                                const struct err *failure) {
        pthread_mutex_lock(&b->lock);
        if (b->state == FLY_BREAKER_CLOSED) {
                int seen = 0;
                target = target ? target : "";
                for (int i = 0; i < b->ntargets && !seen; i++)
                        seen =
                            strncmp(b->targets[i], target, TARGET_LEN - 1) == 0;
                if (!seen && b->ntargets < MAX_TARGETS)
                        snprintf(b->targets[b->ntargets++], TARGET_LEN, "%s",
                                 target);
                if (failure)
                        snprintf(b->last_failure, sizeof(b->last_failure), "%s",
                                 failure->msg);
                if (b->ntargets >= b->threshold &&
                    clock_mono_ms() >= b->quiet_until) {
                        char why[ERR_MSG_LEN + 96];
                        snprintf(why, sizeof(why),
                                 "fly calls for %d targets failed with no "
                                 "answer in between (last: %s)",
                                 b->ntargets, b->last_failure);
                        set_state(b, FLY_BREAKER_CHECKING, why);
                }
        }
        pthread_mutex_unlock(&b->lock);
}

enum fly_breaker_state fly_breaker_state(struct fly_breaker *b) {
        pthread_mutex_lock(&b->lock);
        enum fly_breaker_state s = b->state;
        pthread_mutex_unlock(&b->lock);
        return s;
}

int fly_breaker_is_open(struct fly_breaker *b) {
        return fly_breaker_state(b) == FLY_BREAKER_OPEN;
}

int fly_breaker_outage(struct fly_breaker *b) {
        int down;

        pthread_mutex_lock(&b->lock);
        if (b->state == FLY_BREAKER_OPEN)
                down = 1;
        else if (b->answered_at &&
                 clock_mono_ms() - b->answered_at < b->probe_ms)
                down = 0;
        else
                down = run_probe(b) == -1;
        pthread_mutex_unlock(&b->lock);
        return down;
}

int fly_breaker_wait_closed(struct fly_breaker *b, const atomic_int *cancel) {
        int rc = 0;

        pthread_mutex_lock(&b->lock);
        while (b->state == FLY_BREAKER_OPEN && !b->stop) {
                if (cancel && atomic_load(cancel)) {
                        rc = -1;
                        break;
                }
                clock_cond_wait_ms(&b->cond, &b->lock, 200);
        }
        pthread_mutex_unlock(&b->lock);
        return rc;
}

uint64_t fly_breaker_open_count(struct fly_breaker *b) {
        pthread_mutex_lock(&b->lock);
        uint64_t n = b->opened;
        pthread_mutex_unlock(&b->lock);
        return n;
}

uint64_t fly_breaker_probe_count(struct fly_breaker *b) {
        pthread_mutex_lock(&b->lock);
        uint64_t n = b->probes;
        pthread_mutex_unlock(&b->lock);
        return n;
}
