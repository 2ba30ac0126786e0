/* dlq_letter.c - see dlq_letter.h. */
#include "dlq_letter.h"
#include "time_arg.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

void dlq_letter_printable(const void *data, size_t len, char *out, size_t cap) {
        const unsigned char *p = data;
        size_t o = 0;

        for (size_t i = 0; p && i < len && o + 5 < cap; i++) {
                if (p[i] >= 0x20 && p[i] != 0x7f)
                        out[o++] = (char)p[i];
                else
                        o +=
                            (size_t)snprintf(out + o, cap - o, "\\x%02x", p[i]);
        }
        out[o] = '\0';
}

static void
header(rd_kafka_headers_t *hdrs, const char *name, char *buf, size_t cap) {
        const void *val = NULL;
        size_t size = 0;

        buf[0] = '\0';
        if (hdrs && rd_kafka_header_get_last(hdrs, name, &val, &size) ==
                        RD_KAFKA_RESP_ERR_NO_ERROR)
                dlq_letter_printable(val, size, buf, cap);
}

void dlq_letter_read(const rd_kafka_message_t *rkm, struct dlq_letter *dl) {
        rd_kafka_headers_t *h = NULL;

        if (rd_kafka_message_headers(rkm, &h) != RD_KAFKA_RESP_ERR_NO_ERROR)
                h = NULL;
        header(h, DLQ_LETTER_TOPIC, dl->topic, sizeof(dl->topic));
        header(h, DLQ_LETTER_PARTITION, dl->partition, sizeof(dl->partition));
        header(h, DLQ_LETTER_OFFSET, dl->offset, sizeof(dl->offset));
        header(h, DLQ_LETTER_GROUP, dl->group, sizeof(dl->group));
        header(h, DLQ_LETTER_CLASS, dl->cls, sizeof(dl->cls));
        header(h, DLQ_LETTER_STEP, dl->step, sizeof(dl->step));
        header(h, DLQ_LETTER_MESSAGE, dl->message, sizeof(dl->message));
        header(h, DLQ_LETTER_ATTEMPTS, dl->attempts, sizeof(dl->attempts));
        header(h, DLQ_LETTER_FAILED_AT, dl->failed_at, sizeof(dl->failed_at));
        header(h, DLQ_LETTER_REPLAY_COUNT, dl->replay, sizeof(dl->replay));
        header(h, DLQ_LETTER_TRUNCATED, dl->truncated, sizeof(dl->truncated));
        header(h, DLQ_LETTER_VALUE_SIZE, dl->value_size,
               sizeof(dl->value_size));
        header(h, DLQ_LETTER_VALUE_SHA, dl->value_sha, sizeof(dl->value_sha));
        header(h, DLQ_LETTER_KEY_SIZE, dl->key_size, sizeof(dl->key_size));
        header(h, DLQ_LETTER_KEY_SHA, dl->key_sha, sizeof(dl->key_sha));
        if (rkm->key)
                dlq_letter_printable(rkm->key, rkm->key_len, dl->key,
                                     sizeof(dl->key));
        else
                dl->key[0] = '\0';
}

/* When the dead letter was written: its failed_at header, or (absent or
 * not a time) the record's own timestamp. */
static int64_t letter_time(const rd_kafka_message_t *rkm,
                           const struct dlq_letter *dl) {
        int64_t t;
        if (isdigit((unsigned char)dl->failed_at[0]) &&
            time_arg_parse(dl->failed_at, 0, &t) == 0)
                return t;
        return rd_kafka_message_timestamp(rkm, NULL);
}

int dlq_letter_matches(const struct dlq_filters *f,
                       const rd_kafka_message_t *rkm,
                       const struct dlq_letter *dl) {
        if (f->since != INT64_MIN || f->until != INT64_MAX) {
                int64_t t = letter_time(rkm, dl);
                if (t < f->since || t > f->until)
                        return 0;
        }
        if (f->from >= 0 && rkm->offset < f->from)
                return 0;
        if (f->to >= 0 && rkm->offset > f->to)
                return 0;
        if (f->cls && strcmp(f->cls, dl->cls) != 0)
                return 0;
        if (f->topic && strcmp(f->topic, dl->topic) != 0)
                return 0;
        if (f->key && (!rkm->key || rkm->key_len != strlen(f->key) ||
                       memcmp(rkm->key, f->key, rkm->key_len) != 0))
                return 0;
        return 1;
}

void dlq_letter_reduced_text(const struct dlq_letter *dl,
                             char *buf,
                             size_t cap) {
        buf[0] = '\0';
        if (!*dl->truncated)
                return;
        if (*dl->key_size)
                snprintf(buf, cap,
                         "REDUCED (original value %s bytes, key %s bytes "
                         "sha256 %s)",
                         *dl->value_size ? dl->value_size : dl->truncated,
                         dl->key_size, dl->key_sha);
        else
                snprintf(buf, cap, "REDUCED (original value %s bytes)",
                         *dl->value_size ? dl->value_size : dl->truncated);
}
