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

/**
 * @brief Is librdkafka property @p key (of @p len bytes) a secret: a name
 * with "password" or "secret" in it (sasl.password, ssl.key.password,
 * ssl.keystore.password, sasl.oauthbearer.client.secret, ...) or
 * ssl.key.pem (a private key given inline). Such a property is refused on
 * the command line (contract 5.10) and taken from a properties file.
 */
int kafka_conf_is_secret(const char *key, size_t len);

/**
 * @brief Append the properties of the librdkafka properties file @p path
 * ("key=value" lines, as kcat -F reads; blank lines and lines starting with
 * '#' are skipped) to the malloc'd array *@p props of *@p n malloc'd
 * "key=value" strings. The values of secret properties are registered with
 * log_add_secret(). @p what names the setting in messages, which never
 * quote a value.
 * @returns 0, or -1 (the array keeps what it had, or more: free it all).
 */
int kafka_conf_read_file(
    const char *path, const char *what, char ***props, int *n, struct err *err);

/**
 * @brief Where librdkafka applies property @p key: 'C' consumer only, 'P'
 * producer only, '*' both, or 0 when librdkafka does not know it. Read once
 * from librdkafka's own table (rd_kafka_conf_properties_show(), the C/P
 * column of its CONFIGURATION.md), so it follows the library's version.
 */
char kafka_conf_scope(const char *key);

/**
 * @brief kafka_conf_new() for a client of @p type: properties that apply
 * only to the other type are left out (librdkafka would warn that it
 * ignores them, at every start). Unknown properties are passed on, for
 * librdkafka to refuse.
 */
rd_kafka_conf_t *kafka_conf_new_for(rd_kafka_type_t type,
                                    const char *brokers,
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
