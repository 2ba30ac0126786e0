/* job.h - one Kafka record being worked on, from poll to commit.
 *
 * The Kafka loop copies everything it needs out of the rd_kafka_message_t
 * (which it destroys in the iteration that got it) into a job. A handler
 * (destroy_steps, provision_steps) fills in what it learns: the request id,
 * the key that must not run twice at once, the machine.
 */
#ifndef THOPTER_JOB_H
#define THOPTER_JOB_H

#include "err.h"

#include <librdkafka/rdkafka.h>
#include <stdint.h>

struct kafka_loop;

struct job {
        /* Where the record came from (copied at poll time). */
        char *topic;
        int32_t partition;
        int64_t offset;
        int64_t timestamp_ms; /* the record's own timestamp, -1 if none */
        void *key;            /* NULL when the record has no key */
        size_t key_len;
        void *value;
        size_t value_len;
        rd_kafka_headers_t *headers; /* a copy, or NULL */
        int64_t received_mono_ms;    /* when the consumer received it */
        const char *group;           /* the consumer group (borrowed) */
        const char *kind;            /* "provision" | "destroy" (borrowed) */

        /* Filled in by the handler's prepare(). */
        char request_id[160]; /* the request's, or <topic>-<partition>-<offset>
                               */
        char exclusive_key[160]; /* never two running jobs with the same key */
        void *request;           /* the parsed request, owned by the handler */

        /* Filled in while it runs; shown in events. */
        char thopter_id[64];
        char machine_name[128];
        char region[32];
        int attempt;        /* counts from 1 */
        struct err failure; /* why it is being dead-lettered */

        /* Finishing (owned by the Kafka loop): the final event, and for a
         * failure the dead letter, must be acknowledged before the offset
         * may be committed. */
        int final_failed; /* the final event is "failed" (and a dead letter goes
                             too) */
        int event_done, dlq_done;   /* acknowledged */
        int event_retry, dlq_retry; /* to send again */
        int in_resend;              /* on the loop's resend list */
        int send_tries;             /* sends that failed */
        int dlq_reduced; /* send the reduced form (the original was too big) */
        int64_t next_send_ms; /* monotonic time of the next send */

        /* Owned by the Kafka loop. */
        struct kafka_loop *loop;
        uint64_t generation; /* assignment generation it was received in */
        int abandoned; /* shutdown interrupted it: neither commit nor DLQ */
        volatile int cancel; /* set by the loop: give up now (steps poll it) */
        volatile int interruptible; /* set by a step while it only waits */
        struct job *next;
};

#endif
