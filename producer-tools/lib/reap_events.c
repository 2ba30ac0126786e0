/* reap_events.c - see reap_events.h.
 *
 * DESIGN
 * ------
 * Two sorted views of the targets (by machine id, by request id) make each
 * event a binary search, so a topic of a million events costs a million
 * lookups, not a million times the fleet. Events of one request share a
 * key and so a partition: the last one applied is the latest.
 */
#include "reap_events.h"
#include "clock.h"
#include "topic_parts.h"

#include <cjson/cJSON.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An event is a small object (section 3); anything bigger is not one. */
#define EVENT_MAX_BYTES (64 * 1024)
#define META_TIMEOUT_MS 10000

struct reap_events {
        struct reap_events_target *t;
        size_t n;
        struct reap_events_target **by_id, **by_request;
};

static int cmp_id(const void *a, const void *b) {
        const struct reap_events_target *x = *(const void *const *)a;
        const struct reap_events_target *y = *(const void *const *)b;
        return strcmp(x->id, y->id);
}

static int cmp_request(const void *a, const void *b) {
        const struct reap_events_target *x = *(const void *const *)a;
        const struct reap_events_target *y = *(const void *const *)b;
        return strcmp(x->request_id, y->request_id);
}

struct reap_events *reap_events_new(struct reap_events_target *targets,
                                    size_t n) {
        struct reap_events *ev = calloc(1, sizeof(*ev));
        if (!ev)
                return NULL;
        ev->t = targets;
        ev->n = n;
        ev->by_id = calloc(n ? n : 1, sizeof(*ev->by_id));
        ev->by_request = calloc(n ? n : 1, sizeof(*ev->by_request));
        if (!ev->by_id || !ev->by_request) {
                reap_events_destroy(ev);
                return NULL;
        }
        for (size_t i = 0; i < n; i++)
                ev->by_id[i] = ev->by_request[i] = &targets[i];
        qsort(ev->by_id, n, sizeof(*ev->by_id), cmp_id);
        qsort(ev->by_request, n, sizeof(*ev->by_request), cmp_request);
        return ev;
}

void reap_events_destroy(struct reap_events *ev) {
        if (!ev)
                return;
        free(ev->by_id);
        free(ev->by_request);
        free(ev);
}

/* The first of @p view whose field equals @p key, or NULL (ids repeat
 * only in broken fly answers; request ids may repeat across machines). */
static size_t lower_bound(struct reap_events_target **view,
                          size_t n,
                          const char *key,
                          int by_request) {
        size_t lo = 0, hi = n;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                const char *v =
                    by_request ? view[mid]->request_id : view[mid]->id;
                if (strcmp(v, key) < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

static const char *str_of(const cJSON *obj, const char *name) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
        return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

void reap_events_apply(struct reap_events *ev, const void *value, size_t len) {
        cJSON *obj;
        const char *kind, *state, *rid, *tid;

        if (!value || len == 0 || len > EVENT_MAX_BYTES)
                return;
        obj = cJSON_ParseWithLength(value, len);
        if (!cJSON_IsObject(obj))
                goto out;
        kind = str_of(obj, "kind");
        state = str_of(obj, "state");
        rid = str_of(obj, "requestId");
        tid = str_of(obj, "thopterId");
        if (!kind || strcmp(kind, "provision") != 0 || !state || !rid)
                goto out;
        if (tid && strcmp(state, "completed") == 0) {
                for (size_t i = lower_bound(ev->by_id, ev->n, tid, 0);
                     i < ev->n && strcmp(ev->by_id[i]->id, tid) == 0; i++)
                        snprintf(ev->by_id[i]->own->completed,
                                 sizeof(ev->by_id[i]->own->completed), "%s",
                                 rid);
        }
        for (size_t i = lower_bound(ev->by_request, ev->n, rid, 1);
             i < ev->n && strcmp(ev->by_request[i]->request_id, rid) == 0; i++)
                snprintf(ev->by_request[i]->own->last_state,
                         sizeof(ev->by_request[i]->own->last_state), "%s",
                         state);
out:
        cJSON_Delete(obj);
}

void reap_events_not_read(struct reap_events *ev, const char *why) {
        for (size_t i = 0; i < ev->n; i++) {
                ev->t[i].own->events_read = 0;
                /* Cut to the field on purpose; the precision says so to
                 * gcc's -Wformat-truncation at -O2 (the release build). */
                snprintf(ev->t[i].own->why, sizeof(ev->t[i].own->why), "%.*s",
                         (int)sizeof(ev->t[i].own->why) - 1, why);
        }
}

/* ------------------------------------------------------------------ */
/* Reading the topic */

struct part {
        int32_t id;
        int64_t end;
        int done;
};

/* The partitions to read, each up to the end it has now. */
static struct part *
parts_new(rd_kafka_t *rk, const char *topic, int *n, struct err *err) {
        struct topic_part *tp =
            topic_parts_new(rk, topic, NULL, META_TIMEOUT_MS, n, err);
        struct part *p = NULL;

        if (!tp)
                return NULL;
        p = calloc((size_t)*n, sizeof(*p));
        if (!p)
                err_oom(err, "partitions");
        for (int i = 0; p && i < *n; i++)
                p[i] = (struct part){.id = tp[i].partition,
                                     .end = tp[i].high,
                                     .done = tp[i].low >= tp[i].high};
        free(tp);
        return p;
}

static struct part *part_of(struct part *p, int n, int32_t id) {
        for (int i = 0; i < n; i++)
                if (p[i].id == id)
                        return &p[i];
        return NULL;
}

int reap_events_read(struct reap_events *ev,
                     rd_kafka_t *rk,
                     const char *topic,
                     int idle_ms,
                     struct err *err) {
        rd_kafka_topic_partition_list_t *tps = NULL;
        struct part *p;
        int n = 0, left = 0, rc = -1;
        int64_t deadline;

        p = parts_new(rk, topic, &n, err);
        if (!p)
                goto out;
        tps = rd_kafka_topic_partition_list_new(n);
        for (int i = 0; i < n; i++) {
                if (p[i].done)
                        continue;
                rd_kafka_topic_partition_list_add(tps, topic, p[i].id)->offset =
                    RD_KAFKA_OFFSET_BEGINNING;
                left++;
        }
        if (left && rd_kafka_assign(rk, tps)) {
                err_set(err, ERR_TRANSIENT, 0, "%s: assign failed", topic);
                goto out;
        }
        deadline = clock_mono_ms() + idle_ms;
        while (left > 0) {
                rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 200);
                struct part *q;

                if (clock_mono_ms() > deadline) {
                        err_set(err, ERR_TRANSIENT, 0,
                                "%s: no progress for %d s", topic,
                                idle_ms / 1000);
                        if (rkm)
                                rd_kafka_message_destroy(rkm);
                        goto out;
                }
                if (!rkm)
                        continue;
                q = part_of(p, n, rkm->partition);
                if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        if (q && !q->done && rkm->offset >= q->end) {
                                q->done = 1;
                                left--;
                        }
                } else if (rkm->err) {
                        /* Transient consumer errors are retried by
                         * librdkafka; the deadline ends a read that never
                         * recovers. */
                } else if (q && !q->done) {
                        deadline = clock_mono_ms() + idle_ms;
                        if (rkm->offset < q->end)
                                reap_events_apply(ev, rkm->payload, rkm->len);
                        if (rkm->offset + 1 >= q->end) {
                                q->done = 1;
                                left--;
                        }
                }
                rd_kafka_message_destroy(rkm);
        }
        for (size_t i = 0; i < ev->n; i++)
                ev->t[i].own->events_read = 1;
        rc = 0;
out:
        if (tps) {
                rd_kafka_assign(rk, NULL);
                rd_kafka_topic_partition_list_destroy(tps);
        }
        free(p);
        if (rc == -1)
                reap_events_not_read(ev, err->msg);
        return rc;
}
