/* remote_pipe.c - remote_pipe(): one command's stdout streamed into another
 * command's stdin, on two hosts or one, with no temporary file; see
 * remote.h.
 */
#include "remote_int.h"

#include "clock.h"

#include <errno.h>
#include <stdlib.h>

#define PIPE_ERR_CAP (16 * 1024) /* stderr kept per command */

/* ---------------------------------------------------------------------- */
/* remote_pipe                                                                */

struct pipe_end {
        struct remote_conn *c;
        LIBSSH2_CHANNEL *ch;
        struct dynbuf errb;
        int remote_eof; /* all output read and EOF seen */
        int finished;   /* exit status known */
        int status;
};

/* Failure of a command in a pipe, with its stderr tail, redacted. */
static int fail_status(struct pipe_end *e, const char *which, struct err *err) {
        char tail[160];

        remote_exec_text_tail(tail, sizeof(tail), e->errb.p, e->errb.len);
        return err_setc(err, ERR_PERMANENT, ERR_CAUSE_REMOTE_EXIT, e->status,
                        "ssh: pipe: %s command on %s exited %d%s%s", which,
                        e->c->name, e->status, tail[0] ? ": " : "", tail);
}

int remote_pipe(struct remote_conn *src,
                const char *src_cmd,
                struct remote_conn *dst,
                const char *dst_cmd,
                long timeout_ms,
                struct err *err) {
        struct pipe_end s = {.c = src}, d = {.c = dst};
        long tmo = timeout_ms > 0 ? timeout_ms : REMOTE_OP_TIMEOUT_DEFAULT_MS;
        int64_t deadline =
            remote_io_deadline_in(timeout_ms, REMOTE_OP_TIMEOUT_DEFAULT_MS);
        int64_t src_grace = 0;
        char *buf = NULL;
        size_t blen = 0, boff = 0;
        int dst_eof_sent = 0, dst_stdin_closed = 0, rc, ret = -1;

        dynbuf_init(&s.errb, PIPE_ERR_CAP, DYNBUF_KEEP_TAIL);
        dynbuf_init(&d.errb, PIPE_ERR_CAP, DYNBUF_KEEP_TAIL);

        if (src->broken)
                return remote_io_fail_broken(src, err);
        if (dst->broken)
                return remote_io_fail_broken(dst, err);
        buf = malloc(REMOTE_IO_CHUNK);
        if (!buf)
                return err_setc(err, ERR_TRANSIENT, ERR_CAUSE_OOM, ENOMEM,
                                "ssh: pipe: out of memory");
        /* Destination first: it must be ready to read before data flows. */
        rc = remote_exec_channel_start(dst, dst_cmd, deadline, &d.ch);
        if (rc != 0) {
                remote_io_fail_rc(dst, err, rc, "starting the pipe destination",
                                  tmo);
                goto out;
        }
        rc = remote_exec_channel_start(src, src_cmd, deadline, &s.ch);
        if (rc != 0) {
                remote_io_fail_rc(src, err, rc, "starting the pipe source",
                                  tmo);
                goto out;
        }
        REMOTE_NB_CALL(rc, src, deadline, libssh2_channel_send_eof(s.ch));
        if (rc != 0) {
                remote_io_fail_rc(src, err, rc, "starting the pipe source",
                                  tmo);
                goto out;
        }
        for (;;) {
                int progress = 0, r;

                /* source stdout -> buffer (only when the buffer is empty) */
                if (!s.remote_eof && boff == blen) {
                        ssize_t n =
                            libssh2_channel_read(s.ch, buf, REMOTE_IO_CHUNK);
                        if (n > 0) {
                                blen = (size_t)n;
                                boff = 0;
                                progress = 1;
                                if (dst_stdin_closed)
                                        boff = blen; /* nobody wants it */
                        } else if (n < 0 && n != LIBSSH2_ERROR_EAGAIN) {
                                remote_io_fail_rc(src, err, (int)n,
                                                  "reading the pipe source",
                                                  tmo);
                                goto out;
                        }
                }
                r = remote_exec_drain(s.ch, SSH_EXTENDED_DATA_STDERR, &s.errb);
                if (r < 0) {
                        remote_io_fail_rc(src, err, r,
                                          "reading the pipe source", tmo);
                        goto out;
                }
                progress |= r;
                if (!s.remote_eof && boff == blen && libssh2_channel_eof(s.ch))
                        s.remote_eof = 1;

                /* buffer -> destination stdin */
                if (boff < blen) {
                        ssize_t n = libssh2_channel_write(d.ch, buf + boff,
                                                          blen - boff);
                        if (n > 0) {
                                boff += (size_t)n;
                                progress = 1;
                        } else if (n != LIBSSH2_ERROR_EAGAIN) {
                                if (remote_io_is_transport_rc((int)n)) {
                                        remote_io_fail_rc(
                                            dst, err, (int)n,
                                            "writing the pipe destination",
                                            tmo);
                                        goto out;
                                }
                                dst_stdin_closed = 1;
                                boff = blen;
                        }
                }
                if (s.remote_eof && boff == blen && !dst_eof_sent) {
                        r = libssh2_channel_send_eof(d.ch);
                        if (r != LIBSSH2_ERROR_EAGAIN) {
                                if (remote_io_is_transport_rc(r)) {
                                        remote_io_fail_rc(
                                            dst, err, r,
                                            "writing the pipe destination",
                                            tmo);
                                        goto out;
                                }
                                dst_eof_sent = 1;
                                progress = 1;
                        }
                }

                /* destination output: stdout is not wanted, stderr is kept */
                r = remote_exec_drain(d.ch, 0, NULL);
                if (r < 0) {
                        remote_io_fail_rc(dst, err, r,
                                          "reading the pipe destination", tmo);
                        goto out;
                }
                progress |= r;
                r = remote_exec_drain(d.ch, SSH_EXTENDED_DATA_STDERR, &d.errb);
                if (r < 0) {
                        remote_io_fail_rc(dst, err, r,
                                          "reading the pipe destination", tmo);
                        goto out;
                }
                progress |= r;
                if (!d.remote_eof && libssh2_channel_eof(d.ch)) {
                        d.remote_eof = 1;
                        /* The destination is done early: give the source a
                         * short grace to finish on its own, then stop. */
                        if (!s.remote_eof)
                                src_grace = clock_mono_ms() + REMOTE_GRACE_MS;
                        dst_stdin_closed = 1;
                        boff = blen;
                }
                if (s.remote_eof && d.remote_eof)
                        break;
                if (d.remote_eof && src_grace && clock_mono_ms() >= src_grace)
                        break;
                if (!progress &&
                    !remote_io_wait(src, dst,
                                    src_grace && src_grace < deadline
                                        ? src_grace
                                        : deadline)) {
                        if (src_grace && clock_mono_ms() < deadline)
                                break;
                        remote_io_fail_rc(dst, err, REMOTE_RC_DEADLINE, "pipe",
                                          tmo);
                        goto out;
                }
        }
        rc = remote_exec_channel_finish(dst, &d.ch, deadline, &d.status);
        if (rc != 0) {
                remote_io_fail_rc(dst, err, rc,
                                  "finishing the pipe destination", tmo);
                goto out;
        }
        d.finished = 1;
        if (s.remote_eof) {
                rc =
                    remote_exec_channel_finish(src, &s.ch, deadline, &s.status);
                if (rc != 0) {
                        remote_io_fail_rc(src, err, rc,
                                          "finishing the pipe source", tmo);
                        goto out;
                }
                s.finished = 1;
        }
        /* Root cause first: a failing source usually makes the destination
         * fail too, but a source killed by SIGPIPE is the destination's
         * fault. */
        if (s.finished && s.status != 0 && s.status != 128 + 13)
                fail_status(&s, "source", err);
        else if (d.status != 0)
                fail_status(&d, "destination", err);
        else if (s.finished && s.status != 0)
                fail_status(&s, "source", err);
        else if (!s.finished)
                err_set(err, ERR_PERMANENT, 0,
                        "ssh: pipe: destination command on %s exited before "
                        "the source on %s finished",
                        dst->name, src->name);
        else
                ret = 0;
out:
        remote_exec_channel_discard(src, s.ch);
        remote_exec_channel_discard(dst, d.ch);
        dynbuf_free(&s.errb);
        dynbuf_free(&d.errb);
        free(buf);
        return ret;
}
