/* provision_claims.c - claims of the provisions in flight in one consumer
 * (provision_claims.h).
 *
 * DESIGN
 * ------
 * One array of claims under one mutex. There are at most
 * MAX_CONCURRENT_PROVISIONS (16) owners, each holding a slot, a Golden
 * Claude turn and a few volumes, so a linear scan is the whole index.
 */
#include "provision_claims.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum claim_kind { CLAIM_VOLUME, CLAIM_SLOT, CLAIM_GC };

struct claim {
        enum claim_kind kind;
        char key[64];    /* volume id, slot's machine id ("" before), GC id */
        char owner[136]; /* requestId (<= 128) */
};

struct provision_claims {
        pthread_mutex_t lock;
        struct claim *v; /* lock: all below */
        size_t n, cap;
};

struct provision_claims *provision_claims_new(void) {
        struct provision_claims *c = calloc(1, sizeof(*c));
        if (c && pthread_mutex_init(&c->lock, NULL) != 0) {
                free(c);
                return NULL;
        }
        return c;
}

void provision_claims_free(struct provision_claims *c) {
        if (!c)
                return;
        pthread_mutex_destroy(&c->lock);
        free(c->v);
        free(c);
}

static void copy(char *dst, size_t cap, const char *src) {
        size_t n = src ? strnlen(src, cap - 1) : 0;
        memcpy(dst, src ? src : "", n);
        dst[n] = '\0';
}

static int same(const char *a, size_t cap, const char *b) {
        return strncmp(a, b ? b : "", cap) == 0;
}

/* Lock held. The claim of @p kind held by @p owner, or NULL. */
static struct claim *
owned(struct provision_claims *c, enum claim_kind kind, const char *owner) {
        for (size_t i = 0; i < c->n; i++)
                if (c->v[i].kind == kind &&
                    same(c->v[i].owner, sizeof(c->v[i].owner), owner))
                        return &c->v[i];
        return NULL;
}

/* Lock held. Appends a claim; NULL when out of memory. */
static struct claim *add(struct provision_claims *c,
                         enum claim_kind kind,
                         const char *key,
                         const char *owner) {
        if (c->n == c->cap) {
                size_t cap = c->cap ? c->cap * 2 : 16;
                struct claim *v = realloc(c->v, cap * sizeof(*v));
                if (!v)
                        return NULL;
                c->v = v;
                c->cap = cap;
        }
        struct claim *k = &c->v[c->n++];
        k->kind = kind;
        copy(k->key, sizeof(k->key), key);
        copy(k->owner, sizeof(k->owner), owner);
        return k;
}

/* Lock held. @p owner's claim of @p kind: kept when it has one, else added
 * when the others hold fewer than @p limit. 1 held, 0 full, -1 no memory. */
static int take_below(struct provision_claims *c,
                      enum claim_kind kind,
                      const char *key,
                      const char *owner,
                      int others,
                      int limit) {
        if (owned(c, kind, owner))
                return 1;
        if (others >= limit)
                return 0;
        return add(c, kind, key, owner) ? 1 : -1;
}

/* Lock held. Removes claim @p i (order does not matter). */
static void drop(struct provision_claims *c, size_t i) {
        c->v[i] = c->v[--c->n];
}

int provision_claims_volume(struct provision_claims *c,
                            const char *volume_id,
                            const char *owner) {
        int rc = 1;

        pthread_mutex_lock(&c->lock);
        for (size_t i = 0; i < c->n; i++) {
                struct claim *k = &c->v[i];
                if (k->kind != CLAIM_VOLUME ||
                    !same(k->key, sizeof(k->key), volume_id))
                        continue;
                rc = same(k->owner, sizeof(k->owner), owner);
                goto out;
        }
        if (!add(c, CLAIM_VOLUME, volume_id, owner))
                rc = -1;
out:
        pthread_mutex_unlock(&c->lock);
        return rc;
}

static int listed(const char *id, const char *const *busy, size_t n) {
        for (size_t i = 0; id[0] && i < n; i++)
                if (busy[i] && strcmp(busy[i], id) == 0)
                        return 1;
        return 0;
}

int provision_claims_slot(struct provision_claims *c,
                          const char *owner,
                          const char *const *busy,
                          size_t n,
                          int max,
                          int *in_use) {
        int rc, total = (int)n;

        pthread_mutex_lock(&c->lock);
        for (size_t i = 0; i < c->n; i++) {
                struct claim *k = &c->v[i];
                if (k->kind == CLAIM_SLOT &&
                    !same(k->owner, sizeof(k->owner), owner) &&
                    !listed(k->key, busy, n))
                        total++;
        }
        rc = take_below(c, CLAIM_SLOT, "", owner, total, max);
        pthread_mutex_unlock(&c->lock);
        if (in_use)
                *in_use = total;
        return rc;
}

void provision_claims_slot_machine(struct provision_claims *c,
                                   const char *owner,
                                   const char *machine_id) {
        pthread_mutex_lock(&c->lock);
        struct claim *k = owned(c, CLAIM_SLOT, owner);
        if (k)
                copy(k->key, sizeof(k->key), machine_id);
        pthread_mutex_unlock(&c->lock);
}

int provision_claims_gc_turn(struct provision_claims *c,
                             const char *gc_id,
                             const char *owner,
                             int limit,
                             int *running) {
        int rc, copies = 0;

        pthread_mutex_lock(&c->lock);
        for (size_t i = 0; i < c->n; i++) {
                struct claim *k = &c->v[i];
                if (k->kind == CLAIM_GC &&
                    same(k->key, sizeof(k->key), gc_id) &&
                    !same(k->owner, sizeof(k->owner), owner))
                        copies++;
        }
        rc = take_below(c, CLAIM_GC, gc_id, owner, copies, limit);
        pthread_mutex_unlock(&c->lock);
        if (running)
                *running = copies;
        return rc;
}

void provision_claims_gc_done(struct provision_claims *c, const char *owner) {
        pthread_mutex_lock(&c->lock);
        for (size_t i = 0; i < c->n; i++) {
                if (c->v[i].kind == CLAIM_GC &&
                    same(c->v[i].owner, sizeof(c->v[i].owner), owner)) {
                        drop(c, i);
                        break;
                }
        }
        pthread_mutex_unlock(&c->lock);
}

void provision_claims_release(struct provision_claims *c, const char *owner) {
        pthread_mutex_lock(&c->lock);
        for (size_t i = c->n; i-- > 0;)
                if (same(c->v[i].owner, sizeof(c->v[i].owner), owner))
                        drop(c, i);
        pthread_mutex_unlock(&c->lock);
}

size_t provision_claims_count(struct provision_claims *c) {
        pthread_mutex_lock(&c->lock);
        size_t n = c->n;
        pthread_mutex_unlock(&c->lock);
        return n;
}
