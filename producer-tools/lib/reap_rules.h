/* reap_rules.h - what thopter-reaper does with one machine: the decision,
 * its reason, and the settings it depends on. Pure: no I/O, no clock (the
 * caller passes "now"), so every rule and boundary is a table row in
 * tests/unit/test_reap_rules.c.
 *
 * The rules, in the order they are tried (the first that fires is the
 * reason; every threshold is "longer than", so exactly the limit is kept):
 *
 *   skip      the name does not start with thopter- (contract 5.7: never the
 *             hub, its Redis or a Golden Claude gc-*), or its
 *             config.metadata.thopter_role says it is something other than
 *             an agent, or it is already destroying/destroyed;
 *   unknown   no thopter metadata at all (no thopter_request_id,
 *             thopter_provisioned or thopter_role: the original hub's
 *             thopters, or one made by hand): kept whatever its age, or
 *             adopted with --adopt (the reaper writes the mark, and from
 *             the next pass on the rules below judge it);
 *   keep      created_at is missing or unreadable (its age is unknown);
 *   lifetime  now - created_at > THOPTER_MAX_LIFETIME;
 *   orphan    no request owns it (contract section 6) and now - created_at
 *             > THOPTER_ORPHAN_GRACE. Ownership is evidence, never the
 *             absence of a mark: a machine is owned when fly's
 *             thopter_provisioned mark is set, or a completed provision
 *             event on thopter.events names it (the mark write failed), or
 *             its request is in flight (its latest event is not final).
 *             When thopter.events could not be read, nothing unmarked is an
 *             orphan: it is kept as unchecked;
 *   stopped   state stopped or failed and now - updated_at >
 *             THOPTER_REAP_STOPPED_AFTER. fly has no "stopped since"
 *             field: updated_at changes with every state change (and with
 *             other updates), so it is the latest moment the machine could
 *             have stopped, and the time stopped is never overestimated;
 *   idle      THOPTER_IDLE_AFTER is set, the machine is started and
 *             owned, and its tmux session has had no activity for
 *             longer than that (measured by reap_idle.h over SSH). A
 *             machine that could not be checked is kept, never destroyed
 *             for it.
 */
#ifndef THOPTER_REAP_RULES_H
#define THOPTER_REAP_RULES_H

#include "config.h"
#include "err.h"
#include "fly_client.h"

#include <stddef.h>
#include <stdint.h>

#define REAP_REASON_MAX 384
#define REAP_WHY_MAX    ERR_MSG_LEN

enum reap_verdict {
        REAP_SKIP,       /* not the reaper's to judge (see above) */
        REAP_KEEP,       /* a thopter that stays */
        REAP_DESTROY,    /* publish a destroy request (reason says why) */
        REAP_CHECK_IDLE, /* nothing else fires: measure idleness, then call
                            reap_decide() again with the result */
        REAP_ADOPT,      /* --adopt: write the mark REAP_ADOPTED_MARK */
};

/* The thopter_provisioned value --adopt writes (no request made it). */
#define REAP_ADOPTED_MARK "adopted"

enum reap_rule {
        REAP_RULE_NONE = 0,
        REAP_RULE_LIFETIME,
        REAP_RULE_ORPHAN,
        REAP_RULE_STOPPED,
        REAP_RULE_IDLE,
};

/* Durations in seconds; 0 turns a rule off. */
struct reap_settings {
        int64_t max_lifetime_s;
        int64_t stopped_after_s;
        int64_t orphan_grace_s;
        int64_t idle_after_s;
        int64_t interval_s; /* between passes; never 0 */
        int adopt;          /* --adopt: machines without metadata are marked */
};

/* What thopter.events says about one machine (reap_events.h). */
struct reap_owner {
        int events_read; /* 0: thopter.events was not read (see why) */
        char why[128];   /* events_read == 0: why not */
        /* the requestId of a completed provision event naming the machine */
        char completed[160];
        /* the state of the latest provision event of the machine's
         * thopter_request_id ("" when there is none) */
        char last_state[32];
};

/* What an idle check found (reap_idle.h). */
struct reap_idle_result {
        int known;      /* 1: idle_s is the time since the last activity */
        int64_t idle_s; /* >= 0 */
        char why[REAP_WHY_MAX]; /* known == 0: why it could not be checked */
};

struct reap_decision {
        enum reap_verdict verdict;
        enum reap_rule rule; /* REAP_DESTROY: the rule that fired */
        int unchecked;       /* REAP_KEEP only because the idle check failed, or
                                thopter.events could not be read */
        int unknown;         /* REAP_KEEP or REAP_ADOPT: no thopter metadata */
        char reason[REAP_REASON_MAX]; /* one line; sent as "reason" */
};

/**
 * @brief Decide what to do with @p m at @p now_s (seconds since the epoch).
 * @param own optional: what thopter.events says of the machine; NULL is
 * "not read" (nothing unmarked is then an orphan).
 * @param idle optional: NULL until the machine's idleness was measured;
 * when a decision needs it the verdict is REAP_CHECK_IDLE.
 */
void reap_decide(const struct fly_machine *m,
                 int64_t now_s,
                 const struct reap_settings *s,
                 const struct reap_owner *own,
                 const struct reap_idle_result *idle,
                 struct reap_decision *out);

/** @brief 1 when @p state is a request's last event (completed, failed). */
int reap_state_is_final(const char *state);

/** @brief "lifetime", "orphan", "stopped", "idle" ("" for none). */
const char *reap_rule_name(enum reap_rule rule);

/**
 * @brief Parse a duration: one or more NUMBER+UNIT groups with units d, h,
 * m, s in that order, each at most once ("72h", "30m", "90s", "1h30m",
 * "2d12h"), or "off" (0). A bare number is refused: "30" could mean
 * seconds or minutes, and guessing wrong destroys working agents. At most
 * 3650d; a total of 0 is refused (say off).
 * @returns 0, or -1 (nothing set).
 */
int reap_parse_duration(const char *text, int64_t *out_s);

/** @brief @p s as "80h12m", "45m", "1m30s", "7s", "0s". */
void reap_format_duration(int64_t s, char *buf, size_t cap);

/**
 * @brief Parse an RFC 3339 timestamp as fly writes them
 * ("2024-05-10T12:34:56Z", fractions and +HH:MM offsets accepted).
 * @returns 0 with seconds since the epoch, or -1.
 */
int reap_parse_time(const char *text, int64_t *out_s);

/**
 * @brief The reaper's settings from @p cfg (config_load_role(ROLE_REAPER)):
 * the durations, and what is required: APP_NAME and FLY_DEPLOY_KEY always,
 * KAFKA_BROKERS with @p apply, THOPTER_SSH_KEY (and safe
 * THOPTER_REMOTE_USER / THOPTER_TMUX_SESSION names) when THOPTER_IDLE_AFTER
 * is set; THOPTER_ORPHAN_GRACE must exceed THOPTER_READY_TIMEOUT.
 * @param warning receives a one-line warning (or ""), @p cap bytes.
 * @returns 0, or -1 with the one line naming the setting in @p err.
 */
int reap_settings_load(const struct config *cfg,
                       int apply,
                       struct reap_settings *out,
                       char *warning,
                       size_t cap,
                       struct err *err);

#endif
