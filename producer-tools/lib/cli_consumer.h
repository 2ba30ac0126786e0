/* cli_consumer.h - a Kafka consumer handle for a producer tool that reads
 * offsets or records with assign(): never subscribed, so it joins no group,
 * and it creates no topic.
 *
 * group.id names the group whose committed offsets the tool reads (or, for
 * replay, writes with an explicit commit); librdkafka's consumer wants one
 * even when nothing is committed. Automatic commits are off unless a -X
 * says otherwise.
 *
 * Callers: thopter-dlq (list, show, replay), thopter-status.
 */
#ifndef THOPTER_CLI_CONSUMER_H
#define THOPTER_CLI_CONSUMER_H

#include "cli.h"
#include "err.h"

#include <librdkafka/rdkafka.h>

enum {
        /* The tool polls records: partition EOFs reported, offsets never
         * stored automatically, the earliest offset where the group has
         * none, and the main queue forwarded to the consumer's. */
        CLI_CONSUMER_READS = 1 << 0,
};

/**
 * @brief A consumer from the brokers and -X properties of @p cli, in group
 * @p group, with the flags above.
 * @returns a handle the caller destroys (rd_kafka_consumer_close() first
 * with CLI_CONSUMER_READS), or NULL with @p err set (ERR_PERMANENT: the
 * settings are wrong, e.g. no brokers or a bad -X).
 */
rd_kafka_t *cli_consumer_new(struct cli *cli,
                             const char *group,
                             int flags,
                             struct err *err);

#endif
