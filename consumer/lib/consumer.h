/* consumer.h - the thopter-consumer daemon, assembled: the fly client, the
 * circuit breaker, the producer of dead letters and events, one Kafka loop
 * per role (provision, destroy), each on its own thread, and the health
 * server. main.c turns the command line and signals into these calls.
 *
 * @locality the main thread, except consumer_running() (any thread).
 *
 * Callers: main.c only.
 */
#ifndef THOPTER_CONSUMER_H
#define THOPTER_CONSUMER_H

#include "config.h"
#include "err.h"

struct consumer;

/** @brief Build everything @p cfg asks for (borrowed; must outlive it). */
struct consumer *consumer_new(const struct config *cfg, struct err *err);

/** @brief Start each loop on its own thread. */
int consumer_start(struct consumer *c, struct err *err);

/** @brief How many loops are still running. */
int consumer_running(struct consumer *c);

/** @brief Ask every loop for a graceful stop (returns at once). */
void consumer_stop(struct consumer *c);

enum consumer_exit {
        CONSUMER_CLEAN,     /* every loop drained and committed */
        CONSUMER_ABANDONED, /* work was cut short; it will be redelivered */
        CONSUMER_STUCK,     /* a worker is still inside a remote call: exit
                               without consumer_destroy() */
};

/** @brief Wait for every loop's thread (after they stopped). */
enum consumer_exit consumer_join(struct consumer *c);

/** @brief Free everything (the producer first, so its last delivery reports
 * still reach the loops). NULL is a no-op. */
void consumer_destroy(struct consumer *c);

#endif
