/* job_steps.c - see job_steps.h. */
#include "job_steps.h"
#include "log.h"
#include "request.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

struct hook_ctx {
        struct job_services *svc;
        struct job *job;
        const char *step;
        int waiting_announced;
};

static void
on_retry(void *arg, int attempt, const struct err *failure, long delay_ms) {
        struct hook_ctx *h = arg;
        if (attempt + 1 > h->job->attempt)
                h->job->attempt = attempt + 1;
        if (failure->code == 408 && strcmp(h->step, "wait") == 0) {
                /* /wait answering 408 only means "not started yet". */
                log_write(LOG_DEBUG, kafka_loop_name(h->svc->loop),
                          h->job->request_id,
                          "wait: machine not started yet; waiting again");
                return;
        }
        log_write(LOG_INFO, kafka_loop_name(h->svc->loop), h->job->request_id,
                  "%s: attempt %d failed (%s); retrying in %ld ms", h->step,
                  attempt, failure->msg, delay_ms);
        struct err e = *failure;
        err_classify(&e, ERRC_FLY_UNAVAILABLE, h->step);
        kafka_loop_emit(h->svc->loop, h->job, "retrying", h->step, &e);
}

static void on_wait_fly(void *arg) {
        struct hook_ctx *h = arg;
        if (h->waiting_announced)
                return;
        h->waiting_announced = 1;
        log_write(LOG_INFO, kafka_loop_name(h->svc->loop), h->job->request_id,
                  "%s: waiting for the fly API to come back", h->step);
        kafka_loop_emit(h->svc->loop, h->job, "waiting_fly", h->step, NULL);
}

uint64_t job_token(const struct job *job) {
        /* FNV-1a over topic, partition and offset. */
        uint64_t h = 1469598103934665603ULL;
        for (const char *p = job->topic; p && *p; p++)
                h = (h ^ (unsigned char)*p) * 1099511628211ULL;
        h = (h ^ (uint64_t)job->partition) * 1099511628211ULL;
        return (h ^ (uint64_t)job->offset) * 1099511628211ULL;
}

int job_fly_call(struct job_services *svc,
                 struct job *job,
                 const char *step,
                 retry_call_fn *fn,
                 void *arg,
                 struct err *err) {
        struct hook_ctx ctx = {svc, job, step, 0};
        struct retry_hooks hooks = {
            .on_retry = on_retry,
            .on_wait_fly = on_wait_fly,
            .ctx = &ctx,
            .cancel = &job->cancel,
            .job_token = job_token(job),
        };
        int attempts = 0;

        if (retry_fly_call(&svc->policy, svc->breaker, &hooks, fn, arg,
                           &attempts, err) == 0)
                return 0;
        if (*hooks.cancel) {
                job->abandoned = 1;
                return -1;
        }
        if (attempts > job->attempt)
                job->attempt = attempts;
        err_classify(err,
                     err->kind == ERR_TRANSIENT ? ERRC_FLY_UNAVAILABLE
                                                : ERRC_FLY_REJECTED,
                     step);
        return -1;
}

void job_peek_request_id(const struct job *job, char *out, size_t cap) {
        cJSON *root = cJSON_ParseWithLength(job->value, job->value_len);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "requestId");
        if (cJSON_IsString(id) && request_id_is_valid(id->valuestring))
                snprintf(out, cap, "%s", id->valuestring);
        cJSON_Delete(root);
}
