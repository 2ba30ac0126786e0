/* Unit tests of dlq_args_parse (thopter-dlq's command line, without Kafka)
 * and of its range-checked number readers. */
#include "dlq_args.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>

#define MAXARGS 12
#define NOW     1796601600000LL /* 2026-12-07T00:00:00Z */

static int parse(const char *const *args, struct cli *cli, struct dlq_args *a) {
        char *argv[MAXARGS + 2] = {"thopter-dlq", "-b", "127.0.0.1:9092"};
        int argc = 3;

        for (int k = 0; k < MAXARGS && args[k]; k++)
                argv[argc++] = (char *)args[k];
        cli_init(cli, "thopter-dlq");
        return dlq_args_parse(cli, argc, argv, NOW, a);
}

static const struct {
        const char *argv[MAXARGS];
        int rc;
        enum dlq_cmd cmd;
} cases[] = {
    {{"list"}, CLI_OK, DLQ_CMD_LIST},
    {{"list", "--class", "ssh", "--from", "3", "--to", "9"},
     CLI_OK,
     DLQ_CMD_LIST},
    {{"show", "2:17", "--json"}, CLI_OK, DLQ_CMD_SHOW},
    {{"replay", "-n", "--group", "g2"}, CLI_OK, DLQ_CMD_REPLAY},
    {{"replay", "--to-topic", "t", "--force"}, CLI_OK, DLQ_CMD_REPLAY},
    {{"list", "--since", "2h", "--until", "2026-12-07"}, CLI_OK, DLQ_CMD_LIST},
    {{NULL}, CLI_USAGE, 0},
    {{"purge"}, CLI_USAGE, 0},
    {{"list", "x"}, CLI_USAGE, 0},
    {{"list", "--dry-run"}, CLI_USAGE, 0},
    {{"list", "--class", "bogus"}, CLI_USAGE, 0},
    {{"list", "--from", "-1"}, CLI_USAGE, 0},
    {{"list", "--since", "yesterday"}, CLI_USAGE, 0},
    {{"show"}, CLI_USAGE, 0},
    {{"show", "3", "--class", "ssh"}, CLI_USAGE, 0},
    {{"replay", "--json"}, CLI_USAGE, 0},
    {{"replay", "--to-topic", ""}, CLI_USAGE, 0},
    {{"replay", "--group", ""}, CLI_USAGE, 0},
    {{"replay", "extra"}, CLI_USAGE, 0},
    {{"replay", "--bogus"}, CLI_USAGE, 0},
};

Test(dlq_args, command_lines) {
        struct dlq_args a;
        struct cli cli;

        unsetenv("THOPTER_DLQ_TOPIC");
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                int rc = parse(cases[i].argv, &cli, &a);
                cr_expect_eq(rc, cases[i].rc, "case %zu (%s): rc %d", i,
                             cases[i].argv[0] ? cases[i].argv[0] : "-", rc);
                if (rc == CLI_OK && cases[i].rc == CLI_OK)
                        cr_expect_eq(a.cmd, cases[i].cmd, "case %zu: cmd", i);
        }
}

Test(dlq_args, filters_and_defaults) {
        struct dlq_args a;
        struct cli cli;
        const char *args[] = {"list", "--class", "ssh",     "--from", "3",
                              "--to", "9",       "--since", "2h",     NULL};

        unsetenv("THOPTER_DLQ_TOPIC");
        cr_assert_eq(parse(args, &cli, &a), CLI_OK);
        cr_expect_str_eq(a.f.cls, "ssh");
        cr_expect_eq(a.f.from, 3);
        cr_expect_eq(a.f.to, 9);
        cr_expect_eq(a.f.since, NOW - 2 * 3600 * 1000LL);
        cr_expect_eq(a.f.until, INT64_MAX);
        cr_expect_str_eq(a.dlq, "thopter.dlq");
        cr_expect_str_eq(a.group, "thopter-dlq-replay");
}

Test(dlq_args, no_brokers_is_a_usage_error) {
        struct dlq_args a;
        struct cli cli;
        char *argv[] = {"thopter-dlq", "list"};

        unsetenv("KAFKA_BROKERS");
        cli_init(&cli, "thopter-dlq");
        cr_expect_eq(dlq_args_parse(&cli, 2, argv, NOW, &a), CLI_USAGE);
}

Test(dlq_args, numbers_are_range_checked) {
        long long v = -1;
        int64_t o = -1;

        cr_expect_eq(dlq_args_uint("2147483646", 2147483646, &v), 0);
        cr_expect_eq(v, 2147483646);
        cr_expect_eq(dlq_args_uint("2147483647", 2147483646, &v), -1);
        cr_expect_eq(dlq_args_uint("", 10, &v), -1);
        cr_expect_eq(dlq_args_uint("+1", 10, &v), -1);
        cr_expect_eq(dlq_args_uint(" 1", 10, &v), -1);
        cr_expect_eq(dlq_args_uint(NULL, 10, &v), -1);
        cr_expect_eq(dlq_args_uint("12345678901234567890", INT64_MAX, &v), -1);
        cr_expect_eq(dlq_args_offset("0", &o), 0);
        cr_expect_eq(o, 0);
        cr_expect_eq(dlq_args_offset("-1", &o), -1);
}
