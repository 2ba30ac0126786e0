/* metrics.c - the Prometheus registry; see metrics.h.
 *
 * DESIGN
 * ------
 * A flat array of series (name + labels) under one mutex. The consumer has a
 * few dozen series at most (labels are topics, classes, routes and status
 * codes, never request or machine ids), so a linear search is the simplest
 * thing that is fast enough.
 */
#include "metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SERIES   512
#define MAX_FAMILIES 96

static const double buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                 2.5,   5,    10,    30,   60,  120,  300};
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))

struct family {
        char name[96];
        enum metrics_type type;
        char help[160];
};

struct series {
        char name[96];
        char labels[192];
        double value; /* counter/gauge value; histogram sum */
        unsigned long long count;
        unsigned long long bucket[NBUCKETS];
        int is_hist;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct family families[MAX_FAMILIES];
static int nfamilies;
static struct series series[MAX_SERIES];
static int nseries;

void metrics_describe(const char *name,
                      enum metrics_type type,
                      const char *help) {
        pthread_mutex_lock(&lock);
        for (int i = 0; i < nfamilies; i++) {
                if (strcmp(families[i].name, name) == 0) {
                        pthread_mutex_unlock(&lock);
                        return;
                }
        }
        if (nfamilies < MAX_FAMILIES) {
                struct family *f = &families[nfamilies++];
                snprintf(f->name, sizeof(f->name), "%s", name);
                snprintf(f->help, sizeof(f->help), "%s", help);
                f->type = type;
        }
        pthread_mutex_unlock(&lock);
}

/* Called with the lock held. NULL when the registry is full. */
static struct series *find(const char *name, const char *labels) {
        labels = labels ? labels : "";
        for (int i = 0; i < nseries; i++)
                if (strcmp(series[i].name, name) == 0 &&
                    strcmp(series[i].labels, labels) == 0)
                        return &series[i];
        if (nseries == MAX_SERIES)
                return NULL;
        struct series *s = &series[nseries++];
        memset(s, 0, sizeof(*s));
        snprintf(s->name, sizeof(s->name), "%s", name);
        snprintf(s->labels, sizeof(s->labels), "%s", labels);
        return s;
}

void metrics_inc(const char *name, const char *labels, double v) {
        pthread_mutex_lock(&lock);
        struct series *s = find(name, labels);
        if (s)
                s->value += v;
        pthread_mutex_unlock(&lock);
}

void metrics_set(const char *name, const char *labels, double v) {
        pthread_mutex_lock(&lock);
        struct series *s = find(name, labels);
        if (s)
                s->value = v;
        pthread_mutex_unlock(&lock);
}

void metrics_observe(const char *name, const char *labels, double v) {
        pthread_mutex_lock(&lock);
        struct series *s = find(name, labels);
        if (s) {
                s->is_hist = 1;
                s->value += v;
                s->count++;
                for (size_t b = 0; b < NBUCKETS; b++)
                        if (v <= buckets[b])
                                s->bucket[b]++;
        }
        pthread_mutex_unlock(&lock);
}

double metrics_get(const char *name, const char *labels) {
        double v = 0;
        labels = labels ? labels : "";
        pthread_mutex_lock(&lock);
        for (int i = 0; i < nseries; i++)
                if (strcmp(series[i].name, name) == 0 &&
                    strcmp(series[i].labels, labels) == 0)
                        v = series[i].is_hist ? (double)series[i].count
                                              : series[i].value;
        pthread_mutex_unlock(&lock);
        return v;
}

struct buf {
        char *p;
        size_t len, cap;
};

static void appendf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void appendf(struct buf *b, const char *fmt, ...) {
        va_list ap;
        for (;;) {
                va_start(ap, fmt);
                int n = vsnprintf(b->p ? b->p + b->len : NULL,
                                  b->p ? b->cap - b->len : 0, fmt, ap);
                va_end(ap);
                if (n < 0)
                        return;
                if (b->p && b->len + (size_t)n < b->cap) {
                        b->len += (size_t)n;
                        return;
                }
                size_t cap = (b->cap ? b->cap * 2 : 4096) + (size_t)n;
                char *p = realloc(b->p, cap);
                if (!p)
                        return;
                b->p = p;
                b->cap = cap;
        }
}

static const char *type_name(enum metrics_type t) {
        return t == METRICS_COUNTER ? "counter"
               : t == METRICS_GAUGE ? "gauge"
                                    : "histogram";
}

static void render_series(struct buf *b, const struct series *s) {
        const char *sep = s->labels[0] ? "," : "";
        if (!s->is_hist) {
                if (s->labels[0])
                        appendf(b, "%s{%s} %.17g\n", s->name, s->labels,
                                s->value);
                else
                        appendf(b, "%s %.17g\n", s->name, s->value);
                return;
        }
        for (size_t i = 0; i < NBUCKETS; i++)
                appendf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", s->name,
                        s->labels, sep, buckets[i], s->bucket[i]);
        appendf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", s->name, s->labels, sep,
                s->count);
        appendf(b, "%s_sum%s%s%s %.17g\n", s->name, s->labels[0] ? "{" : "",
                s->labels, s->labels[0] ? "}" : "", s->value);
        appendf(b, "%s_count%s%s%s %llu\n", s->name, s->labels[0] ? "{" : "",
                s->labels, s->labels[0] ? "}" : "", s->count);
}

char *metrics_render(void) {
        struct buf b = {0};
        char *done;

        pthread_mutex_lock(&lock);
        done = calloc((size_t)nseries + 1, 1);
        for (int f = 0; f < nfamilies; f++) {
                int header = 0;
                for (int i = 0; i < nseries; i++) {
                        if (strcmp(series[i].name, families[f].name) != 0)
                                continue;
                        if (!header) {
                                appendf(&b, "# HELP %s %s\n# TYPE %s %s\n",
                                        families[f].name, families[f].help,
                                        families[f].name,
                                        type_name(families[f].type));
                                header = 1;
                        }
                        render_series(&b, &series[i]);
                        if (done)
                                done[i] = 1;
                }
        }
        for (int i = 0; i < nseries; i++)
                if (!done || !done[i])
                        render_series(&b, &series[i]);
        pthread_mutex_unlock(&lock);
        free(done);
        if (!b.p)
                return strdup("");
        return b.p;
}

void metrics_reset(void) {
        pthread_mutex_lock(&lock);
        nseries = 0;
        nfamilies = 0;
        pthread_mutex_unlock(&lock);
}
