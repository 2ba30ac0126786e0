/* host_keys.h - the SSH keys the consumer hands out and expects: a host key
 * made for each machine (contract 5.13), and the consumer's own public key
 * for the machine's authorized_keys.
 *
 * DESIGN
 * ------
 * Per-machine host keys are derived, not stored: the Ed25519 seed of a
 * machine is HMAC-SHA256(secret, "thopter-host-key-v1\0" || requestId),
 * where the secret is the consumer's own private key file (THOPTER_SSH_KEY).
 * At create the consumer puts the private key in the machine's config.files;
 * before every SSH connection it derives the key again and accepts exactly
 * its public half. So a redelivery after a crash (even before the create's
 * answer arrived), another consumer instance, or the reaper all know the
 * key without any storage, and no private host key is in any image. We did
 * not read the key back from the machine's config instead: that would trust
 * what an API answer says is the machine's key, and would not work for a
 * create whose answer was lost.
 *
 * Why the client key as the secret: whoever holds it can already log in as
 * root on every thopter, so deriving from it adds no exposure and no new
 * setting; rotating it rotates every host key, which is right, since the
 * old machines no longer accept the new client key either.
 *
 * No I/O except reading the client key file. @locality any thread.
 *
 * Callers: provision (derives and hands out the keys), the reaper (checks
 * idle thopters).
 */
#ifndef THOPTER_HOST_KEYS_H
#define THOPTER_HOST_KEYS_H

#include "err.h"

#include <stddef.h>

#define HOST_KEYS_BLOB_MAX 512

/* An Ed25519 key pair. A secret: host_keys_wipe() it when done. */
struct host_key {
        unsigned char seed[32];
        unsigned char pub[32];
};

/** @brief The host key of the machine made for @p request_id. */
int host_keys_derive_host_key(const void *secret,
                              size_t secret_len,
                              const char *request_id,
                              struct host_key *out,
                              struct err *err);

/** @brief The key in OpenSSH's private key format (as ssh-keygen writes it,
 * unencrypted), deterministic; malloc'd, free with secret_free(). */
char *host_keys_private_openssh(const struct host_key *k, const char *comment);

/** @brief The SSH wire form of the public key ("ssh-ed25519" + key), as a
 * server presents it. @returns its length (51), 0 when @p cap is too small. */
size_t
host_keys_public_blob(const struct host_key *k, unsigned char *buf, size_t cap);

/** @brief "ssh-ed25519 BASE64 COMMENT" (known_hosts / authorized_keys
 * form, without a host field); malloc'd. */
char *host_keys_public_line(const struct host_key *k, const char *comment);

void host_keys_wipe(struct host_key *k);

/**
 * @brief The public key of the private key file @p path, as one
 * authorized_keys line "TYPE BASE64 [COMMENT]": from PATH.pub when it
 * exists, else from the public part of an OpenSSH-format private key.
 * @returns a malloc'd line, or NULL with @p err; err->field is
 * "THOPTER_SSH_KEY" when the message names that setting (not when only
 * reading @p path failed: that message names the path).
 */
char *host_keys_client_public_line(const char *path, struct err *err);

/**
 * @brief Read a whole local secret file (at most 1 MiB) into memory.
 * @returns a malloc'd buffer to free with secret_wipe()+free(), or NULL.
 */
unsigned char *
host_keys_read_file(const char *path, size_t *len, struct err *err);

#endif
