/* dlq_letter.h - one record of the dead-letter topic as thopter-dlq sees it:
 * its thopter.dlq.* headers (contract section 4,
 * schemas/dead-letter-headers.md) decoded into printable strings, whether
 * the filters of list and replay select it, and what a reduced dead letter
 * lost.
 *
 * A dead letter is input like any other (anyone who may write the topic can
 * make one), so every byte taken from it is made printable here before a
 * tool prints it. No I/O.
 *
 * Callers: dlq_read.c, dlq_list.c, dlq_replay.c.
 */
#ifndef THOPTER_DLQ_LETTER_H
#define THOPTER_DLQ_LETTER_H

#include "dlq_args.h"

#include <librdkafka/rdkafka.h>

#include <stddef.h>

#define DLQ_LETTER_PREFIX       "thopter.dlq."
#define DLQ_LETTER_TOPIC        DLQ_LETTER_PREFIX "topic"
#define DLQ_LETTER_PARTITION    DLQ_LETTER_PREFIX "partition"
#define DLQ_LETTER_OFFSET       DLQ_LETTER_PREFIX "offset"
#define DLQ_LETTER_GROUP        DLQ_LETTER_PREFIX "group"
#define DLQ_LETTER_CLASS        DLQ_LETTER_PREFIX "error.class"
#define DLQ_LETTER_MESSAGE      DLQ_LETTER_PREFIX "error.message"
#define DLQ_LETTER_STEP         DLQ_LETTER_PREFIX "error.step"
#define DLQ_LETTER_ATTEMPTS     DLQ_LETTER_PREFIX "attempts"
#define DLQ_LETTER_FAILED_AT    DLQ_LETTER_PREFIX "failed_at"
#define DLQ_LETTER_REPLAY_COUNT "thopter.replay.count"
#define DLQ_LETTER_TRUNCATED    DLQ_LETTER_PREFIX "truncated"
#define DLQ_LETTER_VALUE_SIZE   DLQ_LETTER_PREFIX "truncated.value_size"
#define DLQ_LETTER_VALUE_SHA    DLQ_LETTER_PREFIX "truncated.value_sha256"
#define DLQ_LETTER_KEY_SIZE     DLQ_LETTER_PREFIX "truncated.key_size"
#define DLQ_LETTER_KEY_SHA      DLQ_LETTER_PREFIX "truncated.key_sha256"

/* The dead-letter headers of one record, as C strings ("" when absent). */
struct dlq_letter {
        char topic[256], partition[32], offset[32], group[256];
        char cls[64], step[64], message[1024], attempts[32], failed_at[64];
        char replay[32];
        /* A reduced dead letter (schemas/dead-letter-headers.md): truncated
         * is set, and the sizes and digests of what was cut. */
        char truncated[32], value_size[32], value_sha[80], key_size[32],
            key_sha[80];
        char key[512]; /* printable form of the key */
};

/**
 * @brief @p len bytes of @p data (NULL: none) into @p out as text: printable
 * bytes as they are, the others as \\xNN; cut to fit @p cap.
 */
void dlq_letter_printable(const void *data, size_t len, char *out, size_t cap);

/** @brief Decodes the headers and the key of @p rkm into @p dl. */
void dlq_letter_read(const rd_kafka_message_t *rkm, struct dlq_letter *dl);

/** @brief Non-zero when @p rkm, decoded as @p dl, passes every filter. */
int dlq_letter_matches(const struct dlq_filters *f,
                       const rd_kafka_message_t *rkm,
                       const struct dlq_letter *dl);

/** @brief One line saying what a reduced dead letter lost; "" for a whole
 * one. */
void dlq_letter_reduced_text(const struct dlq_letter *dl,
                             char *buf,
                             size_t cap);

#endif
