/* strfmt.h - printf into a string of exactly the right size. */
#ifndef THOPTER_STRFMT_H
#define THOPTER_STRFMT_H

/** @returns a malloc'd string, or NULL on OOM or a format error. */
char *strfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
