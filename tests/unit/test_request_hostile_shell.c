/* test_request_hostile_shell.c - request.c against shell metacharacters in
 * every field: refused by the rule fields (ids, repository, gc, prompt),
 * kept byte for byte by the free text ones. The other hostile payloads are
 * in test_request_hostile.c; request_hostile_helpers.h has the requests both
 * spoil.
 */
#include "request.h"
#include "request_hostile_helpers.h"
#include "test_helpers.h"

#include <criterion/criterion.h>
#include <cjson/cJSON.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Shell metacharacters */

/* Every one holds a byte outside every rule field's character set. */
static const char *const meta[] = {
    "$(touch /tmp/pwned)",
    "`id`",
    "${IFS}",
    "; rm -rf ~",
    "a|b",
    "a&b",
    "a&&b||c",
    "a>b",
    "a<b",
    "2>&1",
    "'",
    "it's",
    "\"",
    "a\\b",
    "a\nb",
    "a\rb",
    "a\tb",
    "a b",
    "../",
    "../../etc/passwd",
    "/etc/passwd",
    "*",
    "?",
    "[a-z]",
    "~root",
    "!!",
    "#",
    "%s%n",
    "\x1b[2J",
    "\xe2\x80\xae", /* RIGHT-TO-LEFT OVERRIDE */
    "\xef\xbc\x8f", /* FULLWIDTH SOLIDUS */
    "caf\xc3\xa9",
    "a" NUL_MARK "b",
    NUL_MARK,
};
#define NMETA (sizeof(meta) / sizeof(meta[0]))

struct rule_case {
        enum kind kind;
        const char *path;
        const char *pre, *post; /* around the hostile part: a valid value */
        const char *field;      /* the message starts with it */
};

Test(request_hostile, rule_fields_refuse_shell_metacharacters) {
        static const struct rule_case cases[] = {
            {PROVISION, "requestId", "", "", "requestId:"},
            {PROVISION, "requestId", "provision-1", "", "requestId:"},
            {PROVISION, "repository", "", "", "repository:"},
            {PROVISION, "repository", "owner/", "", "repository:"},
            {PROVISION, "repository", "", "/name", "repository:"},
            {PROVISION, "repository", "ow", "ner/name", "repository:"},
            {PROVISION, "github.issueNumber", "4", "2", "github.issueNumber:"},
            {PROVISION, "github.mentionLocation", "body", "",
             "github.mentionLocation:"},
            {PROVISION, "gc", "", "", "gc:"},
            {PROVISION, "gc", "golden", "", "gc:"},
            {PROVISION, "prompt", "", "", "prompt:"},
            {PROVISION, "prompt", "default", "", "prompt:"},
            {DESTROY, "thopterId", "148e21a3c9", "", "thopterId:"},
            {DESTROY, "thopterId", "", TID, "thopterId:"},
            {DESTROY, "requestId", "", "", "requestId:"},
            {DESTROY, "requestId", "destroy-1", "", "requestId:"},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const struct rule_case *c = &cases[i];

                for (size_t m = 0; m < NMETA; m++) {
                        cJSON *root = c->kind == PROVISION ? base_provision()
                                                           : base_destroy();
                        char value[256], what[320];
                        struct err err = {0};
                        size_t len;
                        char *text;

                        snprintf(value, sizeof(value), "%s%s%s", c->pre,
                                 meta[m], c->post);
                        snprintf(what, sizeof(what), "case %zu %s=\"%s\"", i,
                                 c->path, value);
                        set_string(root, c->path, value);
                        text = payload(root, &len);
                        cr_expect_eq(parse_as(c->kind, text, len, &err), -1,
                                     "%s accepted", what);
                        /* \u0000 is refused for the whole payload first */
                        expect_invalid(&err, "validate",
                                       strstr(meta[m], NUL_MARK) ? "payload:"
                                                                 : c->field,
                                       what);
                        cJSON_free(text);
                }
        }
}

Test(request_hostile, repository_parts_cannot_climb) {
        static const char *const bad[] = {
            "../name", "owner/..",   "./name", "owner/.",  "..",
            "/",       "owner/",     "/name",  "owner//x", "a/b/c",
            ".../..",  "owner/../x", "",       "owner",
        };
        static const char *const good[] = {"..a/b", "a/...", "a.b/c..d", "-/_",
                                           "A-Z_0/9.x"};

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                cJSON *root = base_provision();
                struct err err = {0};
                size_t len;
                char *text;

                set_string(root, "repository", bad[i]);
                text = payload(root, &len);
                cr_expect_eq(parse_as(PROVISION, text, len, &err), -1,
                             "\"%s\" accepted", bad[i]);
                expect_invalid(&err, "validate", "repository:", bad[i]);
                cJSON_free(text);
        }
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                cJSON *root = base_provision();
                struct err err = {0};
                size_t len;
                char *text;

                set_string(root, "repository", good[i]);
                text = payload(root, &len);
                cr_expect_eq(parse_as(PROVISION, text, len, &err), 0,
                             "\"%s\": %s", good[i], err.msg);
                cJSON_free(text);
        }
}

/* The field of a parsed provision that @p path is copied to. */
static const char *provision_field(const struct provision_request *r,
                                   const char *path) {
        if (strcmp(path, "github.issueTitle") == 0)
                return r->issue_title;
        if (strcmp(path, "github.issueBody") == 0)
                return r->issue_body;
        if (strcmp(path, "github.issueUrl") == 0)
                return r->issue_url;
        if (strcmp(path, "github.issueAuthor") == 0)
                return r->issue_author;
        if (strcmp(path, "github.mentionAuthor") == 0)
                return r->mention_author;
        return NULL;
}

Test(request_hostile, free_text_fields_keep_metacharacters_byte_for_byte) {
        static const char *const paths[] = {
            "github.issueTitle",        "github.issueBody",
            "github.issueUrl",          "github.issueAuthor",
            "github.mentionAuthor",     "github.comments.0.body",
            "github.comments.0.author",
        };

        for (size_t m = 0; m < NMETA; m++) {
                int has_nul = strstr(meta[m], NUL_MARK) != NULL;

                for (size_t f = 0; f < sizeof(paths) / sizeof(paths[0]); f++) {
                        cJSON *root = base_provision();
                        struct provision_request req;
                        struct err err = {0};
                        size_t len;
                        char *text;

                        set_string(root, paths[f], meta[m]);
                        text = payload(root, &len);
                        if (has_nul) {
                                cr_expect_eq(
                                    test_parse_provision(text, len, &req, &err),
                                    -1, "%s: \\u0000 accepted", paths[f]);
                                expect_invalid(&err, "validate",
                                               "payload: a string contains "
                                               "\\u0000",
                                               paths[f]);
                        } else if (test_parse_provision(text, len, &req,
                                                        &err) == 0) {
                                const char *got =
                                    provision_field(&req, paths[f]);

                                if (got) {
                                        cr_expect_str_eq(got, meta[m], "%s",
                                                         paths[f]);
                                } else {
                                        /* a comment: in comments_json */
                                        cJSON *cs =
                                            cJSON_Parse(req.comments_json);
                                        cJSON *c = cJSON_GetArrayItem(cs, 0);
                                        const char *key =
                                            strrchr(paths[f], '.') + 1;

                                        cr_assert(c);
                                        cr_expect_str_eq(
                                            cJSON_GetStringValue(
                                                cJSON_GetObjectItemCaseSensitive(
                                                    c, key)),
                                            meta[m], "%s", paths[f]);
                                        cJSON_Delete(cs);
                                }
                        } else {
                                cr_expect_fail("%s=\"%s\" refused: %s",
                                               paths[f], meta[m], err.msg);
                        }
                        request_provision_free(&req);
                        cJSON_free(text);
                }
        }
}

Test(request_hostile, destroy_reason_keeps_metacharacters_byte_for_byte) {
        for (size_t m = 0; m < NMETA; m++) {
                cJSON *root = base_destroy();
                struct destroy_request req;
                struct err err = {0};
                size_t len;
                char *text;

                set_string(root, "reason", meta[m]);
                text = payload(root, &len);
                if (strstr(meta[m], NUL_MARK)) {
                        cr_expect_eq(test_parse_destroy(text, len, &req, &err),
                                     -1);
                        expect_invalid(&err, "validate", "payload:", "reason");
                } else {
                        cr_expect_eq(test_parse_destroy(text, len, &req, &err),
                                     0, "\"%s\": %s", meta[m], err.msg);
                        cr_expect_str_eq(req.reason, meta[m]);
                        cr_expect_str_eq(req.thopter_id, TID);
                }
                request_destroy_free(&req);
                cJSON_free(text);
        }
}
