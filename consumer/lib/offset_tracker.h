/* offset_tracker.h - which offsets of each partition are finished, and so
 * which offset may be committed: the contiguous finished prefix.
 *
 * Offsets are added in delivery order (increasing per partition, gaps
 * allowed: compaction and transaction markers leave holes). They finish in
 * any order. The committable offset of a partition is the first unfinished
 * offset, or the last added + 1 when everything is finished; it never passes
 * unfinished work and never goes backwards.
 *
 * No Kafka types here: the loop turns results into commit lists.
 * @locality not thread-safe; the Kafka loop's poll thread owns it.
 *
 * Callers: the Kafka loop only (kafka_loop.c, kafka_commit.c).
 */
#ifndef THOPTER_OFFSET_TRACKER_H
#define THOPTER_OFFSET_TRACKER_H

#include <stddef.h>
#include <stdint.h>

struct offset_tracker;

struct offset_tracker *offset_tracker_new(void);
void offset_tracker_destroy(struct offset_tracker *t); /* NULL is a no-op */

enum offset_tracker_added {
        OFFSET_TRACKER_ADDED,
        OFFSET_TRACKER_OUT_OF_ORDER, /* not above the last one added for the
                                        partition: a redelivery the tracker
                                        cannot order (not tracked) */
        OFFSET_TRACKER_OOM,          /* out of memory (not tracked) */
};

/** @brief Record @p offset as delivered and unfinished. */
enum offset_tracker_added offset_tracker_add(struct offset_tracker *t,
                                             const char *topic,
                                             int32_t partition,
                                             int64_t offset);

/**
 * @brief Mark @p offset finished.
 * @returns 1 when the partition's committable offset advanced (stored in
 * *commit), 0 when it did not, -1 when the offset is not tracked (its
 * partition was revoked since it was added).
 */
int offset_tracker_finish(struct offset_tracker *t,
                          const char *topic,
                          int32_t partition,
                          int64_t offset,
                          int64_t *commit);

/** @brief Committable offset of a partition, or -1 when there is none. */
int64_t offset_tracker_committable(const struct offset_tracker *t,
                                   const char *topic,
                                   int32_t partition);

/** @brief The broker confirmed a commit of @p offset. */
void offset_tracker_committed(struct offset_tracker *t,
                              const char *topic,
                              int32_t partition,
                              int64_t offset);

/**
 * @brief Call @p fn for each partition whose committable offset is above
 * what the broker confirmed (commits to send again).
 */
void offset_tracker_foreach_uncommitted(
    const struct offset_tracker *t,
    void (*fn)(const char *topic, int32_t partition, int64_t offset, void *arg),
    void *arg);

/** @brief Forget a partition (revoked). */
void offset_tracker_remove(struct offset_tracker *t,
                           const char *topic,
                           int32_t partition);

/** @brief Unfinished offsets in all partitions. */
size_t offset_tracker_unfinished(const struct offset_tracker *t);

#endif
