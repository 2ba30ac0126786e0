/* Unit tests of group_assignment_owns: Kafka's consumer-protocol
 * assignment bytes, well formed and hostile. */
#include "group_assignment.h"

#include <criterion/criterion.h>
#include <string.h>

/* version 0; 2 topics: "t.a" [0, 2], "t.b" [1]; 0 bytes of user data */
static const unsigned char two_topics[] = {
    0, 0, 0,   0,   0,   2, /* version, 2 topics */
    0, 3, 't', '.', 'a', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2, /* t.a: 0, 2 */
    0, 3, 't', '.', 'b', 0, 0, 0, 1, 0, 0, 0, 1,             /* t.b: 1 */
    0, 0, 0,   0};

Test(group_assignment, partitions_of_the_right_topic) {
        cr_expect_eq(
            group_assignment_owns(two_topics, sizeof(two_topics), "t.a", 0), 1);
        cr_expect_eq(
            group_assignment_owns(two_topics, sizeof(two_topics), "t.a", 2), 1);
        cr_expect_eq(
            group_assignment_owns(two_topics, sizeof(two_topics), "t.a", 1), 0);
        cr_expect_eq(
            group_assignment_owns(two_topics, sizeof(two_topics), "t.b", 1), 1);
        cr_expect_eq(
            group_assignment_owns(two_topics, sizeof(two_topics), "t.", 0), 0,
            "a prefix of a topic is another topic");
        cr_expect_eq(group_assignment_owns(NULL, 0, "t.a", 0), 0);
}

Test(group_assignment, every_cut_and_bad_length_is_malformed) {
        /* Any prefix that ends inside the topic list. */
        for (size_t n = 1; n < sizeof(two_topics) - 4; n++)
                cr_expect_eq(group_assignment_owns(two_topics, n, "t.a", 9), -1,
                             "cut at %zu", n);
        unsigned char bad[sizeof(two_topics)];
        memcpy(bad, two_topics, sizeof(bad));
        bad[4] = 0x7f; /* 2^31-ish topics */
        cr_expect_eq(group_assignment_owns(bad, sizeof(bad), "t.a", 0), -1);
        memcpy(bad, two_topics, sizeof(bad));
        bad[6] = 0xff; /* negative name length */
        cr_expect_eq(group_assignment_owns(bad, sizeof(bad), "t.a", 0), -1);
}
