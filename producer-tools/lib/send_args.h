/* send_args.h - thopter-send's command line -> what to send: the
 * subcommand, the request flags, ids, files, stdin, and the options. Checks
 * every rule between them (contract section 6) and reports a violation on
 * stderr, as cli.h does. Reads nothing but argv and, for defaults, the
 * environment (cli_env); no Kafka, no I/O on the requests.
 *
 * Callers: send.c (main), tests/unit/test_send_args.c.
 */
#ifndef THOPTER_SEND_ARGS_H
#define THOPTER_SEND_ARGS_H

#include "cli.h"

/* At most this many ids, and as many --file options, on one command line. */
#define SEND_ARGS_MAX 1024

enum send_kind { SEND_DESTROY = 0, SEND_PROVISION };

/* The provision request flags; NULL when not given. Borrowed from argv. */
struct send_provision_flags {
        const char *request_id, *repository, *issue_number, *issue_title,
            *issue_body;
        const char *issue_url, *gc, *prompt, *image;
};

/* Borrowed from argv (or the environment) and valid as long as they are. */
struct send_args {
        enum send_kind kind;
        const char *sub;   /* "provision" | "destroy" */
        const char *topic; /* --topic, else the kind's default topic */
        const char *reason;
        struct send_provision_flags pf; /* request_id also for destroy */
        const char *ids[SEND_ARGS_MAX];
        int nids;
        const char *files[SEND_ARGS_MAX];
        int nfiles;
        int use_stdin, dry_run, json;
};

/**
 * @brief Parse argv into @p a (zeroed first), with the options cli.h shares
 * going to @p cli (cli_init() it first).
 * @returns CLI_OK, or CLI_USAGE after a usage error on stderr. With
 * cli->help or cli->version set it returns CLI_OK and checks nothing more:
 * the caller prints the text.
 */
int send_args_parse(struct cli *cli,
                    int argc,
                    char **argv,
                    struct send_args *a);

#endif
