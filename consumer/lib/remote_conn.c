/* remote_conn.c - connecting (TCP, handshake, host-key check, login),
 * closing, and remote_connect_until()'s retries; see remote.h.
 *
 * The host key is checked before authentication, so a wrong host never sees
 * our key signature, let alone a command.
 */
#include "remote_int.h"

#include "clock.h"
#include "known_hosts.h"
#include "log.h"
#include "metrics.h"
#include "secret_file.h"
#include "strfmt.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CLOSE_MS 500 /* polite disconnect in remote_close() */

#define COMPONENT "ssh"
/* While remote_connect_until() waits, a note this often. */
#define WAIT_NOTE_MS 5000

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

/* ---------------------------------------------------------------------- */
/* connecting                                                              */

static int tcp_connect(struct remote_conn *c,
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
static int check_host_key(struct remote_conn *c,
                          const struct remote_opts *opts,
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

/* Why a connect attempt failed, for remote_connect_until's retry decision. */
enum attempt_fail {
        ATTEMPT_RETRY = 0, /* transient, or login refused */
        ATTEMPT_FATAL,     /* host key, local files, bad options */
};

static void conn_free(struct remote_conn *c);

static struct remote_conn *connect_once(const struct remote_opts *opts,
                                        struct err *err,
                                        enum attempt_fail *why) {
        struct remote_conn *c = NULL;
        char *pubkey = NULL;
        long timeout_ms = opts->connect_timeout_ms > 0
                              ? opts->connect_timeout_ms
                              : REMOTE_CONNECT_TIMEOUT_DEFAULT_MS;
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
        REMOTE_NB_CALL(rc, c, deadline,
                       libssh2_session_handshake(c->session, c->sock));
        if (rc != 0) {
                /* Anything in the handshake is the connection's fault until
                 * proven otherwise: a half-started sshd drops connections. */
                if (rc == REMOTE_RC_DEADLINE)
                        err_setc(
                            err, ERR_TRANSIENT, ERR_CAUSE_DEADLINE,
                            LIBSSH2_ERROR_TIMEOUT,
                            "ssh: handshake with %s timed out after %ld ms",
                            c->name, timeout_ms);
                else
                        err_set(err, remote_io_classify(rc), rc,
                                "ssh: handshake with %s: %s (libssh2 %d)",
                                c->name, remote_io_last_msg(c), rc);
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
        REMOTE_NB_CALL(rc, c, deadline,
                       libssh2_userauth_publickey_fromfile_ex(
                           c->session, opts->user, (unsigned)strlen(opts->user),
                           access(pubkey, R_OK) == 0 ? pubkey : NULL,
                           opts->key_path, NULL));
        if (rc != 0) {
                if (rc == REMOTE_RC_DEADLINE) {
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
                        err_set(err, remote_io_classify(rc), rc,
                                "ssh: login as %s to %s: %s (libssh2 %d)",
                                opts->user, c->name, remote_io_last_msg(c), rc);
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
                remote_io_mark_broken(
                    c); /* no polite disconnect on a failed attempt */
                conn_free(c);
        }
        return NULL;
}

struct remote_conn *remote_connect(const struct remote_opts *opts,
                                   struct err *err) {
        enum attempt_fail why;

        return connect_once(opts, err, &why);
}

static void conn_free(struct remote_conn *c) {
        int64_t dl;
        int rc;

        if (c->session) {
                if (!c->broken) {
                        dl = clock_mono_ms() + CLOSE_MS;
                        REMOTE_NB_CALL(
                            rc, c, dl,
                            libssh2_session_disconnect(c->session, "closing"));
                }
                remote_io_mark_broken(c);
                dl = clock_mono_ms() + REMOTE_GRACE_MS;
                REMOTE_NB_CALL(rc, c, dl, libssh2_session_free(c->session));
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

void remote_close(struct remote_conn *c) {
        if (c)
                conn_free(c);
}

/* ---------------------------------------------------------------------- */
/* remote_connect_until                                                       */

struct remote_conn *remote_connect_until(const struct remote_opts *opts,
                                         int64_t deadline,
                                         const atomic_int *cancel,
                                         struct err *err) {
        struct err last = {0};
        int64_t backoff = 250, start = clock_mono_ms();
        int64_t next_note = start + WAIT_NOTE_MS;
        int attempts = 0;
        int port = opts->port > 0 ? opts->port : 22;

        for (;;) {
                struct remote_opts o = *opts;
                struct remote_conn *c;
                enum attempt_fail why;
                int64_t left = clock_left_ms(deadline);
                long per = opts->connect_timeout_ms > 0
                               ? opts->connect_timeout_ms
                               : REMOTE_CONNECT_TIMEOUT_DEFAULT_MS;

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
                        next_note = clock_mono_ms() + WAIT_NOTE_MS;
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
