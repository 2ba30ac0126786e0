/* remote_io.c - the floor of the remote_*.c files: waiting on a non-blocking
 * libssh2 session within a deadline, and libssh2 rcs turned into errors. See
 * remote_int.h.
 */
#include "remote_int.h"

#include "clock.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#define POLL_SLICE_MS 250 /* re-check state at least this often */

/* ---------------------------------------------------------------------- */
/* time and waiting                                                        */

int64_t remote_io_deadline_in(long timeout_ms, long dflt) {
        return clock_mono_ms() + (timeout_ms > 0 ? timeout_ms : dflt);
}

static void add_pollfd(struct pollfd *p, const struct remote_conn *c) {
        int dir = libssh2_session_block_directions(c->session);

        p->fd = c->sock;
        p->events = POLLIN;
        if (dir & LIBSSH2_SESSION_BLOCK_OUTBOUND)
                p->events |= POLLOUT;
        p->revents = 0;
}

/* Acknowledge what arrives next at once. sshd turns Nagle off only when the
 * first session starts, so its reply to our first channel open sits in its
 * send buffer until our ACK for the previous segment arrives; with Linux's
 * delayed ACK that is ~40 ms per new connection. The kernel clears the flag
 * again on its own, so it is set before every wait. Failure only costs time. */
static void quickack(const struct remote_conn *c) {
#ifdef TCP_QUICKACK
        int one = 1;

        (void)setsockopt(c->sock, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
#else
        (void)c;
#endif
}

/* Wait for a's (and b's, optional) socket, at most one slice and never past
 * the deadline. @returns 1 to try again, 0 when the deadline has passed. */
int remote_io_wait(struct remote_conn *a,
                   struct remote_conn *b,
                   int64_t deadline) {
        struct pollfd pfd[2];
        int n = 0;
        int64_t left = deadline - clock_mono_ms();

        if (left <= 0)
                return 0;
        add_pollfd(&pfd[n++], a);
        quickack(a);
        if (b && b != a) {
                add_pollfd(&pfd[n++], b);
                quickack(b);
        }
        /* EINTR and timeouts both mean: try the operation again. */
        (void)poll(pfd, (nfds_t)n,
                   (int)(left < POLL_SLICE_MS ? left : POLL_SLICE_MS));
        return 1;
}

/* ---------------------------------------------------------------------- */
/* errors                                                                  */

/* Give up on the session: from now on every socket operation fails at once,
 * so freeing channels, SFTP and the session cannot wait on the peer. */
void remote_io_mark_broken(struct remote_conn *c) {
        if (c->broken)
                return;
        c->broken = 1;
        if (c->sock >= 0)
                shutdown(c->sock, SHUT_RDWR);
}

/* The one place that maps libssh2 rcs to a kind. */
enum err_kind remote_io_classify(int rc) {
        switch (rc) {
        case REMOTE_RC_DEADLINE:
        case LIBSSH2_ERROR_EAGAIN:
        case LIBSSH2_ERROR_SOCKET_NONE:
        case LIBSSH2_ERROR_BANNER_RECV:
        case LIBSSH2_ERROR_BANNER_SEND:
        case LIBSSH2_ERROR_SOCKET_SEND:
        case LIBSSH2_ERROR_SOCKET_RECV:
        case LIBSSH2_ERROR_SOCKET_DISCONNECT:
        case LIBSSH2_ERROR_SOCKET_TIMEOUT:
        case LIBSSH2_ERROR_TIMEOUT:
        case LIBSSH2_ERROR_ALLOC:
        case LIBSSH2_ERROR_CHANNEL_FAILURE: /* e.g. sshd MaxSessions */
                return ERR_TRANSIENT;
        default:
                return ERR_PERMANENT; /* unknown means permanent */
        }
}

/* Did the transport itself fail (so the session is unusable)? */
int remote_io_is_transport_rc(int rc) {
        return rc == LIBSSH2_ERROR_SOCKET_NONE ||
               rc == LIBSSH2_ERROR_SOCKET_SEND ||
               rc == LIBSSH2_ERROR_SOCKET_RECV ||
               rc == LIBSSH2_ERROR_SOCKET_DISCONNECT ||
               rc == LIBSSH2_ERROR_SOCKET_TIMEOUT ||
               rc == LIBSSH2_ERROR_BANNER_RECV ||
               rc == LIBSSH2_ERROR_BANNER_SEND;
}

const char *remote_io_last_msg(const struct remote_conn *c) {
        char *msg = NULL;
        int len = 0;

        if (!c->session)
                return "no session";
        libssh2_session_last_error(c->session, &msg, &len, 0);
        return msg && *msg ? msg : "unknown error";
}

/* Record a failed libssh2 call during @p what; marks transport failures. */
int remote_io_fail_rc(struct remote_conn *c,
                      struct err *err,
                      int rc,
                      const char *what,
                      long timeout_ms) {
        if (rc == REMOTE_RC_DEADLINE)
                return err_setc(err, ERR_TRANSIENT, ERR_CAUSE_DEADLINE,
                                LIBSSH2_ERROR_TIMEOUT,
                                "ssh: %s on %s timed out after %ld ms", what,
                                c->name, timeout_ms);
        if (remote_io_is_transport_rc(rc))
                remote_io_mark_broken(c);
        return err_set(err, remote_io_classify(rc), rc,
                       "ssh: %s on %s: %s (libssh2 %d)", what, c->name,
                       remote_io_last_msg(c), rc);
}

int remote_io_fail_broken(struct remote_conn *c, struct err *err) {
        return err_set(err, ERR_TRANSIENT, LIBSSH2_ERROR_SOCKET_DISCONNECT,
                       "ssh: connection to %s is unusable after an earlier "
                       "failure; reconnect",
                       c->name);
}
