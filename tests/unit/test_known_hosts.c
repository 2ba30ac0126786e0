/* test_known_hosts.c - known_hosts.c on the known_hosts texts of
 * tests/data/known_hosts (keys made with ssh-keygen, hashed lines with
 * ssh-keygen -H), one table row per case; and OpenSSH's own ssh-keygen -F as
 * an oracle for which lines name a host.
 */
#include "known_hosts.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define DIR TEST_DATA_DIR "/known_hosts"

#define MATCH     KNOWN_HOSTS_MATCH
#define MISMATCH  KNOWN_HOSTS_MISMATCH
#define NOT_FOUND KNOWN_HOSTS_NOT_FOUND
#define REVOKED   KNOWN_HOSTS_REVOKED

/* The file's bytes; *len its size. */
static char *slurp(const char *name, size_t *len) {
        char path[512];
        FILE *f;
        char *buf;
        long n;

        snprintf(path, sizeof(path), "%s/%s", DIR, name);
        f = fopen(path, "rb");
        cr_assert_not_null(f, "cannot open %s", path);
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        fseek(f, 0, SEEK_SET);
        buf = malloc((size_t)n + 1);
        cr_assert_not_null(buf);
        cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
        buf[n] = '\0';
        fclose(f);
        *len = (size_t)n;
        return buf;
}

static int b64(char c) {
        const char *a =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const char *p = strchr(a, c);
        return c && p ? (int)(p - a) : -1;
}

/* The decoded blob of key-NAME.pub ("type base64 comment"). */
static size_t key_blob(const char *name, unsigned char *out, size_t cap) {
        char file[64];
        size_t len, o = 0;
        char *text;
        unsigned bits = 0, acc = 0;

        snprintf(file, sizeof(file), "key-%s.pub", name);
        text = slurp(file, &len);
        char *p = strchr(text, ' ');
        cr_assert_not_null(p);
        for (p++; *p && *p != ' ' && *p != '\n' && *p != '='; p++) {
                int v = b64(*p);
                cr_assert(v >= 0, "%s: bad base64", file);
                acc = (acc << 6) | (unsigned)v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        cr_assert(o < cap);
                        out[o++] = (unsigned char)(acc >> bits);
                }
        }
        free(text);
        return o;
}

struct row {
        const char *file;
        const char *host;
        int port;
        const char *key; /* a, b, c, e: tests/data/known_hosts/key-*.pub */
        enum known_hosts_result want;
        const char *why;
};

static const struct row rows[] = {
    /* plain names, comments, blank lines, lists, case */
    {"basic.known_hosts", "host1.example", 22, "a", MATCH, "plain line"},
    {"basic.known_hosts", "host1.example", 22, "b", MISMATCH, "other key"},
    {"basic.known_hosts", "HOST1.Example", 22, "a", MATCH, "case-insensitive"},
    {"basic.known_hosts", "host2.example", 22, "b", MATCH, "list, tab indent"},
    {"basic.known_hosts", "10.0.0.2", 22, "b", MATCH, "second of a list"},
    {"basic.known_hosts", "10.0.0.2", 22, "a", MISMATCH, "list, other key"},
    {"basic.known_hosts", "host3.example", 22, "c", MATCH, "upper pattern"},
    {"basic.known_hosts", "host4.example", 22, "e", MATCH, "ecdsa key"},
    {"basic.known_hosts", "host4.example", 22, "a", MISMATCH, "other type"},
    {"basic.known_hosts", "host5.example", 22, "a", MATCH, "two lines, 1st"},
    {"basic.known_hosts", "host5.example", 22, "b", MATCH, "two lines, 2nd"},
    {"basic.known_hosts", "host5.example", 22, "c", MISMATCH, "neither"},
    {"basic.known_hosts", "host6.example", 22, "a", NOT_FOUND, "unknown host"},
    {"basic.known_hosts", "host1", 22, "a", NOT_FOUND, "no prefix match"},
    {"basic.known_hosts", "host1.example.", 22, "a", NOT_FOUND, "no suffix"},
    {"basic.known_hosts", "an", 22, "a", NOT_FOUND, "a comment word"},
    {"basic.known_hosts", "", 22, "a", NOT_FOUND, "empty host"},
    {"basic.known_hosts", "host1.example", -1, "a", NOT_FOUND, "bad port"},
    {"basic.known_hosts", "host1.example", 65536, "a", NOT_FOUND, "bad port"},
    /* ports: OpenSSH looks up [host]:port for any port but 22 */
    {"ports.known_hosts", "plain.example", 22, "a", MATCH, "port 22 plain"},
    {"ports.known_hosts", "plain.example", 0, "a", MATCH, "port 0 = 22"},
    {"ports.known_hosts", "plain.example", 2222, "a", NOT_FOUND,
     "plain line, other port"},
    {"ports.known_hosts", "bracket.example", 2222, "b", MATCH, "[h]:port"},
    {"ports.known_hosts", "bracket.example", 2223, "b", NOT_FOUND,
     "[h]:port, other port"},
    {"ports.known_hosts", "bracket.example", 22, "b", NOT_FOUND,
     "[h]:port, port 22"},
    {"ports.known_hosts", "twentytwo.example", 22, "c", NOT_FOUND,
     "[h]:22 is never looked up"},
    {"ports.known_hosts", "both.example", 2222, "a", MATCH, "port line"},
    {"ports.known_hosts", "both.example", 2222, "b", MISMATCH,
     "plain line's key is not the port's"},
    {"ports.known_hosts", "both.example", 22, "b", MATCH, "plain line"},
    {"ports.known_hosts", "both.example", 22, "a", MISMATCH,
     "port line's key is not port 22's"},
    /* wildcards and negation */
    {"patterns.known_hosts", "x.wild.example", 22, "a", MATCH, "*"},
    {"patterns.known_hosts", "a.b.wild.example", 22, "a", MATCH, "* dots"},
    {"patterns.known_hosts", "wild.example", 22, "a", NOT_FOUND, "*. needs ."},
    {"patterns.known_hosts", "w1.q.example", 22, "b", MATCH, "?"},
    {"patterns.known_hosts", "w12.q.example", 22, "b", NOT_FOUND, "? is one"},
    {"patterns.known_hosts", "w.q.example", 22, "b", NOT_FOUND, "? not zero"},
    {"patterns.known_hosts", "ok.neg.example", 22, "c", MATCH, "negation"},
    {"patterns.known_hosts", "bad.neg.example", 22, "c", NOT_FOUND,
     "negated match excludes the line"},
    {"patterns.known_hosts", "BAD.Neg.Example", 22, "c", NOT_FOUND,
     "negation is case-insensitive"},
    {"patterns.known_hosts", "ok.mixed.example", 22, "b", MATCH, "2nd line"},
    {"patterns.known_hosts", "skip.mixed.example", 22, "a", MATCH,
     "excluded by one line, matched by another"},
    {"patterns.known_hosts", "skip.mixed.example", 22, "b", MISMATCH,
     "the line with its key excludes it"},
    {"patterns.known_hosts", "a.portwild.example", 99, "a", MATCH,
     "[*]:* pattern"},
    {"patterns.known_hosts", "a.portwild.example", 22, "a", NOT_FOUND,
     "[*]:* is not port 22"},
    /* hashed entries */
    {"hashed.known_hosts", "hashed.example", 22, "a", MATCH, "hashed"},
    {"hashed.known_hosts", "HASHED.example", 22, "a", MATCH, "hashed, case"},
    {"hashed.known_hosts", "hashed.example", 22, "b", MISMATCH,
     "hashed, other key"},
    {"hashed.known_hosts", "hashed.example", 2222, "b", MATCH, "hashed port"},
    {"hashed.known_hosts", "hashed.example", 2223, "b", NOT_FOUND,
     "hashed, other port"},
    {"hashed.known_hosts", "hashedcase.example", 22, "c", MATCH,
     "hash of the lowercased name"},
    {"hashed.known_hosts", "hashed.exampl", 22, "a", NOT_FOUND, "near name"},
    /* markers */
    {"markers.known_hosts", "revoked.example", 22, "a", REVOKED,
     "@revoked wins over a plain line"},
    {"markers.known_hosts", "other.example", 22, "c", REVOKED,
     "@revoked * covers every host"},
    {"markers.known_hosts", "revoked.example", 22, "b", MISMATCH,
     "only that key is revoked"},
    {"markers.known_hosts", "nowhere.example", 22, "c", REVOKED,
     "revoked even where no line names the host"},
    {"markers.known_hosts", "ca.example", 22, "a", NOT_FOUND,
     "@cert-authority is ignored"},
    {"markers.known_hosts", "ca2.example", 22, "a", MISMATCH,
     "@cert-authority does not vouch"},
    {"markers.known_hosts", "ca2.example", 22, "b", MATCH, "plain line"},
    {"markers.known_hosts", "unknown.example", 22, "a", NOT_FOUND,
     "unknown marker: line skipped"},
    {"markers.known_hosts", "onlyrevoked.example", 22, "a", NOT_FOUND,
     "@revoked is not a line for the host"},
    {"markers.known_hosts", "onlyrevoked.example", 22, "b", REVOKED,
     "@revoked alone"},
    {"markers.known_hosts", "tab.example", 22, "a", REVOKED, "@revoked\\t"},
    /* malformed lines are skipped */
    {"malformed.known_hosts", "badb64.example", 22, "a", NOT_FOUND, "bad b64"},
    {"malformed.known_hosts", "unpadded.example", 22, "a", NOT_FOUND,
     "cut base64"},
    {"malformed.known_hosts", "typemismatch.example", 22, "a", NOT_FOUND,
     "type word is not the blob's"},
    {"malformed.known_hosts", "nokey.example", 22, "a", NOT_FOUND, "no key"},
    {"malformed.known_hosts", "notype.example", 22, "a", NOT_FOUND, "no type"},
    {"malformed.known_hosts", "nul.example", 22, "a", NOT_FOUND,
     "a NUL ends the line"},
    {"malformed.known_hosts", "crlf.example", 22, "a", MATCH, "CRLF line"},
    {"malformed.known_hosts", "after.example", 22, "a", MATCH,
     "last line without newline"},
    {"malformed.known_hosts", "after.example", 22, "b", MISMATCH,
     "last line, other key"},
};

Test(known_hosts, table) {
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                const struct row *r = &rows[i];
                unsigned char blob[1024];
                size_t len, blen = key_blob(r->key, blob, sizeof(blob));
                char *text = slurp(r->file, &len);
                enum known_hosts_result got =
                    known_hosts_check(text, len, r->host, r->port, blob, blen);
                free(text);
                cr_expect_eq(got, r->want,
                             "row %zu (%s): %s port %d key %s: got %s, want %s",
                             i, r->why, r->host, r->port, r->key,
                             known_hosts_result_name(got),
                             known_hosts_result_name(r->want));
        }
}

/* The text need not be NUL-terminated: only len bytes are read. */
Test(known_hosts, reads_only_len_bytes) {
        unsigned char blob[1024];
        size_t len, blen = key_blob("a", blob, sizeof(blob));
        char *text = slurp("ports.known_hosts", &len);
        const char *cut = strstr(text, "plain.example");
        char *copy;

        cr_assert_not_null(cut);
        /* Everything up to the line, no NUL after it. */
        size_t n = (size_t)(cut - text) + strlen("plain.example ssh-ed25519");
        copy = malloc(n);
        memcpy(copy, text, n);
        cr_expect_eq(
            known_hosts_check(copy, n, "plain.example", 22, blob, blen),
            NOT_FOUND);
        cr_expect_eq(
            known_hosts_check(NULL, 0, "plain.example", 22, blob, blen),
            NOT_FOUND);
        cr_expect_eq(known_hosts_check(text, len, "plain.example", 22, NULL, 0),
                     MISMATCH);
        free(copy);
        free(text);
}

/* A pattern that takes exponential time with OpenSSH's recursive matcher
 * ends here at once (the whole test is under Criterion's timeout). */
Test(known_hosts, hostile_pattern_is_linear, .timeout = 10.0) {
        unsigned char blob[1024];
        size_t blen = key_blob("a", blob, sizeof(blob));
        char line[4096], host[600];
        size_t klen, n = 0;
        char *key = slurp("key-a.pub", &klen);

        for (int i = 0; i < 300; i++)
                n += (size_t)snprintf(line + n, sizeof(line) - n, "*a");
        n += (size_t)snprintf(line + n, sizeof(line) - n, "*b %s", key);
        free(key);
        memset(host, 'a', sizeof(host) - 1);
        host[sizeof(host) - 1] = '\0';
        cr_expect_eq(known_hosts_check(line, n, host, 22, blob, blen),
                     NOT_FOUND);
}

/* Oracle: OpenSSH's `ssh-keygen -F NAME -f FILE` finds a line for NAME
 * exactly when we say MATCH or MISMATCH, for the files without markers
 * (ssh-keygen -F lists marker lines too; the hash of a name is taken as
 * given, so it is asked with the lowercased name, as ssh itself does). */
Test(known_hosts, agrees_with_ssh_keygen) {
        if (system("command -v ssh-keygen >/dev/null 2>&1") != 0)
                cr_skip_test("ssh-keygen is not installed");
        int checked = 0;
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                const struct row *r = &rows[i];
                char name[256], cmd[1024];
                size_t k = 0;

                if (strcmp(r->file, "markers.known_hosts") == 0 ||
                    strcmp(r->file, "malformed.known_hosts") == 0 ||
                    !r->host[0] || r->port < 0 || r->port > 65535)
                        continue;
                if (r->port != 0 && r->port != 22)
                        k += (size_t)snprintf(name, sizeof(name), "[");
                for (const char *h = r->host; *h; h++)
                        name[k++] =
                            (char)((*h >= 'A' && *h <= 'Z') ? *h - 'A' + 'a'
                                                            : *h);
                name[k] = '\0';
                if (r->port != 0 && r->port != 22)
                        snprintf(name + k, sizeof(name) - k, "]:%d", r->port);
                snprintf(cmd, sizeof(cmd),
                         "ssh-keygen -F '%s' -f '%s/%s' >/dev/null 2>&1", name,
                         DIR, r->file);
                int st = system(cmd);
                int found = WIFEXITED(st) && WEXITSTATUS(st) == 0;
                int ours = r->want == MATCH || r->want == MISMATCH;
                cr_expect_eq(
                    found, ours, "row %zu (%s): ssh-keygen -F %s in %s: %s", i,
                    r->why, name, r->file, found ? "found" : "not found");
                checked++;
        }
        cr_assert_gt(checked, 30);
}
