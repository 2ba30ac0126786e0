/* job_steps.h - what the provision and destroy steps share: the services a
 * step needs, and fly calls run under the retry policy with the job's events.
 */
#ifndef THOPTER_JOB_STEPS_H
#define THOPTER_JOB_STEPS_H

#include "breaker.h"
#include "config.h"
#include "fly_client.h"
#include "job.h"
#include "kafka_loop.h"
#include "retry.h"

struct job_services {
        const struct config *cfg;
        struct fly_client *fly;
        struct breaker *breaker;
        struct retry_policy policy;
        struct kafka_loop *loop; /* set once the loop exists */
};

/**
 * @brief Run @p fn under the retry policy, emitting "retrying" and
 * "waiting_fly" events for @p job. On failure the error is classified for
 * @p step: fly_unavailable (transient, budget spent) or fly_rejected.
 * When shutdown interrupts it, job->abandoned is set.
 */
int job_fly_call(struct job_services *svc,
                 struct job *job,
                 const char *step,
                 retry_call_fn *fn,
                 void *arg,
                 struct err *err);

/** @brief A stable 64-bit token of a job (for the breaker). */
uint64_t job_token(const struct job *job);

/**
 * @brief Best-effort requestId of a record that failed validation: the
 * value's "requestId" when it is a valid id, else leaves @p out unchanged.
 */
void job_peek_request_id(const struct job *job, char *out, size_t cap);

#endif
