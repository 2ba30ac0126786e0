/* test_host_keys.c - per-machine host keys: derived the same way every time,
 * different per request, and in a format OpenSSH itself reads. */
#include "host_keys.h"
#include "secret.h"
#include "strfmt.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char secret[] = "the consumer's private key file, say";

static struct host_key derive(const char *id) {
        struct host_key k;
        struct err err = {0};
        cr_assert_eq(
            host_keys_derive_host_key(secret, sizeof(secret), id, &k, &err), 0,
            "%s", err.msg);
        return k;
}

/* Run @p cmd and return its first output line (malloc'd). */
static char *run_line(const char *cmd) {
        FILE *p = popen(cmd, "r");
        char buf[4096] = "";
        cr_assert_not_null(p);
        if (!fgets(buf, sizeof(buf), p))
                buf[0] = '\0';
        pclose(p);
        buf[strcspn(buf, "\n")] = '\0';
        return strdup(buf);
}

Test(host_keys, derivation_is_stable_and_per_request) {
        struct host_key a = derive("prov-1"), b = derive("prov-1");
        struct host_key c = derive("prov-10");

        cr_assert_eq(memcmp(&a, &b, sizeof(a)), 0);
        cr_assert_neq(memcmp(a.pub, c.pub, sizeof(a.pub)), 0);
        struct err err = {0};
        struct host_key d;
        cr_assert_eq(
            host_keys_derive_host_key("another secret", 14, "prov-1", &d, &err),
            0);
        cr_assert_neq(memcmp(a.pub, d.pub, sizeof(a.pub)), 0,
                      "the secret must matter");
}

Test(host_keys, openssh_reads_the_private_key_and_agrees_on_the_public_one) {
        struct host_key k = derive("prov-42");
        char dir[] = "/tmp/host_keys.XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        char *path = strfmt("%s/ssh_host_ed25519_key", dir);
        char *pem = host_keys_private_openssh(&k, "thopter-42");
        cr_assert_not_null(pem);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fputs(pem, f);
        fclose(f);
        chmod(path, 0600);

        char *cmd = strfmt("ssh-keygen -y -f %s 2>&1", path);
        char *from_openssh = run_line(cmd);
        char *ours = host_keys_public_line(&k, "thopter-42");
        cr_assert_str_eq(from_openssh, ours);
        /* And what ssh-keygen prints for the file is deterministic. */
        char *pem2 = host_keys_private_openssh(&k, "thopter-42");
        cr_assert_str_eq(pem, pem2);

        free(cmd);
        cmd = strfmt("rm -rf %s", dir);
        cr_assert_eq(system(cmd), 0);
        free(cmd);
        secret_free(pem);
        secret_free(pem2);
        free(path);
        free(from_openssh);
        free(ours);
}

Test(host_keys, public_blob_is_the_wire_form) {
        struct host_key k = derive("x");
        unsigned char blob[HOST_KEYS_BLOB_MAX];
        size_t n = host_keys_public_blob(&k, blob, sizeof(blob));
        cr_assert_eq(n, 4 + 11 + 4 + 32);
        cr_assert_eq(memcmp(blob + 4, "ssh-ed25519", 11), 0);
        cr_assert_eq(memcmp(blob + 19, k.pub, 32), 0);
        cr_assert_eq(host_keys_public_blob(&k, blob, 10), 0);
}

Test(host_keys, client_public_line_from_the_private_key_alone) {
        char dir[] = "/tmp/host_keys.XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        char *cmd =
            strfmt("ssh-keygen -q -t ed25519 -N '' -C me -f %s/id", dir);
        cr_assert_eq(system(cmd), 0);
        free(cmd);
        char *key = strfmt("%s/id", dir), *pub = strfmt("%s/id.pub", dir);
        struct err err = {0};

        /* With KEY.pub beside it: its line. */
        char *line = host_keys_client_public_line(key, &err);
        cr_assert_not_null(line, "%s", err.msg);
        cmd = strfmt("cat %s", pub);
        char *expect = run_line(cmd);
        free(cmd);
        cr_assert_str_eq(line, expect);
        free(line);

        /* Without it: read from the private key (type and key, no comment). */
        cr_assert_eq(unlink(pub), 0);
        line = host_keys_client_public_line(key, &err);
        cr_assert_not_null(line, "%s", err.msg);
        cr_assert_eq(strncmp(line, expect, strlen(line)), 0, "%s vs %s", line,
                     expect);
        cr_assert(strncmp(line, "ssh-ed25519 AAAA", 16) == 0, "%s", line);
        free(line);

        /* Neither: a clear error naming the setting. */
        FILE *f = fopen(key, "w");
        fputs("not a key\n", f);
        fclose(f);
        err = (struct err){0};
        cr_assert_null(host_keys_client_public_line(key, &err));
        cr_assert(strstr(err.msg, "THOPTER_SSH_KEY"), "%s", err.msg);
        /* ...and says so in the field, for callers that would add it. */
        cr_assert_str_eq(err.field, "THOPTER_SSH_KEY");

        cmd = strfmt("rm -rf %s", dir);
        cr_assert_eq(system(cmd), 0);
        free(cmd);
        free(key);
        free(pub);
        free(expect);
}
