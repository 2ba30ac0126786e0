/* test_cli.c - the producer tools' shared option handling (cli.c). */
#include "cli.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int take(struct cli *cli, int argc, char **argv, int *i) {
        return cli_common(cli, argc, argv, i);
}

Test(cli, brokers_from_the_environment_then_the_flag) {
        struct cli cli;
        char *argv[] = {"t", "-b", "h1:9092", "--brokers=h2:9092"};
        int i = 1;

        setenv("KAFKA_BROKERS", "env:9092", 1);
        cli_init(&cli, "t");
        cr_assert_str_eq(cli.brokers, "env:9092");
        cr_assert_eq(take(&cli, 4, argv, &i), 1);
        cr_assert_eq(i, 2, "the value is consumed");
        cr_assert_str_eq(cli.brokers, "h1:9092");
        i = 3;
        cr_assert_eq(take(&cli, 4, argv, &i), 1);
        cr_assert_str_eq(cli.brokers, "h2:9092");
        unsetenv("KAFKA_BROKERS");
}

Test(cli, x_properties_separate_and_glued_in_order) {
        struct cli cli;
        char *argv[] = {"t", "-X", "acks=1", "-Xlinger.ms=5"};
        int i = 1;

        cli_init(&cli, "t");
        cr_assert_eq(take(&cli, 4, argv, &i), 1);
        i++;
        cr_assert_eq(take(&cli, 4, argv, &i), 1);
        cr_assert_eq(cli.nprops, 2);
        cr_assert_str_eq(cli.props[0], "acks=1");
        cr_assert_str_eq(cli.props[1], "linger.ms=5");
}

Test(cli, bad_x_and_missing_values_are_usage_errors) {
        struct cli cli;
        char *bad[] = {"t", "-X", "nokey"};
        char *eq[] = {"t", "-X=1"};
        char *missing[] = {"t", "-b"};
        int i = 1;

        cli_init(&cli, "t");
        cr_assert_eq(take(&cli, 3, bad, &i), -1);
        i = 1;
        cr_assert_eq(take(&cli, 2, eq, &i), -1);
        i = 1;
        cr_assert_eq(take(&cli, 2, missing, &i), -1);
}

Test(cli, help_version_and_other_options) {
        struct cli cli;
        char *argv[] = {"t", "-h", "--version", "--topic", "x", "-"};
        const char *val = NULL;
        int i = 1;

        cli_init(&cli, "t");
        cr_assert_eq(take(&cli, 6, argv, &i), 1);
        cr_assert(cli.help);
        i = 2;
        cr_assert_eq(take(&cli, 6, argv, &i), 1);
        cr_assert(cli.version);
        i = 3;
        cr_assert_eq(take(&cli, 6, argv, &i), 0, "not a common option");
        cr_assert_eq(cli_value(&cli, 6, argv, &i, "--topic", "-t", &val), 1);
        cr_assert_str_eq(val, "x");
        cr_assert_eq(i, 4);
        i = 5;
        cr_assert_eq(take(&cli, 6, argv, &i), 0, "- is stdin, a positional");
}

Test(cli, kafka_conf_needs_brokers_and_keeps_user_properties) {
        struct cli cli;
        struct err err = {0};
        char *argv[] = {"t", "-X", "log_level=7"};
        char buf[64];
        size_t len = sizeof(buf);
        int i = 1;

        unsetenv("KAFKA_BROKERS");
        cli_init(&cli, "t");
        cr_assert_null(cli_kafka_conf(&cli, RD_KAFKA_PRODUCER, &err));
        cr_assert(strstr(err.msg, "KAFKA_BROKERS") != NULL, "%s", err.msg);

        cli.brokers = "h:1";
        take(&cli, 3, argv, &i);
        err_clear(&err);
        rd_kafka_conf_t *conf = cli_kafka_conf(&cli, RD_KAFKA_PRODUCER, &err);
        cr_assert_not_null(conf, "%s", err.msg);
        cr_assert_eq(cli_kafka_default(&cli, conf, "log_level", "3", &err), 0);
        cr_assert_eq(rd_kafka_conf_get(conf, "log_level", buf, &len),
                     RD_KAFKA_CONF_OK);
        cr_assert_str_eq(buf, "7", "-X wins over a tool's default");
        rd_kafka_conf_destroy(conf);
}

/* Contract 5.10 (issue 12, point 9): a secret -X is refused, in both
 * spellings, before it is stored; a properties file carries it. */
Test(cli, secret_x_properties_are_refused) {
        struct cli cli;
        char *argv[] = {"t", "-X", "sasl.password=hunter2", "-Xssl.key.pem=k"};
        int i = 1;

        cli_init(&cli, "t");
        cr_assert_eq(take(&cli, 4, argv, &i), -1);
        i = 3;
        cr_assert_eq(take(&cli, 4, argv, &i), -1);
        cr_assert_eq(cli.nprops, 0);
}

Test(cli, properties_file_with_f_in_command_line_order) {
        char path[] = "/tmp/test_cli_props_XXXXXX";
        int fd = mkstemp(path);
        const char *text = "# a comment\n\nsasl.password=s3cret\n"
                           "  linger.ms = 9\r\nlinger.ms=8\n";
        struct cli cli;
        struct err err = {0};
        char buf[64];
        size_t len = sizeof(buf);

        cr_assert(fd >= 0);
        cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
        char *argv[] = {"t", "-X", "linger.ms=3", "-F", path};
        int i = 1;
        cli_init(&cli, "t");
        cli.brokers = "h:1";
        cr_assert_eq(take(&cli, 5, argv, &i), 1);
        i = 3;
        cr_assert_eq(take(&cli, 5, argv, &i), 1);
        cr_assert_eq(i, 4);
        cr_assert_eq(cli.nprops, 4, "-X, then the file's three");
        cr_assert_str_eq(cli.props[1], "sasl.password=s3cret");
        rd_kafka_conf_t *conf = cli_kafka_conf(&cli, RD_KAFKA_PRODUCER, &err);
        unlink(path);
        cr_assert_not_null(conf, "%s", err.msg);
        cr_assert_eq(rd_kafka_conf_get(conf, "sasl.password", buf, &len),
                     RD_KAFKA_CONF_OK);
        cr_assert_str_eq(buf, "s3cret");
        len = sizeof(buf);
        rd_kafka_conf_get(conf, "linger.ms", buf, &len);
        cr_assert_str_eq(buf, "8", "the last one given wins");
        rd_kafka_conf_destroy(conf);
}
