/* dlq.c - thopter-dlq: inspect dead letters and replay them onto their
 * original topic (contract sections 4 and 6).
 *
 * DESIGN
 * ------
 * Every command reads the dead-letter topic from a start offset up to the
 * high watermark each partition had when the command started, then stops:
 * dead letters written meanwhile wait for the next run.
 *
 * list / show  assign() only: no consumer group, nothing committed.
 * replay       also assign(), with group.id = --group (default
 *              thopter-dlq-replay) used only for its committed offsets:
 *              it starts at the group's committed position (earliest when
 *              none), re-publishes each matching dead letter (original key,
 *              value and headers, minus every thopter.dlq.* header, with
 *              thopter.replay.count = previous + 1) to the topic named by
 *              its thopter.dlq.topic header, waits for every delivery, and
 *              then commits the position after the last record it examined.
 *
 * A dead letter is input like any other: anyone who may write the DLQ topic
 * can make one. So replay sends a record only to a topic the consumer reads
 * (THOPTER_PROVISION_TOPIC, THOPTER_DESTROY_TOPIC) unless --to-topic names
 * the destination, only a value the consumer's own parser accepts for that
 * topic (request.h), and never a record with a thopter.dlq.* header twice
 * (the reader and a filter could see different values). A record refused
 * for any of these is failed and committed past, like one with no
 * thopter.dlq.topic: no rerun can fix it.
 *
 * Commit semantics of replay: everything examined is committed, whether a
 * filter selected it or not, so a second run of the same group replays
 * nothing ("no dead letter is replayed twice by accident"). A record a filter
 * skipped is therefore not seen again by that group: to replay it later,
 * name a new group (--group), or use --from/--to with a new group. The scan
 * ends at --to when given (records after it stay uncommitted); --from is a
 * filter like --class. When a replayed record is not acknowledged, the
 * group's position in that partition stays at that record, so the next run
 * retries it (and replays again the later ones of that partition that did
 * get through: at least once, as everywhere in this project). A record with
 * no thopter.dlq.topic header cannot be replayed; it is reported as failed
 * and committed past (no rerun can fix it).
 *
 * Why assign() and not subscribe(): replay reads a topic to its end once;
 * group membership would add a join (seconds) and rebalances for nothing.
 * Offsets of a group without members are committed as a "simple consumer"
 * (generation -1), which brokers accept. Two replays of one group at the
 * same time would both replay the same records: run one at a time.
 */
#include "cli.h"
#include "dlq_args.h"
#include "clock.h"
#include "err.h"
#include "kafka_conf.h"
#include "kafka_offsets.h"
#include "replay_mark.h"
#include "request.h"
#include "time_arg.h"
#include "topic_check.h"

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>

#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define H_PREFIX     "thopter.dlq."
#define H_TOPIC      H_PREFIX "topic"
#define H_PARTITION  H_PREFIX "partition"
#define H_OFFSET     H_PREFIX "offset"
#define H_GROUP      H_PREFIX "group"
#define H_CLASS      H_PREFIX "error.class"
#define H_MESSAGE    H_PREFIX "error.message"
#define H_STEP       H_PREFIX "error.step"
#define H_ATTEMPTS   H_PREFIX "attempts"
#define H_FAILED_AT  H_PREFIX "failed_at"
#define H_REPLAY     "thopter.replay.count"
#define H_TRUNCATED  H_PREFIX "truncated"
#define H_VALUE_SIZE H_PREFIX "truncated.value_size"
#define H_VALUE_SHA  H_PREFIX "truncated.value_sha256"
#define H_KEY_SIZE   H_PREFIX "truncated.key_size"
#define H_KEY_SHA    H_PREFIX "truncated.key_sha256"
#define READ_IDLE_MS 30000
#define SHOWN_VALUE  240 /* bytes of a value --dry-run prints */
#define META_TIMEOUT 10000

/* One partition of the DLQ topic to read: [start, end). */
struct range {
        int32_t partition;
        int64_t start, end;
        int done;
};

/* The dead-letter headers of one record, as C strings ("" when absent). */
struct dl {
        char topic[256], partition[32], offset[32], group[256];
        char cls[64], step[64], message[1024], attempts[32], failed_at[64];
        char replay[32];
        /* A reduced dead letter (schemas/dead-letter-headers.md): truncated
         * is set, and the sizes and digests of what was cut. */
        char truncated[32], value_size[32], value_sha[80], key_size[32],
            key_sha[80];
        char key[512]; /* printable form of the key */
};

typedef int(visit_fn)(void *arg, const rd_kafka_message_t *rkm);

static void usage(FILE *out) {
        fprintf(
            out,
            "Usage:\n"
            "  thopter-dlq list [--json] [--class C] [--topic T] [--key K] "
            "[--from O] [--to O]\n"
            "                   [--since TIME] [--until TIME]\n"
            "  thopter-dlq show [--json] [PARTITION:]OFFSET\n"
            "  thopter-dlq replay [--class C] [--topic T] [--key K] [--from O] "
            "[--to O]\n"
            "                     [--since TIME] [--until TIME] [--group G] "
            "[--dry-run] [--force]\n"
            "                     [--to-topic T]\n"
            "\n"
            "list    one line per dead letter: partition/offset, failed_at, "
            "class, step,\n"
            "        original topic [partition] @offset, key, error message "
            "(--json: one\n"
            "        JSON object per line). Reads the whole topic; joins no "
            "group.\n"
            "show    one dead letter whole: key, every header, the value "
            "(pretty if JSON;\n"
            "        --json: one object with headers as [{name, value}], "
            "value and valueJson).\n"
            "replay  re-publishes matching dead letters to their original "
            "topic with their\n"
            "        original key, value and headers, without the "
            "thopter.dlq.* headers and\n"
            "        with thopter.replay.count = previous + 1; waits for the "
            "broker, then\n"
            "        commits group G's position past every record it examined "
            "(matching or\n"
            "        not), so running it again replays nothing. Records a "
            "filter skipped are\n"
            "        not revisited by G: use a new --group to scan again.\n"
            "        Prints: replayed N, skipped M (filters), failed F\n"
            "        A reduced dead letter (thopter.dlq.truncated: its value "
            "or key was cut\n"
            "        to fit the topic) is not the original: replay refuses it "
            "(counted as\n"
            "        failed, committed past) unless --force is given.\n"
            "        A dead letter is input like any other: replay sends only "
            "to the topics\n"
            "        the consumer reads ($THOPTER_PROVISION_TOPIC, "
            "$THOPTER_DESTROY_TOPIC;\n"
            "        default thopter.provision, thopter.destroy), only values "
            "the consumer\n"
            "        would accept there, and never a record with a "
            "thopter.dlq.* header twice;\n"
            "        anything else is failed and committed past.\n"
            "\n"
            "Filters: --class C (error class, e.g. fly_unavailable), --topic T "
            "(original\n"
            "topic), --key K (the record key), --from O / --to O (dead-letter "
            "offsets,\n"
            "inclusive, in every partition; replay stops reading after --to), "
            "--since TIME /\n"
            "--until TIME (when it was dead-lettered, thopter.dlq.failed_at: "
            "a UTC time such as\n"
            "2026-12-07 or 2026-12-07T10:30:00Z, or a time ago such as 2h or "
            "1h30m).\n"
            "\n"
            "Options:\n"
            "  -b, --brokers HOST:PORT[,...]   bootstrap servers (default: "
            "$KAFKA_BROKERS)\n"
            "  --dlq-topic NAME     dead-letter topic (default: "
            "$THOPTER_DLQ_TOPIC or thopter.dlq)\n"
            "  -G, --group G        replay's consumer group (default "
            "thopter-dlq-replay)\n"
            "  -n, --dry-run        replay: print what would be replayed "
            "(destination and\n"
            "                       value); send and commit nothing\n"
            "  --to-topic T         replay: send every matching dead letter to "
            "T instead of\n"
            "                       its thopter.dlq.topic (validated when T is "
            "a consumer topic)\n"
            "  --force              replay: replay reduced dead letters too\n"
            "  -X key=value         librdkafka property (repeatable), for the "
            "reader and the\n"
            "                       replay producer\n"
            "  -F FILE              librdkafka properties file (key=value "
            "lines; also\n"
            "                       $THOPTER_KAFKA_CONFIG_FILE): the only "
            "place for secrets\n"
            "                       such as sasl.password, which -X refuses\n"
            "  -h, --help           this text\n"
            "  -V, --version        the version\n"
            "\n"
            "Topics must exist: a dead-letter topic or an original topic that "
            "does not is\nrefused by name, never created.\n"
            "Exit status: 0 success, 1 failure (a record not replayed, broker "
            "unreachable,\n"
            "no such topic or dead letter), 2 bad usage.\n");
}

/* ------------------------------------------------------------------------ */
/* Records */

static void printable(const void *data, size_t len, char *out, size_t cap) {
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

/* thopter.replay.count + 1 for the next replay: an absent header is 0; one
 * that is not a count (or would overflow) restarts at 1, with a note on
 * stderr, rather than stopping the replay of a record for it. */
static int next_replay_count(const char *prog, const char *replay) {
        long long v = 0;

        if (!*replay)
                return 1;
        if (dlq_args_uint(replay, INT_MAX - 1, &v) == -1) {
                fprintf(stderr,
                        "%s: " H_REPLAY " \"%s\" is not a count from 0 to "
                        "%d: counting from 1 again\n",
                        prog, replay, INT_MAX - 1);
                return 1;
        }
        return (int)v + 1;
}

static void
header(rd_kafka_headers_t *hdrs, const char *name, char *buf, size_t cap) {
        const void *val = NULL;
        size_t size = 0;

        buf[0] = '\0';
        if (hdrs && rd_kafka_header_get_last(hdrs, name, &val, &size) ==
                        RD_KAFKA_RESP_ERR_NO_ERROR)
                printable(val, size, buf, cap);
}

static void dl_read(const rd_kafka_message_t *rkm, struct dl *dl) {
        rd_kafka_headers_t *h = NULL;

        if (rd_kafka_message_headers(rkm, &h) != RD_KAFKA_RESP_ERR_NO_ERROR)
                h = NULL;
        header(h, H_TOPIC, dl->topic, sizeof(dl->topic));
        header(h, H_PARTITION, dl->partition, sizeof(dl->partition));
        header(h, H_OFFSET, dl->offset, sizeof(dl->offset));
        header(h, H_GROUP, dl->group, sizeof(dl->group));
        header(h, H_CLASS, dl->cls, sizeof(dl->cls));
        header(h, H_STEP, dl->step, sizeof(dl->step));
        header(h, H_MESSAGE, dl->message, sizeof(dl->message));
        header(h, H_ATTEMPTS, dl->attempts, sizeof(dl->attempts));
        header(h, H_FAILED_AT, dl->failed_at, sizeof(dl->failed_at));
        header(h, H_REPLAY, dl->replay, sizeof(dl->replay));
        header(h, H_TRUNCATED, dl->truncated, sizeof(dl->truncated));
        header(h, H_VALUE_SIZE, dl->value_size, sizeof(dl->value_size));
        header(h, H_VALUE_SHA, dl->value_sha, sizeof(dl->value_sha));
        header(h, H_KEY_SIZE, dl->key_size, sizeof(dl->key_size));
        header(h, H_KEY_SHA, dl->key_sha, sizeof(dl->key_sha));
        if (rkm->key)
                printable(rkm->key, rkm->key_len, dl->key, sizeof(dl->key));
        else
                dl->key[0] = '\0';
}

/* When the dead letter was written: its failed_at header, or (absent or
 * not a time) the record's own timestamp. */
static int64_t dl_time(const rd_kafka_message_t *rkm, const struct dl *dl) {
        int64_t t;
        if (isdigit((unsigned char)dl->failed_at[0]) &&
            time_arg_parse(dl->failed_at, 0, &t) == 0)
                return t;
        return rd_kafka_message_timestamp(rkm, NULL);
}

static int dl_matches(const struct dlq_filters *f,
                      const rd_kafka_message_t *rkm,
                      const struct dl *dl) {
        if (f->since != INT64_MIN || f->until != INT64_MAX) {
                int64_t t = dl_time(rkm, dl);
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

/* ------------------------------------------------------------------------ */
/* Reading the topic */

static rd_kafka_t *
consumer_new(struct cli *cli, const char *group, struct err *err) {
        char errstr[512];
        rd_kafka_conf_t *conf = cli_kafka_conf(cli, RD_KAFKA_CONSUMER, err);
        rd_kafka_t *rk;

        if (!conf)
                return NULL;
        /* list and show commit nothing, but librdkafka's consumer keeps
         * reporting "Unknown group" without a group.id. */
        if (kafka_conf_set(conf, "group.id",
                           group ? group : "thopter-dlq-reader", err) == -1 ||
            cli_kafka_default(cli, conf, "enable.auto.commit", "false", err) ==
                -1 ||
            cli_kafka_default(cli, conf, "enable.auto.offset.store", "false",
                              err) == -1 ||
            cli_kafka_default(cli, conf, "auto.offset.reset", "earliest",
                              err) == -1 ||
            kafka_conf_set(conf, "enable.partition.eof", "true", err) == -1 ||
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
        rd_kafka_poll_set_consumer(rk);
        return rk;
}

/* The partitions of @p topic with their current [low, high) watermarks. */
static struct range *
ranges_new(rd_kafka_t *rk, const char *topic, int *n, struct err *err) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt = NULL;
        struct range *r = NULL;
        rd_kafka_resp_err_t e;

        *n = 0;
        /* Before any topic handle: librdkafka asks for the metadata of a
         * handle's topic, which some brokers answer by creating it. */
        if (topic_check(rk, &topic, 1, "--dlq-topic or THOPTER_DLQ_TOPIC",
                        err) == -1)
                return NULL;
        rkt = rd_kafka_topic_new(rk, topic, NULL);
        e = rd_kafka_metadata(rk, 0, rkt, &md, META_TIMEOUT);
        rd_kafka_topic_destroy(rkt);
        if (e) {
                err_set(err, ERR_TRANSIENT, e,
                        "cannot reach the brokers (%s): check -b/KAFKA_BROKERS",
                        rd_kafka_err2str(e));
                return NULL;
        }
        if (md->topic_cnt != 1 || md->topics[0].err ||
            md->topics[0].partition_cnt == 0) {
                err_set(err, ERR_PERMANENT, 0,
                        "topic %s: %s: check --dlq-topic / THOPTER_DLQ_TOPIC",
                        topic,
                        md->topic_cnt == 1 && md->topics[0].err
                            ? rd_kafka_err2str(md->topics[0].err)
                            : "no partitions");
                rd_kafka_metadata_destroy(md);
                return NULL;
        }
        *n = md->topics[0].partition_cnt;
        r = calloc((size_t)*n, sizeof(*r));
        for (int i = 0; r && i < *n; i++) {
                int64_t lo = 0, hi = 0;
                r[i].partition = md->topics[0].partitions[i].id;
                e = kafka_offsets_query(rk, topic, r[i].partition, &lo, &hi,
                                        META_TIMEOUT);
                if (e) {
                        err_set(err, ERR_TRANSIENT, e,
                                "topic %s [%" PRId32 "]: watermarks: %s", topic,
                                r[i].partition, rd_kafka_err2str(e));
                        free(r);
                        r = NULL;
                        break;
                }
                r[i].start = lo;
                r[i].end = hi;
        }
        if (!r && err->kind == ERR_NONE)
                err_set(err, ERR_PERMANENT, 0, "out of memory");
        rd_kafka_metadata_destroy(md);
        return r;
}

static struct range *range_of(struct range *r, int n, int32_t partition) {
        for (int i = 0; i < n; i++)
                if (r[i].partition == partition)
                        return &r[i];
        return NULL;
}

/* Reads [start, end) of every range, in offset order per partition, and
 * calls @p fn for each record; stops early when fn returns non-zero. */
static int read_ranges(rd_kafka_t *rk,
                       const char *topic,
                       struct range *r,
                       int n,
                       visit_fn *fn,
                       void *arg,
                       struct err *err) {
        rd_kafka_topic_partition_list_t *tps =
            rd_kafka_topic_partition_list_new(n);
        int left = 0, rc = 0;
        int64_t deadline = clock_mono_ms() + READ_IDLE_MS;
        char last[512] = "no records";

        for (int i = 0; i < n; i++) {
                r[i].done = r[i].start >= r[i].end;
                if (r[i].done)
                        continue;
                rd_kafka_topic_partition_list_add(tps, topic, r[i].partition)
                    ->offset = r[i].start;
                left++;
        }
        if (left == 0) {
                rd_kafka_topic_partition_list_destroy(tps);
                return 0;
        }
        rd_kafka_assign(rk, tps);
        rd_kafka_topic_partition_list_destroy(tps);
        while (left > 0 && rc == 0) {
                rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 200);
                struct range *p;

                if (clock_mono_ms() > deadline) {
                        rc = err_set(err, ERR_TRANSIENT, 0,
                                     "no progress reading %s for %d s (%s): "
                                     "check the brokers",
                                     topic, READ_IDLE_MS / 1000, last);
                        if (rkm)
                                rd_kafka_message_destroy(rkm);
                        break;
                }
                if (!rkm)
                        continue;
                p = rkm->rkt && !strcmp(rd_kafka_topic_name(rkm->rkt), topic)
                        ? range_of(r, n, rkm->partition)
                        : NULL;
                if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        if (p && !p->done && rkm->offset >= p->end) {
                                p->done = 1;
                                left--;
                        }
                } else if (rkm->err) {
                        snprintf(last, sizeof(last), "%s",
                                 rd_kafka_message_errstr(rkm));
                        if (rkm->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
                            rkm->err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION ||
                            rkm->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE)
                                rc = err_set(err, ERR_PERMANENT, rkm->err,
                                             "reading %s: %s", topic, last);
                } else if (p && !p->done) {
                        deadline = clock_mono_ms() + READ_IDLE_MS;
                        if (rkm->offset < p->end && fn(arg, rkm) != 0)
                                rc = 1;
                        if (rkm->offset + 1 >= p->end) {
                                p->done = 1;
                                left--;
                        }
                }
                rd_kafka_message_destroy(rkm);
        }
        rd_kafka_assign(rk, NULL);
        return rc < 0 ? -1 : 0;
}

/* ------------------------------------------------------------------------ */
/* list */

struct list_ctx {
        const struct dlq_filters *f;
        int json;
        long shown;
        const struct replay_marks *marks;
};

/* The marks replay left (replay_mark.h), read before the dead letters. */
static int collect_mark(void *arg, const rd_kafka_message_t *rkm) {
        return replay_marks_add(arg, rkm) == -1 ? -1 : 0;
}

static int read_marks(rd_kafka_t *rk,
                      const char *dlq,
                      struct range *r,
                      int n,
                      struct replay_marks *marks,
                      struct err *err) {
        return read_ranges(rk, dlq, r, n, collect_mark, marks, err);
}

/* A number up to 2^53 (exact in a JSON double), or null. */
static void json_number_or_null(cJSON *obj, const char *name, const char *s) {
        long long v;
        if (dlq_args_uint(s, 9007199254740992LL, &v) == 0)
                cJSON_AddNumberToObject(obj, name, (double)v);
        else
                cJSON_AddNullToObject(obj, name);
}

/* "reduced": {valueSize, valueSha256, keySize, keySha256} or null. */
static void json_reduced(cJSON *obj, const struct dl *dl) {
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

/* One line saying what a reduced dead letter lost; "" for a whole one. */
static void reduced_text(const struct dl *dl, char *buf, size_t cap) {
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

static int list_one(void *arg, const rd_kafka_message_t *rkm) {
        struct list_ctx *ctx = arg;
        struct dl dl;
        const char *replayed;

        if (replay_mark_is(rkm))
                return 0; /* a mark, not a dead letter */
        replayed = replay_marks_find(ctx->marks, rkm->partition, rkm->offset);
        dl_read(rkm, &dl);
        if (!dl_matches(ctx->f, rkm, &dl))
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
                reduced_text(&dl, reduced, sizeof(reduced));
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

static int cmd_list(struct cli *cli,
                    const char *dlq,
                    const struct dlq_filters *f,
                    int json) {
        struct err err = {0};
        struct replay_marks marks = {0};
        struct list_ctx ctx = {.f = f, .json = json, .marks = &marks};
        struct range *r = NULL;
        int n = 0, rc = CLI_FAIL;
        rd_kafka_t *rk = consumer_new(cli, NULL, &err);

        if (!rk)
                return cli_usage_error(cli, "%s", err.msg);
        r = ranges_new(rk, dlq, &n, &err);
        if (!r || read_marks(rk, dlq, r, n, &marks, &err) == -1)
                goto out;
        for (int i = 0; i < n; i++)
                if (f->to >= 0 && f->to + 1 < r[i].end)
                        r[i].end =
                            f->to + 1 > r[i].start ? f->to + 1 : r[i].start;
        if (!json && isatty(fileno(stdout)))
                printf("PART/OFFSET  FAILED_AT  CLASS  STEP  ORIGINAL  KEY  "
                       "MESSAGE\n");
        if (read_ranges(rk, dlq, r, n, list_one, &ctx, &err) == -1)
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
                      const struct dl *dl) {
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
                        printable(name, strlen(name), buf, sizeof(buf));
                        cJSON_AddStringToObject(x, "name", buf);
                        if (val) {
                                printable(val, size, buf, sizeof(buf));
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
                        printable(rkm->payload, rkm->len, text,
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

        struct dl dl;

        ctx->found = 1;
        dl_read(rkm, &dl);
        if (ctx->json) {
                show_json(ctx, rkm, &dl);
                return 1;
        }
        printf("dead letter: %s [%" PRId32 "] @%" PRId64 "\n", ctx->dlq,
               rkm->partition, rkm->offset);
        reduced_text(&dl, buf, sizeof(buf));
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
        printable(rkm->key, rkm->key ? rkm->key_len : 0, buf, sizeof(buf));
        printf("key:         %s\n", rkm->key ? buf : "(null)");
        printf("headers:\n");
        if (rd_kafka_message_headers(rkm, &h) == RD_KAFKA_RESP_ERR_NO_ERROR) {
                while (rd_kafka_header_get_all(h, i++, &name, &val, &size) ==
                       RD_KAFKA_RESP_ERR_NO_ERROR) {
                        char pname[512];
                        /* The name is the record's too: no raw control
                         * bytes to the terminal. */
                        printable(name, strlen(name), pname, sizeof(pname));
                        printable(val, val ? size : 0, buf, sizeof(buf));
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
                        printable((const char *)rkm->payload + off, chunk, buf,
                                  sizeof(buf));
                        fputs(buf, stdout);
                }
                putchar('\n');
        }
        cJSON_Delete(json);
        return 1; /* one record is enough */
}

/* An offset from the command line: plain digits, below INT64_MAX so that
 * "--to O" + 1 cannot overflow (strtoll saturated 99999999999999999999). */
static int
cmd_show(struct cli *cli, const char *dlq, const char *where, int json) {
        struct err err = {0};
        struct replay_marks marks = {0};
        struct show_ctx ctx = {.dlq = dlq, .json = json, .marks = &marks};
        struct range *r = NULL, *p;
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
        rk = consumer_new(cli, NULL, &err);
        if (!rk)
                return cli_usage_error(cli, "%s", err.msg);
        r = ranges_new(rk, dlq, &n, &err);
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
        p = part < 0 ? &r[0] : range_of(r, n, (int32_t)part);
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
        if (read_marks(rk, dlq, r, n, &marks, &err) == -1) {
                cli_fail(cli, "%s", err.msg);
                goto out;
        }
        for (int i = 0; i < n; i++)
                if (&r[i] != p)
                        r[i].start = r[i].end; /* read only this one */
        p->start = offset;
        if (read_ranges(rk, dlq, r, n, show_one, &ctx, &err) == -1) {
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

/* ------------------------------------------------------------------------ */
/* replay */

struct replayed {
        int32_t partition; /* in the DLQ */
        int64_t offset;
        char topic[256];                 /* the destination */
        char value[SHOWN_VALUE * 4 + 1]; /* --dry-run: printable */
        size_t value_len;
        int value_null;
        char key[512];
        char cls[64];
        int count;
        rd_kafka_resp_err_t err;
        int32_t out_partition;
        int64_t out_offset;
        int done;
        int no_topic; /* its original topic does not exist: not sent */
};

struct replay_ctx {
        const struct dlq_filters *f;
        int force;            /* replay reduced dead letters too */
        const char *to_topic; /* --to-topic, or NULL */
        const char *provision_topic, *destroy_topic;
        struct cli *cli;
        const char *dlq;
        rd_kafka_t *producer; /* NULL for --dry-run */
        struct replayed **v;  /* pointers: stable for delivery reports */
        size_t n, cap;
        long skipped, failed;
        long undelivered; /* of failed: not acknowledged by the broker */
        struct range *r;
        int nr;
        int64_t *next;             /* per range: the offset to commit */
        struct topic_list *topics; /* what exists: replay creates none */
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque) {
        struct replayed *x = rkm->_private;
        (void)rk;
        (void)opaque;
        x->err = rkm->err;
        x->out_partition = rkm->partition;
        x->out_offset = rkm->offset;
        x->done = 1;
}

/* The original headers minus thopter.dlq.* and the old replay count, plus
 * thopter.replay.count = @p count. */
static rd_kafka_headers_t *replay_headers(const rd_kafka_message_t *rkm,
                                          int count) {
        rd_kafka_headers_t *in = NULL, *out = rd_kafka_headers_new(8);
        const char *name;
        const void *val;
        size_t size, i = 0;
        char buf[16];

        if (rd_kafka_message_headers(rkm, &in) != RD_KAFKA_RESP_ERR_NO_ERROR)
                in = NULL;
        while (in && rd_kafka_header_get_all(in, i++, &name, &val, &size) ==
                         RD_KAFKA_RESP_ERR_NO_ERROR) {
                if (!strncmp(name, H_PREFIX, strlen(H_PREFIX)) ||
                    !strcmp(name, H_REPLAY))
                        continue;
                rd_kafka_header_add(out, name, -1, val,
                                    val ? (ssize_t)size : 0);
        }
        snprintf(buf, sizeof(buf), "%d", count);
        rd_kafka_header_add(out, H_REPLAY, -1, buf, -1);
        return out;
}

/* The name of a thopter.dlq.* header that appears more than once, or NULL.
 * @p times receives how often. */
static const char *duplicated_header(const rd_kafka_message_t *rkm,
                                     int *times) {
        rd_kafka_headers_t *h = NULL;
        const char *name, *other;
        const void *val;
        size_t size, i = 0;

        if (rd_kafka_message_headers(rkm, &h) != RD_KAFKA_RESP_ERR_NO_ERROR)
                return NULL;
        while (rd_kafka_header_get_all(h, i++, &name, &val, &size) ==
               RD_KAFKA_RESP_ERR_NO_ERROR) {
                size_t j = 0;
                if (strncmp(name, H_PREFIX, strlen(H_PREFIX)) != 0)
                        continue;
                *times = 0;
                while (rd_kafka_header_get_all(h, j++, &other, &val, &size) ==
                       RD_KAFKA_RESP_ERR_NO_ERROR)
                        *times += !strcmp(name, other);
                if (*times > 1)
                        return name;
        }
        return NULL;
}

/* The consumer's own parser for @p dest: 0 valid, -1 with @p err, 1 no
 * parser (a --to-topic destination the consumer does not read). */
static int validate_for(const struct replay_ctx *ctx,
                        const char *dest,
                        const rd_kafka_message_t *rkm,
                        const char **kind,
                        struct err *err) {
        const void *buf = rkm->payload ? rkm->payload : "";
        size_t len = rkm->payload ? rkm->len : 0;

        if (!strcmp(dest, ctx->provision_topic)) {
                struct provision_request req;
                *kind = "provision";
                if (request_parse_provision(buf, len, &req, err) == -1)
                        return -1;
                request_provision_free(&req);
                return 0;
        }
        if (!strcmp(dest, ctx->destroy_topic)) {
                struct destroy_request req;
                *kind = "destroy";
                if (request_parse_destroy(buf, len, &req, err) == -1)
                        return -1;
                request_destroy_free(&req);
                return 0;
        }
        return 1;
}

/* Refuses a dead letter that would cross a boundary (see DESIGN). @returns
 * 1 refused (counted and reported), 0 to replay to @p *dest. */
static int replay_refused(struct replay_ctx *ctx,
                          const rd_kafka_message_t *rkm,
                          const struct dl *dl,
                          const char **dest) {
        struct err err = {0};
        const char *dup, *kind = "";
        char where[160];
        int times = 0;

        snprintf(where, sizeof(where), "%s [%" PRId32 "] @%" PRId64, ctx->dlq,
                 rkm->partition, rkm->offset);
        dup = duplicated_header(rkm, &times);
        if (dup) {
                char shown[128];
                printable(dup, strlen(dup), shown, sizeof(shown));
                ctx->failed++;
                fprintf(stderr,
                        "%s: %s: header %s appears %d times: a forged or "
                        "damaged dead letter, not replayed (skipped for "
                        "good)\n",
                        ctx->cli->prog, where, shown, times);
                return 1;
        }
        *dest = ctx->to_topic ? ctx->to_topic : dl->topic;
        if (!ctx->to_topic && strcmp(*dest, ctx->provision_topic) != 0 &&
            strcmp(*dest, ctx->destroy_topic) != 0) {
                ctx->failed++;
                fprintf(stderr,
                        "%s: %s: " H_TOPIC " %s is not a topic the consumer "
                        "reads (%s, %s): not replayed (skipped for good); to "
                        "send it there anyway: replay --to-topic TOPIC "
                        "--group NEW --from %" PRId64 " --to %" PRId64 "\n",
                        ctx->cli->prog, where, dl->topic, ctx->provision_topic,
                        ctx->destroy_topic, rkm->offset, rkm->offset);
                return 1;
        }
        if (validate_for(ctx, *dest, rkm, &kind, &err) == -1) {
                ctx->failed++;
                fprintf(stderr,
                        "%s: %s: not a valid %s request for %s: %s: not "
                        "replayed (skipped for good)\n",
                        ctx->cli->prog, where, kind, *dest, err.msg);
                return 1;
        }
        return 0;
}

static int replay_one(void *arg, const rd_kafka_message_t *rkm) {
        struct replay_ctx *ctx = arg;
        struct replayed *x;
        struct dl dl;
        rd_kafka_headers_t *h;
        rd_kafka_resp_err_t e;
        struct range *p = range_of(ctx->r, ctx->nr, rkm->partition);
        const char *dest = NULL;

        ctx->next[p - ctx->r] = rkm->offset + 1;
        if (replay_mark_is(rkm))
                return 0; /* an earlier replay's mark, not a dead letter */
        dl_read(rkm, &dl);
        if (!dl_matches(ctx->f, rkm, &dl)) {
                ctx->skipped++;
                return 0;
        }
        if (!*dl.topic) {
                ctx->failed++;
                fprintf(stderr,
                        "%s: %s [%" PRId32 "] @%" PRId64 ": no " H_TOPIC
                        " header: not a dead letter, cannot replay (skipped "
                        "for good)\n",
                        ctx->cli->prog, ctx->dlq, rkm->partition, rkm->offset);
                return 0;
        }
        if (*dl.truncated && !ctx->force) {
                /* Not the original: its value (and maybe its key) was cut.
                 * Committed past like a record without a topic, so that
                 * later runs do not stop at it again. */
                char reduced[256];
                reduced_text(&dl, reduced, sizeof(reduced));
                ctx->failed++;
                fprintf(stderr,
                        "%s: %s [%" PRId32 "] @%" PRId64 ": %s: not the "
                        "original record, not replayed; the original is at "
                        "%s [%s] @%s until retention removes it; to send the "
                        "reduced one anyway: replay --force --group NEW "
                        "--from %" PRId64 " --to %" PRId64 "\n",
                        ctx->cli->prog, ctx->dlq, rkm->partition, rkm->offset,
                        reduced, dl.topic, *dl.partition ? dl.partition : "-",
                        *dl.offset ? dl.offset : "-", rkm->offset, rkm->offset);
                return 0;
        }
        if (replay_refused(ctx, rkm, &dl, &dest))
                return 0;
        if (ctx->n == ctx->cap) {
                size_t cap = ctx->cap ? ctx->cap * 2 : 64;
                struct replayed **v = realloc(ctx->v, cap * sizeof(*v));
                if (!v)
                        return -1;
                ctx->v = v;
                ctx->cap = cap;
        }
        x = calloc(1, sizeof(*x));
        if (!x)
                return -1;
        ctx->v[ctx->n++] = x;
        x->partition = rkm->partition;
        x->offset = rkm->offset;
        snprintf(x->topic, sizeof(x->topic), "%s", dest);
        x->value_null = !rkm->payload;
        x->value_len = rkm->payload ? rkm->len : 0;
        printable(rkm->payload,
                  x->value_len < SHOWN_VALUE ? x->value_len : SHOWN_VALUE,
                  x->value, sizeof(x->value));
        snprintf(x->key, sizeof(x->key), "%s", *dl.key ? dl.key : "-");
        snprintf(x->cls, sizeof(x->cls), "%s", *dl.cls ? dl.cls : "-");
        x->count = next_replay_count(ctx->cli->prog, dl.replay);
        if (!topic_list_has(ctx->topics, dl.topic)) {
                /* Sending would auto-create it on many brokers. */
                x->no_topic = 1;
                x->err = RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
                x->done = 1;
                return 0;
        }
        if (!ctx->producer) {
                x->done = 1;
                return 0;
        }
        h = replay_headers(rkm, x->count);
        do {
                e = rd_kafka_producev(
                    ctx->producer, RD_KAFKA_V_TOPIC(dest),
                    RD_KAFKA_V_KEY(rkm->key, rkm->key ? rkm->key_len : 0),
                    RD_KAFKA_V_VALUE(rkm->payload, rkm->payload ? rkm->len : 0),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(x),
                    RD_KAFKA_V_END);
                if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        rd_kafka_poll(ctx->producer, 100);
        } while (e == RD_KAFKA_RESP_ERR__QUEUE_FULL);
        if (e) {
                rd_kafka_headers_destroy(h); /* not taken on failure */
                x->err = e;
                x->done = 1;
        }
        return 0;
}

static rd_kafka_t *producer_new(struct cli *cli, struct err *err) {
        char errstr[512];
        rd_kafka_conf_t *conf = cli_kafka_conf(cli, RD_KAFKA_PRODUCER, err);
        rd_kafka_t *rk;

        if (!conf)
                return NULL;
        if (cli_kafka_default(cli, conf, "partitioner", "murmur2_random",
                              err) == -1 ||
            cli_kafka_default(cli, conf, "enable.idempotence", "true", err) ==
                -1 ||
            cli_kafka_default(cli, conf, "acks", "all", err) == -1 ||
            cli_kafka_default(cli, conf, "message.timeout.ms", "30000", err) ==
                -1) {
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk) {
                rd_kafka_conf_destroy(conf);
                err_set(err, ERR_PERMANENT, 0, "%s", errstr);
        }
        return rk;
}

/* A mark on the dead-letter topic for each dead letter replayed
 * (replay_mark.h), so that list and show say so to the next operator.
 * Best effort: the replay itself is done; a mark that fails is reported. */
static void write_marks(struct replay_ctx *ctx) {
        struct replayed **mk = calloc(ctx->n ? ctx->n : 1, sizeof(*mk));
        char who[384];
        size_t n = 0;
        long failed = 0;

        if (!mk) {
                fprintf(stderr, "%s: out of memory: no replay marks written\n",
                        ctx->cli->prog);
                return;
        }
        replay_mark_who(who, sizeof(who));
        for (size_t i = 0; i < ctx->n; i++) {
                struct replayed *x = ctx->v[i];
                rd_kafka_resp_err_t e;
                if (x->no_topic || !x->done || x->err)
                        continue;
                mk[n] = calloc(1, sizeof(**mk));
                if (!mk[n]) {
                        failed++;
                        continue;
                }
                rd_kafka_headers_t *h = replay_mark_headers(
                    x->partition, x->offset, x->topic, x->out_partition,
                    x->out_offset, clock_wall_ms(), who);
                do {
                        e = rd_kafka_producev(
                            ctx->producer, RD_KAFKA_V_TOPIC(ctx->dlq),
                            RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(mk[n]),
                            RD_KAFKA_V_END);
                        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                                rd_kafka_poll(ctx->producer, 100);
                } while (e == RD_KAFKA_RESP_ERR__QUEUE_FULL);
                if (e) {
                        rd_kafka_headers_destroy(h);
                        mk[n]->err = e;
                        mk[n]->done = 1;
                }
                n++;
        }
        while (rd_kafka_outq_len(ctx->producer) > 0)
                rd_kafka_poll(ctx->producer, 100);
        for (size_t i = 0; i < n; i++) {
                failed += mk[i]->err != RD_KAFKA_RESP_ERR_NO_ERROR;
                free(mk[i]);
        }
        free(mk);
        if (failed)
                fprintf(stderr,
                        "%s: %ld replay mark(s) not written to %s: list and "
                        "show will not say that those dead letters were "
                        "replayed\n",
                        ctx->cli->prog, failed, ctx->dlq);
}

static int cmd_replay(struct cli *cli,
                      const char *dlq,
                      const struct dlq_filters *f,
                      const char *group,
                      int dry_run,
                      int force,
                      const char *to_topic) {
        struct err err = {0};
        struct replay_ctx ctx = {
            .f = f,
            .force = force,
            .cli = cli,
            .dlq = dlq,
            .to_topic = to_topic,
            .provision_topic =
                cli_env("THOPTER_PROVISION_TOPIC", "thopter.provision"),
            .destroy_topic =
                cli_env("THOPTER_DESTROY_TOPIC", "thopter.destroy"),
        };
        rd_kafka_topic_partition_list_t *tps = NULL;
        rd_kafka_t *rk = consumer_new(cli, group, &err);
        long replayed = 0;
        int rc = CLI_FAIL;

        if (!rk)
                return cli_usage_error(cli, "%s", err.msg);
        if (!dry_run) {
                ctx.producer = producer_new(cli, &err);
                if (!ctx.producer) {
                        rd_kafka_destroy(rk);
                        return cli_usage_error(cli, "%s", err.msg);
                }
        }
        ctx.r = ranges_new(rk, dlq, &ctx.nr, &err);
        if (!ctx.r)
                goto fail;
        ctx.topics = topic_list_fetch(rk, TOPIC_CHECK_TIMEOUT_MS, &err);
        if (!ctx.topics)
                goto fail;
        ctx.next = calloc((size_t)ctx.nr, sizeof(*ctx.next));
        tps = rd_kafka_topic_partition_list_new(ctx.nr);
        if (!ctx.next || !tps) {
                err_set(&err, ERR_PERMANENT, 0, "out of memory");
                goto fail;
        }
        for (int i = 0; i < ctx.nr; i++)
                rd_kafka_topic_partition_list_add(tps, dlq, ctx.r[i].partition);
        {
                rd_kafka_resp_err_t e =
                    kafka_offsets_committed(rk, tps, META_TIMEOUT);
                if (e) {
                        err_set(&err, ERR_TRANSIENT, e,
                                "group %s: reading committed offsets: %s",
                                group, rd_kafka_err2str(e));
                        goto fail;
                }
        }
        /* Start at the group's position (earliest when it has none), end
         * at today's high watermark or after --to. */
        for (int i = 0; i < ctx.nr; i++) {
                struct range *p = &ctx.r[i];
                rd_kafka_topic_partition_t *tp =
                    rd_kafka_topic_partition_list_find(tps, dlq, p->partition);
                if (tp && tp->err == RD_KAFKA_RESP_ERR_NO_ERROR &&
                    tp->offset >= 0 && tp->offset > p->start)
                        p->start = tp->offset;
                if (f->to >= 0 && f->to + 1 < p->end)
                        p->end = f->to + 1;
                if (p->end < p->start)
                        p->end = p->start;
                ctx.next[i] = p->start;
        }
        if (read_ranges(rk, dlq, ctx.r, ctx.nr, replay_one, &ctx, &err) == -1)
                goto fail;
        if (ctx.producer) {
                /* message.timeout.ms bounds this: every record gets a report.
                 */
                while (rd_kafka_outq_len(ctx.producer) > 0)
                        rd_kafka_poll(ctx.producer, 100);
        }
        for (size_t i = 0; i < ctx.n; i++) {
                struct replayed *x = ctx.v[i];
                if (x->no_topic) {
                        struct range *p = range_of(ctx.r, ctx.nr, x->partition);
                        ctx.failed++;
                        fprintf(stderr,
                                "%s: %s [%" PRId32 "] @%" PRId64
                                " -> %s: topic %s does not exist: not "
                                "replayed (the tools never create topics; "
                                "create it, or fix the header, and run "
                                "replay again)\n",
                                cli->prog, dlq, x->partition, x->offset,
                                x->topic, x->topic);
                        if (x->offset < ctx.next[p - ctx.r])
                                ctx.next[p - ctx.r] = x->offset;
                } else if (dry_run) {
                        printf("would replay %s [%" PRId32 "] @%" PRId64
                               " -> %s  %s  key %s  replay.count %d  value "
                               "%s%s",
                               dlq, x->partition, x->offset, x->topic, x->cls,
                               x->key, x->count,
                               x->value_null ? "(null)" : x->value,
                               x->value_len > SHOWN_VALUE ? "..." : "");
                        if (x->value_len > SHOWN_VALUE)
                                printf(" (%zu bytes)", x->value_len);
                        printf("\n");
                        replayed++;
                } else if (x->done && !x->err) {
                        printf("replayed %s [%" PRId32 "] @%" PRId64
                               " -> %s [%" PRId32 "] @%" PRId64
                               "  %s  key %s  replay.count %d\n",
                               dlq, x->partition, x->offset, x->topic,
                               x->out_partition, x->out_offset, x->cls, x->key,
                               x->count);
                        replayed++;
                } else {
                        struct range *p = range_of(ctx.r, ctx.nr, x->partition);
                        ctx.failed++;
                        ctx.undelivered++;
                        fprintf(stderr,
                                "%s: %s [%" PRId32 "] @%" PRId64
                                " -> %s: not delivered: %s\n",
                                cli->prog, dlq, x->partition, x->offset,
                                x->topic, rd_kafka_err2str(x->err));
                        /* Keep the group at the first failure of the partition.
                         */
                        if (x->offset < ctx.next[p - ctx.r])
                                ctx.next[p - ctx.r] = x->offset;
                }
        }
        fflush(stdout);
        if (!dry_run)
                write_marks(&ctx);
        if (!dry_run) {
                rd_kafka_topic_partition_list_t *commit =
                    rd_kafka_topic_partition_list_new(ctx.nr);
                for (int i = 0; i < ctx.nr; i++)
                        if (ctx.next[i] > 0)
                                rd_kafka_topic_partition_list_add(
                                    commit, dlq, ctx.r[i].partition)
                                    ->offset = ctx.next[i];
                if (commit->cnt > 0) {
                        rd_kafka_resp_err_t e = rd_kafka_commit(rk, commit, 0);
                        if (e) {
                                rd_kafka_topic_partition_list_destroy(commit);
                                err_set(&err, ERR_TRANSIENT, e,
                                        "replayed %ld but could not commit "
                                        "group %s's position (%s): "
                                        "a rerun replays them again; is "
                                        "another consumer of group %s "
                                        "running?",
                                        replayed, group, rd_kafka_err2str(e),
                                        group);
                                goto fail;
                        }
                }
                rd_kafka_topic_partition_list_destroy(commit);
        }
        printf("%s %ld, skipped %ld (filters), failed %ld%s\n",
               dry_run ? "would replay" : "replayed", replayed, ctx.skipped,
               ctx.failed,
               dry_run ? " (dry run: nothing sent, nothing committed)" : "");
        rc = ctx.failed ? CLI_FAIL : CLI_OK;
        if (ctx.undelivered)
                fprintf(stderr,
                        "%s: %ld dead letter(s) not delivered: the group stays "
                        "at the first of "
                        "them in each partition, so running replay again "
                        "retries them; check "
                        "the brokers and that the topics exist\n",
                        cli->prog, ctx.undelivered);
        goto out;
fail:
        cli_fail(cli, "%s", err.msg);
out:
        fflush(stdout);
        if (tps)
                rd_kafka_topic_partition_list_destroy(tps);
        for (size_t i = 0; i < ctx.n; i++)
                free(ctx.v[i]);
        free(ctx.v);
        free(ctx.next);
        free(ctx.r);
        topic_list_destroy(ctx.topics);
        if (ctx.producer) {
                rd_kafka_flush(ctx.producer, 5000);
                rd_kafka_destroy(ctx.producer);
        }
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return rc;
}

/* ------------------------------------------------------------------------ */

int main(int argc, char **argv) {
        struct cli cli;
        struct dlq_args a;
        int rc;

        cli_init(&cli, "thopter-dlq");
        rc = dlq_args_parse(&cli, argc, argv, clock_wall_ms(), &a);
        if (rc != CLI_OK)
                return rc;
        if (cli.help) {
                usage(stdout);
                return CLI_OK;
        }
        if (cli.version) {
                cli_print_version(&cli);
                return CLI_OK;
        }
        switch (a.cmd) {
        case DLQ_CMD_LIST:
                return cmd_list(&cli, a.dlq, &a.f, a.json);
        case DLQ_CMD_SHOW:
                return cmd_show(&cli, a.dlq, a.where, a.json);
        case DLQ_CMD_REPLAY:
                return cmd_replay(&cli, a.dlq, &a.f, a.group, a.dry_run,
                                  a.force, a.to_topic);
        }
        return CLI_USAGE;
}
