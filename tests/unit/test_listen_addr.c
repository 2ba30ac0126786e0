/* Unit tests of listen_addr_parse: IPv4 and bracketed IPv6 with a port,
 * the error naming the setting, anything else refused. */
#include "listen_addr.h"

#include <criterion/criterion.h>
#include <string.h>

static const struct {
        const char *text;
        int rc;
        int v6;
        int port;
} cases[] = {
    {"127.0.0.1:9464", 0, 0, 9464}, {"0.0.0.0:0", 0, 0, 0},
    {"[::1]:9464", 0, 1, 9464},     {"[::]:65535", 0, 1, 65535},
    {"127.0.0.1", -1, 0, 0},        {"127.0.0.1:", -1, 0, 0},
    {"127.0.0.1:65536", -1, 0, 0},  {"127.0.0.1:-1", -1, 0, 0},
    {"127.0.0.1:80x", -1, 0, 0},    {"localhost:9464", -1, 0, 0},
    {"::1:9464", -1, 0, 0},         {"[::1]9464", -1, 0, 0},
    {"[127.0.0.1]:9464", -1, 0, 0}, {"[::1:9464", -1, 0, 0},
};

Test(listen_addr, ipv4_ipv6_and_refusals) {
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct listen_addr a;
                struct err err = {0};
                int rc = listen_addr_parse("X_ADDR", cases[i].text, &a, &err);
                cr_expect_eq(rc, cases[i].rc, "\"%s\": rc %d (%s)",
                             cases[i].text, rc, err.msg);
                if (rc == 0) {
                        cr_expect_eq(a.v6, cases[i].v6, "\"%s\"",
                                     cases[i].text);
                        cr_expect_eq(a.port, cases[i].port, "\"%s\"",
                                     cases[i].text);
                } else {
                        cr_expect(strncmp(err.msg, "X_ADDR: ", 8) == 0,
                                  "\"%s\": %s", cases[i].text, err.msg);
                        cr_expect_eq(err.kind, ERR_PERMANENT);
                }
        }
}
