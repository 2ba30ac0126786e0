/* kafka_conf.h - librdkafka configuration from brokers and -X properties,
 * shared by the consumer and every producer tool.
 *
 * Callers: consumer.c, kafka_loop.c, and the producer tools.
 */
#ifndef THOPTER_KAFKA_CONF_H
#define THOPTER_KAFKA_CONF_H

#include "err.h"

#include <librdkafka/rdkafka.h>

/**
 * @brief A new configuration with bootstrap.servers = @p brokers (optional),
 * then each "key=value" of @p props applied in order, and librdkafka's log
 * routed to log.h.
 * @returns a conf the caller owns, or NULL with err naming the property.
 */
rd_kafka_conf_t *kafka_conf_new(const char *brokers,
                                char *const *props,
                                int nprops,
                                struct err *err);

/** @brief Set one property; the error names it. */
int kafka_conf_set(rd_kafka_conf_t *conf,
                   const char *key,
                   const char *value,
                   struct err *err);

/** @brief Set @p key only when the user did not set it with -X. */
int kafka_conf_default(rd_kafka_conf_t *conf,
                       char *const *props,
                       int nprops,
                       const char *key,
                       const char *value,
                       struct err *err);

#endif
