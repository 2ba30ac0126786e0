/* health_server.c - see health_server.h. */
#include "health_server.h"
#include "log.h"
#include "metrics.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIVE_MAX_POLL_AGE_MS 30000

struct health_server {
        struct MHD_Daemon *daemon;
        struct kafka_loop *loops[4];
        int nloops;
        int port;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type, char *body) {
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
                free(body);
                return MHD_NO;
        }
        MHD_add_response_header(resp, "Content-Type", type);
        enum MHD_Result r = MHD_queue_response(conn, status, resp);
        MHD_destroy_response(resp);
        return r;
}

static enum MHD_Result handle(void *cls,
                              struct MHD_Connection *conn,
                              const char *url,
                              const char *method,
                              const char *version,
                              const char *upload_data,
                              size_t *upload_data_size,
                              void **con_cls) {
        struct health_server *hs = cls;
        char why[512] = "";
        (void)version;
        (void)upload_data;
        (void)upload_data_size;
        (void)con_cls;

        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
                return reply(conn, 405, "text/plain", strdup("method not allowed\n"));
        if (strcmp(url, "/metrics") == 0) {
                for (int i = 0; i < hs->nloops; i++) {
                        char labels[96];
                        snprintf(labels, sizeof(labels), "loop=\"%s\"", kafka_loop_name(hs->loops[i]));
                        metrics_set("thopter_poll_age_seconds", labels,
                                    (double)kafka_loop_poll_age_ms(hs->loops[i]) / 1000.0);
                }
                char *body = metrics_render();
                return reply(conn, 200, "text/plain; version=0.0.4", body ? body : strdup(""));
        }
        if (strcmp(url, "/livez") == 0) {
                for (int i = 0; i < hs->nloops; i++) {
                        long age = kafka_loop_poll_age_ms(hs->loops[i]);
                        if (age > LIVE_MAX_POLL_AGE_MS) {
                                snprintf(why, sizeof(why), "%s: poll loop stalled for %ld ms\n",
                                         kafka_loop_name(hs->loops[i]), age);
                                return reply(conn, 503, "text/plain", strdup(why));
                        }
                }
                return reply(conn, 200, "text/plain", strdup("ok\n"));
        }
        if (strcmp(url, "/readyz") == 0) {
                for (int i = 0; i < hs->nloops; i++) {
                        if (!kafka_loop_ready(hs->loops[i], 1000, why, sizeof(why) - 1)) {
                                strcat(why, "\n");
                                return reply(conn, 503, "text/plain", strdup(why));
                        }
                }
                return reply(conn, 200, "text/plain", strdup("ready\n"));
        }
        return reply(conn, 404, "text/plain", strdup("not found: try /metrics, /livez or /readyz\n"));
}

struct health_server *health_server_start(const char *addr,
                                          struct kafka_loop *const *loops,
                                          int nloops,
                                          struct err *err) {
        struct sockaddr_in sin = {.sin_family = AF_INET};
        char host[64];
        const char *colon = strrchr(addr, ':');
        struct health_server *hs;

        if (!colon || (size_t)(colon - addr) >= sizeof(host)) {
                err_set(err, ERR_PERMANENT, 0, "THOPTER_METRICS_ADDR: expected HOST:PORT (got \"%s\")", addr);
                return NULL;
        }
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = '\0';
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (*end || port < 0 || port > 65535 || inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
                err_set(err, ERR_PERMANENT, 0,
                        "THOPTER_METRICS_ADDR: expected IPv4-HOST:PORT (got \"%s\")", addr);
                return NULL;
        }
        sin.sin_port = htons((uint16_t)port);
        hs = calloc(1, sizeof(*hs));
        if (!hs) {
                err_set(err, ERR_PERMANENT, 0, "health server: out of memory");
                return NULL;
        }
        hs->nloops = nloops > 4 ? 4 : nloops;
        for (int i = 0; i < hs->nloops; i++)
                hs->loops[i] = loops[i];
        metrics_describe("thopter_poll_age_seconds", METRICS_GAUGE,
                         "Seconds since each Kafka loop last polled");
        hs->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                                      handle, hs, MHD_OPTION_SOCK_ADDR, &sin,
                                      MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
        if (!hs->daemon) {
                free(hs);
                err_set(err, ERR_PERMANENT, 0,
                        "THOPTER_METRICS_ADDR: cannot listen on %s (in use?)", addr);
                return NULL;
        }
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(hs->daemon, MHD_DAEMON_INFO_BIND_PORT);
        hs->port = info ? info->port : (int)port;
        log_info("health", "serving /metrics /livez /readyz on %s:%d", host, hs->port);
        return hs;
}

int health_server_port(const struct health_server *hs) {
        return hs->port;
}

void health_server_stop(struct health_server *hs) {
        if (!hs)
                return;
        MHD_stop_daemon(hs->daemon);
        free(hs);
}
