/* remote_int.h - what the remote_*.c files share; not for anyone else (the
 * public contract is remote.h).
 *
 *   remote_conn.c  connecting, the host-key check, login; closing;
 *                  remote_connect_until()
 *   remote_exec.c  one command on a channel: remote_run() and its result;
 *                  the channel helpers
 *   remote_pipe.c  remote_pipe(): streaming between two hosts
 *   remote_sftp.c  remote_upload(): an atomic write with SFTP
 *   remote_io.c    waiting on the socket within a deadline; libssh2 rcs
 *                  turned into errors (the floor of the four above)
 *
 * Calls go one way: remote_pipe.c and remote_sftp.c -> remote_exec.c ->
 * remote_io.c, and remote_conn.c -> remote_io.c (tests/unit/test_lib_layers.py
 * checks it).
 *
 * DESIGN
 * ------
 * Every libssh2 session runs non-blocking. A libssh2 call that would block
 * returns LIBSSH2_ERROR_EAGAIN; we then poll() the socket, in the directions
 * libssh2_session_block_directions() names plus always POLLIN, for at most
 * POLL_SLICE_MS and at most until the operation's deadline, and call again.
 * Loops that serve several streams (stdout, stderr, stdin; or two channels in
 * remote_pipe) try every stream in a round and poll only after a round in
 * which nothing moved, because a read on one channel can pull another
 * channel's data off the socket into libssh2's queue.
 *
 * After a failure in the middle of an operation, libssh2's per-object state
 * machines may be half way through a packet; cleaning up (channel close, SFTP
 * shutdown) gets a short grace period of its own. If that cleanup does not
 * finish, or the transport failed, the connection is marked broken: later
 * operations fail at once (ERR_TRANSIENT) and remote_close() shuts the socket
 * down before freeing the session, so that nothing can block there.
 */
#ifndef THOPTER_REMOTE_INT_H
#define THOPTER_REMOTE_INT_H

#include "remote.h"

#include "dynbuf.h"

#include <libssh2.h>

#define REMOTE_GRACE_MS    1000 /* SFTP cleanup after a failure or timeout */
#define REMOTE_IO_CHUNK    32768
#define REMOTE_RC_DEADLINE (-1000) /* our own "deadline passed" rc */

/* One connection (remote.h). Made by remote_conn.c; the fields are the
 * remote_*.c files' alone. */
struct remote_conn {
        LIBSSH2_SESSION *session;
        int sock;
        int broken;     /* transport failed or cleanup did not finish */
        char name[300]; /* HOST:PORT, for messages */
};

/* remote_io.c */

/* Now plus @p timeout_ms, or plus @p dflt when @p timeout_ms <= 0. */
int64_t remote_io_deadline_in(long timeout_ms, long dflt);

/* One wait on a's (and b's, optional) socket; 0 once the deadline passed. */
int remote_io_wait(struct remote_conn *a,
                   struct remote_conn *b,
                   int64_t deadline);

/* Call a libssh2 function returning int until it stops saying EAGAIN. */
#define REMOTE_NB_CALL(rc, c, deadline, call)                                  \
        do {                                                                   \
                (rc) = (call);                                                 \
                if ((rc) != LIBSSH2_ERROR_EAGAIN)                              \
                        break;                                                 \
                if (!remote_io_wait((c), NULL, (deadline))) {                  \
                        (rc) = REMOTE_RC_DEADLINE;                             \
                        break;                                                 \
                }                                                              \
        } while (1)

/* Give up on the session (see DESIGN). */
void remote_io_mark_broken(struct remote_conn *c);

/* The kind of a libssh2 rc (REMOTE_RC_DEADLINE included). */
enum err_kind remote_io_classify(int rc);

/* Did the transport itself fail (so the session is unusable)? */
int remote_io_is_transport_rc(int rc);

/* libssh2's message for the session's last error. */
const char *remote_io_last_msg(const struct remote_conn *c);

/* Record a failed libssh2 call during @p what; marks transport failures.
 * Always -1. */
int remote_io_fail_rc(struct remote_conn *c,
                      struct err *err,
                      int rc,
                      const char *what,
                      long timeout_ms);

/* The error of an operation on a broken connection. Always -1. */
int remote_io_fail_broken(struct remote_conn *c, struct err *err);

/* remote_exec.c */

/* Open a channel and exec @p cmd on it. @returns 0 (*out set), or an rc. */
int remote_exec_channel_start(struct remote_conn *c,
                              const char *cmd,
                              int64_t deadline,
                              LIBSSH2_CHANNEL **out);

/* Close, read the exit status and free a channel at EOF; *ch is NULL after
 * success. @returns 0, or an rc. */
int remote_exec_channel_finish(struct remote_conn *c,
                               LIBSSH2_CHANNEL **ch,
                               int64_t deadline,
                               int *status);

/* Close and free a channel within a grace period; NULL ok. */
void remote_exec_channel_discard(struct remote_conn *c, LIBSSH2_CHANNEL *ch);

/* Read what is available of one stream into @p b (optional: discard).
 * @returns 1 if bytes moved, 0 if not, or a libssh2 rc (< 0). */
int remote_exec_drain(LIBSSH2_CHANNEL *ch, int stream, struct dynbuf *b);

/* The redacted tail of remote text, for a message (remote_result_tail()). */
void remote_exec_text_tail(char *dst, size_t cap, const char *text, size_t len);

#endif
