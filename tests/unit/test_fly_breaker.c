/* test_fly_breaker.c - fly_breaker.c's state machine (drawn in
 * fly_breaker.h) against a fake probe: a counter, a programmable answer,
 * and a hold that keeps a probe from answering until the test says so, so
 * CHECKING can be seen before the probe decides. Timings are tens of ms. */
#include "fly_breaker.h"
#include "clock.h"
#include "metrics.h"
#include "test_helpers.h"

#include <criterion/criterion.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define LONG_MS 60000 /* a probe_ms no test waits for */

struct probe {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        int calls;
        int fail_first; /* the first N probes fail; -1: all of them */
        int held;       /* while set, a probe waits before answering */
};

static struct probe probe = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .cond = PTHREAD_COND_INITIALIZER,
};

static int fake_probe(void *arg, struct err *err) {
        struct probe *p = arg;
        int n, fail;

        pthread_mutex_lock(&p->lock);
        n = ++p->calls;
        pthread_cond_broadcast(&p->cond);
        while (p->held)
                pthread_cond_wait(&p->cond, &p->lock);
        fail = p->fail_first < 0 || n <= p->fail_first;
        pthread_mutex_unlock(&p->lock);
        if (fail)
                return err_set(err, ERR_TRANSIENT, 503, "probe: HTTP 503");
        return 0;
}

static void set_probe(int fail_first, int held) {
        pthread_mutex_lock(&probe.lock);
        probe.fail_first = fail_first;
        probe.held = held;
        pthread_cond_broadcast(&probe.cond);
        pthread_mutex_unlock(&probe.lock);
}

static void release_probe(void) {
        pthread_mutex_lock(&probe.lock);
        probe.held = 0;
        pthread_cond_broadcast(&probe.cond);
        pthread_mutex_unlock(&probe.lock);
}

static int probe_calls(void) {
        pthread_mutex_lock(&probe.lock);
        int n = probe.calls;
        pthread_mutex_unlock(&probe.lock);
        return n;
}

static void setup(void) {
        metrics_reset();
        probe.calls = 0;
        set_probe(0, 0);
}

TestSuite(fly_breaker, .init = setup);

static struct fly_breaker *new_breaker(int threshold, long probe_ms) {
        struct err err = {0};
        struct fly_breaker *b =
            fly_breaker_new(threshold, probe_ms, fake_probe, &probe, &err);

        cr_assert_not_null(b, "fly_breaker_new: %s", err.msg);
        return b;
}

static void destroy(struct fly_breaker *b) {
        release_probe();
        fly_breaker_destroy(b);
}

struct state_is {
        struct fly_breaker *b;
        enum fly_breaker_state want;
};

static int reached(void *arg) {
        struct state_is *s = arg;

        return fly_breaker_state(s->b) == s->want;
}

/* Waits up to a second for @p want; the test fails otherwise. */
static void await_state(struct fly_breaker *b, enum fly_breaker_state want) {
        struct state_is s = {b, want};

        cr_assert(test_wait_for(reached, &s, 1000), "state %d, waited for %d",
                  fly_breaker_state(b), want);
}

static int one_probe_started(void *arg) {
        (void)arg;
        return probe_calls() >= 1;
}

static void fail(struct fly_breaker *b, const char *target) {
        struct err e = {0};

        err_set(&e, ERR_TRANSIENT, 503, "fly: %s: HTTP 503", target);
        fly_breaker_record_failure(b, target, &e);
}

/* The breaker's metrics: thopter_circuit_open, thopter_circuit_opened_total
 * and thopter_circuit_probes_total by result. */
struct circuit_metrics {
        double open, opened, probes_ok, probes_failed;
};

static void expect_metrics(struct circuit_metrics want, int line) {
        struct circuit_metrics got = {
            metrics_get(M_CIRCUIT_OPEN, ""),
            metrics_get(M_CIRCUIT_OPENED, ""),
            metrics_get(M_CIRCUIT_PROBES, "result=\"ok\""),
            metrics_get(M_CIRCUIT_PROBES, "result=\"failed\""),
        };

        cr_expect(got.open == want.open && got.opened == want.opened &&
                      got.probes_ok == want.probes_ok &&
                      got.probes_failed == want.probes_failed,
                  "line %d: open %g opened %g probes ok %g failed %g, wanted "
                  "%g %g %g %g",
                  line, got.open, got.opened, got.probes_ok, got.probes_failed,
                  want.open, want.opened, want.probes_ok, want.probes_failed);
}

#define EXPECT_METRICS(open, opened, ok, failed)                               \
        expect_metrics((struct circuit_metrics){open, opened, ok, failed},     \
                       __LINE__)

/* ------------------------------------------------------------------------ */

struct targets_case {
        int threshold;
        const char *calls[8]; /* a target that failed, or "+" a success */
        enum fly_breaker_state want;
};

Test(fly_breaker, distinct_targets_make_it_check) {
        static const struct targets_case cases[] = {
            {1, {"delete:a"}, FLY_BREAKER_CHECKING},
            {2, {"delete:a", "delete:a", "delete:a"}, FLY_BREAKER_CLOSED},
            {2, {"delete:a", "delete:b"}, FLY_BREAKER_CHECKING},
            {2, {"delete:a", "stop:a"}, FLY_BREAKER_CHECKING},
            {3, {"a", "b", "a", "b", "a"}, FLY_BREAKER_CLOSED},
            {3, {"a", "b", "+", "c"}, FLY_BREAKER_CLOSED},
            {3, {"a", "b", "+", "c", "a", "b"}, FLY_BREAKER_CHECKING},
            {3, {"a", "b", "c"}, FLY_BREAKER_CHECKING},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const struct targets_case *c = &cases[i];
                struct fly_breaker *b;

                probe.calls = 0;
                set_probe(0, 1);
                b = new_breaker(c->threshold, LONG_MS);
                for (size_t k = 0; c->calls[k]; k++) {
                        if (strcmp(c->calls[k], "+") == 0)
                                fly_breaker_record_success(b);
                        else
                                fail(b, c->calls[k]);
                }
                cr_expect_eq(fly_breaker_state(b), c->want, "case %zu", i);
                /* Suspicion pauses nothing. */
                cr_expect_not(fly_breaker_is_open(b), "case %zu", i);
                if (c->want == FLY_BREAKER_CHECKING)
                        cr_expect(test_wait_for(one_probe_started, NULL, 1000),
                                  "case %zu: no probe", i);
                else
                        cr_expect_eq(probe_calls(), 0, "case %zu", i);
                destroy(b);
        }
}

Test(fly_breaker, threshold_is_clamped_to_1_and_64) {
        struct fly_breaker *b;
        char target[16];

        set_probe(0, 1);
        b = new_breaker(0, LONG_MS);
        fail(b, "a");
        cr_expect_eq(fly_breaker_state(b), FLY_BREAKER_CHECKING);
        destroy(b);

        set_probe(0, 1);
        b = new_breaker(1000, LONG_MS);
        for (int i = 0; i < 63; i++) {
                snprintf(target, sizeof(target), "t%d", i);
                fail(b, target);
        }
        cr_expect_eq(fly_breaker_state(b), FLY_BREAKER_CLOSED);
        fail(b, "t63");
        cr_expect_eq(fly_breaker_state(b), FLY_BREAKER_CHECKING);
        destroy(b);
}

Test(fly_breaker, checking_closes_when_the_probe_answers) {
        struct fly_breaker *b;

        set_probe(0, 1);
        b = new_breaker(2, LONG_MS);
        fail(b, "delete:a");
        fail(b, "delete:b");
        cr_expect_eq(fly_breaker_state(b), FLY_BREAKER_CHECKING);
        cr_assert(test_wait_for(one_probe_started, NULL, 1000));
        release_probe();
        await_state(b, FLY_BREAKER_CLOSED);

        cr_expect_eq(fly_breaker_open_count(b), 0);
        cr_expect_eq(fly_breaker_probe_count(b), 1);
        cr_expect_eq(probe_calls(), 1);
        EXPECT_METRICS(0, 0, 1, 0);
        destroy(b);
}

Test(fly_breaker, checking_opens_when_the_probe_fails) {
        struct fly_breaker *b;

        set_probe(-1, 0);
        b = new_breaker(2, LONG_MS);
        fail(b, "delete:a");
        fail(b, "delete:b");
        await_state(b, FLY_BREAKER_OPEN);

        cr_expect(fly_breaker_is_open(b));
        cr_expect_eq(fly_breaker_open_count(b), 1);
        EXPECT_METRICS(1, 1, 0, 1);

        /* More failures while open change nothing. */
        fail(b, "delete:c");
        fail(b, "delete:d");
        cr_expect_eq(fly_breaker_state(b), FLY_BREAKER_OPEN);
        cr_expect_eq(fly_breaker_open_count(b), 1);
        EXPECT_METRICS(1, 1, 0, 1);
        destroy(b);
}

Test(fly_breaker, open_closes_when_a_probe_answers) {
        const long probe_ms = 20;
        struct fly_breaker *b;
        int64_t opened_at;

        set_probe(2, 0); /* the check fails, one more fails, then answers */
        b = new_breaker(1, probe_ms);
        fail(b, "delete:a");
        await_state(b, FLY_BREAKER_OPEN);
        opened_at = clock_mono_ms();
        await_state(b, FLY_BREAKER_CLOSED);

        /* Two more probes, probe_ms apart: no hot loop. */
        cr_expect_geq(clock_mono_ms() - opened_at, 2 * probe_ms - 10);
        cr_expect_eq(probe_calls(), 3);
        cr_expect_eq(fly_breaker_open_count(b), 1);
        EXPECT_METRICS(0, 1, 1, 2);
        destroy(b);
}

Test(fly_breaker, open_closes_when_a_call_answers) {
        struct fly_breaker *b;

        set_probe(-1, 0);
        b = new_breaker(1, LONG_MS);
        fail(b, "delete:a");
        await_state(b, FLY_BREAKER_OPEN);
        fly_breaker_record_success(b);
        cr_expect_eq(fly_breaker_state(b), FLY_BREAKER_CLOSED);
        EXPECT_METRICS(0, 1, 0, 1);
        cr_expect_eq(probe_calls(), 1);
        destroy(b);
}

Test(fly_breaker, no_new_check_within_probe_ms_of_an_answer) {
        const long probe_ms = test_ms(60);
        struct fly_breaker *b;

        b = new_breaker(1, probe_ms);
        fail(b, "delete:a");
        await_state(b, FLY_BREAKER_CLOSED);
        cr_expect_eq(probe_calls(), 1);

        /* Quiet: the failures were the targets' own. */
        fail(b, "delete:b");
        fail(b, "delete:c");
        cr_expect_eq(fly_breaker_state(b), FLY_BREAKER_CLOSED);
        cr_expect_eq(probe_calls(), 1);

        /* After the quiet period, a failure checks again. */
        clock_sleep_ms(probe_ms + 5);
        set_probe(0, 1);
        fail(b, "delete:d");
        cr_expect_eq(fly_breaker_state(b), FLY_BREAKER_CHECKING);
        release_probe();
        await_state(b, FLY_BREAKER_CLOSED);
        cr_expect_eq(probe_calls(), 2);
        cr_expect_eq(fly_breaker_open_count(b), 0);
        destroy(b);
}

Test(fly_breaker, outage_uses_a_fresh_answer_without_probing) {
        struct fly_breaker *b;

        b = new_breaker(1, LONG_MS);
        fail(b, "delete:a");
        await_state(b, FLY_BREAKER_CLOSED);
        cr_assert_eq(probe_calls(), 1);

        set_probe(-1, 0); /* a probe now would fail */
        cr_expect_eq(fly_breaker_outage(b), 0);
        cr_expect_eq(probe_calls(), 1);
        cr_expect_eq(fly_breaker_state(b), FLY_BREAKER_CLOSED);
        destroy(b);
}

Test(fly_breaker, outage_probes_when_there_is_no_fresh_answer) {
        struct fly_breaker *b;

        /* Never probed: probe now, on this thread. */
        b = new_breaker(64, LONG_MS);
        cr_expect_eq(fly_breaker_outage(b), 0);
        cr_expect_eq(probe_calls(), 1);
        cr_expect_eq(fly_breaker_state(b), FLY_BREAKER_CLOSED);
        EXPECT_METRICS(0, 0, 1, 0);
        destroy(b);

        /* An answer older than probe_ms is stale. */
        probe.calls = 0;
        b = new_breaker(64, 20);
        cr_expect_eq(fly_breaker_outage(b), 0);
        clock_sleep_ms(25);
        cr_expect_eq(fly_breaker_outage(b), 0);
        cr_expect_eq(probe_calls(), 2);
        destroy(b);
}

Test(fly_breaker, outage_opens_when_its_probe_fails) {
        struct fly_breaker *b;

        set_probe(-1, 0);
        b = new_breaker(64, LONG_MS);
        cr_expect_eq(fly_breaker_outage(b), 1);
        cr_expect_eq(fly_breaker_state(b), FLY_BREAKER_OPEN);
        cr_expect_eq(probe_calls(), 1);
        cr_expect_eq(fly_breaker_open_count(b), 1);
        EXPECT_METRICS(1, 1, 0, 1);

        /* Already open: the answer is 1, without another probe. */
        cr_expect_eq(fly_breaker_outage(b), 1);
        cr_expect_eq(probe_calls(), 1);
        destroy(b);
}

struct later {
        struct fly_breaker *b;
        atomic_int *cancel; /* set it, or else record a success */
};

static void *after_20_ms(void *arg) {
        struct later *l = arg;

        clock_sleep_ms(20);
        if (l->cancel)
                atomic_store(l->cancel, 1);
        else
                fly_breaker_record_success(l->b);
        return NULL;
}

Test(fly_breaker, wait_closed_returns_at_once_when_closed) {
        struct fly_breaker *b = new_breaker(3, LONG_MS);
        atomic_int cancel = 0;

        cr_expect_eq(fly_breaker_wait_closed(b, &cancel), 0);
        cr_expect_eq(fly_breaker_wait_closed(b, NULL), 0);
        destroy(b);
}

Test(fly_breaker, wait_closed_honours_cancel) {
        struct fly_breaker *b;
        atomic_int cancel = 1;
        struct later l;
        pthread_t t;
        int64_t t0;

        set_probe(-1, 0);
        b = new_breaker(1, LONG_MS);
        cr_assert_eq(fly_breaker_outage(b), 1);

        t0 = clock_mono_ms();
        cr_expect_eq(fly_breaker_wait_closed(b, &cancel), -1);
        cr_expect_lt(clock_mono_ms() - t0, 50);

        /* Cancelled while waiting. */
        atomic_store(&cancel, 0);
        l = (struct later){b, &cancel};
        cr_assert_eq(pthread_create(&t, NULL, after_20_ms, &l), 0);
        cr_expect_eq(fly_breaker_wait_closed(b, &cancel), -1);
        pthread_join(t, NULL);
        cr_expect_eq(fly_breaker_state(b), FLY_BREAKER_OPEN);
        destroy(b);
}

Test(fly_breaker, wait_closed_returns_when_the_circuit_closes) {
        struct fly_breaker *b;
        atomic_int cancel = 0;
        struct later l;
        pthread_t t;

        set_probe(-1, 0);
        b = new_breaker(1, LONG_MS);
        cr_assert_eq(fly_breaker_outage(b), 1);
        l = (struct later){b, NULL};
        cr_assert_eq(pthread_create(&t, NULL, after_20_ms, &l), 0);
        cr_expect_eq(fly_breaker_wait_closed(b, &cancel), 0);
        cr_expect_eq(fly_breaker_state(b), FLY_BREAKER_CLOSED);
        pthread_join(t, NULL);
        destroy(b);
}

Test(fly_breaker, destroy_accepts_null) {
        fly_breaker_destroy(NULL);
}
