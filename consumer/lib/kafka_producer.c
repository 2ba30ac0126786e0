/* kafka_producer.c - the shared producer and its delivery-report thread. */
#include "kafka_producer.h"
#include "log.h"
#include "metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct kafka_producer {
        rd_kafka_t *rk;
        pthread_t thread;
        atomic_int stop;
};

struct pending_done {
        kafka_producer_done_fn *done;
        void *arg;
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque) {
        struct pending_done *pd = rkm->_private;
        (void)rk;
        (void)opaque;
        if (rkm->err)
                metrics_inc(M_PRODUCE_ERRORS, "", 1);
        if (pd) {
                if (pd->done)
                        pd->done(pd->arg, rkm->err);
                free(pd);
        }
}

static void *delivery_thread(void *arg) {
        struct kafka_producer *p = arg;
        while (!atomic_load(&p->stop))
                rd_kafka_poll(p->rk, 100);
        return NULL;
}

struct kafka_producer *kafka_producer_new(rd_kafka_conf_t *conf,
                                          struct err *err) {
        char errstr[512];
        struct kafka_producer *p = calloc(1, sizeof(*p));

        if (!p) {
                rd_kafka_conf_destroy(conf);
                err_oom(err, "producer");
                return NULL;
        }
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
        p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!p->rk) {
                rd_kafka_conf_destroy(conf);
                free(p);
                err_set(err, ERR_PERMANENT, 0, "producer: %s", errstr);
                return NULL;
        }
        if (pthread_create(&p->thread, NULL, delivery_thread, p) != 0) {
                rd_kafka_destroy(p->rk);
                free(p);
                err_set(err, ERR_PERMANENT, 0,
                        "producer: cannot start its thread");
                return NULL;
        }
        return p;
}

int kafka_producer_send(struct kafka_producer *p,
                        const char *topic,
                        const void *key,
                        size_t key_len,
                        const void *value,
                        size_t value_len,
                        rd_kafka_headers_t *headers,
                        kafka_producer_done_fn *done,
                        void *arg,
                        struct err *err) {
        struct pending_done *pd = malloc(sizeof(*pd));
        rd_kafka_resp_err_t e;

        if (!pd) {
                if (headers)
                        rd_kafka_headers_destroy(headers);
                return err_oom(err, "produce");
        }
        pd->done = done;
        pd->arg = arg;
        for (int tries = 0;; tries++) {
                e = rd_kafka_producev(
                    p->rk, RD_KAFKA_V_TOPIC(topic),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_KEY(key, key_len),
                    RD_KAFKA_V_VALUE((void *)value, value_len),
                    RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(pd),
                    RD_KAFKA_V_END);
                if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || tries > 100)
                        break;
                /* The delivery thread drains the queue; give it a moment. */
                rd_kafka_poll(p->rk, 10);
        }
        if (e) {
                free(pd);
                if (headers)
                        rd_kafka_headers_destroy(headers);
                return err_set(err, ERR_TRANSIENT, e, "produce to %s: %s",
                               topic, rd_kafka_err2str(e));
        }
        return 0;
}

int kafka_producer_warm_topic(struct kafka_producer *p,
                              const char *topic,
                              int timeout_ms) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(p->rk, topic, NULL);
        rd_kafka_resp_err_t e;

        if (!rkt)
                return -1;
        e = rd_kafka_metadata(p->rk, 0, rkt, &md, timeout_ms);
        if (md)
                rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        if (e) {
                log_info("producer", "metadata of %s not yet known: %s", topic,
                         rd_kafka_err2str(e));
                return -1;
        }
        return 0;
}

void kafka_producer_destroy(struct kafka_producer *p) {
        if (!p)
                return;
        if (rd_kafka_flush(p->rk, 5000))
                log_warn("producer",
                         "%d record(s) not acknowledged at shutdown",
                         rd_kafka_outq_len(p->rk));
        atomic_store(&p->stop, 1);
        pthread_join(p->thread, NULL);
        /* Fail what is left so every done callback runs exactly once. */
        rd_kafka_purge(p->rk,
                       RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(p->rk, 0);
        rd_kafka_destroy(p->rk);
        free(p);
}
