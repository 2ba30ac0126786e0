/* cli_consumer.c - see cli_consumer.h. */
#include "cli_consumer.h"
#include "kafka_conf.h"

static int set_reader(struct cli *cli, rd_kafka_conf_t *conf, struct err *err) {
        if (cli_kafka_default(cli, conf, "enable.auto.offset.store", "false",
                              err) == -1 ||
            cli_kafka_default(cli, conf, "auto.offset.reset", "earliest",
                              err) == -1)
                return -1;
        /* The tools read to the end a partition had when they started: they
         * need to be told where that is, whatever a -X says. */
        return kafka_conf_set(conf, "enable.partition.eof", "true", err);
}

rd_kafka_t *cli_consumer_new(struct cli *cli,
                             const char *group,
                             int flags,
                             struct err *err) {
        char errstr[512];
        rd_kafka_conf_t *conf = cli_kafka_conf(cli, RD_KAFKA_CONSUMER, err);
        rd_kafka_t *rk;

        if (!conf)
                return NULL;
        if (kafka_conf_set(conf, "group.id", group, err) == -1 ||
            cli_kafka_default(cli, conf, "enable.auto.commit", "false", err) ==
                -1 ||
            ((flags & CLI_CONSUMER_READS) &&
             set_reader(cli, conf, err) == -1) ||
            /* Reading never creates the topic it reads (topic_check.h). */
            cli_kafka_default(cli, conf, "allow.auto.create.topics", "false",
                              err) == -1) {
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
        if (!rk) {
                rd_kafka_conf_destroy(conf);
                err_set(err, ERR_PERMANENT, 0, "%s", errstr);
                return NULL;
        }
        if (flags & CLI_CONSUMER_READS)
                rd_kafka_poll_set_consumer(rk);
        return rk;
}
