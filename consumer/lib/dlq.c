/* dlq.c - see dlq.h. */
#include "dlq.h"
#include "clock.h"
#include "log.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define DLQ_PREFIX "thopter.dlq."

static void add(rd_kafka_headers_t *h, const char *name, const char *value) {
        rd_kafka_header_add(h, name, -1, value, -1);
}

rd_kafka_headers_t *dlq_headers(const struct job *job,
                                const struct err *failure,
                                int attempts,
                                int64_t failed_at_ms) {
        rd_kafka_headers_t *h = rd_kafka_headers_new(16);
        char buf[64], msg[ERR_MSG_LEN];
        size_t i = 0;
        const char *name;
        const void *val;
        size_t size;

        /* The original headers first, minus earlier dead-letter context. */
        while (job->headers && !job->dlq_reduced &&
               rd_kafka_header_get_all(job->headers, i++, &name, &val, &size) ==
                   RD_KAFKA_RESP_ERR_NO_ERROR) {
                if (strncmp(name, DLQ_PREFIX, strlen(DLQ_PREFIX)) != 0)
                        rd_kafka_header_add(h, name, -1, val, (ssize_t)size);
        }
        add(h, DLQ_PREFIX "topic", job->topic);
        snprintf(buf, sizeof(buf), "%" PRId32, job->partition);
        add(h, DLQ_PREFIX "partition", buf);
        snprintf(buf, sizeof(buf), "%" PRId64, job->offset);
        add(h, DLQ_PREFIX "offset", buf);
        snprintf(buf, sizeof(buf), "%" PRId64, job->timestamp_ms);
        add(h, DLQ_PREFIX "timestamp", buf);
        add(h, DLQ_PREFIX "group", job->group ? job->group : "");
        add(h, DLQ_PREFIX "error.class",
            err_class_name(failure->cls ? failure->cls : ERRC_INTERNAL));
        snprintf(msg, sizeof(msg), "%s",
                 failure->msg[0] ? failure->msg : "failed");
        log_redact(msg, sizeof(msg));
        add(h, DLQ_PREFIX "error.message", msg);
        add(h, DLQ_PREFIX "error.step",
            failure->step[0] ? failure->step : "internal");
        snprintf(buf, sizeof(buf), "%d", attempts < 1 ? 1 : attempts);
        add(h, DLQ_PREFIX "attempts", buf);
        clock_iso8601(failed_at_ms, buf, sizeof(buf));
        add(h, DLQ_PREFIX "failed_at", buf);
        if (job->dlq_reduced) {
                snprintf(buf, sizeof(buf), "%zu", job->value_len);
                add(h, DLQ_PREFIX "truncated", buf);
        }
        return h;
}

int dlq_publish(struct producer *p,
                const char *topic,
                const struct job *job,
                const struct err *failure,
                int attempts,
                producer_done_fn *done,
                void *arg,
                struct err *err) {
        rd_kafka_headers_t *h =
            dlq_headers(job, failure, attempts, clock_wall_ms());
        size_t len = job->dlq_reduced && job->value_len > DLQ_REDUCED_VALUE_MAX
                         ? DLQ_REDUCED_VALUE_MAX
                         : job->value_len;

        return producer_send(p, topic, job->key, job->key_len, job->value, len,
                             h, done, arg, err);
}
