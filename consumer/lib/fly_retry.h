/* fly_retry.h - one fly API call under the retry policy of contract 5.5
 * and the circuit breaker of 5.12, on behalf of a job's step.
 *
 * Transient failures (408, 429, 5xx, connection errors) are retried with
 * exponential backoff and jitter, honouring Retry-After, up to max_attempts
 * attempts: the call's own budget. While the circuit is open the call waits
 * without spending attempts, and when an outage happened while it was
 * failing, the failures before it were the outage's: its budget starts
 * again. When the budget is spent, the breaker is asked whether the API is
 * down (fly_breaker_outage()): if so the call waits and starts again (the
 * request waits in Kafka, not in the dead-letter topic); if the API answers,
 * the failure is the call's own and is returned as fly_unavailable.
 *
 * The job (optional) gets "retrying" and "waiting_fly" events and its
 * attempt count, and its cancellation ends the wait at once.
 *
 * Callers: the flows (destroy.c, provision_fly.c, provision_remote.c) for
 * every fly call, and thopter-reaper (producer-tools/reaper.c); consumer.c
 * and the reaper build their policy from the configuration.
 */
#ifndef THOPTER_FLY_RETRY_H
#define THOPTER_FLY_RETRY_H

#include "err.h"
#include "fly_breaker.h"
#include "job.h"

struct fly_retry {
        int max_attempts;
        long base_ms;
        long max_ms;
        struct fly_breaker *breaker; /* optional */
};

typedef int(fly_retry_fn)(void *arg, struct err *err);

/**
 * @brief Call @p fn until it succeeds, fails permanently, or the budget is
 * spent.
 * @param job optional: events, attempts and cancellation.
 * @param step the contract step name, for events and the dead-letter step.
 * @param target what is called ("delete:<machine id>"), for the breaker.
 * @returns 0; or -1 with @p err classified for @p step: fly_unavailable
 * (transient, budget spent) or fly_rejected (permanent), or cancelled
 * (ERR_CAUSE_CANCELLED, unclassified).
 */
int fly_retry_call(const struct fly_retry *r,
                   struct job *job,
                   const char *step,
                   const char *target,
                   fly_retry_fn *fn,
                   void *arg,
                   struct err *err);

#endif
