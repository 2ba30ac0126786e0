/* topic_check.h - do the tools' topics exist? One metadata request for the
 * whole cluster, before anything is read or sent.
 *
 * The producer tools never create a topic: a typo in -t, --dlq-topic or a
 * THOPTER_*_TOPIC setting must be refused by name, not auto-created by a
 * broker (or librdkafka's mock cluster) that creates whatever a client asks
 * about. So the check asks for the metadata of *all* topics (a request that
 * names no topic creates none) and looks the names up in the answer.
 *
 * Callers: thopter-send, thopter-dlq (dlq_read.c, dlq_replay.c),
 * thopter-status, thopter-reaper.
 */
#ifndef THOPTER_TOPIC_CHECK_H
#define THOPTER_TOPIC_CHECK_H

#include "err.h"

#include <librdkafka/rdkafka.h>

/* How long the metadata request may take. */
#define TOPIC_CHECK_TIMEOUT_MS 10000

struct topic_list;

/**
 * @brief The topics the cluster of @p rk has now.
 * @returns a list to free with topic_list_destroy(), or NULL with @p err set
 * (ERR_TRANSIENT, code the librdkafka error: the brokers did not answer
 * within @p timeout_ms).
 */
struct topic_list *
topic_list_fetch(rd_kafka_t *rk, int timeout_ms, struct err *err);

/** @brief Non-zero when @p topic exists (and has partitions) in @p tl. */
int topic_list_has(const struct topic_list *tl, const char *topic);

/** @brief NULL is a no-op. */
void topic_list_destroy(struct topic_list *tl);

/**
 * @brief Check that each of the @p n topics exists.
 * @p hint (optional) says where the name came from ("-t/--topic or
 * THOPTER_DESTROY_TOPIC"); it goes into the message.
 * @returns 0, or -1 with @p err set: ERR_PERMANENT with code
 * RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART and a message naming the first
 * missing topic, or the error of topic_list_fetch().
 */
int topic_check(rd_kafka_t *rk,
                const char *const *topics,
                int n,
                const char *hint,
                struct err *err);

#endif
