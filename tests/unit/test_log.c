/* test_log.c - log.c's redaction: every registered secret replaced wherever
 * it stands, before the text is cut, so no part of one survives a cut. */
#include "log.h"
#include "test_helpers.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define R "[REDACTED]"

static void fresh(void) {
        log_clear_secrets();
}

TestSuite(log, .init = fresh, .fini = fresh);

/* Non-zero when any 4-byte piece of @p secret is in @p text. */
static int leaks(const char *text, const char *secret) {
        size_t n = strlen(secret);

        for (size_t i = 0; i + 4 <= n; i++) {
                char piece[5];

                memcpy(piece, secret + i, 4);
                piece[4] = '\0';
                if (strstr(text, piece))
                        return 1;
        }
        return 0;
}

struct redact_case {
        const char *secrets[3]; /* NULL-terminated, in registration order */
        const char *in;
        const char *want; /* NULL: only "no secret left whole" */
};

Test(log, a_secret_anywhere_is_replaced) {
        static const struct redact_case cases[] = {
            {{"tok-1234"}, "tok-1234 at the start", R " at the start"},
            {{"tok-1234"}, "in the tok-1234 middle", "in the " R " middle"},
            {{"tok-1234"}, "at the end tok-1234", "at the end " R},
            {{"tok-1234"}, "tok-1234", R},
            /* Adjacent occurrences are one run of secret: one mark. */
            {{"tok-1234"}, "tok-1234tok-1234 and tok-1234", R " and " R},
            {{"tok-1234"}, "tok-123 is not it", "tok-123 is not it"},
            {{"tok-1234", "pat-5678"},
             "a tok-1234 b pat-5678 c",
             "a " R " b " R " c"},
            /* The same secret registered twice is one secret. */
            {{"tok-1234", "tok-1234"}, "x tok-1234 y", "x " R " y"},
            /* One secret inside another, the longer registered first. */
            {{"FlyV1 fm2_abcdef", "fm2_abcdef"},
             "Authorization: FlyV1 fm2_abcdef; fm2_abcdef",
             "Authorization: " R "; " R},
            /* Secrets that overlap in the text go together, no piece left. */
            {{"abcdef", "defghi"}, "xx abcdefghi yy", "xx " R " yy"},
            /* Bytes that mean something to JSON or a shell are just bytes. */
            {{"p\"a$s(s)`"}, "{\"k\":\"p\"a$s(s)`\"}", "{\"k\":\"" R "\"}"},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const struct redact_case *c = &cases[i];
                char buf[256];

                log_clear_secrets();
                for (size_t k = 0; c->secrets[k]; k++)
                        log_add_secret(c->secrets[k]);
                snprintf(buf, sizeof(buf), "%s", c->in);
                log_redact(buf, sizeof(buf));
                if (c->want)
                        cr_expect_str_eq(buf, c->want, "case %zu", i);
                for (size_t k = 0; c->secrets[k]; k++)
                        cr_expect_null(strstr(buf, c->secrets[k]),
                                       "case %zu: secret %zu in \"%s\"", i, k,
                                       buf);
        }
}

/* A secret that contains another registered earlier must go whole: replacing
 * the shorter one first used to leave the rest of the longer one in the text
 * ("abcd" of "abcd1234" is a piece of a secret). */
Test(log, a_secret_containing_an_earlier_one_is_replaced_whole) {
        char buf[64];

        log_add_secret("1234");
        log_add_secret("abcd1234");
        snprintf(buf, sizeof(buf), "%s", "key=abcd1234;");
        log_redact(buf, sizeof(buf));
        cr_expect_str_eq(buf, "key=" R ";");
        cr_expect_not(leaks(buf, "abcd1234"), "\"%s\"", buf);
}

Test(log, strings_under_four_bytes_are_not_secrets) {
        char buf[64];

        log_add_secret("abc");
        log_add_secret("");
        log_add_secret(NULL);
        log_add_secret("abcd");
        snprintf(buf, sizeof(buf), "%s", "ab abc abcd abcde");
        log_redact(buf, sizeof(buf));
        cr_expect_str_eq(buf, "ab abc " R " " R "e");
}

Test(log, clear_secrets_forgets_them) {
        char buf[64];

        log_add_secret("tok-1234");
        log_clear_secrets();
        snprintf(buf, sizeof(buf), "%s", "x tok-1234 y");
        log_redact(buf, sizeof(buf));
        cr_expect_str_eq(buf, "x tok-1234 y");

        /* Registering again after a clear works. */
        log_add_secret("tok-1234");
        log_redact(buf, sizeof(buf));
        cr_expect_str_eq(buf, "x " R " y");
}

struct cut_case {
        const char *in;
        size_t cap;
        enum log_keep keep;
        const char *want;
};

Test(log, cutting_keeps_head_or_tail_after_redaction) {
        static const struct cut_case cases[] = {
            {"0123456789", 11, LOG_KEEP_HEAD, "0123456789"},
            {"0123456789", 11, LOG_KEEP_TAIL, "0123456789"},
            {"0123456789", 6, LOG_KEEP_HEAD, "01234"},
            {"0123456789", 6, LOG_KEEP_TAIL, "56789"},
            {"0123456789", 1, LOG_KEEP_TAIL, ""},
            /* The secret goes first, then the cut: the marker may be cut,
             * never revealed text. */
            {"ssh: tok-1234 refused", 12, LOG_KEEP_HEAD, "ssh: [REDAC"},
            {"ssh: tok-1234 refused", 12, LOG_KEEP_TAIL, "ED] refused"},
            {"ssh: tok-1234 refused", 64, LOG_KEEP_TAIL, "ssh: " R " refused"},
        };

        log_add_secret("tok-1234");
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const struct cut_case *c = &cases[i];
                char dst[80];

                memset(dst, '#', sizeof(dst));
                log_redact_copy(dst, c->cap, c->in, c->keep);
                cr_expect_str_eq(dst, c->want, "case %zu", i);
                cr_expect_eq(dst[c->cap], '#', "case %zu: wrote past cap", i);
        }
}

/* The regression: a secret longer than the kept tail. Cutting first would
 * keep the secret's last bytes. */
Test(log, a_cut_never_leaves_part_of_a_secret) {
        const char *secret = "ghp_0123456789abcdefghijklmnopqrstuvwxyz";
        const enum log_keep keeps[] = {LOG_KEEP_HEAD, LOG_KEEP_TAIL};
        char *text = malloc(512);

        cr_assert(text);
        snprintf(text, 512, "git: clone failed: %s", secret);
        log_add_secret(secret);
        for (size_t k = 0; k < 2; k++) {
                for (size_t cap = 1; cap < 64; cap++) {
                        char dst[64];

                        log_redact_copy(dst, cap, text, keeps[k]);
                        cr_expect_eq(strlen(dst), cap - 1 < 29 ? cap - 1 : 29,
                                     "keep %zu cap %zu", k, cap);
                        cr_expect_not(leaks(dst, secret),
                                      "keep %zu cap %zu: \"%s\"", k, cap, dst);
                }
        }
        /* A secret at the head, kept head: same. */
        snprintf(text, 512, "%s: remote said no", secret);
        for (size_t cap = 1; cap < 64; cap++) {
                char dst[64];

                log_redact_copy(dst, cap, text, LOG_KEEP_HEAD);
                cr_expect_not(leaks(dst, secret), "cap %zu: \"%s\"", cap, dst);
        }
        free(text);
}

Test(log, redaction_that_grows_the_text_still_fits_the_cap) {
        char buf[20];
        char *long_in = test_repeat("abcd ", 200);
        char big[4096];

        log_add_secret("abcd");
        /* 14 bytes in, 32 after redaction, 20 bytes of room. */
        memset(buf, 0, sizeof(buf));
        memcpy(buf, "abcd abcd abcd", 15);
        log_redact(buf, sizeof(buf));
        cr_expect_str_eq(buf, R " [REDACTE");
        cr_expect_eq(strlen(buf), sizeof(buf) - 1);

        /* Kept tail, into a buffer much smaller than the grown text. */
        log_redact_copy(big, 25, long_in, LOG_KEEP_TAIL);
        cr_expect_eq(strlen(big), 24);
        cr_expect_str_eq(big, "] " R " " R " ");
        cr_expect_null(strstr(big, "abcd"));

        /* And a large cap: every occurrence replaced. */
        log_redact_copy(big, sizeof(big), long_in, LOG_KEEP_HEAD);
        cr_expect_eq(strlen(big), 200 * strlen(R " "));
        cr_expect_null(strstr(big, "abcd"));
        free(long_in);
}

Test(log, copy_may_write_over_its_source) {
        char buf[32];

        log_add_secret("tok-1234");
        snprintf(buf, sizeof(buf), "%s", "a tok-1234 b");
        log_redact_copy(buf, sizeof(buf), buf, LOG_KEEP_TAIL);
        cr_expect_str_eq(buf, "a " R " b");
}

Test(log, zero_cap_writes_nothing) {
        char dst[4] = "xyz";

        log_redact_copy(dst, 0, "hello", LOG_KEEP_HEAD);
        cr_expect_str_eq(dst, "xyz");
}

Test(log, level_names_parse) {
        static const struct {
                const char *name;
                int rc;
                enum log_level level;
        } cases[] = {
            {"debug", 0, LOG_DEBUG}, {"info", 0, LOG_INFO},
            {"warn", 0, LOG_WARN},   {"error", 0, LOG_ERROR},
            {"INFO", -1, LOG_INFO},  {"warning", -1, LOG_INFO},
            {"", -1, LOG_INFO},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                enum log_level got = LOG_INFO;

                cr_expect_eq(log_level_parse(cases[i].name, &got), cases[i].rc,
                             "%s", cases[i].name);
                cr_expect_eq(got, cases[i].level, "%s", cases[i].name);
        }
}
