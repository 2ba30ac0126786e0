/* Unit tests of duration_parse: bare numbers keep the setting's unit,
 * units convert, anything else is refused. */
#include "duration.h"

#include <criterion/criterion.h>

static const struct {
        const char *text;
        long unit_ms;
        int rc;
        long want;
} cases[] = {
    {"30", 1000, 0, 30},
    {"30s", 1000, 0, 30},
    {"2m", 1000, 0, 120},
    {"1m30s", 1000, 0, 90},
    {"1h", 1000, 0, 3600},
    {"1h2m3s", 1000, 0, 3723},
    {"2000ms", 1000, 0, 2},
    {"1500ms", 1000, -1, 0},
    {"250", 1, 0, 250},
    {"250ms", 1, 0, 250},
    {"3s", 1, 0, 3000},
    {"1m", 1, 0, 60000},
    {"0", 1000, 0, 0},
    {"", 1000, -1, 0},
    {"s", 1000, -1, 0},
    {"30 s", 1000, -1, 0},
    {"-5", 1000, -1, 0},
    {"5x", 1000, -1, 0},
    {"1.5s", 1000, -1, 0},
    {"30S", 1000, -1, 0},
    {"99999999999999999999s", 1000, -1, 0},
};

Test(duration, bare_numbers_units_and_refusals) {
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                long v = -42;
                int rc = duration_parse(cases[i].text, cases[i].unit_ms, &v);
                cr_expect_eq(rc, cases[i].rc, "\"%s\": rc %d", cases[i].text,
                             rc);
                if (rc == 0)
                        cr_expect_eq(v, cases[i].want, "\"%s\": %ld",
                                     cases[i].text, v);
        }
}
