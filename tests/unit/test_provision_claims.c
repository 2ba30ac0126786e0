/* Unit tests of provision_claims: what the provisions in flight in one
 * consumer hold — volumes, capacity slots, Golden Claude turns — and that
 * two of them never hold the same one, also when they race on threads. */
#include "provision_claims.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

Test(provision_claims, a_volume_is_held_by_one_provision) {
        struct provision_claims *c = provision_claims_new();
        cr_assert(c);
        cr_expect_eq(provision_claims_volume(c, "vol_a", "req-1"), 1);
        cr_expect_eq(provision_claims_volume(c, "vol_a", "req-1"), 1,
                     "its holder may ask again");
        cr_expect_eq(provision_claims_volume(c, "vol_a", "req-2"), 0);
        cr_expect_eq(provision_claims_volume(c, "vol_b", "req-2"), 1);
        provision_claims_release(c, "req-1");
        cr_expect_eq(provision_claims_volume(c, "vol_a", "req-2"), 1,
                     "given back when its holder's run ends");
        cr_expect_eq(provision_claims_count(c), 2);
        provision_claims_release(c, "req-2");
        cr_expect_eq(provision_claims_count(c), 0);
        provision_claims_free(c);
}

Test(provision_claims, slots_count_what_fly_does_not_list_yet) {
        struct provision_claims *c = provision_claims_new();
        const char *busy[] = {"m1", "m2", "m3"};
        int in_use = -1;

        /* 3 started, MAX_THOPTERS 5: two slots, then full. */
        cr_expect_eq(provision_claims_slot(c, "a", busy, 3, 5, &in_use), 1);
        cr_expect_eq(in_use, 3);
        cr_expect_eq(provision_claims_slot(c, "b", busy, 3, 5, &in_use), 1);
        cr_expect_eq(in_use, 4);
        cr_expect_eq(provision_claims_slot(c, "c", busy, 3, 5, &in_use), 0);
        cr_expect_eq(in_use, 5);
        cr_expect_eq(provision_claims_slot(c, "a", busy, 3, 5, &in_use), 1,
                     "a holder keeps its slot");
        /* a's machine m4 appears in fly's list: counted once, not twice. */
        provision_claims_slot_machine(c, "a", "m4");
        const char *listed[] = {"m1", "m2", "m3", "m4"};
        cr_expect_eq(provision_claims_slot(c, "c", listed, 4, 5, &in_use), 0);
        cr_expect_eq(in_use, 5, "m4 counted once");
        /* m1 stops: a slot is free again. */
        cr_expect_eq(provision_claims_slot(c, "c", listed + 1, 3, 5, &in_use),
                     1);
        cr_expect_eq(in_use, 4);
        provision_claims_free(c);
}

Test(provision_claims, golden_claude_turns_per_gc) {
        struct provision_claims *c = provision_claims_new();
        int running = -1;

        cr_expect_eq(provision_claims_gc_turn(c, "gc1", "a", 1, &running), 1);
        cr_expect_eq(running, 0);
        cr_expect_eq(provision_claims_gc_turn(c, "gc1", "b", 1, &running), 0);
        cr_expect_eq(running, 1);
        cr_expect_eq(provision_claims_gc_turn(c, "gc2", "b", 1, &running), 1,
                     "another Golden Claude has turns of its own");
        provision_claims_gc_done(c, "b");
        cr_expect_eq(provision_claims_gc_turn(c, "gc1", "c", 2, &running), 1,
                     "a limit of 2 lets a second copy run");
        provision_claims_gc_done(c, "a");
        provision_claims_gc_done(c, "c");
        provision_claims_gc_done(c, "nobody");
        cr_expect_eq(provision_claims_count(c), 0);
        provision_claims_free(c);
}

/* Threads race for 2 volumes, 3 slots and 1 Golden Claude turn. */
#define RACERS 8
#define ROUNDS 2000

struct race {
        struct provision_claims *c;
        atomic_int volume_holders[2], slot_holders, gc_holders;
        atomic_int max_slots, max_gc, double_volume;
};

static void bump_max(atomic_int *max, int v) {
        int m = atomic_load(max);
        while (v > m && !atomic_compare_exchange_weak(max, &m, v))
                ;
}

static void *racer(void *arg) {
        struct race *r = arg;
        char me[16];
        snprintf(me, sizeof(me), "r%p", (void *)&me);
        for (int i = 0; i < ROUNDS; i++) {
                int v = i % 2;
                const char *vol = v ? "vol_b" : "vol_a";
                int got_vol = provision_claims_volume(r->c, vol, me) == 1;
                if (got_vol && atomic_fetch_add(&r->volume_holders[v], 1) != 0)
                        atomic_store(&r->double_volume, 1);
                int got_slot =
                    provision_claims_slot(r->c, me, NULL, 0, 3, NULL) == 1;
                if (got_slot)
                        bump_max(&r->max_slots,
                                 atomic_fetch_add(&r->slot_holders, 1) + 1);
                if (provision_claims_gc_turn(r->c, "gc", me, 1, NULL) == 1) {
                        bump_max(&r->max_gc,
                                 atomic_fetch_add(&r->gc_holders, 1) + 1);
                        atomic_fetch_sub(&r->gc_holders, 1);
                        provision_claims_gc_done(r->c, me);
                }
                /* What release gives back must be counted out first. */
                if (got_vol)
                        atomic_fetch_sub(&r->volume_holders[v], 1);
                if (got_slot)
                        atomic_fetch_sub(&r->slot_holders, 1);
                provision_claims_release(r->c, me);
        }
        return NULL;
}

Test(provision_claims, racing_threads_never_share_a_claim) {
        struct race r = {.c = provision_claims_new()};
        pthread_t t[RACERS];

        for (int i = 0; i < RACERS; i++)
                cr_assert_eq(pthread_create(&t[i], NULL, racer, &r), 0);
        for (int i = 0; i < RACERS; i++)
                pthread_join(t[i], NULL);
        cr_expect_eq(atomic_load(&r.double_volume), 0,
                     "a volume held by two at once");
        cr_expect(atomic_load(&r.max_slots) <= 3, "%d slots held at once",
                  atomic_load(&r.max_slots));
        cr_expect_eq(atomic_load(&r.max_gc), 1, "%d copies from one GC",
                     atomic_load(&r.max_gc));
        cr_expect_eq(provision_claims_count(r.c), 0);
        provision_claims_free(r.c);
}
