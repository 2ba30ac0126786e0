/* breaker.h - the circuit breaker of contract section 5.12.
 *
 * When the fly API itself is failing, taking more messages only turns a
 * backlog into dead letters. The breaker opens after `threshold` consecutive
 * transient failures reported by different jobs with no success in between,
 * or when a job that spent its retry budget asks it to confirm an outage and
 * a probe fails too. While open, the Kafka loops pause their partitions,
 * jobs wait in breaker_wait_closed() without spending their budget, and a
 * thread of the breaker's own probes the API every probe_ms; the first
 * success (probe or call) closes it.
 *
 * @locality any thread.
 */
#ifndef THOPTER_BREAKER_H
#define THOPTER_BREAKER_H

#include "err.h"

#include <stdint.h>

struct breaker;

/* A cheap read of the API: 0 when it answered. */
typedef int(breaker_probe_fn)(void *arg, struct err *err);

struct breaker *breaker_new(int threshold,
                            long probe_ms,
                            breaker_probe_fn *probe,
                            void *probe_arg,
                            struct err *err);
void breaker_destroy(struct breaker *b); /* NULL is a no-op */

void breaker_record_success(struct breaker *b);
/** @param job_token identifies the job, so retries of one job count once. */
void breaker_record_failure(struct breaker *b,
                            uint64_t job_token,
                            const struct err *failure);

int breaker_is_open(struct breaker *b);

/**
 * @brief Probe now (a job spent its budget). Opens the circuit when the probe
 * fails too. @returns 1 when the API is down (the circuit is now open), 0
 * when it answers (the job's own calls are the problem).
 */
int breaker_confirm_outage(struct breaker *b);

/**
 * @brief Block while the circuit is open.
 * @param cancel optional; when *cancel becomes non-zero, return -1.
 * @returns 0 once closed.
 */
int breaker_wait_closed(struct breaker *b, const volatile int *cancel);

/** @brief How many times it opened (metrics, tests). */
uint64_t breaker_open_count(struct breaker *b);

#endif
