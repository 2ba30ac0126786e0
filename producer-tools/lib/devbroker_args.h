/* devbroker_args.h - thopter-devbroker's command line -> how many mock
 * brokers, the extra topics (NAME:PARTITIONS), whether stdin is watched,
 * and the -X properties of the handle that hosts the mock cluster. A
 * violation is reported on stderr. Reads nothing but argv; no Kafka.
 *
 * Callers: devbroker.c (main), tests/unit/test_devbroker_args.c.
 */
#ifndef THOPTER_DEVBROKER_ARGS_H
#define THOPTER_DEVBROKER_ARGS_H

#include "cli.h"

/* At most this many --topic, and as many -X, on one command line. */
#define DEVBROKER_ARGS_MAX 64

struct devbroker_topic {
        char name[256];
        int partitions; /* 1 when the spec gives none */
};

struct devbroker_args {
        int help, version; /* -h/--help, -V/--version: nothing else read */
        int nbrokers;      /* --brokers, 1 to 9 (default 1) */
        int watch_stdin;   /* 0 with --no-stdin */
        struct devbroker_topic topics[DEVBROKER_ARGS_MAX];
        int ntopics;
        char *props[DEVBROKER_ARGS_MAX]; /* "key=value", borrowed from argv */
        int nprops;
};

/**
 * @brief Parse argv into @p a (zeroed first). The first -h or -V ends the
 * parse, as the options before it were: the caller prints the text.
 * @returns CLI_OK, or CLI_USAGE after a message on stderr.
 */
int devbroker_args_parse(int argc, char **argv, struct devbroker_args *a);

#endif
