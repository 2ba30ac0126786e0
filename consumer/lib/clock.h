/* clock.h - time: monotonic and wall-clock milliseconds, deadlines, waits
 * on condition variables, and the contract's timestamp format
 * YYYY-MM-DDTHH:MM:SS.mmmZ.
 *
 * Every deadline in the consumer is a CLOCK_MONOTONIC millisecond count
 * (clock_mono_ms()), and every timed wait on a condition variable runs on
 * CLOCK_MONOTONIC too (clock_cond_init()), so a wall-clock step never
 * shortens or stretches a wait.
 *
 * @locality any thread.
 *
 * Callers: everyone.
 */
#ifndef THOPTER_CLOCK_H
#define THOPTER_CLOCK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/** @brief Milliseconds on CLOCK_MONOTONIC (for durations and deadlines). */
int64_t clock_mono_ms(void);
/** @brief Milliseconds since the epoch (for timestamps). */
int64_t clock_wall_ms(void);
/** @brief Format @p wall_ms as YYYY-MM-DDTHH:MM:SS.mmmZ; @p cap >= 25. */
void clock_iso8601(int64_t wall_ms, char *buf, size_t cap);
/** @brief Sleep @p ms milliseconds (restarts after signals). */
void clock_sleep_ms(int64_t ms);

/** @brief The deadline @p ms from now (monotonic ms). */
int64_t clock_deadline(int64_t ms);
/** @brief Milliseconds left until @p deadline; 0 once it has passed. */
int64_t clock_left_ms(int64_t deadline);

/**
 * @brief Sleep @p ms, waking every 100 ms to look at @p cancel (optional).
 * @returns 0 after the whole sleep, -1 as soon as *cancel is non-zero.
 */
int clock_sleep_cancellable(int64_t ms, const atomic_int *cancel);

/** @brief pthread_cond_init() on CLOCK_MONOTONIC. @returns 0 or an errno. */
int clock_cond_init(pthread_cond_t *cond);

/**
 * @brief pthread_cond_timedwait() for at most @p ms, for a condition made
 * with clock_cond_init(). @returns 0 or ETIMEDOUT.
 */
int clock_cond_wait_ms(pthread_cond_t *cond, pthread_mutex_t *lock, long ms);

#endif
