/* test_request.c - request.c: what a parsed request holds, and the rules the
 * example files cannot show (limits at their exact boundary, the payload cap,
 * byte-level syntax and UTF-8).
 *
 * Whole requests live in schemas/examples (see test_request_examples.c). The
 * short byte strings in the tables here are the point of their cases: one
 * malformed byte or token each, easier to read inline than as files.
 */
#include "request.h"
#include "test_helpers.h"

#include <criterion/criterion.h>
#include <cjson/cJSON.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXAMPLES SCHEMA_DIR "/examples"

/* A valid minimal provision as a cJSON tree, for cases that vary one field
 * to a size no example file should have. */
static cJSON *minimal_provision(void) {
        return test_load_json(EXAMPLES "/valid/provision-minimal.json");
}

/* ------------------------------------------------------------------------ */

struct id_case {
        const char *s;
        int valid;
};

Test(request, request_id_rule) {
        char *max = test_repeat("a", 128), *over = test_repeat("a", 129);
        const struct id_case cases[] = {
            {"provision-1694000000000-a1b2c3", 1},
            {"a", 1},
            {"A.b_c:d-9", 1},
            {max, 1},
            {over, 0},
            {"", 0},
            {"a b", 0},
            {"a/b", 0},
            {"a;b", 0},
            {"a$b", 0},
            {"caf\xc3\xa9", 0},
            {NULL, 0},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                cr_expect_eq(request_id_is_valid(cases[i].s), cases[i].valid,
                             "case %zu \"%.20s\"", i,
                             cases[i].s ? cases[i].s : "(null)");
        free(max);
        free(over);
}

Test(request, thopter_id_rule) {
        const struct id_case cases[] = {
            {"148e21a3c96989", 1},
            {"0123456789abcd", 1},
            {"148E21A3C96989", 0},
            {"148e21a3c9698", 0},
            {"148e21a3c969890", 0},
            {"148e21a3c9698g", 0},
            {"", 0},
            {"thopter-42-abc", 0},
            {NULL, 0},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                cr_expect_eq(request_thopter_id_is_valid(cases[i].s),
                             cases[i].valid, "case %zu", i);
}

/* ------------------------------------------------------------------------ */

struct syntax_case {
        const char *json; /* a destroy request, byte by byte */
        const char *step; /* NULL: accepted */
        const char *msg;  /* a substring of the message */
};

Test(request, strict_json_syntax_and_utf8) {
        static const struct syntax_case cases[] = {
            /* UTF-8 in strings: well-formed is kept, anything else refused */
            {"{\"thopterId\":\"148e21a3c96989\",\"reason\":\"\xf0\x9f\x9a\x80 "
             "\xe6\x97\xa5 \xc3\xa9\"}",
             NULL, NULL},
            {"{\"thopterId\":\"148e21a3c96989\",\"reason\":\"\xc0\xaf\"}",
             "parse", "not valid UTF-8"},
            {"{\"thopterId\":\"148e21a3c96989\",\"reason\":\"\xe0\x80\xaf\"}",
             "parse", "not valid UTF-8"},
            {"{\"thopterId\":\"148e21a3c96989\",\"reason\":"
             "\"\xf4\x90\x80\x80\"}",
             "parse", "not valid UTF-8"},
            {"{\"thopterId\":\"148e21a3c96989\",\"reason\":\"\xe2\x82\"}",
             "parse", "not valid UTF-8"},
            {"{\"thopterId\":\"148e21a3c96989\",\"reason\":\"\x80\"}", "parse",
             "not valid UTF-8"},
            {"{\"thopterId\":\"148e21a3c96989\",\"reason\":\"\xff\"}", "parse",
             "not valid UTF-8"},
            /* escapes */
            {"{\"thopterId\":\"148e21a3c96989\",\"reason\":\"\\ud83d\\ude80 "
             "\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9\"}",
             NULL, NULL},
            {"{\"thopterId\":\"148e21a3c96989\",\"reason\":\"\\udc00\"}",
             "parse", "unpaired surrogate"},
            {"{\"thopterId\":\"148e21a3c96989\",\"reason\":\"\\ud800\\u0041\"}",
             "parse", "unpaired surrogate"},
            {"{\"thopterId\":\"148e21a3c96989\",\"reason\":\"\\ud800\"}",
             "parse", "unpaired surrogate"},
            {"{\"thopterId\":\"148e21a3c96989\",\"reason\":\"\\x41\"}", "parse",
             "invalid escape"},
            {"{\"thopterId\":\"148e21a3c96989\",\"reason\":\"\\u12\"}", "parse",
             "invalid \\u escape"},
            {"{\"thopterId\":\"148e21a3c96989\",\"reason\":\"a\\u0000b\"}",
             "validate", "\\u0000"},
            {"{\"thopterId\":\"148e21a3c96989\",\"x\":\"a\\u0000b\"}",
             "validate", "\\u0000"},
            /* numbers (RFC 8259 section 6), in an ignored field */
            {"{\"thopterId\":\"148e21a3c96989\",\"x\":[0,-0,1.5,-2e10,3E+2,"
             "4e-1,0.0]}",
             NULL, NULL},
            {"{\"thopterId\":\"148e21a3c96989\",\"x\":01}", "parse",
             "leading zero"},
            {"{\"thopterId\":\"148e21a3c96989\",\"x\":1.}", "parse",
             "invalid number"},
            {"{\"thopterId\":\"148e21a3c96989\",\"x\":.5}", "parse",
             "unexpected character"},
            {"{\"thopterId\":\"148e21a3c96989\",\"x\":+1}", "parse",
             "unexpected character"},
            {"{\"thopterId\":\"148e21a3c96989\",\"x\":1e}", "parse",
             "invalid number"},
            {"{\"thopterId\":\"148e21a3c96989\",\"x\":-}", "parse",
             "invalid number"},
            {"{\"thopterId\":\"148e21a3c96989\",\"x\":NaN}", "parse",
             "unexpected character"},
            {"{\"thopterId\":\"148e21a3c96989\",\"x\":0x10}", "parse",
             "expected ',' or '}'"},
            /* structure */
            {" \t\r\n{\"thopterId\" : \"148e21a3c96989\" } \n", NULL, NULL},
            {"{\"thopterId\":\"148e21a3c96989\",\"x\":[1,]}", "parse", NULL},
            {"{\"thopterId\":\"148e21a3c96989\",\"x\":tru}", "parse",
             "unexpected character"},
            {"{\"thopterId\":\"148e21a3c96989\"", "parse", NULL},
            {"{\"thopterId\":\"148e21a3c96989", "parse", "unterminated"},
            {"{\"thopterId\":\"148e21a3c96989\"}}", "parse",
             "more after the JSON value"},
            {"{thopterId:\"148e21a3c96989\"}", "parse", "member name"},
            {"{\"thopterId\" \"148e21a3c96989\"}", "parse", "expected ':'"},
            {"{\"thopterId\":\"148e21a3c96989\",\"x\":\"a\tb\"}", "parse",
             "control character"},
            {"{\"thopterId\":\"148e21a3c96989\"}\xc2\xa0", "parse", NULL},
            {"42", "parse", "must be a JSON object, not a number"},
            {"true", "parse", "not a boolean"},
            {"null", "parse", "not null"},
            {"\"148e21a3c96989\"", "parse", "not a string"},
            {"[]", "parse", "not an array"},
            {"", "parse", "empty"},
            {"   ", "parse", "unexpected end"},
            /* keys are case-sensitive: cJSON_GetObjectItem is not */
            {"{\"ThopterId\":\"148e21a3c96989\"}", "validate",
             "thopterId: is required"},
            /* duplicate keys, anywhere */
            {"{\"thopterId\":\"148e21a3c96989\",\"x\":{\"a\":1,\"b\":2,"
             "\"a\":3}}",
             "validate", "x.a: duplicate key"},
            {"{\"thopterId\":\"148e21a3c96989\",\"x\":[{},{\"k\":1,"
             "\"\\u006b\":2}]}",
             "validate", "x[1].k: duplicate key"},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const struct syntax_case *c = &cases[i];
                struct destroy_request req;
                struct err err = {0};
                int rc =
                    test_parse_destroy(c->json, strlen(c->json), &req, &err);

                if (!c->step) {
                        cr_expect(rc == 0, "case %zu: rejected: %s", i,
                                  err.msg);
                } else {
                        cr_expect(rc == -1, "case %zu: accepted", i);
                        cr_expect_str_eq(err.step, c->step, "case %zu: %s", i,
                                         err.msg);
                        cr_expect(err.cls == ERRC_INVALID_REQUEST, "case %zu",
                                  i);
                        cr_expect(!c->msg || strstr(err.msg, c->msg),
                                  "case %zu: \"%s\" lacks \"%s\"", i, err.msg,
                                  c->msg);
                }
                request_destroy_free(&req);
        }
}

/* A payload of exactly @p total bytes: {"thopterId":"…","pad":"xxx…"} */
static char *padded_destroy(size_t total) {
        const char *head = "{\"thopterId\":\"148e21a3c96989\",\"pad\":\"";
        size_t h = strlen(head);
        char *buf = malloc(total);

        cr_assert(buf && total > h + 2);
        memcpy(buf, head, h);
        memset(buf + h, 'x', total - h - 2);
        memcpy(buf + total - 2, "\"}", 2);
        return buf;
}

Test(request, payload_cap_is_512_kib) {
        struct destroy_request req;
        struct err err = {0};
        char *buf = padded_destroy(REQUEST_PAYLOAD_MAX);

        cr_expect_eq(REQUEST_PAYLOAD_MAX, 524288);
        cr_expect_eq(
            request_parse_destroy(buf, REQUEST_PAYLOAD_MAX, &req, &err), 0,
            "%s", err.msg);
        request_destroy_free(&req);
        free(buf);

        buf = padded_destroy(REQUEST_PAYLOAD_MAX + 1);
        cr_expect_eq(
            request_parse_destroy(buf, REQUEST_PAYLOAD_MAX + 1, &req, &err),
            -1);
        cr_expect_str_eq(err.step, "validate");
        cr_expect(strncmp(err.msg, "payload: 524289 bytes", 21) == 0, "%s",
                  err.msg);
        request_destroy_free(&req);
        free(buf);
}

/* {"thopterId":"…","x":[[[…]]]} with @p depth containers in all. */
static char *nested(int depth, size_t *len) {
        const char *head = "{\"thopterId\":\"148e21a3c96989\",\"x\":";
        size_t h = strlen(head), n = (size_t)(depth - 1);
        char *buf = malloc(h + 2 * n + 1);

        cr_assert(buf);
        memcpy(buf, head, h);
        memset(buf + h, '[', n);
        memset(buf + h + n, ']', n);
        buf[h + 2 * n] = '}';
        *len = h + 2 * n + 1;
        return buf;
}

Test(request, nesting_is_capped_at_64_levels) {
        struct destroy_request req;
        struct err err = {0};
        size_t len;
        char *buf = nested(64, &len);

        cr_expect_eq(request_parse_destroy(buf, len, &req, &err), 0, "%s",
                     err.msg);
        request_destroy_free(&req);
        free(buf);

        buf = nested(65, &len);
        cr_expect_eq(request_parse_destroy(buf, len, &req, &err), -1);
        cr_expect_str_eq(err.step, "parse");
        cr_expect(strstr(err.msg, "nested deeper than 64") != NULL, "%s",
                  err.msg);
        free(buf);
}

/* ------------------------------------------------------------------------ */

Test(request, hub_shaped_provision_is_read_field_by_field) {
        struct provision_request req;
        struct err err = {0};
        size_t len;
        char *buf = test_slurp(EXAMPLES "/valid/provision-hub-full.json", &len);
        cJSON *orig, *gh, *back;

        assert_ok(request_parse_provision(buf, len, &req, &err), &err);
        cr_expect_str_eq(req.request_id, "provision-1757491200000-9f3c1e");
        cr_expect_str_eq(req.repository, "telepath-computer/thopter-swarm");
        cr_expect_str_eq(req.owner, "telepath-computer");
        cr_expect_str_eq(req.repo_name, "thopter-swarm");
        cr_expect_str_eq(req.issue_number, "42");
        cr_expect_str_eq(req.gc, "default");
        cr_expect_str_eq(req.prompt, "default");
        cr_expect_str_eq(req.issue_title,
                         "Dashboard: show the region of each thopter");
        cr_expect(strstr(req.issue_body, "```ts\nconst region") != NULL);
        cr_expect_str_eq(req.issue_url,
                         "https://github.com/telepath-computer/thopter-swarm/"
                         "issues/42");
        cr_expect_str_eq(req.issue_author, "octocat");
        cr_expect_str_eq(req.mention_author, "jwbron");
        cr_expect_str_eq(req.mention_location, "comment");
        cr_expect_eq(req.mention_comment_id, 2300000002LL);

        /* github_json is the github object, unknown fields and all. */
        orig = cJSON_ParseWithLength(buf, len);
        gh = cJSON_GetObjectItemCaseSensitive(orig, "github");
        back = cJSON_Parse(req.github_json);
        cr_expect(cJSON_Compare(gh, back, 1), "github_json: %s",
                  req.github_json);
        cJSON_Delete(back);
        back = cJSON_Parse(req.comments_json);
        cr_expect(
            cJSON_Compare(cJSON_GetObjectItemCaseSensitive(gh, "comments"),
                          back, 1),
            "comments_json: %s", req.comments_json);
        cJSON_Delete(back);
        cJSON_Delete(orig);

        request_provision_free(&req);
        cr_expect_null(req.github_json);
        request_provision_free(&req); /* twice is harmless */
        request_provision_free(NULL);
        free(buf);
}

Test(request, minimal_provision_gets_defaults) {
        struct provision_request req;
        struct err err = {0};
        size_t len;
        char *buf = test_slurp(EXAMPLES "/valid/provision-minimal.json", &len);

        assert_ok(request_parse_provision(buf, len, &req, &err), &err);
        cr_expect_str_eq(req.gc, "default");
        cr_expect_str_eq(req.prompt, "default");
        cr_expect_str_eq(req.issue_body, "");
        cr_expect_null(req.issue_url);
        cr_expect_null(req.issue_author);
        cr_expect_null(req.mention_author);
        cr_expect_null(req.mention_location);
        cr_expect_eq(req.mention_comment_id, 0);
        cr_expect_null(req.comments_json);
        cr_expect_not_null(req.github_json);
        cr_expect_eq(err.kind, ERR_NONE);
        request_provision_free(&req);
        free(buf);
}

Test(request, nulls_count_as_absent) {
        struct provision_request req;

        test_load_provision(EXAMPLES "/valid/provision-nulls-as-absent.json",
                            &req);
        cr_expect_str_eq(req.gc, "default");
        cr_expect_str_eq(req.prompt, "default");
        cr_expect_null(req.issue_url);
        cr_expect_null(req.mention_location);
        cr_expect_eq(req.mention_comment_id, 0);
        cr_expect_null(req.comments_json);
        request_provision_free(&req);
}

struct number_case {
        const char *file;
        const char *issue_number;
};

Test(request, issue_number_is_kept_as_digits) {
        static const struct number_case cases[] = {
            {"provision-minimal.json", "42"},
            {"provision-issueNumber-integer.json", "1234"},
            {"provision-boundaries.json", "9999999999"},
            {"provision-unicode-title-1024-bytes.json", "9999999999"},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char path[512];
                struct provision_request req;
                struct err err = {0};
                size_t len;
                char *buf;

                snprintf(path, sizeof(path), EXAMPLES "/valid/%s",
                         cases[i].file);
                buf = test_slurp(path, &len);
                cr_expect_eq(request_parse_provision(buf, len, &req, &err), 0,
                             "%s: %s", cases[i].file, err.msg);
                cr_expect_str_eq(req.issue_number, cases[i].issue_number, "%s",
                                 cases[i].file);
                request_provision_free(&req);
                free(buf);
        }
}

struct limit_case {
        const char *key; /* a member of github */
        size_t bytes;    /* its length */
        int multibyte;   /* made of 2-byte "é" instead of 'b' */
        int valid;
};

Test(request, string_limits_count_bytes) {
        static const struct limit_case cases[] = {
            {"issueTitle", 1024, 0, 1},
            {"issueTitle", 1025, 0, 0},
            {"issueTitle", 1024, 1, 1},
            {"issueTitle", 1026, 1, 0},
            {"issueBody", 256 * 1024, 0, 1},
            {"issueBody", 256 * 1024 + 1, 0, 0},
            {"issueBody", 256 * 1024, 1, 1},
            {"issueBody", 256 * 1024 + 2, 1, 0},
            {"issueBody", 0, 0, 1},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const struct limit_case *c = &cases[i];
                cJSON *root = minimal_provision();
                cJSON *gh = cJSON_GetObjectItemCaseSensitive(root, "github");
                struct provision_request req;
                struct err err = {0};
                char *s = test_repeat("b", c->bytes), *text;
                int rc;

                if (c->multibyte)
                        for (size_t k = 0; k + 1 < c->bytes; k += 2)
                                memcpy(s + k, "\xc3\xa9", 2);
                cr_assert(cJSON_ReplaceItemInObjectCaseSensitive(
                    gh, c->key, cJSON_CreateString(s)));
                text = cJSON_PrintUnformatted(root);
                rc = test_parse_provision(text, strlen(text), &req, &err);
                cr_expect_eq(rc == 0, c->valid, "case %zu: %s", i, err.msg);
                if (c->valid)
                        cr_expect_eq(strlen(c->key[5] == 'T' ? req.issue_title
                                                             : req.issue_body),
                                     c->bytes, "case %zu", i);
                else
                        cr_expect(strstr(err.msg, "must be at most") != NULL,
                                  "case %zu: %s", i, err.msg);
                request_provision_free(&req);
                cJSON_free(text);
                cJSON_Delete(root);
                free(s);
        }
}

Test(request, failure_leaves_the_request_empty) {
        struct provision_request req;
        struct err err = {0};
        size_t len;
        char *buf = test_slurp(
            EXAMPLES "/invalid/provision-bad-prompt-too-long.json", &len);

        /* prompt is checked last, after the strings were copied. */
        memset(&req, 0xA5, sizeof(req));
        cr_expect_eq(request_parse_provision(buf, len, &req, &err), -1);
        cr_expect_eq(err.kind, ERR_PERMANENT);
        cr_expect_null(req.issue_title);
        cr_expect_null(req.github_json);
        cr_expect_str_eq(req.request_id, "");
        request_provision_free(&req);
        free(buf);
}

Test(request, destroy_fields) {
        struct destroy_request req;
        struct err err = {0};
        size_t len;
        char *buf = test_slurp(EXAMPLES "/valid/destroy-minimal.json", &len);

        assert_ok(request_parse_destroy(buf, len, &req, &err), &err);
        cr_expect_str_eq(req.thopter_id, "148e21a3c96989");
        cr_expect_str_eq(req.request_id, "");
        cr_expect_null(req.reason);
        request_destroy_free(&req);
        free(buf);

        buf = test_slurp(EXAMPLES "/valid/destroy-hub-full.json", &len);
        assert_ok(request_parse_destroy(buf, len, &req, &err), &err);
        cr_expect_str_eq(req.request_id, "destroy-1757491300000-0d2c4b");
        cr_expect_str_eq(req.reason, "Manual kill request from dashboard");
        request_destroy_free(&req);
        request_destroy_free(NULL);
        free(buf);
}

Test(request, a_recorded_error_is_not_overwritten) {
        struct destroy_request req;
        struct err err = {0};

        err_set(&err, ERR_TRANSIENT, 7, "earlier");
        cr_expect_eq(test_parse_destroy("[]", 2, &req, &err), -1);
        cr_expect_str_eq(err.msg, "earlier");
        cr_expect_eq(err.kind, ERR_TRANSIENT);
        cr_expect_eq(err.cls, ERRC_NONE);
}

Test(request, images_are_allowed_only_under_a_prefix_at_a_boundary) {
        static const struct {
                const char *image, *prefixes;
                int allowed;
        } rows[] = {
            /* unset: the app's own registry path */
            {"registry.fly.io/thopters:thopter-1", NULL, 1},
            {"registry.fly.io/thopters@sha256:0123", "", 1},
            {"registry.fly.io/thopters/sub:1", NULL, 1},
            {"registry.fly.io/thopters", NULL, 0}, /* no tag or digest */
            {"registry.fly.io/thopters-evil:1", NULL, 0},
            {"registry.fly.io/other:1", NULL, 0},
            {"docker.io/attacker/evil:latest", NULL, 0},
            {"REGISTRY.fly.io/thopters:1", NULL, 0},
            {"", NULL, 0},
            /* a list; blanks around entries; a prefix ending in / or : */
            {"docker.io/acme/thopter:2", "registry.fly.io/x, docker.io/acme/",
             1},
            {"docker.io/acmex/thopter:2", "docker.io/acme/", 0},
            {"docker.io/acme/", "docker.io/acme/", 0},
            {"ghcr.io/acme/thopter:v1", "ghcr.io/acme/thopter:", 1},
            {"ghcr.io/acme/thopter:v1", " ghcr.io/acme/thopter ,", 1},
            {"ghcr.io/acme/thopterx:v1", "ghcr.io/acme/thopter", 0},
            {"registry.fly.io/thopters:1", "docker.io/acme/", 0},
            {"registry.fly.io/thopters:1", ",,", 0},
        };
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
                cr_expect_eq(request_image_is_allowed(
                                 rows[i].image, rows[i].prefixes, "thopters"),
                             rows[i].allowed, "%s under \"%s\"", rows[i].image,
                             rows[i].prefixes ? rows[i].prefixes : "(unset)");
        cr_expect_eq(request_image_is_allowed("registry.fly.io/:1", NULL, ""),
                     0, "no app name, no default");
}
