/* dlq_list.c - see dlq_list.h. */
#include "dlq_list.h"
#include "cli_consumer.h"
#include "clock.h"
#include "dlq_letter.h"
#include "dlq_read.h"
#include "err.h"
#include "replay_mark.h"

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* list */

struct list_ctx {
        const struct dlq_filters *f;
        int json;
        long shown;
        const struct replay_marks *marks;
};


/* A number up to 2^53 (exact in a JSON double), or null. */
static void json_number_or_null(cJSON *obj, const char *name, const char *s) {
        long long v;
        if (dlq_args_uint(s, 9007199254740992LL, &v) == 0)
                cJSON_AddNumberToObject(obj, name, (double)v);
        else
                cJSON_AddNullToObject(obj, name);
}

/* "reduced": {valueSize, valueSha256, keySize, keySha256} or null. */
static void json_reduced(cJSON *obj, const struct dlq_letter *dl) {
        cJSON *r;

        if (!*dl->truncated) {
                cJSON_AddNullToObject(obj, "reduced");
                return;
        }
        r = cJSON_AddObjectToObject(obj, "reduced");
        if (!r)
                return;
        json_number_or_null(r, "valueSize",
                            *dl->value_size ? dl->value_size : dl->truncated);
        if (*dl->value_sha)
                cJSON_AddStringToObject(r, "valueSha256", dl->value_sha);
        if (*dl->key_size) {
                json_number_or_null(r, "keySize", dl->key_size);
                cJSON_AddStringToObject(r, "keySha256", dl->key_sha);
        }
}

static int list_one(void *arg, const rd_kafka_message_t *rkm) {
        struct list_ctx *ctx = arg;
        struct dlq_letter dl;
        const char *replayed;

        if (replay_mark_is(rkm))
                return 0; /* a mark, not a dead letter */
        replayed = replay_marks_find(ctx->marks, rkm->partition, rkm->offset);
        dlq_letter_read(rkm, &dl);
        if (!dlq_letter_matches(ctx->f, rkm, &dl))
                return 0;
        ctx->shown++;
        if (ctx->json) {
                cJSON *o = cJSON_CreateObject();
                char *s;
                cJSON_AddNumberToObject(o, "partition", rkm->partition);
                cJSON_AddNumberToObject(o, "offset", (double)rkm->offset);
                cJSON_AddStringToObject(o, "failedAt", dl.failed_at);
                cJSON_AddStringToObject(o, "class", dl.cls);
                cJSON_AddStringToObject(o, "step", dl.step);
                cJSON_AddStringToObject(o, "topic", dl.topic);
                json_number_or_null(o, "originalPartition", dl.partition);
                json_number_or_null(o, "originalOffset", dl.offset);
                if (rkm->key)
                        cJSON_AddStringToObject(o, "key", dl.key);
                else
                        cJSON_AddNullToObject(o, "key");
                cJSON_AddStringToObject(o, "message", dl.message);
                json_number_or_null(o, "attempts", dl.attempts);
                cJSON_AddStringToObject(o, "group", dl.group);
                json_number_or_null(o, "replayCount",
                                    *dl.replay ? dl.replay : "0");
                json_reduced(o, &dl);
                if (replayed)
                        cJSON_AddStringToObject(o, "replayed", replayed);
                else
                        cJSON_AddNullToObject(o, "replayed");
                s = cJSON_PrintUnformatted(o);
                if (s)
                        printf("%s\n", s);
                cJSON_free(s);
                cJSON_Delete(o);
        } else {
                char reduced[256];
                dlq_letter_reduced_text(&dl, reduced, sizeof(reduced));
                printf("%" PRId32 "/%" PRId64
                       "  %s  %s  %s  %s [%s] @%s  %s  %s%s%s%s%s%s\n",
                       rkm->partition, rkm->offset,
                       *dl.failed_at ? dl.failed_at : "-",
                       *dl.cls ? dl.cls : "-", *dl.step ? dl.step : "-",
                       *dl.topic ? dl.topic : "-",
                       *dl.partition ? dl.partition : "-",
                       *dl.offset ? dl.offset : "-", *dl.key ? dl.key : "-",
                       dl.message, *reduced ? "  " : "", reduced,
                       replayed ? "  (" : "", replayed ? replayed : "",
                       replayed ? ")" : "");
        }
        return 0;
}

int dlq_list_run(struct cli *cli,
                 const char *dlq,
                 const struct dlq_filters *f,
                 int json) {
        struct err err = {0};
        struct replay_marks marks = {0};
        struct list_ctx ctx = {.f = f, .json = json, .marks = &marks};
        struct dlq_read_range *r = NULL;
        int n = 0, rc = CLI_FAIL;
        rd_kafka_t *rk = cli_consumer_new(cli, "thopter-dlq-reader",
                                          CLI_CONSUMER_READS, &err);

        if (!rk)
                return cli_usage_error(cli, "%s", err.msg);
        r = dlq_read_ranges_new(rk, dlq, &n, &err);
        if (!r || dlq_read_marks(rk, dlq, r, n, &marks, &err) == -1)
                goto out;
        for (int i = 0; i < n; i++)
                if (f->to >= 0 && f->to + 1 < r[i].end)
                        r[i].end =
                            f->to + 1 > r[i].start ? f->to + 1 : r[i].start;
        if (!json && isatty(fileno(stdout)))
                printf("PART/OFFSET  FAILED_AT  CLASS  STEP  ORIGINAL  KEY  "
                       "MESSAGE\n");
        if (dlq_read_ranges(rk, dlq, r, n, list_one, &ctx, &err) == -1)
                goto out;
        rc = CLI_OK;
out:
        fflush(stdout);
        if (rc != CLI_OK)
                cli_fail(cli, "%s", err.msg);
        replay_marks_free(&marks);
        free(r);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return rc;
}

/* ------------------------------------------------------------------------ */
/* show */

struct show_ctx {
        int found;
        int json;
        const char *dlq;
        const struct replay_marks *marks;
};

/* show --json: the dead letter as one JSON object. */
static void show_json(const struct show_ctx *ctx,
                      const rd_kafka_message_t *rkm,
                      const struct dlq_letter *dl) {
        rd_kafka_headers_t *h = NULL;
        const char *name;
        const void *val;
        size_t size, i = 0;
        char buf[4096];
        cJSON *o = cJSON_CreateObject();
        cJSON *hs;

        cJSON_AddStringToObject(o, "topic", ctx->dlq);
        cJSON_AddNumberToObject(o, "partition", rkm->partition);
        cJSON_AddNumberToObject(o, "offset", (double)rkm->offset);
        cJSON_AddNumberToObject(o, "timestamp",
                                (double)rd_kafka_message_timestamp(rkm, NULL));
        if (rkm->key)
                cJSON_AddStringToObject(o, "key", dl->key);
        else
                cJSON_AddNullToObject(o, "key");
        /* An array: header names may repeat, and their order is kept. */
        hs = cJSON_AddArrayToObject(o, "headers");
        if (hs &&
            rd_kafka_message_headers(rkm, &h) == RD_KAFKA_RESP_ERR_NO_ERROR)
                while (rd_kafka_header_get_all(h, i++, &name, &val, &size) ==
                       RD_KAFKA_RESP_ERR_NO_ERROR) {
                        cJSON *x = cJSON_CreateObject();
                        dlq_letter_printable(name, strlen(name), buf,
                                             sizeof(buf));
                        cJSON_AddStringToObject(x, "name", buf);
                        if (val) {
                                dlq_letter_printable(val, size, buf,
                                                     sizeof(buf));
                                cJSON_AddStringToObject(x, "value", buf);
                        } else {
                                cJSON_AddNullToObject(x, "value");
                        }
                        cJSON_AddItemToArray(hs, x);
                }
        json_reduced(o, dl);
        const char *replayed =
            replay_marks_find(ctx->marks, rkm->partition, rkm->offset);
        if (replayed)
                cJSON_AddStringToObject(o, "replayed", replayed);
        else
                cJSON_AddNullToObject(o, "replayed");
        if (!rkm->payload) {
                cJSON_AddNullToObject(o, "value");
                cJSON_AddNullToObject(o, "valueJson");
        } else {
                /* The bytes as text (control bytes escaped), and parsed when
                 * they are JSON. */
                cJSON *v = cJSON_ParseWithLength(rkm->payload, rkm->len);
                char *text = malloc(rkm->len * 4 + 1);
                if (text) {
                        dlq_letter_printable(rkm->payload, rkm->len, text,
                                             rkm->len * 4 + 1);
                        cJSON_AddStringToObject(o, "value", text);
                        free(text);
                }
                if (v)
                        cJSON_AddItemToObject(o, "valueJson", v);
                else
                        cJSON_AddNullToObject(o, "valueJson");
        }
        char *out = cJSON_PrintUnformatted(o);
        if (out)
                printf("%s\n", out);
        cJSON_free(out);
        cJSON_Delete(o);
}

/* Prints compact JSON @p s with two-space indents (cJSON_Print uses tabs
 * and "key":<tab>value). */
static void print_pretty(const char *s) {
        int depth = 0, in_str = 0, esc = 0;

        for (const char *c = s; *c; c++) {
                if (in_str) {
                        putchar(*c);
                        if (esc)
                                esc = 0;
                        else if (*c == '\\')
                                esc = 1;
                        else if (*c == '"')
                                in_str = 0;
                        continue;
                }
                switch (*c) {
                case '"':
                        in_str = 1;
                        putchar(*c);
                        break;
                case '{':
                case '[':
                        putchar(*c);
                        if (c[1] == '}' || c[1] == ']') {
                                putchar(*++c);
                                break;
                        }
                        printf("\n%*s", 2 * ++depth, "");
                        break;
                case '}':
                case ']':
                        printf("\n%*s%c", 2 * --depth, "", *c);
                        break;
                case ',':
                        printf(",\n%*s", 2 * depth, "");
                        break;
                case ':':
                        fputs(": ", stdout);
                        break;
                default:
                        putchar(*c);
                }
        }
        putchar('\n');
}

static int show_one(void *arg, const rd_kafka_message_t *rkm) {
        struct show_ctx *ctx = arg;
        rd_kafka_headers_t *h = NULL;
        const char *name;
        const void *val;
        size_t size, i = 0;
        char buf[4096];
        rd_kafka_timestamp_type_t tstype;
        int64_t ts = rd_kafka_message_timestamp(rkm, &tstype);
        cJSON *json = NULL;

        struct dlq_letter dl;

        ctx->found = 1;
        dlq_letter_read(rkm, &dl);
        if (ctx->json) {
                show_json(ctx, rkm, &dl);
                return 1;
        }
        printf("dead letter: %s [%" PRId32 "] @%" PRId64 "\n", ctx->dlq,
               rkm->partition, rkm->offset);
        dlq_letter_reduced_text(&dl, buf, sizeof(buf));
        if (*buf)
                printf("reduced:     %s: NOT the original record, which is at "
                       "%s [%s] @%s until retention removes it\n",
                       buf, *dl.topic ? dl.topic : "-",
                       *dl.partition ? dl.partition : "-",
                       *dl.offset ? dl.offset : "-");
        clock_iso8601(ts, buf, sizeof(buf));
        printf("timestamp:   %s (%" PRId64 ")\n", buf, ts);
        for (size_t m = 0; ctx->marks && m < ctx->marks->n; m++)
                if (ctx->marks->v[m].partition == rkm->partition &&
                    ctx->marks->v[m].offset == rkm->offset)
                        printf("replay:      %s\n", ctx->marks->v[m].text);
        dlq_letter_printable(rkm->key, rkm->key ? rkm->key_len : 0, buf,
                             sizeof(buf));
        printf("key:         %s\n", rkm->key ? buf : "(null)");
        printf("headers:\n");
        if (rd_kafka_message_headers(rkm, &h) == RD_KAFKA_RESP_ERR_NO_ERROR) {
                while (rd_kafka_header_get_all(h, i++, &name, &val, &size) ==
                       RD_KAFKA_RESP_ERR_NO_ERROR) {
                        char pname[512];
                        /* The name is the record's too: no raw control
                         * bytes to the terminal. */
                        dlq_letter_printable(name, strlen(name), pname,
                                             sizeof(pname));
                        dlq_letter_printable(val, val ? size : 0, buf,
                                             sizeof(buf));
                        printf("  %s: %s\n", pname, val ? buf : "(null)");
                }
        }
        if (!rkm->payload) {
                printf("value: (null)\n");
                return 1;
        }
        json = cJSON_ParseWithLength(rkm->payload, rkm->len);
        if (json && (cJSON_IsObject(json) || cJSON_IsArray(json))) {
                char *s = cJSON_PrintUnformatted(json);
                printf("value (JSON, %zu bytes):\n", rkm->len);
                print_pretty(s ? s : "");
                cJSON_free(s);
        } else {
                printf("value (not JSON, %zu bytes):\n", rkm->len);
                /* Printable bytes as they are, the rest escaped. */
                for (size_t off = 0; off < rkm->len; off += 1024) {
                        size_t chunk =
                            rkm->len - off < 1024 ? rkm->len - off : 1024;
                        dlq_letter_printable((const char *)rkm->payload + off,
                                             chunk, buf, sizeof(buf));
                        fputs(buf, stdout);
                }
                putchar('\n');
        }
        cJSON_Delete(json);
        return 1; /* one record is enough */
}

/* The partition is checked against the topic before anything is read, so
 * that a typo is told apart from a record that is gone. */
int dlq_list_show(struct cli *cli,
                  const char *dlq,
                  const char *where,
                  int json) {
        struct err err = {0};
        struct replay_marks marks = {0};
        struct show_ctx ctx = {.dlq = dlq, .json = json, .marks = &marks};
        struct dlq_read_range *r = NULL, *p;
        int n = 0, rc = CLI_FAIL;
        int64_t part = -1, offset = -1;
        const char *colon = strchr(where, ':');
        rd_kafka_t *rk;

        if (colon) {
                char pbuf[32];
                size_t len = (size_t)(colon - where);
                if (len == 0 || len >= sizeof(pbuf))
                        return cli_usage_error(
                            cli, "show %s: expected [PARTITION:]OFFSET", where);
                memcpy(pbuf, where, len);
                pbuf[len] = '\0';
                if (dlq_args_offset(pbuf, &part) == -1 || part > INT32_MAX)
                        return cli_usage_error(
                            cli, "show %s: expected [PARTITION:]OFFSET", where);
        }
        if (dlq_args_offset(colon ? colon + 1 : where, &offset) == -1)
                return cli_usage_error(
                    cli, "show %s: expected [PARTITION:]OFFSET", where);
        rk = cli_consumer_new(cli, "thopter-dlq-reader", CLI_CONSUMER_READS,
                              &err);
        if (!rk)
                return cli_usage_error(cli, "%s", err.msg);
        r = dlq_read_ranges_new(rk, dlq, &n, &err);
        if (!r) {
                cli_fail(cli, "%s", err.msg);
                goto out;
        }
        if (part < 0 && n > 1) {
                rc = cli_usage_error(
                    cli,
                    "%s has %d partitions: say which, as PARTITION:%" PRId64,
                    dlq, n, offset);
                goto out;
        }
        p = part < 0 ? &r[0] : dlq_read_range_of(r, n, (int32_t)part);
        if (!p || offset < p->start || offset >= p->end) {
                if (p)
                        cli_fail(cli,
                                 "no dead letter at %s [%" PRId32 "] @%" PRId64
                                 ": the partition holds offsets %" PRId64
                                 "..%" PRId64 " (see thopter-dlq list)",
                                 dlq, p->partition, offset, p->start,
                                 p->end - 1);
                else
                        cli_fail(cli, "%s has no partition %" PRId64, dlq,
                                 part);
                goto out;
        }
        if (dlq_read_marks(rk, dlq, r, n, &marks, &err) == -1) {
                cli_fail(cli, "%s", err.msg);
                goto out;
        }
        for (int i = 0; i < n; i++)
                if (&r[i] != p)
                        r[i].start = r[i].end; /* read only this one */
        p->start = offset;
        if (dlq_read_ranges(rk, dlq, r, n, show_one, &ctx, &err) == -1) {
                cli_fail(cli, "%s", err.msg);
                goto out;
        }
        if (!ctx.found) {
                cli_fail(cli,
                         "no record at %s [%" PRId32 "] @%" PRId64
                         " (compacted or deleted?)",
                         dlq, p->partition, offset);
                goto out;
        }
        rc = CLI_OK;
out:
        fflush(stdout);
        replay_marks_free(&marks);
        free(r);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return rc;
}
