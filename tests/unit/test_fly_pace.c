/* Unit tests of fly_pace: fly's app-scoped limit (1/s, bursts of 3) per
 * action, waits queued in order, machine-scoped routes never paced. */
#include "fly_pace.h"

#include <criterion/criterion.h>

Test(fly_pace, a_burst_of_three_then_one_per_second_in_order) {
        struct fly_pace *p = fly_pace_new(1.0, 3.0);
        cr_assert(p);
        for (int i = 0; i < 3; i++)
                cr_expect_eq(fly_pace_take(p, "machines.create", 1000), 0,
                             "burst call %d", i);
        cr_expect_eq(fly_pace_take(p, "machines.create", 1000), 1000);
        cr_expect_eq(fly_pace_take(p, "machines.create", 1000), 2000,
                     "the next waiter queues behind the first");
        /* 2.5 s later the queue is paid off but for half a token. */
        cr_expect_eq(fly_pace_take(p, "machines.create", 3500), 500);
        fly_pace_free(p);
}

Test(fly_pace, each_action_has_its_own_bucket) {
        struct fly_pace *p = fly_pace_new(1.0, 3.0);
        for (int i = 0; i < 3; i++)
                fly_pace_take(p, "machines.list", 0);
        cr_expect_gt(fly_pace_take(p, "machines.list", 0), 0);
        cr_expect_eq(fly_pace_take(p, "volumes.list", 0), 0);
        cr_expect_eq(fly_pace_take(p, "volumes.create", 0), 0);
        fly_pace_free(p);
}

Test(fly_pace, the_bucket_refills_to_the_burst_only) {
        struct fly_pace *p = fly_pace_new(1.0, 3.0);
        fly_pace_take(p, "volumes.create", 0);
        /* An hour idle gives back 3 tokens, not 3600. */
        for (int i = 0; i < 3; i++)
                cr_expect_eq(fly_pace_take(p, "volumes.create", 3600000), 0);
        cr_expect_eq(fly_pace_take(p, "volumes.create", 3600000), 1000);
        fly_pace_free(p);
}

Test(fly_pace, machine_scoped_routes_and_no_pacer_are_never_paced) {
        struct fly_pace *p = fly_pace_new(1.0, 3.0);
        const char *machine_routes[] = {"machines.get", "machines.stop",
                                        "machines.delete", "machines.wait",
                                        "machines.metadata"};
        for (size_t r = 0; r < 5; r++) {
                cr_expect_not(fly_pace_is_app_scoped(machine_routes[r]));
                for (int i = 0; i < 10; i++)
                        cr_expect_eq(fly_pace_take(p, machine_routes[r], 0), 0);
        }
        cr_expect(fly_pace_is_app_scoped("machines.list"));
        cr_expect_eq(fly_pace_take(NULL, "machines.create", 0), 0);
        fly_pace_free(p);
}
