/* Unit tests of send_args_parse: thopter-send's command line, without
 * Kafka. Each row is a command line, the exit status it must give (CLI_OK:
 * go on and send) and, for those that go on, what was understood. */
#include "send_args.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#define MAXARGS 16

static const struct {
        const char *argv[MAXARGS];
        int rc;
        enum send_kind kind;
        int nids, nfiles, use_stdin, dry_run;
        const char *topic;
} cases[] = {
    {{"destroy", "148e21a3c96989", "-b", "127.0.0.1:9092"},
     CLI_OK,
     SEND_DESTROY,
     1,
     0,
     0,
     0,
     "thopter.destroy"},
    {{"destroy", "a", "b", "--reason", "r", "-n"},
     CLI_OK,
     SEND_DESTROY,
     2,
     0,
     0,
     1,
     "thopter.destroy"},
    {{"destroy", "-", "-t", "other", "-n"},
     CLI_OK,
     SEND_DESTROY,
     0,
     0,
     1,
     1,
     "other"},
    {{"provision", "--request-id", "r1", "--repository", "o/n",
      "--issue-number", "1", "--issue-title", "t", "--issue-body", "b", "-n"},
     CLI_OK,
     SEND_PROVISION,
     0,
     0,
     0,
     1,
     "thopter.provision"},
    {{"provision", "-", "-n"},
     CLI_OK,
     SEND_PROVISION,
     0,
     0,
     1,
     1,
     "thopter.provision"},
    {{"provision", "--file", "x.json", "-f", "y.json", "-n"},
     CLI_OK,
     SEND_PROVISION,
     0,
     2,
     0,
     1,
     "thopter.provision"},
    /* usage errors */
    {{"-n"}, CLI_USAGE, 0, 0, 0, 0, 0, NULL},
    {{"resize", "-n"}, CLI_USAGE, 0, 0, 0, 0, 0, NULL},
    {{"destroy", "--bogus", "-n"}, CLI_USAGE, 0, 0, 0, 0, 0, NULL},
    {{"destroy", "-n"}, CLI_USAGE, 0, 0, 0, 0, 0, NULL},
    {{"destroy", "a", "-", "-n"}, CLI_USAGE, 0, 0, 0, 0, 0, NULL},
    {{"destroy", "a", "b", "--request-id", "r", "-n"},
     CLI_USAGE,
     0,
     0,
     0,
     0,
     0,
     NULL},
    {{"destroy", "a", "--repository", "o/n", "-n"},
     CLI_USAGE,
     0,
     0,
     0,
     0,
     0,
     NULL},
    {{"provision", "--request-id", "r1", "-n"}, CLI_USAGE, 0, 0, 0, 0, 0, NULL},
    {{"provision", "x", "-n"}, CLI_USAGE, 0, 0, 0, 0, 0, NULL},
    {{"provision", "--reason", "r", "-", "-n"}, CLI_USAGE, 0, 0, 0, 0, 0, NULL},
    {{"provision", "-", "--gc", "g", "-n"}, CLI_USAGE, 0, 0, 0, 0, 0, NULL},
    {{"destroy", "-f", "x.json", "a", "-n"}, CLI_USAGE, 0, 0, 0, 0, 0, NULL},
    {{"destroy", "a", "--topic"}, CLI_USAGE, 0, 0, 0, 0, 0, NULL},
    /* no brokers, and not a dry run */
    {{"destroy", "a"}, CLI_USAGE, 0, 0, 0, 0, 0, NULL},
};

static int
parse(const char *const *args, struct cli *cli, struct send_args *a) {
        char *argv[MAXARGS + 1] = {"thopter-send"};
        int argc = 1;

        for (; argc <= MAXARGS && args[argc - 1]; argc++)
                argv[argc] = (char *)args[argc - 1];
        cli_init(cli, "thopter-send");
        return send_args_parse(cli, argc, argv, a);
}

Test(send_args, command_lines) {
        static struct send_args a;
        struct cli cli;

        unsetenv("KAFKA_BROKERS");
        unsetenv("THOPTER_DESTROY_TOPIC");
        unsetenv("THOPTER_PROVISION_TOPIC");
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                int rc = parse(cases[i].argv, &cli, &a);
                cr_expect_eq(rc, cases[i].rc, "case %zu (%s %s): rc %d", i,
                             cases[i].argv[0],
                             cases[i].argv[1] ? cases[i].argv[1] : "", rc);
                if (rc != CLI_OK || cases[i].rc != CLI_OK)
                        continue;
                cr_expect_eq(a.kind, cases[i].kind, "case %zu: kind", i);
                cr_expect_eq(a.nids, cases[i].nids, "case %zu: ids", i);
                cr_expect_eq(a.nfiles, cases[i].nfiles, "case %zu: files", i);
                cr_expect_eq(a.use_stdin, cases[i].use_stdin, "case %zu: -", i);
                cr_expect_eq(a.dry_run, cases[i].dry_run, "case %zu: -n", i);
                cr_expect_str_eq(a.topic, cases[i].topic, "case %zu: topic", i);
        }
}

Test(send_args, help_checks_nothing_more) {
        static struct send_args a;
        struct cli cli;
        const char *args[] = {"--help", NULL};

        cr_expect_eq(parse(args, &cli, &a), CLI_OK);
        cr_expect(cli.help);
}

Test(send_args, request_flags_and_reason_are_kept) {
        static struct send_args a;
        struct cli cli;
        const char *args[] = {
            "destroy", "148e21a3c96989", "--reason", "done", "--request-id",
            "r-1",     "--dry-run",      NULL};

        cr_assert_eq(parse(args, &cli, &a), CLI_OK);
        cr_expect_str_eq(a.sub, "destroy");
        cr_expect_str_eq(a.ids[0], "148e21a3c96989");
        cr_expect_str_eq(a.reason, "done");
        cr_expect_str_eq(a.pf.request_id, "r-1");
}

Test(send_args, the_environment_names_the_default_topic) {
        static struct send_args a;
        struct cli cli;
        const char *args[] = {"destroy", "a", "-n", NULL};

        setenv("THOPTER_DESTROY_TOPIC", "env.destroy", 1);
        cr_assert_eq(parse(args, &cli, &a), CLI_OK);
        cr_expect_str_eq(a.topic, "env.destroy");
        unsetenv("THOPTER_DESTROY_TOPIC");
}
