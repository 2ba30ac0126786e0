/* Unit tests of offset_tracker: the committable prefix. */
#include "offset_tracker.h"

#include <criterion/criterion.h>

static struct offset_tracker *t;

static void setup(void) {
        t = offset_tracker_new();
        cr_assert_not_null(t);
}

static void teardown(void) {
        offset_tracker_destroy(t);
}

TestSuite(offset_tracker, .init = setup, .fini = teardown);

Test(offset_tracker, in_order_completion_commits_each_next_offset) {
        int64_t c = -1;
        for (int64_t o = 0; o < 3; o++)
                cr_assert_eq(offset_tracker_add(t, "d", 0, o),
                             OFFSET_TRACKER_ADDED);
        cr_assert_eq(offset_tracker_finish(t, "d", 0, 0, &c), 1);
        cr_assert_eq(c, 1);
        cr_assert_eq(offset_tracker_finish(t, "d", 0, 1, &c), 1);
        cr_assert_eq(c, 2);
        cr_assert_eq(offset_tracker_finish(t, "d", 0, 2, &c), 1);
        cr_assert_eq(c, 3);
        cr_assert_eq(offset_tracker_unfinished(t), 0);
}

Test(offset_tracker, out_of_order_completion_waits_for_the_gap) {
        int64_t c = -1;
        for (int64_t o = 10; o < 15; o++)
                offset_tracker_add(t, "d", 0, o);
        cr_assert_eq(offset_tracker_finish(t, "d", 0, 12, &c), 0);
        cr_assert_eq(offset_tracker_finish(t, "d", 0, 14, &c), 0);
        cr_assert_eq(offset_tracker_committable(t, "d", 0), -1);
        cr_assert_eq(offset_tracker_finish(t, "d", 0, 10, &c), 1);
        cr_assert_eq(c, 11, "only 10 is a finished prefix");
        cr_assert_eq(offset_tracker_finish(t, "d", 0, 11, &c), 1);
        cr_assert_eq(c, 13, "11 and 12 done, 13 still in flight");
        cr_assert_eq(offset_tracker_finish(t, "d", 0, 13, &c), 1);
        cr_assert_eq(c, 15);
}

Test(offset_tracker, offset_gaps_commit_the_next_delivered_offset) {
        int64_t c = -1;
        offset_tracker_add(t, "d", 0, 5);
        offset_tracker_add(t, "d", 0, 9); /* 6-8 compacted away */
        cr_assert_eq(offset_tracker_finish(t, "d", 0, 5, &c), 1);
        cr_assert_eq(c, 9, "commit points at the unfinished 9, not 6");
        cr_assert_eq(offset_tracker_finish(t, "d", 0, 9, &c), 1);
        cr_assert_eq(c, 10);
}

Test(offset_tracker, partitions_are_independent) {
        int64_t c = -1;
        offset_tracker_add(t, "d", 0, 0);
        offset_tracker_add(t, "d", 1, 0);
        offset_tracker_add(t, "p", 0, 0);
        cr_assert_eq(offset_tracker_finish(t, "d", 1, 0, &c), 1);
        cr_assert_eq(offset_tracker_committable(t, "d", 0), -1);
        cr_assert_eq(offset_tracker_committable(t, "d", 1), 1);
        cr_assert_eq(offset_tracker_committable(t, "p", 0), -1);
        cr_assert_eq(offset_tracker_unfinished(t), 2);
}

Test(offset_tracker, revoked_partition_forgets_its_offsets) {
        int64_t c = -1;
        offset_tracker_add(t, "d", 0, 0);
        offset_tracker_add(t, "d", 0, 1);
        offset_tracker_remove(t, "d", 0);
        cr_assert_eq(offset_tracker_finish(t, "d", 0, 0, &c), -1,
                     "a job finishing after revoke must not commit");
        cr_assert_eq(offset_tracker_unfinished(t), 0);
        /* Re-assigned later: the same offsets are delivered again. */
        cr_assert_eq(offset_tracker_add(t, "d", 0, 0), OFFSET_TRACKER_ADDED);
}

Test(offset_tracker, regressing_offset_is_refused) {
        offset_tracker_add(t, "d", 0, 7);
        cr_assert_eq(offset_tracker_add(t, "d", 0, 7),
                     OFFSET_TRACKER_OUT_OF_ORDER);
        cr_assert_eq(offset_tracker_add(t, "d", 0, 3),
                     OFFSET_TRACKER_OUT_OF_ORDER);
}

Test(offset_tracker, finishing_twice_or_unknown_offset) {
        int64_t c = -1;
        offset_tracker_add(t, "d", 0, 0);
        offset_tracker_add(t, "d", 0, 1);
        cr_assert_eq(offset_tracker_finish(t, "d", 0, 1, &c), 0);
        cr_assert_eq(offset_tracker_finish(t, "d", 0, 1, &c), 0);
        cr_assert_eq(offset_tracker_finish(t, "d", 0, 42, &c), -1);
}

static int seen_calls;
static int64_t seen_offset;

static void
collect(const char *topic, int32_t partition, int64_t offset, void *arg) {
        (void)topic;
        (void)partition;
        (void)arg;
        seen_calls++;
        seen_offset = offset;
}

Test(offset_tracker, uncommitted_until_the_broker_confirms) {
        int64_t c = -1;
        offset_tracker_add(t, "d", 0, 0);
        offset_tracker_finish(t, "d", 0, 0, &c);
        seen_calls = 0;
        offset_tracker_foreach_uncommitted(t, collect, NULL);
        cr_assert_eq(seen_calls, 1);
        cr_assert_eq(seen_offset, 1);
        offset_tracker_committed(t, "d", 0, 1);
        seen_calls = 0;
        offset_tracker_foreach_uncommitted(t, collect, NULL);
        cr_assert_eq(seen_calls, 0);
}

Test(offset_tracker, ring_grows_past_its_first_capacity_in_order) {
        int64_t c = -1;
        for (int64_t o = 0; o < 100; o++)
                cr_assert_eq(offset_tracker_add(t, "d", 0, o),
                             OFFSET_TRACKER_ADDED);
        for (int64_t o = 99; o >= 1; o--)
                cr_assert_eq(offset_tracker_finish(t, "d", 0, o, &c), 0);
        cr_assert_eq(offset_tracker_finish(t, "d", 0, 0, &c), 1);
        cr_assert_eq(c, 100);
}
