/* metrics.c - the Prometheus registry; see metrics.h.
 *
 * DESIGN
 * ------
 * Families come from metrics_table.h; series are a flat array (id + labels)
 * under one mutex. The consumer has a few dozen series at most (labels are
 * topics, classes, routes and status codes, never request or machine ids),
 * so a linear search is the simplest thing that is fast enough.
 */
#include "metrics.h"
#include "dynbuf.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SERIES 512
#define RENDER_MAX (16u * 1024u * 1024u)

enum family_type { COUNTER, GAUGE, HISTOGRAM };

struct family {
        const char *name;
        enum family_type type;
        const char *help;
};

#define METRICS_FAMILY_(id, name, type, help) [id] = {name, type, help},
static const struct family families[METRICS__COUNT] = {
    METRICS_TABLE(METRICS_FAMILY_)};
#undef METRICS_FAMILY_

static const double buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                 2.5,   5,    10,    30,   60,  120,  300};
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))

struct series {
        enum metrics_id id;
        char labels[192];
        double value; /* counter/gauge value; histogram sum */
        unsigned long long count;
        unsigned long long bucket[NBUCKETS];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct series series[MAX_SERIES];
static int nseries;

/* Lock held. NULL when the registry is full or the id is unknown. */
static struct series *find(enum metrics_id id, const char *labels, int add) {
        labels = labels ? labels : "";
        if ((unsigned)id >= METRICS__COUNT)
                return NULL;
        for (int i = 0; i < nseries; i++)
                if (series[i].id == id && strcmp(series[i].labels, labels) == 0)
                        return &series[i];
        if (!add || nseries == MAX_SERIES)
                return NULL;
        struct series *s = &series[nseries++];
        memset(s, 0, sizeof(*s));
        s->id = id;
        snprintf(s->labels, sizeof(s->labels), "%s", labels);
        return s;
}

void metrics_inc(enum metrics_id id, const char *labels, double v) {
        pthread_mutex_lock(&lock);
        struct series *s = find(id, labels, 1);
        if (s)
                s->value += v;
        pthread_mutex_unlock(&lock);
}

void metrics_set(enum metrics_id id, const char *labels, double v) {
        pthread_mutex_lock(&lock);
        struct series *s = find(id, labels, 1);
        if (s)
                s->value = v;
        pthread_mutex_unlock(&lock);
}

void metrics_observe(enum metrics_id id, const char *labels, double v) {
        pthread_mutex_lock(&lock);
        struct series *s = find(id, labels, 1);
        if (s) {
                s->value += v;
                s->count++;
                for (size_t b = 0; b < NBUCKETS; b++)
                        if (v <= buckets[b])
                                s->bucket[b]++;
        }
        pthread_mutex_unlock(&lock);
}

double metrics_get(enum metrics_id id, const char *labels) {
        double v = 0;
        pthread_mutex_lock(&lock);
        const struct series *s = find(id, labels, 0);
        if (s)
                v = families[id].type == HISTOGRAM ? (double)s->count
                                                   : s->value;
        pthread_mutex_unlock(&lock);
        return v;
}

static const char *type_name(enum family_type t) {
        return t == COUNTER ? "counter" : t == GAUGE ? "gauge" : "histogram";
}

static void render_series(struct dynbuf *b, const struct series *s) {
        const char *name = families[s->id].name;
        const char *l = s->labels, *sep = l[0] ? "," : "";
        const char *open = l[0] ? "{" : "", *close = l[0] ? "}" : "";

        if (families[s->id].type != HISTOGRAM) {
                dynbuf_addf(b, "%s%s%s%s %.17g\n", name, open, l, close,
                            s->value);
                return;
        }
        for (size_t i = 0; i < NBUCKETS; i++)
                dynbuf_addf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, l, sep,
                            buckets[i], s->bucket[i]);
        dynbuf_addf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, l, sep,
                    s->count);
        dynbuf_addf(b, "%s_sum%s%s%s %.17g\n", name, open, l, close, s->value);
        dynbuf_addf(b, "%s_count%s%s%s %llu\n", name, open, l, close, s->count);
}

char *metrics_render(void) {
        struct dynbuf b;

        dynbuf_init(&b, RENDER_MAX, DYNBUF_FAIL);
        pthread_mutex_lock(&lock);
        for (int f = 0; f < METRICS__COUNT; f++) {
                dynbuf_addf(&b, "# HELP %s %s\n# TYPE %s %s\n",
                            families[f].name, families[f].help,
                            families[f].name, type_name(families[f].type));
                for (int i = 0; i < nseries; i++)
                        if (series[i].id == (enum metrics_id)f)
                                render_series(&b, &series[i]);
        }
        pthread_mutex_unlock(&lock);
        return dynbuf_take(&b, NULL);
}

void metrics_reset(void) {
        pthread_mutex_lock(&lock);
        nseries = 0;
        pthread_mutex_unlock(&lock);
}
