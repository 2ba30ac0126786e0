/* dlq.h - dead-letter records (contract section 4).
 *
 * A dead letter is the original record byte for byte (key, value, headers;
 * a tombstone's null value stays null) plus the thopter.dlq.* string
 * headers that say where it came from and why it failed. Earlier
 * thopter.dlq.* headers (from a replayed record) are replaced, so headers
 * never pile up; thopter.replay.count is kept.
 *
 * A record too big for the topic is sent reduced: the value cut to
 * DLQ_REDUCED_VALUE_MAX bytes, the key to DLQ_REDUCED_KEY_MAX, the original
 * headers left out, and for each part that was cut its original size and
 * SHA-256 in headers (schemas/dead-letter-headers.md).
 *
 * No I/O but kafka_producer_send(). @locality any thread.
 *
 * Callers: kafka_finish.c only (dead letters are the loop's, never a
 * handler's).
 */
#ifndef THOPTER_DLQ_H
#define THOPTER_DLQ_H

#include "err.h"
#include "job.h"
#include "kafka_producer.h"

#define DLQ_REDUCED_VALUE_MAX (64 * 1024)
#define DLQ_REDUCED_KEY_MAX   1024

/**
 * @brief Send @p job's record to @p topic as a dead letter for @p failure,
 * reduced when @p reduced is set.
 * @param done called once the broker acknowledged it (or failed); the
 * caller treats the job as finished only on an acknowledgement.
 */
int dlq_publish(struct kafka_producer *p,
                const char *topic,
                const struct job *job,
                const struct err *failure,
                int reduced,
                kafka_producer_done_fn *done,
                void *arg,
                struct err *err);

/** @brief The headers dlq_publish() would send (tests); caller destroys. */
rd_kafka_headers_t *dlq_headers(const struct job *job,
                                const struct err *failure,
                                int reduced,
                                int64_t failed_at_ms);

#endif
