/* kafka_probe.c - see kafka_probe.h. */
#include "kafka_probe.h"
#include "clock.h"
#include "kafka_conf.h"
#include "log.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define MARK "Updated enabled protocol features "

static int in_list(const char *list, const char *item) {
        size_t n = strlen(item);
        for (const char *p = list; (p = strstr(p, item)) != NULL; p += n)
                if ((p == list || p[-1] == ',') && (p[n] == ',' || !p[n]))
                        return 1;
        return 0;
}

void kafka_features_add(struct kafka_features *f, const char *line) {
        const char *mark = line ? strstr(line, MARK) : NULL;
        const char *name, *rest, *to;
        size_t nlen;
        int i;

        if (!mark || mark - line < 3 || strncmp(mark - 2, ": ", 2) != 0)
                return;
        /* "[thrd:...]: NAME: Updated ..." or "NAME: Updated ..." */
        name = line;
        for (const char *p = line; p + 3 <= mark - 2; p++)
                if (strncmp(p, "]: ", 3) == 0)
                        name = p + 3;
        nlen = (size_t)(mark - 2 - name);
        rest = mark + strlen(MARK);
        to = strstr(rest, "to ");
        if (nlen == 0 || !to)
                return;
        for (i = 0; i < f->n; i++)
                if (strlen(f->b[i].name) == nlen &&
                    strncmp(f->b[i].name, name, nlen) == 0)
                        break;
        if (i == f->n) {
                if (f->n == KAFKA_PROBE_MAX_BROKERS ||
                    nlen >= sizeof(f->b[0].name))
                        return;
                memset(&f->b[i], 0, sizeof(f->b[i]));
                memcpy(f->b[i].name, name, nlen);
                f->n++;
        }
        if (rest[0] == '-' && strncmp(rest, "-ApiVersion to", 14) == 0) {
                f->b[i].av_unanswered++;
        } else if (rest == to) {
                /* "to LIST": a whole set, from an ApiVersion answer or the
                 * configured fallback (rd_kafka_broker_features_set). */
                f->b[i].settled = 1;
                snprintf(f->b[i].set, sizeof(f->b[i].set), "%s", to + 3);
        }
}

enum kafka_headers_verdict
kafka_features_verdict(const struct kafka_features *f, char *why, size_t cap) {
        int ok = 0;

        for (int i = 0; i < f->n; i++) {
                if (f->b[i].settled && in_list(f->b[i].set, "MsgVer2")) {
                        ok = 1;
                        continue;
                }
                if (f->b[i].settled) {
                        snprintf(why, cap,
                                 "Kafka broker %s cannot carry record headers "
                                 "(it speaks %s; MsgVer2, Kafka 0.11 or newer, "
                                 "is needed: dead letters would lose their "
                                 "thopter.dlq.* headers)",
                                 f->b[i].name,
                                 f->b[i].set[0] ? f->b[i].set : "no feature");
                        return KAFKA_HEADERS_MISSING;
                }
                if (f->b[i].av_unanswered >= 2) {
                        snprintf(why, cap,
                                 "Kafka broker %s does not answer ApiVersion "
                                 "requests: it is older than Kafka 0.10 (or "
                                 "security.protocol does not match its "
                                 "listener); Kafka 0.11 or newer is needed "
                                 "for record headers",
                                 f->b[i].name);
                        return KAFKA_HEADERS_MISSING;
                }
        }
        return ok ? KAFKA_HEADERS_OK : KAFKA_HEADERS_UNKNOWN;
}

/* ---- the probe handle ------------------------------------------------ */

struct probe_state {
        pthread_mutex_t lock;
        struct kafka_features f;
};

static void
probe_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
        struct probe_state *st = rd_kafka_opaque(rk);
        (void)level;
        /* The probe's own connection errors are the main handles' to
         * report: everything but FEATURE lines is dropped. */
        if (!st || strcmp(fac, "FEATURE") != 0)
                return;
        pthread_mutex_lock(&st->lock);
        kafka_features_add(&st->f, buf);
        pthread_mutex_unlock(&st->lock);
}

static int user_set(char *const *props, int n, const char *key) {
        size_t k = strlen(key);
        for (int i = 0; i < n; i++)
                if (!strncmp(props[i], key, k) && props[i][k] == '=')
                        return 1;
        return 0;
}

int kafka_probe_headers(const char *brokers,
                        char *const *props,
                        int nprops,
                        long timeout_ms,
                        struct err *err) {
        struct probe_state st = {.lock = PTHREAD_MUTEX_INITIALIZER};
        enum kafka_headers_verdict v = KAFKA_HEADERS_UNKNOWN;
        char errstr[512], why[512] = "";
        rd_kafka_t *rk = NULL;
        int64_t deadline = clock_mono_ms() + timeout_ms;
        rd_kafka_conf_t *conf =
            kafka_conf_new_for(RD_KAFKA_PRODUCER, brokers, props, nprops, err);

        if (!conf)
                return -1;
        rd_kafka_conf_set_log_cb(conf, probe_log);
        rd_kafka_conf_set_opaque(conf, &st);
        if (kafka_conf_set(conf, "debug", "broker,feature", err) == -1 ||
            kafka_conf_set(conf, "log_level", "7", err) == -1 ||
            kafka_conf_set(conf, "client.id", "thopter-consumer-probe", err) ==
                -1 ||
            /* An unanswered ApiVersion (Kafka < 0.10) is known sooner. */
            (!user_set(props, nprops, "api.version.request.timeout.ms") &&
             kafka_conf_set(conf, "api.version.request.timeout.ms", "1500",
                            err) == -1)) {
                rd_kafka_conf_destroy(conf);
                return -1;
        }
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk) {
                rd_kafka_conf_destroy(conf);
                return err_set(err, ERR_PERMANENT, 0, "kafka: %s", errstr);
        }
        for (;;) {
                const struct rd_kafka_metadata *md = NULL;
                long left = (long)(deadline - clock_mono_ms());
                rd_kafka_resp_err_t e = rd_kafka_metadata(
                    rk, 0, NULL, &md, left < 500 ? (left > 0 ? left : 1) : 500);
                if (md)
                        rd_kafka_metadata_destroy(md);
                pthread_mutex_lock(&st.lock);
                v = kafka_features_verdict(&st.f, why, sizeof(why));
                pthread_mutex_unlock(&st.lock);
                if (v == KAFKA_HEADERS_MISSING ||
                    (v == KAFKA_HEADERS_OK && !e) ||
                    clock_mono_ms() >= deadline)
                        break;
        }
        rd_kafka_destroy(rk);
        pthread_mutex_destroy(&st.lock);
        if (v == KAFKA_HEADERS_MISSING)
                return err_set(err, ERR_PERMANENT, 0, "%s", why);
        if (v == KAFKA_HEADERS_OK)
                log_debug("kafka", "brokers carry record headers (MsgVer2)");
        else
                log_warn("kafka",
                         "could not check the brokers' protocol features in "
                         "%ld ms (no broker answered); carrying on",
                         timeout_ms);
        return 0;
}
