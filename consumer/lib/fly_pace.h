/* fly_pace.h - keep app-scoped fly calls under fly's published rate limit.
 *
 * fly limits Machines API actions per action and per identifier: an action
 * on a machine is counted against that machine, one without a machine
 * (listing the app's machines or volumes, creating a machine or a volume)
 * against the app, at 1 request per second with bursts of 3 (fly docs,
 * "Machines API rate limits"). Each consumer's destroys and provisions act
 * on machines of their own, so only the app-scoped actions are shared, and
 * with several provisions in flight (MAX_CONCURRENT_PROVISIONS) they would
 * meet 429s. A pacer holds one token bucket per such action and makes a
 * caller wait for its token before sending: calls queue in the order they
 * asked, and 429s stay for what we cannot see (other clients of the app).
 *
 * @locality any thread: one lock, held only to take a token; the wait
 * happens outside it.
 */
#ifndef THOPTER_FLY_PACE_H
#define THOPTER_FLY_PACE_H

#include <stdint.h>

struct fly_pace;

/**
 * @brief A pacer allowing @p rate calls per second per action, with bursts
 * of @p burst.
 * @returns the pacer, or NULL when out of memory.
 */
struct fly_pace *fly_pace_new(double rate, double burst);
void fly_pace_free(struct fly_pace *p); /* NULL: no-op */

/** @brief Non-zero when @p route (a fly_client route label such as
 * "machines.list") is scoped to the app, and so paced. */
int fly_pace_is_app_scoped(const char *route);

/**
 * @brief Take a token for @p route at monotonic time @p now_ms.
 * @returns how long the caller must wait before sending, in ms (0: now).
 * Routes that are not app-scoped are never paced (0).
 */
int64_t fly_pace_take(struct fly_pace *p, const char *route, int64_t now_ms);

#endif
