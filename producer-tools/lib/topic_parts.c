/* topic_parts.c - see topic_parts.h. */
#include "topic_parts.h"
#include "kafka_offsets.h"

#include <inttypes.h>
#include <stdlib.h>

struct topic_part *topic_parts_new(rd_kafka_t *rk,
                                   const char *topic,
                                   const char *hint,
                                   int timeout_ms,
                                   int *n,
                                   struct err *err) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        struct topic_part *p = NULL;
        rd_kafka_resp_err_t e;

        *n = 0;
        if (!rkt) {
                err_set(err, ERR_PERMANENT, rd_kafka_last_error(),
                        "topic %s: %s", topic,
                        rd_kafka_err2str(rd_kafka_last_error()));
                return NULL;
        }
        e = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
        rd_kafka_topic_destroy(rkt);
        if (e) {
                err_set(err, ERR_TRANSIENT, e,
                        "cannot reach the brokers (%s): check -b/KAFKA_BROKERS",
                        rd_kafka_err2str(e));
                return NULL;
        }
        if (md->topic_cnt != 1 || md->topics[0].err ||
            md->topics[0].partition_cnt == 0) {
                err_set(err, ERR_PERMANENT, 0, "topic %s: %s%s%s", topic,
                        md->topic_cnt == 1 && md->topics[0].err
                            ? rd_kafka_err2str(md->topics[0].err)
                            : "no partitions",
                        hint ? ": check " : "", hint ? hint : "");
                rd_kafka_metadata_destroy(md);
                return NULL;
        }
        p = calloc((size_t)md->topics[0].partition_cnt, sizeof(*p));
        if (!p) {
                err_oom(err, "partitions");
                rd_kafka_metadata_destroy(md);
                return NULL;
        }
        for (int i = 0; i < md->topics[0].partition_cnt; i++) {
                p[i].partition = md->topics[0].partitions[i].id;
                e = kafka_offsets_query(rk, topic, p[i].partition, &p[i].low,
                                        &p[i].high, timeout_ms);
                if (e) {
                        err_set(err, ERR_TRANSIENT, e,
                                "topic %s [%" PRId32 "]: watermarks: %s", topic,
                                p[i].partition, rd_kafka_err2str(e));
                        free(p);
                        rd_kafka_metadata_destroy(md);
                        return NULL;
                }
        }
        *n = md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
        return p;
}
