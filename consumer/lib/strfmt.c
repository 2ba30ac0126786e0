/* strfmt.c - see strfmt.h. */
#include "strfmt.h"

#include <stdio.h>
#include <stdlib.h>

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
