/* provision_claims.h - what the provisions in flight in one consumer have
 * taken for themselves: volumes, capacity slots, Golden Claude copy turns.
 *
 * With MAX_CONCURRENT_PROVISIONS > 1 several workers run provisions at once,
 * and each one reads fly's state (a volume list, a machine list) before it
 * acts on it. Two of them reading the same list would pick the same free
 * volume or both take the last free slot. Claims close that window inside
 * one consumer: a provision claims what it picked, under one lock, and the
 * others skip it. Across consumers fly's own rules decide (a volume attached
 * meanwhile answers 412 "already claimed"; see provision_fly.c) and the
 * capacity count sees the other consumers' creates once fly lists them.
 *
 * Every claim names its owner, the requestId of the provision that holds it
 * (never two provisions of one requestId in flight: the loop's exclusive
 * key), and provision_claims_release() gives back everything an owner holds
 * when its run ends, whatever the outcome.
 *
 * @locality any thread: every function takes the claims' own lock, held for
 * a few comparisons only (no I/O under it).
 */
#ifndef THOPTER_PROVISION_CLAIMS_H
#define THOPTER_PROVISION_CLAIMS_H

#include <stddef.h>

struct provision_claims;

/** @returns the claims, or NULL when out of memory. */
struct provision_claims *provision_claims_new(void);
void provision_claims_free(struct provision_claims *c); /* NULL: no-op */

/**
 * @brief Claim volume @p volume_id for @p owner.
 * @returns 1 when @p owner holds it now (also when it already did), 0 when
 * another provision holds it, -1 when out of memory.
 */
int provision_claims_volume(struct provision_claims *c,
                            const char *volume_id,
                            const char *owner);

/**
 * @brief Take a capacity slot for @p owner when one is free.
 *
 * @p busy lists the ids of the thopter machines fly counts as taking
 * capacity (started, or on their way), @p n of them. The slots held by other
 * owners count too, except those whose machine is already in @p busy (it
 * is counted once). A slot is free when that total is below @p max.
 * @param in_use set to the total counted (without @p owner's new slot).
 * @returns 1 when @p owner holds a slot now (also when it already did), 0
 * when none is free, -1 when out of memory.
 */
int provision_claims_slot(struct provision_claims *c,
                          const char *owner,
                          const char *const *busy,
                          size_t n,
                          int max,
                          int *in_use);

/** @brief @p owner's slot is taken by machine @p machine_id (created). */
void provision_claims_slot_machine(struct provision_claims *c,
                                   const char *owner,
                                   const char *machine_id);

/**
 * @brief A turn to copy from Golden Claude @p gc_id, when fewer than
 * @p limit copies from it are running.
 * @param running set to the copies from it running now (without ours).
 * @returns 1 when @p owner has a turn (also when it already had one), 0 when
 * it must wait, -1 when out of memory.
 */
int provision_claims_gc_turn(struct provision_claims *c,
                             const char *gc_id,
                             const char *owner,
                             int limit,
                             int *running);

/** @brief Give back @p owner's Golden Claude turn (none: no-op). */
void provision_claims_gc_done(struct provision_claims *c, const char *owner);

/** @brief Give back everything @p owner holds. */
void provision_claims_release(struct provision_claims *c, const char *owner);

/** @brief Claims held now, of every kind (for tests and logs). */
size_t provision_claims_count(struct provision_claims *c);

#endif
