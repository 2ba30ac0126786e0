/* remote.h - run commands on a thopter and copy data to it, over libssh2.
 *
 * One struct remote_conn is one TCP connection and one authenticated SSH
 * session; it is reused for many operations, each on its own channel. Every
 * operation takes a deadline and honours it: libssh2 runs non-blocking and
 * all waiting is poll() on the socket, so a hung peer or a hung remote
 * command costs at most the timeout.
 *
 * The module is the remote_*.c files (remote_int.h lists them). Its prefix is
 * remote_ and not ssh_, which is libssh's.
 *
 * What this module does not do: retry (the caller's backoff does, except
 * remote_connect_until() whose job is retrying), quote (shell_quote.h), or
 * decide what a non-zero exit status means (the caller does).
 *
 * Errors (struct err) are ready for the caller's classes:
 *   - connection refused/reset/unreachable, DNS failure, connect or handshake
 *     timeout, a connection dropped mid-command: ERR_TRANSIENT;
 *   - host key not accepted (cause ERR_CAUSE_HOST_KEY), login refused
 *     (ERR_CAUSE_LOGIN), unreadable key or known_hosts file: ERR_PERMANENT,
 *     and nothing was run;
 *   - an operation that passed its deadline: ERR_TRANSIENT with cause
 *     ERR_CAUSE_DEADLINE (the caller maps it to class timeout);
 *   - anything libssh2 reports that is none of the above: ERR_PERMANENT
 *     (unknown means permanent).
 * err->code is the libssh2 rc, errno, or SFTP status. Messages never contain
 * the command text (it may carry a secret) and pass through log_redact().
 *
 * Metrics: thopter_ssh_connections_total{result="ok|error"} (one per connect
 * attempt) and thopter_ssh_commands_total (one per remote_run/remote_pipe
 * command started).
 *
 * @locality any thread, one thread per struct remote_conn at a time;
 * different connections may be used from different threads concurrently.
 *
 * Callers: provision_remote.c, and the reaper.
 */
#ifndef THOPTER_REMOTE_H
#define THOPTER_REMOTE_H

#include "err.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Timeouts of 0 or less mean these defaults. */
#define REMOTE_CONNECT_TIMEOUT_DEFAULT_MS 10000L
#define REMOTE_OP_TIMEOUT_DEFAULT_MS      600000L
/* remote_run keeps at most this much of stdout and of stderr: the tail. */
#define REMOTE_OUTPUT_CAP (1024 * 1024)

struct remote_conn;

struct remote_opts {
        const char *host; /* name or address; also the known_hosts key */
        int port;         /* 0 = 22 */
        const char *user;
        const char *key_path; /* private key (ed25519 or ECDSA), no passphrase;
                                 KEY.pub is used too when it exists */
        const char *known_hosts_path; /* optional; when set it is always
                                         checked, whatever insecure says */
        /* optional: the host key made for this machine (SSH wire form,
         * host_keys.h); accepted as well as what known_hosts_path lists */
        const unsigned char *host_key;
        size_t host_key_len;
        int insecure; /* with neither known_hosts_path nor host_key: accept
                         any host key; otherwise refuse to connect */
        long connect_timeout_ms; /* TCP + handshake + login; <= 0: default */
};

/**
 * @brief Connect, check the host key, log in with the key.
 *
 * The host key is checked before any authentication: it is accepted when it
 * is opts->host_key, or when known_hosts_path lists it for the host
 * (entries `HOST` or `[HOST]:PORT`, plain or hashed, with OpenSSH's
 * patterns: known_hosts.h). A key an @revoked line lists for the host
 * is refused even when it is opts->host_key. Anything else is
 * ERR_PERMANENT, cause ERR_CAUSE_HOST_KEY, "ssh: host key for HOST:PORT
 * ...", and nothing is sent.
 * @returns a connection to free with remote_close(), or NULL (see @p err).
 */
struct remote_conn *remote_connect(const struct remote_opts *opts,
                                   struct err *err);

/** @brief Disconnect and free; bounded by a short grace period. NULL ok. */
void remote_close(struct remote_conn *c);


struct remote_result {
        int exit_status; /* 128+N when killed by signal N (255: unknown) */
        char *out;       /* stdout tail, NUL-terminated (never NULL on rc 0) */
        size_t out_len;
        char *errout; /* stderr tail, NUL-terminated (never NULL on rc 0) */
        size_t err_len;
        int truncated; /* 1 if either stream went over REMOTE_OUTPUT_CAP */
};

/** @brief Free out/errout and zero @p r; safe on a zeroed or freed result. */
void remote_result_free(struct remote_result *r);

/**
 * @brief What a failed command said, for an error message: the tail of its
 * stderr (of its stdout when stderr is empty), trailing blanks dropped,
 * secrets redacted first and then cut to @p cap (the one way remote text
 * reaches a message).
 */
void remote_result_tail(const struct remote_result *res, char *dst, size_t cap);

/**
 * @brief Run @p cmd (a shell command line) on a new channel.
 *
 * @p stdin_data (optional, @p stdin_len bytes) is written to the command's
 * stdin, then EOF is sent (also when there is no data). stdout and stderr are
 * collected up to REMOTE_OUTPUT_CAP each, keeping the tail.
 * A timeout leaves the remote command running until it finishes on its own
 * (libssh2 1.10 cannot send signals). OpenSSH confirms closing the channel
 * of a still-running command only when it exits, so after 250 ms the
 * connection is given up: later calls on it fail at once with
 * ERR_TRANSIENT ("unusable … reconnect"); remote_close() it and reconnect.
 * @param timeout_ms for the whole command; <= 0: REMOTE_OP_TIMEOUT_DEFAULT_MS.
 * @returns 0 when the command ran to completion, whatever its exit status
 * (in @p res, which the caller frees with remote_result_free()); -1 on a
 * transport failure or timeout (@p res is left empty).
 */
int remote_run(struct remote_conn *c,
               const char *cmd,
               const void *stdin_data,
               size_t stdin_len,
               long timeout_ms,
               struct remote_result *res,
               struct err *err);

/**
 * @brief Write @p data to @p remote_path atomically with SFTP.
 *
 * Writes REMOTE_PATH.tmp-XXXXXXXX (exclusive create), sets @p mode on the
 * open handle, closes it, and renames it over @p remote_path: with SFTP
 * rename when the target does not exist, else with `mv -f` on an exec
 * channel (rename(2), atomic; OpenSSH's SFTP v3 rename refuses to replace).
 * Readers see the old file or the new one, never a part. On failure the
 * temporary file is removed (best effort).
 * @returns 0 or -1. SFTP "no such file" / "permission denied" are
 * ERR_PERMANENT.
 */
int remote_upload(struct remote_conn *c,
                  const char *remote_path,
                  const void *data,
                  size_t len,
                  int mode,
                  long timeout_ms,
                  struct err *err);

/**
 * @brief Stream @p src_cmd's stdout on @p src into @p dst_cmd's stdin on
 * @p dst, with no temporary file; a bounded buffer, flow-controlled by the
 * SSH windows. @p src and @p dst may be the same connection.
 * @returns 0 when both commands exited 0; -1 otherwise: a non-zero exit is
 * ERR_PERMANENT with err->code = that status and the stderr tail (redacted)
 * in the message; transport failures and the timeout as for remote_run().
 */
int remote_pipe(struct remote_conn *src,
                const char *src_cmd,
                struct remote_conn *dst,
                const char *dst_cmd,
                long timeout_ms,
                struct err *err);

/**
 * @brief remote_connect() until it succeeds, @p deadline (clock_mono_ms())
 * passes, or *@p cancel (optional) is set, with backoff from 250 ms up to
 * 2 s. Each attempt's connect timeout is the smaller of
 * opts->connect_timeout_ms and the time left.
 *
 * Transient failures and refused logins (sshd may be up before the key is
 * installed) are retried; a host key that is not accepted or an unreadable
 * local file fails at once. On the deadline the error is ERR_TRANSIENT with
 * cause ERR_CAUSE_DEADLINE and the last attempt's message, unless that
 * attempt was refused login, which stays ERR_PERMANENT (ERR_CAUSE_LOGIN).
 * @returns a connection, or NULL (see @p err; ERR_CAUSE_CANCELLED when
 * cancelled).
 */
struct remote_conn *remote_connect_until(const struct remote_opts *opts,
                                         int64_t deadline,
                                         const atomic_int *cancel,
                                         struct err *err);

#endif
