/* log.c - JSON-lines logger with secret redaction; see log.h. */
#include "log.h"
#include "clock.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SECRETS 64
#define REDACTED    "[REDACTED]"

static enum log_level min_level = LOG_INFO;
static pthread_mutex_t secrets_lock = PTHREAD_MUTEX_INITIALIZER;
static char *secrets[MAX_SECRETS];
static int nsecrets;

void log_set_level(enum log_level level) {
        min_level = level;
}

int log_level_parse(const char *name, enum log_level *out) {
        static const char *const names[] = {"debug", "info", "warn", "error"};
        for (int i = 0; i < 4; i++) {
                if (strcmp(name, names[i]) == 0) {
                        *out = (enum log_level)i;
                        return 0;
                }
        }
        return -1;
}

void log_add_secret(const char *secret) {
        if (!secret || strlen(secret) < 4)
                return;
        pthread_mutex_lock(&secrets_lock);
        for (int i = 0; i < nsecrets; i++) {
                if (strcmp(secrets[i], secret) == 0) {
                        pthread_mutex_unlock(&secrets_lock);
                        return;
                }
        }
        if (nsecrets < MAX_SECRETS) {
                char *copy = strdup(secret);
                if (copy)
                        secrets[nsecrets++] = copy;
        }
        pthread_mutex_unlock(&secrets_lock);
}

void log_clear_secrets(void) {
        pthread_mutex_lock(&secrets_lock);
        for (int i = 0; i < nsecrets; i++)
                free(secrets[i]);
        nsecrets = 0;
        pthread_mutex_unlock(&secrets_lock);
}

/* Lock held. @p s with every secret replaced, malloc'd; NULL on OOM. Every
 * byte that belongs to any occurrence of any secret is marked first, then
 * each run of marked bytes becomes one "[REDACTED]": a secret that contains
 * another, or two that overlap, never leave a piece behind. */
static char *redacted_dup(const char *s) {
        size_t n = strlen(s), rlen = strlen(REDACTED), runs = 0;
        unsigned char *mask = calloc(n + 1, 1);
        char *out = NULL;

        if (!mask)
                return NULL;
        for (int i = 0; i < nsecrets; i++) {
                size_t slen = strlen(secrets[i]);
                for (const char *p = s; (p = strstr(p, secrets[i])) != NULL;
                     p++)
                        memset(mask + (p - s), 1, slen);
        }
        for (size_t k = 0; k < n; k++)
                runs += mask[k] && (k == 0 || !mask[k - 1]);
        out = malloc(n + runs * rlen + 1);
        if (out) {
                size_t o = 0;
                for (size_t k = 0; k < n; k++) {
                        if (!mask[k])
                                out[o++] = s[k];
                        else if (k == 0 || !mask[k - 1]) {
                                memcpy(out + o, REDACTED, rlen);
                                o += rlen;
                        }
                }
                out[o] = '\0';
        }
        free(mask);
        return out;
}

void log_redact_copy(char *dst,
                     size_t cap,
                     const char *src,
                     enum log_keep keep) {
        if (!cap)
                return;
        pthread_mutex_lock(&secrets_lock);
        char *r = redacted_dup(src);
        pthread_mutex_unlock(&secrets_lock);
        if (!r) {
                /* Never fall back to the unredacted text. */
                snprintf(dst, cap, "%s", "[text withheld: out of memory]");
                return;
        }
        size_t n = strlen(r);
        const char *from = r;
        if (n >= cap) {
                if (keep == LOG_KEEP_TAIL)
                        from = r + n - (cap - 1);
                n = cap - 1;
        }
        memmove(dst, from, n);
        dst[n] = '\0';
        free(r);
}

void log_redact(char *s, size_t cap) {
        log_redact_copy(s, cap, s, LOG_KEEP_HEAD);
}

/* Appends @p s JSON-escaped to out[*len..cap). */
static void json_append(char *out, size_t *len, size_t cap, const char *s) {
        static const char hex[] = "0123456789abcdef";
        for (; *s && *len + 7 < cap; s++) {
                unsigned char c = (unsigned char)*s;
                if (c == '"' || c == '\\') {
                        out[(*len)++] = '\\';
                        out[(*len)++] = (char)c;
                } else if (c < 0x20) {
                        out[(*len)++] = '\\';
                        out[(*len)++] = 'u';
                        out[(*len)++] = '0';
                        out[(*len)++] = '0';
                        out[(*len)++] = hex[c >> 4];
                        out[(*len)++] = hex[c & 15];
                } else {
                        out[(*len)++] = (char)c;
                }
        }
        out[*len] = '\0';
}

static void raw_append(char *out, size_t *len, size_t cap, const char *s) {
        size_t n = strlen(s);
        if (*len + n + 1 > cap)
                n = cap - *len - 1;
        memcpy(out + *len, s, n);
        *len += n;
        out[*len] = '\0';
}

void log_write(enum log_level level,
               const char *component,
               const char *request_id,
               const char *fmt,
               ...) {
        static const char *const names[] = {"debug", "info", "warn", "error"};
        char msg[2048], line[4096], ts[32];
        size_t len = 0;
        va_list ap;

        if (level < min_level)
                return;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        log_redact(msg, sizeof(msg));
        clock_iso8601(clock_wall_ms(), ts, sizeof(ts));

        raw_append(line, &len, sizeof(line), "{\"ts\":\"");
        raw_append(line, &len, sizeof(line), ts);
        raw_append(line, &len, sizeof(line), "\",\"level\":\"");
        raw_append(line, &len, sizeof(line), names[level]);
        raw_append(line, &len, sizeof(line), "\",\"component\":\"");
        json_append(line, &len, sizeof(line), component ? component : "main");
        if (request_id) {
                raw_append(line, &len, sizeof(line), "\",\"requestId\":\"");
                json_append(line, &len, sizeof(line), request_id);
        }
        raw_append(line, &len, sizeof(line), "\",\"msg\":\"");
        json_append(line, &len, sizeof(line), msg);
        raw_append(line, &len, sizeof(line), "\"}\n");
        if (write(STDERR_FILENO, line, len) < 0) {
                /* Nowhere left to report a failed log write. */
        }
}
