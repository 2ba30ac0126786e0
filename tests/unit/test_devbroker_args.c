/* Unit tests of devbroker_args_parse: thopter-devbroker's command line,
 * without a mock cluster. Each row is a command line, the exit status it
 * must give (CLI_OK: go on and start the brokers) and, for those that go
 * on, what was understood. */
#include "devbroker_args.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#define MAXARGS 16

static const struct {
        const char *argv[MAXARGS];
        int rc;
        int nbrokers, ntopics, watch_stdin, nprops;
} cases[] = {
    {{NULL}, CLI_OK, 1, 0, 1, 0},
    {{"--brokers", "3"}, CLI_OK, 3, 0, 1, 0},
    {{"--brokers", "9", "--no-stdin"}, CLI_OK, 9, 0, 0, 0},
    {{"--topic", "a:2", "--topic", "b"}, CLI_OK, 1, 2, 1, 0},
    {{"-X", "log_level=7", "-X", "debug=broker"}, CLI_OK, 1, 0, 1, 2},
    {{"--no-stdin", "--topic", "x.y:12", "--brokers", "2", "-X", "a=b"},
     CLI_OK,
     2,
     1,
     0,
     1},
    /* usage errors */
    {{"--brokers", "0"}, CLI_USAGE, 0, 0, 0, 0},
    {{"--brokers", "10"}, CLI_USAGE, 0, 0, 0, 0},
    {{"--brokers", "many"}, CLI_USAGE, 0, 0, 0, 0},
    {{"--brokers"}, CLI_USAGE, 0, 0, 0, 0},
    {{"--topic"}, CLI_USAGE, 0, 0, 0, 0},
    {{"--topic", ":3"}, CLI_USAGE, 0, 0, 0, 0},
    {{"--topic", "a:0"}, CLI_USAGE, 0, 0, 0, 0},
    {{"--topic", "a:x"}, CLI_USAGE, 0, 0, 0, 0},
    {{"-X"}, CLI_USAGE, 0, 0, 0, 0},
    {{"--bogus"}, CLI_USAGE, 0, 0, 0, 0},
    {{"stray"}, CLI_USAGE, 0, 0, 0, 0},
};

static int parse(const char *const *args, struct devbroker_args *a) {
        char *argv[MAXARGS + 1] = {"thopter-devbroker"};
        int argc = 1;

        for (; argc <= MAXARGS && args[argc - 1]; argc++)
                argv[argc] = (char *)args[argc - 1];
        return devbroker_args_parse(argc, argv, a);
}

Test(devbroker_args, command_lines) {
        static struct devbroker_args a;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                int rc = parse(cases[i].argv, &a);
                cr_expect_eq(rc, cases[i].rc, "case %zu (%s): rc %d", i,
                             cases[i].argv[0] ? cases[i].argv[0] : "", rc);
                if (rc != CLI_OK || cases[i].rc != CLI_OK)
                        continue;
                cr_expect_eq(a.nbrokers, cases[i].nbrokers, "case %zu", i);
                cr_expect_eq(a.ntopics, cases[i].ntopics, "case %zu", i);
                cr_expect_eq(a.watch_stdin, cases[i].watch_stdin, "case %zu",
                             i);
                cr_expect_eq(a.nprops, cases[i].nprops, "case %zu", i);
                cr_expect(!a.help && !a.version, "case %zu", i);
        }
}

Test(devbroker_args, topics_split_at_the_last_colon) {
        static struct devbroker_args a;
        const char *args[] = {"--topic", "a:b:4", "--topic", "plain", NULL};

        cr_assert_eq(parse(args, &a), CLI_OK);
        cr_assert_eq(a.ntopics, 2);
        cr_expect_str_eq(a.topics[0].name, "a:b");
        cr_expect_eq(a.topics[0].partitions, 4);
        cr_expect_str_eq(a.topics[1].name, "plain");
        cr_expect_eq(a.topics[1].partitions, 1);
}

Test(devbroker_args, a_name_too_long_is_refused) {
        static struct devbroker_args a;
        char spec[300];
        const char *args[] = {"--topic", spec, NULL};

        memset(spec, 'n', 255);
        snprintf(spec + 255, sizeof(spec) - 255, ":1");
        cr_expect_eq(parse(args, &a), CLI_OK, "255 bytes fit");
        cr_expect_eq(strlen(a.topics[0].name), 255);
        memset(spec, 'n', 256);
        snprintf(spec + 256, sizeof(spec) - 256, ":1");
        cr_expect_eq(parse(args, &a), CLI_USAGE, "256 bytes do not");
}

Test(devbroker_args, help_and_version_end_the_parse) {
        static struct devbroker_args a;
        const char *help[] = {"--help", "--brokers", "0", NULL};
        const char *version[] = {"--no-stdin", "-V", "--bogus", NULL};
        const char *late[] = {"--brokers", "0", "-h", NULL};

        cr_expect_eq(parse(help, &a), CLI_OK);
        cr_expect(a.help);
        cr_expect_eq(parse(version, &a), CLI_OK);
        cr_expect(a.version);
        cr_expect_eq(a.watch_stdin, 0);
        cr_expect_eq(parse(late, &a), CLI_USAGE, "an error before -h counts");
}

Test(devbroker_args, a_65th_property_is_refused) {
        static struct devbroker_args a;
        char *argv[2 * DEVBROKER_ARGS_MAX + 3] = {"thopter-devbroker"};
        int argc = 1;

        for (int i = 0; i <= DEVBROKER_ARGS_MAX; i++) {
                argv[argc++] = "-X";
                argv[argc++] = "a=b";
        }
        cr_expect_eq(devbroker_args_parse(argc, argv, &a), CLI_USAGE);
        cr_expect_eq(devbroker_args_parse(argc - 2, argv, &a), CLI_OK);
        cr_expect_eq(a.nprops, DEVBROKER_ARGS_MAX);
}
