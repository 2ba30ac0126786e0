/* dlq_args.c - see dlq_args.h. */
#include "dlq_args.h"
#include "err.h"
#include "time_arg.h"

#include <stdint.h>
#include <string.h>

int dlq_args_uint(const char *s, long long max, long long *out) {
        long long v = 0;
        size_t n = 0;

        if (!s)
                return -1;
        for (; s[n]; n++) {
                if (s[n] < '0' || s[n] > '9' || n >= 19)
                        return -1;
                int d = s[n] - '0';
                if (v > (max - d) / 10)
                        return -1;
                v = v * 10 + d;
        }
        if (n == 0)
                return -1;
        *out = v;
        return 0;
}

int dlq_args_offset(const char *s, int64_t *out) {
        long long v;

        if (dlq_args_uint(s, INT64_MAX - 1, &v) == -1)
                return -1;
        *out = v;
        return 0;
}

int dlq_args_parse(struct cli *cli,
                   int argc,
                   char **argv,
                   int64_t now_ms,
                   struct dlq_args *a) {
        const char *from = NULL, *to = NULL, *since = NULL, *until = NULL;
        const char *sub = NULL;

        memset(a, 0, sizeof(*a));
        a->f = (struct dlq_filters){
            .from = -1, .to = -1, .since = INT64_MIN, .until = INT64_MAX};
        a->group = "thopter-dlq-replay";
        for (int i = 1; i < argc; i++) {
                const char *arg = argv[i];
                int r = cli_common(cli, argc, argv, &i);
                if (r == 0)
                        r = cli_value(cli, argc, argv, &i, "--class", NULL,
                                      &a->f.cls);
                if (r == 0)
                        r = cli_value(cli, argc, argv, &i, "--topic", "-t",
                                      &a->f.topic);
                if (r == 0)
                        r = cli_value(cli, argc, argv, &i, "--key", "-k",
                                      &a->f.key);
                if (r == 0)
                        r = cli_value(cli, argc, argv, &i, "--from", NULL,
                                      &from);
                if (r == 0)
                        r = cli_value(cli, argc, argv, &i, "--to", NULL, &to);
                if (r == 0)
                        r = cli_value(cli, argc, argv, &i, "--since", NULL,
                                      &since);
                if (r == 0)
                        r = cli_value(cli, argc, argv, &i, "--until", NULL,
                                      &until);
                if (r == 0)
                        r = cli_value(cli, argc, argv, &i, "--group", "-G",
                                      &a->group);
                if (r == 0)
                        r = cli_value(cli, argc, argv, &i, "--dlq-topic", NULL,
                                      &a->dlq);
                if (r == 0)
                        r = cli_value(cli, argc, argv, &i, "--to-topic", NULL,
                                      &a->to_topic);
                if (r == -1)
                        return CLI_USAGE;
                if (r == 1)
                        continue;
                if (cli_flag(arg, "--json", "-j"))
                        a->json = 1;
                else if (cli_flag(arg, "--dry-run", "-n"))
                        a->dry_run = 1;
                else if (cli_flag(arg, "--force", NULL))
                        a->force = 1;
                else if (arg[0] == '-' && arg[1] != '\0')
                        return cli_usage_error(cli, "unknown option %s", arg);
                else if (!sub)
                        sub = arg;
                else if (!a->where)
                        a->where = arg;
                else
                        return cli_usage_error(
                            cli, "unexpected argument \"%s\"", arg);
        }
        if (cli->help || cli->version)
                return CLI_OK;
        if (!sub)
                return cli_usage_error(cli,
                                       "say what to do: list, show or replay");
        if (from && dlq_args_offset(from, &a->f.from) == -1)
                return cli_usage_error(
                    cli, "--from %s: expected an offset (0 or more)", from);
        if (to && dlq_args_offset(to, &a->f.to) == -1)
                return cli_usage_error(
                    cli, "--to %s: expected an offset (0 or more)", to);
        if (since && time_arg_parse(since, now_ms, &a->f.since) == -1)
                return cli_usage_error(
                    cli,
                    "--since %s: expected a UTC time (2026-12-07, "
                    "2026-12-07T10:30:00Z) or a time ago (2h, 1h30m)",
                    since);
        if (until && time_arg_parse(until, now_ms, &a->f.until) == -1)
                return cli_usage_error(
                    cli,
                    "--until %s: expected a UTC time (2026-12-07, "
                    "2026-12-07T10:30:00Z) or a time ago (2h, 1h30m)",
                    until);
        if (a->f.cls && err_class_parse(a->f.cls) == ERRC_NONE)
                return cli_usage_error(
                    cli,
                    "--class %s: not an error class (invalid_request, "
                    "unknown_repository, forbidden_target, fly_rejected, "
                    "fly_unavailable, capacity, ssh, timeout, internal)",
                    a->f.cls);
        if (!a->group[0])
                return cli_usage_error(cli, "--group needs a name");
        if (!a->dlq)
                a->dlq = cli_env("THOPTER_DLQ_TOPIC", "thopter.dlq");
        if (!cli->brokers)
                return cli_usage_error(
                    cli, "no Kafka brokers: pass -b HOST:PORT or set "
                         "KAFKA_BROKERS");
        if (!strcmp(sub, "list")) {
                if (a->where)
                        return cli_usage_error(
                            cli, "list takes no argument (\"%s\")", a->where);
                if (a->dry_run || a->force || a->to_topic)
                        return cli_usage_error(cli, "%s is an option of replay",
                                               a->dry_run ? "--dry-run"
                                               : a->force ? "--force"
                                                          : "--to-topic");
                a->cmd = DLQ_CMD_LIST;
                return CLI_OK;
        }
        if (!strcmp(sub, "show")) {
                if (!a->where)
                        return cli_usage_error(
                            cli,
                            "show needs the dead letter's [PARTITION:]OFFSET "
                            "(see thopter-dlq list)");
                if (a->f.cls || a->f.topic || a->f.key || from || to || since ||
                    until || a->dry_run || a->force || a->to_topic)
                        return cli_usage_error(
                            cli,
                            "show takes only [PARTITION:]OFFSET and --json");
                a->cmd = DLQ_CMD_SHOW;
                return CLI_OK;
        }
        if (!strcmp(sub, "replay")) {
                if (a->where)
                        return cli_usage_error(
                            cli, "replay takes no argument (\"%s\")", a->where);
                if (a->json)
                        return cli_usage_error(
                            cli, "--json is an option of list and show");
                if (a->to_topic && !a->to_topic[0])
                        return cli_usage_error(cli, "--to-topic needs a name");
                a->cmd = DLQ_CMD_REPLAY;
                return CLI_OK;
        }
        return cli_usage_error(
            cli, "unknown command \"%s\": expected list, show or replay", sub);
}
