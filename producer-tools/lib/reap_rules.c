/* reap_rules.c - see reap_rules.h.
 *
 * DESIGN
 * ------
 * One function decides, from what fly says about a machine and the time;
 * the caller does the I/O (list, the idle check over SSH, publishing). A
 * machine the rules cannot judge safely (no created_at, no updated_at for a
 * stopped one, an idle check that failed) is kept: a thopter the reaper
 * leaves is the next pass's, or the lifetime rule's, while one it destroys
 * by mistake is an agent's work lost.
 */
#include "reap_rules.h"
#include "destroy.h"
#include "shell_quote.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define DURATION_MAX_S (3650LL * 86400)

const char *reap_rule_name(enum reap_rule rule) {
        switch (rule) {
        case REAP_RULE_LIFETIME:
                return "lifetime";
        case REAP_RULE_ORPHAN:
                return "orphan";
        case REAP_RULE_STOPPED:
                return "stopped";
        case REAP_RULE_IDLE:
                return "idle";
        case REAP_RULE_NONE:
                break;
        }
        return "";
}

/* ------------------------------------------------------------------ */
/* Durations and timestamps */

int reap_parse_duration(const char *text, int64_t *out_s) {
        static const struct {
                char unit;
                int64_t seconds;
        } units[] = {{'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}};
        const size_t nunits = sizeof(units) / sizeof(units[0]);
        const char *p = text;
        int64_t total = 0;
        size_t next = 0;

        if (!text || !*text)
                return -1;
        if (strcmp(text, "off") == 0) {
                *out_s = 0;
                return 0;
        }
        while (*p) {
                int64_t n = 0;
                size_t u;

                if (!isdigit((unsigned char)*p))
                        return -1;
                for (; isdigit((unsigned char)*p); p++) {
                        n = n * 10 + (*p - '0');
                        if (n > DURATION_MAX_S)
                                return -1;
                }
                /* Units in decreasing order, each at most once. */
                for (u = next; u < nunits && units[u].unit != *p; u++)
                        ;
                if (u == nunits)
                        return -1;
                total += n * units[u].seconds;
                if (total > DURATION_MAX_S)
                        return -1;
                next = u + 1;
                p++;
        }
        if (total == 0)
                return -1;
        *out_s = total;
        return 0;
}

void reap_format_duration(int64_t s, char *buf, size_t cap) {
        if (s < 0)
                s = 0;
        long long h = (long long)(s / 3600), m = (long long)(s % 3600 / 60),
                  sec = (long long)(s % 60);
        if (h && m)
                snprintf(buf, cap, "%lldh%lldm", h, m);
        else if (h)
                snprintf(buf, cap, "%lldh", h);
        else if (m && sec)
                snprintf(buf, cap, "%lldm%llds", m, sec);
        else if (m)
                snprintf(buf, cap, "%lldm", m);
        else
                snprintf(buf, cap, "%llds", sec);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil): no dependence on the local time zone. */
static int64_t days_from_civil(int64_t y, int m, int d) {
        y -= m <= 2;
        int64_t era = (y >= 0 ? y : y - 399) / 400;
        int64_t yoe = y - era * 400;
        int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

/* @p n digits at *p as a number; advances *p. -1 when not digits. */
static int digits(const char **p, int n) {
        int v = 0;
        for (int i = 0; i < n; i++) {
                if (!isdigit((unsigned char)(*p)[i]))
                        return -1;
                v = v * 10 + ((*p)[i] - '0');
        }
        *p += n;
        return v;
}

static int expect(const char **p, const char *chars) {
        if (!**p || !strchr(chars, **p))
                return -1;
        (*p)++;
        return 0;
}

int reap_parse_time(const char *text, int64_t *out_s) {
        static const int mdays[] = {31, 29, 31, 30, 31, 30,
                                    31, 31, 30, 31, 30, 31};
        const char *p = text;
        int y, mo, d, h, mi, s, off = 0;

        if (!text)
                return -1;
        if ((y = digits(&p, 4)) < 0 || expect(&p, "-") ||
            (mo = digits(&p, 2)) < 0 || expect(&p, "-") ||
            (d = digits(&p, 2)) < 0 || expect(&p, "Tt ") ||
            (h = digits(&p, 2)) < 0 || expect(&p, ":") ||
            (mi = digits(&p, 2)) < 0 || expect(&p, ":") ||
            (s = digits(&p, 2)) < 0)
                return -1;
        if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 ||
            mi > 59 || s > 60)
                return -1;
        if (mo == 2 && d == 29 &&
            !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
                return -1;
        if (*p == '.') {
                p++;
                if (!isdigit((unsigned char)*p))
                        return -1;
                while (isdigit((unsigned char)*p))
                        p++;
        }
        if (*p == 'Z' || *p == 'z') {
                p++;
        } else if (*p == '+' || *p == '-') {
                int sign = *p++ == '-' ? -1 : 1, oh, om;
                if ((oh = digits(&p, 2)) < 0 || expect(&p, ":") ||
                    (om = digits(&p, 2)) < 0 || oh > 23 || om > 59)
                        return -1;
                off = sign * (oh * 3600 + om * 60);
        } else {
                return -1;
        }
        if (*p)
                return -1;
        *out_s =
            days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - off;
        return 0;
}

/* ------------------------------------------------------------------ */
/* The decision */

static void set(struct reap_decision *out,
                enum reap_verdict verdict,
                enum reap_rule rule,
                const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));

static void set(struct reap_decision *out,
                enum reap_verdict verdict,
                enum reap_rule rule,
                const char *fmt,
                ...) {
        va_list ap;
        out->verdict = verdict;
        out->rule = rule;
        va_start(ap, fmt);
        vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
        va_end(ap);
}

static int is_state(const char *state, const char *a, const char *b) {
        return strcmp(state, a) == 0 || (b && strcmp(state, b) == 0);
}

int reap_state_is_final(const char *state) {
        return is_state(state, "completed", "failed");
}

/* Whether a request owns @p m (contract section 6), and in what words. */
enum owner {
        OWNED_MARK,     /* fly's thopter_provisioned mark */
        OWNED_EVENT,    /* a completed provision event names it */
        OWNED_YOUNG,    /* within the grace: its provision may be running */
        OWNED_FLIGHT,   /* its request's latest event is not final */
        OWNER_UNREAD,   /* thopter.events not read: cannot tell */
        OWNER_NONE,     /* an orphan */
        OWNER_GRACE_OFF /* the orphan rule is off */
};

static enum owner owner_of(const struct fly_machine *m,
                           int64_t age,
                           const struct reap_settings *s,
                           const struct reap_owner *own) {
        if (m->provisioned[0])
                return OWNED_MARK;
        if (own && own->events_read && own->completed[0])
                return OWNED_EVENT;
        if (!s->orphan_grace_s)
                return OWNER_GRACE_OFF;
        if (age <= s->orphan_grace_s)
                return OWNED_YOUNG;
        if (!own || !own->events_read)
                return OWNER_UNREAD;
        if (m->request_id[0] && own->last_state[0] &&
            !reap_state_is_final(own->last_state))
                return OWNED_FLIGHT;
        return OWNER_NONE;
}

void reap_decide(const struct fly_machine *m,
                 int64_t now_s,
                 const struct reap_settings *s,
                 const struct reap_owner *own,
                 const struct reap_idle_result *idle,
                 struct reap_decision *out) {
        char age_s[32], lim[32], since_s[32];
        int64_t created, updated;

        memset(out, 0, sizeof(*out));
        /* Contract 5.7, checked first and on fly's name for the machine:
         * nothing below may ever reach another machine. */
        if (!destroy_name_is_thopter(m->name)) {
                set(out, REAP_SKIP, REAP_RULE_NONE,
                    "not a thopter: the name does not start "
                    "with " THOPTER_NAME_PREFIX);
                return;
        }
        if (m->role[0] && strcmp(m->role, "agent") != 0) {
                set(out, REAP_SKIP, REAP_RULE_NONE,
                    "not an agent: thopter_role is \"%s\"", m->role);
                return;
        }
        if (is_state(m->state, "destroying", "destroyed")) {
                set(out, REAP_SKIP, REAP_RULE_NONE, "already %s", m->state);
                return;
        }
        /* No thopter metadata at all: the original hub made it (its
         * thopters carry none), or a person did. Nothing says whether an
         * agent works there, so no rule judges it until the operator adopts
         * it or destroys it by name. */
        if (!m->request_id[0] && !m->provisioned[0] && !m->role[0]) {
                out->unknown = 1;
                if (s->adopt) {
                        set(out, REAP_ADOPT, REAP_RULE_NONE,
                            "adopt: no thopter metadata: marking it "
                            "thopter_provisioned=" REAP_ADOPTED_MARK);
                        return;
                }
                set(out, REAP_KEEP, REAP_RULE_NONE,
                    "unknown: no thopter metadata (the original hub's, or "
                    "made by hand): kept; --adopt marks it, a destroy "
                    "request by id reaps it");
                return;
        }
        if (reap_parse_time(m->created_at, &created) == -1) {
                set(out, REAP_KEEP, REAP_RULE_NONE,
                    "age unknown: created_at is %s",
                    m->created_at[0] ? "unreadable" : "missing");
                return;
        }
        int64_t age = now_s > created ? now_s - created : 0;
        reap_format_duration(age, age_s, sizeof(age_s));
        enum owner owner = owner_of(m, age, s, own);
        int owned = owner == OWNED_MARK || owner == OWNED_EVENT;

        if (s->max_lifetime_s && age > s->max_lifetime_s) {
                reap_format_duration(s->max_lifetime_s, lim, sizeof(lim));
                set(out, REAP_DESTROY, REAP_RULE_LIFETIME,
                    "lifetime: created %s ago, longer than "
                    "THOPTER_MAX_LIFETIME %s",
                    age_s, lim);
                return;
        }
        if (owner == OWNER_NONE) {
                reap_format_duration(s->orphan_grace_s, lim, sizeof(lim));
                set(out, REAP_DESTROY, REAP_RULE_ORPHAN,
                    "orphan: no thopter_provisioned mark and no completed "
                    "provision event, %s%s%s, created %s ago, longer than "
                    "THOPTER_ORPHAN_GRACE %s",
                    m->request_id[0] ? "request " : "no request id",
                    m->request_id,
                    !m->request_id[0]    ? ""
                    : own->last_state[0] ? " failed"
                                         : " has no event",
                    age_s, lim);
                return;
        }
        if (s->stopped_after_s && is_state(m->state, "stopped", "failed")) {
                if (reap_parse_time(m->updated_at, &updated) == -1) {
                        set(out, REAP_KEEP, REAP_RULE_NONE,
                            "%s, for how long unknown: updated_at is %s",
                            m->state,
                            m->updated_at[0] ? "unreadable" : "missing");
                        return;
                }
                int64_t since = now_s > updated ? now_s - updated : 0;
                reap_format_duration(since, since_s, sizeof(since_s));
                reap_format_duration(s->stopped_after_s, lim, sizeof(lim));
                if (since > s->stopped_after_s) {
                        set(out, REAP_DESTROY, REAP_RULE_STOPPED,
                            "stopped: %s since updated_at %s ago, longer "
                            "than THOPTER_REAP_STOPPED_AFTER %s",
                            m->state, since_s, lim);
                        return;
                }
                set(out, REAP_KEEP, REAP_RULE_NONE,
                    "%s since updated_at %s ago, within "
                    "THOPTER_REAP_STOPPED_AFTER %s",
                    m->state, since_s, lim);
                return;
        }
        switch (owner) {
        case OWNER_GRACE_OFF:
                set(out, REAP_KEEP, REAP_RULE_NONE,
                    "no thopter_provisioned mark, created %s ago "
                    "(orphan rule off)",
                    age_s);
                return;
        case OWNED_YOUNG:
                reap_format_duration(s->orphan_grace_s, lim, sizeof(lim));
                set(out, REAP_KEEP, REAP_RULE_NONE,
                    "provisioning: no thopter_provisioned mark yet, created "
                    "%s ago, within THOPTER_ORPHAN_GRACE %s",
                    age_s, lim);
                return;
        case OWNED_FLIGHT:
                set(out, REAP_KEEP, REAP_RULE_NONE,
                    "in flight: no thopter_provisioned mark yet, the latest "
                    "event of request %s is %s, created %s ago",
                    m->request_id, own->last_state, age_s);
                return;
        case OWNER_UNREAD:
                set(out, REAP_KEEP, REAP_RULE_NONE,
                    "owner unknown: no thopter_provisioned mark and "
                    "thopter.events not read (%s), created %s ago",
                    own && own->why[0] ? own->why : "no evidence", age_s);
                out->unchecked = 1;
                return;
        case OWNED_MARK:
        case OWNED_EVENT:
        case OWNER_NONE:
                break;
        }
        if (owned && s->idle_after_s && strcmp(m->state, "started") == 0) {
                if (!idle) {
                        set(out, REAP_CHECK_IDLE, REAP_RULE_NONE,
                            "idle check needed");
                        return;
                }
                if (!idle->known) {
                        set(out, REAP_KEEP, REAP_RULE_NONE,
                            "idleness unknown, kept: %s", idle->why);
                        out->unchecked = 1;
                        return;
                }
                reap_format_duration(idle->idle_s, since_s, sizeof(since_s));
                reap_format_duration(s->idle_after_s, lim, sizeof(lim));
                if (idle->idle_s > s->idle_after_s) {
                        set(out, REAP_DESTROY, REAP_RULE_IDLE,
                            "idle: no tmux activity for %s, longer than "
                            "THOPTER_IDLE_AFTER %s",
                            since_s, lim);
                        return;
                }
                set(out, REAP_KEEP, REAP_RULE_NONE,
                    "active: last tmux activity %s ago, created %s ago",
                    since_s, age_s);
                return;
        }
        if (owner == OWNED_EVENT) {
                set(out, REAP_KEEP, REAP_RULE_NONE,
                    "%s, owned: a completed provision event (request %s) "
                    "names it, created %s ago",
                    m->state, own->completed, age_s);
                return;
        }
        set(out, REAP_KEEP, REAP_RULE_NONE, "%s, provisioned, created %s ago",
            m->state, age_s);
}

/* ------------------------------------------------------------------ */
/* Settings */

static void flag_of(const char *env, char *out, size_t cap) {
        size_t i = 0;
        for (; env[i] && i + 1 < cap; i++)
                out[i] =
                    env[i] == '_' ? '-' : (char)tolower((unsigned char)env[i]);
        out[i] = '\0';
}

static int required(const char *value,
                    const char *env,
                    const char *when,
                    struct err *err) {
        char flag[64];
        if (value && *value)
                return 0;
        flag_of(env, flag, sizeof(flag));
        return err_set(err, ERR_PERMANENT, EINVAL,
                       "%s: required%s but not set (environment or --%s)", env,
                       when, flag);
}

static int duration(const char *value,
                    const char *env,
                    int may_be_off,
                    int64_t *out,
                    struct err *err) {
        if (!value || !*value) {
                *out = 0;
                return 0;
        }
        if (reap_parse_duration(value, out) == -1 || (!may_be_off && !*out))
                return err_set(err, ERR_PERMANENT, EINVAL,
                               "%s: expected a duration such as 72h, 30m, "
                               "90s or 1h30m%s (got \"%s\")",
                               env, may_be_off ? ", or off" : "", value);
        return 0;
}

int reap_settings_load(const struct config *cfg,
                       int apply,
                       struct reap_settings *out,
                       char *warning,
                       size_t cap,
                       struct err *err) {
        memset(out, 0, sizeof(*out));
        if (cap)
                warning[0] = '\0';
        if (duration(cfg->max_lifetime, "THOPTER_MAX_LIFETIME", 1,
                     &out->max_lifetime_s, err) == -1 ||
            duration(cfg->reap_stopped_after, "THOPTER_REAP_STOPPED_AFTER", 1,
                     &out->stopped_after_s, err) == -1 ||
            duration(cfg->orphan_grace, "THOPTER_ORPHAN_GRACE", 1,
                     &out->orphan_grace_s, err) == -1 ||
            duration(cfg->idle_after, "THOPTER_IDLE_AFTER", 1,
                     &out->idle_after_s, err) == -1 ||
            duration(cfg->reap_interval, "THOPTER_REAP_INTERVAL", 0,
                     &out->interval_s, err) == -1)
                return -1;
        if (!out->interval_s)
                return required(NULL, "THOPTER_REAP_INTERVAL", "", err);
        if (required(cfg->app_name, "APP_NAME", "", err) == -1 ||
            required(cfg->fly_deploy_key, "FLY_DEPLOY_KEY", "", err) == -1)
                return -1;
        if (apply && (!cfg->kafka_brokers || !*cfg->kafka_brokers))
                return err_set(err, ERR_PERMANENT, EINVAL,
                               "KAFKA_BROKERS: required with --apply but not "
                               "set (environment, -b or --kafka-brokers)");
        if (out->idle_after_s) {
                if (required(cfg->ssh_key, "THOPTER_SSH_KEY",
                             " when THOPTER_IDLE_AFTER is set", err) == -1)
                        return -1;
                /* Names that reach a remote shell and a tmux target. */
                if (!shell_name_is_safe(cfg->remote_user))
                        return err_set(err, ERR_PERMANENT, EINVAL,
                                       "THOPTER_REMOTE_USER: must be a user "
                                       "name of [A-Za-z0-9._-] (got \"%s\")",
                                       cfg->remote_user ? cfg->remote_user
                                                        : "");
                if (!shell_name_is_safe(cfg->tmux_session) ||
                    strpbrk(cfg->tmux_session, ".:"))
                        return err_set(err, ERR_PERMANENT, EINVAL,
                                       "THOPTER_TMUX_SESSION: must be a name "
                                       "of [A-Za-z0-9_-] (got \"%s\")",
                                       cfg->tmux_session ? cfg->tmux_session
                                                         : "");
        }
        if (out->orphan_grace_s) {
                /* A provision in progress has no mark yet: the grace must
                 * outlast it, or the reaper destroys it while it runs. */
                int64_t ready = cfg->ready_timeout_s;
                int64_t slow = ready + 4LL * cfg->ssh_timeout_s;
                char g[32], r[32], w[32];
                reap_format_duration(out->orphan_grace_s, g, sizeof(g));
                reap_format_duration(ready, r, sizeof(r));
                reap_format_duration(slow, w, sizeof(w));
                if (out->orphan_grace_s <= ready)
                        return err_set(
                            err, ERR_PERMANENT, EINVAL,
                            "THOPTER_ORPHAN_GRACE: %s must be longer than "
                            "THOPTER_READY_TIMEOUT (%s) plus the provisioning "
                            "that follows, or provisions in progress are "
                            "destroyed (or off)",
                            g, r);
                if (out->orphan_grace_s < slow && cap)
                        snprintf(warning, cap,
                                 "THOPTER_ORPHAN_GRACE %s is shorter than "
                                 "THOPTER_READY_TIMEOUT + 4 x "
                                 "THOPTER_SSH_TIMEOUT (%s): a slow provision "
                                 "may be destroyed while it runs",
                                 g, w);
        }
        return 0;
}
