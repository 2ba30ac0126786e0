/* dlq_replay.c - see dlq_replay.h.
 *
 * DESIGN
 * ------
 * assign(), with group.id = --group (default thopter-dlq-replay) used only
 * for its committed offsets: replay starts at the group's committed
 * position (earliest when none), re-publishes each matching dead letter
 * (original key, value and headers, minus every thopter.dlq.* header, with
 * thopter.replay.count = previous + 1) to the topic named by its
 * thopter.dlq.topic header, waits for every delivery, and then commits the
 * position after the last record it examined.
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
 * Commit semantics: everything examined is committed, whether a filter
 * selected it or not, so a second run of the same group replays nothing
 * ("no dead letter is replayed twice by accident"). A record a filter
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
#include "dlq_replay.h"
#include "cli_consumer.h"
#include "clock.h"
#include "dlq_letter.h"
#include "dlq_read.h"
#include "err.h"
#include "kafka_offsets.h"
#include "replay_mark.h"
#include "request.h"
#include "topic_check.h"

#include <librdkafka/rdkafka.h>

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHOWN_VALUE 240 /* bytes of a value --dry-run prints */

/* thopter.replay.count + 1 for the next replay: an absent header is 0; one
 * that is not a count (or would overflow) restarts at 1, with a note on
 * stderr, rather than stopping the replay of a record for it. */
static int next_replay_count(const char *prog, const char *replay) {
        long long v = 0;

        if (!*replay)
                return 1;
        if (dlq_args_uint(replay, INT_MAX - 1, &v) == -1) {
                fprintf(stderr,
                        "%s: " DLQ_LETTER_REPLAY_COUNT
                        " \"%s\" is not a count from 0 to "
                        "%d: counting from 1 again\n",
                        prog, replay, INT_MAX - 1);
                return 1;
        }
        return (int)v + 1;
}

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
        struct dlq_read_range *r;
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
                if (!strncmp(name, DLQ_LETTER_PREFIX,
                             strlen(DLQ_LETTER_PREFIX)) ||
                    !strcmp(name, DLQ_LETTER_REPLAY_COUNT))
                        continue;
                rd_kafka_header_add(out, name, -1, val,
                                    val ? (ssize_t)size : 0);
        }
        snprintf(buf, sizeof(buf), "%d", count);
        rd_kafka_header_add(out, DLQ_LETTER_REPLAY_COUNT, -1, buf, -1);
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
                if (strncmp(name, DLQ_LETTER_PREFIX,
                            strlen(DLQ_LETTER_PREFIX)) != 0)
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
                          const struct dlq_letter *dl,
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
                dlq_letter_printable(dup, strlen(dup), shown, sizeof(shown));
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
                        "%s: %s: " DLQ_LETTER_TOPIC
                        " %s is not a topic the consumer "
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
        struct dlq_letter dl;
        rd_kafka_headers_t *h;
        rd_kafka_resp_err_t e;
        struct dlq_read_range *p =
            dlq_read_range_of(ctx->r, ctx->nr, rkm->partition);
        const char *dest = NULL;

        ctx->next[p - ctx->r] = rkm->offset + 1;
        if (replay_mark_is(rkm))
                return 0; /* an earlier replay's mark, not a dead letter */
        dlq_letter_read(rkm, &dl);
        if (!dlq_letter_matches(ctx->f, rkm, &dl)) {
                ctx->skipped++;
                return 0;
        }
        if (!*dl.topic) {
                ctx->failed++;
                fprintf(stderr,
                        "%s: %s [%" PRId32 "] @%" PRId64
                        ": no " DLQ_LETTER_TOPIC
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
                dlq_letter_reduced_text(&dl, reduced, sizeof(reduced));
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
        dlq_letter_printable(rkm->payload,
                             x->value_len < SHOWN_VALUE ? x->value_len
                                                        : SHOWN_VALUE,
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

int dlq_replay_run(struct cli *cli,
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
        rd_kafka_t *rk = cli_consumer_new(cli, group, CLI_CONSUMER_READS, &err);
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
        ctx.r = dlq_read_ranges_new(rk, dlq, &ctx.nr, &err);
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
                    kafka_offsets_committed(rk, tps, DLQ_READ_TIMEOUT_MS);
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
                struct dlq_read_range *p = &ctx.r[i];
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
        if (dlq_read_ranges(rk, dlq, ctx.r, ctx.nr, replay_one, &ctx, &err) ==
            -1)
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
                        struct dlq_read_range *p =
                            dlq_read_range_of(ctx.r, ctx.nr, x->partition);
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
                        struct dlq_read_range *p =
                            dlq_read_range_of(ctx.r, ctx.nr, x->partition);
                        ctx.failed++;
                        ctx.undelivered++;
                        fprintf(stderr,
                                "%s: %s [%" PRId32 "] @%" PRId64
                                " -> %s: not delivered: %s\n",
                                cli->prog, dlq, x->partition, x->offset,
                                x->topic, rd_kafka_err2str(x->err));
                        /* Keep the group at the first failure of the
                         * partition.
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
