/* kafka_producer.h - the one Kafka producer of the consumer process, shared by
 * the dead-letter and event publishers of every loop.
 *
 * A background thread serves delivery reports, so a caller learns that the
 * broker acknowledged a record through its callback, on that thread.
 *
 * Callers: consumer.c (builds it), kafka_finish.c and events.c (send through
 * it).
 */
#ifndef THOPTER_KAFKA_PRODUCER_H
#define THOPTER_KAFKA_PRODUCER_H

#include "err.h"

#include <librdkafka/rdkafka.h>

struct kafka_producer;

/* Called once per record, from the delivery thread; err 0 = acknowledged. */
typedef void(kafka_producer_done_fn)(void *arg, rd_kafka_resp_err_t err);

/**
 * @brief Takes @p conf (also on failure). The caller sets the defaults it
 * wants (kafka_conf_default(): idempotence, acks=all) before, so that every
 * -X the user gives wins (contract 5.14).
 */
struct kafka_producer *kafka_producer_new(rd_kafka_conf_t *conf,
                                          struct err *err);

/**
 * @brief Queue a record. Takes @p headers (also on failure).
 * @param done optional; called exactly once when 0 is returned.
 * Blocks briefly while the local queue is full.
 */
int kafka_producer_send(struct kafka_producer *p,
                        const char *topic,
                        const void *key,
                        size_t key_len,
                        const void *value,
                        size_t value_len,
                        rd_kafka_headers_t *headers,
                        kafka_producer_done_fn *done,
                        void *arg,
                        struct err *err);

/**
 * @brief Look up @p topic's metadata now (bounded by @p timeout_ms), so the
 * first dead letter or event does not wait for librdkafka's next metadata
 * refresh. Best effort: 0, or -1 when the brokers did not answer in time.
 */
int kafka_producer_warm_topic(struct kafka_producer *p,
                              const char *topic,
                              int timeout_ms);

/** @brief Flush (bounded), stop the delivery thread, free. NULL is a no-op. */
void kafka_producer_destroy(struct kafka_producer *p);

#endif
