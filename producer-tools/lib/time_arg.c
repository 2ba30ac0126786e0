/* time_arg.c - see time_arg.h. */
#include "time_arg.h"
#include "duration.h"

#include <ctype.h>
#include <string.h>

/* Days from 1970-01-01 to @p y-@p m-@p d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int m, int d) {
        y -= m <= 2;
        int64_t era = (y >= 0 ? y : y - 399) / 400;
        int64_t yoe = y - era * 400;
        int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

/* Exactly @p n digits at *@p p, advanced past them. */
static int num(const char **p, int n, int *out) {
        int v = 0;
        for (int i = 0; i < n; i++) {
                if (!isdigit((unsigned char)(*p)[i]))
                        return -1;
                v = v * 10 + ((*p)[i] - '0');
        }
        *p += n;
        *out = v;
        return 0;
}

static int iso(const char *p, int64_t *out_ms) {
        int y, mo, d, h = 0, mi = 0, s = 0, ms = 0;
        static const int mdays[] = {31, 29, 31, 30, 31, 30,
                                    31, 31, 30, 31, 30, 31};

        if (num(&p, 4, &y) || *p++ != '-' || num(&p, 2, &mo) || *p++ != '-' ||
            num(&p, 2, &d))
                return -1;
        if (*p == 'T' || *p == ' ') {
                p++;
                if (num(&p, 2, &h) || *p++ != ':' || num(&p, 2, &mi))
                        return -1;
                if (*p == ':') {
                        p++;
                        if (num(&p, 2, &s))
                                return -1;
                        if (*p == '.') {
                                p++;
                                if (num(&p, 3, &ms))
                                        return -1;
                        }
                }
        }
        if (*p == 'Z')
                p++;
        if (*p || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 ||
            mi > 59 || s > 60)
                return -1;
        *out_ms = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000LL +
                  s * 1000LL + ms;
        return 0;
}

int time_arg_parse(const char *text, int64_t now_ms, int64_t *out_ms) {
        long ago;
        const char *p;

        if (!text || !*text)
                return -1;
        if (strcmp(text, "now") == 0) {
                *out_ms = now_ms;
                return 0;
        }
        if (iso(text, out_ms) == 0)
                return 0;
        for (p = text; isdigit((unsigned char)*p); p++)
                ;
        if (!*p) /* a bare number: refused, the unit is a guess */
                return -1;
        if (duration_parse(text, 1, &ago) == -1)
                return -1;
        *out_ms = now_ms - ago;
        return 0;
}
