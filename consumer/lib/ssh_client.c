/* ssh_client.c - libssh2 sessions with deadlines; see ssh_client.h.
 *
 * DESIGN
 * ------
 * Every libssh2 session runs non-blocking. A libssh2 call that would block
 * returns LIBSSH2_ERROR_EAGAIN; we then poll() the socket, in the directions
 * libssh2_session_block_directions() names plus always POLLIN, for at most
 * POLL_SLICE_MS and at most until the operation's deadline, and call again.
 * Loops that serve several streams (stdout, stderr, stdin; or two channels in
 * ssh_pipe) try every stream in a round and poll only after a round in which
 * nothing moved, because a read on one channel can pull another channel's
 * data off the socket into libssh2's queue.
 *
 * After a failure in the middle of an operation, libssh2's per-object state
 * machines may be half way through a packet; cleaning up (channel close, SFTP
 * shutdown) gets a short grace period of its own. If that cleanup does not
 * finish, or the transport failed, the connection is marked broken: later
 * operations fail at once (ERR_TRANSIENT) and ssh_close() shuts the socket
 * down before freeing the session, so that nothing can block there.
 *
 * The host key is checked before authentication, so a wrong host never sees
 * our key signature, let alone a command.
 */
#include "ssh_client.h"

#include "clock.h"
#include "dynbuf.h"
#include "log.h"
#include "metrics.h"
#include "secret_file.h"
#include "shell_quote.h"
#include "known_hosts.h"
#include "strfmt.h"

#include <libssh2.h>
#include <libssh2_sftp.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#define GRACE_MS 1000 /* SFTP cleanup after a failure or timeout */
/* Closing a channel whose command still runs: OpenSSH answers our CLOSE
 * only when the command has exited, so do not wait long for it. */
#define CHAN_GRACE_MS 250
#define CLOSE_MS      500 /* polite disconnect in ssh_close() */
#define POLL_SLICE_MS 250 /* re-check state at least this often */
#define IO_CHUNK      32768
#define PIPE_ERR_CAP  (16 * 1024) /* stderr kept per command in ssh_pipe */
#define RC_DEADLINE   (-1000)     /* our own "deadline passed" rc */

#define COMPONENT "ssh"
/* While ssh_connect_until() waits, a note this often. */
#define SSH_WAIT_NOTE_MS 5000

struct ssh_conn {
        LIBSSH2_SESSION *session;
        int sock;
        int broken;     /* transport failed or cleanup did not finish */
        char name[300]; /* HOST:PORT, for messages */
};

/* ---------------------------------------------------------------------- */
/* library init, metrics                                                   */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc;

static void init_lib(void) {
        /* libssh2_init is not thread-safe; once per process. */
        init_rc = libssh2_init(0);
}

static void count_connection(int ok) {
        metrics_inc(M_SSH_CONNECTIONS,
                    ok ? "result=\"ok\"" : "result=\"error\"", 1);
}

static void count_command(void) {
        metrics_inc(M_SSH_COMMANDS, "", 1);
}

/* ---------------------------------------------------------------------- */
/* time and waiting                                                        */

static int64_t deadline_in(long timeout_ms, long dflt) {
        return clock_mono_ms() + (timeout_ms > 0 ? timeout_ms : dflt);
}

static void add_pollfd(struct pollfd *p, const struct ssh_conn *c) {
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
static void quickack(const struct ssh_conn *c) {
#ifdef TCP_QUICKACK
        int one = 1;

        (void)setsockopt(c->sock, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
#else
        (void)c;
#endif
}

/* Wait for a's (and b's, optional) socket, at most one slice and never past
 * the deadline. @returns 1 to try again, 0 when the deadline has passed. */
static int wait_io(struct ssh_conn *a, struct ssh_conn *b, int64_t deadline) {
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

/* Call a libssh2 function returning int until it stops saying EAGAIN. */
#define NB_CALL(rc, c, deadline, call)                                         \
        do {                                                                   \
                (rc) = (call);                                                 \
                if ((rc) != LIBSSH2_ERROR_EAGAIN)                              \
                        break;                                                 \
                if (!wait_io((c), NULL, (deadline))) {                         \
                        (rc) = RC_DEADLINE;                                    \
                        break;                                                 \
                }                                                              \
        } while (1)

/* ---------------------------------------------------------------------- */
/* errors                                                                  */

/* Give up on the session: from now on every socket operation fails at once,
 * so freeing channels, SFTP and the session cannot wait on the peer. */
static void mark_broken(struct ssh_conn *c) {
        if (c->broken)
                return;
        c->broken = 1;
        if (c->sock >= 0)
                shutdown(c->sock, SHUT_RDWR);
}

/* The one place that maps libssh2 rcs to a kind. */
static enum err_kind classify(int rc) {
        switch (rc) {
        case RC_DEADLINE:
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
static int is_transport_rc(int rc) {
        return rc == LIBSSH2_ERROR_SOCKET_NONE ||
               rc == LIBSSH2_ERROR_SOCKET_SEND ||
               rc == LIBSSH2_ERROR_SOCKET_RECV ||
               rc == LIBSSH2_ERROR_SOCKET_DISCONNECT ||
               rc == LIBSSH2_ERROR_SOCKET_TIMEOUT ||
               rc == LIBSSH2_ERROR_BANNER_RECV ||
               rc == LIBSSH2_ERROR_BANNER_SEND;
}

static const char *last_msg(const struct ssh_conn *c) {
        char *msg = NULL;
        int len = 0;

        if (!c->session)
                return "no session";
        libssh2_session_last_error(c->session, &msg, &len, 0);
        return msg && *msg ? msg : "unknown error";
}

/* Record a failed libssh2 call during @p what; marks transport failures. */
static int fail_rc(struct ssh_conn *c,
                   struct err *err,
                   int rc,
                   const char *what,
                   long timeout_ms) {
        if (rc == RC_DEADLINE)
                return err_setc(err, ERR_TRANSIENT, ERR_CAUSE_DEADLINE,
                                LIBSSH2_ERROR_TIMEOUT,
                                "ssh: %s on %s timed out after %ld ms", what,
                                c->name, timeout_ms);
        if (is_transport_rc(rc))
                mark_broken(c);
        return err_set(err, classify(rc), rc, "ssh: %s on %s: %s (libssh2 %d)",
                       what, c->name, last_msg(c), rc);
}

static int fail_broken(struct ssh_conn *c, struct err *err) {
        return err_set(err, ERR_TRANSIENT, LIBSSH2_ERROR_SOCKET_DISCONNECT,
                       "ssh: connection to %s is unusable after an earlier "
                       "failure; reconnect",
                       c->name);
}

/* ---------------------------------------------------------------------- */
/* connecting                                                              */

static int tcp_connect(struct ssh_conn *c,
                       const char *host,
                       int port,
                       int64_t deadline,
                       long timeout_ms,
                       struct err *err) {
        struct addrinfo hints = {0}, *res = NULL;
        char portstr[16];
        int last_errno = ECONNREFUSED, gai, fd = -1;

        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        snprintf(portstr, sizeof(portstr), "%d", port);
        /* getaddrinfo has no timeout of its own; fly's 6PN DNS answers
         * locally, so this is accepted. */
        gai = getaddrinfo(host, portstr, &hints, &res);
        if (gai != 0)
                return err_set(err, ERR_TRANSIENT, gai, "ssh: resolve %s: %s",
                               host, gai_strerror(gai));
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
                int one = 1, soerr = 0;
                socklen_t sl = sizeof(soerr);

                fd = socket(ai->ai_family,
                            ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                            ai->ai_protocol);
                if (fd < 0) {
                        last_errno = errno;
                        continue;
                }
                (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
                                 sizeof(one));
                if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
                        break;
                if (errno != EINPROGRESS) {
                        last_errno = errno;
                        close(fd);
                        fd = -1;
                        continue;
                }
                for (;;) {
                        struct pollfd p = {.fd = fd, .events = POLLOUT};
                        int64_t left = deadline - clock_mono_ms();
                        int pr;

                        if (left <= 0) {
                                freeaddrinfo(res);
                                close(fd);
                                return err_setc(err, ERR_TRANSIENT,
                                                ERR_CAUSE_DEADLINE, ETIMEDOUT,
                                                "ssh: connect to %s timed out "
                                                "after %ld ms",
                                                c->name, timeout_ms);
                        }
                        pr = poll(&p, 1, (int)left);
                        if (pr > 0)
                                break;
                        if (pr < 0 && errno != EINTR) {
                                soerr = errno;
                                break;
                        }
                }
                if (soerr == 0 &&
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
                        soerr = errno;
                if (soerr == 0)
                        break;
                last_errno = soerr;
                close(fd);
                fd = -1;
        }
        freeaddrinfo(res);
        if (fd < 0)
                return err_set(err, ERR_TRANSIENT, last_errno,
                               "ssh: connect to %s: %s", c->name,
                               strerror(last_errno));
        c->sock = fd;
        return 0;
}

/* Accepts the server's key when it is opts->host_key (the key made for this
 * machine) or THOPTER_SSH_KNOWN_HOSTS lists it for host or [host]:port; an
 * @revoked line for it refuses it whatever else says (known_hosts.h). */
static int check_host_key(struct ssh_conn *c,
                          const struct ssh_opts *opts,
                          int port,
                          struct err *err) {
        enum known_hosts_result found = KNOWN_HOSTS_NOT_FOUND;
        const unsigned char *key;
        size_t klen = 0;
        int ktype = 0;

        key = (const unsigned char *)libssh2_session_hostkey(c->session, &klen,
                                                             &ktype);
        if (!key)
                return err_set(err, ERR_PERMANENT, 0,
                               "ssh: %s sent no host key", c->name);
        if (opts->known_hosts_path) {
                char *text = secret_file_read(opts->known_hosts_path,
                                              "THOPTER_SSH_KNOWN_HOSTS", err);
                if (!text)
                        return -1;
                found = known_hosts_check(text, strlen(text), opts->host, port,
                                          key, klen);
                free(text);
        }
        if (found == KNOWN_HOSTS_REVOKED)
                return err_setc(err, ERR_PERMANENT, ERR_CAUSE_HOST_KEY, 0,
                                "ssh: host key for %s is marked @revoked in "
                                "THOPTER_SSH_KNOWN_HOSTS",
                                c->name);
        if (opts->host_key && opts->host_key_len == klen &&
            memcmp(opts->host_key, key, klen) == 0)
                return 0; /* the key made for this machine */
        if (found == KNOWN_HOSTS_MATCH)
                return 0;
        if (!opts->known_hosts_path && !opts->host_key)
                return 0; /* insecure, checked by the caller */
        if (!opts->known_hosts_path)
                return err_setc(err, ERR_PERMANENT, ERR_CAUSE_HOST_KEY, 0,
                                "ssh: host key for %s is not the one made "
                                "for this machine",
                                c->name);
        return err_setc(
            err, ERR_PERMANENT, ERR_CAUSE_HOST_KEY, 0,
            "ssh: host key for %s does not match "
            "THOPTER_SSH_KNOWN_HOSTS (%s)%s",
            c->name,
            found == KNOWN_HOSTS_MISMATCH ? "different key"
                                          : "no entry for the host",
            opts->host_key ? " and is not the one made for this machine" : "");
}

/* Why a connect attempt failed, for ssh_wait_ready's retry decision. */
enum attempt_fail {
        ATTEMPT_RETRY = 0, /* transient, or login refused */
        ATTEMPT_FATAL,     /* host key, local files, bad options */
};

static void conn_free(struct ssh_conn *c);

static struct ssh_conn *connect_once(const struct ssh_opts *opts,
                                     struct err *err,
                                     enum attempt_fail *why) {
        struct ssh_conn *c = NULL;
        char *pubkey = NULL;
        long timeout_ms = opts->connect_timeout_ms > 0
                              ? opts->connect_timeout_ms
                              : SSH_CONNECT_TIMEOUT_DEFAULT_MS;
        int64_t start = clock_mono_ms();
        int64_t deadline = start + timeout_ms;
        int port = opts->port > 0 ? opts->port : 22;
        int rc;

        *why = ATTEMPT_FATAL;
        pthread_once(&init_once, init_lib);
        if (init_rc != 0) {
                err_set(err, ERR_PERMANENT, init_rc,
                        "ssh: libssh2_init failed");
                goto fail;
        }
        if (!opts->host || !*opts->host || !opts->user || !opts->key_path) {
                err_set(err, ERR_PERMANENT, EINVAL,
                        "ssh: host, user and key are required");
                goto fail;
        }
        if (!opts->known_hosts_path && !opts->host_key && !opts->insecure) {
                err_set(err, ERR_PERMANENT, EINVAL,
                        "ssh: THOPTER_SSH_KNOWN_HOSTS is not set and "
                        "THOPTER_SSH_INSECURE is not 1");
                goto fail;
        }
        if (access(opts->key_path, R_OK) != 0) {
                err_set(err, ERR_PERMANENT, errno,
                        "ssh: cannot read THOPTER_SSH_KEY %s: %s",
                        opts->key_path, strerror(errno));
                goto fail;
        }
        c = calloc(1, sizeof(*c));
        if (!c) {
                err_setc(err, ERR_TRANSIENT, ERR_CAUSE_OOM, ENOMEM,
                         "ssh: out of memory");
                *why = ATTEMPT_RETRY;
                goto fail;
        }
        c->sock = -1;
        snprintf(c->name, sizeof(c->name),
                 strchr(opts->host, ':') ? "[%s]:%d" : "%s:%d", opts->host,
                 port);

        *why = ATTEMPT_RETRY;
        if (tcp_connect(c, opts->host, port, deadline, timeout_ms, err) == -1)
                goto fail;
        c->session = libssh2_session_init();
        if (!c->session) {
                err_set(err, ERR_TRANSIENT, LIBSSH2_ERROR_ALLOC,
                        "ssh: session init failed");
                goto fail;
        }
        libssh2_session_set_blocking(c->session, 0);
        NB_CALL(rc, c, deadline,
                libssh2_session_handshake(c->session, c->sock));
        if (rc != 0) {
                /* Anything in the handshake is the connection's fault until
                 * proven otherwise: a half-started sshd drops connections. */
                if (rc == RC_DEADLINE)
                        err_setc(
                            err, ERR_TRANSIENT, ERR_CAUSE_DEADLINE,
                            LIBSSH2_ERROR_TIMEOUT,
                            "ssh: handshake with %s timed out after %ld ms",
                            c->name, timeout_ms);
                else
                        err_set(err, classify(rc), rc,
                                "ssh: handshake with %s: %s (libssh2 %d)",
                                c->name, last_msg(c), rc);
                goto fail;
        }

        *why = ATTEMPT_FATAL;
        if (check_host_key(c, opts, port, err) == -1)
                goto fail;

        *why = ATTEMPT_RETRY;
        pubkey = strfmt("%s.pub", opts->key_path);
        if (!pubkey) {
                err_oom(err, "ssh");
                goto fail;
        }
        /* NULL lets libssh2 derive the public key from the private one
         * (works for ed25519 and ECDSA in the OpenSSH format). */
        NB_CALL(rc, c, deadline,
                libssh2_userauth_publickey_fromfile_ex(
                    c->session, opts->user, (unsigned)strlen(opts->user),
                    access(pubkey, R_OK) == 0 ? pubkey : NULL, opts->key_path,
                    NULL));
        if (rc != 0) {
                if (rc == RC_DEADLINE) {
                        err_setc(err, ERR_TRANSIENT, ERR_CAUSE_DEADLINE,
                                 LIBSSH2_ERROR_TIMEOUT,
                                 "ssh: login to %s timed out after %ld ms",
                                 c->name, timeout_ms);
                } else if (rc == LIBSSH2_ERROR_AUTHENTICATION_FAILED ||
                           rc == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED) {
                        err_setc(err, ERR_PERMANENT, ERR_CAUSE_LOGIN, rc,
                                 "ssh: login as %s to %s refused with key %s "
                                 "(libssh2 %d)",
                                 opts->user, c->name, opts->key_path, rc);
                } else {
                        if (rc == LIBSSH2_ERROR_FILE)
                                *why = ATTEMPT_FATAL;
                        err_set(err, classify(rc), rc,
                                "ssh: login as %s to %s: %s (libssh2 %d)",
                                opts->user, c->name, last_msg(c), rc);
                }
                goto fail;
        }
        free(pubkey);
        count_connection(1);
        log_debug(COMPONENT, "connected to %s as %s in %lld ms", c->name,
                  opts->user, (long long)(clock_mono_ms() - start));
        return c;
fail:
        free(pubkey);
        count_connection(0);
        if (c) {
                mark_broken(c); /* no polite disconnect on a failed attempt */
                conn_free(c);
        }
        return NULL;
}

struct ssh_conn *ssh_connect(const struct ssh_opts *opts, struct err *err) {
        enum attempt_fail why;

        return connect_once(opts, err, &why);
}

static void conn_free(struct ssh_conn *c) {
        int64_t dl;
        int rc;

        if (c->session) {
                if (!c->broken) {
                        dl = clock_mono_ms() + CLOSE_MS;
                        NB_CALL(
                            rc, c, dl,
                            libssh2_session_disconnect(c->session, "closing"));
                }
                mark_broken(c);
                dl = clock_mono_ms() + GRACE_MS;
                NB_CALL(rc, c, dl, libssh2_session_free(c->session));
                if (rc != 0)
                        log_warn(COMPONENT,
                                 "could not free the session to %s (rc %d)",
                                 c->name, rc);
                c->session = NULL;
        }
        if (c->sock >= 0)
                close(c->sock);
        free(c);
}

void ssh_close(struct ssh_conn *c) {
        if (c)
                conn_free(c);
}


/* ---------------------------------------------------------------------- */
/* channels                                                                */

void ssh_result_free(struct ssh_result *r) {
        if (!r)
                return;
        free(r->out);
        free(r->errout);
        memset(r, 0, sizeof(*r));
}

static LIBSSH2_CHANNEL *
channel_open(struct ssh_conn *c, int64_t deadline, int *rc) {
        for (;;) {
                LIBSSH2_CHANNEL *ch = libssh2_channel_open_session(c->session);

                if (ch)
                        return ch;
                *rc = libssh2_session_last_errno(c->session);
                if (*rc != LIBSSH2_ERROR_EAGAIN)
                        return NULL;
                if (!wait_io(c, NULL, deadline)) {
                        *rc = RC_DEADLINE;
                        return NULL;
                }
        }
}

/* Close and free a channel within a grace period. If the peer does not
 * answer in time, the connection is given up (mark_broken), after which
 * freeing cannot block. */
static void channel_discard(struct ssh_conn *c, LIBSSH2_CHANNEL *ch) {
        int64_t dl = clock_mono_ms() + CHAN_GRACE_MS;
        int rc;

        if (!ch)
                return;
        if (!c->broken) {
                NB_CALL(rc, c, dl, libssh2_channel_close(ch));
                if (rc != 0)
                        mark_broken(c);
        }
        dl = clock_mono_ms() + GRACE_MS;
        NB_CALL(rc, c, dl, libssh2_channel_free(ch));
        if (rc == RC_DEADLINE) {
                mark_broken(c);
                dl = clock_mono_ms() + GRACE_MS;
                NB_CALL(rc, c, dl, libssh2_channel_free(ch));
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
static int channel_exit_status(struct ssh_conn *c, LIBSSH2_CHANNEL *ch) {
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
 * free. @returns 0, or an rc (RC_DEADLINE included). */
static int channel_finish(struct ssh_conn *c,
                          LIBSSH2_CHANNEL **ch,
                          int64_t deadline,
                          int *status) {
        int rc;

        NB_CALL(rc, c, deadline, libssh2_channel_close(*ch));
        if (rc != 0)
                return rc;
        *status = channel_exit_status(c, *ch);
        NB_CALL(rc, c, deadline, libssh2_channel_free(*ch));
        if (rc == 0)
                *ch = NULL;
        return rc;
}

static int channel_start(struct ssh_conn *c,
                         const char *cmd,
                         int64_t deadline,
                         LIBSSH2_CHANNEL **out) {
        int rc = 0;
        LIBSSH2_CHANNEL *ch = channel_open(c, deadline, &rc);

        *out = NULL;
        if (!ch)
                return rc;
        count_command();
        NB_CALL(rc, c, deadline, libssh2_channel_exec(ch, cmd));
        if (rc != 0) {
                channel_discard(c, ch);
                return rc;
        }
        *out = ch;
        return 0;
}

/* Read everything available from one stream of @p ch into @p b.
 * @returns 1 if bytes moved, 0 if not, or a libssh2 error rc (< 0). */
static int drain(LIBSSH2_CHANNEL *ch, int stream, struct dynbuf *b) {
        char buf[IO_CHUNK];
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

int ssh_run(struct ssh_conn *c,
            const char *cmd,
            const void *stdin_data,
            size_t stdin_len,
            long timeout_ms,
            struct ssh_result *res,
            struct err *err) {
        struct dynbuf out, errb;
        LIBSSH2_CHANNEL *ch = NULL;
        long tmo = timeout_ms > 0 ? timeout_ms : SSH_OP_TIMEOUT_DEFAULT_MS;
        int64_t deadline = deadline_in(timeout_ms, SSH_OP_TIMEOUT_DEFAULT_MS);
        const char *data = stdin_data;
        size_t off = 0;
        int eof_sent = 0, status = -1, rc, ret = -1;

        dynbuf_init(&out, SSH_OUTPUT_CAP, DYNBUF_KEEP_TAIL);
        dynbuf_init(&errb, SSH_OUTPUT_CAP, DYNBUF_KEEP_TAIL);
        memset(res, 0, sizeof(*res));
        if (c->broken)
                return fail_broken(c, err);
        if (!data)
                stdin_len = 0;
        rc = channel_start(c, cmd, deadline, &ch);
        if (rc != 0) {
                fail_rc(c, err, rc, "starting a command", tmo);
                goto out;
        }
        for (;;) {
                int progress = 0, r;

                r = drain(ch, 0, &out);
                if (r < 0) {
                        fail_rc(c, err, r, "reading command output", tmo);
                        goto out;
                }
                progress |= r;
                r = drain(ch, SSH_EXTENDED_DATA_STDERR, &errb);
                if (r < 0) {
                        fail_rc(c, err, r, "reading command output", tmo);
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
                                if (is_transport_rc((int)n)) {
                                        fail_rc(c, err, (int)n,
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
                                if (is_transport_rc(r)) {
                                        fail_rc(c, err, r,
                                                "writing command input", tmo);
                                        goto out;
                                }
                                eof_sent = 1;
                                progress = 1;
                        }
                }
                if (libssh2_channel_eof(ch))
                        break;
                if (!progress && !wait_io(c, NULL, deadline)) {
                        fail_rc(c, err, RC_DEADLINE, "command", tmo);
                        goto out;
                }
        }
        rc = channel_finish(c, &ch, deadline, &status);
        if (rc != 0) {
                fail_rc(c, err, rc, "finishing a command", tmo);
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
                ssh_result_free(res);
                err_setc(err, ERR_TRANSIENT, ERR_CAUSE_OOM, ENOMEM,
                         "ssh: command output on %s: out of memory", c->name);
                goto out;
        }
        ret = 0;
out:
        channel_discard(c, ch);
        dynbuf_free(&out);
        dynbuf_free(&errb);
        return ret;
}

/* ---------------------------------------------------------------------- */
/* ssh_pipe                                                                */

struct pipe_end {
        struct ssh_conn *c;
        LIBSSH2_CHANNEL *ch;
        struct dynbuf errb;
        int remote_eof; /* all output read and EOF seen */
        int finished;   /* exit status known */
        int status;
};

/* The redacted tail of @p text: trailing blanks dropped, secrets replaced,
 * then cut to @p cap keeping the end (where the error usually is). */
static void text_tail(char *dst, size_t cap, const char *text, size_t len) {
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

void ssh_result_tail(const struct ssh_result *res, char *dst, size_t cap) {
        if (res->err_len)
                text_tail(dst, cap, res->errout, res->err_len);
        else
                text_tail(dst, cap, res->out, res->out_len);
}

/* Failure of a command in a pipe, with its stderr tail, redacted. */
static int fail_status(struct pipe_end *e, const char *which, struct err *err) {
        char tail[160];

        text_tail(tail, sizeof(tail), e->errb.p, e->errb.len);
        return err_setc(err, ERR_PERMANENT, ERR_CAUSE_REMOTE_EXIT, e->status,
                        "ssh: pipe: %s command on %s exited %d%s%s", which,
                        e->c->name, e->status, tail[0] ? ": " : "", tail);
}

int ssh_pipe(struct ssh_conn *src,
             const char *src_cmd,
             struct ssh_conn *dst,
             const char *dst_cmd,
             long timeout_ms,
             struct err *err) {
        struct pipe_end s = {.c = src}, d = {.c = dst};
        long tmo = timeout_ms > 0 ? timeout_ms : SSH_OP_TIMEOUT_DEFAULT_MS;
        int64_t deadline = deadline_in(timeout_ms, SSH_OP_TIMEOUT_DEFAULT_MS);
        int64_t src_grace = 0;
        char *buf = NULL;
        size_t blen = 0, boff = 0;
        int dst_eof_sent = 0, dst_stdin_closed = 0, rc, ret = -1;

        dynbuf_init(&s.errb, PIPE_ERR_CAP, DYNBUF_KEEP_TAIL);
        dynbuf_init(&d.errb, PIPE_ERR_CAP, DYNBUF_KEEP_TAIL);

        if (src->broken)
                return fail_broken(src, err);
        if (dst->broken)
                return fail_broken(dst, err);
        buf = malloc(IO_CHUNK);
        if (!buf)
                return err_setc(err, ERR_TRANSIENT, ERR_CAUSE_OOM, ENOMEM,
                                "ssh: pipe: out of memory");
        /* Destination first: it must be ready to read before data flows. */
        rc = channel_start(dst, dst_cmd, deadline, &d.ch);
        if (rc != 0) {
                fail_rc(dst, err, rc, "starting the pipe destination", tmo);
                goto out;
        }
        rc = channel_start(src, src_cmd, deadline, &s.ch);
        if (rc != 0) {
                fail_rc(src, err, rc, "starting the pipe source", tmo);
                goto out;
        }
        NB_CALL(rc, src, deadline, libssh2_channel_send_eof(s.ch));
        if (rc != 0) {
                fail_rc(src, err, rc, "starting the pipe source", tmo);
                goto out;
        }
        for (;;) {
                int progress = 0, r;

                /* source stdout -> buffer (only when the buffer is empty) */
                if (!s.remote_eof && boff == blen) {
                        ssize_t n = libssh2_channel_read(s.ch, buf, IO_CHUNK);
                        if (n > 0) {
                                blen = (size_t)n;
                                boff = 0;
                                progress = 1;
                                if (dst_stdin_closed)
                                        boff = blen; /* nobody wants it */
                        } else if (n < 0 && n != LIBSSH2_ERROR_EAGAIN) {
                                fail_rc(src, err, (int)n,
                                        "reading the pipe source", tmo);
                                goto out;
                        }
                }
                r = drain(s.ch, SSH_EXTENDED_DATA_STDERR, &s.errb);
                if (r < 0) {
                        fail_rc(src, err, r, "reading the pipe source", tmo);
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
                                if (is_transport_rc((int)n)) {
                                        fail_rc(dst, err, (int)n,
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
                                if (is_transport_rc(r)) {
                                        fail_rc(dst, err, r,
                                                "writing the pipe destination",
                                                tmo);
                                        goto out;
                                }
                                dst_eof_sent = 1;
                                progress = 1;
                        }
                }

                /* destination output: stdout is not wanted, stderr is kept */
                r = drain(d.ch, 0, NULL);
                if (r < 0) {
                        fail_rc(dst, err, r, "reading the pipe destination",
                                tmo);
                        goto out;
                }
                progress |= r;
                r = drain(d.ch, SSH_EXTENDED_DATA_STDERR, &d.errb);
                if (r < 0) {
                        fail_rc(dst, err, r, "reading the pipe destination",
                                tmo);
                        goto out;
                }
                progress |= r;
                if (!d.remote_eof && libssh2_channel_eof(d.ch)) {
                        d.remote_eof = 1;
                        /* The destination is done early: give the source a
                         * short grace to finish on its own, then stop. */
                        if (!s.remote_eof)
                                src_grace = clock_mono_ms() + GRACE_MS;
                        dst_stdin_closed = 1;
                        boff = blen;
                }
                if (s.remote_eof && d.remote_eof)
                        break;
                if (d.remote_eof && src_grace && clock_mono_ms() >= src_grace)
                        break;
                if (!progress &&
                    !wait_io(src, dst,
                             src_grace && src_grace < deadline ? src_grace
                                                               : deadline)) {
                        if (src_grace && clock_mono_ms() < deadline)
                                break;
                        fail_rc(dst, err, RC_DEADLINE, "pipe", tmo);
                        goto out;
                }
        }
        rc = channel_finish(dst, &d.ch, deadline, &d.status);
        if (rc != 0) {
                fail_rc(dst, err, rc, "finishing the pipe destination", tmo);
                goto out;
        }
        d.finished = 1;
        if (s.remote_eof) {
                rc = channel_finish(src, &s.ch, deadline, &s.status);
                if (rc != 0) {
                        fail_rc(src, err, rc, "finishing the pipe source", tmo);
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
        channel_discard(src, s.ch);
        channel_discard(dst, d.ch);
        dynbuf_free(&s.errb);
        dynbuf_free(&d.errb);
        free(buf);
        return ret;
}

/* ---------------------------------------------------------------------- */
/* ssh_upload                                                              */

static const char *sftp_status_name(unsigned long st) {
        switch (st) {
        case LIBSSH2_FX_NO_SUCH_FILE:
                return "no such file";
        case LIBSSH2_FX_PERMISSION_DENIED:
                return "permission denied";
        case LIBSSH2_FX_FAILURE:
                return "failure";
        case LIBSSH2_FX_FILE_ALREADY_EXISTS:
                return "file exists";
        case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM:
                return "no space left";
        case LIBSSH2_FX_QUOTA_EXCEEDED:
                return "quota exceeded";
        case LIBSSH2_FX_NO_SUCH_PATH:
                return "no such path";
        default:
                return "error";
        }
}

static int fail_sftp(struct ssh_conn *c,
                     LIBSSH2_SFTP *sftp,
                     struct err *err,
                     int rc,
                     const char *what,
                     const char *path,
                     long tmo) {
        if (rc == LIBSSH2_ERROR_SFTP_PROTOCOL && sftp) {
                unsigned long st = libssh2_sftp_last_error(sftp);
                return err_set(err, ERR_PERMANENT, (int)st,
                               "ssh: upload %s on %s: %s: SFTP status %lu (%s)",
                               path, c->name, what, st, sftp_status_name(st));
        }
        if (rc == RC_DEADLINE)
                return err_setc(err, ERR_TRANSIENT, ERR_CAUSE_DEADLINE,
                                LIBSSH2_ERROR_TIMEOUT,
                                "ssh: upload %s on %s timed out after %ld ms",
                                path, c->name, tmo);
        if (is_transport_rc(rc))
                mark_broken(c);
        return err_set(err, classify(rc), rc,
                       "ssh: upload %s on %s: %s: %s (libssh2 %d)", path,
                       c->name, what, last_msg(c), rc);
}

static unsigned tmp_suffix(void) {
        static unsigned counter;
        unsigned r = 0;

        if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
                r = (unsigned)clock_mono_ms() ^ ((unsigned)getpid() << 16) ^
                    __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
        return r;
}

/* Rename over an existing file with rename(2) on the remote side. */
static int rename_with_mv(struct ssh_conn *c,
                          const char *from,
                          const char *to,
                          int64_t deadline,
                          struct err *err) {
        struct ssh_result res = {0};
        char *cmd = NULL, *qfrom = NULL, *qto = NULL;
        long left = (long)(deadline - clock_mono_ms());
        int ret = -1;

        if (left <= 0)
                left = 1;
        qfrom = shell_quote(from);
        qto = shell_quote(to);
        cmd = qfrom && qto ? strfmt("mv -f -- %s %s", qfrom, qto) : NULL;
        if (!cmd)
                goto oom;
        if (ssh_run(c, cmd, NULL, 0, left, &res, err) == -1)
                goto out;
        if (res.exit_status != 0) {
                char tail[128];
                ssh_result_tail(&res, tail, sizeof(tail));
                err_setc(err, ERR_PERMANENT, ERR_CAUSE_REMOTE_EXIT,
                         res.exit_status,
                         "ssh: upload %s on %s: mv exited %d: %s", to, c->name,
                         res.exit_status, tail);
                goto out;
        }
        ret = 0;
        goto out;
oom:
        err_oom(err, "ssh: upload");
out:
        ssh_result_free(&res);
        free(cmd);
        free(qfrom);
        free(qto);
        return ret;
}

int ssh_upload(struct ssh_conn *c,
               const char *remote_path,
               const void *data,
               size_t len,
               int mode,
               long timeout_ms,
               struct err *err) {
        LIBSSH2_SFTP *sftp = NULL;
        LIBSSH2_SFTP_HANDLE *fh = NULL;
        LIBSSH2_SFTP_ATTRIBUTES attrs;
        long tmo = timeout_ms > 0 ? timeout_ms : SSH_OP_TIMEOUT_DEFAULT_MS;
        int64_t deadline = deadline_in(timeout_ms, SSH_OP_TIMEOUT_DEFAULT_MS);
        char *tmp = NULL;
        const char *p = data;
        size_t off = 0;
        int created = 0, rc, ret = -1;

        if (c->broken)
                return fail_broken(c, err);
        tmp = strfmt("%s.tmp-%08x", remote_path, tmp_suffix());
        if (!tmp)
                return err_oom(err, "ssh: upload");
        for (;;) {
                sftp = libssh2_sftp_init(c->session);
                if (sftp)
                        break;
                rc = libssh2_session_last_errno(c->session);
                if (rc == LIBSSH2_ERROR_EAGAIN && !wait_io(c, NULL, deadline))
                        rc = RC_DEADLINE;
                if (rc != LIBSSH2_ERROR_EAGAIN) {
                        fail_sftp(c, NULL, err, rc, "starting SFTP",
                                  remote_path, tmo);
                        goto out;
                }
        }
        for (;;) {
                /* EXCL: never write into somebody else's file. */
                fh = libssh2_sftp_open_ex(
                    sftp, tmp, (unsigned)strlen(tmp),
                    LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_EXCL,
                    mode & 07777, LIBSSH2_SFTP_OPENFILE);
                if (fh)
                        break;
                rc = libssh2_session_last_errno(c->session);
                if (rc == LIBSSH2_ERROR_EAGAIN && !wait_io(c, NULL, deadline))
                        rc = RC_DEADLINE;
                if (rc != LIBSSH2_ERROR_EAGAIN) {
                        fail_sftp(c, sftp, err, rc, "create", remote_path, tmo);
                        goto out;
                }
        }
        created = 1;
        while (off < len) {
                /* libssh2 expects the buffer advanced by what it returned. */
                ssize_t n = libssh2_sftp_write(fh, p + off, len - off);
                if (n > 0) {
                        off += (size_t)n;
                        continue;
                }
                if (n == LIBSSH2_ERROR_EAGAIN) {
                        if (wait_io(c, NULL, deadline))
                                continue;
                        n = RC_DEADLINE;
                }
                fail_sftp(c, sftp, err, (int)n, "write", remote_path, tmo);
                goto out;
        }
        /* The open mode went through the server's umask; set it exactly. */
        memset(&attrs, 0, sizeof(attrs));
        attrs.flags = LIBSSH2_SFTP_ATTR_PERMISSIONS;
        attrs.permissions = (unsigned long)(mode & 07777);
        NB_CALL(rc, c, deadline, libssh2_sftp_fsetstat(fh, &attrs));
        if (rc != 0) {
                fail_sftp(c, sftp, err, rc, "chmod", remote_path, tmo);
                goto out;
        }
        NB_CALL(rc, c, deadline, libssh2_sftp_close_handle(fh));
        if (rc != RC_DEADLINE)
                fh = NULL; /* done with, also when the close failed */
        if (rc != 0) {
                fail_sftp(c, sftp, err, rc, "close", remote_path, tmo);
                goto out;
        }
        /* SFTP v3 (OpenSSH) rename refuses to replace an existing file, and
         * libssh2 1.10 cannot send posix-rename@openssh.com; when the target
         * exists, rename(2) through `mv -f` keeps the replacement atomic. */
        NB_CALL(rc, c, deadline,
                libssh2_sftp_rename_ex(
                    sftp, tmp, (unsigned)strlen(tmp), remote_path,
                    (unsigned)strlen(remote_path),
                    LIBSSH2_SFTP_RENAME_OVERWRITE | LIBSSH2_SFTP_RENAME_ATOMIC |
                        LIBSSH2_SFTP_RENAME_NATIVE));
        if (rc == LIBSSH2_ERROR_SFTP_PROTOCOL &&
            (libssh2_sftp_last_error(sftp) == LIBSSH2_FX_FAILURE ||
             libssh2_sftp_last_error(sftp) == LIBSSH2_FX_FILE_ALREADY_EXISTS)) {
                if (rename_with_mv(c, tmp, remote_path, deadline, err) == -1)
                        goto out;
                rc = 0;
        }
        if (rc != 0) {
                fail_sftp(c, sftp, err, rc, "rename", remote_path, tmo);
                goto out;
        }
        created = 0;
        ret = 0;
out:
        if (sftp) {
                int64_t dl = clock_mono_ms() + GRACE_MS;
                if (fh) {
                        NB_CALL(rc, c, dl, libssh2_sftp_close_handle(fh));
                        if (rc == RC_DEADLINE) {
                                mark_broken(c);
                                dl = clock_mono_ms() + GRACE_MS;
                                NB_CALL(rc, c, dl,
                                        libssh2_sftp_close_handle(fh));
                        }
                }
                if (created && !c->broken) {
                        NB_CALL(rc, c, dl,
                                libssh2_sftp_unlink_ex(sftp, tmp,
                                                       (unsigned)strlen(tmp)));
                        if (rc == RC_DEADLINE)
                                mark_broken(c);
                }
                NB_CALL(rc, c, dl, libssh2_sftp_shutdown(sftp));
                if (rc == RC_DEADLINE) {
                        /* Still mid-shutdown: continue it on a dead socket,
                         * which fails at once and frees. */
                        mark_broken(c);
                        dl = clock_mono_ms() + GRACE_MS;
                        NB_CALL(rc, c, dl, libssh2_sftp_shutdown(sftp));
                }
        }
        free(tmp);
        return ret;
}

/* ---------------------------------------------------------------------- */
/* ssh_connect_until                                                       */

struct ssh_conn *ssh_connect_until(const struct ssh_opts *opts,
                                   int64_t deadline,
                                   const atomic_int *cancel,
                                   struct err *err) {
        struct err last = {0};
        int64_t backoff = 250, start = clock_mono_ms();
        int64_t next_note = start + SSH_WAIT_NOTE_MS;
        int attempts = 0;
        int port = opts->port > 0 ? opts->port : 22;

        for (;;) {
                struct ssh_opts o = *opts;
                struct ssh_conn *c;
                enum attempt_fail why;
                int64_t left = clock_left_ms(deadline);
                long per = opts->connect_timeout_ms > 0
                               ? opts->connect_timeout_ms
                               : SSH_CONNECT_TIMEOUT_DEFAULT_MS;

                if (left <= 0)
                        break;
                o.connect_timeout_ms = left < per ? (long)left : per;
                err_clear(&last);
                attempts++;
                c = connect_once(&o, &last, &why);
                if (c) {
                        log_debug(COMPONENT,
                                  "%s:%d ready after %d attempts in %lld ms",
                                  opts->host, port, attempts,
                                  (long long)(clock_mono_ms() - start));
                        return c;
                }
                if (why == ATTEMPT_FATAL) {
                        *err = last;
                        return NULL;
                }
                left = clock_left_ms(deadline);
                if (left <= 0)
                        break;
                /* A machine's sshd may come up long after the machine
                 * (the image's start hook): say what is being waited for. */
                if (clock_mono_ms() >= next_note) {
                        next_note = clock_mono_ms() + SSH_WAIT_NOTE_MS;
                        log_info(COMPONENT,
                                 "%s:%d not answering yet after %lld s (%s); "
                                 "trying again for up to %lld s more",
                                 opts->host, port,
                                 (long long)((clock_mono_ms() - start) / 1000),
                                 last.msg, (long long)(left / 1000));
                }
                if (clock_sleep_cancellable(backoff < left ? backoff : left,
                                            cancel) == -1) {
                        err_cancelled(err);
                        return NULL;
                }
                backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
        }
        if (attempts == 0)
                err_setc(err, ERR_TRANSIENT, ERR_CAUSE_DEADLINE,
                         LIBSSH2_ERROR_TIMEOUT,
                         "ssh: %s:%d not ready: timed out before the first "
                         "attempt",
                         opts->host, port);
        else if (last.kind == ERR_PERMANENT)
                *err = last; /* refused login: the deadline changes nothing */
        else
                err_setc(err, ERR_TRANSIENT, ERR_CAUSE_DEADLINE, last.code,
                         "ssh: %s:%d not ready: timed out after %d attempts "
                         "in %lld ms; last: %s",
                         opts->host, port, attempts,
                         (long long)(clock_mono_ms() - start), last.msg);
        return NULL;
}
