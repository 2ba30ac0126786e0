/* test_dynbuf.c - dynbuf.c: the cap in each mode, sticky failure, and what
 * take() hands over. */
#include "dynbuf.h"
#include "test_helpers.h"

#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

Test(dynbuf, fail_mode_takes_exactly_the_cap) {
        struct dynbuf b;
        size_t len;
        char *s;

        dynbuf_init(&b, 8, DYNBUF_FAIL);
        cr_assert_eq(dynbuf_addstr(&b, "1234"), 0);
        cr_assert_eq(dynbuf_addstr(&b, "5678"), 0);
        cr_expect_str_eq(dynbuf_str(&b), "12345678");
        s = dynbuf_take(&b, &len);
        cr_assert_not_null(s);
        cr_expect_str_eq(s, "12345678");
        cr_expect_eq(len, 8);
        free(s);
}

Test(dynbuf, fail_mode_overflow_poisons_the_buffer) {
        struct dynbuf b;
        size_t len = 99;

        dynbuf_init(&b, 8, DYNBUF_FAIL);
        cr_assert_eq(dynbuf_addstr(&b, "12345"), 0);
        cr_expect_eq(dynbuf_addstr(&b, "6789"), -1);
        cr_expect_eq(b.state, DYNBUF_TOOBIG);
        /* Sticky: even what would fit now fails, and nothing is handed over. */
        cr_expect_eq(dynbuf_addstr(&b, "x"), -1);
        cr_expect_eq(dynbuf_add(&b, "", 0), -1);
        cr_expect_eq(dynbuf_addf(&b, "%d", 1), -1);
        cr_expect_str_eq(dynbuf_str(&b), "");
        cr_expect_null(dynbuf_take(&b, &len));
        cr_expect_eq(len, 0);
        dynbuf_free(&b);
}

Test(dynbuf, fail_mode_addf_over_the_cap_fails) {
        struct dynbuf b;
        char *big = test_repeat("z", 300);

        dynbuf_init(&b, 256, DYNBUF_FAIL);
        cr_expect_eq(dynbuf_addf(&b, "%s", big), -1);
        cr_expect_eq(b.state, DYNBUF_TOOBIG);
        cr_expect_null(dynbuf_take(&b, NULL));
        free(big);
}

Test(dynbuf, free_makes_the_buffer_usable_again) {
        struct dynbuf b;
        char *s;

        dynbuf_init(&b, 4, DYNBUF_FAIL);
        cr_expect_eq(dynbuf_addstr(&b, "12345"), -1);
        dynbuf_free(&b);
        cr_expect_eq(b.state, DYNBUF_OK);
        cr_expect_eq(b.max, 4);
        cr_expect_eq(dynbuf_addstr(&b, "abcd"), 0);
        s = dynbuf_take(&b, NULL);
        cr_expect_str_eq(s, "abcd");
        free(s);
}

struct tail_case {
        size_t max;
        const char *adds[8]; /* NULL-terminated */
        const char *want;
        int truncated;
};

Test(dynbuf, keep_tail_keeps_exactly_the_last_max_bytes) {
        static const struct tail_case cases[] = {
            {10, {"abc", "defgh"}, "abcdefgh", 0},
            {10, {"0123456789"}, "0123456789", 0},
            {10, {"01234", "56789"}, "0123456789", 0},
            {10, {"0123456789ABC"}, "3456789ABC", 1},
            {10, {"0123456789", "A"}, "123456789A", 1},
            {10, {"01234", "56789", "ABCDE"}, "56789ABCDE", 1},
            {10, {"0123456", "789ABCD", "EFGHIJK", "LMN"}, "EFGHIJKLMN", 1},
            {4, {"ab", "cdefghij"}, "ghij", 1},
            {4, {"abcdefgh", "ij"}, "ghij", 1},
            {1, {"a", "b", "c"}, "c", 1},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const struct tail_case *c = &cases[i];
                struct dynbuf b;
                size_t len;
                char *s;

                dynbuf_init(&b, c->max, DYNBUF_KEEP_TAIL);
                for (size_t k = 0; c->adds[k]; k++)
                        cr_expect_eq(dynbuf_addstr(&b, c->adds[k]), 0,
                                     "case %zu add %zu", i, k);
                s = dynbuf_take(&b, &len);
                cr_assert_not_null(s, "case %zu", i);
                cr_expect_str_eq(s, c->want, "case %zu", i);
                cr_expect_eq(len, strlen(c->want), "case %zu", i);
                cr_expect_eq(b.truncated, c->truncated, "case %zu", i);
                free(s);
        }
}

Test(dynbuf, keep_tail_of_a_long_stream) {
        struct dynbuf b;
        char want[17];
        char *s;

        /* 1000 adds of one digit each: the last 16 digits survive. */
        dynbuf_init(&b, 16, DYNBUF_KEEP_TAIL);
        for (int i = 0; i < 1000; i++)
                cr_assert_eq(dynbuf_addf(&b, "%d", i % 10), 0);
        for (int i = 0; i < 16; i++)
                want[i] = (char)('0' + (1000 - 16 + i) % 10);
        want[16] = '\0';
        s = dynbuf_take(&b, NULL);
        cr_expect_str_eq(s, want);
        cr_expect(b.truncated);
        free(s);
}

Test(dynbuf, addf_longer_than_its_stack_buffer) {
        struct dynbuf b;
        char *part = test_repeat("0123456789", 100); /* 1000 bytes */
        char *s;
        size_t len;

        dynbuf_init(&b, 4096, DYNBUF_FAIL);
        cr_assert_eq(dynbuf_addf(&b, "<%s|%d>", part, 42), 0);
        s = dynbuf_take(&b, &len);
        cr_assert_not_null(s);
        cr_expect_eq(len, 1000 + 5);
        cr_expect_eq(strncmp(s, "<0123456789", 11), 0);
        cr_expect_str_eq(s + 1001, "|42>");
        free(s);

        /* The same in KEEP_TAIL: the tail of the long piece. */
        dynbuf_init(&b, 8, DYNBUF_KEEP_TAIL);
        cr_assert_eq(dynbuf_addf(&b, "%s|end", part), 0);
        s = dynbuf_take(&b, NULL);
        cr_expect_str_eq(s, "6789|end");
        cr_expect(b.truncated);
        free(s);
        free(part);
}

Test(dynbuf, take_on_empty_gives_an_empty_string) {
        const enum dynbuf_mode modes[] = {DYNBUF_FAIL, DYNBUF_KEEP_TAIL};

        for (size_t i = 0; i < 2; i++) {
                struct dynbuf b;
                size_t len = 99;
                char *s;

                dynbuf_init(&b, 8, modes[i]);
                cr_expect_str_eq(dynbuf_str(&b), "", "mode %zu", i);
                s = dynbuf_take(&b, &len);
                cr_assert_not_null(s, "mode %zu", i);
                cr_expect_str_eq(s, "", "mode %zu", i);
                cr_expect_eq(len, 0, "mode %zu", i);
                free(s);
        }
}

Test(dynbuf, take_leaves_the_buffer_empty_and_usable) {
        struct dynbuf b;
        char *first, *second;

        dynbuf_init(&b, 8, DYNBUF_FAIL);
        cr_assert_eq(dynbuf_addstr(&b, "one"), 0);
        first = dynbuf_take(&b, NULL);
        cr_expect_str_eq(dynbuf_str(&b), "");
        cr_expect_eq(b.len, 0);
        /* The cap applies afresh: 8 more bytes fit. */
        cr_assert_eq(dynbuf_addstr(&b, "12345678"), 0);
        second = dynbuf_take(&b, NULL);
        cr_expect_str_eq(first, "one");
        cr_expect_str_eq(second, "12345678");
        free(first);
        free(second);
}
