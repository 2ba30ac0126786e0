/* dynbuf.c - see dynbuf.h.
 *
 * DESIGN
 * ------
 * In DYNBUF_KEEP_TAIL mode the buffer may grow to twice the cap before the
 * head is dropped down to the cap, so keeping the tail of a long stream
 * costs O(1) per byte amortized instead of a memmove per add.
 */
#include "dynbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dynbuf_init(struct dynbuf *b, size_t max, enum dynbuf_mode mode) {
        memset(b, 0, sizeof(*b));
        b->max = max;
        b->mode = mode;
}

void dynbuf_free(struct dynbuf *b) {
        free(b->p);
        dynbuf_init(b, b->max, b->mode);
}

static int fail(struct dynbuf *b, enum dynbuf_state why) {
        free(b->p);
        b->p = NULL;
        b->len = b->alloc = 0;
        b->state = why;
        return -1;
}

static int reserve(struct dynbuf *b, size_t need) {
        if (need <= b->alloc)
                return 0;
        size_t want = b->alloc ? b->alloc * 2 : 256;
        while (want < need)
                want *= 2;
        char *p = realloc(b->p, want);
        if (!p)
                return fail(b, DYNBUF_OOM);
        b->p = p;
        b->alloc = want;
        return 0;
}

int dynbuf_add(struct dynbuf *b, const void *data, size_t len) {
        const char *d = data;

        if (b->state != DYNBUF_OK)
                return -1;
        if (b->mode == DYNBUF_FAIL) {
                if (len > b->max - b->len)
                        return fail(b, DYNBUF_TOOBIG);
        } else {
                if (len >= b->max) { /* only its last max bytes survive */
                        b->truncated |= b->len > 0 || len > b->max;
                        d += len - b->max;
                        len = b->max;
                        b->len = 0;
                }
                if (b->len + len > 2 * b->max) {
                        size_t keep = b->max - len;
                        memmove(b->p, b->p + b->len - keep, keep);
                        b->len = keep;
                        b->truncated = 1;
                }
        }
        if (reserve(b, b->len + len + 1) == -1)
                return -1;
        if (len)
                memcpy(b->p + b->len, d, len);
        b->len += len;
        b->p[b->len] = '\0';
        return 0;
}

int dynbuf_addstr(struct dynbuf *b, const char *s) {
        return dynbuf_add(b, s, strlen(s));
}

int dynbuf_addf(struct dynbuf *b, const char *fmt, ...) {
        va_list ap;
        char small[256];

        if (b->state != DYNBUF_OK)
                return -1;
        va_start(ap, fmt);
        int n = vsnprintf(small, sizeof(small), fmt, ap);
        va_end(ap);
        if (n < 0)
                return fail(b, DYNBUF_OOM);
        if ((size_t)n < sizeof(small))
                return dynbuf_add(b, small, (size_t)n);
        char *big = malloc((size_t)n + 1);
        if (!big)
                return fail(b, DYNBUF_OOM);
        va_start(ap, fmt);
        vsnprintf(big, (size_t)n + 1, fmt, ap);
        va_end(ap);
        int rc = dynbuf_add(b, big, (size_t)n);
        free(big);
        return rc;
}

const char *dynbuf_str(const struct dynbuf *b) {
        return b->p ? b->p : "";
}

char *dynbuf_take(struct dynbuf *b, size_t *len) {
        char *p;

        if (len)
                *len = 0;
        if (b->state != DYNBUF_OK) {
                dynbuf_free(b);
                return NULL;
        }
        if (b->mode == DYNBUF_KEEP_TAIL && b->len > b->max) {
                memmove(b->p, b->p + b->len - b->max, b->max);
                b->len = b->max;
                b->p[b->len] = '\0';
                b->truncated = 1;
        }
        p = b->p ? b->p : calloc(1, 1);
        if (p && len)
                *len = b->len;
        b->p = NULL;
        b->len = b->alloc = 0;
        return p;
}
