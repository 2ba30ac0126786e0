/* fly_retry.c - see fly_retry.h. */
#include "fly_retry.h"
#include "backoff.h"
#include "clock.h"
#include "metrics.h"

#include <stdint.h>
#include <string.h>

struct attempt_ctx {
        const struct fly_retry *r;
        struct job *job;
        const char *step;
        int announced_wait;
};

static const atomic_int *cancel_of(struct job *job) {
        return job ? &job->cancel : NULL;
}

static int cancelled(struct job *job) {
        return job && job_cancelled(job);
}

/* Wait while the circuit is open. -1 when cancelled meanwhile. */
static int wait_closed(struct attempt_ctx *c) {
        struct fly_breaker *b = c->r->breaker;

        if (!b || !fly_breaker_is_open(b))
                return 0;
        if (c->job && !c->announced_wait) {
                c->announced_wait = 1;
                job_log(c->job, LOG_INFO,
                        "%s: waiting for the fly API to come back", c->step);
                job_emit(c->job, "waiting_fly", c->step, NULL);
        }
        return fly_breaker_wait_closed(b, cancel_of(c->job));
}

static void announce_retry(struct attempt_ctx *c,
                           int failures,
                           const struct err *last,
                           long delay) {
        metrics_inc(M_FLY_RETRIES, "", 1);
        if (!c->job)
                return;
        job_note_attempt(c->job, failures + 1);
        if (last->code == 408) {
                /* A wait that timed out only means "not yet". */
                job_log(c->job, LOG_DEBUG, "%s: not yet; asking again",
                        c->step);
                return;
        }
        job_log(c->job, LOG_INFO,
                "%s: attempt %d failed (%s); retrying in %ld ms", c->step,
                failures, last->msg, delay);
        struct err e = *last;
        err_classify(&e, ERRC_FLY_UNAVAILABLE, c->step);
        job_emit(c->job, "retrying", c->step, &e);
}

int fly_retry_call(const struct fly_retry *r,
                   struct job *job,
                   const char *step,
                   const char *target,
                   fly_retry_fn *fn,
                   void *arg,
                   struct err *err) {
        struct attempt_ctx c = {r, job, step, 0};
        struct fly_breaker *b = r->breaker;
        unsigned seed = (unsigned)clock_mono_ms() ^ (unsigned)(uintptr_t)arg;
        uint64_t epoch = b ? fly_breaker_open_count(b) : 0;
        int failures = 0, attempts = 0;
        struct err last = {0};

        for (;;) {
                if (cancelled(job) || wait_closed(&c) == -1)
                        return err_cancelled(err);
                if (b && fly_breaker_open_count(b) != epoch) {
                        /* An outage happened while this call was failing:
                         * those failures were the outage's. */
                        epoch = fly_breaker_open_count(b);
                        failures = 0;
                }
                err_clear(&last);
                attempts++;
                if (fn(arg, &last) == 0) {
                        if (b)
                                fly_breaker_record_success(b);
                        return 0;
                }
                if (last.cause == ERR_CAUSE_CANCELLED)
                        return err_cancelled(err);
                if (last.kind != ERR_TRANSIENT) {
                        /* A permanent answer is an answer: the API is up. */
                        if (b && last.cause != ERR_CAUSE_OOM)
                                fly_breaker_record_success(b);
                        break;
                }
                /* 429 (pacing us) and 408 (a wait that timed out) are the
                 * API answering, not failing. */
                int answered = last.code == 429 || last.code == 408;
                /* Nor is our own out-of-memory evidence about the API. */
                int ours = last.cause == ERR_CAUSE_OOM;
                if (b && !answered && !ours)
                        fly_breaker_record_failure(b, target, &last);
                failures++;
                if (failures >= r->max_attempts) {
                        if (b && !answered && !ours && fly_breaker_outage(b))
                                continue; /* wait it out; budget restarts */
                        break;
                }
                long delay = backoff_delay_ms(failures, r->base_ms, r->max_ms,
                                              last.retry_after_ms, &seed);
                announce_retry(&c, failures, &last, delay);
                if (clock_sleep_cancellable(delay, cancel_of(job)) == -1)
                        return err_cancelled(err);
        }
        if (job)
                job_note_attempt(job, attempts);
        if (err && err->kind == ERR_NONE)
                *err = last;
        return err_classify(err,
                            err->kind == ERR_TRANSIENT ? ERRC_FLY_UNAVAILABLE
                                                       : ERRC_FLY_REJECTED,
                            step);
}
