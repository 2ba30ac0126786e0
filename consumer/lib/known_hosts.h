/* known_hosts.h - decide whether an OpenSSH known_hosts text accepts a
 * host key, with OpenSSH's own semantics (sshd(8) "SSH_KNOWN_HOSTS FILE
 * FORMAT", hostfile.c, match.c).
 *
 * Pure: no I/O, no allocation the caller sees; the text is the file's bytes
 * (it need not be NUL-terminated) and may be hostile, so every malformed
 * line is skipped, as OpenSSH skips it.
 *
 * What is honoured:
 * - the lookup name is HOST for port 22 (or 0) and [HOST]:PORT otherwise, so
 *   a plain "host" line never vouches for another port;
 * - comma-separated patterns with * and ? wildcards, and ! negation: a
 *   negated pattern that matches excludes the whole line; matching is
 *   case-insensitive;
 * - hashed entries |1|base64(salt)|base64(HMAC-SHA1(salt, lookup name));
 * - @revoked: a key on such a line is never accepted for the hosts the line
 *   matches, whatever other lines say;
 * - @cert-authority lines are ignored (we do not do certificates), and so
 *   is any other marker;
 * - comments (#) and blank lines; keys compare as decoded base64 blobs (the
 *   key type word must be present but is not compared separately: the blob
 *   starts with it).
 *
 * Callers: remote_conn.c (check_host_key(), which reads
 * THOPTER_SSH_KNOWN_HOSTS at each connection), the fuzz target
 * fuzz_known_hosts.
 *
 * @locality any thread.
 */
#ifndef THOPTER_KNOWN_HOSTS_H
#define THOPTER_KNOWN_HOSTS_H

#include <stddef.h>

enum known_hosts_result {
        KNOWN_HOSTS_MATCH,     /* a line for this host has this key */
        KNOWN_HOSTS_MISMATCH,  /* lines for the host, none with the key */
        KNOWN_HOSTS_NOT_FOUND, /* no line for the host */
        KNOWN_HOSTS_REVOKED,   /* an @revoked line for it has the key */
};

/**
 * @brief Check @p key_blob (the raw public key blob the server sent, as
 * libssh2_session_hostkey() returns it) for @p host:@p port against the
 * known_hosts @p text of @p len bytes.
 *
 * REVOKED wins over MATCH; MISMATCH means lines for the host exist (other
 * than @revoked or @cert-authority ones) but none with this key. A NULL or
 * empty @p host, or a @p port outside 0..65535, is NOT_FOUND.
 */
enum known_hosts_result known_hosts_check(const char *text,
                                          size_t len,
                                          const char *host,
                                          int port,
                                          const unsigned char *key_blob,
                                          size_t key_len);

/** @brief "match", "mismatch", "not found" or "revoked", for messages. */
const char *known_hosts_result_name(enum known_hosts_result r);

#endif
