/* destroy_steps.h - the destroy consumer's work for one request.
 *
 * lookup (GET; 404 or destroyed = already done) -> guard (name must start
 * with "thopter-") -> stop (failure tolerated) -> delete ?force=true (404 =
 * done). Destroys of one thopterId never run at once (the exclusive key).
 */
#ifndef THOPTER_DESTROY_STEPS_H
#define THOPTER_DESTROY_STEPS_H

#include "job_steps.h"
#include "kafka_loop.h"

/** @brief The handler for the destroy loop; @p svc must outlive it. */
struct job_handler destroy_steps_handler(struct job_services *svc);

#endif
