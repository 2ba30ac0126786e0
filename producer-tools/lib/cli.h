/* cli.h - the command-line conventions shared by the producer tools
 * (contract section 6): -b/--brokers, repeatable -X key=value, -h/--help,
 * -V/--version, exit 0 success / 1 failure / 2 bad usage, and errors on
 * stderr as "<prog>: <what went wrong>: <what to do>".
 *
 * It does not parse a tool's own options: a tool walks argv itself and
 * offers each argument to cli_common() first, then to cli_value() /
 * cli_flag() for its own options. No getopt: the tools take options before
 * and after their subcommand and positional "-" (stdin), as kcat does.
 */
#ifndef THOPTER_CLI_H
#define THOPTER_CLI_H

#include "err.h"

#include <librdkafka/rdkafka.h>

#define CLI_PROPS_MAX 64

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

struct cli {
        const char *prog;    /* "thopter-send" */
        const char *brokers; /* -b, else KAFKA_BROKERS; may be NULL */
        /* "key=value", in order: THOPTER_KAFKA_CONFIG_FILE's, then -X and
         * -F FILE's as given; borrowed from argv or from cli.c */
        char *props[CLI_PROPS_MAX];
        int nprops;
        int env_file_read; /* THOPTER_KAFKA_CONFIG_FILE was applied */
        int help;          /* -h/--help was given */
        int version;       /* -V/--version was given */
};

/** @brief Start with KAFKA_BROKERS (when set) as the brokers. */
void cli_init(struct cli *cli, const char *prog);

/**
 * @brief Take argv[*i] if it is a common option (advancing *i past its
 * value).
 * @returns 1 taken, 0 not a common option, -1 bad usage (printed).
 */
int cli_common(struct cli *cli, int argc, char **argv, int *i);

/**
 * @brief Match an option with a value: "--long V", "--long=V" or, when
 * @p shrt is not NULL, "-s V".
 * @returns 1 and sets *val (borrowed from argv), 0 no match, -1 the value
 * is missing (printed).
 */
int cli_value(struct cli *cli,
              int argc,
              char **argv,
              int *i,
              const char *lng,
              const char *shrt,
              const char **val);

/** @brief true when @p arg is "--long" or (@p shrt not NULL) "-s". */
int cli_flag(const char *arg, const char *lng, const char *shrt);

/** @brief Print "<prog>: <message> (see <prog> --help)"; returns CLI_USAGE. */
int cli_usage_error(const struct cli *cli, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** @brief Print "<prog>: <message>"; returns CLI_FAIL. */
int cli_fail(const struct cli *cli, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** @brief Print "<prog> <version> (librdkafka <version>)" on stdout. */
void cli_print_version(const struct cli *cli);

/** @brief The value of environment variable @p name, or @p def when unset
 * or empty. */
const char *cli_env(const char *name, const char *def);

/**
 * @brief A librdkafka configuration for a client of @p type from the
 * brokers and the properties that apply to it (kafka_conf_new_for()),
 * with librdkafka's own log as plain "<prog>: kafka: ..." lines at
 * log_level 3 (errors) unless -X log_level says otherwise.
 * @returns a conf the caller owns, or NULL with @p err set (no brokers:
 * the message says to pass -b or set KAFKA_BROKERS).
 */
rd_kafka_conf_t *
cli_kafka_conf(struct cli *cli, rd_kafka_type_t type, struct err *err);

/** @brief kafka_conf_default() for the -X properties of @p cli. */
int cli_kafka_default(const struct cli *cli,
                      rd_kafka_conf_t *conf,
                      const char *key,
                      const char *value,
                      struct err *err);

#endif
