/* events.h - status events on thopter.events (contract section 3).
 *
 * One JSON object per state change, keyed by requestId. events_emit() sends
 * without waiting for the broker (started, step, retrying, waiting_*); the
 * Kafka loop sends the final event (completed or failed) itself and commits
 * the record only once that event is acknowledged (kafka_finish.c).
 *
 * Callers: the Kafka loop only (kafka_*.c): handlers emit through
 * job_emit().
 */
#ifndef THOPTER_EVENTS_H
#define THOPTER_EVENTS_H

#include "err.h"
#include "job.h"
#include "kafka_producer.h"

/** @brief The event JSON (malloc'd), for tests and for events_emit(). */
char *events_json(const struct job *job,
                  const char *state,
                  const char *step,
                  const struct err *failure,
                  int64_t now_wall_ms,
                  int64_t now_mono_ms);

/**
 * @brief Publish one event for @p job.
 * @param state started, step, waiting_capacity, waiting_fly, retrying,
 * completed or failed.
 * @param step optional; @param failure optional (sets "error").
 */
void events_emit(struct kafka_producer *p,
                 const char *topic,
                 const struct job *job,
                 const char *state,
                 const char *step,
                 const struct err *failure);

#endif
