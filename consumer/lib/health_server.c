/* health_server.c - see health_server.h.
 *
 * DESIGN
 * ------
 * libmicrohttpd's event loop (epoll, one internal thread), not a thread per
 * connection: a client that trickles its request a byte at a time costs a
 * socket and a few hundred bytes, never a thread, so slow clients cannot
 * lock the endpoints out. (With a thread per connection and 16 connections
 * at most, 16 clients trickling bytes under the per-gap idle timeout held
 * /livez, /readyz and /metrics for as long as they liked; fly.toml binds it
 * on the private network every thopter shares.) Limits: MAX_CONNECTIONS in
 * all, MAX_PER_IP from one address, an idle timeout of IDLE_TIMEOUT_S.
 *
 * /readyz asks the brokers for metadata (1 s timeout) and /metrics asks them
 * for committed offsets and watermarks (LAG_TIMEOUT_MS each); neither may
 * delay /livez, which only reads the loops' last poll times and is answered
 * in the event loop at once. So those two suspend their connection and are
 * computed on a short-lived worker thread (at most MAX_SLOW at a time,
 * else 503 "busy"), which resumes it with the answer.
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
#define MAX_CONNECTIONS      256u /* sockets, not threads */
#define MAX_PER_IP           16u
#define IDLE_TIMEOUT_S       10u
#define MAX_SLOW             4 /* /metrics and /readyz being computed */

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
        pthread_mutex_t slow_lock; /* guards nslow */
        pthread_cond_t slow_done;
        int nslow; /* worker threads running */
};

/* A /metrics or /readyz request computed off the event loop. */
struct slow_req {
        struct health_server *hs;
        struct MHD_Connection *conn;
        int metrics; /* 1 /metrics, 0 /readyz */
        int done;    /* set by the worker before it resumes conn */
        unsigned status;
        const char *type;
        char *body;
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

static char *livez(struct health_server *hs, unsigned *status) {
        char why[512];

        for (int i = 0; i < hs->nloops; i++) {
                long age = kafka_loop_poll_age_ms(hs->loops[i]);
                if (age > LIVE_MAX_POLL_AGE_MS) {
                        snprintf(why, sizeof(why),
                                 "%s: poll loop stalled for %ld ms\n",
                                 kafka_loop_name(hs->loops[i]), age);
                        *status = 503;
                        return strdup(why);
                }
        }
        *status = 200;
        return strdup("ok\n");
}

/* @locality worker thread */
static char *readyz(struct health_server *hs, unsigned *status) {
        char why[512] = "";

        for (int i = 0; i < hs->nloops; i++) {
                if (!kafka_loop_ready(hs->loops[i], READY_TIMEOUT_MS, why,
                                      sizeof(why) - 1)) {
                        strcat(why, "\n");
                        *status = 503;
                        return strdup(why);
                }
        }
        *status = 200;
        return strdup("ready\n");
}

/* @locality worker thread */
static char *metrics(struct health_server *hs, unsigned *status) {
        for (int i = 0; i < hs->nloops; i++)
                update_loop_metrics(hs, hs->loops[i]);
        char *body = metrics_render();
        *status = 200;
        return body ? body : strdup("");
}

static void *slow_worker(void *arg) {
        struct slow_req *r = arg;
        struct health_server *hs = r->hs;

        r->body = r->metrics ? metrics(hs, &r->status) : readyz(hs, &r->status);
        r->done = 1;
        MHD_resume_connection(r->conn);
        pthread_mutex_lock(&hs->slow_lock);
        hs->nslow--;
        pthread_cond_broadcast(&hs->slow_done);
        pthread_mutex_unlock(&hs->slow_lock);
        return NULL;
}

/* Suspend @p conn and compute its answer on a worker; 0, or -1 when
 * MAX_SLOW are already running (or no thread could start). */
static int slow_start(struct health_server *hs, struct slow_req *r) {
        pthread_attr_t attr;
        pthread_t t;
        int rc;

        pthread_mutex_lock(&hs->slow_lock);
        if (hs->nslow >= MAX_SLOW) {
                pthread_mutex_unlock(&hs->slow_lock);
                return -1;
        }
        hs->nslow++;
        pthread_mutex_unlock(&hs->slow_lock);
        MHD_suspend_connection(r->conn);
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        rc = pthread_create(&t, &attr, slow_worker, r);
        pthread_attr_destroy(&attr);
        if (rc != 0) {
                MHD_resume_connection(r->conn);
                pthread_mutex_lock(&hs->slow_lock);
                hs->nslow--;
                pthread_cond_broadcast(&hs->slow_done);
                pthread_mutex_unlock(&hs->slow_lock);
                return -1;
        }
        return 0;
}

static void completed(void *cls,
                      struct MHD_Connection *conn,
                      void **con_cls,
                      enum MHD_RequestTerminationCode toe) {
        struct slow_req *r = *con_cls;
        (void)cls;
        (void)conn;
        (void)toe;
        if (r) {
                free(r->body);
                free(r);
                *con_cls = NULL;
        }
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
        struct slow_req *r = *con_cls;
        unsigned status;
        (void)version;
        (void)upload_data;

        if (r) {
                /* Resumed by its worker, or called again while it works. */
                if (!r->done)
                        return MHD_YES;
                char *body = r->body;
                r->body = NULL;
                return reply(conn, r->status, r->type,
                             body ? body : strdup(""));
        }
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
                return reply(conn, 405, "text/plain",
                             strdup("method not allowed\n"));
        if (*upload_data_size != 0) {
                *upload_data_size = 0; /* a GET with a body: ignore it */
                return MHD_YES;
        }
        if (strcmp(url, "/livez") == 0) {
                char *body = livez(hs, &status);
                return reply(conn, status, "text/plain",
                             body ? body : strdup(""));
        }
        if (strcmp(url, "/metrics") != 0 && strcmp(url, "/readyz") != 0)
                return reply(
                    conn, 404, "text/plain",
                    strdup("not found: try /metrics, /livez or /readyz\n"));
        r = calloc(1, sizeof(*r));
        if (!r)
                return MHD_NO;
        r->hs = hs;
        r->conn = conn;
        r->metrics = strcmp(url, "/metrics") == 0;
        r->type = r->metrics ? "text/plain; version=0.0.4; charset=utf-8"
                             : "text/plain";
        *con_cls = r;
        if (slow_start(hs, r) == -1) {
                /* freed by completed() */
                return reply(conn, 503, "text/plain",
                             strdup("busy: too many /metrics and /readyz at "
                                    "once\n"));
        }
        return MHD_YES;
}

struct health_server *health_server_start(const char *addr,
                                          struct kafka_loop *const *loops,
                                          int nloops,
                                          struct err *err) {
        struct addr a;
        struct health_server *hs;
        unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD |
                         MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;

        if (parse_addr(addr, &a, err) == -1)
                return NULL;
        hs = calloc(1, sizeof(*hs));
        if (!hs) {
                err_oom(err, "health server");
                return NULL;
        }
        pthread_mutex_init(&hs->lag_lock, NULL);
        pthread_mutex_init(&hs->slow_lock, NULL);
        pthread_cond_init(&hs->slow_done, NULL);
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
            MHD_OPTION_CONNECTION_TIMEOUT, IDLE_TIMEOUT_S,
            MHD_OPTION_CONNECTION_LIMIT, MAX_CONNECTIONS,
            MHD_OPTION_PER_IP_CONNECTION_LIMIT, MAX_PER_IP,
            MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
        if (!hs->daemon) {
                pthread_mutex_destroy(&hs->lag_lock);
                pthread_mutex_destroy(&hs->slow_lock);
                pthread_cond_destroy(&hs->slow_done);
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

void health_server_stop(struct health_server *hs) {
        if (!hs)
                return;
        /* A suspended connection must be resumed before the daemon stops:
         * wait for the workers (each is bounded by the broker timeouts). */
        pthread_mutex_lock(&hs->slow_lock);
        while (hs->nslow > 0)
                pthread_cond_wait(&hs->slow_done, &hs->slow_lock);
        pthread_mutex_unlock(&hs->slow_lock);
        MHD_stop_daemon(hs->daemon);
        pthread_mutex_destroy(&hs->lag_lock);
        pthread_mutex_destroy(&hs->slow_lock);
        pthread_cond_destroy(&hs->slow_done);
        free(hs);
}
