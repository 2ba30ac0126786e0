/* dlq.c - see dlq.h. */
#include "dlq.h"
#include "clock.h"
#include "log.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#define DLQ_PREFIX "thopter.dlq."

static void add(rd_kafka_headers_t *h, const char *name, const char *value) {
        rd_kafka_header_add(h, name, -1, value, -1);
}

static void add_sha256(rd_kafka_headers_t *h,
                       const char *name,
                       const void *data,
                       size_t len) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        char hex[2 * EVP_MAX_MD_SIZE + 1];

        if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL))
                return;
        for (unsigned int i = 0; i < n; i++)
                snprintf(hex + 2 * i, 3, "%02x", md[i]);
        add(h, name, hex);
}

/* The sizes and digests of what a reduced dead letter cuts. */
static void add_reduced(rd_kafka_headers_t *h, const struct job_record *rec) {
        char buf[32];

        snprintf(buf, sizeof(buf), "%zu", rec->value_len);
        add(h, DLQ_PREFIX "truncated", buf);
        if (rec->value_len > DLQ_REDUCED_VALUE_MAX) {
                add(h, DLQ_PREFIX "truncated.value_size", buf);
                add_sha256(h, DLQ_PREFIX "truncated.value_sha256", rec->value,
                           rec->value_len);
        }
        if (rec->key_len > DLQ_REDUCED_KEY_MAX) {
                snprintf(buf, sizeof(buf), "%zu", rec->key_len);
                add(h, DLQ_PREFIX "truncated.key_size", buf);
                add_sha256(h, DLQ_PREFIX "truncated.key_sha256", rec->key,
                           rec->key_len);
        }
}

rd_kafka_headers_t *dlq_headers(const struct job *job,
                                const struct err *failure,
                                int reduced,
                                int64_t failed_at_ms) {
        const struct job_record *rec = &job->rec;
        rd_kafka_headers_t *h = rd_kafka_headers_new(16);
        char buf[64], msg[ERR_MSG_LEN];
        size_t i = 0;
        const char *name;
        const void *val;
        size_t size;

        /* The original headers first, minus earlier dead-letter context. */
        while (rec->headers && !reduced &&
               rd_kafka_header_get_all(rec->headers, i++, &name, &val, &size) ==
                   RD_KAFKA_RESP_ERR_NO_ERROR) {
                if (strncmp(name, DLQ_PREFIX, strlen(DLQ_PREFIX)) != 0)
                        rd_kafka_header_add(h, name, -1, val, (ssize_t)size);
        }
        add(h, DLQ_PREFIX "topic", rec->topic);
        snprintf(buf, sizeof(buf), "%" PRId32, rec->partition);
        add(h, DLQ_PREFIX "partition", buf);
        snprintf(buf, sizeof(buf), "%" PRId64, rec->offset);
        add(h, DLQ_PREFIX "offset", buf);
        snprintf(buf, sizeof(buf), "%" PRId64, rec->timestamp_ms);
        add(h, DLQ_PREFIX "timestamp", buf);
        add(h, DLQ_PREFIX "group", rec->group ? rec->group : "");
        add(h, DLQ_PREFIX "error.class",
            err_class_name(failure->cls ? failure->cls : ERRC_INTERNAL));
        log_redact_copy(msg, sizeof(msg),
                        failure->msg[0] ? failure->msg : "failed",
                        LOG_KEEP_HEAD);
        add(h, DLQ_PREFIX "error.message", msg);
        add(h, DLQ_PREFIX "error.step",
            failure->step[0] ? failure->step : "internal");
        snprintf(buf, sizeof(buf), "%d", job->attempt < 1 ? 1 : job->attempt);
        add(h, DLQ_PREFIX "attempts", buf);
        clock_iso8601(failed_at_ms, buf, sizeof(buf));
        add(h, DLQ_PREFIX "failed_at", buf);
        if (job->left_behind[0])
                add(h, DLQ_PREFIX "left_machine", job->left_behind);
        if (reduced)
                add_reduced(h, rec);
        return h;
}

int dlq_publish(struct kafka_producer *p,
                const char *topic,
                const struct job *job,
                const struct err *failure,
                int reduced,
                kafka_producer_done_fn *done,
                void *arg,
                struct err *err) {
        const struct job_record *rec = &job->rec;
        rd_kafka_headers_t *h =
            dlq_headers(job, failure, reduced, clock_wall_ms());
        size_t vlen = rec->value_len, klen = rec->key_len;

        if (reduced && vlen > DLQ_REDUCED_VALUE_MAX)
                vlen = DLQ_REDUCED_VALUE_MAX;
        if (reduced && klen > DLQ_REDUCED_KEY_MAX)
                klen = DLQ_REDUCED_KEY_MAX;
        return kafka_producer_send(p, topic, rec->key, klen, rec->value, vlen,
                                   h, done, arg, err);
}
