/* fly_breaker.h - the circuit breaker of contract section 5.12: tells an
 * outage of the fly API from a few machines whose own calls fail.
 *
 * When the API itself is down, taking more messages only turns a backlog
 * into dead letters, so the loops pause and jobs wait. But a dead fly host
 * makes the calls for its machines fail while the API answers everything
 * else; those messages must spend their own retry budget and reach the
 * dead-letter topic in bounded time, and the rest must keep flowing. The
 * breaker decides between the two with evidence from several targets and a
 * probe (a cheap read of the API):
 *
 *                   failures from `threshold` distinct targets
 *                   (route + machine), no success in between
 *     +--------+ -------------------------------------------> +----------+
 *     | CLOSED |                                              | CHECKING |
 *     +--------+ <------------ the probe answers ------------ +----------+
 *       ^    ^    (the failures were the targets' own: they         |
 *       |    |     keep spending their budgets; no new check        |
 *       |    |     for probe_ms)                      the probe fails
 *       |    |                                                      v
 *       |    +----- a probe (every probe_ms) answers -------- +----------+
 *       |                                                     |   OPEN   |
 *       +---------------- a call answers -------------------- +----------+
 *
 * CLOSED and CHECKING let every call through: suspicion alone pauses
 * nothing. OPEN pauses the Kafka loops (fly_breaker_is_open()), and calls
 * wait in fly_breaker_wait_closed() without spending attempts; only the
 * probe reaches the API, every probe_ms. A call whose budget is spent asks
 * fly_breaker_outage(): the answer is the probe's (a fresh one, or one run
 * now), so a message is dead-lettered as fly_unavailable only while the API
 * answers the probe.
 *
 * 429 and 408 are the API answering (pacing us, or a wait that timed out):
 * they are never evidence of an outage.
 *
 * @locality any thread.
 *
 * Callers: consumer.c (builds it), fly_retry.c (records and waits),
 * kafka_pause.c (pauses while open).
 */
#ifndef THOPTER_FLY_BREAKER_H
#define THOPTER_FLY_BREAKER_H

#include "err.h"

#include <stdatomic.h>
#include <stdint.h>

struct fly_breaker;

/* A cheap read of the API: 0 when it answered. */
typedef int(fly_breaker_probe_fn)(void *arg, struct err *err);

enum fly_breaker_state {
        FLY_BREAKER_CLOSED,
        FLY_BREAKER_CHECKING,
        FLY_BREAKER_OPEN,
};

/**
 * @param threshold distinct failing targets that make the breaker check.
 * @param probe_ms how often to probe while open, and how long a probe's
 * "the API answers" stays fresh.
 */
struct fly_breaker *fly_breaker_new(int threshold,
                                    long probe_ms,
                                    fly_breaker_probe_fn *probe,
                                    void *probe_arg,
                                    struct err *err);
void fly_breaker_destroy(struct fly_breaker *b); /* NULL is a no-op */

/** @brief A call was answered (2xx, or a permanent error). */
void fly_breaker_record_success(struct fly_breaker *b);

/**
 * @brief A call failed transiently.
 * @param target what failed, e.g. "delete:148e21a3c96989" (route and
 * machine): failures count towards a check once per distinct target.
 */
void fly_breaker_record_failure(struct fly_breaker *b,
                                const char *target,
                                const struct err *failure);

enum fly_breaker_state fly_breaker_state(struct fly_breaker *b);

/** @brief Non-zero while OPEN (the loops pause). */
int fly_breaker_is_open(struct fly_breaker *b);

/**
 * @brief A call spent its budget: is the API down? Uses a probe result
 * younger than probe_ms, or probes now; a failed probe opens the circuit.
 * @returns 1 when the API is down (OPEN), 0 when it answers.
 */
int fly_breaker_outage(struct fly_breaker *b);

/**
 * @brief Block while OPEN.
 * @param cancel optional; when *cancel becomes non-zero, return -1.
 * @returns 0 once closed.
 */
int fly_breaker_wait_closed(struct fly_breaker *b, const atomic_int *cancel);

/** @brief How many times it opened (its "epoch": a call that sees it change
 * knows an outage happened meanwhile). */
uint64_t fly_breaker_open_count(struct fly_breaker *b);

/** @brief Probes run so far (tests, metrics). */
uint64_t fly_breaker_probe_count(struct fly_breaker *b);

#endif
