/* kafka_offsets.c - see kafka_offsets.h. */
#include "kafka_offsets.h"
#include "clock.h"

/* ListOffsets timestamps with a meaning of their own (the Kafka protocol). */
#define LIST_OFFSETS_LATEST   (-1)
#define LIST_OFFSETS_EARLIEST (-2)

/* One ListOffsets round trip for one partition at @timestamp. */
static rd_kafka_resp_err_t offset_at(rd_kafka_t *rk,
                                     const char *topic,
                                     int32_t partition,
                                     int64_t timestamp,
                                     int timeout_ms,
                                     int64_t *out) {
        rd_kafka_topic_partition_list_t *parts;
        rd_kafka_resp_err_t e;

        parts = rd_kafka_topic_partition_list_new(1);
        if (!parts)
                return RD_KAFKA_RESP_ERR__FAIL; /* librdkafka aborts first */
        rd_kafka_topic_partition_list_add(parts, topic, partition)->offset =
            timestamp;
        e = rd_kafka_offsets_for_times(rk, parts, timeout_ms);
        if (!e)
                e = parts->elems[0].err;
        if (!e)
                *out = parts->elems[0].offset;
        rd_kafka_topic_partition_list_destroy(parts);
        return e;
}

rd_kafka_resp_err_t kafka_offsets_query(rd_kafka_t *rk,
                                        const char *topic,
                                        int32_t partition,
                                        int64_t *first,
                                        int64_t *end,
                                        int timeout_ms) {
        int64_t deadline = clock_mono_ms() + timeout_ms;
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t e;

        e = offset_at(rk, topic, partition, LIST_OFFSETS_LATEST, timeout_ms,
                      &hi);
        if (!e && first) {
                int64_t left = deadline - clock_mono_ms();
                if (left <= 0)
                        return RD_KAFKA_RESP_ERR__TIMED_OUT;
                e = offset_at(rk, topic, partition, LIST_OFFSETS_EARLIEST,
                              (int)left, &lo);
        }
        if (e)
                return e;
        if (first)
                *first = lo;
        *end = hi;
        return RD_KAFKA_RESP_ERR_NO_ERROR;
}
