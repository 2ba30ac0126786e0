/* health_server.c - see health_server.h.
 *
 * DESIGN
 * ------
 * libmicrohttpd with a thread per connection: /readyz asks the brokers for
 * metadata (1 s timeout) and /metrics asks them for committed offsets and
 * watermarks (LAG_TIMEOUT_MS each), and neither may delay /livez, which only
 * reads the loops' last poll times.
 *
 * Lag series: Prometheus has no "delete", and a partition that moved to
 * another instance in a rebalance must not keep its last lag here (a sum
 * over instances would count it twice), so a partition this instance
 * reported before and no longer owns is reported as 0.
 */
#include "health_server.h"
#include "clock.h"
#include "log.h"
#include "metrics.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIVE_MAX_POLL_AGE_MS 30000
#define READY_TIMEOUT_MS     1000
#define LAG_TIMEOUT_MS       500
#define MAX_LOOPS            4
#define MAX_LAG_SERIES       256
#define MAX_CONNECTIONS      16u

struct lag_series {
        char topic[128];
        int32_t partition;
        int seen;
};

struct health_server {
        struct MHD_Daemon *daemon;
        struct kafka_loop *loops[MAX_LOOPS];
        int nloops;
        int port;
        double started_s; /* wall clock: the "last commit" before any */
        pthread_mutex_t lag_lock;
        struct lag_series lag[MAX_LAG_SERIES];
        int nlag;
};

struct addr {
        union {
                struct sockaddr_in v4;
                struct sockaddr_in6 v6;
        } u;
        int v6;
        int port;
        char host[64];
};

static int parse_addr(const char *s, struct addr *a, struct err *err) {
        const char *colon = strrchr(s, ':');
        const char *h = s, *hend = colon;
        char *end = NULL;
        long port;

        memset(a, 0, sizeof(*a));
        if (s[0] == '[') {
                const char *close = strchr(s, ']');
                if (!close || close[1] != ':')
                        return err_set(err, ERR_PERMANENT, 0,
                                       "THOPTER_METRICS_ADDR: expected "
                                       "[IPV6]:PORT (got \"%s\")",
                                       s);
                h = s + 1;
                hend = close;
                colon = close + 1;
                a->v6 = 1;
        }
        if (!colon || hend < h || (size_t)(hend - h) >= sizeof(a->host))
                return err_set(err, ERR_PERMANENT, 0,
                               "THOPTER_METRICS_ADDR: expected IPV4:PORT or "
                               "[IPV6]:PORT, or off "
                               "(got \"%s\")",
                               s);
        memcpy(a->host, h, (size_t)(hend - h));
        a->host[hend - h] = '\0';
        port = strtol(colon + 1, &end, 10);
        if (!colon[1] || *end || port < 0 || port > 65535)
                return err_set(err, ERR_PERMANENT, 0,
                               "THOPTER_METRICS_ADDR: port must be 0 to 65535 "
                               "(got \"%s\")",
                               s);
        a->port = (int)port;
        if (a->v6) {
                a->u.v6.sin6_family = AF_INET6;
                a->u.v6.sin6_port = htons((uint16_t)port);
                if (inet_pton(AF_INET6, a->host, &a->u.v6.sin6_addr) != 1)
                        return err_set(err, ERR_PERMANENT, 0,
                                       "THOPTER_METRICS_ADDR: \"%s\" is not an "
                                       "IPv6 address",
                                       a->host);
        } else {
                a->u.v4.sin_family = AF_INET;
                a->u.v4.sin_port = htons((uint16_t)port);
                if (inet_pton(AF_INET, a->host, &a->u.v4.sin_addr) != 1)
                        return err_set(err, ERR_PERMANENT, 0,
                                       "THOPTER_METRICS_ADDR: \"%s\" is not an "
                                       "IPv4 address "
                                       "(write IPv6 as [ADDR]:PORT)",
                                       a->host);
        }
        return 0;
}

int health_server_check_addr(const char *addr, struct err *err) {
        struct addr a;
        return parse_addr(addr, &a, err);
}

static enum MHD_Result reply(struct MHD_Connection *conn,
                             unsigned status,
                             const char *type,
                             char *body) {
        struct MHD_Response *resp = MHD_create_response_from_buffer(
            strlen(body), body, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
                free(body);
                return MHD_NO;
        }
        MHD_add_response_header(resp, "Content-Type", type);
        MHD_add_response_header(resp, "Cache-Control", "no-store");
        enum MHD_Result r = MHD_queue_response(conn, status, resp);
        MHD_destroy_response(resp);
        return r;
}

/* ---- per-scrape metrics -------------------------------------------- */

struct lag_ctx {
        struct health_server *hs;
};

/* lag_lock held. */
static struct lag_series *
lag_find(struct health_server *hs, const char *topic, int32_t partition) {
        for (int i = 0; i < hs->nlag; i++)
                if (hs->lag[i].partition == partition &&
                    strcmp(hs->lag[i].topic, topic) == 0)
                        return &hs->lag[i];
        if (hs->nlag == MAX_LAG_SERIES)
                return NULL;
        struct lag_series *l = &hs->lag[hs->nlag++];
        snprintf(l->topic, sizeof(l->topic), "%s", topic);
        l->partition = partition;
        return l;
}

static void set_lag(const char *topic, int32_t partition, int64_t lag) {
        char labels[192];
        snprintf(labels, sizeof(labels),
                 "topic=\"%s\",partition=\"%" PRId32 "\"", topic, partition);
        metrics_set(M_CONSUMER_LAG, labels, (double)lag);
}

static void
on_lag(const char *topic, int32_t partition, int64_t lag, void *arg) {
        struct lag_ctx *ctx = arg;
        struct lag_series *l = lag_find(ctx->hs, topic, partition);
        if (l)
                l->seen = 1;
        set_lag(topic, partition, lag);
}

static void update_loop_metrics(struct health_server *hs,
                                struct kafka_loop *loop) {
        const char *topic = kafka_loop_topic(loop);
        char labels[192];
        struct lag_ctx ctx = {hs};
        double now = (double)clock_wall_ms() / 1000.0;

        snprintf(labels, sizeof(labels), "loop=\"%s\"", kafka_loop_name(loop));
        metrics_set(M_POLL_AGE, labels,
                    (double)kafka_loop_poll_age_ms(loop) / 1000.0);
        char why[256];
        metrics_set(M_READY, labels,
                    kafka_loop_ready(loop, READY_TIMEOUT_MS, why, sizeof(why)));

        snprintf(labels, sizeof(labels), "topic=\"%s\"", topic);
        double last = metrics_get(M_LAST_COMMIT_TIMESTAMP, labels);
        metrics_set(M_SECONDS_SINCE_LAST_COMMIT, labels,
                    now - (last > 0 ? last : hs->started_s));

        pthread_mutex_lock(&hs->lag_lock);
        for (int i = 0; i < hs->nlag; i++)
                if (strcmp(hs->lag[i].topic, topic) == 0)
                        hs->lag[i].seen = 0;
        int n = kafka_loop_lag(loop, LAG_TIMEOUT_MS, on_lag, &ctx);
        for (int i = 0; n >= 0 && i < hs->nlag; i++)
                if (!hs->lag[i].seen && strcmp(hs->lag[i].topic, topic) == 0)
                        set_lag(topic, hs->lag[i].partition,
                                0); /* no longer ours */
        pthread_mutex_unlock(&hs->lag_lock);
        if (n < 0)
                log_debug("health",
                          "%s: lag not available (brokers not answering)",
                          kafka_loop_name(loop));
}

/* ---- handlers ------------------------------------------------------ */

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
                return reply(conn, 405, "text/plain",
                             strdup("method not allowed\n"));
        if (strcmp(url, "/metrics") == 0) {
                for (int i = 0; i < hs->nloops; i++)
                        update_loop_metrics(hs, hs->loops[i]);
                char *body = metrics_render();
                return reply(conn, 200,
                             "text/plain; version=0.0.4; charset=utf-8",
                             body ? body : strdup(""));
        }
        if (strcmp(url, "/livez") == 0) {
                for (int i = 0; i < hs->nloops; i++) {
                        long age = kafka_loop_poll_age_ms(hs->loops[i]);
                        if (age > LIVE_MAX_POLL_AGE_MS) {
                                snprintf(why, sizeof(why),
                                         "%s: poll loop stalled for %ld ms\n",
                                         kafka_loop_name(hs->loops[i]), age);
                                return reply(conn, 503, "text/plain",
                                             strdup(why));
                        }
                }
                return reply(conn, 200, "text/plain", strdup("ok\n"));
        }
        if (strcmp(url, "/readyz") == 0) {
                for (int i = 0; i < hs->nloops; i++) {
                        if (!kafka_loop_ready(hs->loops[i], READY_TIMEOUT_MS,
                                              why, sizeof(why) - 1)) {
                                strcat(why, "\n");
                                return reply(conn, 503, "text/plain",
                                             strdup(why));
                        }
                }
                return reply(conn, 200, "text/plain", strdup("ready\n"));
        }
        return reply(conn, 404, "text/plain",
                     strdup("not found: try /metrics, /livez or /readyz\n"));
}

struct health_server *health_server_start(const char *addr,
                                          struct kafka_loop *const *loops,
                                          int nloops,
                                          struct err *err) {
        struct addr a;
        struct health_server *hs;
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD |
                         MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;

        if (parse_addr(addr, &a, err) == -1)
                return NULL;
        hs = calloc(1, sizeof(*hs));
        if (!hs) {
                err_oom(err, "health server");
                return NULL;
        }
        pthread_mutex_init(&hs->lag_lock, NULL);
        hs->started_s = (double)clock_wall_ms() / 1000.0;
        hs->nloops = nloops > MAX_LOOPS ? MAX_LOOPS : nloops;
        for (int i = 0; i < hs->nloops; i++)
                hs->loops[i] = loops[i];
        metrics_set(M_BUILD_INFO, "version=\"" THOPTER_VERSION "\"", 1);

        if (a.v6) {
                /* "::" also takes IPv4 (fly's checks and scrapes may use
                 * either). */
                if (IN6_IS_ADDR_UNSPECIFIED(&a.u.v6.sin6_addr))
                        flags |= MHD_USE_DUAL_STACK;
                else
                        flags |= MHD_USE_IPv6;
        }
        hs->daemon = MHD_start_daemon(
            flags, 0, NULL, NULL, handle, hs, MHD_OPTION_SOCK_ADDR, &a.u,
            MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_CONNECTION_LIMIT,
            MAX_CONNECTIONS, MHD_OPTION_END);
        if (!hs->daemon) {
                pthread_mutex_destroy(&hs->lag_lock);
                free(hs);
                err_set(err, ERR_PERMANENT, 0,
                        "THOPTER_METRICS_ADDR: cannot listen on %s (in use?)",
                        addr);
                return NULL;
        }
        const union MHD_DaemonInfo *info =
            MHD_get_daemon_info(hs->daemon, MHD_DAEMON_INFO_BIND_PORT);
        hs->port = info && info->port ? info->port : a.port;
        log_info("health", "serving /metrics /livez /readyz on %s%s%s:%d",
                 a.v6 ? "[" : "", a.host, a.v6 ? "]" : "", hs->port);
        return hs;
}

int health_server_port(const struct health_server *hs) {
        return hs->port;
}

void health_server_stop(struct health_server *hs) {
        if (!hs)
                return;
        MHD_stop_daemon(hs->daemon);
        pthread_mutex_destroy(&hs->lag_lock);
        free(hs);
}
