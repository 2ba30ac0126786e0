/* backoff.c - see backoff.h. */
#include "backoff.h"

#include <stdlib.h>

long backoff_delay_ms(int failures,
                      long base_ms,
                      long max_ms,
                      long retry_after_ms,
                      unsigned *seed) {
        long ceiling = base_ms;
        long delay;

        for (int i = 1; i < failures && ceiling < max_ms; i++)
                ceiling *= 2;
        if (ceiling > max_ms)
                ceiling = max_ms;
        delay = ceiling / 2 +
                (ceiling > 1 ? rand_r(seed) % (ceiling - ceiling / 2 + 1) : 0);
        if (retry_after_ms > 0) {
                if (retry_after_ms > BACKOFF_RETRY_AFTER_CAP_MS)
                        retry_after_ms = BACKOFF_RETRY_AFTER_CAP_MS;
                if (delay < retry_after_ms)
                        delay = retry_after_ms;
        }
        return delay;
}
