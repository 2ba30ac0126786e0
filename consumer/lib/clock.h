/* clock.h - monotonic and wall-clock milliseconds, and the contract's
 * timestamp format YYYY-MM-DDTHH:MM:SS.mmmZ. */
#ifndef THOPTER_CLOCK_H
#define THOPTER_CLOCK_H

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

#endif
