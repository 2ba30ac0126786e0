/* shell_quote.c - POSIX single-quote quoting; see shell_quote.h.
 *
 * Inside single quotes a POSIX shell takes every byte literally except the
 * closing quote itself, so the only byte that needs care is '\'' : close the
 * quote, write an escaped quote, reopen ('\''). This is the only quoting form
 * whose meaning does not depend on the shell (no $, `, \ or ! surprises).
 */
#include "shell_quote.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN 255

char *shell_quote(const char *s) {
        size_t n = 2; /* the outer quotes */
        char *out, *p;

        for (const char *q = s; *q; q++)
                n += *q == '\'' ? 4 : 1;
        out = malloc(n + 1);
        if (!out)
                return NULL;
        p = out;
        *p++ = '\'';
        for (const char *q = s; *q; q++) {
                if (*q == '\'') {
                        memcpy(p, "'\\''", 4);
                        p += 4;
                } else {
                        *p++ = *q;
                }
        }
        *p++ = '\'';
        *p = '\0';
        return out;
}

char *shell_su_command(const char *user, const char *inner_cmd) {
        char *quoted = NULL, *out = NULL;
        size_t n;

        if (!shell_name_is_safe(user)) {
                errno = EINVAL;
                return NULL;
        }
        quoted = shell_quote(inner_cmd);
        if (!quoted)
                goto oom;
        /* The user name passed shell_name_is_safe(), so it needs no quotes. */
        n = strlen("su -  -c ") + strlen(user) + strlen(quoted) + 1;
        out = malloc(n);
        if (!out)
                goto oom;
        snprintf(out, n, "su - %s -c %s", user, quoted);
        free(quoted);
        return out;
oom:
        free(quoted);
        errno = ENOMEM;
        return NULL;
}

int shell_name_is_safe(const char *s) {
        size_t n = 0;

        if (!s || !*s || s[0] == '-')
                return 0;
        if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
                return 0;
        for (const char *p = s; *p; p++, n++) {
                char c = *p;
                int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                         c == '-';
                if (!ok || n >= NAME_MAX_LEN)
                        return 0;
        }
        return 1;
}
