/* fly_json.h - Machines API JSON <-> the structs of fly_model.h.
 *
 * Pure mapping over cJSON: no I/O, no HTTP. Every parser takes the response
 * body and its length (it need not be NUL-terminated) and fails with
 * ERR_PERMANENT, code 0, on a body that is not what the API documents
 * (reference fly-machines-api.md sections 3, 4 and 7). Messages name the
 * field but never quote the body; the caller adds layer and object.
 *
 * A string field that is absent or null becomes "". A string field of another
 * type, or too long for its buffer, is an error: a truncated id would name
 * another machine.
 *
 * @locality any thread.
 *
 * Callers: fly_client.c; provision_fly.c (machine states); tests and
 * fuzzers.
 */
#ifndef THOPTER_FLY_JSON_H
#define THOPTER_FLY_JSON_H

#include "err.h"
#include "fly_model.h"

#include <stdbool.h>
#include <stddef.h>

/*
 * Memory caps. The response body is at most 4 MiB (http.h), but a body of
 * tiny values makes a cJSON tree about 30 times its size, and a list sized
 * by its element count cost sizeof(struct fly_machine) (896 bytes) for each
 * "{}" of two bytes: a 4 MiB list reached 412 MiB. So every parser refuses a
 * body with more than FLY_JSON_VALUES_MAX JSON values before cJSON allocates
 * (about 64 bytes a value: at most ~20 MiB of tree), and a list with more
 * than FLY_JSON_LIST_MAX elements; lists keep only the elements they return.
 * A real Machine object is about 100 values, and an app holds tens of
 * thopters. Over a cap is ERR_PERMANENT: a list cut short would make the
 * caller create a duplicate.
 */
#define FLY_JSON_VALUES_MAX 262144
#define FLY_JSON_LIST_MAX   4096

/** @brief One Machine object (create/get response). "id" is required. */
int fly_json_machine_parse(const char *body,
                           size_t len,
                           struct fly_machine *out,
                           struct err *err);

/**
 * @brief A list response (a JSON array of Machines). Machines in state
 * "destroyed" or "destroying" are left out (fly-go's ListActive) unless
 * @p include_deleted.
 * @param out receives a malloc'd array to free(), NULL when *n is 0.
 * One malformed element fails the whole list: a list that silently lost a
 * machine would make the caller create a duplicate.
 */
int fly_json_machines_parse(const char *body,
                            size_t len,
                            bool include_deleted,
                            struct fly_machine **out,
                            size_t *n,
                            struct err *err);

/** @brief One Volume object. "id" is required; size_gb absent is 0. */
int fly_json_volume_parse(const char *body,
                          size_t len,
                          struct fly_volume *out,
                          struct err *err);

/**
 * @brief A JSON array of Volumes, leaving out those on the destroy path
 * (scheduling_destroy, fork_cleanup, waiting_for_detach, pending_destroy,
 * destroying, destroyed), as fly-go's GetVolumes does.
 * @param out receives a malloc'd array to free(), NULL when *n is 0.
 */
int fly_json_volumes_parse(const char *body,
                           size_t len,
                           struct fly_volume **out,
                           size_t *n,
                           struct err *err);

/** @brief true unless @p state is "destroyed" or "destroying". */
bool fly_json_machine_state_active(const char *state);

/**
 * @brief The CreateMachineRequest body for @p spec:
 * {"name","region","config":{"image","env","guest":{cpu_kind,cpus,
 * memory_mb},"metadata","mounts":[{"volume","path"}],
 * "files":[{"guest_path","raw_value"}],"restart":{"policy":"no"},
 * "auto_destroy":false}}.
 * NULL/0 members of @p spec are left out; image is required.
 *
 * restart.policy "no": the API default is on-failure (up to 10 restarts),
 * and a restart resets the root filesystem and kills the agent's tmux
 * session, so a restarted thopter would report "started" while being
 * neither set up nor running its agent. With "no" a crashed thopter rests in
 * "stopped", which the consumer and a human can see, and the destroy flow
 * handles from there. auto_destroy false: a thopter's machine (and its
 * volume) outlives its process until a destroy request says otherwise.
 * @returns a malloc'd string to free(), or NULL (see @p err).
 */
char *fly_json_create_body(const struct fly_create_spec *spec, struct err *err);

/** @brief The body of a metadata update: {"value": @p value}. */
char *fly_json_metadata_body(const char *value, struct err *err);

/**
 * @brief The CreateVolumeRequest body {"name","size_gb","region"};
 * @p region optional, @p size_gb <= 0 left out (API default 3).
 * @returns a malloc'd string to free(), or NULL (see @p err).
 */
char *fly_json_volume_create_body(const char *name,
                                  int size_gb,
                                  const char *region,
                                  struct err *err);

/**
 * @brief The server's error text for a non-2xx body, for messages: the
 * "error" member (or "message"), followed by " (status)" when the body has a
 * "status" code such as insufficient_capacity. A body that is not JSON is
 * used as text. Control characters become spaces; the result is cut to
 * @p cap - 1 bytes; "" when there is nothing to say.
 */
void fly_json_error_text(const char *body, size_t len, char *buf, size_t cap);

/**
 * @brief What a non-2xx answer means for a caller that must decide
 * (reference section 7): ERR_CAUSE_NO_CAPACITY for fly's capacity errors
 * (status insufficient_capacity, or the texts fly uses: "insufficient
 * resources|memory|CPUs", "no capacity", "could not reserve resource",
 * "deploys to this host are temporarily disabled", a region quota);
 * ERR_CAUSE_VOLUME_CLAIMED for a 412 "already claimed"; ERR_CAUSE_OTHER
 * otherwise. @p text is fly_json_error_text()'s.
 */
enum err_cause fly_json_error_cause(long status, const char *text);

#endif
