/* remote_exec.c - one command on its own channel: remote_run() and its
 * result, and the channel helpers remote_pipe.c uses too; see remote.h.
 */
#include "remote_int.h"

#include "clock.h"
#include "log.h"
#include "metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Closing a channel whose command still runs: OpenSSH answers our CLOSE
 * only when the command has exited, so do not wait long for it. */
#define CHAN_GRACE_MS 250

#define COMPONENT "ssh"

static void count_command(void) {
        metrics_inc(M_SSH_COMMANDS, "", 1);
}

/* ---------------------------------------------------------------------- */
/* channels                                                                */

void remote_result_free(struct remote_result *r) {
        if (!r)
                return;
        free(r->out);
        free(r->errout);
        memset(r, 0, sizeof(*r));
}

static LIBSSH2_CHANNEL *
channel_open(struct remote_conn *c, int64_t deadline, int *rc) {
        for (;;) {
                LIBSSH2_CHANNEL *ch = libssh2_channel_open_session(c->session);

                if (ch)
                        return ch;
                *rc = libssh2_session_last_errno(c->session);
                if (*rc != LIBSSH2_ERROR_EAGAIN)
                        return NULL;
                if (!remote_io_wait(c, NULL, deadline)) {
                        *rc = REMOTE_RC_DEADLINE;
                        return NULL;
                }
        }
}

/* Close and free a channel within a grace period. If the peer does not
 * answer in time, the connection is given up (remote_io_mark_broken), after
 * which freeing cannot block. */
void remote_exec_channel_discard(struct remote_conn *c, LIBSSH2_CHANNEL *ch) {
        int64_t dl = clock_mono_ms() + CHAN_GRACE_MS;
        int rc;

        if (!ch)
                return;
        if (!c->broken) {
                REMOTE_NB_CALL(rc, c, dl, libssh2_channel_close(ch));
                if (rc != 0)
                        remote_io_mark_broken(c);
        }
        dl = clock_mono_ms() + REMOTE_GRACE_MS;
        REMOTE_NB_CALL(rc, c, dl, libssh2_channel_free(ch));
        if (rc == REMOTE_RC_DEADLINE) {
                remote_io_mark_broken(c);
                dl = clock_mono_ms() + REMOTE_GRACE_MS;
                REMOTE_NB_CALL(rc, c, dl, libssh2_channel_free(ch));
        }
        if (rc != 0)
                log_warn(COMPONENT, "could not free a channel to %s (rc %d)",
                         c->name, rc);
}

static int signal_number(const char *name) {
        static const struct {
                const char *name;
                int num;
        } sigs[] = {{"HUP", 1},   {"INT", 2},   {"QUIT", 3},  {"ILL", 4},
                    {"ABRT", 6},  {"FPE", 8},   {"KILL", 9},  {"USR1", 10},
                    {"SEGV", 11}, {"USR2", 12}, {"PIPE", 13}, {"ALRM", 14},
                    {"TERM", 15}};

        for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
                if (strcmp(name, sigs[i].name) == 0)
                        return sigs[i].num;
        return -1;
}

/* Exit status of a channel the remote has closed; 128+N for signal N. */
static int channel_exit_status(struct remote_conn *c, LIBSSH2_CHANNEL *ch) {
        char *sig = NULL;
        size_t siglen = 0;
        int status = libssh2_channel_get_exit_status(ch);

        if (libssh2_channel_get_exit_signal(ch, &sig, &siglen, NULL, NULL, NULL,
                                            NULL) == 0 &&
            sig) {
                int n = signal_number(sig);
                status = n > 0 ? 128 + n : 255;
                libssh2_free(c->session, sig);
        }
        return status;
}

/* Finish a channel whose remote side sent EOF: close, read the status,
 * free. @returns 0, or an rc (REMOTE_RC_DEADLINE included). */
int remote_exec_channel_finish(struct remote_conn *c,
                               LIBSSH2_CHANNEL **ch,
                               int64_t deadline,
                               int *status) {
        int rc;

        REMOTE_NB_CALL(rc, c, deadline, libssh2_channel_close(*ch));
        if (rc != 0)
                return rc;
        *status = channel_exit_status(c, *ch);
        REMOTE_NB_CALL(rc, c, deadline, libssh2_channel_free(*ch));
        if (rc == 0)
                *ch = NULL;
        return rc;
}

int remote_exec_channel_start(struct remote_conn *c,
                              const char *cmd,
                              int64_t deadline,
                              LIBSSH2_CHANNEL **out) {
        int rc = 0;
        LIBSSH2_CHANNEL *ch = channel_open(c, deadline, &rc);

        *out = NULL;
        if (!ch)
                return rc;
        count_command();
        REMOTE_NB_CALL(rc, c, deadline, libssh2_channel_exec(ch, cmd));
        if (rc != 0) {
                remote_exec_channel_discard(c, ch);
                return rc;
        }
        *out = ch;
        return 0;
}

/* Read everything available from one stream of @p ch into @p b.
 * @returns 1 if bytes moved, 0 if not, or a libssh2 error rc (< 0). */
int remote_exec_drain(LIBSSH2_CHANNEL *ch, int stream, struct dynbuf *b) {
        char buf[REMOTE_IO_CHUNK];
        int moved = 0;

        for (;;) {
                ssize_t n =
                    libssh2_channel_read_ex(ch, stream, buf, sizeof(buf));
                if (n > 0) {
                        if (b)
                                dynbuf_add(b, buf, (size_t)n);
                        moved = 1;
                        continue;
                }
                if (n == 0 || n == LIBSSH2_ERROR_EAGAIN)
                        return moved;
                return (int)n;
        }
}

int remote_run(struct remote_conn *c,
               const char *cmd,
               const void *stdin_data,
               size_t stdin_len,
               long timeout_ms,
               struct remote_result *res,
               struct err *err) {
        struct dynbuf out, errb;
        LIBSSH2_CHANNEL *ch = NULL;
        long tmo = timeout_ms > 0 ? timeout_ms : REMOTE_OP_TIMEOUT_DEFAULT_MS;
        int64_t deadline =
            remote_io_deadline_in(timeout_ms, REMOTE_OP_TIMEOUT_DEFAULT_MS);
        const char *data = stdin_data;
        size_t off = 0;
        int eof_sent = 0, status = -1, rc, ret = -1;

        dynbuf_init(&out, REMOTE_OUTPUT_CAP, DYNBUF_KEEP_TAIL);
        dynbuf_init(&errb, REMOTE_OUTPUT_CAP, DYNBUF_KEEP_TAIL);
        memset(res, 0, sizeof(*res));
        if (c->broken)
                return remote_io_fail_broken(c, err);
        if (!data)
                stdin_len = 0;
        rc = remote_exec_channel_start(c, cmd, deadline, &ch);
        if (rc != 0) {
                remote_io_fail_rc(c, err, rc, "starting a command", tmo);
                goto out;
        }
        for (;;) {
                int progress = 0, r;

                r = remote_exec_drain(ch, 0, &out);
                if (r < 0) {
                        remote_io_fail_rc(c, err, r, "reading command output",
                                          tmo);
                        goto out;
                }
                progress |= r;
                r = remote_exec_drain(ch, SSH_EXTENDED_DATA_STDERR, &errb);
                if (r < 0) {
                        remote_io_fail_rc(c, err, r, "reading command output",
                                          tmo);
                        goto out;
                }
                progress |= r;
                if (!eof_sent && off < stdin_len) {
                        ssize_t n = libssh2_channel_write(ch, data + off,
                                                          stdin_len - off);
                        if (n > 0) {
                                off += (size_t)n;
                                progress = 1;
                        } else if (n != LIBSSH2_ERROR_EAGAIN) {
                                if (remote_io_is_transport_rc((int)n)) {
                                        remote_io_fail_rc(
                                            c, err, (int)n,
                                            "writing command input", tmo);
                                        goto out;
                                }
                                /* The command closed its stdin (or exited):
                                 * the rest of the input is not wanted. */
                                off = stdin_len;
                        }
                }
                if (!eof_sent && off >= stdin_len) {
                        r = libssh2_channel_send_eof(ch);
                        if (r != LIBSSH2_ERROR_EAGAIN) {
                                if (remote_io_is_transport_rc(r)) {
                                        remote_io_fail_rc(
                                            c, err, r, "writing command input",
                                            tmo);
                                        goto out;
                                }
                                eof_sent = 1;
                                progress = 1;
                        }
                }
                if (libssh2_channel_eof(ch))
                        break;
                if (!progress && !remote_io_wait(c, NULL, deadline)) {
                        remote_io_fail_rc(c, err, REMOTE_RC_DEADLINE, "command",
                                          tmo);
                        goto out;
                }
        }
        rc = remote_exec_channel_finish(c, &ch, deadline, &status);
        if (rc != 0) {
                remote_io_fail_rc(c, err, rc, "finishing a command", tmo);
                goto out;
        }
        if (out.state != DYNBUF_OK || errb.state != DYNBUF_OK) {
                err_setc(err, ERR_TRANSIENT, ERR_CAUSE_OOM, ENOMEM,
                         "ssh: command output on %s: out of memory", c->name);
                goto out;
        }
        res->exit_status = status;
        res->truncated = out.truncated || errb.truncated;
        res->out = dynbuf_take(&out, &res->out_len);
        res->errout = dynbuf_take(&errb, &res->err_len);
        if (!res->out || !res->errout) {
                remote_result_free(res);
                err_setc(err, ERR_TRANSIENT, ERR_CAUSE_OOM, ENOMEM,
                         "ssh: command output on %s: out of memory", c->name);
                goto out;
        }
        ret = 0;
out:
        remote_exec_channel_discard(c, ch);
        dynbuf_free(&out);
        dynbuf_free(&errb);
        return ret;
}


/* The redacted tail of @p text: trailing blanks dropped, secrets replaced,
 * then cut to @p cap keeping the end (where the error usually is). */
void remote_exec_text_tail(char *dst,
                           size_t cap,
                           const char *text,
                           size_t len) {
        char *copy = strndup(text ? text : "", len);
        if (!copy) {
                snprintf(dst, cap, "%s", "");
                return;
        }
        size_t n = strlen(copy);
        while (n > 0 && (copy[n - 1] == '\n' || copy[n - 1] == ' ' ||
                         copy[n - 1] == '\r'))
                copy[--n] = '\0';
        log_redact_copy(dst, cap, copy, LOG_KEEP_TAIL);
        free(copy);
}

void remote_result_tail(const struct remote_result *res,
                        char *dst,
                        size_t cap) {
        if (res->err_len)
                remote_exec_text_tail(dst, cap, res->errout, res->err_len);
        else
                remote_exec_text_tail(dst, cap, res->out, res->out_len);
}
