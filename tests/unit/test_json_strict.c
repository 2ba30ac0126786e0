/* test_json_strict.c - json_strict.c on its own: what the scan accepts and
 * refuses (with the phrase and the byte offset), where it finds the first
 * \u0000 escape, and the path of the first duplicate key.
 *
 * test_request.c and test_request_hostile.c pin the same rules through
 * request.c's messages ("payload: not JSON: ... at byte N"); these cases name
 * the module's contract directly. tests/fuzz/fuzz_json_strict.c goes on from
 * here at random.
 */
#include "json_strict.h"
#include "test_helpers.h"

#include <criterion/criterion.h>
#include <cjson/cJSON.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Scans @p len bytes of @p text from a buffer of exactly that size. */
static int scan(const char *text, size_t len, struct json_strict_result *r) {
        char *buf = test_payload(text, len);
        int rc = json_strict_scan(buf, len, r);

        free(buf);
        return rc;
}

struct scan_case {
        const char *text;
        const char *why; /* NULL: accepted */
        size_t at;
};

Test(json_strict, scan_table) {
        static const struct scan_case cases[] = {
            {"{}", NULL, 0},
            {" [1, -0.5e+3, \"x\", true, false, null] ", NULL, 0},
            {"\"\\ud83d\\ude80 \xc3\xa9\xf0\x9f\x9a\x80\"", NULL, 0},
            {"0", NULL, 0},
            {"", "unexpected end", 0},
            {"   ", "unexpected end", 3},
            {"01", "number with a leading zero", 1},
            {"+1", "unexpected character", 0},
            {"1.", "invalid number", 2},
            {"1e", "invalid number", 2},
            {"-", "invalid number", 1},
            {"tru", "unexpected character", 0},
            {"{\"a\" 1}", "expected ':'", 5},
            {"{1:1}", "expected a member name", 1},
            {"[1 2]", "expected ',' or ']'", 3},
            {"{\"a\":1,}", "expected a member name", 7},
            {"\"a\tb\"", "unescaped control character in a string", 2},
            {"\"\\x\"", "invalid escape in a string", 2},
            {"\"\\u12g4\"", "invalid \\u escape in a string", 3},
            {"\"\\udc00\"", "unpaired surrogate escape in a string", 1},
            {"\"\\ud800x\"", "unpaired surrogate escape in a string", 1},
            {"\"\\ud800\\u0041\"", "unpaired surrogate escape in a string", 1},
            {"\"\xc0\xaf\"", "not valid UTF-8", 1},         /* overlong */
            {"\"\xed\xa0\x80\"", "not valid UTF-8", 1},     /* a surrogate */
            {"\"\xf4\x90\x80\x80\"", "not valid UTF-8", 1}, /* > U+10FFFF */
            {"\"\xe2\x82\"", "not valid UTF-8", 1},         /* cut short */
            {"\xef\xbb\xbf{}", "unexpected character", 0},  /* a BOM */
            {"\"abc", "unterminated string", 4},
            {"{} {}", "more after the JSON value", 3},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const struct scan_case *c = &cases[i];
                struct json_strict_result r;
                int rc = scan(c->text, strlen(c->text), &r);

                if (!c->why) {
                        cr_expect_eq(rc, 0, "%s: %s at %zu", c->text, r.why,
                                     r.at);
                        cr_expect_null(r.why, "%s", c->text);
                        continue;
                }
                cr_expect_eq(rc, -1, "%s: accepted", c->text);
                cr_expect(r.why && strcmp(r.why, c->why) == 0,
                          "%s: \"%s\", not \"%s\"", c->text,
                          r.why ? r.why : "(null)", c->why);
                cr_expect_eq(r.at, c->at, "%s: at %zu, not %zu", c->text, r.at,
                             c->at);
        }
}

Test(json_strict, a_nul_byte_is_refused_where_it_is) {
        struct json_strict_result r;

        cr_expect_eq(scan("[\"a\0\"]", 6, &r), -1);
        cr_expect_str_eq(r.why, "unescaped control character in a string");
        cr_expect_eq(r.at, 3);
}

Test(json_strict, nesting_stops_at_64_levels) {
        struct json_strict_result r;
        char *ok = malloc(2 * JSON_STRICT_DEPTH_MAX + 3);
        size_t n = 0;

        cr_assert(ok);
        for (int i = 0; i < JSON_STRICT_DEPTH_MAX; i++)
                ok[n++] = '[';
        for (int i = 0; i < JSON_STRICT_DEPTH_MAX; i++)
                ok[n++] = ']';
        cr_expect_eq(scan(ok, n, &r), 0, "64 levels: %s", r.why);

        memmove(ok + 1, ok, n);
        ok[0] = '[';
        ok[n + 1] = ']';
        cr_expect_eq(scan(ok, n + 2, &r), -1);
        cr_expect_str_eq(r.why, "nested deeper than 64 levels");
        cr_expect_eq(r.at, JSON_STRICT_DEPTH_MAX);
        free(ok);
}

Test(json_strict, first_nul_escape_is_reported_but_valid) {
        static const char text[] = "{\"a\":\"x\\u0000\",\"b\":\"\\u0000\"}";
        struct json_strict_result r;

        cr_expect_eq(scan(text, strlen(text), &r), 0);
        cr_expect_eq(r.nul_at, 7); /* the backslash */
        cr_expect_eq(scan("\"\\u0001\"", 8, &r), 0);
        cr_expect_eq(r.nul_at, SIZE_MAX);
}

Test(json_strict, no_buffer_is_an_empty_one) {
        struct json_strict_result r;

        cr_expect_eq(json_strict_scan(NULL, 0, &r), -1);
        cr_expect_str_eq(r.why, "unexpected end");
        cr_expect_eq(r.at, 0);
}

struct dup_case {
        const char *text;
        int rc;
        const char *path;
};

Test(json_strict, duplicate_table) {
        static const struct dup_case cases[] = {
            {"{\"a\":1,\"b\":2}", 0, ""},
            {"[{\"a\":1},{\"a\":1}]", 0, ""},
            {"{\"a\":{\"a\":1}}", 0, ""},
            {"{\"a\":1,\"A\":2}", 0, ""},
            {"{\"b\":1,\"a\":2,\"b\":3}", 1, "b"},
            {"{\"x\":{\"y\":[0,{\"k\":1,\"k\":2}]}}", 1, "x.y[1].k"},
            {"[[{\"q\":1,\"q\":1}]]", 1, "[0][0].q"},
            /* an object's own keys before its members', then members in order
             */
            {"{\"a\":{\"z\":1,\"z\":2},\"b\":1,\"b\":2}", 1, "b"},
            {"{\"a\":{\"z\":1,\"z\":2},\"b\":{\"y\":1,\"y\":2}}", 1, "a.z"},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const struct dup_case *c = &cases[i];
                cJSON *root = cJSON_Parse(c->text);
                char path[JSON_STRICT_PATH_MAX] = "";

                cr_assert(root, "%s", c->text);
                cr_expect_eq(json_strict_duplicate(root, path, sizeof(path)),
                             c->rc, "%s", c->text);
                cr_expect_str_eq(path, c->path, "%s", c->text);
                cJSON_Delete(root);
        }
}

Test(json_strict, duplicate_path_is_cut_to_the_buffer) {
        cJSON *root = cJSON_Parse("{\"abcdef\":{\"k\":1,\"k\":2}}");
        char path[5];

        cr_assert(root);
        cr_expect_eq(json_strict_duplicate(root, path, sizeof(path)), 1);
        cr_expect_str_eq(path, "abcd");
        cJSON_Delete(root);
}
