/* tsan_shared_state.c - the library's shared state, hit from several
 * threads at once, for ThreadSanitizer (and ASan) to watch: the fly circuit
 * breaker (its prober thread included), the metrics registry (updates and a
 * render), log lines with redaction, and what parallel provisions share:
 * their claims (provision_claims) and the fly pacer (fly_pace).
 *
 * A plain program, not Criterion: Criterion cannot start under TSan
 * (tests/CMakeLists.txt). Exit 0 when the counts add up; the sanitizer's
 * report fails the test through FAIL_REGULAR_EXPRESSION.
 */
#include "err.h"
#include "fly_breaker.h"
#include "fly_pace.h"
#include "log.h"
#include "metrics.h"
#include "provision_claims.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define THREADS 4
#define ROUNDS  200

static atomic_int probes_failing = 1;

static int probe(void *arg, struct err *err) {
        (void)arg;
        if (atomic_load(&probes_failing))
                return err_set(err, ERR_TRANSIENT, 503, "probe: HTTP 503");
        return 0;
}

struct worker {
        struct fly_breaker *b;
        struct provision_claims *claims;
        struct fly_pace *pace;
        atomic_int *gc_copies, *gc_max;
        int id;
};

/* A provision's claims, as a worker of the provision loop takes them. */
static void claim_round(struct worker *w, int i) {
        char me[32], vol[32];
        const char *busy[] = {"m1", "m2"};

        snprintf(me, sizeof(me), "req-%d", w->id);
        snprintf(vol, sizeof(vol), "vol_%d", i % 3);
        (void)provision_claims_volume(w->claims, vol, me);
        if (provision_claims_slot(w->claims, me, busy, 2, 4, NULL) == 1)
                provision_claims_slot_machine(w->claims, me, "m9");
        if (provision_claims_gc_turn(w->claims, "gc", me, 1, NULL) == 1) {
                int now = atomic_fetch_add(w->gc_copies, 1) + 1;
                if (now > atomic_load(w->gc_max))
                        atomic_store(w->gc_max, now);
                atomic_fetch_sub(w->gc_copies, 1);
                provision_claims_gc_done(w->claims, me);
        }
        (void)fly_pace_take(w->pace, "machines.list", i);
        provision_claims_release(w->claims, me);
}

static void *work(void *arg) {
        struct worker *w = arg;
        struct err failure = {0};
        char target[64];

        err_set(&failure, ERR_TRANSIENT, 503, "fly: HTTP 503");
        for (int i = 0; i < ROUNDS; i++) {
                snprintf(target, sizeof(target), "delete:%d-%d", w->id, i % 7);
                fly_breaker_record_failure(w->b, target, &failure);
                if (i % 50 == 0)
                        (void)fly_breaker_outage(w->b);
                (void)fly_breaker_is_open(w->b);
                (void)fly_breaker_state(w->b);
                if (i % 3 == 0)
                        fly_breaker_record_success(w->b);
                metrics_inc(M_MESSAGES_RECEIVED, "topic=\"tsan\"", 1);
                claim_round(w, i);
                if (i % 40 == 0) {
                        free(metrics_render());
                        log_debug("tsan", "worker %d round %d token s3cr3t",
                                  w->id, i);
                }
        }
        return NULL;
}

int main(void) {
        struct err err = {0};
        struct worker w[THREADS];
        pthread_t t[THREADS];
        struct fly_breaker *b;
        struct provision_claims *claims = provision_claims_new();
        struct fly_pace *pace = fly_pace_new(1.0, 3.0);
        atomic_int gc_copies = 0, gc_max = 0;
        int rc = 0;

        log_set_level(LOG_ERROR); /* the lines are formatted, not printed */
        log_add_secret("s3cr3t");
        b = fly_breaker_new(3, 5, probe, NULL, &err);
        if (!b) {
                fprintf(stderr, "fly_breaker_new: %s\n", err.msg);
                return 1;
        }
        for (int i = 0; i < THREADS; i++) {
                w[i] = (struct worker){b, claims, pace, &gc_copies, &gc_max, i};
                if (pthread_create(&t[i], NULL, work, &w[i]) != 0) {
                        fprintf(stderr, "pthread_create failed\n");
                        return 1;
                }
        }
        for (int i = 0; i < THREADS; i++)
                pthread_join(t[i], NULL);
        /* The API answers again: the prober closes the circuit. */
        atomic_store(&probes_failing, 0);
        if (fly_breaker_wait_closed(b, NULL) != 0) {
                fprintf(stderr, "the breaker did not close\n");
                rc = 1;
        }
        double n = metrics_get(M_MESSAGES_RECEIVED, "topic=\"tsan\"");
        if (n != THREADS * ROUNDS) {
                fprintf(stderr, "counted %.0f, expected %d\n", n,
                        THREADS * ROUNDS);
                rc = 1;
        }
        if (atomic_load(&gc_max) > 1 || provision_claims_count(claims)) {
                fprintf(stderr,
                        "claims: %d copies from one GC at once, %zu "
                        "left\n",
                        atomic_load(&gc_max), provision_claims_count(claims));
                rc = 1;
        }
        provision_claims_free(claims);
        fly_pace_free(pace);
        fly_breaker_destroy(b);
        log_clear_secrets();
        return rc;
}
