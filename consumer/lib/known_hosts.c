/* known_hosts.c - OpenSSH known_hosts semantics; see known_hosts.h.
 *
 * DESIGN
 * ------
 * One pass over the lines; each line is parsed in place (no copy of the
 * text) into marker, host field, key type and key. A line that OpenSSH would
 * refuse (unknown marker, bad base64, a blob that does not start with its
 * type) is skipped. Pattern matching is the linear star-backtracking form,
 * not OpenSSH's recursive one, so a hostile pattern such as "*a*a*a*a*b"
 * costs O(pattern x name), never exponential time; both accept the same
 * strings.
 */
#include "known_hosts.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define NAME_MAX_LEN   1100 /* "[" host "]:" port, host at most 1024 */
#define SUBPATTERN_MAX 1024 /* OpenSSH match_pattern_list's limit */
#define BLOB_MAX       8192 /* a 16384-bit RSA key is about 2 KiB */
#define SHA1_LEN       20

struct line {
        const char *marker; /* NULL, or the word after '@' */
        size_t marker_len;
        const char *hosts;
        size_t hosts_len;
        const char *type;
        size_t type_len;
        const char *key; /* base64 */
        size_t key_len;
};

static unsigned char lower(unsigned char c) {
        return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

static bool is_blank(char c) {
        return c == ' ' || c == '\t' || c == '\r';
}

/* ---- base64 (strict: canonical padding, no stray bits) ------------------ */

static int b64_value(char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

/* Decode @p in into @p out (at most @p cap bytes). Returns the length, or -1
 * for anything but canonical padded base64 that fits. */
static long
b64_decode(const char *in, size_t n, unsigned char *out, size_t cap) {
        size_t o = 0;

        if (n == 0 || n % 4 != 0)
                return -1;
        for (size_t i = 0; i < n; i += 4) {
                int v[4];
                int pad = 0;
                for (int j = 0; j < 4; j++) {
                        if (in[i + j] == '=' && i + 4 == n && j >= 2) {
                                v[j] = 0;
                                pad++;
                                continue;
                        }
                        if (pad) /* "=" then a letter */
                                return -1;
                        v[j] = b64_value(in[i + j]);
                        if (v[j] < 0)
                                return -1;
                }
                uint32_t w = ((uint32_t)v[0] << 18) | ((uint32_t)v[1] << 12) |
                             ((uint32_t)v[2] << 6) | (uint32_t)v[3];
                if ((pad == 1 && (w & 0xff)) || (pad == 2 && (w & 0xffff)))
                        return -1; /* stray bits: not canonical */
                size_t k = 3 - (size_t)pad;
                if (o + k > cap)
                        return -1;
                out[o++] = (unsigned char)(w >> 16);
                if (k > 1)
                        out[o++] = (unsigned char)(w >> 8);
                if (k > 2)
                        out[o++] = (unsigned char)w;
        }
        return (long)o;
}

/* ---- patterns ------------------------------------------------------------ */

/* * matches any run, ? any one byte, case-insensitive. */
static bool wild_match(const char *s, size_t sn, const char *p, size_t pn) {
        size_t si = 0, pi = 0, star = SIZE_MAX, mark = 0;

        while (si < sn) {
                if (pi < pn && p[pi] == '*') {
                        star = pi++;
                        mark = si;
                } else if (pi < pn &&
                           (p[pi] == '?' || lower((unsigned char)p[pi]) ==
                                                lower((unsigned char)s[si]))) {
                        si++;
                        pi++;
                } else if (star != SIZE_MAX) {
                        pi = star + 1;
                        si = ++mark;
                } else {
                        return false;
                }
        }
        while (pi < pn && p[pi] == '*')
                pi++;
        return pi == pn;
}

/* OpenSSH match_hostname() == 1: some pattern matches and no negated one. */
static bool
patterns_match(const char *name, size_t nn, const char *list, size_t ln) {
        bool positive = false;
        size_t i = 0;

        while (i <= ln) {
                size_t start = i;
                while (i < ln && list[i] != ',')
                        i++;
                const char *sub = list + start;
                size_t sublen = i - start;
                bool negated = sublen > 0 && sub[0] == '!';
                if (negated) {
                        sub++;
                        sublen--;
                }
                if (sublen >= SUBPATTERN_MAX)
                        return false; /* OpenSSH gives up on the list */
                if (wild_match(name, nn, sub, sublen)) {
                        if (negated)
                                return false;
                        positive = true;
                }
                i++; /* past the ',' (or the end) */
        }
        return positive;
}

/* SHA-1 fetched once: OpenSSL 3's HMAC() looks its algorithms up by name
 * on every call, which made a file of hashed lines ten times slower. */
static EVP_MD *sha1_md;
static pthread_once_t sha1_once = PTHREAD_ONCE_INIT;

static void sha1_fetch(void) {
        sha1_md = EVP_MD_fetch(NULL, "SHA1", NULL);
}

/* RFC 2104 HMAC-SHA1 with a key of SHA1_LEN bytes (shorter than a block). */
static int hmac_sha1(const unsigned char *key,
                     const unsigned char *msg,
                     size_t len,
                     unsigned char out[SHA1_LEN]) {
        unsigned char pad[64], inner[SHA1_LEN];
        unsigned int n = 0;
        EVP_MD_CTX *ctx = NULL;
        int rc = -1;

        pthread_once(&sha1_once, sha1_fetch);
        ctx = EVP_MD_CTX_new();
        if (!sha1_md || !ctx)
                goto out;
        for (int pass = 0; pass < 2; pass++) {
                memset(pad, pass == 0 ? 0x36 : 0x5c, sizeof(pad));
                for (size_t i = 0; i < SHA1_LEN; i++)
                        pad[i] ^= key[i];
                if (!EVP_DigestInit_ex(ctx, sha1_md, NULL) ||
                    !EVP_DigestUpdate(ctx, pad, sizeof(pad)) ||
                    !EVP_DigestUpdate(ctx, pass == 0 ? msg : inner,
                                      pass == 0 ? len : SHA1_LEN) ||
                    !EVP_DigestFinal_ex(ctx, pass == 0 ? inner : out, &n) ||
                    n != SHA1_LEN)
                        goto out;
        }
        rc = 0;
out:
        EVP_MD_CTX_free(ctx);
        return rc;
}

/* |1|base64(salt)|base64(hmac): HMAC-SHA1 keyed by the salt over the name. */
static bool hashed_match(const char *name, size_t nn, const char *f, size_t n) {
        unsigned char salt[SHA1_LEN + 3], want[SHA1_LEN + 3];
        unsigned char got[SHA1_LEN];
        const char *bar;

        if (n < 3 || memcmp(f, "|1|", 3) != 0)
                return false;
        f += 3;
        n -= 3;
        bar = memchr(f, '|', n);
        if (!bar)
                return false;
        if (b64_decode(f, (size_t)(bar - f), salt, sizeof(salt)) != SHA1_LEN ||
            b64_decode(bar + 1, n - (size_t)(bar - f) - 1, want,
                       sizeof(want)) != SHA1_LEN)
                return false;
        if (hmac_sha1(salt, (const unsigned char *)name, nn, got) == -1)
                return false;
        return memcmp(got, want, SHA1_LEN) == 0;
}

static bool host_matches(const char *name, size_t nn, const struct line *l) {
        if (l->hosts_len > 0 && l->hosts[0] == '|')
                return hashed_match(name, nn, l->hosts, l->hosts_len);
        return patterns_match(name, nn, l->hosts, l->hosts_len);
}

/* ---- lines --------------------------------------------------------------- */

/* The next word of [*p, end): skips blanks first. */
static const char *word(const char **p, const char *end, size_t *n) {
        const char *s = *p, *w;

        while (s < end && is_blank(*s))
                s++;
        w = s;
        while (s < end && !is_blank(*s))
                s++;
        *n = (size_t)(s - w);
        *p = s;
        return w;
}

/* Split one line (no '\n'); false for a blank line, a comment or a line
 * with a field missing. */
static bool line_split(const char *s, size_t n, struct line *l) {
        const char *end = s + n, *p = s;
        const char *nul = memchr(s, '\0', n);

        /* OpenSSH reads lines as C strings: a NUL ends the line. */
        if (nul)
                end = nul;
        memset(l, 0, sizeof(*l));
        while (p < end && is_blank(*p))
                p++;
        if (p == end || *p == '#')
                return false;
        if (*p == '@') {
                l->marker = word(&p, end, &l->marker_len);
                l->marker++;
                l->marker_len--;
        }
        l->hosts = word(&p, end, &l->hosts_len);
        l->type = word(&p, end, &l->type_len);
        l->key = word(&p, end, &l->key_len);
        return l->hosts_len > 0 && l->type_len > 0 && l->key_len > 0;
}

static bool marker_is(const struct line *l, const char *m) {
        return l->marker_len == strlen(m) &&
               memcmp(l->marker, m, l->marker_len) == 0;
}

/* -1: the key is not a key (OpenSSH skips the line); 1 equal; 0 not. */
static int
key_compare(const struct line *l, const unsigned char *blob, size_t blob_len) {
        unsigned char buf[BLOB_MAX];
        long n = b64_decode(l->key, l->key_len, buf, sizeof(buf));

        if (n < 4)
                return -1;
        /* The blob opens with its type as an SSH string: it must be the word
         * before it (OpenSSH's sshkey_read refuses a type mismatch). */
        uint32_t tlen = ((uint32_t)buf[0] << 24) | ((uint32_t)buf[1] << 16) |
                        ((uint32_t)buf[2] << 8) | (uint32_t)buf[3];
        if (tlen != l->type_len || (size_t)n - 4 < tlen ||
            memcmp(buf + 4, l->type, tlen) != 0)
                return -1;
        return blob && (size_t)n == blob_len &&
               memcmp(buf, blob, blob_len) == 0;
}

enum known_hosts_result known_hosts_check(const char *text,
                                          size_t len,
                                          const char *host,
                                          int port,
                                          const unsigned char *key_blob,
                                          size_t key_len) {
        char name[NAME_MAX_LEN];
        size_t hn, nn = 0;
        bool found = false, matched = false, revoked = false;

        if (!host || !host[0] || port < 0 || port > 65535)
                return KNOWN_HOSTS_NOT_FOUND;
        hn = strlen(host);
        if (hn > 1024)
                return KNOWN_HOSTS_NOT_FOUND;
        /* OpenSSH's put_host_port(): the plain name only for the default
         * port, so a "host" line never vouches for host:2222. */
        if (port != 0 && port != 22)
                name[nn++] = '[';
        for (size_t i = 0; i < hn; i++)
                name[nn++] = (char)lower((unsigned char)host[i]);
        if (port != 0 && port != 22)
                nn += (size_t)snprintf(name + nn, sizeof(name) - nn, "]:%d",
                                       port);

        for (size_t pos = 0; text && pos < len;) {
                const char *s = text + pos;
                const char *nl = memchr(s, '\n', len - pos);
                size_t n = nl ? (size_t)(nl - s) : len - pos;
                struct line l;
                int k;

                pos += n + 1;
                if (!line_split(s, n, &l))
                        continue;
                if (l.marker && !marker_is(&l, "revoked"))
                        continue; /* @cert-authority, or unknown: skipped */
                k = key_compare(&l, key_blob, key_len);
                if (k < 0 || !host_matches(name, nn, &l))
                        continue;
                if (l.marker) {
                        revoked = revoked || k == 1;
                        continue;
                }
                found = true;
                matched = matched || k == 1;
        }
        if (revoked)
                return KNOWN_HOSTS_REVOKED;
        if (matched)
                return KNOWN_HOSTS_MATCH;
        return found ? KNOWN_HOSTS_MISMATCH : KNOWN_HOSTS_NOT_FOUND;
}

const char *known_hosts_result_name(enum known_hosts_result r) {
        switch (r) {
        case KNOWN_HOSTS_MATCH:
                return "match";
        case KNOWN_HOSTS_MISMATCH:
                return "mismatch";
        case KNOWN_HOSTS_NOT_FOUND:
                return "not found";
        case KNOWN_HOSTS_REVOKED:
                return "revoked";
        }
        return "unknown";
}
