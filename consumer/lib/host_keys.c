/* host_keys.c - see host_keys.h. */
#include "host_keys.h"
#include "dynbuf.h"
#include "secret.h"
#include "strfmt.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_TYPE      "ssh-ed25519"
#define DERIVE_LABEL  "thopter-host-key-v1"
#define FILE_MAX      (1u << 20)
#define PEM_BEGIN     "-----BEGIN OPENSSH PRIVATE KEY-----"
#define PEM_END       "-----END OPENSSH PRIVATE KEY-----"
#define OPENSSH_MAGIC "openssh-key-v1"
#define PEM_LINE      70

int host_keys_derive_host_key(const void *secret,
                              size_t secret_len,
                              const char *request_id,
                              struct host_key *out,
                              struct err *err) {
        unsigned char msg[sizeof(DERIVE_LABEL) + 256];
        size_t idlen = strlen(request_id), pub_len = sizeof(out->pub);
        unsigned int n = 0;
        EVP_PKEY *pkey = NULL;
        int rc = -1;

        if (idlen > 255)
                return err_set(err, ERR_PERMANENT, 0,
                               "host key: request id too long");
        /* The label with its NUL, then the id: no two inputs collide. */
        memcpy(msg, DERIVE_LABEL, sizeof(DERIVE_LABEL));
        memcpy(msg + sizeof(DERIVE_LABEL), request_id, idlen);
        if (!HMAC(EVP_sha256(), secret, (int)secret_len, msg,
                  sizeof(DERIVE_LABEL) + idlen, out->seed, &n) ||
            n != sizeof(out->seed)) {
                err_set(err, ERR_PERMANENT, 0, "host key: HMAC failed");
                goto out;
        }
        pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, out->seed,
                                            sizeof(out->seed));
        if (!pkey ||
            EVP_PKEY_get_raw_public_key(pkey, out->pub, &pub_len) != 1 ||
            pub_len != sizeof(out->pub)) {
                err_set(err, ERR_PERMANENT, 0,
                        "host key: Ed25519 key derivation failed");
                goto out;
        }
        rc = 0;
out:
        EVP_PKEY_free(pkey);
        secret_wipe(msg, sizeof(msg));
        if (rc == -1)
                host_keys_wipe(out);
        return rc;
}

void host_keys_wipe(struct host_key *k) {
        secret_wipe(k, sizeof(*k));
}

/* ---- the SSH wire format ------------------------------------------------- */

static void put_u32(struct dynbuf *b, uint32_t v) {
        unsigned char be[4] = {(unsigned char)(v >> 24),
                               (unsigned char)(v >> 16),
                               (unsigned char)(v >> 8), (unsigned char)v};
        dynbuf_add(b, be, 4);
}

static void put_string(struct dynbuf *b, const void *s, size_t n) {
        put_u32(b, (uint32_t)n);
        dynbuf_add(b, s, n);
}

static void put_public_blob(struct dynbuf *b, const struct host_key *k) {
        put_string(b, KEY_TYPE, strlen(KEY_TYPE));
        put_string(b, k->pub, sizeof(k->pub));
}

size_t host_keys_public_blob(const struct host_key *k,
                             unsigned char *buf,
                             size_t cap) {
        struct dynbuf b;
        size_t n = 0;

        dynbuf_init(&b, HOST_KEYS_BLOB_MAX, DYNBUF_FAIL);
        put_public_blob(&b, k);
        if (b.state == DYNBUF_OK && b.len <= cap) {
                memcpy(buf, b.p, b.len);
                n = b.len;
        }
        dynbuf_free(&b);
        return n;
}

static char *base64(const unsigned char *data, size_t len) {
        char *out = malloc(4 * ((len + 2) / 3) + 1);
        if (out)
                EVP_EncodeBlock((unsigned char *)out, data, (int)len);
        return out;
}

char *host_keys_public_line(const struct host_key *k, const char *comment) {
        unsigned char blob[HOST_KEYS_BLOB_MAX];
        size_t n = host_keys_public_blob(k, blob, sizeof(blob));
        char *b64 = n ? base64(blob, n) : NULL;
        char *line =
            b64 ? strfmt(KEY_TYPE " %s%s%s", b64,
                         comment && *comment ? " " : "", comment ? comment : "")
                : NULL;
        free(b64);
        return line;
}

char *host_keys_private_openssh(const struct host_key *k, const char *comment) {
        struct dynbuf priv, whole, pem;
        unsigned char checkint[4];
        char *b64 = NULL, *out = NULL;

        comment = comment ? comment : "";
        /* The check integers only let a reader tell a wrong passphrase; a
         * value derived from the key keeps the output deterministic. */
        memcpy(checkint, k->pub, sizeof(checkint));
        dynbuf_init(&priv, 4096, DYNBUF_FAIL);
        dynbuf_add(&priv, checkint, 4);
        dynbuf_add(&priv, checkint, 4);
        put_string(&priv, KEY_TYPE, strlen(KEY_TYPE));
        put_string(&priv, k->pub, sizeof(k->pub));
        put_u32(&priv, 64);
        dynbuf_add(&priv, k->seed, sizeof(k->seed));
        dynbuf_add(&priv, k->pub, sizeof(k->pub));
        put_string(&priv, comment, strlen(comment));
        for (unsigned char pad = 1; priv.len % 8; pad++)
                dynbuf_add(&priv, &pad, 1);

        dynbuf_init(&whole, 8192, DYNBUF_FAIL);
        dynbuf_add(&whole, OPENSSH_MAGIC, sizeof(OPENSSH_MAGIC));
        put_string(&whole, "none", 4);
        put_string(&whole, "none", 4);
        put_string(&whole, "", 0);
        put_u32(&whole, 1);
        {
                struct dynbuf pubb;
                dynbuf_init(&pubb, HOST_KEYS_BLOB_MAX, DYNBUF_FAIL);
                put_public_blob(&pubb, k);
                put_string(&whole, dynbuf_str(&pubb), pubb.len);
                dynbuf_free(&pubb);
        }
        put_string(&whole, priv.p, priv.len);

        dynbuf_init(&pem, 16384, DYNBUF_FAIL);
        if (priv.state == DYNBUF_OK && whole.state == DYNBUF_OK)
                b64 = base64((const unsigned char *)whole.p, whole.len);
        if (b64) {
                size_t n = strlen(b64);
                dynbuf_addstr(&pem, PEM_BEGIN "\n");
                for (size_t i = 0; i < n; i += PEM_LINE) {
                        dynbuf_add(&pem, b64 + i,
                                   n - i < PEM_LINE ? n - i : PEM_LINE);
                        dynbuf_addstr(&pem, "\n");
                }
                dynbuf_addstr(&pem, PEM_END "\n");
                out = dynbuf_take(&pem, NULL);
        }
        if (priv.p)
                secret_wipe(priv.p, priv.len);
        if (whole.p)
                secret_wipe(whole.p, whole.len);
        dynbuf_free(&priv);
        dynbuf_free(&whole);
        if (pem.p)
                secret_wipe(pem.p, pem.len);
        dynbuf_free(&pem);
        secret_free(b64);
        return out;
}

/* ---- the client's public key -------------------------------------------- */

unsigned char *
host_keys_read_file(const char *path, size_t *len, struct err *err) {
        FILE *f = fopen(path, "rb");
        struct dynbuf b;
        char chunk[4096];
        size_t n;

        if (!f) {
                err_set(err, ERR_PERMANENT, errno, "cannot read %s: %s", path,
                        strerror(errno));
                return NULL;
        }
        dynbuf_init(&b, FILE_MAX, DYNBUF_FAIL);
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                dynbuf_add(&b, chunk, n);
        int bad = ferror(f);
        fclose(f);
        secret_wipe(chunk, sizeof(chunk));
        if (bad || b.state != DYNBUF_OK) {
                if (b.p)
                        secret_wipe(b.p, b.len);
                dynbuf_free(&b);
                err_set(err, ERR_PERMANENT, 0, "cannot read %s (%s)", path,
                        bad ? "read error" : "too big or out of memory");
                return NULL;
        }
        return (unsigned char *)dynbuf_take(&b, len);
}

/* One "string" of the SSH wire format at *p (bounds-checked). */
static int get_string(const unsigned char **p,
                      const unsigned char *end,
                      const unsigned char **s,
                      size_t *n) {
        if (end - *p < 4)
                return -1;
        uint32_t len = (uint32_t)(*p)[0] << 24 | (uint32_t)(*p)[1] << 16 |
                       (uint32_t)(*p)[2] << 8 | (*p)[3];
        *p += 4;
        if ((size_t)(end - *p) < len)
                return -1;
        *s = *p;
        *n = len;
        *p += len;
        return 0;
}

/* The public key line of an OpenSSH-format private key file's text. */
static char *public_from_openssh(const char *text) {
        const char *b = strstr(text, PEM_BEGIN), *e = strstr(text, PEM_END);
        unsigned char *raw = NULL;
        char *b64 = NULL, *line = NULL, *type = NULL;
        size_t nb = 0;

        if (!b || !e || e < b)
                return NULL;
        b += strlen(PEM_BEGIN);
        b64 = malloc((size_t)(e - b) + 1);
        if (!b64)
                return NULL;
        for (const char *c = b; c < e; c++)
                if (*c != '\n' && *c != '\r' && *c != ' ')
                        b64[nb++] = *c;
        b64[nb] = '\0';
        raw = malloc(nb + 1);
        int rawlen =
            raw ? EVP_DecodeBlock(raw, (unsigned char *)b64, (int)nb) : -1;
        if (rawlen > 0) {
                /* EVP_DecodeBlock counts the padding as zero bytes. */
                for (size_t i = nb; i > 0 && b64[i - 1] == '='; i--)
                        rawlen--;
                const unsigned char *p = raw, *end = raw + rawlen, *s, *pub;
                size_t n, npub;
                if ((size_t)rawlen > sizeof(OPENSSH_MAGIC) &&
                    memcmp(p, OPENSSH_MAGIC, sizeof(OPENSSH_MAGIC)) == 0) {
                        p += sizeof(OPENSSH_MAGIC);
                        if (get_string(&p, end, &s, &n) == 0 && /* cipher */
                            get_string(&p, end, &s, &n) == 0 && /* kdf */
                            get_string(&p, end, &s, &n) == 0 && /* kdf opts */
                            end - p >= 4) {
                                p += 4; /* number of keys */
                                if (get_string(&p, end, &pub, &npub) == 0) {
                                        const unsigned char *q = pub;
                                        if (get_string(&q, pub + npub, &s,
                                                       &n) == 0)
                                                type =
                                                    strndup((const char *)s, n);
                                        char *enc = base64(pub, npub);
                                        if (type && enc)
                                                line =
                                                    strfmt("%s %s", type, enc);
                                        free(enc);
                                }
                        }
                }
        }
        free(type);
        free(raw);
        secret_free(b64);
        return line;
}

char *host_keys_client_public_line(const char *path, struct err *err) {
        char *pub_path = strfmt("%s.pub", path);
        unsigned char *text = NULL;
        size_t len = 0;
        char *line = NULL;
        struct err ignored = {0};

        if (!pub_path) {
                err_oom(err, "THOPTER_SSH_KEY");
                snprintf(err->field, sizeof(err->field), "THOPTER_SSH_KEY");
                return NULL;
        }
        text = host_keys_read_file(pub_path, &len, &ignored);
        if (text) {
                /* The first line of KEY.pub is the line. */
                char *nl = strpbrk((char *)text, "\r\n");
                if (nl)
                        *nl = '\0';
                line = strdup((char *)text);
                free(text);
        } else {
                text = host_keys_read_file(path, &len, err);
                if (text) {
                        line = public_from_openssh((const char *)text);
                        secret_wipe(text, len);
                        free(text);
                        if (!line) {
                                err_set(err, ERR_PERMANENT, 0,
                                        "THOPTER_SSH_KEY %s: not an OpenSSH "
                                        "private key, and no %s beside it",
                                        path, pub_path);
                                snprintf(err->field, sizeof(err->field),
                                         "THOPTER_SSH_KEY");
                        }
                }
        }
        free(pub_path);
        return line;
}
