/* test_clock.c - clock_iso8601 against gmtime_r + strftime. */
#include "clock.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void expect_like_gmtime(int64_t wall_ms) {
        char got[32], want[32], date[24];
        time_t secs = (time_t)(wall_ms / 1000);
        struct tm tm;

        gmtime_r(&secs, &tm);
        strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(want, sizeof(want), "%s.%03dZ", date, (int)(wall_ms % 1000));
        clock_iso8601(wall_ms, got, sizeof(got));
        cr_assert_str_eq(got, want, "at %lld ms", (long long)wall_ms);
}

Test(clock, iso8601_matches_gmtime_on_edges) {
        const int64_t at[] = {
            0,              /* the epoch */
            951782400000,   /* 2000-02-29 */
            951868799999,   /* 2000-02-29T23:59:59.999 */
            4107542400000,  /* 2100-03-01 (2100 is no leap year) */
            1796601600123,  /* 2026-12-07 */
            253402300799999 /* 9999-12-31T23:59:59.999 */
        };
        for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++)
                expect_like_gmtime(at[i]);
}

Test(clock, iso8601_matches_gmtime_every_day_for_five_centuries) {
        /* Every day from 1970 to 2470, at a time of day that varies. */
        for (int64_t day = 0; day < 500 * 366; day++)
                expect_like_gmtime(day * 86400000 + (day * 7919 % 86400000));
}

Test(clock, iso8601_cuts_to_the_buffer) {
        char small[11];
        clock_iso8601(1796601600123, small, sizeof(small));
        cr_assert_str_eq(small, "2026-12-07");
        clock_iso8601(1796601600123, small, 0); /* no write at all */
}
