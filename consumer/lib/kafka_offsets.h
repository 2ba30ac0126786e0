/* kafka_offsets.h - a partition's first and end offsets, asked of its leader
 * with a timeout that holds.
 *
 * DESIGN
 * ------
 * librdkafka 2.0.2's rd_kafka_query_watermark_offsets() does not honour its
 * timeout while the partition's leader is unreachable: it serves its reply
 * queue until an answer comes, so with the leader's broker killed it blocked
 * for good (reproduced against a three-node Kafka 4.1 cluster: > 150 s with a
 * 5 s timeout; librdkafka issue #2588, fixed in 2.3.0). A /metrics scrape or a
 * thopter-dlq command would then hang until the broker came back.
 *
 * rd_kafka_offsets_for_times() sends the same ListOffsets request and does
 * stop at its deadline (the same experiment: _TIMED_OUT after 3.0 s, every
 * time). Kafka reads the timestamps -2 and -1 as "earliest" and "latest", so
 * asking for those times gives the log start and the high watermark.
 *
 * A real broker also answers a short-lived client's first requests with
 * errors a moment later would not give: NOT_LEADER_FOR_PARTITION for a topic
 * just created or a leader just moved, NOT_COORDINATOR while a group's
 * coordinator is being found or loaded (both met by the realkafka tests on
 * Kafka 4.1; the mock cluster never gives them). librdkafka does not retry
 * them in these calls, so both functions here ask again, every 100 ms, until
 * their deadline.
 *
 * Thread safety: like the librdkafka calls it wraps, safe from any thread;
 * it blocks the caller for at most @timeout_ms.
 */
#ifndef THOPTER_KAFKA_OFFSETS_H
#define THOPTER_KAFKA_OFFSETS_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

/* Stores @topic [@partition]'s log start offset in *@first (when @first is
 * not NULL) and its end offset (the high watermark) in *@end. Returns
 * RD_KAFKA_RESP_ERR_NO_ERROR, or the error of the request or the partition
 * (RD_KAFKA_RESP_ERR__TIMED_OUT when @timeout_ms passed first); on error
 * nothing is stored. */
rd_kafka_resp_err_t kafka_offsets_query(rd_kafka_t *rk,
                                        const char *topic,
                                        int32_t partition,
                                        int64_t *first,
                                        int64_t *end,
                                        int timeout_ms);

/* rd_kafka_committed() for @parts, asked again while the answer is a
 * retriable group or partition error (above), until @timeout_ms. Returns the
 * last request error; per-partition errors stay in @parts. */
rd_kafka_resp_err_t kafka_offsets_committed(
    rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts, int timeout_ms);

/* Whether @e is one of the errors that a moment later may not be. */
int kafka_offsets_retriable(rd_kafka_resp_err_t e);

#endif
