/* fuzz_known_hosts.c - libFuzzer target over known_hosts.c: a hostile
 * or corrupt known_hosts text (THOPTER_SSH_KNOWN_HOSTS is a file anyone with
 * access to the deployment can edit, and entries are written from machine
 * data).
 *
 * The input is the text, exactly its size (no NUL after it). It is checked
 * for one of a few hosts and ports (chosen by the input's size), with key A of
 * tests/data/known_hosts (the seed corpus is those files, so real lines for the
 * key exist). A reference matcher is OpenSSH itself
 * (tests/unit/test_known_hosts.c asks ssh-keygen); here the checks are
 * metamorphic:
 * - the result is one of the four values, and REVOKED needs an '@' in the
 *   text;
 * - the text plus a line "@revoked * KEY" is REVOKED for every host;
 * - the text plus a plain line naming the host ([host]:port off port 22)
 *   with the key is MATCH, or REVOKED when the text alone was REVOKED;
 * - the text plus a line for the host with another key is never MATCH when
 *   the text alone was not, and never NOT_FOUND;
 * - a comment line in front changes nothing.
 */
#include "known_hosts.h"
#include "fuzz_common.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* tests/data/known_hosts/key-a.pub and key-b.pub's keys */
#define KEY_A                                                                  \
        "ssh-ed25519 "                                                         \
        "AAAAC3NzaC1lZDI1NTE5AAAAIJezP44aZxodhTT1VSc7nKTT4snnN9ZTDrKz94E57thV"
#define KEY_B                                                                  \
        "ssh-ed25519 "                                                         \
        "AAAAC3NzaC1lZDI1NTE5AAAAIH5CLElQEHLZVx+IhhNE96ud/DHTSIvY/ZN1ehoVvcAX"

static const struct {
        const char *host;
        int port;
        const char *name; /* the lookup name */
} hosts[] = {
    {"hashed.example", 22, "hashed.example"},
    {"hashed.example", 2222, "[hashed.example]:2222"},
    {"x.wild.example", 22, "x.wild.example"},
    {"HOST1.example", 22, "host1.example"},
    {"a.portwild.example", 99, "[a.portwild.example]:99"},
};

static unsigned char blob[256];
static size_t blob_len;

static int b64(char c) {
        const char *a =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const char *p = strchr(a, c);
        return c && p ? (int)(p - a) : -1;
}

static void init_blob(void) {
        const char *p = strchr(KEY_A, ' ') + 1;
        unsigned acc = 0, bits = 0;

        for (; *p && *p != '='; p++) {
                acc = (acc << 6) | (unsigned)b64(*p);
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        blob[blob_len++] = (unsigned char)(acc >> bits);
                }
        }
}

/* check(text + "\n" + line) */
static enum known_hosts_result
with_line(const char *text, size_t size, const char *line, int i) {
        size_t ln = strlen(line);
        char *buf = malloc(size + ln + 1);

        if (!buf)
                abort();
        memcpy(buf, text, size);
        buf[size] = '\n';
        memcpy(buf + size + 1, line, ln);
        enum known_hosts_result r = known_hosts_check(
            buf, size + 1 + ln, hosts[i].host, hosts[i].port, blob, blob_len);
        free(buf);
        return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *text = (const char *)data;
        char line[512];

        if (!blob_len)
                init_blob();
        /* One host per input, chosen by its size, keeps the rate up. */
        for (int i = (int)(size % (sizeof(hosts) / sizeof(hosts[0]))); i >= 0;
             i = -1) {
                enum known_hosts_result r = known_hosts_check(
                    text, size, hosts[i].host, hosts[i].port, blob, blob_len);
                CHECK(r == KNOWN_HOSTS_MATCH || r == KNOWN_HOSTS_MISMATCH ||
                      r == KNOWN_HOSTS_NOT_FOUND || r == KNOWN_HOSTS_REVOKED);
                if (r == KNOWN_HOSTS_REVOKED)
                        CHECK(memchr(text, '@', size) != NULL);

                CHECK(with_line(text, size, "@revoked * " KEY_A, i) ==
                      KNOWN_HOSTS_REVOKED);

                snprintf(line, sizeof(line), "%s %s", hosts[i].name, KEY_A);
                enum known_hosts_result a = with_line(text, size, line, i);
                CHECK(a == (r == KNOWN_HOSTS_REVOKED ? KNOWN_HOSTS_REVOKED
                                                     : KNOWN_HOSTS_MATCH));

                snprintf(line, sizeof(line), "%s %s", hosts[i].name, KEY_B);
                enum known_hosts_result b = with_line(text, size, line, i);
                CHECK(b != KNOWN_HOSTS_NOT_FOUND);
                CHECK(b == r || r == KNOWN_HOSTS_NOT_FOUND);

                /* A comment line in front changes nothing. */
                char *pre = malloc(size + 3);
                if (!pre)
                        abort();
                memcpy(pre, "#\n", 2);
                memcpy(pre + 2, text, size);
                CHECK(known_hosts_check(pre, size + 2, hosts[i].host,
                                        hosts[i].port, blob, blob_len) == r);
                free(pre);
        }
        return 0;
}
