/* dlq_replay.h - thopter-dlq replay: dead letters re-published onto their
 * original topic (contract sections 4 and 6), and group G's position
 * committed past every record examined, so that a second run of the same
 * group replays nothing.
 *
 * A dead letter is input like any other: replay sends only to the topics
 * the consumer reads (or --to-topic), only values the consumer's own parser
 * accepts there, never a reduced dead letter without --force and never one
 * with a thopter.dlq.* header twice. What it refuses is counted as failed
 * and committed past. The DESIGN block of dlq_replay.c says why.
 *
 * Callers: dlq.c (main).
 */
#ifndef THOPTER_DLQ_REPLAY_H
#define THOPTER_DLQ_REPLAY_H

#include "cli.h"
#include "dlq_args.h"

/**
 * @brief Replays the dead letters of @p dlq that pass @p f, from group
 * @p group's committed position (earliest when none) to the end each
 * partition had when it started (or --to).
 * @param dry_run print what would be sent; send and commit nothing.
 * @param force replay reduced dead letters too.
 * @param to_topic (optional) send every one there instead of its
 * thopter.dlq.topic.
 * @returns CLI_OK when every matching dead letter was replayed; CLI_FAIL
 * when one was refused or not delivered, or reading or committing failed;
 * CLI_USAGE for bad Kafka settings. Each failure is reported on stderr.
 */
int dlq_replay_run(struct cli *cli,
                   const char *dlq,
                   const struct dlq_filters *f,
                   const char *group,
                   int dry_run,
                   int force,
                   const char *to_topic);

#endif
