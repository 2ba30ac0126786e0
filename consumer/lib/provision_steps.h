/* provision_steps.h - the steps of a provision, as one table: per step the
 * name it has on the wire, what it does, the setting that bounds it and
 * whether a transient failure runs it again. Pure data, no I/O.
 *
 * The name is an outside contract: it is the `step` of a status event
 * (contract section 3) and thopter.dlq.error.step on a dead letter (section
 * 4). Code names a step by its PSTEP_ id and never spells the name out, so
 * each name is written once, in provision_steps.c.
 * tests/unit/test_provision_steps.py checks the table (printed by
 * tests/helpers/provision_steps_json.c) against the events schema,
 * schemas/dead-letter-headers.md, docs/CONTRACT.md and docs/OPERATIONS.md.
 *
 * The destroy flow's steps (destroy.c) and the parse/validate steps that
 * request.c and the Kafka loop attach for any flow are not in this table.
 *
 * Callers: provision*.c; tests/helpers/provision_steps_json.c.
 */
#ifndef THOPTER_PROVISION_STEPS_H
#define THOPTER_PROVISION_STEPS_H

/* In the order a provision runs them (provision.c). */
enum provision_steps_id {
        PSTEP_PARSE,
        PSTEP_VALIDATE,
        PSTEP_LOOKUP,
        PSTEP_CAPACITY,
        PSTEP_VOLUME,
        PSTEP_CREATE,
        PSTEP_WAIT,
        PSTEP_GOLDEN_CLAUDE_WAIT,
        PSTEP_GOLDEN_CLAUDE,
        PSTEP_GIT,
        PSTEP_CONTEXT_FILES,
        PSTEP_LAUNCH,
        PSTEP_COUNT /* not a step */
};

struct provision_step {
        const char *name;    /* on the wire: ^[a-z][a-z0-9_]{0,30}$ */
        const char *what;    /* one line for people */
        const char *timeout; /* the setting that bounds it, or NULL */
        int retried;         /* a transient failure runs it again */
        int fails;           /* may be a dead letter's step; 0: a wait that
                                only ends or is cancelled (events only) */
};

/** @brief The row of @p id; NULL when @p id is not a step. Static data. */
const struct provision_step *provision_steps_get(enum provision_steps_id id);

/** @brief The wire name of @p id ("context_files"); "" when @p id is not a
 * step. Static data. */
const char *provision_steps_name(enum provision_steps_id id);

#endif
