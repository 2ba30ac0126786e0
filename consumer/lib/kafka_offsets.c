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

#define RETRY_PAUSE_MS 100

int kafka_offsets_retriable(rd_kafka_resp_err_t e) {
        switch (e) {
        case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
        case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
        case RD_KAFKA_RESP_ERR_UNKNOWN_LEADER_EPOCH:
        case RD_KAFKA_RESP_ERR_FENCED_LEADER_EPOCH:
        case RD_KAFKA_RESP_ERR_OFFSET_NOT_AVAILABLE:
        case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
        case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
        case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
        case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
        case RD_KAFKA_RESP_ERR__WAIT_COORD:
        case RD_KAFKA_RESP_ERR__TRANSPORT:
                return 1;
        default:
                return 0;
        }
}

/* Milliseconds left until @deadline, or -1 when it has passed. */
static int time_left(int64_t deadline) {
        int64_t left = deadline - clock_mono_ms();
        return left > 0 ? (int)left : -1;
}

/* Sleeps RETRY_PAUSE_MS when there is time for another try after it (0),
 * else returns -1 at once. */
static int pause_before_retry(int64_t deadline) {
        int left = time_left(deadline);
        if (left <= RETRY_PAUSE_MS)
                return -1;
        clock_sleep_ms(RETRY_PAUSE_MS);
        return 0;
}

/* offset_at() again while the error is retriable, until @deadline. */
static rd_kafka_resp_err_t offset_at_until(rd_kafka_t *rk,
                                           const char *topic,
                                           int32_t partition,
                                           int64_t timestamp,
                                           int64_t deadline,
                                           int64_t *out) {
        for (;;) {
                int left = time_left(deadline);
                if (left < 0)
                        return RD_KAFKA_RESP_ERR__TIMED_OUT;
                rd_kafka_resp_err_t e =
                    offset_at(rk, topic, partition, timestamp, left, out);
                if (!kafka_offsets_retriable(e) ||
                    pause_before_retry(deadline) == -1)
                        return e;
        }
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

        e = offset_at_until(rk, topic, partition, LIST_OFFSETS_LATEST, deadline,
                            &hi);
        if (!e && first)
                e = offset_at_until(rk, topic, partition, LIST_OFFSETS_EARLIEST,
                                    deadline, &lo);
        if (e)
                return e;
        if (first)
                *first = lo;
        *end = hi;
        return RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* The first retriable error of the request or of one of @parts, or 0. */
static rd_kafka_resp_err_t
retriable_in(rd_kafka_resp_err_t e,
             const rd_kafka_topic_partition_list_t *parts) {
        if (e)
                return kafka_offsets_retriable(e) ? e : 0;
        for (int i = 0; i < parts->cnt; i++)
                if (kafka_offsets_retriable(parts->elems[i].err))
                        return parts->elems[i].err;
        return 0;
}

rd_kafka_resp_err_t kafka_offsets_committed(
    rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts, int timeout_ms) {
        int64_t deadline = clock_mono_ms() + timeout_ms;

        for (;;) {
                int left = time_left(deadline);
                if (left < 0)
                        return RD_KAFKA_RESP_ERR__TIMED_OUT;
                for (int i = 0; i < parts->cnt; i++)
                        parts->elems[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;
                rd_kafka_resp_err_t e = rd_kafka_committed(rk, parts, left);
                rd_kafka_resp_err_t again = retriable_in(e, parts);
                if (!again)
                        return e;
                if (pause_before_retry(deadline) == -1)
                        return e ? e : again;
        }
}
