/* strfmt.h - printf into a string of exactly the right size.
 *
 * Callers: everyone that builds a string.
 */
#ifndef THOPTER_STRFMT_H
#define THOPTER_STRFMT_H

#include <stdarg.h>
#include <stddef.h>

/** @returns a malloc'd string, or NULL on OOM or a format error. */
char *strfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *vstrfmt(const char *fmt, va_list ap)
    __attribute__((format(printf, 1, 0)));

#endif
