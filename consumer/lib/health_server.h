/* health_server.h - /metrics (Prometheus text), /livez and /readyz over
 * libmicrohttpd, on THOPTER_METRICS_ADDR.
 *
 * /livez: every Kafka loop's poll thread ticked within the last 30 s.
 * /readyz: every loop joined its group and its brokers answer.
 * /metrics: the registry of metrics.h, plus what is computed per scrape:
 * consumer lag per partition (from the broker's watermarks), seconds since
 * the last confirmed commit, and each loop's poll age.
 *
 * Callers: consumer.c only (config.c checks THOPTER_METRICS_ADDR with
 * listen_addr.h, not here).
 */
#ifndef THOPTER_HEALTH_SERVER_H
#define THOPTER_HEALTH_SERVER_H

#include "err.h"
#include "kafka_loop.h"

struct health_server;

/**
 * @brief Listen on @p addr (listen_addr.h; "[::]:PORT" serves IPv6 and
 * IPv4; port 0 picks one)
 * and serve from an event loop (slow clients cost a socket, not a thread;
 * at most 256 connections, 16 per client address, 10 s idle timeout);
 * /metrics and /readyz (they ask the brokers) run on worker threads (one
 * per endpoint at most; answers kept for 1 s; at most 50 requests per
 * second of each from one address, then 429), so they never hold up
 * /livez, and a flood of one never starves the other.
 * @p loops are borrowed and must outlive the server.
 */
struct health_server *health_server_start(const char *addr,
                                          struct kafka_loop *const *loops,
                                          int nloops,
                                          struct err *err);

void health_server_stop(struct health_server *hs); /* NULL is a no-op */

#endif
