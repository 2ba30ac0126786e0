/* time_arg.h - a point in time given on a tool's command line: an ISO 8601
 * UTC date or time ("2026-12-07", "2026-12-07T10:30", "2026-12-07T10:30:00Z",
 * "2026-12-07 10:30:00.250"), or a time ago as a duration with units ("2h",
 * "90m", "1h30m": that long before now), or "now". Pure: no I/O.
 *
 * Callers: thopter-dlq (--since, --until; the failed_at header).
 */
#ifndef THOPTER_TIME_ARG_H
#define THOPTER_TIME_ARG_H

#include <stdint.h>

/**
 * @brief Parse @p text relative to @p now_ms (ms since the epoch).
 * @returns 0 with *@p out_ms (ms since the epoch), or -1 when @p text is
 * none of the forms above (a bare number is refused: seconds or an epoch?).
 */
int time_arg_parse(const char *text, int64_t now_ms, int64_t *out_ms);

#endif
