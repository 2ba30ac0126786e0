/* destroy.c - see destroy.h.
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
#include "destroy.h"
#include "metrics.h"
#include "request.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct call {
        const struct destroy_deps *d;
        const char *id;
        struct fly_machine machine;
        int gone;
};

/* A machine that is gone (404) is a destroy that is done: a replayed
 * destroy must be harmless. */
static int gone_on_404(struct call *c, int rc, struct err *err) {
        if (rc == -1 && err->code == 404) {
                c->gone = 1;
                err_clear(err);
                return 0;
        }
        return rc;
}

static int call_get(void *arg, struct err *err) {
        struct call *c = arg;
        return gone_on_404(
            c, fly_machine_get(c->d->fly, c->id, &c->machine, err), err);
}

static int call_delete(void *arg, struct err *err) {
        struct call *c = arg;
        return gone_on_404(c, fly_machine_delete(c->d->fly, c->id, 1, err),
                           err);
}

int destroy_name_is_thopter(const char *name) {
        return strncmp(name, THOPTER_NAME_PREFIX,
                       strlen(THOPTER_NAME_PREFIX)) == 0;
}

int destroy_machine(const struct destroy_deps *d,
                    struct job *job,
                    const char *id,
                    struct fly_machine *seen,
                    int *gone,
                    struct err *err) {
        struct call c = {.d = d, .id = id};
        char target[96];

        if (gone)
                *gone = 0;
        snprintf(target, sizeof(target), "lookup:%s", id);
        if (fly_retry_call(d->retry, job, "lookup", target, call_get, &c,
                           err) == -1)
                return -1;
        if (seen)
                *seen = c.machine;
        if (c.gone || strcmp(c.machine.state, "destroyed") == 0) {
                job_log(job, LOG_INFO, "machine %s is already gone", id);
                if (gone)
                        *gone = 1;
                return 0;
        }
        job_set_machine(job, NULL, c.machine.name, c.machine.region);
        if (!destroy_name_is_thopter(c.machine.name)) {
                err_set(err, ERR_PERMANENT, 0,
                        "machine %s is named \"%s\", not " THOPTER_NAME_PREFIX
                        "*: refusing to destroy it",
                        id, c.machine.name);
                return err_classify(err, ERRC_FORBIDDEN_TARGET, "guard");
        }
        if (strcmp(c.machine.state, "stopped") != 0 &&
            strcmp(c.machine.state, "created") != 0) {
                /* Stop gives the agent its SIGINT; the forced delete follows
                 * whatever happens here, so a failure is only logged. */
                struct err stop_err = {0};
                if (fly_machine_stop(d->fly, id, &stop_err) == -1 &&
                    stop_err.code != 404)
                        job_log(job, LOG_WARN,
                                "stop %s failed (continuing): %s", id,
                                stop_err.msg);
        }
        snprintf(target, sizeof(target), "delete:%s", id);
        if (fly_retry_call(d->retry, job, "delete", target, call_delete, &c,
                           err) == -1)
                return -1;
        job_log(job, LOG_INFO, "machine %s (%s) destroyed", id, c.machine.name);
        return 0;
}

static int prepare(struct job *job, void *opaque, struct err *err) {
        struct destroy_request *req = calloc(1, sizeof(*req));
        (void)opaque;

        if (!req) {
                err_oom(err, "destroy request");
                return err_classify(err, ERRC_INTERNAL, "parse");
        }
        if (request_parse_destroy(job->rec.value, job->rec.value_len, req,
                                  err) == -1) {
                request_peek_id(job->rec.value, job->rec.value_len,
                                job->request_id, sizeof(job->request_id));
                request_destroy_free(req);
                free(req);
                return -1;
        }
        if (req->request_id[0])
                snprintf(job->request_id, sizeof(job->request_id), "%s",
                         req->request_id);
        else
                snprintf(job->request_id, sizeof(job->request_id),
                         "destroy-%" PRId32 "-%" PRId64, job->rec.partition,
                         job->rec.offset);
        snprintf(job->exclusive_key, sizeof(job->exclusive_key), "%s",
                 req->thopter_id);
        job_set_machine(job, req->thopter_id, NULL, NULL);
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
        metrics_inc(M_REQUESTS, labels, 1);
}

static int run(struct job *job, void *opaque, struct err *err) {
        struct destroy_deps *d = opaque;
        struct destroy_request *req = job->request;
        int gone = 0;

        job_log(job, LOG_INFO, "destroying machine %s%s%s", req->thopter_id,
                req->reason ? ": " : "", req->reason ? req->reason : "");
        if (destroy_machine(d, job, req->thopter_id, NULL, &gone, err) == 0) {
                count(gone ? "already_gone" : "destroyed");
                return 0;
        }
        if (err->cause != ERR_CAUSE_CANCELLED)
                count(err->cls == ERRC_FORBIDDEN_TARGET ? "forbidden"
                                                        : "failed");
        return -1;
}

struct job_handler destroy_handler(struct destroy_deps *d) {
        struct job_handler h = {
            .prepare = prepare,
            .run = run,
            .release = release,
            .opaque = d,
        };
        return h;
}
