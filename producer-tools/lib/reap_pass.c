/* reap_pass.c - see reap_pass.h.
 *
 * DESIGN
 * ------
 * Every machine is decided before anything is published, and everything
 * is published before anything is printed: each line then says where its
 * request went, or why it did not. A stop signal ends the decisions early;
 * what was decided is still published and printed, and the summary counts
 * the machines not looked at.
 */
#include "reap_pass.h"
#include "clock.h"
#include "err.h"
#include "reap_events.h"
#include "request.h"

#include <cjson/cJSON.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROG           "thopter-reaper"
#define EVENTS_IDLE_MS 30000

struct item {
        struct fly_machine m;
        struct reap_owner own;
        struct reap_decision d;
        char adopt_err[ERR_MSG_LEN]; /* REAP_ADOPT: the mark write failed */
        char *payload; /* the destroy request (REAP_DESTROY), or NULL */
        char invalid[ERR_MSG_LEN]; /* request_parse_destroy() refused it */
        rd_kafka_resp_err_t kerr;
        int32_t partition;
        int64_t offset;
        int produced, delivered;
};

static int by_name(const void *a, const void *b) {
        const struct item *x = a, *y = b;
        int r = strcmp(x->m.name, y->m.name);
        return r ? r : strcmp(x->m.id, y->m.id);
}

/* Builds and validates the request of a machine to destroy. */
static int
make_request(struct item *it, const char *pass_stamp, const char *created_at) {
        struct destroy_request req;
        struct err err = {0};
        char rid[REQUEST_ID_MAX + 1];
        cJSON *obj = cJSON_CreateObject();

        if (!obj)
                return -1;
        snprintf(rid, sizeof(rid), "reap-%s-%s", it->m.id, pass_stamp);
        if (!cJSON_AddStringToObject(obj, "thopterId", it->m.id) ||
            !cJSON_AddStringToObject(obj, "requestId", rid) ||
            !cJSON_AddStringToObject(obj, "reason", it->d.reason) ||
            !cJSON_AddStringToObject(obj, "source", "reaper") ||
            !cJSON_AddStringToObject(obj, "createdAt", created_at)) {
                cJSON_Delete(obj);
                return -1;
        }
        it->payload = cJSON_PrintUnformatted(obj);
        cJSON_Delete(obj);
        if (!it->payload)
                return -1;
        /* The consumer's own validator: what it would refuse is not sent. */
        if (request_parse_destroy(it->payload, strlen(it->payload), &req,
                                  &err) == -1) {
                snprintf(it->invalid, sizeof(it->invalid), "%s", err.msg);
                return 0;
        }
        request_destroy_free(&req);
        return 0;
}

void reap_pass_delivery(rd_kafka_t *rk,
                        const rd_kafka_message_t *rkm,
                        void *opaque) {
        struct item *it = rkm->_private;
        (void)rk;
        (void)opaque;
        it->kerr = rkm->err;
        it->partition = rkm->partition;
        it->offset = rkm->offset;
        it->delivered = 1;
}

static void publish(const struct reap_pass *p, struct item *items, size_t n) {
        for (size_t i = 0; i < n; i++) {
                struct item *it = &items[i];
                rd_kafka_resp_err_t e;
                if (!it->payload || it->invalid[0])
                        continue;
                do {
                        e = rd_kafka_producev(
                            p->producer, RD_KAFKA_V_TOPIC(p->destroy_topic),
                            RD_KAFKA_V_KEY(it->m.id, strlen(it->m.id)),
                            RD_KAFKA_V_VALUE(it->payload, strlen(it->payload)),
                            RD_KAFKA_V_OPAQUE(it), RD_KAFKA_V_END);
                        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                                rd_kafka_poll(p->producer, 100);
                } while (e == RD_KAFKA_RESP_ERR__QUEUE_FULL);
                it->produced = 1;
                if (e) {
                        it->kerr = e;
                        it->delivered = 1;
                }
        }
        /* message.timeout.ms bounds this wait: every record gets a report. */
        while (rd_kafka_outq_len(p->producer) > 0)
                rd_kafka_poll(p->producer, 100);
}

/* Names and reasons come from the fly API: print them without control
 * characters. */
static void clean(char *s) {
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        *s = '?';
}

struct tally {
        int machines, destroy, keep, unchecked, unknown, adopt, skip, failed;
        int by_rule[REAP_RULE_IDLE + 1];
};

static void print_json(cJSON *o) {
        char *s = cJSON_PrintUnformatted(o);
        if (s)
                printf("%s\n", s);
        cJSON_free(s);
        cJSON_Delete(o);
}

/* --json: {"verdict","id","name","state","reason"} and, for a destroy, the
 * "rule" and where the request went or why it did not. */
static void print_item_json(const struct reap_pass *p,
                            const struct item *it,
                            const char *verdict) {
        cJSON *o = cJSON_CreateObject();

        cJSON_AddStringToObject(o, "verdict", verdict);
        cJSON_AddStringToObject(o, "id", it->m.id);
        cJSON_AddStringToObject(o, "name", it->m.name);
        cJSON_AddStringToObject(o, "state", it->m.state);
        cJSON_AddStringToObject(o, "reason", it->d.reason);
        if (it->d.verdict == REAP_DESTROY) {
                cJSON_AddStringToObject(o, "rule", reap_rule_name(it->d.rule));
                if (it->invalid[0])
                        cJSON_AddStringToObject(o, "error", it->invalid);
                else if (p->apply && it->delivered && !it->kerr) {
                        cJSON_AddStringToObject(o, "topic", p->destroy_topic);
                        cJSON_AddNumberToObject(o, "partition", it->partition);
                        cJSON_AddNumberToObject(o, "offset",
                                                (double)it->offset);
                } else if (p->apply)
                        cJSON_AddStringToObject(o, "error",
                                                rd_kafka_err2str(it->kerr));
        }
        print_json(o);
}

static void
print_item(const struct reap_pass *p, struct item *it, struct tally *t) {
        const char *verdict = "keep";
        char tail[ERR_MSG_LEN + 128] = "";

        clean(it->m.name);
        clean(it->d.reason);
        switch (it->d.verdict) {
        case REAP_SKIP:
                verdict = "skip";
                t->skip++;
                break;
        case REAP_KEEP:
        case REAP_CHECK_IDLE:
                verdict = it->d.unchecked ? "unchecked" : "keep";
                t->keep++;
                t->unchecked += it->d.unchecked;
                t->unknown += it->d.unknown;
                break;
        case REAP_ADOPT:
                if (it->adopt_err[0]) {
                        verdict = "failed";
                        snprintf(tail, sizeof(tail), " (not marked: %s)",
                                 it->adopt_err);
                        fprintf(stderr, PROG ": %s: cannot adopt it: %s\n",
                                it->m.id, it->adopt_err);
                        t->failed++;
                } else {
                        verdict = p->apply ? "adopt" : "would-adopt";
                        t->adopt++;
                }
                break;
        case REAP_DESTROY:
                if (it->invalid[0]) {
                        verdict = "failed";
                        snprintf(tail, sizeof(tail),
                                 " (not sent: the request would be invalid: "
                                 "%s)",
                                 it->invalid);
                        fprintf(stderr,
                                PROG ": %s: cannot request its destruction: "
                                     "%s\n",
                                it->m.id, it->invalid);
                        t->failed++;
                } else if (!p->apply) {
                        verdict = "would-destroy";
                        t->destroy++;
                        t->by_rule[it->d.rule]++;
                } else if (it->delivered && !it->kerr) {
                        verdict = "destroy";
                        snprintf(tail, sizeof(tail),
                                 " -> %s [%" PRId32 "] @%" PRId64,
                                 p->destroy_topic, it->partition, it->offset);
                        t->destroy++;
                        t->by_rule[it->d.rule]++;
                } else {
                        verdict = "failed";
                        snprintf(tail, sizeof(tail), " (not delivered: %s)",
                                 rd_kafka_err2str(it->kerr));
                        fprintf(stderr,
                                PROG ": %s: destroy request not delivered to "
                                     "%s: %s\n",
                                it->m.id, p->destroy_topic,
                                rd_kafka_err2str(it->kerr));
                        t->failed++;
                }
                break;
        }
        if (p->json) {
                print_item_json(p, it, verdict);
                return;
        }
        printf("%s %s %s %s: %s%s\n", verdict, it->m.id,
               it->m.name[0] ? it->m.name : "-",
               it->m.state[0] ? it->m.state : "-", it->d.reason, tail);
}

static void print_summary(const struct reap_pass *p,
                          const struct tally *t,
                          size_t left,
                          const char *when) {
        char rules[128] = "";
        size_t off = 0;
        for (int rule = REAP_RULE_LIFETIME; rule <= REAP_RULE_IDLE; rule++) {
                if (!t->by_rule[rule])
                        continue;
                off += (size_t)snprintf(rules + off, sizeof(rules) - off,
                                        "%s%s %d", off ? ", " : " (",
                                        reap_rule_name(rule), t->by_rule[rule]);
                if (off >= sizeof(rules))
                        break;
        }
        if (off && off < sizeof(rules) - 1)
                strcat(rules, ")");
        if (p->json) {
                cJSON *o = cJSON_CreateObject();
                cJSON *by = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "summary", when);
                cJSON_AddBoolToObject(o, "apply", p->apply);
                cJSON_AddNumberToObject(o, "machines", t->machines);
                cJSON_AddNumberToObject(o, "destroy", t->destroy);
                for (int rule = REAP_RULE_LIFETIME; rule <= REAP_RULE_IDLE;
                     rule++)
                        if (t->by_rule[rule])
                                cJSON_AddNumberToObject(
                                    by, reap_rule_name(rule), t->by_rule[rule]);
                cJSON_AddItemToObject(o, "byRule", by);
                cJSON_AddNumberToObject(o, "kept", t->keep);
                cJSON_AddNumberToObject(o, "unchecked", t->unchecked);
                cJSON_AddNumberToObject(o, "unknown", t->unknown);
                if (p->adopt)
                        cJSON_AddNumberToObject(o, "adopt", t->adopt);
                cJSON_AddNumberToObject(o, "skipped", t->skip);
                cJSON_AddNumberToObject(o, "failed", t->failed);
                cJSON_AddNumberToObject(o, "notLookedAt", (double)left);
                print_json(o);
                fflush(stdout);
                return;
        }
        printf("summary %s: %d machine%s: %d %s%s, %d kept (%d unchecked", when,
               t->machines, t->machines == 1 ? "" : "s", t->destroy,
               !p->apply         ? "would be destroyed"
               : t->destroy == 1 ? "destroy request published"
                                 : "destroy requests published",
               rules, t->keep, t->unchecked);
        if (t->unknown)
                printf(", %d unknown", t->unknown);
        printf(")");
        if (p->adopt)
                printf(", %d %s", t->adopt,
                       p->apply ? "adopted" : "would be adopted");
        printf(", %d skipped, %d failed", t->skip, t->failed);
        if (left)
                printf(", %zu not looked at (stopping)", left);
        printf("%s\n", p->apply ? ""
                                : "; dry run: nothing published (--apply "
                                  "publishes)");
        fflush(stdout);
}

/* The evidence of ownership for every item, from thopter.events.
 * @returns 0 (a failed read is in each item's own.why), -1 out of memory. */
static int
read_owners(const struct reap_pass *p, struct item *items, size_t n) {
        struct reap_events_target *t = calloc(n ? n : 1, sizeof(*t));
        struct reap_events *ev = NULL;
        struct err err = {0};
        int rc = -1;

        if (!t)
                return -1;
        for (size_t i = 0; i < n; i++)
                t[i] = (struct reap_events_target){
                    items[i].m.id, items[i].m.request_id, &items[i].own};
        ev = reap_events_new(t, n);
        if (!ev)
                goto out;
        rc = 0;
        if (!p->events) {
                reap_events_not_read(ev, "KAFKA_BROKERS not set");
        } else if (reap_events_read(ev, p->events, p->events_topic,
                                    EVENTS_IDLE_MS, &err) == -1) {
                fprintf(stderr,
                        PROG ": reading %s failed: %s (no unmarked machine "
                             "is treated as an orphan in this pass)\n",
                        p->events_topic, err.msg);
        }
out:
        reap_events_destroy(ev);
        free(t);
        return rc;
}

struct mark_call {
        struct fly_client *fly;
        const char *id;
};

static int call_mark(void *arg, struct err *err) {
        struct mark_call *c = arg;
        return fly_machine_set_metadata(c->fly, c->id, "thopter_provisioned",
                                        REAP_ADOPTED_MARK, err);
}

/* --adopt --apply: writes the mark, retried like every fly write. */
static void adopt(const struct reap_pass *p, struct item *it) {
        struct mark_call c = {p->fly, it->m.id};
        struct err err = {0};
        char target[96];

        snprintf(target, sizeof(target), "metadata:%s", it->m.id);
        if (fly_retry_call(p->retry, NULL, "adopt", target, call_mark, &c,
                           &err) == -1)
                snprintf(it->adopt_err, sizeof(it->adopt_err), "%s", err.msg);
}

int reap_pass_run(const struct reap_pass *p) {
        struct fly_list_call lc = {p->fly, {0}, NULL, 0};
        struct err err = {0};
        struct item *items = NULL;
        struct tally t = {0};
        int64_t now_ms = clock_wall_ms();
        int64_t now_s = now_ms / 1000;
        char created_at[32], stamp[16];
        size_t looked = 0;
        int rc = -1;
        time_t tt = (time_t)now_s;
        struct tm tm;

        clock_iso8601(now_ms, created_at, sizeof(created_at));
        gmtime_r(&tt, &tm);
        strftime(stamp, sizeof(stamp), "%Y%m%d%H%M", &tm);

        if (fly_retry_call(p->retry, NULL, "lookup", "list", fly_list_call_run,
                           &lc, &err) == -1) {
                fprintf(stderr,
                        PROG ": listing the machines of app %s failed: %s\n",
                        p->app, err.msg);
                goto out;
        }
        items = calloc(lc.n ? lc.n : 1, sizeof(*items));
        if (!items) {
                fprintf(stderr, PROG ": out of memory\n");
                goto out;
        }
        for (size_t i = 0; i < lc.n; i++)
                items[i].m = lc.machines[i];
        qsort(items, lc.n, sizeof(*items), by_name);
        if (read_owners(p, items, lc.n) == -1) {
                fprintf(stderr, PROG ": out of memory\n");
                goto out;
        }

        for (; looked < lc.n && !*p->stop; looked++) {
                struct item *it = &items[looked];
                reap_decide(&it->m, now_s, p->rs, &it->own, NULL, &it->d);
                if (it->d.verdict == REAP_CHECK_IDLE) {
                        struct reap_idle_result idle;
                        reap_idle_check(p->idle, &it->m, &idle);
                        reap_decide(&it->m, clock_wall_ms() / 1000, p->rs,
                                    &it->own, &idle, &it->d);
                }
                if (it->d.verdict == REAP_ADOPT && p->apply)
                        adopt(p, it);
                if (it->d.verdict == REAP_DESTROY &&
                    make_request(it, stamp, created_at) == -1) {
                        fprintf(stderr, PROG ": out of memory\n");
                        goto out;
                }
        }
        if (p->apply)
                publish(p, items, looked);
        t.machines = (int)lc.n;
        for (size_t i = 0; i < looked; i++)
                print_item(p, &items[i], &t);
        print_summary(p, &t, lc.n - looked, created_at);
        rc = t.failed || looked < lc.n ? -1 : 0;
out:
        for (size_t i = 0; items && i < lc.n; i++)
                free(items[i].payload);
        free(items);
        free(lc.machines);
        return rc;
}
