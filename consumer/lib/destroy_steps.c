/* destroy_steps.c - see destroy_steps.h.
 *
 * DESIGN
 * ------
 * Every step is safe to repeat, so a redelivered destroy is harmless: a
 * machine that is gone (404, or state "destroyed") means the work is done,
 * and the commit after a delete that answered 404 is as good as after 200.
 * The guard runs on what fly says the machine is called, never on what the
 * request claims, so a destroy request cannot take down the hub, its Redis
 * or a Golden Claude.
 */
#include "destroy_steps.h"
#include "log.h"
#include "metrics.h"
#include "request.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THOPTER_NAME_PREFIX "thopter-"

struct call {
        struct job_services *svc;
        const char *id;
        struct fly_machine machine;
        int gone;
};

static int call_get(void *arg, struct err *err) {
        struct call *c = arg;
        if (fly_machine_get(c->svc->fly, c->id, &c->machine, err) == 0)
                return 0;
        if (err->code == 404) {
                c->gone = 1;
                err_clear(err);
                return 0;
        }
        return -1;
}

static int call_delete(void *arg, struct err *err) {
        struct call *c = arg;
        if (fly_machine_delete(c->svc->fly, c->id, 1, err) == 0)
                return 0;
        /* 404 is success: a replayed destroy must be harmless. */
        if (err->code == 404) {
                c->gone = 1;
                err_clear(err);
                return 0;
        }
        return -1;
}

static int prepare(struct job *job, void *opaque, struct err *err) {
        struct destroy_request *req = calloc(1, sizeof(*req));
        (void)opaque;

        if (!req) {
                err_set(err, ERR_TRANSIENT, 0, "out of memory");
                err_classify(err, ERRC_INTERNAL, "parse");
                return -1;
        }
        if (request_parse_destroy(job->value, job->value_len, req, err) == -1) {
                job_peek_request_id(job, job->request_id,
                                    sizeof(job->request_id));
                request_destroy_free(req);
                free(req);
                return -1;
        }
        if (req->request_id[0])
                snprintf(job->request_id, sizeof(job->request_id), "%s",
                         req->request_id);
        else
                snprintf(job->request_id, sizeof(job->request_id),
                         "destroy-%" PRId32 "-%" PRId64, job->partition,
                         job->offset);
        snprintf(job->exclusive_key, sizeof(job->exclusive_key), "%s",
                 req->thopter_id);
        snprintf(job->thopter_id, sizeof(job->thopter_id), "%s",
                 req->thopter_id);
        job->request = req;
        return 0;
}

static void release(struct job *job, void *opaque) {
        (void)opaque;
        request_destroy_free(job->request);
        free(job->request);
        job->request = NULL;
}

static void count(const char *outcome) {
        char labels[64];
        snprintf(labels, sizeof(labels), "kind=\"destroy\",outcome=\"%s\"",
                 outcome);
        metrics_inc("thopter_requests_total", labels, 1);
}

static int run(struct job *job, void *opaque, struct err *err) {
        struct job_services *svc = opaque;
        struct destroy_request *req = job->request;
        struct call c = {.svc = svc, .id = req->thopter_id};
        const char *name = kafka_loop_name(svc->loop);

        log_write(LOG_INFO, name, job->request_id, "destroying machine %s%s%s",
                  c.id, req->reason ? ": " : "",
                  req->reason ? req->reason : "");
        if (job_fly_call(svc, job, "lookup", call_get, &c, err) == -1)
                return -1;
        if (c.gone || strcmp(c.machine.state, "destroyed") == 0) {
                log_write(LOG_INFO, name, job->request_id,
                          "machine %s is already gone", c.id);
                count("already_gone");
                return 0;
        }
        snprintf(job->machine_name, sizeof(job->machine_name), "%s",
                 c.machine.name);
        snprintf(job->region, sizeof(job->region), "%s", c.machine.region);
        if (strncmp(c.machine.name, THOPTER_NAME_PREFIX,
                    strlen(THOPTER_NAME_PREFIX)) != 0) {
                err_set(err, ERR_PERMANENT, 0,
                        "machine %s is named \"%s\", not thopter-*: refusing "
                        "to destroy it",
                        c.id, c.machine.name);
                err_classify(err, ERRC_FORBIDDEN_TARGET, "guard");
                count("forbidden");
                return -1;
        }
        if (strcmp(c.machine.state, "stopped") != 0 &&
            strcmp(c.machine.state, "created") != 0) {
                /* Stop gives the agent its SIGINT; the forced delete follows
                 * whatever happens here, so a failure is only logged. */
                struct err stop_err = {0};
                if (fly_machine_stop(svc->fly, c.id, &stop_err) == -1 &&
                    stop_err.code != 404)
                        log_write(LOG_WARN, name, job->request_id,
                                  "stop %s failed (continuing): %s", c.id,
                                  stop_err.msg);
        }
        if (job_fly_call(svc, job, "delete", call_delete, &c, err) == -1) {
                count("failed");
                return -1;
        }
        log_write(LOG_INFO, name, job->request_id, "machine %s (%s) destroyed",
                  c.id, c.machine.name);
        count("destroyed");
        return 0;
}

struct job_handler destroy_steps_handler(struct job_services *svc) {
        struct job_handler h = {
            .prepare = prepare,
            .run = run,
            .release = release,
            .opaque = svc,
        };
        return h;
}
