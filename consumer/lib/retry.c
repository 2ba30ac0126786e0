/* retry.c - see retry.h. */
#include "retry.h"
#include "backoff.h"
#include "clock.h"
#include "metrics.h"

#include <string.h>
#include <time.h>

int retry_sleep(long ms, const volatile int *cancel) {
        int64_t end = clock_mono_ms() + ms;
        for (;;) {
                if (cancel && *cancel)
                        return -1;
                int64_t left = end - clock_mono_ms();
                if (left <= 0)
                        return 0;
                clock_sleep_ms(left < 100 ? left : 100);
        }
}

static int cancelled(const struct retry_hooks *h, struct err *err) {
        if (h && h->cancel && *h->cancel) {
                err_clear(err);
                err_set(err, ERR_TRANSIENT, 0, "interrupted by shutdown");
                return 1;
        }
        return 0;
}

int retry_fly_call(const struct retry_policy *policy,
                   struct breaker *breaker,
                   const struct retry_hooks *hooks,
                   retry_call_fn *fn,
                   void *arg,
                   int *attempts,
                   struct err *err) {
        unsigned seed = (unsigned)clock_mono_ms() ^ (unsigned)(uintptr_t)arg;
        int failures = 0;
        struct err last = {0};

        metrics_describe("thopter_fly_retries_total", METRICS_COUNTER,
                         "fly API calls retried after a transient failure");
        for (;;) {
                if (cancelled(hooks, err))
                        return -1;
                if (breaker && breaker_is_open(breaker)) {
                        if (hooks && hooks->on_wait_fly)
                                hooks->on_wait_fly(hooks->ctx);
                        if (breaker_wait_closed(breaker, hooks ? hooks->cancel
                                                               : NULL) == -1) {
                                cancelled(hooks, err);
                                return -1;
                        }
                        /* Failures during an outage were the outage's, not
                         * this call's: it gets its whole budget again. */
                        failures = 0;
                }
                err_clear(&last);
                if (attempts)
                        (*attempts)++;
                if (fn(arg, &last) == 0) {
                        if (breaker)
                                breaker_record_success(breaker);
                        return 0;
                }
                if (last.kind != ERR_TRANSIENT) {
                        /* A permanent answer is an answer: the API is up. */
                        if (breaker)
                                breaker_record_success(breaker);
                        break;
                }
                /* 429 (pacing us) and 408 (a wait that timed out) are the
                 * API answering, not failing: they never open the circuit. */
                int answered = last.code == 429 || last.code == 408;
                if (breaker && !answered)
                        breaker_record_failure(
                            breaker, hooks ? hooks->job_token : 0, &last);
                failures++;
                if (failures >= policy->max_attempts) {
                        if (breaker && !answered &&
                            breaker_confirm_outage(breaker)) {
                                failures =
                                    0; /* the outage is not this call's fault */
                                continue;
                        }
                        break;
                }
                long delay =
                    backoff_delay_ms(failures, policy->base_ms, policy->max_ms,
                                     last.retry_after_ms, &seed);
                metrics_inc("thopter_fly_retries_total", "", 1);
                if (hooks && hooks->on_retry)
                        hooks->on_retry(hooks->ctx, failures, &last, delay);
                if (retry_sleep(delay, hooks ? hooks->cancel : NULL) == -1) {
                        cancelled(hooks, err);
                        return -1;
                }
        }
        if (err && err->kind == ERR_NONE)
                *err = last;
        return -1;
}
