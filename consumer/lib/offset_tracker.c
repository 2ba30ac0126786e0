/* offset_tracker.c - per-partition committable prefix; see offset_tracker.h.
 *
 * DESIGN
 * ------
 * Each partition keeps its delivered offsets in delivery order in a ring
 * (as LINE's decaton does): workers only flip a finished flag, and finishing
 * pops the finished prefix. Nothing does offset+1 arithmetic on the pending
 * set, so gaps are harmless. The number of unfinished offsets is bounded by
 * the loop's in-flight limit, so rings stay tiny.
 */
#include "offset_tracker.h"

#include <stdlib.h>
#include <string.h>

struct pending {
        int64_t offset;
        int finished;
};

struct partition {
        char *topic;
        int32_t partition;
        struct pending *ring;
        size_t cap, head, len;
        int64_t last_added;  /* -1: none yet */
        int64_t committable; /* -1: none yet */
        int64_t committed;   /* confirmed by the broker; -1: none */
};

struct offset_tracker {
        struct partition *parts;
        size_t n, cap;
};

struct offset_tracker *offset_tracker_new(void) {
        return calloc(1, sizeof(struct offset_tracker));
}

static void partition_free(struct partition *p) {
        free(p->topic);
        free(p->ring);
}

void offset_tracker_destroy(struct offset_tracker *t) {
        if (!t)
                return;
        for (size_t i = 0; i < t->n; i++)
                partition_free(&t->parts[i]);
        free(t->parts);
        free(t);
}

static struct partition *
find(const struct offset_tracker *t, const char *topic, int32_t partition) {
        for (size_t i = 0; i < t->n; i++)
                if (t->parts[i].partition == partition &&
                    strcmp(t->parts[i].topic, topic) == 0)
                        return &t->parts[i];
        return NULL;
}

static struct partition *
find_or_add(struct offset_tracker *t, const char *topic, int32_t partition) {
        struct partition *p = find(t, topic, partition);
        if (p)
                return p;
        if (t->n == t->cap) {
                size_t cap = t->cap ? t->cap * 2 : 8;
                struct partition *parts =
                    realloc(t->parts, cap * sizeof(*parts));
                if (!parts)
                        return NULL;
                t->parts = parts;
                t->cap = cap;
        }
        p = &t->parts[t->n];
        memset(p, 0, sizeof(*p));
        p->topic = strdup(topic);
        if (!p->topic)
                return NULL;
        p->partition = partition;
        p->last_added = p->committable = p->committed = -1;
        t->n++;
        return p;
}

enum offset_tracker_added offset_tracker_add(struct offset_tracker *t,
                                             const char *topic,
                                             int32_t partition,
                                             int64_t offset) {
        struct partition *p = find_or_add(t, topic, partition);
        if (!p)
                return OFFSET_TRACKER_OOM;
        if (offset <= p->last_added)
                return OFFSET_TRACKER_OUT_OF_ORDER;
        if (p->len == p->cap) {
                size_t cap = p->cap ? p->cap * 2 : 16;
                struct pending *ring = malloc(cap * sizeof(*ring));
                if (!ring)
                        return OFFSET_TRACKER_OOM;
                for (size_t i = 0; i < p->len; i++)
                        ring[i] = p->ring[(p->head + i) % p->cap];
                free(p->ring);
                p->ring = ring;
                p->cap = cap;
                p->head = 0;
        }
        p->ring[(p->head + p->len) % p->cap] = (struct pending){offset, 0};
        p->len++;
        p->last_added = offset;
        return OFFSET_TRACKER_ADDED;
}

int offset_tracker_finish(struct offset_tracker *t,
                          const char *topic,
                          int32_t partition,
                          int64_t offset,
                          int64_t *commit) {
        struct partition *p = find(t, topic, partition);
        size_t i;

        if (!p)
                return -1;
        for (i = 0; i < p->len; i++) {
                struct pending *e = &p->ring[(p->head + i) % p->cap];
                if (e->offset == offset) {
                        if (e->finished)
                                return 0;
                        e->finished = 1;
                        break;
                }
        }
        if (i == p->len)
                return -1;

        int64_t before = p->committable;
        while (p->len && p->ring[p->head].finished) {
                int64_t done = p->ring[p->head].offset;
                p->head = (p->head + 1) % p->cap;
                p->len--;
                p->committable = p->len ? p->ring[p->head].offset : done + 1;
        }
        if (p->committable > before) {
                if (commit)
                        *commit = p->committable;
                return 1;
        }
        return 0;
}

int64_t offset_tracker_committable(const struct offset_tracker *t,
                                   const char *topic,
                                   int32_t partition) {
        const struct partition *p = find(t, topic, partition);
        return p ? p->committable : -1;
}

void offset_tracker_committed(struct offset_tracker *t,
                              const char *topic,
                              int32_t partition,
                              int64_t offset) {
        struct partition *p = find(t, topic, partition);
        if (p && offset > p->committed)
                p->committed = offset;
}

void offset_tracker_foreach_uncommitted(
    const struct offset_tracker *t,
    void (*fn)(const char *, int32_t, int64_t, void *),
    void *arg) {
        for (size_t i = 0; i < t->n; i++) {
                const struct partition *p = &t->parts[i];
                if (p->committable >= 0 && p->committable > p->committed)
                        fn(p->topic, p->partition, p->committable, arg);
        }
}

void offset_tracker_remove(struct offset_tracker *t,
                           const char *topic,
                           int32_t partition) {
        struct partition *p = find(t, topic, partition);
        if (!p)
                return;
        partition_free(p);
        *p = t->parts[--t->n];
}

size_t offset_tracker_unfinished(const struct offset_tracker *t) {
        size_t n = 0;
        for (size_t i = 0; i < t->n; i++)
                for (size_t j = 0; j < t->parts[i].len; j++)
                        n +=
                            !t->parts[i]
                                 .ring[(t->parts[i].head + j) % t->parts[i].cap]
                                 .finished;
        return n;
}
