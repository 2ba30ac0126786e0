/* reap_pass.h - one pass of thopter-reaper: list the app's machines, read
 * who owns each (reap_events.h), decide (reap_rules.h, with an idle check
 * over SSH only for a machine nothing else condemns), adopt, build and
 * validate each destroy request, publish them with --apply and wait for
 * every acknowledgement, then print one line per machine and one summary
 * line (contract sections 6 and 7).
 *
 * It destroys nothing itself: the destroy consumer does. Every request of
 * one pass carries the requestId reap-<machine id>-<pass start,
 * YYYYMMDDHHMM UTC>, so two reapers in the same minute publish identical
 * requests.
 *
 * The handles are made and freed by the caller (reaper.c); a pass only
 * borrows them. Callers: reaper.c.
 */
#ifndef THOPTER_REAP_PASS_H
#define THOPTER_REAP_PASS_H

#include "fly_client.h"
#include "fly_retry.h"
#include "reap_idle.h"
#include "reap_rules.h"

#include <librdkafka/rdkafka.h>

#include <signal.h>

/* What every pass uses; all borrowed, set once before the first pass. */
struct reap_pass {
        int apply, json, adopt; /* --apply, --json, --adopt */
        const struct reap_settings *rs;
        struct fly_client *fly;
        const struct fly_retry *retry;
        const struct reap_idle_opts *idle;
        /* With apply: a producer whose delivery report callback is
         * reap_pass_delivery(); otherwise NULL. */
        rd_kafka_t *producer;
        rd_kafka_t *events; /* an events reader, NULL without KAFKA_BROKERS */
        const char *destroy_topic, *events_topic, *app;
        /* Non-zero (a signal): look at no further machine. */
        const volatile sig_atomic_t *stop;
};

/**
 * @brief One pass.
 * @returns 0 when every machine was looked at and every request
 * acknowledged, -1 otherwise (reported on stderr).
 */
int reap_pass_run(const struct reap_pass *p);

/** @brief The delivery report callback to set on the producer's conf. */
void reap_pass_delivery(rd_kafka_t *rk,
                        const rd_kafka_message_t *rkm,
                        void *opaque);

#endif
