/* strfmt.c - see strfmt.h. */
#include "strfmt.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

char *strfmt(const char *fmt, ...) {
        va_list ap;
        int n;
        char *out;

        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0)
                return NULL;
        out = malloc((size_t)n + 1);
        if (!out)
                return NULL;
        va_start(ap, fmt);
        vsnprintf(out, (size_t)n + 1, fmt, ap);
        va_end(ap);
        return out;
}
