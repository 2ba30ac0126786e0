/* topic_check.c - see topic_check.h. */
#include "topic_check.h"

#include <stdlib.h>
#include <string.h>

struct topic_list {
        const struct rd_kafka_metadata *md;
};

struct topic_list *
topic_list_fetch(rd_kafka_t *rk, int timeout_ms, struct err *err) {
        const struct rd_kafka_metadata *md = NULL;
        struct topic_list *tl;
        /* all_topics = 1 and no topic handle: a request naming no topic,
         * which no broker answers by creating one. */
        rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);

        if (e) {
                err_set(err, ERR_TRANSIENT, e,
                        "cannot reach the brokers to check the topics (%s): "
                        "check -b/KAFKA_BROKERS",
                        rd_kafka_err2str(e));
                return NULL;
        }
        tl = malloc(sizeof(*tl));
        if (!tl) {
                rd_kafka_metadata_destroy(md);
                err_oom(err, "topics");
                return NULL;
        }
        tl->md = md;
        return tl;
}

int topic_list_has(const struct topic_list *tl, const char *topic) {
        for (int i = 0; tl && i < tl->md->topic_cnt; i++) {
                const rd_kafka_metadata_topic_t *t = &tl->md->topics[i];
                if (strcmp(t->topic, topic) == 0)
                        return !t->err && t->partition_cnt > 0;
        }
        return 0;
}

void topic_list_destroy(struct topic_list *tl) {
        if (!tl)
                return;
        rd_kafka_metadata_destroy(tl->md);
        free(tl);
}

int topic_check(rd_kafka_t *rk,
                const char *const *topics,
                int n,
                const char *hint,
                struct err *err) {
        struct topic_list *tl =
            topic_list_fetch(rk, TOPIC_CHECK_TIMEOUT_MS, err);
        int rc = 0;

        if (!tl)
                return -1;
        for (int i = 0; i < n && rc == 0; i++)
                if (!topic_list_has(tl, topics[i]))
                        rc = err_set(err, ERR_PERMANENT,
                                     RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
                                     "topic %s does not exist%s%s%s: nothing "
                                     "done (the tools never create topics; "
                                     "deploy/create-topics.sh does)",
                                     topics[i], hint ? " (check " : "",
                                     hint ? hint : "", hint ? ")" : "");
        topic_list_destroy(tl);
        return rc;
}
