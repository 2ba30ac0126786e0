/* dlq_args.h - thopter-dlq's command line -> the command (list, show,
 * replay), its filters and options, with every rule between them checked
 * and a violation reported on stderr (cli.h). Reads nothing but argv and,
 * for defaults, the environment; no Kafka. Also the range-checked number
 * readers the tool uses for offsets and headers.
 *
 * Callers: dlq.c (main), dlq_list.c and dlq_replay.c (the number readers),
 * tests/unit/test_dlq_args.c.
 */
#ifndef THOPTER_DLQ_ARGS_H
#define THOPTER_DLQ_ARGS_H

#include "cli.h"

#include <stdint.h>

enum dlq_cmd { DLQ_CMD_LIST = 1, DLQ_CMD_SHOW, DLQ_CMD_REPLAY };

/* What list and replay select. */
struct dlq_filters {
        const char *cls, *topic, *key; /* NULL: any */
        int64_t from, to;              /* -1: unset */
        int64_t since, until; /* ms since the epoch; INT64_MIN/MAX: unset */
};

/* Borrowed from argv (or the environment) and valid as long as they are. */
struct dlq_args {
        enum dlq_cmd cmd;
        struct dlq_filters f;
        const char *where;    /* show: [PARTITION:]OFFSET */
        const char *group;    /* replay's group (default thopter-dlq-replay) */
        const char *dlq;      /* --dlq-topic, else THOPTER_DLQ_TOPIC */
        const char *to_topic; /* replay --to-topic, or NULL */
        int json, dry_run, force;
};

/**
 * @brief Parse argv into @p a; --since/--until ago-durations count back from
 * @p now_ms. cli_init() @p cli first.
 * @returns CLI_OK, or CLI_USAGE after a usage error on stderr. With
 * cli->help or cli->version set it returns CLI_OK and checks nothing more.
 */
int dlq_args_parse(
    struct cli *cli, int argc, char **argv, int64_t now_ms, struct dlq_args *a);

/**
 * @brief A number read from the command line or from a header anyone could
 * have written: range checks, never atoi() (a thopter.replay.count of
 * 2147483647 made "+ 1" overflow).
 * @returns 0 and *out for 1 to 19 decimal digits worth at most @p max, -1
 * for anything else (a sign, blanks, other bytes, a larger value, NULL).
 */
int dlq_args_uint(const char *s, long long max, long long *out);

/** @brief An offset: dlq_args_uint() up to INT64_MAX - 1. */
int dlq_args_offset(const char *s, int64_t *out);

#endif
