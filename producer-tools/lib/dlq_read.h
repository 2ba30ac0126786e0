/* dlq_read.h - thopter-dlq's reading of the dead-letter topic: each
 * partition from a start offset up to the end it had when the command
 * started, in offset order, with assign() (no group membership, nothing
 * committed here); and the replay marks (replay_mark.h) read the same way.
 *
 * Dead letters written meanwhile wait for the next run. A read that makes
 * no progress for DLQ_READ_IDLE_MS fails rather than waiting for a broker
 * that may never come back.
 *
 * Callers: dlq_list.c (list, show), dlq_replay.c.
 */
#ifndef THOPTER_DLQ_READ_H
#define THOPTER_DLQ_READ_H

#include "err.h"
#include "replay_mark.h"

#include <librdkafka/rdkafka.h>

#include <stdint.h>

#define DLQ_READ_IDLE_MS    30000
#define DLQ_READ_TIMEOUT_MS 10000 /* one metadata or offsets request */

/* One partition of the dead-letter topic to read: [start, end). */
struct dlq_read_range {
        int32_t partition;
        int64_t start, end;
        int done; /* dlq_read_ranges() got to end */
};

/* Called for each record read; non-zero stops the read. */
typedef int(dlq_read_fn)(void *arg, const rd_kafka_message_t *rkm);

/**
 * @brief The partitions of @p dlq with [start, end) = the [low, high)
 * watermarks they have now; refuses a topic that does not exist
 * (topic_check.h) before anything could create it.
 * @returns an array of *@p n ranges to free(), or NULL with @p err set.
 */
struct dlq_read_range *
dlq_read_ranges_new(rd_kafka_t *rk, const char *dlq, int *n, struct err *err);

/** @brief The range of @p partition among the @p n of @p r, or NULL. */
struct dlq_read_range *
dlq_read_range_of(struct dlq_read_range *r, int n, int32_t partition);

/**
 * @brief Reads [start, end) of each of the @p n ranges of @p topic through
 * @p rk (a cli_consumer_new() reader) and calls @p fn for each record.
 * @returns 0 when the read ended: every range read, or @p fn returned
 * non-zero (whatever its sign); -1 with @p err when reading failed (no
 * progress for DLQ_READ_IDLE_MS, or the topic or a partition is gone).
 */
int dlq_read_ranges(rd_kafka_t *rk,
                    const char *topic,
                    struct dlq_read_range *r,
                    int n,
                    dlq_read_fn *fn,
                    void *arg,
                    struct err *err);

/** @brief dlq_read_ranges() that adds every replay mark to @p marks. */
int dlq_read_marks(rd_kafka_t *rk,
                   const char *dlq,
                   struct dlq_read_range *r,
                   int n,
                   struct replay_marks *marks,
                   struct err *err);

#endif
