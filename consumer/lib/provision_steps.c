/* provision_steps.c - the one table of provision steps; see
 * provision_steps.h. A new step is a row here first (docs/DESIGN.md, "How
 * to add a provision step").
 */
#include "provision_steps.h"

#include <stddef.h>

/* `retried`: by fly_retry_call() (THOPTER_FLY_RETRIES) for the fly steps,
 * until the deadline for the wait, on a new SSH connection for the remote
 * steps (the launch only once its done marker says it did not run). Not the
 * Golden Claude copy: one connect attempt and one stream, since a miss is
 * only a warning by default (its machines list, when the capacity step made
 * none, still goes through fly_retry_call()). */
static const struct provision_step steps[] = {
    [PSTEP_PARSE] = {"parse", "read the record as a JSON object", NULL, 0, 1},
    [PSTEP_VALIDATE] = {"validate",
                        "check the request (contract section 2), that "
                        "GITHUB_INTEGRATION_JSON has its repository and that "
                        "its image is under THOPTER_IMAGE_PREFIXES",
                        NULL, 0, 1},
    [PSTEP_LOOKUP] = {"lookup",
                      "find the request's machine by "
                      "config.metadata.thopter_request_id, and on a found one "
                      "the done marker",
                      "THOPTER_FLY_TIMEOUT", 1, 1},
    [PSTEP_CAPACITY] = {"capacity",
                        "wait, holding intake, while MAX_THOPTERS thopters "
                        "are started or starting (with this consumer's "
                        "creates in flight); no deadline",
                        NULL, 1, 1},
    [PSTEP_VOLUME] = {"volume",
                      "pick a free thopter_data volume in the region, or "
                      "create one",
                      "THOPTER_FLY_TIMEOUT", 1, 1},
    [PSTEP_CREATE] = {"create",
                      "create the machine with its own host key, in REGION "
                      "then THOPTER_FALLBACK_REGIONS",
                      "THOPTER_FLY_TIMEOUT", 1, 1},
    [PSTEP_WAIT] = {"wait",
                    "wait until fly says started and the machine's sshd "
                    "answers with its host key",
                    "THOPTER_READY_TIMEOUT", 1, 1},
    [PSTEP_GOLDEN_CLAUDE_WAIT] = {"golden_claude_wait",
                                  "wait for a turn to copy from the Golden "
                                  "Claude (THOPTER_GC_COPY_CONCURRENCY copies "
                                  "from one at a time); ends or is cancelled",
                                  NULL, 0, 0},
    [PSTEP_GOLDEN_CLAUDE] = {"golden_claude",
                             "stream the Golden Claude's Claude login into "
                             "the thopter; a miss is a warning unless "
                             "THOPTER_GOLDEN_CLAUDE_REQUIRED=1",
                             "THOPTER_SSH_TIMEOUT", 0, 1},
    [PSTEP_GIT] = {"git",
                   "git identity, credential helper and clone, as the user",
                   "THOPTER_SSH_TIMEOUT", 1, 1},
    [PSTEP_CONTEXT_FILES] = {"context_files",
                             "write issue.md, prompt.md and issue.json into "
                             "the workspace, as the user",
                             "THOPTER_SSH_TIMEOUT", 1, 1},
    [PSTEP_LAUNCH] = {"launch",
                      "type the agent into tmux, write the done marker and "
                      "mark the machine thopter_provisioned",
                      "THOPTER_SSH_TIMEOUT", 1, 1},
};

_Static_assert(sizeof(steps) / sizeof(steps[0]) == PSTEP_COUNT,
               "one row per PSTEP_ id");

const struct provision_step *provision_steps_get(enum provision_steps_id id) {
        if ((unsigned)id >= PSTEP_COUNT)
                return NULL;
        return &steps[id];
}

const char *provision_steps_name(enum provision_steps_id id) {
        const struct provision_step *s = provision_steps_get(id);
        return s ? s->name : "";
}
