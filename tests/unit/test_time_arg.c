/* Unit tests of time_arg_parse: ISO 8601 UTC dates and times, durations
 * ago, and refusals. */
#include "time_arg.h"

#include <criterion/criterion.h>

#define NOW 1796688000000LL /* 2026-12-08T00:00:00Z */

static const struct {
        const char *text;
        int rc;
        int64_t want;
} cases[] = {
    {"1970-01-01", 0, 0},
    {"2026-12-08", 0, NOW},
    {"2026-12-07T23:30", 0, NOW - 30 * 60000LL},
    {"2026-12-07T23:59:59Z", 0, NOW - 1000},
    {"2026-12-07 23:59:59.250", 0, NOW - 750},
    {"2024-02-29", 0, 1709164800000LL},
    {"now", 0, NOW},
    {"2h", 0, NOW - 7200000LL},
    {"1h30m", 0, NOW - 5400000LL},
    {"500ms", 0, NOW - 500},
    {"1796688000", -1, 0},
    {"", -1, 0},
    {"2026-13-01", -1, 0},
    {"2026-02-30", -1, 0},
    {"2026-12-07T24:00", -1, 0},
    {"2026-12-07T10", -1, 0},
    {"2026-12-07+01:00", -1, 0},
    {"yesterday", -1, 0},
};

Test(time_arg, dates_times_durations_ago_and_refusals) {
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                int64_t v = -1;
                int rc = time_arg_parse(cases[i].text, NOW, &v);
                cr_expect_eq(rc, cases[i].rc, "\"%s\": rc %d", cases[i].text,
                             rc);
                if (rc == 0)
                        cr_expect_eq(v, cases[i].want,
                                     "\"%s\": %lld, want %lld", cases[i].text,
                                     (long long)v, (long long)cases[i].want);
        }
}
