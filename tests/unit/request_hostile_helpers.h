/* request_hostile_helpers.h - what tests/unit/test_request_hostile*.c share:
 * valid requests as cJSON trees to spoil one field at a time, their payload
 * text, and the promises of request.h about any failure.
 */
#ifndef THOPTER_REQUEST_HOSTILE_HELPERS_H
#define THOPTER_REQUEST_HOSTILE_HELPERS_H

#include "err.h"

#include <cjson/cJSON.h>

#include <stddef.h>

#define TID "148e21a3c96989"

/* Stands for a \u0000 escape in a value: cJSON strings cannot hold NUL, so
 * the printed text gets the escape in its place. */
#define NUL_MARK "@NULL@" /* as long as the escape: replaced in place */

enum kind { PROVISION, DESTROY };

/** @brief A valid provision: every optional github field present, one
 * comment. */
cJSON *base_provision(void);

/** @brief A valid destroy of TID. */
cJSON *base_destroy(void);

/** @brief Replaces the member at dotted @p path ("github.comments.0.body")
 * with a string of @p value. */
void set_string(cJSON *root, const char *path, const char *value);

/** @brief The payload text of @p root, NUL_MARK replaced by \u0000; frees
 * @p root. cJSON_free() the text. */
char *payload(cJSON *root, size_t *len);

/** @brief Parses as @p kind with @p err cleared first; returns 0 or -1; the
 * request is freed. */
int parse_as(enum kind kind, const char *text, size_t len, struct err *err);

/** @brief The promises of request.h about any failure: permanent, an
 * invalid request, at @p step, the message one line starting with
 * @p prefix. @p what names the case. */
void expect_invalid(const struct err *err,
                    const char *step,
                    const char *prefix,
                    const char *what);

#endif
