/* provision_steps.h - the provision consumer's work for one request:
 * capacity, volume, create, ready, Golden Claude copy, git, context files,
 * launch (contract sections 2 and 5; the original agent manager's flow).
 */
#ifndef THOPTER_PROVISION_STEPS_H
#define THOPTER_PROVISION_STEPS_H

#include "job_steps.h"
#include "kafka_loop.h"

struct provision_ctx;

/** @brief @p svc must outlive the context. */
struct provision_ctx *provision_ctx_new(struct job_services *svc,
                                        struct err *err);
void provision_ctx_destroy(struct provision_ctx *ctx); /* NULL is a no-op */

/** @brief The handler for the provision loop. */
struct job_handler provision_steps_handler(struct provision_ctx *ctx);

#endif
