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
 * computed on a short-lived worker thread, which resumes it with the
 * answer.
 *
 * Anyone on the network may ask, so neither costs a broker call per
 * request: each endpoint's answer is kept for CACHE_MS and answered from
 * there; a request that finds it older waits (suspended, at most
 * MAX_WAITERS) for the one computation of that endpoint in flight, or
 * starts it. So one worker per endpoint at most, and a flood of /readyz
 * can never take the slot /metrics scrapes use (it once could: 15 clients
 * looping on /readyz held all 4 shared slots and every scrape got 503).
 * And one address may ask each of them at most RATE_MAX times per second
 * (then 429 with Retry-After), which bounds what a loop costs the event
 * loop.
 *
 * Lag series: Prometheus has no "delete", and a partition that moved to
 * another instance in a rebalance must not keep its last lag here (a sum
 * over instances would count it twice), so a partition this instance
 * reported before and no longer owns is reported as 0.
 */
#include "health_server.h"
#include "clock.h"
#include "listen_addr.h"
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
#define CACHE_MS             1000 /* /readyz and /metrics answers kept */
#define MAX_WAITERS          64   /* per endpoint, waiting for its answer */
#define RATE_MAX             50   /* per address, endpoint and second */
#define RATE_ADDRS           64   /* addresses tracked (least recent goes) */

enum slow_kind { SLOW_READYZ, SLOW_METRICS, SLOW_KINDS };

struct slow_req;

/* An endpoint's last answer and the requests waiting for the next one. */
struct answer {
        char *body; /* NULL: none yet */
        unsigned status;
        int64_t at_ms; /* monotonic */
        int computing;
        struct slow_req *waiters;
        int nwaiters;
};

/* How often one address asked, in the current one-second window. */
struct rate {
        unsigned char addr[16];
        int used;
        int64_t window_ms, last_ms;
        int count[SLOW_KINDS];
};

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
        pthread_mutex_t slow_lock; /* guards nslow and answers[] */
        pthread_cond_t slow_done;
        int nslow; /* worker threads running */
        struct answer answers[SLOW_KINDS];
        struct rate rates[RATE_ADDRS]; /* @locality the event loop only */
};

/* A /metrics or /readyz request computed off the event loop. */
struct slow_req {
        struct health_server *hs;
        struct MHD_Connection *conn;
        enum slow_kind kind;
        int done; /* set by the worker before it resumes conn */
        unsigned status;
        const char *type;
        char *body;
        struct slow_req *next; /* in answers[kind].waiters */
};

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

struct slow_job {
        struct health_server *hs;
        enum slow_kind kind;
};

/* Hands the answer of @p a to every waiter and resumes them. slow_lock
 * held. */
static void answer_waiters(struct answer *a, unsigned status, const char *b) {
        for (struct slow_req *w = a->waiters, *next; w; w = next) {
                next = w->next;
                w->next = NULL;
                w->status = status;
                w->body = strdup(b);
                w->done = 1;
                MHD_resume_connection(w->conn);
        }
        a->waiters = NULL;
        a->nwaiters = 0;
}

static void *slow_worker(void *arg) {
        struct slow_job *job = arg;
        struct health_server *hs = job->hs;
        struct answer *a = &hs->answers[job->kind];
        unsigned status = 503;
        char *body = job->kind == SLOW_METRICS ? metrics(hs, &status)
                                               : readyz(hs, &status);

        pthread_mutex_lock(&hs->slow_lock);
        if (body) {
                free(a->body);
                a->body = body;
                a->status = status;
                a->at_ms = clock_mono_ms();
        }
        a->computing = 0;
        answer_waiters(a, body ? status : 503, body ? body : "out of memory\n");
        hs->nslow--;
        pthread_cond_broadcast(&hs->slow_done);
        pthread_mutex_unlock(&hs->slow_lock);
        free(job);
        return NULL;
}

/* Answers @p r from the cache, or suspends it until the computation in
 * flight (started here when there is none) answers. @returns 1 answered
 * from the cache (r->body set), 0 suspended, -1 busy. */
static int slow_start(struct health_server *hs, struct slow_req *r) {
        struct answer *a = &hs->answers[r->kind];
        struct slow_job *job = NULL;
        pthread_attr_t attr;
        pthread_t t;
        int rc = 0;

        pthread_mutex_lock(&hs->slow_lock);
        if (a->body && clock_mono_ms() - a->at_ms < CACHE_MS) {
                r->status = a->status;
                r->body = strdup(a->body);
                pthread_mutex_unlock(&hs->slow_lock);
                return r->body ? 1 : -1;
        }
        if (a->nwaiters >= MAX_WAITERS ||
            (!a->computing && !(job = malloc(sizeof(*job))))) {
                pthread_mutex_unlock(&hs->slow_lock);
                return -1;
        }
        MHD_suspend_connection(r->conn);
        r->next = a->waiters;
        a->waiters = r;
        a->nwaiters++;
        if (a->computing) {
                pthread_mutex_unlock(&hs->slow_lock);
                return 0;
        }
        a->computing = 1;
        hs->nslow++;
        *job = (struct slow_job){hs, r->kind};
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        rc = pthread_create(&t, &attr, slow_worker, job);
        pthread_attr_destroy(&attr);
        if (rc != 0) {
                free(job);
                a->computing = 0;
                answer_waiters(a, 503, "busy: no worker thread\n");
                hs->nslow--;
                pthread_cond_broadcast(&hs->slow_done);
        }
        pthread_mutex_unlock(&hs->slow_lock);
        return 0;
}

/* The client's address as 16 bytes (IPv4 as ::ffff:a.b.c.d). */
static void client_addr(struct MHD_Connection *conn, unsigned char out[16]) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        const struct sockaddr *sa = ci ? ci->client_addr : NULL;

        memset(out, 0, 16);
        if (sa && sa->sa_family == AF_INET6) {
                memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        } else if (sa && sa->sa_family == AF_INET) {
                out[10] = out[11] = 0xff;
                memcpy(out + 12, &((const struct sockaddr_in *)sa)->sin_addr,
                       4);
        }
}

/* 1 when this address asked @p kind more than RATE_MAX times in the
 * current second. @locality the event loop. */
static int rate_exceeded(struct health_server *hs,
                         struct MHD_Connection *conn,
                         enum slow_kind kind) {
        unsigned char addr[16];
        int64_t now = clock_mono_ms();
        struct rate *r = NULL, *oldest = &hs->rates[0];

        client_addr(conn, addr);
        for (int i = 0; i < RATE_ADDRS && !r; i++) {
                struct rate *x = &hs->rates[i];
                if (x->used && memcmp(x->addr, addr, 16) == 0)
                        r = x;
                else if (!x->used ||
                         (oldest->used && x->last_ms < oldest->last_ms))
                        oldest = x;
        }
        if (!r) {
                r = oldest;
                memset(r, 0, sizeof(*r));
                memcpy(r->addr, addr, 16);
                r->used = 1;
                r->window_ms = now;
        }
        r->last_ms = now;
        if (now - r->window_ms >= 1000) {
                r->window_ms = now;
                memset(r->count, 0, sizeof(r->count));
        }
        return ++r->count[kind] > RATE_MAX;
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

static enum MHD_Result reply_retry(struct MHD_Connection *conn,
                                   enum slow_kind kind) {
        char *body = strdup(
            kind == SLOW_METRICS
                ? "too many /metrics requests from this address (at most "
                  "50 a second; answers are kept for 1 s)\n"
                : "too many /readyz requests from this address (at most 50 "
                  "a second; answers are kept for 1 s)\n");
        if (!body)
                return MHD_NO;
        struct MHD_Response *resp = MHD_create_response_from_buffer(
            strlen(body), body, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
                free(body);
                return MHD_NO;
        }
        MHD_add_response_header(resp, "Content-Type", "text/plain");
        MHD_add_response_header(resp, "Retry-After", "1");
        enum MHD_Result r = MHD_queue_response(conn, 429, resp);
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
        struct slow_req *r = *con_cls;
        unsigned status;
        (void)version;
        (void)upload_data;

        if (r) {
                /* Resumed by its worker, or called again while it works. */
                if (!r->done)
                        return MHD_YES;
                if (!r->body)
                        return reply(conn, 503, "text/plain",
                                     strdup("out of memory\n"));
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
        enum slow_kind kind =
            strcmp(url, "/metrics") == 0 ? SLOW_METRICS : SLOW_READYZ;
        if (rate_exceeded(hs, conn, kind))
                return reply_retry(conn, kind);
        r = calloc(1, sizeof(*r));
        if (!r)
                return MHD_NO;
        r->hs = hs;
        r->conn = conn;
        r->kind = kind;
        r->type = kind == SLOW_METRICS
                      ? "text/plain; version=0.0.4; charset=utf-8"
                      : "text/plain";
        *con_cls = r;
        switch (slow_start(hs, r)) {
        case 1: {
                char *body = r->body;
                r->body = NULL;
                return reply(conn, r->status, r->type, body);
        }
        case 0:
                return MHD_YES;
        default:
                /* freed by completed() */
                return reply(conn, 503, "text/plain",
                             strdup("busy: too many /metrics and /readyz "
                                    "waiting\n"));
        }
}

struct health_server *health_server_start(const char *addr,
                                          struct kafka_loop *const *loops,
                                          int nloops,
                                          struct err *err) {
        struct listen_addr a;
        struct health_server *hs;
        unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD |
                         MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;

        if (listen_addr_parse("THOPTER_METRICS_ADDR", addr, &a, err) == -1)
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
        for (int k = 0; k < SLOW_KINDS; k++)
                free(hs->answers[k].body);
        pthread_mutex_destroy(&hs->lag_lock);
        pthread_mutex_destroy(&hs->slow_lock);
        pthread_cond_destroy(&hs->slow_done);
        free(hs);
}
