/* dlq_list.h - thopter-dlq list and show: dead letters printed for an
 * operator, one line (or JSON object) each, or one whole, with what replay
 * marks say about them (replay_mark.h).
 *
 * Both read with assign() only (dlq_read.h): no consumer group is joined
 * and nothing is committed. Every byte a record brings is printed through
 * dlq_letter_printable(): no raw control bytes reach the terminal.
 *
 * Callers: dlq.c (main).
 */
#ifndef THOPTER_DLQ_LIST_H
#define THOPTER_DLQ_LIST_H

#include "cli.h"
#include "dlq_args.h"

/**
 * @brief list: the dead letters of @p dlq that pass @p f, one per line
 * (@p json: one JSON object per line), up to the end each partition had
 * when it started (or --to).
 * @returns CLI_OK, or CLI_FAIL / CLI_USAGE after a message on stderr.
 */
int dlq_list_run(struct cli *cli,
                 const char *dlq,
                 const struct dlq_filters *f,
                 int json);

/**
 * @brief show: the one dead letter at @p where ("[PARTITION:]OFFSET"; the
 * partition may be left out when @p dlq has one) whole: key, every header,
 * the value (pretty when it is JSON); @p json: one JSON object.
 * @returns CLI_OK, or CLI_FAIL / CLI_USAGE after a message on stderr.
 */
int dlq_list_show(struct cli *cli,
                  const char *dlq,
                  const char *where,
                  int json);

#endif
