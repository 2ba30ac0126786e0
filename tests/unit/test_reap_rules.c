/* test_reap_rules.c - thopter-reaper's decisions (reap_rules.c) for every
 * kind of machine and at every boundary, its durations and timestamps, its
 * settings, and the parsing of the idle check's output (reap_idle.c). */
#include "reap_events.h"
#include "reap_idle.h"
#include "reap_rules.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* 2026-01-01T00:00:00Z */
#define NOW          1767225600LL
#define MIN          60LL
#define HOUR         3600LL
#define NONE         (-1LL) /* no timestamp at all */
#define JUNK         (-2LL) /* an unreadable one */
#define UNSET        (-3LL) /* idle: not measured yet */
#define UNKNOWN_IDLE (-4LL)

static const struct reap_settings defaults = {
    .max_lifetime_s = 72 * HOUR,
    .stopped_after_s = 30 * MIN,
    .orphan_grace_s = 1 * HOUR,
    .idle_after_s = 0,
    .interval_s = 5 * MIN,
};

static void stamp(long long ago, char *buf, size_t cap) {
        if (ago == NONE) {
                buf[0] = '\0';
                return;
        }
        if (ago == JUNK) {
                snprintf(buf, cap, "yesterday");
                return;
        }
        time_t t = (time_t)(NOW - ago);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

struct row {
        const char *what;
        const char *name, *state, *role, *provisioned, *request_id;
        long long created_ago, updated_ago;
        long long lifetime, stopped, grace, idle_after; /* -1: default */
        long long idle; /* UNSET, UNKNOWN_IDLE */
        enum reap_verdict verdict;
        enum reap_rule rule;
        const char *reason; /* a part of the reason */
        /* thopter.events: a completed event's requestId, the latest state
         * of the machine's request, or not read at all */
        const char *completed, *last_state;
        int unread;
};

#define D (-1LL)

/* The evidence fields at the end of a row default to none (events read,
 * nothing in them), so most rows leave them out. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
static const struct row rows[] = {
    /* Never the reaper's: contract 5.7 and machines already going. */
    {"golden claude", "gc-default", "started", "", "", "", 900 * HOUR,
     900 * HOUR, D, D, D, D, UNSET, REAP_SKIP, REAP_RULE_NONE,
     "not a thopter: the name does not start with thopter-"},
    {"the hub", "hub-1700000000", "stopped", "", "", "", 900 * HOUR, 900 * HOUR,
     D, D, D, D, UNSET, REAP_SKIP, REAP_RULE_NONE, "not a thopter"},
    {"redis", "metadata", "started", "", "", "", 900 * HOUR, 900 * HOUR, D, D,
     D, D, UNSET, REAP_SKIP, REAP_RULE_NONE, "not a thopter"},
    {"no name", "", "stopped", "", "", "", 900 * HOUR, 900 * HOUR, D, D, D, D,
     UNSET, REAP_SKIP, REAP_RULE_NONE, "not a thopter"},
    {"prefix is case-sensitive", "Thopter-1", "stopped", "", "", "", 900 * HOUR,
     900 * HOUR, D, D, D, D, UNSET, REAP_SKIP, REAP_RULE_NONE, "not a thopter"},
    {"prefix needs the dash", "thopterish", "stopped", "", "", "", 900 * HOUR,
     900 * HOUR, D, D, D, D, UNSET, REAP_SKIP, REAP_RULE_NONE, "not a thopter"},
    {"a gc named like a thopter but with another role", "thopter-gc", "started",
     "golden_claude", "", "", 900 * HOUR, 900 * HOUR, D, D, D, D, UNSET,
     REAP_SKIP, REAP_RULE_NONE,
     "not an agent: thopter_role is \"golden_claude\""},
    {"destroying", "thopter-1", "destroying", "agent", "", "r1", 900 * HOUR,
     900 * HOUR, D, D, D, D, UNSET, REAP_SKIP, REAP_RULE_NONE,
     "already destroying"},
    {"destroyed", "thopter-1", "destroyed", "agent", "r1", "r1", 900 * HOUR,
     900 * HOUR, D, D, D, D, UNSET, REAP_SKIP, REAP_RULE_NONE,
     "already destroyed"},

    /* Age unknown: kept. */
    {"no created_at", "thopter-1", "stopped", "agent", "", "r1", NONE,
     900 * HOUR, D, D, D, D, UNSET, REAP_KEEP, REAP_RULE_NONE,
     "age unknown: created_at is missing"},
    {"unreadable created_at", "thopter-1", "started", "agent", "", "r1", JUNK,
     NONE, D, D, D, D, UNSET, REAP_KEEP, REAP_RULE_NONE,
     "created_at is unreadable"},
    {"created in the future (skew)", "thopter-1", "started", "agent", "", "r1",
     -5 * MIN, NONE, D, D, D, D, UNSET, REAP_KEEP, REAP_RULE_NONE,
     "created 0s ago"},

    /* Lifetime. */
    {"lifetime: exactly the limit", "thopter-1", "started", "agent", "r1", "r1",
     72 * HOUR, 1 * MIN, D, D, D, D, UNSET, REAP_KEEP, REAP_RULE_NONE,
     "started, provisioned, created 72h ago"},
    {"lifetime: one second over", "thopter-1", "started", "agent", "r1", "r1",
     72 * HOUR + 1, 1 * MIN, D, D, D, D, UNSET, REAP_DESTROY,
     REAP_RULE_LIFETIME,
     "lifetime: created 72h ago, longer than THOPTER_MAX_LIFETIME 72h"},
    {"lifetime wins over orphan", "thopter-1", "started", "agent", "", "r1",
     100 * HOUR, 1 * MIN, D, D, D, D, UNSET, REAP_DESTROY, REAP_RULE_LIFETIME,
     "lifetime: created 100h ago"},
    {"lifetime wins over stopped", "thopter-1", "stopped", "agent", "r1", "r1",
     80 * HOUR + 12 * MIN, 5 * HOUR, D, D, D, D, UNSET, REAP_DESTROY,
     REAP_RULE_LIFETIME, "created 80h12m ago"},
    {"lifetime off", "thopter-1", "started", "agent", "r1", "r1", 1000 * HOUR,
     1 * MIN, 0, D, D, D, UNSET, REAP_KEEP, REAP_RULE_NONE,
     "created 1000h ago"},

    /* Orphans. */
    {"orphan: exactly the grace", "thopter-1", "started", "agent", "", "r1",
     1 * HOUR, 1 * MIN, D, D, D, D, UNSET, REAP_KEEP, REAP_RULE_NONE,
     "provisioning: no thopter_provisioned mark yet, created 1h ago, within "
     "THOPTER_ORPHAN_GRACE 1h"},
    {"orphan: one second over", "thopter-1", "started", "agent", "", "r1",
     1 * HOUR + 1, 1 * MIN, D, D, D, D, UNSET, REAP_DESTROY, REAP_RULE_ORPHAN,
     "orphan: no thopter_provisioned mark and no completed provision event, "
     "request r1 has no event, created 1h ago, longer than "
     "THOPTER_ORPHAN_GRACE 1h"},
    {"an agent without a request id", "thopter-manual", "started", "agent", "",
     "", 2 * HOUR, 2 * HOUR, D, D, D, D, UNSET, REAP_DESTROY, REAP_RULE_ORPHAN,
     "no completed provision event, no request id, created 2h ago"},
    {"a failed provision's left machine", "thopter-1", "started", "agent", "",
     "r1", 3 * HOUR, 3 * HOUR, D, D, D, D, UNSET, REAP_DESTROY,
     REAP_RULE_ORPHAN, "request r1 failed, created 3h ago", NULL, "failed"},

    /* Ownership is evidence (contract section 6), never a missing mark. */
    {"no thopter metadata at all: unknown, kept", "thopter-legacy", "started",
     "", "", "", 2 * HOUR, 2 * HOUR, D, D, D, D, UNSET, REAP_KEEP,
     REAP_RULE_NONE, "unknown: no thopter metadata"},
    {"unknown, whatever its age and state", "thopter-legacy", "stopped", "", "",
     "", 900 * HOUR, 900 * HOUR, D, D, D, D, UNSET, REAP_KEEP, REAP_RULE_NONE,
     "unknown: no thopter metadata"},
    {"a completed event names it: owned", "thopter-1", "started", "agent", "",
     "r1", 3 * HOUR, 3 * HOUR, D, D, D, D, UNSET, REAP_KEEP, REAP_RULE_NONE,
     "started, owned: a completed provision event (request r1) names it", "r1",
     "completed"},
    {"owned by its event, then failed again: still owned", "thopter-1",
     "started", "agent", "", "r1", 3 * HOUR, 3 * HOUR, D, D, D, D, UNSET,
     REAP_KEEP, REAP_RULE_NONE, "owned: a completed provision event", "r1",
     "failed"},
    {"owned by its event: the lifetime rule still applies", "thopter-1",
     "started", "agent", "", "r1", 73 * HOUR, 3 * HOUR, D, D, D, D, UNSET,
     REAP_DESTROY, REAP_RULE_LIFETIME, "lifetime:", "r1", "completed"},
    {"owned by its event: the idle check applies", "thopter-1", "started",
     "agent", "", "r1", 3 * HOUR, 3 * HOUR, D, D, D, 2 * HOUR, UNSET,
     REAP_CHECK_IDLE, REAP_RULE_NONE, "idle check needed", "r1", "completed"},
    {"in flight: its latest event is not final", "thopter-1", "started",
     "agent", "", "r1", 3 * HOUR, 3 * HOUR, D, D, D, D, UNSET, REAP_KEEP,
     REAP_RULE_NONE,
     "in flight: no thopter_provisioned mark yet, the latest event of "
     "request r1 is retrying",
     NULL, "retrying"},
    {"thopter.events not read: never an orphan", "thopter-1", "started",
     "agent", "", "r1", 3 * HOUR, 3 * HOUR, D, D, D, D, UNSET, REAP_KEEP,
     REAP_RULE_NONE,
     "owner unknown: no thopter_provisioned mark and thopter.events not "
     "read (broker down)",
     NULL, NULL, 1},
    {"thopter.events not read: the stopped rule still applies", "thopter-1",
     "stopped", "agent", "", "r1", 3 * HOUR, 3 * HOUR, D, D, D, D, UNSET,
     REAP_DESTROY, REAP_RULE_STOPPED, "stopped: stopped", NULL, NULL, 1},
    {"orphan left stopped by a failed clean-up", "thopter-1", "stopped",
     "agent", "", "r1", 3 * HOUR, 3 * HOUR, D, D, D, D, UNSET, REAP_DESTROY,
     REAP_RULE_ORPHAN, "orphan:"},
    {"orphan rule off", "thopter-1", "started", "agent", "", "r1", 5 * HOUR,
     5 * HOUR, D, D, 0, D, UNSET, REAP_KEEP, REAP_RULE_NONE,
     "no thopter_provisioned mark, created 5h ago (orphan rule off)"},
    {"a mark for another request still counts", "thopter-1", "started", "agent",
     "r0", "r1", 5 * HOUR, 5 * HOUR, D, D, D, D, UNSET, REAP_KEEP,
     REAP_RULE_NONE, "provisioned"},

    /* Stopped or failed. */
    {"stopped: exactly the limit", "thopter-1", "stopped", "agent", "r1", "r1",
     5 * HOUR, 30 * MIN, D, D, D, D, UNSET, REAP_KEEP, REAP_RULE_NONE,
     "stopped since updated_at 30m ago, within THOPTER_REAP_STOPPED_AFTER "
     "30m"},
    {"stopped: one second over", "thopter-1", "stopped", "agent", "r1", "r1",
     5 * HOUR, 30 * MIN + 1, D, D, D, D, UNSET, REAP_DESTROY, REAP_RULE_STOPPED,
     "stopped: stopped since updated_at 30m1s ago, longer than "
     "THOPTER_REAP_STOPPED_AFTER 30m"},
    {"failed", "thopter-1", "failed", "agent", "r1", "r1", 5 * HOUR, 31 * MIN,
     D, D, D, D, UNSET, REAP_DESTROY, REAP_RULE_STOPPED,
     "stopped: failed since updated_at 31m ago"},
    {"stopped, young and unmarked: the stopped rule still applies", "thopter-1",
     "stopped", "agent", "", "r1", 50 * MIN, 31 * MIN, D, D, D, D, UNSET,
     REAP_DESTROY, REAP_RULE_STOPPED, "stopped: stopped"},
    {"stopped with no updated_at", "thopter-1", "stopped", "agent", "r1", "r1",
     5 * HOUR, NONE, D, D, D, D, UNSET, REAP_KEEP, REAP_RULE_NONE,
     "stopped, for how long unknown: updated_at is missing"},
    {"suspended is not stopped", "thopter-1", "suspended", "agent", "r1", "r1",
     5 * HOUR, 5 * HOUR, D, D, D, D, UNSET, REAP_KEEP, REAP_RULE_NONE,
     "suspended, provisioned, created 5h ago"},
    {"stopped rule off", "thopter-1", "stopped", "agent", "r1", "r1", 5 * HOUR,
     5 * HOUR, D, 0, D, D, UNSET, REAP_KEEP, REAP_RULE_NONE,
     "stopped, provisioned"},

    /* Idle (THOPTER_IDLE_AFTER 2h). */
    {"idle: a provisioned started agent needs a check", "thopter-1", "started",
     "agent", "r1", "r1", 5 * HOUR, 5 * HOUR, D, D, D, 2 * HOUR, UNSET,
     REAP_CHECK_IDLE, REAP_RULE_NONE, "idle check needed"},
    {"idle: not for a stopped one", "thopter-1", "stopped", "agent", "r1", "r1",
     5 * HOUR, 5 * MIN, D, D, D, 2 * HOUR, UNSET, REAP_KEEP, REAP_RULE_NONE,
     "within THOPTER_REAP_STOPPED_AFTER"},
    {"idle: not while provisioning", "thopter-1", "started", "agent", "", "r1",
     10 * MIN, 10 * MIN, D, D, D, 2 * HOUR, UNSET, REAP_KEEP, REAP_RULE_NONE,
     "provisioning"},
    {"idle: exactly the limit", "thopter-1", "started", "agent", "r1", "r1",
     5 * HOUR, 5 * HOUR, D, D, D, 2 * HOUR, 2 * HOUR, REAP_KEEP, REAP_RULE_NONE,
     "active: last tmux activity 2h ago, created 5h ago"},
    {"idle: one second over", "thopter-1", "started", "agent", "r1", "r1",
     5 * HOUR, 5 * HOUR, D, D, D, 2 * HOUR, 2 * HOUR + 1, REAP_DESTROY,
     REAP_RULE_IDLE,
     "idle: no tmux activity for 2h, longer than THOPTER_IDLE_AFTER 2h"},
    {"idle: could not be checked", "thopter-1", "started", "agent", "r1", "r1",
     5 * HOUR, 5 * HOUR, D, D, D, 2 * HOUR, UNKNOWN_IDLE, REAP_KEEP,
     REAP_RULE_NONE, "idleness unknown, kept: ssh: connection refused"},
    {"idle off: no check", "thopter-1", "started", "agent", "r1", "r1",
     5 * HOUR, 5 * HOUR, D, D, D, 0, UNSET, REAP_KEEP, REAP_RULE_NONE,
     "started, provisioned, created 5h ago"},
    {"idle: lifetime first, no check needed", "thopter-1", "started", "agent",
     "r1", "r1", 73 * HOUR, 5 * HOUR, D, D, D, 2 * HOUR, UNSET, REAP_DESTROY,
     REAP_RULE_LIFETIME, "lifetime:"},
};
#pragma GCC diagnostic pop

static void fill_owner(const struct row *r, struct reap_owner *own) {
        memset(own, 0, sizeof(*own));
        own->events_read = !r->unread;
        if (r->unread)
                snprintf(own->why, sizeof(own->why), "broker down");
        snprintf(own->completed, sizeof(own->completed), "%s",
                 r->completed ? r->completed : "");
        snprintf(own->last_state, sizeof(own->last_state), "%s",
                 r->last_state ? r->last_state : "");
}

static void fill(const struct row *r, struct fly_machine *m) {
        memset(m, 0, sizeof(*m));
        snprintf(m->id, sizeof(m->id), "148e21a3c96989");
        snprintf(m->name, sizeof(m->name), "%s", r->name);
        snprintf(m->state, sizeof(m->state), "%s", r->state);
        snprintf(m->role, sizeof(m->role), "%s", r->role);
        snprintf(m->provisioned, sizeof(m->provisioned), "%s", r->provisioned);
        snprintf(m->request_id, sizeof(m->request_id), "%s", r->request_id);
        stamp(r->created_ago, m->created_at, sizeof(m->created_at));
        stamp(r->updated_ago, m->updated_at, sizeof(m->updated_at));
}

Test(reap_rules, every_kind_of_machine_and_boundary) {
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                const struct row *r = &rows[i];
                struct reap_settings s = defaults;
                struct reap_idle_result idle = {0};
                struct reap_owner own;
                struct fly_machine m;
                struct reap_decision d;

                if (r->lifetime != D)
                        s.max_lifetime_s = r->lifetime;
                if (r->stopped != D)
                        s.stopped_after_s = r->stopped;
                if (r->grace != D)
                        s.orphan_grace_s = r->grace;
                if (r->idle_after != D)
                        s.idle_after_s = r->idle_after;
                if (r->idle == UNKNOWN_IDLE) {
                        snprintf(idle.why, sizeof(idle.why),
                                 "ssh: connection refused");
                } else if (r->idle != UNSET) {
                        idle.known = 1;
                        idle.idle_s = r->idle;
                }
                fill(r, &m);
                fill_owner(r, &own);
                reap_decide(&m, NOW, &s, &own, r->idle == UNSET ? NULL : &idle,
                            &d);
                cr_expect_eq(d.verdict, r->verdict,
                             "%s: verdict %d, want %d (%s)", r->what, d.verdict,
                             r->verdict, d.reason);
                cr_expect_eq(d.rule, r->rule, "%s: rule %s, want %s", r->what,
                             reap_rule_name(d.rule), reap_rule_name(r->rule));
                cr_expect(strstr(d.reason, r->reason) != NULL,
                          "%s: reason \"%s\" lacks \"%s\"", r->what, d.reason,
                          r->reason);
                cr_expect_eq(d.unchecked,
                             r->idle == UNKNOWN_IDLE ||
                                 (r->unread && d.verdict == REAP_KEEP),
                             "%s", r->what);
                cr_expect(strlen(d.reason) < 1024, "a reason fits the "
                                                   "contract's 1 KiB");
        }
}

Test(reap_rules, a_machine_that_is_not_a_thopter_is_skipped_whatever_else) {
        /* However old, stopped, unmarked and idle: never destroyed. */
        static const char *const names[] = {"gc-default", "gc-x",     "hub",
                                            "metadata",   "redis",    "",
                                            " thopter-1", "THOPTER-1"};
        struct reap_settings s = defaults;
        struct reap_idle_result idle = {.known = 1, .idle_s = 1000 * HOUR};
        s.idle_after_s = 1;
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                struct row r = {.name = names[i],
                                .state = "stopped",
                                .role = "",
                                .provisioned = "",
                                .request_id = "",
                                .created_ago = 1000 * HOUR,
                                .updated_ago = 1000 * HOUR};
                struct fly_machine m;
                struct reap_decision d;
                fill(&r, &m);
                reap_decide(&m, NOW, &s, NULL, &idle, &d);
                cr_expect_eq(d.verdict, REAP_SKIP, "\"%s\"", names[i]);
        }
}

Test(reap_rules, adopt_marks_only_machines_without_thopter_metadata) {
        struct reap_settings s = defaults;
        struct reap_owner own = {.events_read = 1};
        struct fly_machine m;
        struct reap_decision d;
        struct row legacy = {.name = "thopter-legacy",
                             .state = "started",
                             .role = "",
                             .provisioned = "",
                             .request_id = "",
                             .created_ago = 100 * HOUR,
                             .updated_ago = 100 * HOUR};
        struct row agent = legacy;

        s.adopt = 1;
        fill(&legacy, &m);
        reap_decide(&m, NOW, &s, &own, NULL, &d);
        cr_expect_eq(d.verdict, REAP_ADOPT, "%s", d.reason);
        cr_expect_eq(d.unknown, 1);
        /* Without a request, the reaper never guesses: NULL evidence too. */
        reap_decide(&m, NOW, &s, NULL, NULL, &d);
        cr_expect_eq(d.verdict, REAP_ADOPT, "%s", d.reason);
        agent.role = "agent";
        agent.request_id = "r1";
        agent.created_ago = 3 * HOUR;
        fill(&agent, &m);
        reap_decide(&m, NOW, &s, &own, NULL, &d);
        cr_expect_eq(d.verdict, REAP_DESTROY, "%s", d.reason);
        cr_expect_eq(d.rule, REAP_RULE_ORPHAN);
        /* Once marked, the rules judge it: 100h is past the lifetime. */
        legacy.provisioned = REAP_ADOPTED_MARK;
        fill(&legacy, &m);
        reap_decide(&m, NOW, &s, &own, NULL, &d);
        cr_expect_eq(d.rule, REAP_RULE_LIFETIME, "%s", d.reason);
}

Test(reap_events, completed_events_and_latest_states_per_machine) {
        struct reap_owner own[3];
        struct reap_events_target t[3] = {
            {"148e21a3c96981", "r1", &own[0]},
            {"148e21a3c96982", "r2", &own[1]},
            {"148e21a3c96983", "", &own[2]},
        };
        static const char *const values[] = {
            "{\"requestId\":\"r1\",\"kind\":\"provision\",\"state\":"
            "\"started\"}",
            "{\"requestId\":\"r1\",\"kind\":\"provision\",\"state\":"
            "\"completed\",\"thopterId\":\"148e21a3c96981\"}",
            "{\"requestId\":\"r2\",\"kind\":\"provision\",\"state\":"
            "\"step\"}",
            /* a destroy's completed event owns nothing */
            "{\"requestId\":\"d1\",\"kind\":\"destroy\",\"state\":"
            "\"completed\",\"thopterId\":\"148e21a3c96983\"}",
            /* nor one with no requestId, or not JSON */
            "{\"kind\":\"provision\",\"state\":\"completed\","
            "\"thopterId\":\"148e21a3c96983\"}",
            "not json",
            "[1,2]",
        };
        struct reap_events *ev;

        memset(own, 0, sizeof(own));
        ev = reap_events_new(t, 3);
        cr_assert(ev);
        for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
                reap_events_apply(ev, values[i], strlen(values[i]));
        reap_events_destroy(ev);
        cr_expect_str_eq(own[0].completed, "r1");
        cr_expect_str_eq(own[0].last_state, "completed");
        cr_expect_str_eq(own[1].completed, "");
        cr_expect_str_eq(own[1].last_state, "step");
        cr_expect_str_eq(own[2].completed, "");
        cr_expect_str_eq(own[2].last_state, "");
}

Test(reap_rules, timestamps_with_fractions_and_offsets) {
        static const struct {
                const char *text;
                long long want; /* -1: refused */
        } cases[] = {
            {"2026-01-01T00:00:00Z", NOW},
            {"2026-01-01t00:00:00z", NOW},
            {"2026-01-01T00:00:00.123456Z", NOW},
            {"2026-01-01T01:00:00+01:00", NOW},
            {"2025-12-31T23:00:00-01:00", NOW},
            {"1970-01-01T00:00:00Z", 0},
            {"2024-02-29T00:00:00Z", 1709164800LL},
            {"2023-02-29T00:00:00Z", -1},
            {"2026-13-01T00:00:00Z", -1},
            {"2026-01-01T24:00:00Z", -1},
            {"2026-01-01T00:00:00", -1},
            {"2026-01-01T00:00:00.Z", -1},
            {"2026-01-01T00:00:00Zjunk", -1},
            {"2026-01-01", -1},
            {"", -1},
            {"yesterday", -1},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                int64_t t = 0;
                int rc = reap_parse_time(cases[i].text, &t);
                if (cases[i].want == -1) {
                        cr_expect_eq(rc, -1, "\"%s\" accepted", cases[i].text);
                } else {
                        cr_expect_eq(rc, 0, "\"%s\" refused", cases[i].text);
                        cr_expect_eq(t, cases[i].want, "\"%s\": %lld",
                                     cases[i].text, (long long)t);
                }
        }
}

Test(reap_rules, durations) {
        static const struct {
                const char *text;
                long long want; /* -1: refused */
        } cases[] = {
            {"72h", 72 * HOUR},
            {"30m", 30 * MIN},
            {"90s", 90},
            {"1h30m", 90 * MIN},
            {"2d12h", 60 * HOUR},
            {"1d1h1m1s", 86400 + HOUR + MIN + 1},
            {"off", 0},
            {"3650d", 3650LL * 86400},
            {"3650d1s", -1},
            {"99999999999999999999h", -1},
            {"30", -1}, /* seconds or minutes? refused */
            {"0s", -1}, /* say off */
            {"0h0m", -1},
            {"30m1h", -1}, /* units out of order */
            {"1h1h", -1},
            {"1.5h", -1},
            {"-1h", -1},
            {"1 h", -1},
            {"h", -1},
            {"1H", -1},
            {"", -1},
            {"Off", -1},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                int64_t d = -7;
                int rc = reap_parse_duration(cases[i].text, &d);
                if (cases[i].want == -1) {
                        cr_expect_eq(rc, -1, "\"%s\" accepted", cases[i].text);
                        cr_expect_eq(d, -7, "nothing set on failure");
                } else {
                        cr_expect_eq(rc, 0, "\"%s\" refused", cases[i].text);
                        cr_expect_eq(d, cases[i].want, "\"%s\"", cases[i].text);
                }
        }
}

Test(reap_rules, durations_print_as_people_write_them) {
        static const struct {
                long long s;
                const char *want;
        } cases[] = {
            {0, "0s"},
            {-5, "0s"},
            {7, "7s"},
            {60, "1m"},
            {90, "1m30s"},
            {3600, "1h"},
            {3660, "1h1m"},
            {3661, "1h1m"},
            {80 * HOUR + 12 * MIN, "80h12m"},
            {1000 * HOUR, "1000h"},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char buf[32];
                reap_format_duration(cases[i].s, buf, sizeof(buf));
                cr_expect_str_eq(buf, cases[i].want, "%lld", cases[i].s);
        }
}

/* ------------------------------------------------------------------ */
/* Settings */

static struct config base_config(void) {
        struct config c;
        memset(&c, 0, sizeof(c));
        c.app_name = "thopters";
        c.fly_deploy_key = "token";
        c.kafka_brokers = "k:9092";
        c.max_lifetime = "72h";
        c.reap_stopped_after = "30m";
        c.orphan_grace = "1h";
        c.reap_interval = "5m";
        c.ready_timeout_s = 120;
        c.ssh_timeout_s = 300;
        c.remote_user = "thopter";
        c.tmux_session = "thopter";
        return c;
}

Test(reap_rules, settings_defaults) {
        struct config c = base_config();
        struct reap_settings s;
        struct err err = {0};
        char warn[256];

        cr_assert_eq(reap_settings_load(&c, 1, &s, warn, sizeof(warn), &err), 0,
                     "%s", err.msg);
        cr_expect_eq(s.max_lifetime_s, 72 * HOUR);
        cr_expect_eq(s.stopped_after_s, 30 * MIN);
        cr_expect_eq(s.orphan_grace_s, HOUR);
        cr_expect_eq(s.idle_after_s, 0, "unset: off");
        cr_expect_eq(s.interval_s, 5 * MIN);
        cr_expect_str_eq(warn, "");
}

Test(reap_rules, settings_refused_with_one_line_naming_them) {
        static const struct {
                const char *what;
                int apply;
                const char *field, *value;
                const char *want;
        } cases[] = {
            {"bare number", 0, "idle_after", "30",
             "THOPTER_IDLE_AFTER: expected a duration such as 72h, 30m, 90s or "
             "1h30m, or off (got \"30\")"},
            {"bad lifetime", 0, "max_lifetime", "3 days",
             "THOPTER_MAX_LIFETIME: expected a duration"},
            {"interval off", 0, "reap_interval", "off",
             "THOPTER_REAP_INTERVAL: expected a duration such as 72h, 30m, 90s "
             "or 1h30m (got \"off\")"},
            {"no app", 0, "app_name", "",
             "APP_NAME: required but not set (environment or --app-name)"},
            {"no token", 0, "fly_deploy_key", NULL,
             "FLY_DEPLOY_KEY: required but not set"},
            {"no brokers with --apply", 1, "kafka_brokers", NULL,
             "KAFKA_BROKERS: required with --apply"},
            {"idle without a key", 0, "idle_after", "2h",
             "THOPTER_SSH_KEY: required when THOPTER_IDLE_AFTER is set but not "
             "set (environment or --thopter-ssh-key)"},
            {"grace below the ready timeout", 0, "orphan_grace", "2m",
             "THOPTER_ORPHAN_GRACE: 2m must be longer than "
             "THOPTER_READY_TIMEOUT (2m)"},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct config c = base_config();
                struct reap_settings s;
                struct err err = {0};
                char warn[256];
                char **slot =
                    !strcmp(cases[i].field, "idle_after")     ? &c.idle_after
                    : !strcmp(cases[i].field, "max_lifetime") ? &c.max_lifetime
                    : !strcmp(cases[i].field, "reap_interval")
                        ? &c.reap_interval
                    : !strcmp(cases[i].field, "app_name") ? &c.app_name
                    : !strcmp(cases[i].field, "fly_deploy_key")
                        ? &c.fly_deploy_key
                    : !strcmp(cases[i].field, "kafka_brokers")
                        ? &c.kafka_brokers
                        : &c.orphan_grace;
                *slot = (char *)cases[i].value;
                cr_expect_eq(reap_settings_load(&c, cases[i].apply, &s, warn,
                                                sizeof(warn), &err),
                             -1, "%s: accepted", cases[i].what);
                cr_expect(strstr(err.msg, cases[i].want) != NULL,
                          "%s: \"%s\" lacks \"%s\"", cases[i].what, err.msg,
                          cases[i].want);
        }
}

Test(reap_rules, settings_dry_run_needs_no_brokers_and_idle_names_are_checked) {
        struct config c = base_config();
        struct reap_settings s;
        struct err err = {0};
        char warn[256];

        c.kafka_brokers = NULL;
        cr_expect_eq(reap_settings_load(&c, 0, &s, warn, sizeof(warn), &err), 0,
                     "%s", err.msg);
        c.idle_after = "2h";
        c.ssh_key = "/etc/thopter/id_ed25519";
        cr_expect_eq(reap_settings_load(&c, 0, &s, warn, sizeof(warn), &err), 0,
                     "%s", err.msg);
        cr_expect_eq(s.idle_after_s, 2 * HOUR);
        c.tmux_session = "a.b";
        cr_expect_eq(reap_settings_load(&c, 0, &s, warn, sizeof(warn), &err),
                     -1);
        cr_expect(strstr(err.msg, "THOPTER_TMUX_SESSION") != NULL, "%s",
                  err.msg);
        err_clear(&err);
        c.tmux_session = "thopter";
        c.remote_user = "x;rm -rf /";
        cr_expect_eq(reap_settings_load(&c, 0, &s, warn, sizeof(warn), &err),
                     -1);
        cr_expect(strstr(err.msg, "THOPTER_REMOTE_USER") != NULL, "%s",
                  err.msg);
}

Test(reap_rules, settings_warn_when_the_grace_is_short_and_allow_off) {
        struct config c = base_config();
        struct reap_settings s;
        struct err err = {0};
        char warn[256];

        c.orphan_grace = "10m"; /* ready 2m + 4 x 5m = 22m */
        cr_assert_eq(reap_settings_load(&c, 0, &s, warn, sizeof(warn), &err), 0,
                     "%s", err.msg);
        cr_expect(strstr(warn, "THOPTER_ORPHAN_GRACE 10m is shorter than "
                               "THOPTER_READY_TIMEOUT + 4 x "
                               "THOPTER_SSH_TIMEOUT (22m)") != NULL,
                  "%s", warn);
        c.orphan_grace = "off";
        c.max_lifetime = "off";
        c.reap_stopped_after = "off";
        cr_assert_eq(reap_settings_load(&c, 0, &s, warn, sizeof(warn), &err), 0,
                     "%s", err.msg);
        cr_expect_eq(s.orphan_grace_s + s.max_lifetime_s + s.stopped_after_s,
                     0);
        cr_expect_str_eq(warn, "");
}

/* ------------------------------------------------------------------ */
/* The idle check's output and command */

Test(reap_idle, output_parsing) {
        static const struct {
                const char *out;
                long long want; /* -1: refused */
        } cases[] = {
            {"1000\n900 950\n", 50},
            {"1000\n900 950\n900 990\n", 10}, /* the newest window */
            {"1000\n995 950\n", 5},           /* a client typed */
            {"1000\r\n900 950\r\n", 50},
            {"1000\n900 1010\n", 0}, /* in the future: 0 */
            {"1000", -1},            /* no window */
            {"1000\n", -1},
            {"", -1},
            {"no server running on /tmp/tmux-0/default\n", -1},
            {"1000\n900\n", -1},
            {"1000\n900 x\n", -1},
            {"1000\n900 950 7\n", -1},
            {"1000 5\n900 950\n", -1},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                int64_t idle = -7;
                struct err err = {0};
                int rc = reap_idle_parse(cases[i].out, &idle, &err);
                if (cases[i].want == -1) {
                        cr_expect_eq(rc, -1, "\"%s\" accepted", cases[i].out);
                        cr_expect(err.msg[0], "a reason is given");
                } else {
                        cr_expect_eq(rc, 0, "\"%s\": %s", cases[i].out,
                                     err.msg);
                        cr_expect_eq(idle, cases[i].want, "\"%s\"",
                                     cases[i].out);
                }
        }
}

Test(reap_idle, command_runs_tmux_as_the_user_on_exactly_the_session) {
        char *cmd = reap_idle_command("thopter", "thopter");
        cr_assert_not_null(cmd);
        cr_expect(strncmp(cmd, "su - thopter -c ", 16) == 0, "%s", cmd);
        cr_expect(strstr(cmd, "date +%s") != NULL, "%s", cmd);
        cr_expect(strstr(cmd, "tmux list-windows -t") != NULL, "%s", cmd);
        cr_expect(strstr(cmd, "=thopter") != NULL, "exact match: %s", cmd);
        cr_expect(strstr(cmd, "#{session_activity} #{window_activity}") != NULL,
                  "%s", cmd);
        free(cmd);
        cr_expect_null(reap_idle_command("bad user", "thopter"),
                       "an unsafe user name is refused");
}
