/* destroy.h - the destroy consumer's work for one request, and the same
 * steps for anyone else who must remove a machine (a failed provision's
 * clean-up): look it up, refuse anything not named thopter-*, stop it,
 * delete it with force (contract sections 2 and 5.7).
 *
 * Callers: consumer.c (the handler); provision.c (the clean-up's deps) and
 * provision_fly.c (the clean-up of a failed provision, and
 * destroy_name_is_thopter() when counting thopters for capacity); the
 * reaper's rules (producer-tools/lib/reap_rules.c, destroy_name_is_thopter).
 */
#ifndef THOPTER_DESTROY_H
#define THOPTER_DESTROY_H

#include "fly_client.h"
#include "fly_retry.h"
#include "job.h"

#define THOPTER_NAME_PREFIX "thopter-"

struct destroy_deps {
        struct fly_client *fly;
        const struct fly_retry *retry;
};

/** @brief Is @p name a thopter's (contract 5.7)? */
int destroy_name_is_thopter(const char *name);

/**
 * @brief Destroy machine @p id for @p job: lookup, guard, stop (a failure
 * only logged), delete; each fly call under the retry policy. A machine that
 * is gone (404, or state destroyed) is done.
 * @param seen optional: what the lookup found (zeroed when gone).
 * @param gone optional: set to 1 when the machine was already gone.
 * @returns 0, or -1 with @p err classified: forbidden_target at step guard,
 * fly_unavailable / fly_rejected at lookup or delete, or cancelled.
 */
int destroy_machine(const struct destroy_deps *d,
                    struct job *job,
                    const char *id,
                    struct fly_machine *seen,
                    int *gone,
                    struct err *err);

/** @brief The handler of the destroy loop; @p d must outlive the loop. */
struct job_handler destroy_handler(struct destroy_deps *d);

#endif
