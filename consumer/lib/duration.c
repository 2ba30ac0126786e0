/* duration.c - see duration.h. */
#include "duration.h"

#include <ctype.h>
#include <string.h>

#define DURATION_MAX_MS 1000000000000LL

/* The number of digits at @p s, its value in *@p v (capped). */
static size_t digits(const char *s, long long *v) {
        size_t n = 0;

        *v = 0;
        for (; isdigit((unsigned char)s[n]); n++)
                if (*v <= DURATION_MAX_MS)
                        *v = *v * 10 + (s[n] - '0');
        return n;
}

int duration_parse(const char *text, long unit_ms, long *out) {
        long long total = 0, v;
        const char *p = text;
        size_t n;

        if (!text || !*text || unit_ms < 1)
                return -1;
        n = digits(p, &v);
        if (n && !p[n]) { /* a bare number: the setting's own unit */
                if (v > DURATION_MAX_MS / unit_ms)
                        return -1;
                *out = (long)v;
                return 0;
        }
        while (*p) {
                long long mult;
                n = digits(p, &v);
                if (!n)
                        return -1;
                p += n;
                if (strncmp(p, "ms", 2) == 0)
                        mult = 1, p += 2;
                else if (*p == 's')
                        mult = 1000, p++;
                else if (*p == 'm')
                        mult = 60 * 1000, p++;
                else if (*p == 'h')
                        mult = 3600 * 1000, p++;
                else
                        return -1;
                if (v > DURATION_MAX_MS / mult)
                        return -1;
                total += v * mult;
                if (total > DURATION_MAX_MS)
                        return -1;
        }
        if (total % unit_ms)
                return -1;
        *out = (long)(total / unit_ms);
        return 0;
}
