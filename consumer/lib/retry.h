/* retry.h - run one fly API call under the retry policy of contract 5.5
 * and the circuit breaker of 5.12.
 *
 * Transient failures (408, 429, 5xx, connection errors) are retried with
 * exponential backoff and jitter, honouring Retry-After, up to max_attempts.
 * While the circuit is open the call waits without spending attempts. When
 * the attempts are spent, the breaker is asked whether the API is down as a
 * whole: if so the budget starts again once it is back (the request waits in
 * Kafka, not in the dead-letter topic); if not, the failure is returned and
 * the caller dead-letters it as fly_unavailable.
 */
#ifndef THOPTER_RETRY_H
#define THOPTER_RETRY_H

#include "breaker.h"
#include "err.h"

#include <stdint.h>

struct retry_policy {
        int max_attempts;
        long base_ms;
        long max_ms;
};

struct retry_hooks {
        /* optional: a retry is about to sleep delay_ms after @p failure */
        void (*on_retry)(void *ctx,
                         int attempt,
                         const struct err *failure,
                         long delay_ms);
        /* optional: the call is about to wait for the circuit to close */
        void (*on_wait_fly)(void *ctx);
        void *ctx;
        const volatile int *cancel; /* optional: non-zero = give up now */
        uint64_t job_token;         /* tells the breaker which job failed */
};

typedef int(retry_call_fn)(void *arg, struct err *err);

/**
 * @brief Call @p fn until it succeeds, fails permanently, or the budget is
 * spent. @p attempts (optional) accumulates the attempts made.
 * @returns 0, or -1 with the last failure in @p err. When @p hooks->cancel
 * ended it, err says "interrupted by shutdown" (kind transient).
 */
int retry_fly_call(const struct retry_policy *policy,
                   struct breaker *breaker,
                   const struct retry_hooks *hooks,
                   retry_call_fn *fn,
                   void *arg,
                   int *attempts,
                   struct err *err);

/** @brief Sleep @p ms, waking early when *cancel is set. 0, or -1 if cancelled.
 */
int retry_sleep(long ms, const volatile int *cancel);

#endif
