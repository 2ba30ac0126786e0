/* fake_fly_proc.h - the fake fly Machines API (tests/fakes/fake_fly.py) as
 * a child process of a Criterion test, and its /_fake control API.
 *
 * The fake runs with --stdin-eof on a pipe this process holds, so it also
 * exits when the test dies. Its token comes through the environment
 * (FAKE_FLY_TOKEN), as tests/harness/flyfake.py passes it. Every helper
 * fails the running test through Criterion, so callers check nothing.
 */
#ifndef THOPTER_FAKE_FLY_PROC_H
#define THOPTER_FAKE_FLY_PROC_H

#include <cjson/cJSON.h>
#include <sys/types.h>

#define FAKE_FLY_APP   "thopters"
#define FAKE_FLY_TOKEN "test-token"

struct fake_fly {
        pid_t pid;
        int stdin_fd;
        int port;
        char base_url[64]; /* http://127.0.0.1:PORT, what fly_client takes */
};

/** @brief Start the fake with @p config_json (optional: its --config). */
void fake_fly_start(struct fake_fly *ff, const char *config_json);

/** @brief Close its stdin, wait for it to exit. */
void fake_fly_stop(struct fake_fly *ff);

/**
 * @brief A control call: @p method on @p path (/_fake/...) with the JSON
 * @p body (optional). @returns the answer's JSON (cJSON_Delete() it); the
 * test fails on a status other than 200.
 */
cJSON *fake_fly_control(struct fake_fly *ff,
                        const char *method,
                        const char *path,
                        const char *body);

/** @brief fake_fly_control() whose answer is not needed. */
void fake_fly_post(struct fake_fly *ff, const char *path, const char *body);

/** @brief The /v1 calls the fake received, in order: GET /_fake/calls. */
cJSON *fake_fly_calls(struct fake_fly *ff);

/**
 * @brief The calls of @p calls as "METHOD route" lines joined by ',' into
 * @p out ("GET machines.get,DELETE machines.delete").
 */
void fake_fly_call_list(const cJSON *calls, char *out, size_t cap);

/* ---- what a flow test does with the fake ------------------------------ */

struct fly_client;

/** @brief A fly client for the fake (its URL, app and token, a 5 s timeout
 * scaled by test_ms()). Free with fly_client_destroy(). */
struct fly_client *fake_fly_client(struct fake_fly *ff);

/** @brief Seed the fake with the machine @p id named @p name in @p state. */
void fake_fly_seed_machine(struct fake_fly *ff,
                           const char *id,
                           const char *name,
                           const char *state);

/** @brief Expect fake_fly_call_list() of the calls so far to be @p want. */
void fake_fly_expect_calls(struct fake_fly *ff, const char *want);

#endif
