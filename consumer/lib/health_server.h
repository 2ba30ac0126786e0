/* health_server.h - /metrics (Prometheus text), /livez and /readyz over
 * libmicrohttpd, on THOPTER_METRICS_ADDR.
 *
 * /livez: every Kafka loop's poll thread ticked within the last 30 s.
 * /readyz: every loop joined its group and its brokers answer.
 */
#ifndef THOPTER_HEALTH_SERVER_H
#define THOPTER_HEALTH_SERVER_H

#include "err.h"
#include "kafka_loop.h"

struct health_server;

/**
 * @brief Listen on @p addr ("HOST:PORT"; port 0 picks one) and serve.
 * @p loops are borrowed and must outlive the server.
 */
struct health_server *health_server_start(const char *addr,
                                          struct kafka_loop *const *loops,
                                          int nloops,
                                          struct err *err);

/** @brief The port actually bound. */
int health_server_port(const struct health_server *hs);

void health_server_stop(struct health_server *hs); /* NULL is a no-op */

#endif
