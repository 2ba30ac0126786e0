/* Unit tests of backoff_delay_ms: exponential ceiling, equal jitter,
 * Retry-After as a floor (capped). */
#include "backoff.h"

#include <criterion/criterion.h>

Test(backoff, ceiling_doubles_and_delay_stays_in_upper_half) {
        unsigned seed = 1;
        long ceilings[] = {100, 200, 400, 800, 1000, 1000};
        for (int f = 1; f <= 6; f++) {
                for (int i = 0; i < 200; i++) {
                        long d = backoff_delay_ms(f, 100, 1000, 0, &seed);
                        cr_assert(d >= ceilings[f - 1] / 2 &&
                                      d <= ceilings[f - 1],
                                  "failure %d: %ld not in [%ld, %ld]", f, d,
                                  ceilings[f - 1] / 2, ceilings[f - 1]);
                }
        }
}

Test(backoff, jitter_spreads_delays) {
        unsigned seed = 7;
        long lo = 1 << 30, hi = 0;
        for (int i = 0; i < 500; i++) {
                long d = backoff_delay_ms(3, 250, 5000, 0, &seed);
                lo = d < lo ? d : lo;
                hi = d > hi ? d : hi;
        }
        cr_assert(hi - lo > 300, "jitter too narrow: %ld..%ld", lo, hi);
}

Test(backoff, retry_after_is_a_floor) {
        unsigned seed = 3;
        cr_assert_eq(backoff_delay_ms(1, 100, 1000, 7000, &seed), 7000);
        long d = backoff_delay_ms(4, 100, 1000, 10, &seed);
        cr_assert(d >= 400 && d <= 800,
                  "a short Retry-After does not shorten the backoff: %ld", d);
}

Test(backoff, retry_after_is_capped) {
        unsigned seed = 3;
        cr_assert_eq(backoff_delay_ms(1, 100, 1000, 3600 * 1000L, &seed),
                     BACKOFF_RETRY_AFTER_CAP_MS);
}
