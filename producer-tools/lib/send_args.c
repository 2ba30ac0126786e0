/* send_args.c - see send_args.h. */
#include "send_args.h"

#include <string.h>

int send_args_parse(struct cli *cli,
                    int argc,
                    char **argv,
                    struct send_args *a) {
        memset(a, 0, sizeof(*a));
        a->kind = SEND_DESTROY;
        for (int i = 1; i < argc; i++) {
                const char *arg = argv[i];
                int r = cli_common(cli, argc, argv, &i);
                if (r == 0)
                        r = cli_value(cli, argc, argv, &i, "--topic", "-t",
                                      &a->topic);
                if (r == 0) {
                        const char *file = NULL;
                        r = cli_value(cli, argc, argv, &i, "--file", "-f",
                                      &file);
                        if (r == 1 && a->nfiles >= SEND_ARGS_MAX)
                                return cli_usage_error(
                                    cli, "too many --file options");
                        if (r == 1)
                                a->files[a->nfiles++] = file;
                }
                if (r == 0)
                        r = cli_value(cli, argc, argv, &i, "--request-id", NULL,
                                      &a->pf.request_id);
                if (r == 0)
                        r = cli_value(cli, argc, argv, &i, "--reason", NULL,
                                      &a->reason);
                if (r == 0)
                        r = cli_value(cli, argc, argv, &i, "--repository", NULL,
                                      &a->pf.repository);
                if (r == 0)
                        r = cli_value(cli, argc, argv, &i, "--issue-number",
                                      NULL, &a->pf.issue_number);
                if (r == 0)
                        r = cli_value(cli, argc, argv, &i, "--issue-title",
                                      NULL, &a->pf.issue_title);
                if (r == 0)
                        r = cli_value(cli, argc, argv, &i, "--issue-body", NULL,
                                      &a->pf.issue_body);
                if (r == 0)
                        r = cli_value(cli, argc, argv, &i, "--issue-url", NULL,
                                      &a->pf.issue_url);
                if (r == 0)
                        r = cli_value(cli, argc, argv, &i, "--gc", NULL,
                                      &a->pf.gc);
                if (r == 0)
                        r = cli_value(cli, argc, argv, &i, "--prompt", NULL,
                                      &a->pf.prompt);
                if (r == 0)
                        r = cli_value(cli, argc, argv, &i, "--image", NULL,
                                      &a->pf.image);
                if (r == -1)
                        return CLI_USAGE;
                if (r == 1)
                        continue;
                if (cli_flag(arg, "--dry-run", "-n")) {
                        a->dry_run = 1;
                } else if (cli_flag(arg, "--json", NULL)) {
                        a->json = 1;
                } else if (!strcmp(arg, "-")) {
                        a->use_stdin = 1;
                } else if (arg[0] == '-' && arg[1] != '\0') {
                        return cli_usage_error(cli, "unknown option %s", arg);
                } else if (!a->sub) {
                        a->sub = arg;
                } else if (a->nids < SEND_ARGS_MAX) {
                        a->ids[a->nids++] = arg;
                } else {
                        return cli_usage_error(
                            cli,
                            "too many ids on the command line: pipe them into "
                            "thopter-send destroy -");
                }
        }
        if (cli->help || cli->version)
                return CLI_OK;
        if (!a->sub)
                return cli_usage_error(
                    cli, "say what to send: provision or destroy");
        if (!strcmp(a->sub, "provision"))
                a->kind = SEND_PROVISION;
        else if (strcmp(a->sub, "destroy") != 0)
                return cli_usage_error(
                    cli,
                    "unknown command \"%s\": expected provision or destroy",
                    a->sub);

        if (a->nfiles &&
            (a->use_stdin || a->nids || a->pf.request_id || a->pf.repository ||
             a->pf.issue_number || a->pf.issue_title || a->pf.issue_body ||
             a->pf.issue_url || a->pf.gc || a->pf.prompt || a->pf.image ||
             a->reason))
                return cli_usage_error(
                    cli, "--file sends the requests as written: give no ids, "
                         "no - and no request flags with it");
        if (a->nfiles) {
                /* checked above */
        } else if (a->kind == SEND_PROVISION) {
                if (a->nids)
                        return cli_usage_error(
                            cli, "provision takes no ids (unexpected \"%s\")",
                            a->ids[0]);
                if (a->reason)
                        return cli_usage_error(
                            cli, "--reason is an option of destroy");
                if (a->use_stdin && (a->pf.request_id || a->pf.repository ||
                                     a->pf.issue_number || a->pf.issue_title ||
                                     a->pf.issue_body || a->pf.issue_url ||
                                     a->pf.gc || a->pf.prompt || a->pf.image))
                        return cli_usage_error(
                            cli, "provision -: the requests come from stdin; "
                                 "drop the request flags");
                if (!a->use_stdin) {
                        const char *missing =
                            !a->pf.request_id     ? "--request-id"
                            : !a->pf.repository   ? "--repository"
                            : !a->pf.issue_number ? "--issue-number"
                            : !a->pf.issue_title  ? "--issue-title"
                            : !a->pf.issue_body   ? "--issue-body"
                                                  : NULL;
                        if (missing)
                                return cli_usage_error(
                                    cli,
                                    "provision needs %s (or - to read JSON "
                                    "lines from stdin)",
                                    missing);
                }
        } else {
                if (a->pf.repository || a->pf.issue_number ||
                    a->pf.issue_title || a->pf.issue_body || a->pf.issue_url ||
                    a->pf.gc || a->pf.prompt || a->pf.image)
                        return cli_usage_error(cli,
                                               "destroy takes ids, --reason "
                                               "and --request-id only");
                if (a->use_stdin && a->nids)
                        return cli_usage_error(
                            cli,
                            "give ids either as arguments or on stdin (-), "
                            "not both");
                if (!a->use_stdin && !a->nids)
                        return cli_usage_error(
                            cli, "destroy needs machine ids, or - to read them "
                                 "from stdin");
                if (a->pf.request_id && (a->use_stdin || a->nids > 1))
                        return cli_usage_error(
                            cli, "--request-id names one request: give one id");
        }
        if (!a->topic)
                a->topic =
                    a->kind == SEND_PROVISION
                        ? cli_env("THOPTER_PROVISION_TOPIC",
                                  "thopter.provision")
                        : cli_env("THOPTER_DESTROY_TOPIC", "thopter.destroy");
        if (!cli->brokers && !a->dry_run)
                return cli_usage_error(
                    cli, "no Kafka brokers: pass -b HOST:PORT or set "
                         "KAFKA_BROKERS");
        return CLI_OK;
}
