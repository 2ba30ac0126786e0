/* status.c - thopter-status: where the consumer groups are.
 *
 * Per group and partition: the committed offset, the end (high watermark),
 * the lag between them and, where the broker answers DescribeGroups, the
 * member that owns the partition; with --metrics, what running consumers
 * report on /metrics (requests in flight, ready, paused, the fly circuit).
 * It joins no group (committed offsets are read, never written) and creates
 * no topic (topic_check.h).
 *
 * DESIGN
 * ------
 * One consumer handle per group, never subscribed (cli_consumer.h):
 * topic_parts_new() is a Metadata and a ListOffsets per partition (with a
 * timeout that holds while a leader is down, kafka_offsets.h), asked before
 * kafka_offsets_committed(), an OffsetFetch (asked again while the
 * coordinator is being found); rd_kafka_list_groups() is a DescribeGroups,
 * which librdkafka's mock cluster does not serve (members are then
 * "unknown", said once). Lag of a partition with no committed offset counts
 * from its low watermark, as the consumer's own thopter_consumer_lag does.
 */
#include "cli.h"
#include "cli_consumer.h"
#include "err.h"
#include "group_assignment.h"
#include "http.h"
#include "kafka_offsets.h"
#include "topic_check.h"
#include "topic_parts.h"

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROG       "thopter-status"
#define TIMEOUT_MS 10000
#define MAX_GROUPS 16
#define MAX_ADDRS  16

static void usage(FILE *out) {
        fprintf(
            out,
            "Usage: thopter-status [--group GROUP:TOPIC]... [--metrics "
            "HOST:PORT]... [--json]\n"
            "                      [-b BROKERS] [-X key=value]... [-F FILE]\n"
            "\n"
            "Where each consumer group is, per partition of its topic: the "
            "committed offset,\n"
            "the end (high watermark), the lag (end - committed; from the "
            "low watermark when\n"
            "nothing is committed) and the member that owns the partition "
            "(when the broker\n"
            "answers DescribeGroups). Joins no group, commits nothing, "
            "creates no topic.\n"
            "  GROUP        TOPIC              PART  COMMITTED  END  LAG  "
            "OWNER\n"
            "  thopter-destroyer  thopter.destroy  0  17  20  3  "
            "thopter-consumer-destroy@/10.0.0.5\n"
            "\n"
            "Default groups: $THOPTER_PROVISION_GROUP (thopter-provisioner) "
            "on\n"
            "$THOPTER_PROVISION_TOPIC (thopter.provision) and "
            "$THOPTER_DESTROY_GROUP\n"
            "(thopter-destroyer) on $THOPTER_DESTROY_TOPIC (thopter.destroy).\n"
            "\n"
            "Options:\n"
            "  -b, --brokers HOST:PORT[,...]   bootstrap servers (default: "
            "$KAFKA_BROKERS)\n"
            "  -g, --group GROUP:TOPIC  a group and the topic it reads "
            "(repeatable; replaces\n"
            "                       the defaults), e.g. "
            "thopter-dlq-replay:thopter.dlq\n"
            "  -m, --metrics HOST:PORT  also read a consumer's /metrics "
            "(THOPTER_METRICS_ADDR;\n"
            "                       repeatable): requests in flight, ready, "
            "paused, circuit\n"
            "  --json               one JSON object per line: "
            "{\"group\",\"topic\",\"partition\",\n"
            "                       \"committed\",\"end\",\"lag\",\"owner\"}, "
            "then {\"group\",\"members\"}\n"
            "                       and {\"metrics\",\"inFlight\",\"ready\","
            "\"paused\",\"circuitOpen\"}\n"
            "  -X key=value         librdkafka property (repeatable)\n"
            "  -F FILE              librdkafka properties file (key=value "
            "lines; also\n"
            "                       $THOPTER_KAFKA_CONFIG_FILE): the only "
            "place for secrets\n"
            "  -h, --help           this text\n"
            "  -V, --version        the version\n"
            "\n"
            "Exit status: 0 success, 1 failure (brokers unreachable, no such "
            "topic, a /metrics\n"
            "that does not answer), 2 bad usage.\n");
}

struct target {
        const char *group;
        char topic[256];
};

/* One member of a group, as DescribeGroups tells it. */
static const struct rd_kafka_group_member_info *owner_of(
    const struct rd_kafka_group_info *g, const char *topic, int32_t partition) {
        for (int m = 0; g && m < g->member_cnt; m++)
                if (group_assignment_owns(
                        g->members[m].member_assignment,
                        (size_t)g->members[m].member_assignment_size, topic,
                        partition) == 1)
                        return &g->members[m];
        return NULL;
}

static void owner_text(const struct rd_kafka_group_member_info *m,
                       int known,
                       char *buf,
                       size_t cap) {
        if (!known)
                snprintf(buf, cap, "?");
        else if (!m)
                snprintf(buf, cap, "-");
        else
                snprintf(buf, cap, "%s@%s", m->client_id, m->client_host);
}

static void print_members(const struct target *t,
                          const struct rd_kafka_group_info *g,
                          const char *why,
                          int json) {
        if (json) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "group", t->group);
                if (g) {
                        cJSON_AddStringToObject(o, "state", g->state);
                        cJSON *a = cJSON_AddArrayToObject(o, "members");
                        for (int m = 0; a && m < g->member_cnt; m++) {
                                cJSON *x = cJSON_CreateObject();
                                cJSON_AddStringToObject(
                                    x, "clientId", g->members[m].client_id);
                                cJSON_AddStringToObject(
                                    x, "host", g->members[m].client_host);
                                cJSON_AddStringToObject(
                                    x, "memberId", g->members[m].member_id);
                                cJSON_AddItemToArray(a, x);
                        }
                } else {
                        cJSON_AddNullToObject(o, "members");
                        cJSON_AddStringToObject(o, "membersUnknown", why);
                }
                char *s = cJSON_PrintUnformatted(o);
                if (s)
                        printf("%s\n", s);
                cJSON_free(s);
                cJSON_Delete(o);
                return;
        }
        if (!g) {
                printf("group %s: members unknown (%s)\n", t->group, why);
                return;
        }
        printf("group %s: %s, %d member(s)", t->group, g->state, g->member_cnt);
        for (int m = 0; m < g->member_cnt; m++)
                printf("%s %s@%s", m ? "," : ":", g->members[m].client_id,
                       g->members[m].client_host);
        printf("\n");
}

static int show_group(struct cli *cli, const struct target *t, int json) {
        struct err err = {0};
        rd_kafka_t *rk = cli_consumer_new(cli, t->group, 0, &err);
        rd_kafka_topic_partition_list_t *parts = NULL;
        const struct rd_kafka_group_list *gl = NULL;
        const struct rd_kafka_group_info *g = NULL;
        const char *topic = t->topic;
        static const char hint[] =
            "--group GROUP:TOPIC or the THOPTER_*_TOPIC settings";
        struct topic_part *wm = NULL; /* in the order of parts */
        char why[256] = "";
        int n = 0, rc = CLI_FAIL;

        if (!rk)
                return cli_usage_error(cli, "%s", err.msg);
        if (topic_check(rk, &topic, 1, hint, &err) == -1)
                goto out;
        wm = topic_parts_new(rk, t->topic, hint, TIMEOUT_MS, &n, &err);
        if (!wm)
                goto out;
        parts = rd_kafka_topic_partition_list_new(n);
        for (int i = 0; i < n; i++)
                rd_kafka_topic_partition_list_add(parts, t->topic,
                                                  wm[i].partition);
        rd_kafka_resp_err_t e = kafka_offsets_committed(rk, parts, TIMEOUT_MS);
        if (e) {
                err_set(&err, ERR_TRANSIENT, e,
                        "group %s: committed offsets: %s", t->group,
                        rd_kafka_err2str(e));
                goto out;
        }
        e = rd_kafka_list_groups(rk, t->group, &gl, 5000);
        if (e)
                snprintf(why, sizeof(why), "DescribeGroups: %s",
                         rd_kafka_err2str(e));
        else if (gl->group_cnt != 1 || gl->groups[0].err)
                snprintf(why, sizeof(why), "DescribeGroups: %s",
                         gl->group_cnt ? rd_kafka_err2str(gl->groups[0].err)
                                       : "the broker does not know the group "
                                         "(no members)");
        else
                g = &gl->groups[0];
        for (int i = 0; i < parts->cnt; i++) {
                rd_kafka_topic_partition_t *p = &parts->elems[i];
                int64_t lo = wm[i].low, hi = wm[i].high;
                char owner[512];
                int committed =
                    p->err == RD_KAFKA_RESP_ERR_NO_ERROR && p->offset >= 0;
                int64_t lag = hi - (committed ? p->offset : lo);
                owner_text(owner_of(g, t->topic, p->partition), g != NULL,
                           owner, sizeof(owner));
                if (json) {
                        cJSON *o = cJSON_CreateObject();
                        cJSON_AddStringToObject(o, "group", t->group);
                        cJSON_AddStringToObject(o, "topic", t->topic);
                        cJSON_AddNumberToObject(o, "partition", p->partition);
                        if (committed)
                                cJSON_AddNumberToObject(o, "committed",
                                                        (double)p->offset);
                        else
                                cJSON_AddNullToObject(o, "committed");
                        cJSON_AddNumberToObject(o, "end", (double)hi);
                        cJSON_AddNumberToObject(o, "lag",
                                                (double)(lag < 0 ? 0 : lag));
                        if (g)
                                cJSON_AddStringToObject(o, "owner", owner);
                        else
                                cJSON_AddNullToObject(o, "owner");
                        char *s = cJSON_PrintUnformatted(o);
                        if (s)
                                printf("%s\n", s);
                        cJSON_free(s);
                        cJSON_Delete(o);
                } else {
                        char c[32];
                        snprintf(c, sizeof(c), "%" PRId64, p->offset);
                        printf("%-22s %-20s %4" PRId32 " %10s %10" PRId64
                               " %8" PRId64 "  %s\n",
                               t->group, t->topic, p->partition,
                               committed ? c : "-", hi, lag < 0 ? 0 : lag,
                               owner);
                }
        }
        print_members(t, g, why, json);
        rc = CLI_OK;
out:
        if (rc != CLI_OK)
                cli_fail(cli, "%s", err.msg);
        if (gl)
                rd_kafka_group_list_destroy(gl);
        if (parts)
                rd_kafka_topic_partition_list_destroy(parts);
        free(wm);
        rd_kafka_destroy(rk);
        return rc;
}

/* ---- /metrics ----------------------------------------------------------- */

/* The labels and value of sample lines of @p name in @p text, into @p obj
 * as {"<label value>": value}. */
static void samples(const char *text, const char *name, cJSON *obj) {
        size_t n = strlen(name);
        for (const char *l = text; l && *l;) {
                const char *nl = strchr(l, '\n');
                size_t len = nl ? (size_t)(nl - l) : strlen(l);
                if (len > n && !strncmp(l, name, n) &&
                    (l[n] == '{' || l[n] == ' ')) {
                        char label[128] = "";
                        const char *q = l[n] == '{' ? strchr(l + n, '"') : NULL;
                        const char *q2 = q ? strchr(q + 1, '"') : NULL;
                        const char *sp = memchr(l, ' ', len);
                        if (q && q2 && q2 < l + len &&
                            (size_t)(q2 - q - 1) < sizeof(label))
                                snprintf(label, sizeof(label), "%.*s",
                                         (int)(q2 - q - 1), q + 1);
                        if (sp)
                                cJSON_AddNumberToObject(
                                    obj, *label ? label : "value",
                                    strtod(sp + 1, NULL));
                }
                l = nl ? nl + 1 : NULL;
        }
}

static int show_metrics(struct cli *cli, const char *addr, int json) {
        struct err err = {0};
        struct http *http = http_new(&err);
        struct http_resp resp = {0};
        char url[512];
        int rc = CLI_FAIL;

        snprintf(url, sizeof(url), "http://%s/metrics", addr);
        struct http_req req = {.method = "GET", .url = url, .timeout_ms = 5000};
        if (!http || http_request(http, &req, &resp, &err) == -1 ||
            resp.status != 200) {
                if (!err.msg[0])
                        err_set(&err, ERR_PERMANENT, (int)resp.status,
                                "HTTP %ld", resp.status);
                cli_fail(cli,
                         "%s: %s (is a consumer serving "
                         "THOPTER_METRICS_ADDR there?)",
                         url, err.msg);
                goto out;
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "metrics", addr);
        samples(resp.body, "thopter_in_flight",
                cJSON_AddObjectToObject(o, "inFlight"));
        samples(resp.body, "thopter_ready",
                cJSON_AddObjectToObject(o, "ready"));
        samples(resp.body, "thopter_paused",
                cJSON_AddObjectToObject(o, "paused"));
        cJSON *circuit = cJSON_CreateObject();
        samples(resp.body, "thopter_circuit_open", circuit);
        const cJSON *v = cJSON_GetObjectItem(circuit, "value");
        cJSON_AddBoolToObject(o, "circuitOpen",
                              cJSON_IsNumber(v) && v->valuedouble > 0);
        cJSON_Delete(circuit);
        if (json) {
                char *s = cJSON_PrintUnformatted(o);
                if (s)
                        printf("%s\n", s);
                cJSON_free(s);
        } else {
                const cJSON *it;
                printf("consumer %s: in flight", addr);
                cJSON_ArrayForEach(it, cJSON_GetObjectItem(o, "inFlight"))
                    printf(" %s %g", it->string, it->valuedouble);
                printf("; ready");
                cJSON_ArrayForEach(it, cJSON_GetObjectItem(o, "ready")) printf(
                    " %s %s", it->string, it->valuedouble > 0 ? "yes" : "no");
                printf("; paused");
                cJSON_ArrayForEach(it, cJSON_GetObjectItem(o, "paused")) printf(
                    " %s %s", it->string, it->valuedouble > 0 ? "yes" : "no");
                printf("; fly circuit %s\n",
                       cJSON_IsTrue(cJSON_GetObjectItem(o, "circuitOpen"))
                           ? "OPEN"
                           : "closed");
        }
        cJSON_Delete(o);
        rc = CLI_OK;
out:
        http_resp_free(&resp);
        http_destroy(http);
        return rc;
}

int main(int argc, char **argv) {
        struct cli cli;
        struct target targets[MAX_GROUPS];
        const char *addrs[MAX_ADDRS];
        int ntargets = 0, naddrs = 0, json = 0, rc = CLI_OK;

        cli_init(&cli, PROG);
        for (int i = 1; i < argc; i++) {
                const char *val = NULL;
                int r = cli_common(&cli, argc, argv, &i);
                if (r == 0) {
                        r = cli_value(&cli, argc, argv, &i, "--group", "-g",
                                      &val);
                        if (r == 1) {
                                const char *colon = strrchr(val, ':');
                                if (!colon || colon == val || !colon[1])
                                        return cli_usage_error(
                                            &cli,
                                            "--group %s: expected GROUP:TOPIC",
                                            val);
                                if (ntargets == MAX_GROUPS)
                                        return cli_usage_error(
                                            &cli, "at most %d --group",
                                            MAX_GROUPS);
                                struct target *t = &targets[ntargets++];
                                static char names[MAX_GROUPS][256];
                                snprintf(names[ntargets - 1], sizeof(names[0]),
                                         "%.*s", (int)(colon - val), val);
                                t->group = names[ntargets - 1];
                                snprintf(t->topic, sizeof(t->topic), "%s",
                                         colon + 1);
                                continue;
                        }
                }
                if (r == 0) {
                        r = cli_value(&cli, argc, argv, &i, "--metrics", "-m",
                                      &val);
                        if (r == 1) {
                                if (naddrs == MAX_ADDRS)
                                        return cli_usage_error(
                                            &cli, "at most %d --metrics",
                                            MAX_ADDRS);
                                addrs[naddrs++] = val;
                                continue;
                        }
                }
                if (r == -1)
                        return CLI_USAGE;
                if (r == 1)
                        continue;
                if (cli_flag(argv[i], "--json", NULL))
                        json = 1;
                else
                        return cli_usage_error(&cli, "unknown option %s",
                                               argv[i]);
        }
        if (cli.help) {
                usage(stdout);
                return CLI_OK;
        }
        if (cli.version) {
                cli_print_version(&cli);
                return CLI_OK;
        }
        if (!cli.brokers || !*cli.brokers)
                return cli_usage_error(&cli, "no Kafka brokers: pass -b "
                                             "HOST:PORT or set KAFKA_BROKERS");
        if (ntargets == 0) {
                targets[0].group =
                    cli_env("THOPTER_PROVISION_GROUP", "thopter-provisioner");
                snprintf(
                    targets[0].topic, sizeof(targets[0].topic), "%s",
                    cli_env("THOPTER_PROVISION_TOPIC", "thopter.provision"));
                targets[1].group =
                    cli_env("THOPTER_DESTROY_GROUP", "thopter-destroyer");
                snprintf(targets[1].topic, sizeof(targets[1].topic), "%s",
                         cli_env("THOPTER_DESTROY_TOPIC", "thopter.destroy"));
                ntargets = 2;
        }
        if (!json && isatty(fileno(stdout)))
                printf("%-22s %-20s %4s %10s %10s %8s  %s\n", "GROUP", "TOPIC",
                       "PART", "COMMITTED", "END", "LAG", "OWNER");
        for (int i = 0; i < ntargets; i++)
                if (show_group(&cli, &targets[i], json) != CLI_OK)
                        rc = CLI_FAIL;
        for (int i = 0; i < naddrs; i++)
                if (show_metrics(&cli, addrs[i], json) != CLI_OK)
                        rc = CLI_FAIL;
        fflush(stdout);
        return rc;
}
