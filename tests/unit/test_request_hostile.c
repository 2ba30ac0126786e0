/* test_request_hostile.c - request.c against payloads written to hurt:
 * every string field at and past its cap, the 512 KiB payload cap on a
 * provision, malformed UTF-8 in every string field, nesting far past the
 * 64-level limit, duplicate keys at several depths, and what such a payload
 * can put into the error message. test_request_hostile_shell.c has the shell
 * metacharacters in every field; request_hostile_helpers.h the requests both
 * spoil.
 *
 * test_request.c already pins the exact boundaries of issueTitle, issueBody,
 * the destroy payload cap and 64/65 levels of arrays; the cases here are the
 * rest. tests/fuzz/fuzz_request.c goes on from these shapes at random.
 */
#include "request.h"
#include "request_hostile_helpers.h"
#include "test_helpers.h"

#include <criterion/criterion.h>
#include <cjson/cJSON.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Oversized values */

struct size_case {
        enum kind kind;
        const char *path;
        const char *unit;  /* repeated to make the value */
        const char *pre;   /* before the repeated part */
        const char *post;  /* after it */
        size_t cap;        /* repetitions at the cap: accepted */
        const char *field; /* the message of cap + 1 starts with it */
};

Test(request_hostile, every_capped_field_at_and_past_its_cap) {
        static const struct size_case cases[] = {
            {PROVISION, "requestId", "a", "", "", 128, "requestId:"},
            {PROVISION, "requestId", "Z", "x:", "", 126, "requestId:"},
            {PROVISION, "repository", "o", "", "/name", 100, "repository:"},
            {PROVISION, "repository", "n", "owner/", "", 100, "repository:"},
            {PROVISION, "github.issueNumber", "9", "", "", 10,
             "github.issueNumber:"},
            {PROVISION, "gc", "g", "", "", 40, "gc:"},
            {PROVISION, "gc", "-", "a", "", 39, "gc:"},
            {PROVISION, "prompt", "p", "", "", 64, "prompt:"},
            {PROVISION, "prompt", "_", "a", "", 63, "prompt:"},
            {DESTROY, "thopterId", "a", "", "", 14, "thopterId:"},
            {DESTROY, "requestId", "-", "", "", 128, "requestId:"},
            {DESTROY, "reason", "r", "", "", 1024, "reason:"},
            {DESTROY, "reason", "\xe6\x97\xa5", "r", "", 341, "reason:"},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const struct size_case *c = &cases[i];

                for (size_t extra = 0; extra <= 1; extra++) {
                        cJSON *root = c->kind == PROVISION ? base_provision()
                                                           : base_destroy();
                        char *mid = test_repeat(c->unit, c->cap + extra),
                             *value, *text;
                        size_t vlen = strlen(c->pre) + strlen(mid) +
                                      strlen(c->post) + 1,
                               len;
                        struct err err = {0};
                        int rc;

                        value = malloc(vlen);
                        cr_assert(value);
                        snprintf(value, vlen, "%s%s%s", c->pre, mid, c->post);
                        set_string(root, c->path, value);
                        text = payload(root, &len);
                        rc = parse_as(c->kind, text, len, &err);
                        if (extra == 0) {
                                cr_expect_eq(rc, 0, "case %zu at cap: %s", i,
                                             err.msg);
                        } else {
                                cr_expect_eq(rc, -1, "case %zu past cap", i);
                                expect_invalid(&err, "validate", c->field,
                                               c->path);
                        }
                        cJSON_free(text);
                        free(value);
                        free(mid);
                }
        }
}

/* Fields with no cap of their own are bounded by the payload's only. */
Test(request_hostile, uncapped_fields_are_bounded_by_the_payload_cap) {
        static const struct {
                enum kind kind;
                const char *path;
        } fields[] = {
            {PROVISION, "github.issueUrl"},
            {PROVISION, "github.issueAuthor"},
            {PROVISION, "github.mentionAuthor"},
            {PROVISION, "github.comments.0.body"},
            {PROVISION, "github.comments.0.url"},
            {PROVISION, "source"},
            {DESTROY, "source"},
            {DESTROY, "createdAt"},
        };
        char *big = test_repeat("u", 500 * 1024),
             *huge = test_repeat("u", 600 * 1024);

        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
                for (int over = 0; over <= 1; over++) {
                        cJSON *root = fields[i].kind == PROVISION
                                          ? base_provision()
                                          : base_destroy();
                        struct err err = {0};
                        size_t len;
                        char *text;

                        set_string(root, fields[i].path, over ? huge : big);
                        text = payload(root, &len);
                        cr_expect_eq(parse_as(fields[i].kind, text, len, &err),
                                     over ? -1 : 0, "%s over=%d: %s",
                                     fields[i].path, over, err.msg);
                        if (over)
                                expect_invalid(&err, "validate",
                                               "payload: ", fields[i].path);
                        cJSON_free(text);
                }
        }
        free(big);
        free(huge);
}

Test(request_hostile, provision_payload_cap_is_exact) {
        cJSON *root = base_provision();
        struct provision_request req;
        struct err err = {0};
        size_t len, pad;
        char *text, *body = test_repeat("b", 256 * 1024), *filler;

        set_string(root, "github.issueBody", body);
        cJSON_AddStringToObject(root, "pad", "");
        text = payload(root, &len);
        cr_assert(len < REQUEST_PAYLOAD_MAX);
        pad = REQUEST_PAYLOAD_MAX - len;
        cJSON_free(text);

        for (size_t extra = 0; extra <= 1; extra++) {
                err_clear(&err);
                root = base_provision();
                set_string(root, "github.issueBody", body);
                filler = test_repeat("p", pad + extra);
                cJSON_AddStringToObject(root, "pad", filler);
                text = payload(root, &len);
                cr_assert_eq(len, REQUEST_PAYLOAD_MAX + extra);
                if (extra == 0) {
                        cr_expect_eq(
                            test_parse_provision(text, len, &req, &err), 0,
                            "%s", err.msg);
                        cr_expect_eq(strlen(req.issue_body), 256 * 1024);
                } else {
                        cr_expect_eq(
                            test_parse_provision(text, len, &req, &err), -1);
                        expect_invalid(&err, "validate",
                                       "payload: 524289 bytes", "cap + 1");
                }
                request_provision_free(&req);
                cJSON_free(text);
                free(filler);
        }
        free(body);
}

/* The length is checked before a byte is read: a huge claimed length with a
 * tiny buffer is refused without touching memory past it (ASan would say). */
Test(request_hostile, a_huge_length_is_refused_before_reading) {
        static const char tiny[2] = {'{', '}'};
        struct provision_request p;
        struct destroy_request d;
        struct err err = {0};

        cr_expect_eq(request_parse_provision(tiny, SIZE_MAX, &p, &err), -1);
        expect_invalid(&err, "validate", "payload: ", "SIZE_MAX");
        memset(&err, 0, sizeof(err));
        cr_expect_eq(request_parse_destroy(tiny, (size_t)1 << 40, &d, &err),
                     -1);
        expect_invalid(&err, "validate", "payload: ", "1 TiB");
        memset(&err, 0, sizeof(err));
        cr_expect_eq(request_parse_destroy(NULL, 0, &d, &err), -1);
        expect_invalid(&err, "parse", "payload: not JSON", "NULL");
}

/* ------------------------------------------------------------------------ */
/* Malformed UTF-8 */

static const struct {
        enum kind kind;
        const char *path;
} string_fields[] = {
    {PROVISION, "requestId"},
    {PROVISION, "repository"},
    {PROVISION, "github.issueNumber"},
    {PROVISION, "github.issueTitle"},
    {PROVISION, "github.issueBody"},
    {PROVISION, "github.issueUrl"},
    {PROVISION, "github.issueAuthor"},
    {PROVISION, "github.mentionAuthor"},
    {PROVISION, "github.mentionLocation"},
    {PROVISION, "github.comments.0.author"},
    {PROVISION, "github.comments.0.body"},
    {PROVISION, "github.comments.0.createdAt"},
    {PROVISION, "github.comments.0.updatedAt"},
    {PROVISION, "github.comments.0.url"},
    {PROVISION, "gc"},
    {PROVISION, "prompt"},
    {PROVISION, "source"},
    {PROVISION, "unknownField"},
    {DESTROY, "thopterId"},
    {DESTROY, "requestId"},
    {DESTROY, "reason"},
    {DESTROY, "source"},
    {DESTROY, "createdAt"},
};
#define NSTRING_FIELDS (sizeof(string_fields) / sizeof(string_fields[0]))

Test(request_hostile, malformed_utf8_in_every_string_field) {
        static const char *const bad[] = {
            "\xc0\xaf",             /* overlong '/' */
            "\xe0\x80\xae",         /* overlong '.' */
            "\xed\xa0\x80",         /* encoded surrogate U+D800 */
            "\xf4\x90\x80\x80",     /* U+110000 */
            "\xf8\x88\x80\x80\x80", /* 5-byte form */
            "\xe2\x82",             /* truncated, then the closing quote */
            "\x80",                 /* lone continuation */
            "\xfe",
            "\xff",
            "a\xc3", /* truncated 2-byte at the end */
        };

        for (size_t f = 0; f < NSTRING_FIELDS; f++) {
                for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
                        cJSON *root = string_fields[f].kind == PROVISION
                                          ? base_provision()
                                          : base_destroy();
                        struct err err = {0};
                        size_t len;
                        char *text;
                        char what[96];

                        snprintf(what, sizeof(what), "%s bad[%zu]",
                                 string_fields[f].path, b);
                        set_string(root, string_fields[f].path, bad[b]);
                        text = payload(root, &len);
                        cr_expect_eq(
                            parse_as(string_fields[f].kind, text, len, &err),
                            -1, "%s accepted", what);
                        expect_invalid(&err, "parse",
                                       "payload: not JSON: ", what);
                        cr_expect(strstr(err.msg, "not valid UTF-8"), "%s: %s",
                                  what, err.msg);
                        cJSON_free(text);
                }
        }
}

Test(request_hostile, malformed_utf8_in_a_key) {
        static const char *const texts[] = {
            "{\"thopterId\":\"" TID "\",\"\xc0\xaf\":1}",
            "{\"thopterId\":\"" TID "\",\"x\":{\"\xed\xb0\x80\":1}}",
            "{\"thopterId\xff\":\"" TID "\"}",
        };

        for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
                struct err err = {0};

                cr_expect_eq(
                    parse_as(DESTROY, texts[i], strlen(texts[i]), &err), -1);
                expect_invalid(&err, "parse", "payload: not JSON: ", "key");
        }
}

/* ------------------------------------------------------------------------ */
/* Nesting */

struct nest_case {
        const char *open, *close; /* one level */
        size_t levels;            /* below the root object */
        int closed;               /* 0: the text just stops */
        const char *step;         /* NULL: accepted */
};

Test(request_hostile, deep_nesting_does_not_blow_the_stack) {
        static const struct nest_case cases[] = {
            {"{\"a\":", "}", 63, 1, NULL}, /* 64 levels in all */
            {"{\"a\":", "}", 64, 1, "parse"},
            {"[", "]", 10000, 0, "parse"},
            {"[", "]", 10000, 1, "parse"},
            {"{\"a\":", "}", 10000, 1, "parse"},
            {"[{\"a\":", "}]", 5000, 1, "parse"},
            {"[", "]", 500000, 0, "parse"}, /* about the payload cap */
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const struct nest_case *c = &cases[i];
                const char *head = "{\"thopterId\":\"" TID "\",\"x\":";
                char *open = test_repeat(c->open, c->levels),
                     *close = test_repeat(c->close, c->levels), *text;
                size_t n = strlen(head) + strlen(open) + strlen(close) + 8;
                struct err err = {0};

                text = malloc(n);
                cr_assert(text);
                snprintf(text, n, "%s%s0%s}", head, open,
                         c->closed ? close : "");
                cr_expect_eq(parse_as(DESTROY, text, strlen(text), &err),
                             c->step ? -1 : 0, "case %zu: %s", i, err.msg);
                if (c->step) {
                        expect_invalid(&err, c->step,
                                       "payload: not JSON: ", "nesting");
                        cr_expect(strstr(err.msg, "nested deeper than 64"),
                                  "case %zu: %s", i, err.msg);
                }
                free(text);
                free(open);
                free(close);
        }
}

/* Levels count from the root: inside github.comments the limit comes
 * sooner, and a provision nested there is refused the same way. */
Test(request_hostile, nesting_inside_a_provision) {
        for (size_t levels = 60; levels <= 61; levels++) {
                /* root(1) github(2) comments(3) comment(4) x: levels more */
                cJSON *root = base_provision(), *c, *x;
                struct err err = {0};
                size_t len;
                char *text, *open = test_repeat("[", levels),
                            *close = test_repeat("]", levels), *mark, *full;

                c = cJSON_GetArrayItem(
                    cJSON_GetObjectItemCaseSensitive(
                        cJSON_GetObjectItemCaseSensitive(root, "github"),
                        "comments"),
                    0);
                x = cJSON_AddStringToObject(c, "x", "@X@");
                cr_assert(x);
                text = payload(root, &len);
                mark = strstr(text, "\"@X@\"");
                cr_assert(mark);
                full = malloc(len + 2 * levels + 1);
                cr_assert(full);
                snprintf(full, len + 2 * levels + 1, "%.*s%s%s%s",
                         (int)(mark - text), text, open, close, mark + 5);
                cr_expect_eq(parse_as(PROVISION, full, strlen(full), &err),
                             levels == 60 ? 0 : -1, "%zu levels: %s", levels,
                             err.msg);
                if (levels == 61)
                        expect_invalid(&err, "parse",
                                       "payload: not JSON: ", "61 levels");
                free(full);
                free(open);
                free(close);
                cJSON_free(text);
        }
}

/* ------------------------------------------------------------------------ */
/* Duplicate keys */

struct dup_case {
        enum kind kind;
        const char *json;
        const char *msg; /* NULL: accepted */
};

Test(request_hostile, duplicate_keys_at_several_depths) {
        static const struct dup_case cases[] = {
            /* top level: the two parsers would pick different machines */
            {DESTROY,
             "{\"thopterId\":\"" TID "\",\"thopterId\":\"0123456789abcd\"}",
             "thopterId: duplicate key"},
            {DESTROY,
             "{\"thopterId\":\"" TID "\",\"\\u0074hopterId\":\"" TID "\"}",
             "thopterId: duplicate key"},
            {DESTROY,
             "{\"thopterId\":\"" TID "\",\"reason\":null,"
             "\"reason\":\"x\"}",
             "reason: duplicate key"},
            {DESTROY, "{\"thopterId\":\"" TID "\",\"\":1,\"\":2}",
             ": duplicate key"},
            /* keys are case-sensitive: these are two different keys */
            {DESTROY, "{\"thopterId\":\"" TID "\",\"ThopterId\":\"x\"}", NULL},
            /* equal keys in different objects are fine */
            {DESTROY,
             "{\"thopterId\":\"" TID "\",\"x\":{\"thopterId\":1},"
             "\"y\":[{\"a\":1},{\"a\":2}]}",
             NULL},
            /* depth 2, 3 and 5 of a provision */
            {PROVISION,
             "{\"requestId\":\"r\",\"repository\":\"o/n\",\"github\":{"
             "\"issueNumber\":\"1\",\"issueTitle\":\"t\",\"issueBody\":\"b\","
             "\"issueNumber\":\"2\"}}",
             "github.issueNumber: duplicate key"},
            {PROVISION,
             "{\"requestId\":\"r\",\"repository\":\"o/n\",\"github\":{"
             "\"issueNumber\":\"1\",\"issueTitle\":\"t\",\"issueBody\":\"b\","
             "\"comments\":[{\"id\":1,\"author\":\"a\",\"body\":\"b\","
             "\"createdAt\":\"c\",\"updatedAt\":\"u\",\"url\":\"x\","
             "\"body\":\"evil\"}]}}",
             "github.comments[0].body: duplicate key"},
            {PROVISION,
             "{\"requestId\":\"r\",\"repository\":\"o/n\",\"github\":{"
             "\"issueNumber\":\"1\",\"issueTitle\":\"t\",\"issueBody\":\"b\","
             "\"labels\":[[{\"x\":{\"k\":1,\"j\":2,\"k\":3}}]]}}",
             "github.labels[0][0].x.k: duplicate key"},
            /* the second copy differs only by an escape */
            {PROVISION,
             "{\"requestId\":\"r\",\"repository\":\"o/n\",\"github\":{"
             "\"issueNumber\":\"1\",\"issueTitle\":\"t\",\"issueBody\":\"b\"},"
             "\"gc\":\"a\",\"g\\u0063\":\"b\"}",
             "gc: duplicate key"},
            {PROVISION,
             "{\"requestId\":\"r\",\"repository\":\"o/n\",\"github\":{"
             "\"issueNumber\":\"1\",\"issueTitle\":\"t\",\"issueBody\":\"b\"},"
             "\"repository\":\"evil/repo\"}",
             "repository: duplicate key"},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const struct dup_case *c = &cases[i];
                struct err err = {0};
                int rc = parse_as(c->kind, c->json, strlen(c->json), &err);

                if (!c->msg) {
                        cr_expect_eq(rc, 0, "case %zu: %s", i, err.msg);
                        continue;
                }
                cr_expect_eq(rc, -1, "case %zu accepted", i);
                expect_invalid(&err, "validate", c->msg, c->json);
                cr_expect_str_eq(err.msg, c->msg, "case %zu", i);
        }
}

/* Many members: the duplicate check stays fast (sorting), and finds the one
 * pair among 40000. */
Test(request_hostile, duplicate_key_among_many_members) {
        size_t n = 40000, cap = 32 + n * 16, len = 0;
        char *text = malloc(cap);
        struct err err = {0};

        cr_assert(text);
        len += (size_t)snprintf(text, cap, "{\"thopterId\":\"" TID "\"");
        for (size_t i = 0; i < n; i++)
                len += (size_t)snprintf(text + len, cap - len, ",\"k%zu\":0",
                                        i == n - 1 ? (size_t)17 : i);
        len += (size_t)snprintf(text + len, cap - len, "}");
        cr_assert(len < cap && len < REQUEST_PAYLOAD_MAX);
        cr_expect_eq(parse_as(DESTROY, text, len, &err), -1);
        expect_invalid(&err, "validate", "k17: duplicate key", "40000 keys");
        free(text);
}


/* ------------------------------------------------------------------------ */
/* What a hostile payload can put into the error message */

static int utf8_ok(const char *str) {
        const unsigned char *s = (const unsigned char *)str;

        while (*s) {
                size_t k = *s < 0x80                  ? 0
                           : *s >= 0xC2 && *s <= 0xDF ? 1
                           : *s >= 0xE0 && *s <= 0xEF ? 2
                           : *s >= 0xF0 && *s <= 0xF4 ? 3
                                                      : 9;
                if (k == 9)
                        return 0;
                for (size_t j = 1; j <= k; j++)
                        if ((s[j] & 0xC0) != 0x80)
                                return 0;
                s += k + 1;
        }
        return 1;
}

/* err.msg goes to a dead-letter header and a status event (JSON, UTF-8):
 * whatever a key holds, the message is one line of printable UTF-8. */
Test(request_hostile, error_message_stays_printable_utf8) {
        char key[2048], text[8192];
        static const char *const keys[] = {
            "\\u001b[2J\\u0007", /* terminal escapes */
            "a\\nb\\rc\\td",     /* line breaks */
            "\\u007f\\u0085",    /* DEL, NEL */
            "@E@",               /* 200 x "é": cut at the 255th byte */
            "x@E@",              /* the other parity */
            "\\u00e9@E@",
        };

        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
                const char *at = strstr(keys[i], "@E@");
                struct err err = {0};
                size_t n;

                if (at) {
                        char *e = test_repeat("\xc3\xa9", 200);

                        snprintf(key, sizeof(key), "%.*s%s",
                                 (int)(at - keys[i]), keys[i], e);
                        free(e);
                } else {
                        snprintf(key, sizeof(key), "%s", keys[i]);
                }
                snprintf(text, sizeof(text),
                         "{\"thopterId\":\"" TID "\",\"%s\":1,\"%s\":2}", key,
                         key);
                cr_expect_eq(parse_as(DESTROY, text, strlen(text), &err), -1);
                expect_invalid(&err, "validate", "", keys[i]);
                cr_expect(strstr(err.msg, "duplicate key") ||
                              strlen(err.msg) > 200,
                          "case %zu: %s", i, err.msg);
                n = strlen(err.msg);
                cr_expect(n > 0, "case %zu", i);
                for (size_t k = 0; k < n; k++)
                        cr_expect((unsigned char)err.msg[k] >= 0x20 &&
                                      err.msg[k] != 0x7f,
                                  "case %zu: control byte 0x%02x at %zu", i,
                                  (unsigned char)err.msg[k], k);
                cr_expect(utf8_ok(err.msg), "case %zu: not UTF-8: %s", i,
                          err.msg);
        }
}
