/* reap_events.h - thopter-reaper's evidence of ownership from
 * thopter.events: which machines a completed provision event names, and
 * the latest state of each machine's request (contract sections 3 and 6).
 *
 * Reads the events topic from its start to the high watermark each
 * partition had when the read began (assign(), no group, nothing
 * committed), and keeps only what concerns the machines it was given: the
 * topic can hold far more events than there are machines. An event that
 * is not a JSON object with the fields of section 3 is ignored.
 */
#ifndef THOPTER_REAP_EVENTS_H
#define THOPTER_REAP_EVENTS_H

#include "err.h"
#include "reap_rules.h"

#include <librdkafka/rdkafka.h>

#include <stddef.h>

/* One machine to find evidence for; @p own receives it. */
struct reap_events_target {
        const char *id;         /* fly machine id */
        const char *request_id; /* its thopter_request_id, "" when none */
        struct reap_owner *own;
};

struct reap_events;

/**
 * @brief An index over @p targets (borrowed: they must outlive it).
 * @returns NULL when out of memory.
 */
struct reap_events *reap_events_new(struct reap_events_target *targets,
                                    size_t n);
void reap_events_destroy(struct reap_events *ev); /* NULL is a no-op */

/** @brief Applies one event value, in topic order per partition. */
void reap_events_apply(struct reap_events *ev, const void *value, size_t len);

/**
 * @brief Reads @p topic to its end through @p rk (a consumer made with
 * enable.partition.eof=true) and applies every event; then marks every
 * target's events_read. On failure, every target's why says what failed.
 * @param idle_ms how long a read may make no progress.
 * @returns 0, or -1 with @p err.
 */
int reap_events_read(struct reap_events *ev,
                     rd_kafka_t *rk,
                     const char *topic,
                     int idle_ms,
                     struct err *err);

/** @brief Sets every target's why to @p why (the events were not read). */
void reap_events_not_read(struct reap_events *ev, const char *why);

#endif
