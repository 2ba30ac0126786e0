/* duration.h - the one reading of a duration setting: a bare number in the
 * setting's own unit (what THOPTER_DRAIN_TIMEOUT=30 always meant), or one or
 * more NUMBER+UNIT groups with units ms, s, m, h ("500ms", "90s", "1m30s",
 * "2h"). Pure: no I/O.
 *
 * Callers: config.c.
 */
#ifndef THOPTER_DURATION_H
#define THOPTER_DURATION_H

/**
 * @brief Parse @p text as a duration in units of @p unit_ms milliseconds
 * (1000 for a setting in seconds, 1 for one in milliseconds).
 * @returns 0 with *@p out in that unit; -1 when @p text is not a duration,
 * is larger than 10^12 ms, or (with units) is not a whole number of the
 * unit ("1500ms" for a setting in seconds).
 */
int duration_parse(const char *text, long unit_ms, long *out);

#endif
