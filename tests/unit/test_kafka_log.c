/* Unit tests of kafka_log.c: which librdkafka lines count as the same
 * (kafka_log_key) and when a repeat is left out (kafka_log_admit). */
#include "kafka_log.h"

#include <criterion/criterion.h>
#include <stdlib.h>

#define NAME "thopter-consumer-producer#producer-2"

static struct {
        const char *line, *key;
} keys[] = {
    /* The FAIL line and librdkafka's own ERROR restatement of it. */
    {"[thrd:127.0.0.1:1/bootstrap]: 127.0.0.1:1/bootstrap: Connect to "
     "ipv4#127.0.0.1:1 failed: Connection refused (after 0ms in state "
     "CONNECT)",
     "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection "
     "refused"},
    {"[thrd:app]: " NAME ": 127.0.0.1:1/bootstrap: Connect to "
     "ipv4#127.0.0.1:1 failed: Connection refused (after 0ms in state "
     "CONNECT, 1 identical error(s) suppressed)",
     "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection "
     "refused"},
    {"[thrd:127.0.0.1:1/bootstrap]: 1/1 brokers are down",
     "1/1 brokers are down"},
    {"no thread tag (after all)", "no thread tag (after all)"},
    {"", ""},
};

Test(kafka_log, key_drops_thread_handle_and_after_note) {
        char out[KAFKA_LOG_KEY_MAX];
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
                kafka_log_key(keys[i].line, NAME, out, sizeof(out));
                cr_assert_str_eq(out, keys[i].key, "line %zu", i);
        }
        kafka_log_key("[thrd:app]: " NAME ": x", NULL, out, sizeof(out));
        cr_assert_str_eq(out, NAME ": x");
}

Test(kafka_log, repeat_within_the_window_is_counted_then_reported) {
        struct kafka_log_seen *s = calloc(1, sizeof(*s));
        long n = -1;

        cr_assert_eq(kafka_log_admit(s, "a", 3, 1000, &n), 1);
        cr_assert_eq(n, 0);
        cr_assert_eq(kafka_log_admit(s, "a", 3, 2000, &n), 0);
        cr_assert_eq(
            kafka_log_admit(s, "a", 3, 1000 + KAFKA_LOG_REPEAT_MS - 1, &n), 0);
        /* Another level or another text is another line. */
        cr_assert_eq(kafka_log_admit(s, "a", 6, 3000, &n), 1);
        cr_assert_eq(kafka_log_admit(s, "b", 3, 3000, &n), 1);
        cr_assert_eq(kafka_log_admit(s, "a", 3, 1000 + KAFKA_LOG_REPEAT_MS, &n),
                     1);
        cr_assert_eq(n, 2, "the two left out are reported: %ld", n);
        cr_assert_eq(kafka_log_admit(s, "a", 3, 1001 + KAFKA_LOG_REPEAT_MS, &n),
                     0);
        free(s);
}

Test(kafka_log, more_lines_than_slots_evict_the_oldest) {
        struct kafka_log_seen *s = calloc(1, sizeof(*s));
        char key[16];
        long n;

        for (int i = 0; i <= KAFKA_LOG_SLOTS; i++) {
                snprintf(key, sizeof(key), "line %d", i);
                cr_assert_eq(kafka_log_admit(s, key, 3, 100 + i, &n), 1);
        }
        /* "line 0" was evicted: written again at once. */
        cr_assert_eq(kafka_log_admit(s, "line 0", 3, 200, &n), 1);
        cr_assert_eq(kafka_log_admit(s, "line 2", 3, 200, &n), 0);
        free(s);
}
