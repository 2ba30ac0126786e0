/* provision.c - turn one provision request into a running, set-up thopter:
 * the handler of the provision loop and the sequence of its steps. See
 * provision.h for the files of this flow.
 *
 * DESIGN
 * ------
 *   lookup -> capacity -> volume -> create -> wait -> ssh -> golden_claude
 *          -> git -> context_files -> launch (+ done marker)
 *
 * While a new machine boots (the wait), the Golden Claude is found (in the
 * capacity step's list of the app's machines) and logged in to, so the copy
 * starts as soon as the thopter answers. Nothing is asked twice: the create
 * answer has the private address, and the first create attempt follows the
 * lookup directly (later attempts look again, see provision_fly.c).
 *
 * Idempotent by construction: every machine carries its requestId in
 * config.metadata.thopter_request_id, and the first step looks it up. A
 * machine with fly's thopter_provisioned mark for this request means the
 * request already finished (a redelivery): emit completed again, touch
 * nothing, not even SSH. Without the mark (a crash, or a mark write that
 * failed, after the launch) the root-owned done marker on the machine
 * decides; a machine without either is resumed from the wait step.
 * THOPTER_READY_TIMEOUT counts from the create (or from finding the machine),
 * never including a capacity or breaker wait.
 *
 * A failure after the machine exists destroys it (unless THOPTER_KEEP_FAILED)
 * before the request is dead-lettered: no orphans.
 */
#include "provision_int.h"
#include "clock.h"
#include "metrics.h"
#include "provision_context.h"
#include "strfmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void count(const char *outcome) {
        char labels[64];
        snprintf(labels, sizeof(labels), "kind=\"provision\",outcome=\"%s\"",
                 outcome);
        metrics_inc(M_REQUESTS, labels, 1);
}

static int prepare(struct job *job, void *opaque, struct err *err) {
        struct provision_request *req = calloc(1, sizeof(*req));
        (void)opaque;

        if (!req) {
                err_oom(err, "provision request");
                return err_classify(err, ERRC_INTERNAL, "parse");
        }
        if (request_parse_provision(job->rec.value, job->rec.value_len, req,
                                    err) == -1) {
                request_peek_id(job->rec.value, job->rec.value_len,
                                job->request_id, sizeof(job->request_id));
                request_provision_free(req);
                free(req);
                return -1;
        }
        snprintf(job->request_id, sizeof(job->request_id), "%s",
                 req->request_id);
        snprintf(job->exclusive_key, sizeof(job->exclusive_key), "%s",
                 req->request_id);
        job->request = req;
        return 0;
}

static void release(struct job *job, void *opaque) {
        (void)opaque;
        request_provision_free(job->request);
        free(job->request);
        job->request = NULL;
}

/* The machine is there (made now, or found): the remote part. */
static int
set_up(struct provision_run *r, enum provision_found found, struct err *err) {
        int done = 0;

        job_set_warning(r->job, NULL, NULL); /* an earlier attempt's */
        provision_work_branch(r->req, r->machine.id, r->work_branch,
                              sizeof(r->work_branch));
        /* fly's mark decides: nothing on the machine does, where the agent
         * could remove a marker or plant a link for root to write through
         * (contract section 3: a redelivery types nothing again). */
        if (found == FOUND_LIVE &&
            strcmp(r->machine.provisioned, r->req->request_id) == 0) {
                job_log(r->job, LOG_INFO,
                        "already provisioned (fly's thopter_provisioned "
                        "mark; redelivered request): nothing to do");
                count("already_done");
                return 0;
        }
        job_step(r->job, "wait");
        /* A new machine boots for seconds on fly: find the Golden Claude
         * and log in to it meanwhile. A resumed one may already be done,
         * and then the Golden Claude is not needed at all. */
        if (found == FOUND_NONE)
                provision_golden_claude_prepare(r);
        if (provision_wait_started(r, err) == -1 ||
            provision_connect(r, err) == -1)
                return -1;
        if (found == FOUND_LIVE) {
                if (provision_is_done(r, &done, err) == -1)
                        return -1;
                if (done) {
                        job_log(r->job, LOG_INFO,
                                "already provisioned (redelivered request): "
                                "nothing to do");
                        count("already_done");
                        return 0;
                }
        }
        /* The original's first and last lines in THOPTER_REMOTE_LOG. */
        provision_remote_note(r, "Starting provisioning for issue %s: %s",
                              r->req->issue_number, r->req->issue_title);
        if (provision_golden_claude(r, err) == -1 ||
            provision_git(r, err) == -1 ||
            provision_context_files(r, err) == -1 ||
            provision_launch(r, err) == -1)
                return -1;
        provision_mark_done(r);
        job_log(r->job, LOG_INFO, "provisioned %s (%s) for %s#%s",
                r->machine.id, r->machine.name, r->req->repository,
                r->req->issue_number);
        count("provisioned");
        return 0;
}

static int run(struct job *job, void *opaque, struct err *err) {
        struct provision_ctx *ctx = opaque;
        struct provision_run r = {
            .ctx = ctx, .cfg = ctx->deps.cfg, .job = job, .req = job->request};
        enum provision_found found = FOUND_NONE;
        int rc = -1;

        snprintf(r.workspace, sizeof(r.workspace), "%s/workspace",
                 r.cfg->remote_home);
        if (ssh_keys_derive_host_key(ctx->key_secret, ctx->key_secret_len,
                                     r.req->request_id, &r.host_key, err) == -1)
                return err_classify(err, ERRC_INTERNAL, "create");
        job_log(job, LOG_INFO, "provisioning %s#%s", r.req->repository,
                r.req->issue_number);
        r.repo = config_repo(r.cfg, r.req->repository);
        if (!r.repo) {
                err_set(err, ERR_PERMANENT, 0,
                        "no credentials for repository %s in "
                        "GITHUB_INTEGRATION_JSON",
                        r.req->repository);
                err_classify(err, ERRC_UNKNOWN_REPOSITORY, "validate");
                count("unknown_repository");
                return -1;
        }
        /* The image receives the GitHub token, the env file, the host key
         * and the Golden Claude's home: a request may only pick one under
         * a prefix the operator allows. */
        if (r.req->image[0] &&
            !request_image_is_allowed(r.req->image, r.cfg->image_prefixes,
                                      r.cfg->app_name)) {
                err_set(err, ERR_PERMANENT, 0,
                        "image %s: not under an allowed prefix "
                        "(THOPTER_IMAGE_PREFIXES: %s)",
                        r.req->image,
                        r.cfg->image_prefixes && *r.cfg->image_prefixes
                            ? r.cfg->image_prefixes
                            : "unset, so registry.fly.io/APP_NAME");
                err_classify(err, ERRC_INVALID_REQUEST, "validate");
                count("image_refused");
                return -1;
        }
        if (provision_lookup(&r, &found, err) == -1)
                goto out;
        if (found == FOUND_DONE) {
                /* Completed before, its thopter destroyed since (a
                 * redelivery): done, and nothing is made again. */
                job_set_machine(job, r.machine.id, r.machine.name,
                                r.machine.region);
                job_log(job, LOG_INFO,
                        "already provisioned on machine %s, destroyed since "
                        "(redelivered request): nothing to do",
                        r.machine.id);
                count("already_done");
                rc = 0;
                goto out;
        }
        if (found == FOUND_LIVE) {
                r.ready_deadline =
                    clock_deadline(r.cfg->ready_timeout_s * 1000L);
                job_set_machine(job, r.machine.id, r.machine.name,
                                r.machine.region);
                job_log(job, LOG_INFO,
                        "machine %s already exists for this request",
                        r.machine.id);
        } else if (provision_capacity(&r, err) == -1 ||
                   provision_create(&r, err) == -1) {
                goto out;
        }
        rc = set_up(&r, found, err);
out:
        ssh_close(r.gc.ssh);
        ssh_close(r.ssh);
        ssh_keys_wipe(&r.host_key);
        free(r.note);
        if (rc == -1 && err->cause != ERR_CAUSE_CANCELLED &&
            !job_cancelled(job)) {
                count("failed");
                provision_cleanup(&r);
        }
        /* Whatever the outcome: a machine kept is in fly's lists from now
         * on (and counted there), one destroyed frees its slot and volume. */
        provision_claims_release(ctx->claims, r.req->request_id);
        return rc;
}

struct provision_ctx *provision_ctx_new(const struct provision_deps *deps,
                                        struct err *err) {
        struct provision_ctx *ctx = calloc(1, sizeof(*ctx));
        if (!ctx) {
                err_oom(err, "provision");
                return NULL;
        }
        ctx->deps = *deps;
        ctx->destroy = (struct destroy_deps){deps->fly, deps->retry};
        ctx->seed = (unsigned)clock_wall_ms() ^ (unsigned)getpid();
        ctx->claims = provision_claims_new();
        if (!ctx->claims || pthread_mutex_init(&ctx->seed_lock, NULL) != 0) {
                provision_claims_free(ctx->claims);
                free(ctx);
                err_oom(err, "provision");
                return NULL;
        }
        /* Both come from THOPTER_SSH_KEY and are needed for every create:
         * a key that cannot be read stops the consumer at start. */
        ctx->key_secret =
            ssh_keys_read_file(deps->cfg->ssh_key, &ctx->key_secret_len, err);
        ctx->authorized_key =
            ctx->key_secret
                ? ssh_keys_client_public_line(deps->cfg->ssh_key, err)
                : NULL;
        if (!ctx->authorized_key) {
                if (err->kind != ERR_NONE &&
                    !strstr(err->msg, "THOPTER_SSH_KEY")) {
                        struct err e = *err;
                        err_clear(err);
                        err_set(err, e.kind, e.code, "THOPTER_SSH_KEY: %s",
                                e.msg);
                }
                provision_ctx_destroy(ctx);
                return NULL;
        }
        return ctx;
}

void provision_ctx_destroy(struct provision_ctx *ctx) {
        if (!ctx)
                return;
        if (ctx->key_secret)
                secret_wipe(ctx->key_secret, ctx->key_secret_len);
        free(ctx->key_secret);
        free(ctx->authorized_key);
        provision_claims_free(ctx->claims);
        pthread_mutex_destroy(&ctx->seed_lock);
        free(ctx);
}

struct job_handler provision_handler(struct provision_ctx *ctx) {
        struct job_handler h = {
            .prepare = prepare, .run = run, .release = release, .opaque = ctx};
        return h;
}
