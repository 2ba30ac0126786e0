/* test_fly_retry.c - fly_retry.c: the retry budget of contract 5.5 and its
 * dealings with the circuit breaker of 5.12, driven by a scripted call (a
 * sequence of answers) with delays of a few ms, a real fly_breaker over a
 * fake probe, and a job whose ops record the events it emits. */
#include "fly_retry.h"
#include "clock.h"
#include "metrics.h"
#include "test_helpers.h"

#include <criterion/criterion.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* ---- the scripted call --------------------------------------------------- */

struct answer {
        enum err_kind kind; /* ERR_NONE: success */
        int code;
        enum err_cause cause;
        long retry_after_ms;
};

#define OK                                                                     \
        { ERR_NONE, 0, ERR_CAUSE_OTHER, 0 }
#define TRANSIENT(code)                                                        \
        { ERR_TRANSIENT, code, ERR_CAUSE_OTHER, 0 }
#define PERMANENT(code)                                                        \
        { ERR_PERMANENT, code, ERR_CAUSE_OTHER, 0 }
#define RETRY_AFTER(c, ms)                                                     \
        { ERR_TRANSIENT, c, ERR_CAUSE_OTHER, ms }
#define OUT_OF_MEMORY                                                          \
        { ERR_TRANSIENT, 0, ERR_CAUSE_OOM, 0 }
#define CANCELLED                                                              \
        { ERR_TRANSIENT, 0, ERR_CAUSE_CANCELLED, 0 }
#define CONNECTION_REFUSED                                                     \
        { ERR_TRANSIENT, 7, ERR_CAUSE_OTHER, 0 }

/* The answers in order; the last one repeats forever. */
struct script {
        struct answer answers[8];
        int n;
        int calls;
        struct job *cancel_job; /* cancel this job ... */
        int cancel_at;          /* ... during call number cancel_at */
};

#define SCRIPT(...)                                                            \
        {                                                                      \
                .answers = {__VA_ARGS__},                                      \
                .n = (int)(sizeof((struct answer[]){__VA_ARGS__}) /            \
                           sizeof(struct answer))                              \
        }

static int scripted(void *arg, struct err *err) {
        struct script *s = arg;
        int i = s->calls < s->n ? s->calls : s->n - 1;
        const struct answer *a = &s->answers[i];

        s->calls++;
        if (s->cancel_job && s->calls == s->cancel_at)
                atomic_store(&s->cancel_job->cancel, 1);
        if (a->kind == ERR_NONE)
                return 0;
        err_setc(err, a->kind, a->cause, a->code, "fly: delete: HTTP %d",
                 a->code);
        err->retry_after_ms = a->retry_after_ms;
        return -1;
}

/* ---- a job that records its events (test_recording_ops) ----------------- */

static void init_job(struct job *job, struct test_events *ev) {
        memset(job, 0, sizeof(*job));
        memset(ev, 0, sizeof(*ev));
        job->rec.topic = "thopter.destroy";
        job->rec.kind = "destroy";
        snprintf(job->request_id, sizeof(job->request_id), "req-1");
        job->ops = &test_recording_ops;
        job->ops_ctx = ev;
}

/* "retrying,retrying,waiting_fly" */
static void states(const struct test_events *ev, char *out, size_t cap) {
        size_t n = 0;

        cr_assert_leq(ev->n, TEST_EVENTS_MAX);
        out[0] = '\0';
        for (int i = 0; i < ev->n && n < cap; i++)
                n += (size_t)snprintf(out + n, cap - n, "%s%s", i ? "," : "",
                                      ev->e[i].state);
}

/* ---- a fake probe for a real breaker ------------------------------------- */

static atomic_int probe_calls;
static atomic_int probe_fail_first; /* the first N fail; -1: all */

static int fake_probe(void *arg, struct err *err) {
        int n = atomic_fetch_add(&probe_calls, 1) + 1;
        int ff = atomic_load(&probe_fail_first);

        (void)arg;
        if (ff < 0 || n <= ff)
                return err_set(err, ERR_TRANSIENT, 503, "probe: HTTP 503");
        return 0;
}

static struct fly_breaker *
new_breaker(int threshold, long probe_ms, int fail_first) {
        struct err err = {0};
        struct fly_breaker *b;

        atomic_store(&probe_calls, 0);
        atomic_store(&probe_fail_first, fail_first);
        b = fly_breaker_new(threshold, probe_ms, fake_probe, NULL, &err);
        cr_assert_not_null(b, "fly_breaker_new: %s", err.msg);
        return b;
}

static void setup(void) {
        metrics_reset();
        log_set_level(LOG_ERROR);
}

TestSuite(fly_retry, .init = setup);

#define RETRY(n)                                                               \
        { .max_attempts = n, .base_ms = 1, .max_ms = 4 }

/* ------------------------------------------------------------------------ */

struct budget_case {
        const char *what;
        struct script s;
};

Test(fly_retry, transient_failures_stop_at_max_attempts) {
        struct budget_case cases[] = {
            {"503", SCRIPT(TRANSIENT(503))},
            {"500", SCRIPT(TRANSIENT(500))},
            {"502", SCRIPT(TRANSIENT(502))},
            {"connection refused", SCRIPT(CONNECTION_REFUSED)},
            {"429", SCRIPT(RETRY_AFTER(429, 2))},
            {"408", SCRIPT(TRANSIENT(408))},
            {"out of memory", SCRIPT(OUT_OF_MEMORY)},
            {"mixed", SCRIPT(TRANSIENT(503), TRANSIENT(408), TRANSIENT(502))},
        };
        const struct fly_retry r = RETRY(4);

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct script *s = &cases[i].s;
                const struct answer *last = &s->answers[s->n - 1];
                struct job job;
                struct test_events ev;
                struct err err = {0};

                init_job(&job, &ev);
                cr_expect_eq(fly_retry_call(&r, &job, "delete", "delete:a",
                                            scripted, s, &err),
                             -1, "%s", cases[i].what);
                cr_expect_eq(s->calls, 4, "%s", cases[i].what);
                cr_expect_eq(err.kind, ERR_TRANSIENT, "%s", cases[i].what);
                cr_expect_eq(err.cls, ERRC_FLY_UNAVAILABLE, "%s",
                             cases[i].what);
                cr_expect_str_eq(err.step, "delete", "%s", cases[i].what);
                cr_expect_eq(err.code, last->code, "%s", cases[i].what);
                cr_expect_eq(err.cause, last->cause, "%s", cases[i].what);
                cr_expect_eq(job.attempt, 4, "%s", cases[i].what);
        }
        cr_expect_eq(metrics_get(M_FLY_RETRIES, ""), 8 * 3);
}

Test(fly_retry, permanent_is_fly_rejected_at_once) {
        static const int codes[] = {400, 404, 409, 422};
        const struct fly_retry r = RETRY(4);

        for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
                struct script s = SCRIPT(PERMANENT(codes[i]));
                struct job job;
                struct test_events ev;
                struct err err = {0};

                init_job(&job, &ev);
                cr_expect_eq(fly_retry_call(&r, &job, "create",
                                            "create:", scripted, &s, &err),
                             -1);
                cr_expect_eq(s.calls, 1, "%d", codes[i]);
                cr_expect_eq(err.kind, ERR_PERMANENT, "%d", codes[i]);
                cr_expect_eq(err.cls, ERRC_FLY_REJECTED, "%d", codes[i]);
                cr_expect_str_eq(err.step, "create", "%d", codes[i]);
                cr_expect_eq(err.code, codes[i]);
                cr_expect_eq(job.attempt, 1, "%d", codes[i]);
                cr_expect_eq(ev.n, 0, "%d", codes[i]);
        }
}

struct success_case {
        const char *what;
        struct script s;
        int calls;
        const char *events;
};

Test(fly_retry, success_after_failures_returns_0) {
        struct success_case cases[] = {
            {"at once", SCRIPT(OK), 1, ""},
            {"attempt 3", SCRIPT(TRANSIENT(503), TRANSIENT(500), OK), 3,
             "retrying,retrying"},
            {"after 429", SCRIPT(RETRY_AFTER(429, 1), OK), 2, "retrying"},
            /* A wait that timed out only means "not yet": no event. */
            {"after 408s", SCRIPT(TRANSIENT(408), TRANSIENT(408), OK), 3, ""},
            {"408 then 503",
             SCRIPT(TRANSIENT(408), TRANSIENT(503), TRANSIENT(408), OK), 4,
             "retrying"},
            {"the last attempt",
             SCRIPT(TRANSIENT(503), TRANSIENT(503), TRANSIENT(503), OK), 4,
             "retrying,retrying,retrying"},
        };
        const struct fly_retry r = RETRY(4);

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct success_case *c = &cases[i];
                struct job job;
                struct test_events ev;
                struct err err = {0};
                char got[256];

                init_job(&job, &ev);
                cr_expect_eq(fly_retry_call(&r, &job, "delete", "delete:a",
                                            scripted, &c->s, &err),
                             0, "%s: %s", c->what, err.msg);
                cr_expect_eq(c->s.calls, c->calls, "%s", c->what);
                cr_expect_eq(err.kind, ERR_NONE, "%s", c->what);
                /* Attempts shown in events: the one that succeeded. */
                cr_expect_eq(job.attempt < 1 ? 1 : job.attempt, c->calls, "%s",
                             c->what);
                states(&ev, got, sizeof(got));
                cr_expect_str_eq(got, c->events, "%s", c->what);
                for (int k = 0; k < ev.n; k++) {
                        cr_expect_str_eq(ev.e[k].step, "delete", "%s", c->what);
                        cr_expect_eq(ev.e[k].cls, ERRC_FLY_UNAVAILABLE, "%s",
                                     c->what);
                        cr_expect_neq(ev.e[k].code, 408, "%s", c->what);
                }
        }
}

Test(fly_retry, retry_after_is_a_floor) {
        const struct fly_retry r = RETRY(4);
        struct script s = SCRIPT(RETRY_AFTER(429, 30), OK);
        struct err err = {0};
        int64_t t0 = clock_mono_ms();

        assert_ok(
            fly_retry_call(&r, NULL, "delete", "delete:a", scripted, &s, &err),
            &err);
        cr_expect_geq(clock_mono_ms() - t0, 30);
        cr_expect_eq(s.calls, 2);
}

Test(fly_retry, works_without_a_job_or_a_breaker) {
        const struct fly_retry r = RETRY(2);
        struct script s = SCRIPT(TRANSIENT(503));
        struct err err = {0};

        cr_expect_eq(
            fly_retry_call(&r, NULL, "stop", "stop:a", scripted, &s, &err), -1);
        cr_expect_eq(s.calls, 2);
        cr_expect_eq(err.cls, ERRC_FLY_UNAVAILABLE);
        cr_expect_str_eq(err.step, "stop");
}

/* ---- with the breaker -----------------------------------------------------
 */

Test(fly_retry, pacing_and_timeouts_are_not_evidence_against_the_api) {
        static const int codes[] = {429, 408};

        for (size_t i = 0; i < 2; i++) {
                struct fly_breaker *b = new_breaker(1, 60000, -1);
                struct fly_retry r = RETRY(3);
                struct script s = SCRIPT(RETRY_AFTER(codes[i], 1));
                struct err err = {0};

                r.breaker = b;
                cr_expect_eq(fly_retry_call(&r, NULL, "wait", "wait:a",
                                            scripted, &s, &err),
                             -1);
                cr_expect_eq(s.calls, 3, "%d", codes[i]);
                cr_expect_eq(err.cls, ERRC_FLY_UNAVAILABLE, "%d", codes[i]);
                /* Not one failure recorded: no check, no outage() probe. */
                cr_expect_eq(fly_breaker_state(b), FLY_BREAKER_CLOSED, "%d",
                             codes[i]);
                cr_expect_eq(atomic_load(&probe_calls), 0, "%d", codes[i]);
                cr_expect_eq(fly_breaker_open_count(b), 0, "%d", codes[i]);
                fly_breaker_destroy(b);
        }
}

/* The "hopeless machine" rule: while the probe answers, a call whose own
 * calls fail spends its budget and returns. */
Test(fly_retry, a_call_failing_while_the_api_answers_spends_its_budget) {
        struct fly_breaker *b = new_breaker(1, 60000, 0);
        struct fly_retry r = RETRY(5);
        struct script s = SCRIPT(TRANSIENT(503));
        struct job job;
        struct test_events ev;
        struct err err = {0};

        r.breaker = b;
        init_job(&job, &ev);
        cr_expect_eq(
            fly_retry_call(&r, &job, "delete", "delete:a", scripted, &s, &err),
            -1);
        cr_expect_eq(s.calls, 5);
        cr_expect_eq(err.cls, ERRC_FLY_UNAVAILABLE);
        cr_expect_str_eq(err.step, "delete");
        cr_expect_eq(job.attempt, 5);
        cr_expect_eq(fly_breaker_open_count(b), 0);
        cr_expect_geq(atomic_load(&probe_calls), 1);
        cr_expect_eq(test_events_count(&ev, "waiting_fly"), 0);
        cr_expect_eq(test_events_count(&ev, "retrying"), 4);
        fly_breaker_destroy(b);
}

/* An outage while the call was failing: its failures were the outage's, so
 * its budget starts again once the circuit closes. The breaker never checks
 * on its own here (one target, threshold 64): the outage is found by
 * outage() when the first budget is spent, its probe and the next fail, the
 * third answers. */
struct outage_case {
        const char *what;
        struct script s;
        int rc, calls;
};

Test(fly_retry, the_budget_restarts_after_an_outage) {
        struct outage_case cases[] = {
            /* 3 failures, the outage, 2 more, then an answer: without the
             * restart the 4th failure would have ended the call. */
            {"succeeds in its second budget",
             SCRIPT(TRANSIENT(503), TRANSIENT(503), TRANSIENT(503),
                    TRANSIENT(503), TRANSIENT(503), OK),
             0, 6},
            /* A second budget, and no more: the API answers now. */
            {"fails its second budget too", SCRIPT(TRANSIENT(503)), -1, 6},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct outage_case *c = &cases[i];
                struct fly_breaker *b = new_breaker(64, 20, 2);
                struct fly_retry r = RETRY(3);
                struct job job;
                struct test_events ev;
                struct err err = {0};

                r.breaker = b;
                init_job(&job, &ev);
                cr_expect_eq(fly_retry_call(&r, &job, "delete", "delete:a",
                                            scripted, &c->s, &err),
                             c->rc, "%s: %s", c->what, err.msg);
                cr_expect_eq(c->s.calls, c->calls, "%s", c->what);
                cr_expect_eq(fly_breaker_open_count(b), 1, "%s", c->what);
                cr_expect_eq(fly_breaker_state(b), FLY_BREAKER_CLOSED, "%s",
                             c->what);
                cr_expect_geq(atomic_load(&probe_calls), 3, "%s", c->what);
                cr_expect_eq(test_events_count(&ev, "waiting_fly"), 1, "%s",
                             c->what);
                cr_assert_leq(ev.n, TEST_EVENTS_MAX);
                for (int k = 0; k < ev.n; k++)
                        cr_expect_str_eq(ev.e[k].step, "delete", "%s", c->what);
                if (c->rc == -1)
                        cr_expect_eq(err.cls, ERRC_FLY_UNAVAILABLE, "%s",
                                     c->what);
                fly_breaker_destroy(b);
        }
}

/* The same with the breaker checking on its own (threshold 1): the first
 * failure makes it probe, the probe fails and it opens while the call is
 * still in its first budget. */
Test(fly_retry, a_call_waits_while_open_without_spending_attempts) {
        struct fly_breaker *b = new_breaker(1, 20, 2);
        struct fly_retry r = RETRY(3);
        struct script s =
            SCRIPT(TRANSIENT(503), TRANSIENT(503), TRANSIENT(503), OK);
        struct job job;
        struct test_events ev;
        struct err err = {0};

        r.breaker = b;
        init_job(&job, &ev);
        assert_ok(
            fly_retry_call(&r, &job, "delete", "delete:a", scripted, &s, &err),
            &err);
        cr_expect_eq(s.calls, 4); /* more than max_attempts */
        cr_expect_eq(fly_breaker_open_count(b), 1);
        cr_expect_eq(fly_breaker_state(b), FLY_BREAKER_CLOSED);
        cr_expect_eq(test_events_count(&ev, "waiting_fly"), 1);
        fly_breaker_destroy(b);
}

Test(fly_retry, an_answer_clears_the_breakers_suspicion) {
        static const struct answer answers[] = {OK, PERMANENT(404)};

        for (size_t i = 0; i < 2; i++) {
                struct fly_breaker *b = new_breaker(2, 60000, 0);
                struct fly_retry r = RETRY(3);
                struct script s = {.answers = {answers[i]}, .n = 1};
                struct err err = {0};
                struct err e = {0};

                r.breaker = b;
                err_set(&e, ERR_TRANSIENT, 503, "HTTP 503");
                fly_breaker_record_failure(b, "delete:x", &e);
                fly_retry_call(&r, NULL, "delete", "delete:a", scripted, &s,
                               &err);
                /* Without the answer in between, x and y would make two. */
                fly_breaker_record_failure(b, "delete:y", &e);
                cr_expect_eq(fly_breaker_state(b), FLY_BREAKER_CLOSED,
                             "case %zu", i);
                fly_breaker_destroy(b);
        }
}

/* ---- cancellation ---------------------------------------------------------
 */

Test(fly_retry, a_cancelled_job_makes_no_call) {
        const struct fly_retry r = RETRY(3);
        struct script s = SCRIPT(OK);
        struct job job;
        struct test_events ev;
        struct err err = {0};

        init_job(&job, &ev);
        atomic_store(&job.cancel, 1);
        cr_expect_eq(
            fly_retry_call(&r, &job, "delete", "delete:a", scripted, &s, &err),
            -1);
        cr_expect_eq(s.calls, 0);
        cr_expect_eq(err.cause, ERR_CAUSE_CANCELLED);
        cr_expect_eq(err.cls, ERRC_NONE);
}

Test(fly_retry, cancel_ends_the_backoff_at_once) {
        struct fly_retry r = RETRY(3);
        struct script s = SCRIPT(TRANSIENT(503));
        struct job job;
        struct test_events ev;
        struct err err = {0};
        int64_t t0;

        r.base_ms = r.max_ms = 60000;
        init_job(&job, &ev);
        s.cancel_job = &job;
        s.cancel_at = 1;
        t0 = clock_mono_ms();
        cr_expect_eq(
            fly_retry_call(&r, &job, "delete", "delete:a", scripted, &s, &err),
            -1);
        cr_expect_lt(clock_mono_ms() - t0, 1000);
        cr_expect_eq(s.calls, 1);
        cr_expect_eq(err.cause, ERR_CAUSE_CANCELLED);
        cr_expect_eq(err.cls, ERRC_NONE);
        cr_expect_str_eq(err.msg, "interrupted by shutdown");
}

Test(fly_retry, a_call_that_reports_cancellation_ends_unclassified) {
        const struct fly_retry r = RETRY(3);
        struct script s = SCRIPT(CANCELLED);
        struct err err = {0};

        cr_expect_eq(
            fly_retry_call(&r, NULL, "wait", "wait:a", scripted, &s, &err), -1);
        cr_expect_eq(s.calls, 1);
        cr_expect_eq(err.cause, ERR_CAUSE_CANCELLED);
        cr_expect_eq(err.cls, ERRC_NONE);
}

static void *cancel_after_20_ms(void *arg) {
        clock_sleep_ms(20);
        atomic_store((atomic_int *)arg, 1);
        return NULL;
}

Test(fly_retry, cancel_ends_a_wait_for_the_breaker) {
        struct fly_breaker *b = new_breaker(1, 60000, -1);
        struct fly_retry r = RETRY(3);
        struct script s = SCRIPT(OK);
        struct job job;
        struct test_events ev;
        struct err err = {0};
        pthread_t t;

        cr_assert_eq(fly_breaker_outage(b), 1); /* open */
        r.breaker = b;
        init_job(&job, &ev);
        cr_assert_eq(pthread_create(&t, NULL, cancel_after_20_ms, &job.cancel),
                     0);
        cr_expect_eq(
            fly_retry_call(&r, &job, "delete", "delete:a", scripted, &s, &err),
            -1);
        pthread_join(t, NULL);
        cr_expect_eq(s.calls, 0);
        cr_expect_eq(err.cause, ERR_CAUSE_CANCELLED);
        cr_expect_eq(test_events_count(&ev, "waiting_fly"), 1);
        cr_expect_str_eq(ev.e[0].step, "delete");
        fly_breaker_destroy(b);
}
