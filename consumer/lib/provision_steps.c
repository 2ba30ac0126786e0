/* provision_steps.c - see provision_steps.h. (Being built: validates and
 * dead-letters as internal until the steps land.) */
#include "provision_steps.h"
#include "request.h"

#include <stdio.h>
#include <stdlib.h>

struct provision_ctx {
        struct job_services *svc;
};

struct provision_ctx *provision_ctx_new(struct job_services *svc, struct err *err) {
        struct provision_ctx *ctx = calloc(1, sizeof(*ctx));
        if (!ctx) {
                err_set(err, ERR_PERMANENT, 0, "provision: out of memory");
                return NULL;
        }
        ctx->svc = svc;
        return ctx;
}

void provision_ctx_destroy(struct provision_ctx *ctx) {
        free(ctx);
}

static int prepare(struct job *job, void *opaque, struct err *err) {
        struct provision_request *req = calloc(1, sizeof(*req));
        (void)opaque;
        if (!req)
                return err_set(err, ERR_TRANSIENT, 0, "out of memory");
        if (request_parse_provision(job->value, job->value_len, req, err) == -1) {
                job_peek_request_id(job, job->request_id, sizeof(job->request_id));
                request_provision_free(req);
                free(req);
                return -1;
        }
        snprintf(job->request_id, sizeof(job->request_id), "%s", req->request_id);
        job->request = req;
        return 0;
}

static void release(struct job *job, void *opaque) {
        (void)opaque;
        request_provision_free(job->request);
        free(job->request);
        job->request = NULL;
}

static int run(struct job *job, void *opaque, struct err *err) {
        (void)job;
        (void)opaque;
        err_set(err, ERR_PERMANENT, 0, "provisioning is not implemented yet");
        err_classify(err, ERRC_INTERNAL, "capacity");
        return -1;
}

struct job_handler provision_steps_handler(struct provision_ctx *ctx) {
        struct job_handler h = {.prepare = prepare, .run = run, .release = release, .opaque = ctx};
        return h;
}
