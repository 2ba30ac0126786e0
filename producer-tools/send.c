/* send.c - thopter-send: validate and publish provision and destroy requests
 * (contract sections 1, 2 and 6).
 *
 * DESIGN
 * ------
 * read every request (flags, or lines of stdin) -> validate each with the
 * consumer's own validator (request.c) -> if any is invalid: report every
 * invalid one, send nothing, exit 1 -> else produce them all (key requestId
 * for provision, thopterId for destroy; murmur2_random, acks=all,
 * idempotent) -> wait for every delivery report -> one line per record.
 *
 * All-or-nothing holds for validation only: once sending starts, a broker
 * failure can deliver part of a batch. Each undelivered request is named on
 * stderr; sending the batch again is safe because both consumers are
 * idempotent (a provision is looked up by its requestId, a destroy of a
 * machine that is gone succeeds).
 *
 * JSON lines from stdin are passed through byte for byte (without the line
 * terminator): the hub's objects reach the consumer exactly as written.
 */
#include "cli.h"
#include "clock.h"
#include "err.h"
#include "request.h"
#include "send_args.h"
#include "topic_check.h"

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct msg {
        char *value; /* owned */
        size_t len;
        char key[REQUEST_ID_MAX + 1];
        long line;       /* stdin line number, 0 for flags and ids */
        const char *arg; /* the command-line id or file, or NULL */
        rd_kafka_resp_err_t err;
        int32_t partition;
        int64_t offset;
        int done;
};

struct batch {
        struct msg *v;
        size_t n, cap;
        int invalid;
};

/* Provision flags and the request fields they fill, to name both in an
 * error: "github.issueNumber: must be ... (--issue-number)". */
static const struct {
        const char *field;
        const char *flag;
} flag_fields[] = {
    {"requestId", "--request-id"},
    {"repository", "--repository"},
    {"github.issueNumber", "--issue-number"},
    {"github.issueTitle", "--issue-title"},
    {"github.issueBody", "--issue-body"},
    {"github.issueUrl", "--issue-url"},
    {"gc", "--gc"},
    {"prompt", "--prompt"},
    {"image", "--image"},
    {"thopterId", "ID"},
    {"reason", "--reason"},
};

static void usage(FILE *out) {
        fprintf(
            out,
            "Usage:\n"
            "  thopter-send provision --request-id ID --repository OWNER/NAME "
            "--issue-number N\n"
            "                         --issue-title TITLE --issue-body BODY "
            "[--issue-url URL]\n"
            "                         [--gc NAME] [--prompt NAME] [--image "
            "REF] "
            "[options]\n"
            "  thopter-send provision - [options]        JSON lines on stdin, "
            "one request each\n"
            "  thopter-send destroy ID... [--reason R] [--request-id ID] "
            "[options]\n"
            "  thopter-send destroy - [--reason R] [options]\n"
            "                         stdin: one machine id or one JSON "
            "request per line\n"
            "  thopter-send provision|destroy --file FILE... [options]\n"
            "                         each file is one JSON request (may span "
            "lines)\n"
            "\n"
            "Validates every request with the consumer's own rules before "
            "sending any: one\n"
            "invalid request and nothing is sent (exit 1). Then publishes "
            "them, waits for the\n"
            "broker's acknowledgements and prints one line per request:\n"
            "  sent destroy 148e21a3c96989 -> thopter.destroy [2] @17\n"
            "\n"
            "JSON lines are sent byte for byte; blank lines and lines starting "
            "with # are\n"
            "skipped. A provision needs --request-id: it is the idempotency "
            "key, so sending\n"
            "the same request twice provisions once. Destroys of bare ids get "
            "the requestId\n"
            "send-<unix ms>-<6 hex>-<n> unless --request-id is given (one id "
            "only).\n"
            "\n"
            "Options:\n"
            "  -b, --brokers HOST:PORT[,...]   bootstrap servers (default: "
            "$KAFKA_BROKERS)\n"
            "  -t, --topic NAME     topic (default: $THOPTER_PROVISION_TOPIC "
            "or thopter.provision,\n"
            "                       $THOPTER_DESTROY_TOPIC or "
            "thopter.destroy)\n"
            "  -X key=value         librdkafka property (repeatable), e.g. -X "
            "security.protocol=ssl\n"
            "  -F FILE              librdkafka properties file (key=value "
            "lines; also\n"
            "                       $THOPTER_KAFKA_CONFIG_FILE): the only "
            "place for secrets\n"
            "                       such as sasl.password, which -X refuses\n"
            "  -f, --file FILE      send the JSON request in FILE "
            "(repeatable); a final line\n"
            "                       terminator is dropped, the rest is sent "
            "byte for byte\n"
            "  -n, --dry-run        validate and print the requests; send "
            "nothing\n"
            "  --json               one JSON object per request: "
            "{\"kind\",\"key\",\"topic\",\n"
            "                       \"partition\",\"offset\"} (with "
            "--dry-run: \"value\", the request)\n"
            "  -h, --help           this text\n"
            "  -V, --version        the version\n"
            "\n"
            "Defaults: partitioner=murmur2_random (as kafkajs), acks=all, "
            "enable.idempotence=true,\n"
            "message.timeout.ms=30000; each can be changed with -X.\n"
            "The topic must exist: one that does not is refused by name (exit "
            "1), never created.\n"
            "Exit status: 0 all sent, 1 invalid request, missing topic or "
            "delivery failure,\n2 bad usage.\n");
}

static struct msg *batch_add(struct batch *b) {
        if (b->n == b->cap) {
                size_t cap = b->cap ? b->cap * 2 : 16;
                struct msg *v = realloc(b->v, cap * sizeof(*v));
                if (!v)
                        return NULL;
                b->v = v;
                b->cap = cap;
        }
        memset(&b->v[b->n], 0, sizeof(b->v[0]));
        return &b->v[b->n++];
}

static void batch_free(struct batch *b) {
        for (size_t i = 0; i < b->n; i++)
                free(b->v[i].value);
        free(b->v);
}

/* The flag that fills the request field @p field (err->field), or NULL. */
static const char *flag_of(const char *field) {
        for (size_t i = 0; i < sizeof(flag_fields) / sizeof(flag_fields[0]);
             i++)
                if (!strcmp(field, flag_fields[i].field))
                        return flag_fields[i].flag;
        return NULL;
}

/* Reports an invalid request, naming where it came from. */
static void report_invalid(const struct cli *cli,
                           const struct msg *m,
                           const struct err *err) {
        const char *flag;

        if (m->line > 0) {
                fprintf(stderr, "%s: line %ld: %s\n", cli->prog, m->line,
                        err->msg);
        } else if (m->arg) {
                fprintf(stderr, "%s: %s: %s\n", cli->prog, m->arg, err->msg);
        } else {
                flag = flag_of(err->field);
                fprintf(stderr, "%s: %s%s%s%s\n", cli->prog, err->msg,
                        flag ? " (" : "", flag ? flag : "", flag ? ")" : "");
        }
}

/* Validates m->value with the consumer's validator and sets the key. */
static int validate(const struct cli *cli,
                    enum send_kind kind,
                    struct batch *b,
                    struct msg *m) {
        struct err err = {0};

        if (kind == SEND_PROVISION) {
                struct provision_request req;
                if (request_parse_provision(m->value, m->len, &req, &err) ==
                    0) {
                        snprintf(m->key, sizeof(m->key), "%s", req.request_id);
                        request_provision_free(&req);
                        return 0;
                }
        } else {
                struct destroy_request req;
                if (request_parse_destroy(m->value, m->len, &req, &err) == 0) {
                        snprintf(m->key, sizeof(m->key), "%s", req.thopter_id);
                        request_destroy_free(&req);
                        return 0;
                }
        }
        report_invalid(cli, m, &err);
        b->invalid++;
        return -1;
}

/* Takes @p obj: prints it compactly into m->value. */
static int set_json(struct msg *m, cJSON *obj) {
        m->value = obj ? cJSON_PrintUnformatted(obj) : NULL;
        cJSON_Delete(obj);
        if (!m->value)
                return -1;
        m->len = strlen(m->value);
        return 0;
}

static void add_common(cJSON *obj) {
        char now[32];
        clock_iso8601(clock_wall_ms(), now, sizeof(now));
        cJSON_AddStringToObject(obj, "source", "thopter-send");
        cJSON_AddStringToObject(obj, "createdAt", now);
}

static int destroy_from_id(struct msg *m,
                           const char *id,
                           const char *request_id,
                           const char *reason) {
        cJSON *obj = cJSON_CreateObject();

        if (!obj)
                return -1;
        cJSON_AddStringToObject(obj, "thopterId", id);
        cJSON_AddStringToObject(obj, "requestId", request_id);
        if (reason)
                cJSON_AddStringToObject(obj, "reason", reason);
        add_common(obj);
        return set_json(m, obj);
}

static int provision_from_flags(struct msg *m,
                                const struct send_provision_flags *f) {
        cJSON *obj = cJSON_CreateObject();
        cJSON *gh = cJSON_AddObjectToObject(obj, "github");

        if (!obj || !gh) {
                cJSON_Delete(obj);
                return -1;
        }
        cJSON_AddStringToObject(obj, "requestId", f->request_id);
        cJSON_AddStringToObject(obj, "repository", f->repository);
        /* The hub's type: issueNumber is a string. */
        cJSON_AddStringToObject(gh, "issueNumber", f->issue_number);
        cJSON_AddStringToObject(gh, "issueTitle", f->issue_title);
        cJSON_AddStringToObject(gh, "issueBody", f->issue_body);
        if (f->issue_url)
                cJSON_AddStringToObject(gh, "issueUrl", f->issue_url);
        if (f->gc)
                cJSON_AddStringToObject(obj, "gc", f->gc);
        if (f->prompt)
                cJSON_AddStringToObject(obj, "prompt", f->prompt);
        if (f->image)
                cJSON_AddStringToObject(obj, "image", f->image);
        add_common(obj);
        return set_json(m, obj);
}

static int is_blank_or_comment(const char *s, size_t len) {
        size_t i = 0;
        while (i < len && (s[i] == ' ' || s[i] == '\t'))
                i++;
        return i == len || s[i] == '#';
}

/* Reads stdin: one request per line. */
static int read_stdin(const struct cli *cli,
                      enum send_kind kind,
                      const char *id_base,
                      const char *reason,
                      struct batch *b) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        long lineno = 0, nid = 0;
        int rc = 0;

        while ((n = getline(&line, &cap, stdin)) >= 0) {
                size_t len = (size_t)n;
                struct msg *m;

                lineno++;
                if (len > 0 && line[len - 1] == '\n')
                        len--;
                if (len > 0 && line[len - 1] == '\r')
                        len--;
                if (is_blank_or_comment(line, len))
                        continue;
                m = batch_add(b);
                if (!m) {
                        rc = -1;
                        break;
                }
                m->line = lineno;
                if (kind == SEND_DESTROY && memchr(line, '{', len) == NULL) {
                        /* A bare machine id, trimmed. */
                        char rid[REQUEST_ID_MAX + 1];
                        size_t s = 0, e = len;
                        while (s < e && (line[s] == ' ' || line[s] == '\t'))
                                s++;
                        while (e > s &&
                               (line[e - 1] == ' ' || line[e - 1] == '\t'))
                                e--;
                        line[e] = '\0';
                        snprintf(rid, sizeof(rid), "%s-%ld", id_base, ++nid);
                        if (destroy_from_id(m, line + s, rid, reason) == -1) {
                                rc = -1;
                                break;
                        }
                } else {
                        m->value = malloc(len ? len : 1);
                        if (!m->value) {
                                rc = -1;
                                break;
                        }
                        memcpy(m->value, line, len);
                        m->len = len;
                }
                validate(cli, kind, b, m);
        }
        free(line);
        if (rc == -1)
                return cli_fail(cli, "out of memory reading stdin");
        if (ferror(stdin))
                return cli_fail(cli, "reading stdin failed");
        return 0;
}

/* Reads @p path whole: one request, byte for byte minus a final newline. */
static int read_file(const struct cli *cli,
                     enum send_kind kind,
                     const char *path,
                     struct batch *b) {
        FILE *f = fopen(path, "rb");
        struct msg *m;
        char *buf = NULL;
        size_t len = 0, cap = 0, got;

        if (!f)
                return cli_fail(cli, "%s: cannot open: %s", path,
                                strerror(errno));
        do {
                if (cap - len < 65536) {
                        char *nb;
                        if (cap > REQUEST_PAYLOAD_MAX * 4) {
                                /* Far past the limit: the validator says so
                                 * with the real size; stop reading. */
                                break;
                        }
                        nb = realloc(buf, cap + 65536);
                        if (!nb) {
                                free(buf);
                                fclose(f);
                                return cli_fail(cli, "%s: out of memory", path);
                        }
                        buf = nb;
                        cap += 65536;
                }
                got = fread(buf + len, 1, cap - len, f);
                len += got;
        } while (got > 0);
        if (ferror(f)) {
                free(buf);
                fclose(f);
                return cli_fail(cli, "%s: read failed", path);
        }
        fclose(f);
        if (len > 0 && buf[len - 1] == '\n')
                len--;
        if (len > 0 && buf[len - 1] == '\r')
                len--;
        m = batch_add(b);
        if (!m) {
                free(buf);
                return cli_fail(cli, "out of memory");
        }
        m->value = buf ? buf : malloc(1);
        m->len = len;
        m->arg = path;
        validate(cli, kind, b, m);
        return CLI_OK;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque) {
        struct msg *m = rkm->_private;
        (void)rk;
        (void)opaque;
        m->err = rkm->err;
        m->partition = rkm->partition;
        m->offset = rkm->offset;
        m->done = 1;
}

/* --json: one object per request, {"kind","key","topic"} and either
 * "partition"/"offset" (sent) or "value" (a dry run: the request). */
static void print_json(const char *kind_name,
                       const char *topic,
                       const struct msg *m,
                       int dry_run) {
        cJSON *o = cJSON_CreateObject();
        char *s;

        cJSON_AddStringToObject(o, "kind", kind_name);
        cJSON_AddStringToObject(o, "key", m->key);
        cJSON_AddStringToObject(o, "topic", topic);
        if (dry_run) {
                cJSON *v = cJSON_ParseWithLength(m->value, m->len);
                if (v)
                        cJSON_AddItemToObject(o, "value", v);
        } else {
                cJSON_AddNumberToObject(o, "partition", m->partition);
                cJSON_AddNumberToObject(o, "offset", (double)m->offset);
        }
        s = cJSON_PrintUnformatted(o);
        if (s)
                printf("%s\n", s);
        cJSON_free(s);
        cJSON_Delete(o);
}

static int send_all(const struct cli *cli,
                    const char *kind_name,
                    const char *topic,
                    struct batch *b,
                    int json) {
        struct err err = {0};
        char errstr[512];
        rd_kafka_conf_t *conf =
            cli_kafka_conf((struct cli *)cli, RD_KAFKA_PRODUCER, &err);
        rd_kafka_t *rk = NULL;
        int failed = 0;

        if (!conf)
                return cli_usage_error(cli, "%s", err.msg);
        if (cli_kafka_default(cli, conf, "partitioner", "murmur2_random",
                              &err) == -1 ||
            cli_kafka_default(cli, conf, "enable.idempotence", "true", &err) ==
                -1 ||
            cli_kafka_default(cli, conf, "acks", "all", &err) == -1 ||
            cli_kafka_default(cli, conf, "message.timeout.ms", "30000", &err) ==
                -1 ||
            cli_kafka_default(cli, conf, "linger.ms", "5", &err) == -1) {
                rd_kafka_conf_destroy(conf);
                return cli_usage_error(cli, "%s", err.msg);
        }
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk) {
                rd_kafka_conf_destroy(conf);
                return cli_usage_error(cli, "%s", errstr);
        }
        /* A typo in -t must fail, not auto-create a topic nobody reads. */
        if (topic_check(rk, &topic, 1,
                        strcmp(kind_name, "provision") == 0
                            ? "-t/--topic or THOPTER_PROVISION_TOPIC"
                            : "-t/--topic or THOPTER_DESTROY_TOPIC",
                        &err) == -1) {
                rd_kafka_destroy(rk);
                return cli_fail(cli, "%s%s", err.msg,
                                err.kind == ERR_TRANSIENT
                                    ? ": nothing sent; send again when they "
                                      "answer"
                                    : "");
        }
        for (size_t i = 0; i < b->n; i++) {
                struct msg *m = &b->v[i];
                rd_kafka_resp_err_t e;
                do {
                        e = rd_kafka_producev(
                            rk, RD_KAFKA_V_TOPIC(topic),
                            RD_KAFKA_V_KEY(m->key, strlen(m->key)),
                            RD_KAFKA_V_VALUE(m->value, m->len),
                            RD_KAFKA_V_OPAQUE(m), RD_KAFKA_V_END);
                        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                                rd_kafka_poll(rk, 100);
                } while (e == RD_KAFKA_RESP_ERR__QUEUE_FULL);
                if (e) {
                        m->err = e;
                        m->done = 1;
                }
        }
        /* message.timeout.ms bounds this wait: every record gets a report. */
        while (rd_kafka_outq_len(rk) > 0)
                rd_kafka_poll(rk, 100);

        for (size_t i = 0; i < b->n; i++) {
                struct msg *m = &b->v[i];
                if (m->done && !m->err) {
                        if (json)
                                print_json(kind_name, topic, m, 0);
                        else
                                printf("sent %s %s -> %s [%" PRId32
                                       "] @%" PRId64 "\n",
                                       kind_name, m->key, topic, m->partition,
                                       m->offset);
                        continue;
                }
                failed++;
                fprintf(stderr, "%s: %s %s: not delivered to %s: %s\n",
                        cli->prog, kind_name, m->key, topic,
                        rd_kafka_err2str(m->err));
        }
        fflush(stdout);
        rd_kafka_destroy(rk);
        if (failed) {
                fprintf(stderr,
                        "%s: %d of %zu request(s) not delivered: check that "
                        "the brokers (%s) are "
                        "reachable and topic %s exists, then send again "
                        "(requests are idempotent)\n",
                        cli->prog, failed, b->n, cli->brokers, topic);
                return CLI_FAIL;
        }
        return CLI_OK;
}

int main(int argc, char **argv) {
        static struct send_args a; /* 16 KiB of ids and files: not the stack */
        struct cli cli;
        struct batch b = {0};
        int rc;
        char id_base[64];

        cli_init(&cli, "thopter-send");
        rc = send_args_parse(&cli, argc, argv, &a);
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

        srand((unsigned)(clock_wall_ms() ^ (int64_t)clock_mono_ms() << 16));
        snprintf(id_base, sizeof(id_base), "send-%" PRId64 "-%06x",
                 clock_wall_ms(), (unsigned)rand() & 0xffffff);

        if (a.nfiles) {
                for (int i = 0; i < a.nfiles && rc == CLI_OK; i++)
                        rc = read_file(&cli, a.kind, a.files[i], &b);
        } else if (a.use_stdin) {
                rc = read_stdin(&cli, a.kind, id_base, a.reason, &b);
        } else if (a.kind == SEND_PROVISION) {
                struct msg *m = batch_add(&b);
                if (!m || provision_from_flags(m, &a.pf) == -1)
                        rc = cli_fail(&cli, "out of memory");
                else
                        validate(&cli, a.kind, &b, m);
        } else {
                for (int i = 0; i < a.nids && rc == CLI_OK; i++) {
                        char rid[REQUEST_ID_MAX + 1];
                        struct msg *m = batch_add(&b);
                        snprintf(rid, sizeof(rid), "%s-%d", id_base, i + 1);
                        if (!m || destroy_from_id(
                                      m, a.ids[i],
                                      a.pf.request_id ? a.pf.request_id : rid,
                                      a.reason) == -1) {
                                rc = cli_fail(&cli, "out of memory");
                                break;
                        }
                        m->arg = a.ids[i];
                        validate(&cli, a.kind, &b, m);
                }
        }
        if (rc != CLI_OK)
                goto out;
        if (b.invalid) {
                rc = cli_fail(&cli,
                              "%d of %zu request(s) invalid: nothing sent; fix "
                              "them and run "
                              "again",
                              b.invalid, b.n);
                goto out;
        }
        if (b.n == 0) {
                /* An empty pipeline (no machines to destroy) is not an error.
                 */
                fprintf(stderr, "%s: no requests on stdin: nothing sent\n",
                        cli.prog);
                goto out;
        }
        if (a.dry_run) {
                for (size_t i = 0; i < b.n; i++)
                        if (a.json)
                                print_json(a.sub, a.topic, &b.v[i], 1);
                        else
                                printf("would send %s %s -> %s: %.*s\n", a.sub,
                                       b.v[i].key, a.topic, (int)b.v[i].len,
                                       b.v[i].value);
                goto out;
        }
        rc = send_all(&cli, a.sub, a.topic, &b, a.json);
out:
        batch_free(&b);
        return rc;
}
