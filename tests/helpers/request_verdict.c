/* request_verdict.c - tests only: the consumer's verdict on request payloads,
 * from the same request_parse_*() the consumer runs on every record
 * (request.h), so another validator can be compared with it.
 *
 *   request_verdict KIND FILE...     KIND: provision or destroy
 *
 * One line per FILE, tab-separated:
 *   FILE  valid
 *   FILE  invalid  CLASS  STEP  MESSAGE
 * CLASS is what a dead letter's thopter.dlq.error.class would say
 * (invalid_request for every rule of contract section 2). The messages are
 * one line of printable UTF-8 (request.c). Exit 0 when every file was read,
 * 1 when one could not be, 2 on bad usage.
 */
#include "request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *slurp(const char *path, size_t *len) {
        FILE *f = fopen(path, "rb");
        char *buf = NULL;
        size_t cap = 0, n = 0;

        if (!f)
                return NULL;
        for (;;) {
                if (n == cap) {
                        char *grown = realloc(buf, cap = cap ? cap * 2 : 65536);
                        if (!grown) {
                                free(buf);
                                fclose(f);
                                return NULL;
                        }
                        buf = grown;
                }
                size_t got = fread(buf + n, 1, cap - n, f);
                n += got;
                if (got == 0)
                        break;
        }
        if (ferror(f)) {
                free(buf);
                buf = NULL;
        }
        fclose(f);
        *len = n;
        return buf;
}

int main(int argc, char **argv) {
        int provision, rc = 0;

        if (argc < 3 || (strcmp(argv[1], "provision") != 0 &&
                         strcmp(argv[1], "destroy") != 0)) {
                fprintf(stderr, "usage: %s provision|destroy FILE...\n",
                        argv[0]);
                return 2;
        }
        provision = strcmp(argv[1], "provision") == 0;
        for (int i = 2; i < argc; i++) {
                struct provision_request prov;
                struct destroy_request destroy;
                struct err err = {0};
                size_t len = 0;
                char *buf = slurp(argv[i], &len);
                int r;

                if (!buf) {
                        fprintf(stderr, "%s: cannot read %s\n", argv[0],
                                argv[i]);
                        rc = 1;
                        continue;
                }
                if (provision) {
                        r = request_parse_provision(buf, len, &prov, &err);
                        request_provision_free(&prov);
                } else {
                        r = request_parse_destroy(buf, len, &destroy, &err);
                        request_destroy_free(&destroy);
                }
                free(buf);
                if (r == 0)
                        printf("%s\tvalid\n", argv[i]);
                else
                        printf("%s\tinvalid\t%s\t%s\t%s\n", argv[i],
                               err_class_name(err.cls), err.step, err.msg);
        }
        return rc;
}
