/* listen_addr.c - see listen_addr.h. */
#include "listen_addr.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int listen_addr_parse(const char *setting,
                      const char *s,
                      struct listen_addr *a,
                      struct err *err) {
        const char *colon = strrchr(s, ':');
        const char *h = s, *hend = colon;
        char *end = NULL;
        long port;

        memset(a, 0, sizeof(*a));
        if (s[0] == '[') {
                const char *close = strchr(s, ']');
                if (!close || close[1] != ':')
                        return err_set(err, ERR_PERMANENT, 0,
                                       "%s: expected "
                                       "[IPV6]:PORT (got \"%s\")",
                                       setting, s);
                h = s + 1;
                hend = close;
                colon = close + 1;
                a->v6 = 1;
        }
        if (!colon || hend < h || (size_t)(hend - h) >= sizeof(a->host))
                return err_set(err, ERR_PERMANENT, 0,
                               "%s: expected IPV4:PORT or "
                               "[IPV6]:PORT, or off "
                               "(got \"%s\")",
                               setting, s);
        memcpy(a->host, h, (size_t)(hend - h));
        a->host[hend - h] = '\0';
        port = strtol(colon + 1, &end, 10);
        if (!colon[1] || *end || port < 0 || port > 65535)
                return err_set(err, ERR_PERMANENT, 0,
                               "%s: port must be 0 to 65535 "
                               "(got \"%s\")",
                               setting, s);
        a->port = (int)port;
        if (a->v6) {
                a->u.v6.sin6_family = AF_INET6;
                a->u.v6.sin6_port = htons((uint16_t)port);
                if (inet_pton(AF_INET6, a->host, &a->u.v6.sin6_addr) != 1)
                        return err_set(err, ERR_PERMANENT, 0,
                                       "%s: \"%s\" is not an "
                                       "IPv6 address",
                                       setting, a->host);
        } else {
                a->u.v4.sin_family = AF_INET;
                a->u.v4.sin_port = htons((uint16_t)port);
                if (inet_pton(AF_INET, a->host, &a->u.v4.sin_addr) != 1)
                        return err_set(err, ERR_PERMANENT, 0,
                                       "%s: \"%s\" is not an "
                                       "IPv4 address "
                                       "(write IPv6 as [ADDR]:PORT)",
                                       setting, a->host);
        }
        return 0;
}
