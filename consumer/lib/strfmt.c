/* strfmt.c - see strfmt.h. */
#include "strfmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *vstrfmt(const char *fmt, va_list ap) {
        va_list ap2;
        char *out;

        va_copy(ap2, ap);
        int n = vsnprintf(NULL, 0, fmt, ap2);
        va_end(ap2);
        if (n < 0)
                return NULL;
        out = malloc((size_t)n + 1);
        if (out)
                vsnprintf(out, (size_t)n + 1, fmt, ap);
        return out;
}

char *strfmt(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        char *out = vstrfmt(fmt, ap);
        va_end(ap);
        return out;
}

void secret_wipe(void *p, size_t len) {
        if (p)
                explicit_bzero(p, len);
}

void secret_free(char *s) {
        if (!s)
                return;
        secret_wipe(s, strlen(s));
        free(s);
}
