/* devbroker_args.c - see devbroker_args.h. */
#include "devbroker_args.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG "thopter-devbroker"

/* "NAME:PARTITIONS" or "NAME" (one partition); the last colon splits, so
 * that a name may hold one. */
static int topic_spec(const char *spec, struct devbroker_topic *t) {
        const char *colon = strrchr(spec, ':');
        size_t len = colon ? (size_t)(colon - spec) : strlen(spec);

        t->partitions = colon ? atoi(colon + 1) : 1;
        if (len == 0 || len >= sizeof(t->name) || t->partitions < 1) {
                fprintf(stderr, PROG ": --topic %s: expected NAME:PARTITIONS\n",
                        spec);
                return -1;
        }
        memcpy(t->name, spec, len);
        t->name[len] = '\0';
        return 0;
}

int devbroker_args_parse(int argc, char **argv, struct devbroker_args *a) {
        memset(a, 0, sizeof(*a));
        a->nbrokers = 1;
        a->watch_stdin = 1;
        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
                        a->help = 1;
                        return CLI_OK;
                } else if (!strcmp(argv[i], "-V") ||
                           !strcmp(argv[i], "--version")) {
                        a->version = 1;
                        return CLI_OK;
                } else if (!strcmp(argv[i], "--brokers") && i + 1 < argc) {
                        a->nbrokers = atoi(argv[++i]);
                        if (a->nbrokers < 1 || a->nbrokers > 9) {
                                fprintf(stderr,
                                        PROG ": --brokers: must be 1 to 9\n");
                                return CLI_USAGE;
                        }
                } else if (!strcmp(argv[i], "--topic") && i + 1 < argc &&
                           a->ntopics < DEVBROKER_ARGS_MAX) {
                        if (topic_spec(argv[++i], &a->topics[a->ntopics]) == -1)
                                return CLI_USAGE;
                        a->ntopics++;
                } else if (!strcmp(argv[i], "--no-stdin")) {
                        a->watch_stdin = 0;
                } else if (!strcmp(argv[i], "-X") && i + 1 < argc &&
                           a->nprops < DEVBROKER_ARGS_MAX) {
                        a->props[a->nprops++] = argv[++i];
                } else {
                        /* Also a last option without its value, and one
                         * too many --topic or -X. */
                        fprintf(stderr,
                                PROG ": unknown argument \"%s\" (see --help)\n",
                                argv[i]);
                        return CLI_USAGE;
                }
        }
        return CLI_OK;
}
