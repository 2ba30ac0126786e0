/* fly_client.h - the fly.io Machines API (REST over libcurl, JSON via cJSON).
 *
 * Each call is ONE attempt: it classifies the outcome into struct err (408,
 * 429, 5xx and connection errors are ERR_TRANSIENT; other 4xx and bad bodies
 * are ERR_PERMANENT; err->code is the HTTP status, or 0 for a transport
 * failure; err->retry_after_ms is set from a Retry-After header; err->cause
 * is ERR_CAUSE_NO_CAPACITY or ERR_CAUSE_VOLUME_CLAIMED for those answers).
 * Retrying, backoff and the circuit breaker belong to the caller
 * (fly_retry.h).
 *
 * The token never appears in an error message or a log line.
 *
 * @locality any thread: a client may be shared by every worker thread; it
 * keeps a pool of libcurl handles so that connections are reused.
 *
 * Callers: the flows (destroy.c, provision_*.c) through fly_retry_call();
 * consumer.c (the breaker's probe); the reaper.
 */
#ifndef THOPTER_FLY_CLIENT_H
#define THOPTER_FLY_CLIENT_H

#include "err.h"
#include "fly_model.h"

#include <stdbool.h>
#include <stddef.h>

struct fly_client;

struct fly_client_opts {
        const char *base_url; /* e.g. https://api.machines.dev (no /v1) */
        const char *app;
        const char *token; /* FLY_DEPLOY_KEY as configured */
        long timeout_ms;   /* per HTTP request; 0 = 30000 */
        const char *proxy; /* optional: THOPTER_FLY_PROXY (http_set_proxy) */
        int pacing; /* THOPTER_FLY_PACING: app-scoped calls paced (fly_pace.h)
                     */
};

/**
 * @brief The Authorization header value for @p token (contract section 7):
 * kept as is when it starts with "FlyV1 " or "Bearer "; "FlyV1 <t>" when it
 * starts with fm1, fm2 or m2.; "Bearer <t>" otherwise.
 * @returns a malloc'd string, or NULL on OOM.
 */
char *fly_auth_header(const char *token);

struct fly_client *fly_client_new(const struct fly_client_opts *opts,
                                  struct err *err);
void fly_client_destroy(struct fly_client *fly); /* NULL is a no-op */

/** @brief GET /v1/apps/{app}/machines/{id}. 404: -1 with err->code 404. */
int fly_machine_get(struct fly_client *fly,
                    const char *id,
                    struct fly_machine *out,
                    struct err *err);

/* What fly_machine_list() asks for. */
struct fly_list_opts {
        const char *meta_key; /* optional: ?metadata.KEY=VALUE */
        const char *meta_value;
        bool include_deleted; /* also machines destroying or destroyed (as
                                 long as fly still lists them) */
};

/**
 * @brief GET /v1/apps/{app}/machines.
 * @param opts optional (NULL: every live machine).
 * @param out receives a malloc'd array of *n machines; free() it.
 * Machines in state destroyed or destroying are left out unless
 * opts->include_deleted.
 */
int fly_machine_list(struct fly_client *fly,
                     const struct fly_list_opts *opts,
                     struct fly_machine **out,
                     size_t *n,
                     struct err *err);

/* fly_machine_list() as a step for fly_retry_call(): each attempt frees
 * what the one before listed; the caller frees machines at the end. */
struct fly_list_call {
        struct fly_client *fly;
        struct fly_list_opts opts;
        struct fly_machine *machines;
        size_t n;
};
int fly_list_call_run(void *call, struct err *err);

/** @brief POST /v1/apps/{app}/machines/{id}/metadata/{key} {"value"}. */
int fly_machine_set_metadata(struct fly_client *fly,
                             const char *id,
                             const char *key,
                             const char *value,
                             struct err *err);

/** @brief POST /v1/apps/{app}/machines/{id}/stop. */
int fly_machine_stop(struct fly_client *fly, const char *id, struct err *err);

/**
 * @brief DELETE /v1/apps/{app}/machines/{id}[?force=true].
 * 404 is -1 with err->code 404: callers that treat "gone" as done check it.
 */
int fly_machine_delete(struct fly_client *fly,
                       const char *id,
                       bool force,
                       struct err *err);

/** @brief POST /v1/apps/{app}/machines; fills @p out from the response. */
int fly_machine_create(struct fly_client *fly,
                       const struct fly_create_spec *spec,
                       struct fly_machine *out,
                       struct err *err);

/**
 * @brief GET /v1/apps/{app}/machines/{id}/wait?state=S&timeout=T.
 * @param instance_id optional; sent as instance_id= when set.
 * @param timeout_s clamped to [1, 60]. A 408 is ERR_TRANSIENT, code 408.
 */
int fly_machine_wait(struct fly_client *fly,
                     const char *id,
                     const char *state,
                     const char *instance_id,
                     int timeout_s,
                     struct err *err);

/** @brief GET /v1/apps/{app}/volumes; malloc'd array in *out. */
int fly_volume_list(struct fly_client *fly,
                    struct fly_volume **out,
                    size_t *n,
                    struct err *err);

/** @brief POST /v1/apps/{app}/volumes {name, size_gb, region}. */
int fly_volume_create(struct fly_client *fly,
                      const char *name,
                      int size_gb,
                      const char *region,
                      struct fly_volume *out,
                      struct err *err);

#endif
