/* fuzz_json_strict.c - libFuzzer target over json_strict.c alone.
 *
 * Every input goes to json_strict_scan() from a buffer of exactly its size.
 * It may not crash, read past the end, leak or hang, and:
 *
 *  - the result is 0 with no reason, or -1 with a reason and an offset
 *    inside the input; a \u0000 escape it reports is one, inside the input;
 *  - accepted text is UTF-8 throughout (outside strings only ASCII is JSON),
 *    and cJSON parses it: request.c counts on that ("only allocation can
 *    fail"), so a valid payload never turns into a transient error retried
 *    for ever;
 *  - metamorphic: accepted text stays accepted inside whitespace, with its
 *    \u0000 offset moved by the whitespace before it, and text followed by
 *    " ," is refused with "more after the JSON value" at that comma;
 *  - on what cJSON built, json_strict_duplicate() agrees with a plain
 *    quadratic reference search, written apart from json_strict.c, on
 *    whether some object holds a key twice.
 *
 * Build and run: tests/fuzz/run-fuzz.sh (see tests/fuzz/README.md).
 */
#include "json_strict.h"
#include "fuzz_common.h"

#include <cjson/cJSON.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reference checks (deliberately not json_strict.c's own helpers) ---- */

/* 1 when some object at or below @p item has two members of one name:
 * every pair compared, no sorting. */
static int ref_has_duplicate(const cJSON *item) {
        for (const cJSON *a = item->child; a; a = a->next) {
                if (cJSON_IsObject(item))
                        for (const cJSON *b = a->next; b; b = b->next)
                                if (strcmp(a->string, b->string) == 0)
                                        return 1;
                if (ref_has_duplicate(a))
                        return 1;
        }
        return 0;
}

/* A malloc'd copy of @p data with @p pre before it and @p post after it,
 * of exactly that size (no terminator: ASan sees any over-read). */
static unsigned char *wrap(const uint8_t *data,
                           size_t size,
                           const char *pre,
                           const char *post,
                           size_t *len) {
        size_t a = strlen(pre), b = strlen(post);
        unsigned char *buf = malloc(a + size + b);

        CHECK(buf);
        memcpy(buf, pre, a);
        if (size)
                memcpy(buf + a, data, size);
        memcpy(buf + a + size, post, b);
        *len = a + size + b;
        return buf;
}

static void check_wrapped(const uint8_t *data,
                          size_t size,
                          const struct json_strict_result *r) {
        struct json_strict_result w;
        unsigned char *buf;
        size_t len;

        buf = wrap(data, size, " \n\t\r", "\r\n ", &len);
        CHECK(json_strict_scan(buf, len, &w) == 0);
        CHECK(r->nul_at == SIZE_MAX ? w.nul_at == SIZE_MAX
                                    : w.nul_at == r->nul_at + 4);
        free(buf);

        buf = wrap(data, size, "", " ,", &len);
        CHECK(json_strict_scan(buf, len, &w) == -1);
        CHECK(strcmp(w.why, "more after the JSON value") == 0);
        CHECK(w.at == size + 1);
        free(buf);
}

static void check_tree(const uint8_t *data, size_t size) {
        char path[JSON_STRICT_PATH_MAX];
        char *text = malloc(size + 1);
        cJSON *root;
        int dup;

        CHECK(text);
        memcpy(text, data, size);
        text[size] = '\0';
        root = cJSON_ParseWithOpts(text, NULL, 1);
        free(text);
        /* Accepted text has no NUL byte, so the copy is the whole text. */
        CHECK(root != NULL);
        path[0] = '\0';
        dup = json_strict_duplicate(root, path, sizeof(path));
        CHECK(dup == 0 || dup == 1); /* -1 is out of memory only */
        CHECK(dup == ref_has_duplicate(root));
        CHECK(dup == 1 || path[0] == '\0');
        CHECK(strlen(path) < sizeof(path));
        cJSON_Delete(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct json_strict_result r;
        int rc = json_strict_scan(data, size, &r);

        CHECK(rc == 0 || rc == -1);
        CHECK(r.nul_at == SIZE_MAX ||
              (r.nul_at + 6 <= size &&
               memcmp(data + r.nul_at, "\\u0000", 6) == 0));
        if (rc == -1) {
                CHECK(r.why && *r.why);
                CHECK(r.at <= size);
                return 0;
        }
        CHECK(r.why == NULL);
        CHECK(fuzz_utf8_ok(data, size));
        CHECK(memchr(data, '\0', size) == NULL);
        check_wrapped(data, size, &r);
        check_tree(data, size);
        return 0;
}
