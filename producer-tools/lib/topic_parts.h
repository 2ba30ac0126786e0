/* topic_parts.h - the partitions of one topic, each with its log start and
 * end offsets: one metadata request for the ids, then one ListOffsets per
 * partition through kafka_offsets_query() (whose timeout holds while a
 * leader is down).
 *
 * It does not check that the topic exists: a caller that must not create
 * it runs topic_check() first (topic_check.h), since some brokers answer a
 * topic's metadata request by creating the topic.
 *
 * Callers: thopter-dlq (dlq_read.c), thopter-status, thopter-reaper
 * (reap_events.c).
 */
#ifndef THOPTER_TOPIC_PARTS_H
#define THOPTER_TOPIC_PARTS_H

#include "err.h"

#include <librdkafka/rdkafka.h>

#include <stdint.h>

struct topic_part {
        int32_t partition;
        int64_t low;  /* the log start offset */
        int64_t high; /* the high watermark: the next record's offset */
};

/**
 * @brief The partitions of @p topic, in the order of the metadata answer.
 * @param hint (optional) where the name came from, added to the message of
 * a topic the broker does not serve ("... : check <hint>").
 * @param timeout_ms for the metadata request and for each partition's
 * offsets.
 * @returns an array of *@p n (at least one) entries to free(), or NULL with
 * @p err set: ERR_TRANSIENT with the librdkafka error as code when a request
 * failed (or out of memory), ERR_PERMANENT when the topic has an error or no
 * partitions.
 */
struct topic_part *topic_parts_new(rd_kafka_t *rk,
                                   const char *topic,
                                   const char *hint,
                                   int timeout_ms,
                                   int *n,
                                   struct err *err);

#endif
