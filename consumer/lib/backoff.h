/* backoff.h - exponential backoff with jitter, honouring Retry-After. Pure.
 *
 * Callers: fly_retry.c (the one retry policy).
 */
#ifndef THOPTER_BACKOFF_H
#define THOPTER_BACKOFF_H

/* A Retry-After longer than this is capped: a server asking for an hour
 * should not park a worker for an hour. */
#define BACKOFF_RETRY_AFTER_CAP_MS 60000L

/**
 * @brief Delay before the next attempt after @p failures failures (>= 1).
 *
 * The ceiling doubles from @p base_ms up to @p max_ms; the delay is drawn
 * uniformly from [ceiling/2, ceiling] ("equal jitter": never zero, never
 * synchronised). A server's @p retry_after_ms (> 0) is a floor, capped at
 * BACKOFF_RETRY_AFTER_CAP_MS.
 * @param seed rand_r() state of the caller.
 */
long backoff_delay_ms(int failures,
                      long base_ms,
                      long max_ms,
                      long retry_after_ms,
                      unsigned *seed);

#endif
