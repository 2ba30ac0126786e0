/* replay_mark.c - see replay_mark.h. */
#include "replay_mark.h"
#include "clock.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

rd_kafka_headers_t *replay_mark_headers(int32_t partition,
                                        int64_t offset,
                                        const char *to_topic,
                                        int32_t to_partition,
                                        int64_t to_offset,
                                        int64_t now_ms,
                                        const char *by) {
        rd_kafka_headers_t *h = rd_kafka_headers_new(4);
        char buf[512];

        snprintf(buf, sizeof(buf), "%" PRId32 "/%" PRId64, partition, offset);
        rd_kafka_header_add(h, REPLAY_MARK_OF, -1, buf, -1);
        snprintf(buf, sizeof(buf), "%s [%" PRId32 "] @%" PRId64, to_topic,
                 to_partition, to_offset);
        rd_kafka_header_add(h, REPLAY_MARK_TO, -1, buf, -1);
        clock_iso8601(now_ms, buf, sizeof(buf));
        rd_kafka_header_add(h, REPLAY_MARK_AT, -1, buf, -1);
        rd_kafka_header_add(h, REPLAY_MARK_BY, -1, by, -1);
        return h;
}

/* Header @p name of @p rkm as a C string with control bytes replaced, or
 * "" (absent). */
static void
header(const rd_kafka_message_t *rkm, const char *name, char *buf, size_t cap) {
        rd_kafka_headers_t *h = NULL;
        const void *val = NULL;
        size_t size = 0, i;

        buf[0] = '\0';
        if (rd_kafka_message_headers(rkm, &h) != RD_KAFKA_RESP_ERR_NO_ERROR ||
            rd_kafka_header_get_last(h, name, &val, &size) !=
                RD_KAFKA_RESP_ERR_NO_ERROR ||
            !val)
                return;
        for (i = 0; i < size && i + 1 < cap; i++) {
                unsigned char c = ((const unsigned char *)val)[i];
                buf[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
        }
        buf[i] = '\0';
}

int replay_mark_is(const rd_kafka_message_t *rkm) {
        rd_kafka_headers_t *h = NULL;
        const void *val = NULL;
        size_t size = 0;

        return rd_kafka_message_headers(rkm, &h) ==
                   RD_KAFKA_RESP_ERR_NO_ERROR &&
               rd_kafka_header_get_last(h, REPLAY_MARK_OF, &val, &size) ==
                   RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* "P/O": plain decimal digits only, in range. */
static int parse_of(const char *s, int32_t *partition, int64_t *offset) {
        long long p = 0, o = 0;
        const char *c = s;

        if (!isdigit((unsigned char)*c))
                return -1;
        for (; isdigit((unsigned char)*c); c++)
                if ((p = p * 10 + (*c - '0')) > INT32_MAX)
                        return -1;
        if (*c++ != '/' || !isdigit((unsigned char)*c))
                return -1;
        for (; isdigit((unsigned char)*c); c++) {
                if (o > (INT64_MAX - 9) / 10)
                        return -1;
                o = o * 10 + (*c - '0');
        }
        if (*c)
                return -1;
        *partition = (int32_t)p;
        *offset = o;
        return 0;
}

int replay_marks_add(struct replay_marks *marks,
                     const rd_kafka_message_t *rkm) {
        char of[64], to[300], at[40], by[128];
        struct replay_mark *m;

        if (!replay_mark_is(rkm))
                return 0;
        header(rkm, REPLAY_MARK_OF, of, sizeof(of));
        header(rkm, REPLAY_MARK_TO, to, sizeof(to));
        header(rkm, REPLAY_MARK_AT, at, sizeof(at));
        header(rkm, REPLAY_MARK_BY, by, sizeof(by));
        if (marks->n == marks->cap) {
                size_t cap = marks->cap ? marks->cap * 2 : 16;
                struct replay_mark *v = realloc(marks->v, cap * sizeof(*v));
                if (!v)
                        return -1;
                marks->v = v;
                marks->cap = cap;
        }
        m = &marks->v[marks->n];
        if (parse_of(of, &m->partition, &m->offset) == -1)
                return 0;
        snprintf(m->text, sizeof(m->text), "replayed %s by %s -> %s",
                 *at ? at : "?", *by ? by : "?", *to ? to : "?");
        marks->n++;
        return 1;
}

const char *replay_marks_find(const struct replay_marks *marks,
                              int32_t partition,
                              int64_t offset) {
        const char *found = NULL;
        for (size_t i = 0; marks && i < marks->n; i++)
                if (marks->v[i].partition == partition &&
                    marks->v[i].offset == offset)
                        found = marks->v[i].text;
        return found;
}

void replay_marks_free(struct replay_marks *marks) {
        free(marks->v);
        memset(marks, 0, sizeof(*marks));
}

void replay_mark_who(char *buf, size_t cap) {
        char host[256] = "";
        const char *user = getenv("USER");

        if (gethostname(host, sizeof(host) - 1) != 0 || !*host)
                snprintf(host, sizeof(host), "unknown");
        snprintf(buf, cap, "%s@%s", user && *user ? user : "unknown", host);
}
