/* dynbuf.h - the one growable buffer: a NUL-terminated byte string with a
 * cap, after curl's dynbuf.
 *
 * Everything that grows with input from outside (HTTP bodies, remote
 * output, rendered text) has a cap. What happens at the cap is the
 * buffer's mode:
 *   DYNBUF_FAIL      the add fails and the buffer is poisoned (a body too
 *                    big to be what we asked for is an error);
 *   DYNBUF_KEEP_TAIL the oldest bytes are dropped and `truncated` is set (a
 *                    command's stderr: its last lines say what went wrong).
 * A failure is sticky: after an out-of-memory or a DYNBUF_FAIL overflow
 * every later add fails and dynbuf_take() returns NULL, so a caller may add
 * many pieces and check once.
 *
 * @locality one thread per buffer.
 *
 * Callers: any module that builds text or collects output (metrics, ssh,
 * provision context, ssh keys, http response bodies, template).
 */
#ifndef THOPTER_DYNBUF_H
#define THOPTER_DYNBUF_H

#include <stddef.h>

enum dynbuf_mode { DYNBUF_FAIL, DYNBUF_KEEP_TAIL };
enum dynbuf_state { DYNBUF_OK = 0, DYNBUF_OOM, DYNBUF_TOOBIG };

struct dynbuf {
        char *p;
        size_t len;   /* bytes held, without the NUL */
        size_t alloc; /* bytes allocated */
        size_t max;   /* the cap */
        enum dynbuf_mode mode;
        enum dynbuf_state state;
        int truncated; /* DYNBUF_KEEP_TAIL dropped bytes */
};

/** @brief An empty buffer holding at most @p max bytes. Cannot fail. */
void dynbuf_init(struct dynbuf *b, size_t max, enum dynbuf_mode mode);
/** @brief Free the bytes; the buffer may be used again (empty, state OK). */
void dynbuf_free(struct dynbuf *b);

/** @returns 0, or -1 when the buffer has failed (see b->state). */
int dynbuf_add(struct dynbuf *b, const void *data, size_t len);
int dynbuf_addstr(struct dynbuf *b, const char *s);
int dynbuf_addf(struct dynbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** @brief The bytes so far, "" when empty (valid until the next add). */
const char *dynbuf_str(const struct dynbuf *b);

/**
 * @brief Hand the string over (malloc'd, NUL-terminated; "" when empty)
 * and leave the buffer empty. @p len (optional) receives its length.
 * @returns NULL when the buffer failed or memory ran out.
 */
char *dynbuf_take(struct dynbuf *b, size_t *len);

#endif
