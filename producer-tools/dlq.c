/* dlq.c - thopter-dlq: inspect dead letters and replay them onto their
 * original topic (contract sections 4 and 6). This file is the command
 * line: the help text and the dispatch to the subcommands.
 *
 * DESIGN
 * ------
 * Every command reads the dead-letter topic from a start offset up to the
 * high watermark each partition had when the command started, then stops:
 * dead letters written meanwhile wait for the next run (dlq_read.h).
 *
 * list / show  assign() only: no consumer group, nothing committed
 *              (dlq_list.h).
 * replay       also assign(), with group.id = --group used only for its
 *              committed offsets; re-publishes matching dead letters and
 *              commits past every record examined (dlq_replay.c says why).
 *
 * dlq_args.h parses the command line; dlq_letter.h decodes one record's
 * thopter.dlq.* headers.
 */
#include "cli.h"
#include "clock.h"
#include "dlq_args.h"
#include "dlq_list.h"
#include "dlq_replay.h"

#include <stdio.h>

static void usage(FILE *out) {
        fprintf(
            out,
            "Usage:\n"
            "  thopter-dlq list [--json] [--class C] [--topic T] [--key K] "
            "[--from O] [--to O]\n"
            "                   [--since TIME] [--until TIME]\n"
            "  thopter-dlq show [--json] [PARTITION:]OFFSET\n"
            "  thopter-dlq replay [--class C] [--topic T] [--key K] [--from O] "
            "[--to O]\n"
            "                     [--since TIME] [--until TIME] [--group G] "
            "[--dry-run] [--force]\n"
            "                     [--to-topic T]\n"
            "\n"
            "list    one line per dead letter: partition/offset, failed_at, "
            "class, step,\n"
            "        original topic [partition] @offset, key, error message "
            "(--json: one\n"
            "        JSON object per line). Reads the whole topic; joins no "
            "group.\n"
            "show    one dead letter whole: key, every header, the value "
            "(pretty if JSON;\n"
            "        --json: one object with headers as [{name, value}], "
            "value and valueJson).\n"
            "replay  re-publishes matching dead letters to their original "
            "topic with their\n"
            "        original key, value and headers, without the "
            "thopter.dlq.* headers and\n"
            "        with thopter.replay.count = previous + 1; waits for the "
            "broker, then\n"
            "        commits group G's position past every record it examined "
            "(matching or\n"
            "        not), so running it again replays nothing. Records a "
            "filter skipped are\n"
            "        not revisited by G: use a new --group to scan again.\n"
            "        Prints: replayed N, skipped M (filters), failed F\n"
            "        A reduced dead letter (thopter.dlq.truncated: its value "
            "or key was cut\n"
            "        to fit the topic) is not the original: replay refuses it "
            "(counted as\n"
            "        failed, committed past) unless --force is given.\n"
            "        A dead letter is input like any other: replay sends only "
            "to the topics\n"
            "        the consumer reads ($THOPTER_PROVISION_TOPIC, "
            "$THOPTER_DESTROY_TOPIC;\n"
            "        default thopter.provision, thopter.destroy), only values "
            "the consumer\n"
            "        would accept there, and never a record with a "
            "thopter.dlq.* header twice;\n"
            "        anything else is failed and committed past.\n"
            "\n"
            "Filters: --class C (error class, e.g. fly_unavailable), --topic T "
            "(original\n"
            "topic), --key K (the record key), --from O / --to O (dead-letter "
            "offsets,\n"
            "inclusive, in every partition; replay stops reading after --to), "
            "--since TIME /\n"
            "--until TIME (when it was dead-lettered, thopter.dlq.failed_at: "
            "a UTC time such as\n"
            "2026-12-07 or 2026-12-07T10:30:00Z, or a time ago such as 2h or "
            "1h30m).\n"
            "\n"
            "Options:\n"
            "  -b, --brokers HOST:PORT[,...]   bootstrap servers (default: "
            "$KAFKA_BROKERS)\n"
            "  --dlq-topic NAME     dead-letter topic (default: "
            "$THOPTER_DLQ_TOPIC or thopter.dlq)\n"
            "  -G, --group G        replay's consumer group (default "
            "thopter-dlq-replay)\n"
            "  -n, --dry-run        replay: print what would be replayed "
            "(destination and\n"
            "                       value); send and commit nothing\n"
            "  --to-topic T         replay: send every matching dead letter to "
            "T instead of\n"
            "                       its thopter.dlq.topic (validated when T is "
            "a consumer topic)\n"
            "  --force              replay: replay reduced dead letters too\n"
            "  -X key=value         librdkafka property (repeatable), for the "
            "reader and the\n"
            "                       replay producer\n"
            "  -F FILE              librdkafka properties file (key=value "
            "lines; also\n"
            "                       $THOPTER_KAFKA_CONFIG_FILE): the only "
            "place for secrets\n"
            "                       such as sasl.password, which -X refuses\n"
            "  -h, --help           this text\n"
            "  -V, --version        the version\n"
            "\n"
            "Topics must exist: a dead-letter topic or an original topic that "
            "does not is\nrefused by name, never created.\n"
            "Exit status: 0 success, 1 failure (a record not replayed, broker "
            "unreachable,\n"
            "no such topic or dead letter), 2 bad usage.\n");
}

int main(int argc, char **argv) {
        struct cli cli;
        struct dlq_args a;
        int rc;

        cli_init(&cli, "thopter-dlq");
        rc = dlq_args_parse(&cli, argc, argv, clock_wall_ms(), &a);
        if (rc != CLI_OK)
                return rc;
        if (cli.help) {
                usage(stdout);
                return CLI_OK;
        }
        if (cli.version) {
                cli_print_version(&cli);
                return CLI_OK;
        }
        switch (a.cmd) {
        case DLQ_CMD_LIST:
                return dlq_list_run(&cli, a.dlq, &a.f, a.json);
        case DLQ_CMD_SHOW:
                return dlq_list_show(&cli, a.dlq, a.where, a.json);
        case DLQ_CMD_REPLAY:
                return dlq_replay_run(&cli, a.dlq, &a.f, a.group, a.dry_run,
                                      a.force, a.to_topic);
        }
        return CLI_USAGE;
}
