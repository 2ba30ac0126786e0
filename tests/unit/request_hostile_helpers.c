/* request_hostile_helpers.c - see request_hostile_helpers.h. */
#include "request_hostile_helpers.h"

#include "request.h"
#include "test_helpers.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cJSON *base_provision(void) {
        cJSON *root = cJSON_CreateObject(), *gh, *comments, *c;

        cr_assert(root);
        cJSON_AddStringToObject(root, "requestId", "provision-1-abc");
        cJSON_AddStringToObject(root, "repository", "owner/name");
        gh = cJSON_AddObjectToObject(root, "github");
        cJSON_AddStringToObject(gh, "issueNumber", "42");
        cJSON_AddStringToObject(gh, "issueTitle", "title");
        cJSON_AddStringToObject(gh, "issueBody", "body");
        cJSON_AddStringToObject(gh, "issueUrl", "https://example.com/i/42");
        cJSON_AddStringToObject(gh, "issueAuthor", "alice");
        cJSON_AddStringToObject(gh, "mentionAuthor", "bob");
        cJSON_AddStringToObject(gh, "mentionLocation", "comment");
        cJSON_AddNumberToObject(gh, "mentionCommentId", 7);
        comments = cJSON_AddArrayToObject(gh, "comments");
        c = cJSON_CreateObject();
        cJSON_AddNumberToObject(c, "id", 7);
        cJSON_AddStringToObject(c, "author", "bob");
        cJSON_AddStringToObject(c, "body", "comment body");
        cJSON_AddStringToObject(c, "createdAt", "2025-01-01T00:00:00Z");
        cJSON_AddStringToObject(c, "updatedAt", "2025-01-01T00:00:00Z");
        cJSON_AddStringToObject(c, "url", "https://example.com/c/7");
        cJSON_AddItemToArray(comments, c);
        cJSON_AddStringToObject(root, "gc", "default");
        cJSON_AddStringToObject(root, "prompt", "default");
        cJSON_AddStringToObject(root, "source", "hub");
        return root;
}

cJSON *base_destroy(void) {
        cJSON *root = cJSON_CreateObject();

        cr_assert(root);
        cJSON_AddStringToObject(root, "thopterId", TID);
        cJSON_AddStringToObject(root, "requestId", "destroy-1-abc");
        cJSON_AddStringToObject(root, "reason", "done");
        cJSON_AddStringToObject(root, "source", "dashboard");
        cJSON_AddStringToObject(root, "createdAt", "2025-01-01T00:00:00Z");
        return root;
}

void set_string(cJSON *root, const char *path, const char *value) {
        char buf[128], *key, *save = NULL, *next;
        cJSON *node = root;

        snprintf(buf, sizeof(buf), "%s", path);
        key = strtok_r(buf, ".", &save);
        while ((next = strtok_r(NULL, ".", &save)) != NULL) {
                node = cJSON_IsArray(node)
                           ? cJSON_GetArrayItem(node, atoi(key))
                           : cJSON_GetObjectItemCaseSensitive(node, key);
                cr_assert(node, "no %s in %s", key, path);
                key = next;
        }
        cr_assert(cJSON_IsObject(node), "%s", path);
        cJSON_DeleteItemFromObjectCaseSensitive(node, key);
        cr_assert(cJSON_AddStringToObject(node, key, value));
}

char *payload(cJSON *root, size_t *len) {
        char *text = cJSON_PrintUnformatted(root), *p;

        cJSON_Delete(root);
        cr_assert(text);
        while ((p = strstr(text, NUL_MARK)) != NULL) {
                memcpy(p, "\\u0000", 6);
        }
        *len = strlen(text);
        return text;
}

int parse_as(enum kind kind, const char *text, size_t len, struct err *err) {
        struct provision_request p;
        struct destroy_request d;
        int rc;

        err_clear(err);
        if (kind == PROVISION) {
                rc = test_parse_provision(text, len, &p, err);
                request_provision_free(&p);
        } else {
                rc = test_parse_destroy(text, len, &d, err);
                request_destroy_free(&d);
        }
        return rc;
}

void expect_invalid(const struct err *err,
                    const char *step,
                    const char *prefix,
                    const char *what) {
        cr_expect_eq(err->kind, ERR_PERMANENT, "%s: kind", what);
        cr_expect_eq(err->cls, ERRC_INVALID_REQUEST, "%s: class", what);
        cr_expect_str_eq(err->step, step, "%s: %s", what, err->msg);
        cr_expect(strncmp(err->msg, prefix, strlen(prefix)) == 0,
                  "%s: \"%s\" does not start with \"%s\"", what, err->msg,
                  prefix);
        cr_expect(!strchr(err->msg, '\n') && !strchr(err->msg, '\r'), "%s",
                  what);
}
