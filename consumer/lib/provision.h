/* provision.h - the provision consumer's work for one request: capacity,
 * volume, create, ready, Golden Claude copy, git, context files, launch
 * (contract sections 2 and 5; the original agent manager's flow).
 *
 * The files of this flow:
 *   provision.c          the handler and the step sequence (the story)
 *   provision_fly.c      the fly steps: lookup, capacity, volume + create,
 *                        wait, clean-up
 *   provision_remote.c   the SSH session and the remote steps
 *   provision_context.c  the text the remote steps write (pure functions)
 *   provision_steps.c    the table of steps: their wire names (data)
 *   provision_int.h      what they share
 *
 * Callers: consumer.c only.
 */
#ifndef THOPTER_PROVISION_H
#define THOPTER_PROVISION_H

#include "config.h"
#include "fly_client.h"
#include "fly_retry.h"
#include "job.h"

struct provision_ctx;

/* What provisioning uses; borrowed, must outlive the context. */
struct provision_deps {
        const struct config *cfg;
        struct fly_client *fly;
        const struct fly_retry *retry;
};

struct provision_ctx *provision_ctx_new(const struct provision_deps *deps,
                                        struct err *err);
void provision_ctx_destroy(struct provision_ctx *ctx); /* NULL is a no-op */

/** @brief The handler of the provision loop. */
struct job_handler provision_handler(struct provision_ctx *ctx);

#endif
