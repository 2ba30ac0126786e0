/* fuzz_shell_quote.c - libFuzzer target over shell_quote.c.
 *
 * Running a shell per input is too slow for a fuzzer (tests/unit/
 * test_shell_quote.c does that on a fixed list), so this checks the quoted
 * word's structure instead, which is what makes it safe in any POSIX shell:
 *
 *   word = "'" run "'" *( "\'" "'" run "'" )     run = *( any byte but ' )
 *
 * i.e. it starts and ends with ', and the only ' inside are the '\'' joins.
 * A tiny reference parser that knows only those two forms ('…' is literal,
 * \' is one quote) must give back the input byte for byte. The other
 * entry points must agree with shell_quote(): shell_su_command() wraps that
 * word, and shell_name_is_safe() matches a reference check of its rule.
 *
 * The input is a C string: NUL bytes of the fuzzer's input are dropped.
 */
#include "shell_quote.h"
#include "fuzz_common.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reference unquoting of the grammar above; NULL when @p q breaks it. */
static char *ref_unquote(const char *q) {
        size_t n = strlen(q);
        char *out = malloc(n + 1), *o = out;
        const char *p = q;

        if (!out)
                abort();
        for (;;) {
                if (*p != '\'')
                        goto bad;
                p++;
                while (*p && *p != '\'')
                        *o++ = *p++;
                if (*p != '\'')
                        goto bad; /* unterminated */
                p++;
                if (*p == '\0')
                        break;
                if (p[0] != '\\' || p[1] != '\'')
                        goto bad; /* only \' may sit between two runs */
                *o++ = '\'';
                p += 2;
        }
        *o = '\0';
        return out;
bad:
        free(out);
        return NULL;
}

static int ref_name_is_safe(const char *s) {
        size_t n = strlen(s);

        if (n < 1 || n > 255 || s[0] == '-' || strcmp(s, ".") == 0 ||
            strcmp(s, "..") == 0)
                return 0;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];

                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                      c == '-'))
                        return 0;
        }
        return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *in = malloc(size + 1), *q, *back, *su;
        size_t n = 0, quotes = 0, qlen;

        if (!in)
                abort();
        for (size_t i = 0; i < size; i++)
                if (data[i])
                        in[n++] = (char)data[i];
        in[n] = '\0';
        for (size_t i = 0; i < n; i++)
                quotes += in[i] == '\'';

        q = shell_quote(in);
        CHECK(q);
        qlen = strlen(q);
        CHECK(qlen == n + 2 + 3 * quotes);
        CHECK(q[0] == '\'' && q[qlen - 1] == '\'');
        back = ref_unquote(q);
        CHECK(back);
        CHECK(strcmp(back, in) == 0);

        /* su: a safe user wraps the quoted command; the input as a user
         * name is refused unless it passes the name rule */
        su = shell_su_command("thopter", in);
        CHECK(su && strncmp(su, "su - thopter -c ", 16) == 0 &&
              strcmp(su + 16, q) == 0);
        free(su);
        CHECK(shell_name_is_safe(in) == ref_name_is_safe(in));
        su = shell_su_command(in, "true");
        CHECK((su != NULL) == ref_name_is_safe(in));
        free(su);

        free(back);
        free(q);
        free(in);
        return 0;
}
