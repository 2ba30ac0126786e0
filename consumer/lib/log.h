/* log.h - one-line JSON log records on stderr, with secrets redacted.
 *
 * Every record is {"ts":"…","level":"…","component":"…","requestId":"…",
 * "msg":"…"} on one line. Any string registered with log_add_secret() is
 * replaced by "[REDACTED]" wherever it appears in a message, so a token that
 * slips into an error text (a URL, a server echo) never reaches the log.
 *
 * @locality any thread; records are written with one write(2) each.
 *
 * Callers: everyone.
 */
#ifndef THOPTER_LOG_H
#define THOPTER_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level level);
/** @returns 0 and sets *out, or -1 for an unknown name. */
int log_level_parse(const char *name, enum log_level *out);

/** @brief Register a secret (copied); strings shorter than 4 are ignored. */
void log_add_secret(const char *secret);
/** @brief Forget every registered secret (tests). */
void log_clear_secrets(void);

/**
 * @brief Replace every registered secret in @p s, in place; the result is
 * cut to @p cap bytes (its head kept). Same as log_redact_copy(s, cap, s,
 * LOG_KEEP_HEAD).
 */
void log_redact(char *s, size_t cap);

enum log_keep { LOG_KEEP_HEAD, LOG_KEEP_TAIL };

/**
 * @brief Copy @p src into @p dst (@p cap bytes, NUL-terminated) with every
 * registered secret replaced first and the result cut after, keeping its
 * head or its tail (remote stderr: the tail says what went wrong). Cutting
 * first would let part of a secret survive. @p dst may be @p src.
 */
void log_redact_copy(char *dst,
                     size_t cap,
                     const char *src,
                     enum log_keep keep);

/**
 * @brief Write one record. @p request_id may be NULL.
 */
void log_write(enum log_level level,
               const char *component,
               const char *request_id,
               const char *fmt,
               ...) __attribute__((format(printf, 4, 5)));

#define log_debug(comp, ...) log_write(LOG_DEBUG, comp, NULL, __VA_ARGS__)
#define log_info(comp, ...)  log_write(LOG_INFO, comp, NULL, __VA_ARGS__)
#define log_warn(comp, ...)  log_write(LOG_WARN, comp, NULL, __VA_ARGS__)
#define log_error(comp, ...) log_write(LOG_ERROR, comp, NULL, __VA_ARGS__)

#endif
