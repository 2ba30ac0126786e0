/* fly_pace.c - token buckets for the app-scoped fly routes (fly_pace.h).
 *
 * DESIGN
 * ------
 * A bucket holds up to `burst` tokens and gains `rate` per second. Taking
 * one may leave it below zero: the deficit is how long the taker waits, and
 * the next taker's wait starts after it, so waiting callers are served one
 * per 1/rate seconds in the order they asked, and the burst is spent before
 * anyone waits.
 */
#include "fly_pace.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* The routes of fly_client.c that name no machine. */
static const char *const app_routes[] = {"machines.list", "machines.create",
                                         "volumes.list", "volumes.create"};
#define NROUTES (sizeof(app_routes) / sizeof(app_routes[0]))

struct bucket {
        double tokens;   /* may be negative: callers already waiting */
        int64_t last_ms; /* when tokens was computed */
        int started;
};

struct fly_pace {
        double rate, burst;
        pthread_mutex_t lock;
        struct bucket b[NROUTES]; /* lock */
};

struct fly_pace *fly_pace_new(double rate, double burst) {
        struct fly_pace *p = calloc(1, sizeof(*p));
        if (!p)
                return NULL;
        if (pthread_mutex_init(&p->lock, NULL) != 0) {
                free(p);
                return NULL;
        }
        p->rate = rate > 0 ? rate : 1;
        p->burst = burst >= 1 ? burst : 1;
        return p;
}

void fly_pace_free(struct fly_pace *p) {
        if (!p)
                return;
        pthread_mutex_destroy(&p->lock);
        free(p);
}

static int route_index(const char *route) {
        for (size_t i = 0; route && i < NROUTES; i++)
                if (strcmp(app_routes[i], route) == 0)
                        return (int)i;
        return -1;
}

int fly_pace_is_app_scoped(const char *route) {
        return route_index(route) >= 0;
}

int64_t fly_pace_take(struct fly_pace *p, const char *route, int64_t now_ms) {
        int i = route_index(route);
        int64_t wait = 0;

        if (!p || i < 0)
                return 0;
        pthread_mutex_lock(&p->lock);
        struct bucket *b = &p->b[i];
        if (!b->started) {
                b->started = 1;
                b->tokens = p->burst;
                b->last_ms = now_ms;
        }
        if (now_ms > b->last_ms) {
                b->tokens += (double)(now_ms - b->last_ms) / 1000.0 * p->rate;
                if (b->tokens > p->burst)
                        b->tokens = p->burst;
                b->last_ms = now_ms;
        }
        b->tokens -= 1.0;
        if (b->tokens < 0)
                wait = (int64_t)(-b->tokens / p->rate * 1000.0 + 0.999);
        pthread_mutex_unlock(&p->lock);
        return wait;
}
