/* json_strict.h - the JSON that every parser reads the same way: the checks
 * cJSON leaves out and a JSON Schema validator (behind JavaScript's
 * JSON.parse) does not.
 *
 * cJSON takes "01", "+1", raw control characters in strings and bytes that
 * are not UTF-8, and keeps the first of two equal keys where JavaScript keeps
 * the last. A message that means two things to two parsers is to be refused,
 * not guessed at, so:
 *
 *  - json_strict_scan(), before cJSON sees the bytes: the RFC 8259 grammar,
 *    UTF-8 (RFC 8259 section 8.1), surrogate escapes in pairs (RFC 7493
 *    I-JSON 2.1), at most JSON_STRICT_DEPTH_MAX levels of nesting;
 *  - json_strict_duplicate(), on the tree cJSON built: no key twice in one
 *    object, anywhere (I-JSON 2.3 "MUST be unique").
 *
 * What a caller makes of a failure (its messages, its error class) is the
 * caller's. No I/O; the scan allocates nothing. @locality any thread.
 * Callers: request.c, tests/fuzz/fuzz_json_strict.c.
 */
#ifndef THOPTER_JSON_STRICT_H
#define THOPTER_JSON_STRICT_H

#include <stddef.h>

struct cJSON;

#define JSON_STRICT_DEPTH_MAX 64
/* A path of json_strict_duplicate() is cut at JSON_STRICT_PATH_MAX - 1. */
#define JSON_STRICT_PATH_MAX 256

struct json_strict_result {
        const char *why; /* NULL when valid; else a static phrase such as
                            "number with a leading zero" */
        size_t at;       /* on failure, the byte offset the scan stopped at */
        size_t nul_at;   /* offset of the first \u0000 escape, or SIZE_MAX:
                            valid JSON, but cJSON would end the string there */
};

/**
 * @brief Check that the @p len bytes at @p buf (no terminator needed) are one
 * JSON value, with optional whitespace around it, by the rules above.
 * @returns 0 (valid: out->why is NULL), or -1 with out->why and out->at set;
 * out->nul_at is set either way, for the part scanned.
 */
int json_strict_scan(const void *buf,
                     size_t len,
                     struct json_strict_result *out);

/**
 * @brief Look for a key that appears twice in one object of @p root's tree.
 * @returns 0 when there is none; 1 with the path of the first one found in
 * @p path ("key", "a.b", "a.list[2].key"; cut to @p cap); -1 out of memory.
 */
int json_strict_duplicate(const struct cJSON *root, char *path, size_t cap);

#endif
