/* request.h - Kafka payload -> validated request (contract section 2).
 *
 * cJSON only, no I/O. Unknown fields are ignored; known fields are strictly
 * typed. A failure is ERR_PERMANENT with class ERRC_INVALID_REQUEST and step
 * "parse" (not JSON, or not an object) or "validate" (breaks section 2); the
 * message names the field, e.g. "thopterId: must be 14 lowercase hex
 * characters".
 *
 * Beyond the JSON Schemas of schemas/ (which say the same field rules), the
 * payload must be at most REQUEST_PAYLOAD_MAX bytes, strict RFC 8259 JSON in
 * UTF-8, with no duplicate key anywhere and no \u0000 in a string; see
 * schemas/README.md. Out of memory is ERR_TRANSIENT with class ERRC_INTERNAL.
 *
 * Callers: the handlers' prepare() (destroy.c, provision.c), thopter-send,
 * the reaper, fuzzers.
 */
#ifndef THOPTER_REQUEST_H
#define THOPTER_REQUEST_H

#include "err.h"

#include <stddef.h>

#define REQUEST_ID_MAX    128
#define REQUEST_IMAGE_MAX 256
/* The largest payload accepted, in bytes (see schemas/README.md). */
#define REQUEST_PAYLOAD_MAX (512 * 1024)

struct destroy_request {
        char request_id[REQUEST_ID_MAX + 1]; /* "" when absent */
        char thopter_id[15];
        char *reason; /* NULL when absent */
};

struct provision_request {
        char request_id[REQUEST_ID_MAX + 1];
        char repository[204]; /* owner/name */
        char owner[101];
        char repo_name[101];
        char issue_number[11];             /* digits, as a string */
        char gc[41];                       /* default "default" */
        char prompt[65];                   /* default "default" */
        char image[REQUEST_IMAGE_MAX + 1]; /* "" = THOPTER_IMAGE */
        char *issue_title;
        char *issue_body;
        char *issue_url;              /* NULL when absent */
        char *issue_author;           /* NULL when absent */
        char *mention_author;         /* NULL when absent */
        char *mention_location;       /* NULL when absent */
        long long mention_comment_id; /* 0 when absent */
        char *comments_json; /* the github.comments array as JSON, or NULL */
        char *github_json;   /* the whole github object as JSON */
};

/** @brief Parse and validate a destroy request. Free with _free(). */
int request_parse_destroy(const void *buf,
                          size_t len,
                          struct destroy_request *out,
                          struct err *err);
void request_destroy_free(struct destroy_request *req);

/** @brief Parse and validate a provision request. Free with _free(). */
int request_parse_provision(const void *buf,
                            size_t len,
                            struct provision_request *out,
                            struct err *err);
void request_provision_free(struct provision_request *req);

/**
 * @brief Best-effort requestId of a record that failed validation: the
 * value's "requestId" when it is a valid id; @p out is left unchanged
 * otherwise (a tombstone, not JSON, no such field).
 */
void request_peek_id(const void *buf, size_t len, char *out, size_t cap);

/** @brief true when @p s is 1-128 chars of [A-Za-z0-9._:-]. */
int request_id_is_valid(const char *s);
/** @brief true when @p s is a fly machine id: 14 lowercase hex chars. */
int request_thopter_id_is_valid(const char *s);

/**
 * @brief true when @p image starts with one of @p prefixes (a comma-separated
 * list, THOPTER_IMAGE_PREFIXES) at a reference boundary: the prefix ends in
 * '/' or ':', or the image goes on with '/', ':' or '@' after it. So
 * "registry.fly.io/app" allows "registry.fly.io/app:tag" and
 * "registry.fly.io/app@sha256:...", never "registry.fly.io/app-evil".
 * @param prefixes optional: NULL or "" is the app's own registry path,
 * "registry.fly.io/" @p app_name.
 */
int request_image_is_allowed(const char *image,
                             const char *prefixes,
                             const char *app_name);

#endif
