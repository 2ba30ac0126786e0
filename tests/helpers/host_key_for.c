/* host_key_for.c - tests only: the SSH host key the consumer gives the
 * machine of a request (host_keys.h), so a test's sshd can present it.
 *
 *   host_key_for SECRET_FILE REQUEST_ID          private key, OpenSSH format
 *   host_key_for --public SECRET_FILE REQUEST_ID  "ssh-ed25519 BASE64 ID"
 *
 * SECRET_FILE is what THOPTER_SSH_KEY names. This prints a private key, so
 * it is built under tests/ and never installed: no operator needs it (the
 * consumer and the reaper derive the keys themselves).
 */
#include "host_keys.h"
#include "secret.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
        struct host_key key;
        struct err err = {0};
        unsigned char *secret;
        size_t len = 0;
        int pub = argc == 4 && strcmp(argv[1], "--public") == 0;
        char *out;

        if (argc != 3 + pub) {
                fprintf(stderr, "usage: %s [--public] SECRET_FILE REQUEST_ID\n",
                        argv[0]);
                return 2;
        }
        secret = host_keys_read_file(argv[1 + pub], &len, &err);
        if (!secret || host_keys_derive_host_key(secret, len, argv[2 + pub],
                                                 &key, &err) == -1) {
                fprintf(stderr, "%s: %s\n", argv[0], err.msg);
                return 1;
        }
        secret_wipe(secret, len);
        free(secret);
        out = pub ? host_keys_public_line(&key, argv[2 + pub])
                  : host_keys_private_openssh(&key, argv[2 + pub]);
        host_keys_wipe(&key);
        if (!out)
                return 1;
        fputs(out, stdout);
        if (pub)
                fputc('\n', stdout);
        secret_free(out);
        return 0;
}
