/* listen_addr.h - a listening address as the settings write it:
 * "IPV4:PORT" or "[IPV6]:PORT", port 0-65535. Pure: no socket is opened.
 *
 * Below both config.c (which checks THOPTER_METRICS_ADDR at start) and
 * health_server.c (which listens on it), so what starts is what listens and
 * config.c needs nothing of the health server.
 */
#ifndef THOPTER_LISTEN_ADDR_H
#define THOPTER_LISTEN_ADDR_H

#include "err.h"

#include <netinet/in.h>

struct listen_addr {
        union {
                struct sockaddr_in v4;
                struct sockaddr_in6 v6;
        } u;           /* ready for bind(): family, port, address */
        int v6;        /* written [IPV6]:PORT ("[::]" is any address) */
        int port;      /* 0: the system picks one */
        char host[64]; /* the address as written, without brackets */
};

/**
 * @brief Parse @p s into @p a. The error (ERR_PERMANENT) starts with
 * @p setting, the name of the setting it came from.
 * @returns 0 or -1.
 */
int listen_addr_parse(const char *setting,
                      const char *s,
                      struct listen_addr *a,
                      struct err *err);

#endif
