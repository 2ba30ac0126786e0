/* request.c - Kafka payload -> validated request (contract section 2).
 *
 * cJSON only, no I/O. The JSON Schemas in schemas/ are the normative form of
 * the same rules; tests/unit/test_request_examples.c and
 * test_schema_agreement.py hold this file and ajv to the same verdict on
 * every example in schemas/examples.
 *
 * DESIGN
 * ------
 * size cap -> strict syntax scan -> cJSON parse -> object? -> no U+0000 ->
 * no duplicate key -> the fields, in the order of the contract's tables.
 *
 * cJSON is lenient where a JSON Schema validator (behind JSON.parse) is not:
 * it takes "01", "+1", raw control characters in strings and bytes that are
 * not UTF-8, and it keeps the first of two equal keys where JavaScript keeps
 * the last. So before cJSON sees a payload, json_strict_scan() checks it
 * against the RFC 8259 grammar, requires UTF-8 (RFC 8259 section 8.1) and
 * paired surrogate escapes (RFC 7493 I-JSON 2.1). Payloads that fail it are
 * "not JSON": step "parse". What cJSON then builds is walked once for
 * duplicate keys anywhere (json_strict_duplicate(), I-JSON 2.3 "MUST be
 * unique"): a message that means two things to two parsers is refused, not
 * guessed at.
 *
 * Optional fields whose value is JSON null count as absent (the schemas say
 * the same with "type": [..., "null"]); a required field that is null is
 * invalid. Length limits count bytes of UTF-8, as "1 KiB" says.
 *
 * Every rejection is ERR_PERMANENT, class ERRC_INVALID_REQUEST; out of memory
 * is ERR_TRANSIENT, class ERRC_INTERNAL (retrying may succeed).
 */
#include "request.h"
#include "json_strict.h"

#include <cjson/cJSON.h>
#include <ctype.h>

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TITLE_MAX  1024
#define BODY_MAX   (256 * 1024)
#define REASON_MAX 1024
#define IMAGE_MAX  REQUEST_IMAGE_MAX
/* The largest integer an IEEE double (JavaScript's number) holds exactly:
 * GitHub comment ids must survive the hub's JSON.parse/stringify unchanged. */
#define SAFE_INT_MAX     9007199254740991.0
#define ISSUE_NUMBER_MAX 9999999999.0

/* ------------------------------------------------------------------------ */
/* Errors */

static int reject(struct err *err,
                  const char *step,
                  const char *field,
                  const char *fmt,
                  ...) __attribute__((format(printf, 4, 5)));

/* A message may quote a key of the payload ("<path>: duplicate key") and goes
 * on into a dead-letter header and a status event: keep it one line of
 * printable UTF-8. Control bytes become '?'; the keys are UTF-8 (the scan saw
 * to it), so only a sequence cut at the end by truncation needs dropping. */
static void printable_utf8(char *s) {
        size_t n = strlen(s), i = n, need;
        unsigned char lead;

        for (char *p = s; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        *p = '?';
        while (i > 0 && n - i < 3 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
                i--;
        if (i == 0 || (unsigned char)s[i - 1] < 0xC0)
                return;
        lead = (unsigned char)s[i - 1];
        need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
        if (n - (i - 1) < need)
                s[i - 1] = '\0';
}

/* Records an invalid_request failure at @p step about @p field (a path
 * such as "github.issueNumber", or "payload"): the message is "<field>:
 * <fmt...>", and err->field names the field for callers that point at the
 * input (thopter-send names the flag). Always returns -1. */
static int reject(struct err *err,
                  const char *step,
                  const char *field,
                  const char *fmt,
                  ...) {
        char msg[ERR_MSG_LEN];
        int n;
        va_list ap;

        if (!err || err->kind != ERR_NONE)
                return -1;
        n = snprintf(msg, sizeof(msg), "%s: ", field);
        if (n < 0 || (size_t)n >= sizeof(msg))
                n = 0;
        va_start(ap, fmt);
        vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
        va_end(ap);
        printable_utf8(msg);
        err_set(err, ERR_PERMANENT, 0, "%s", msg);
        snprintf(err->field, sizeof(err->field), "%s", field);
        printable_utf8(err->field);
        err_classify(err, ERRC_INVALID_REQUEST, step);
        return -1;
}

static int oom(struct err *err, const char *step) {
        if (!err || err->kind != ERR_NONE)
                return -1;
        err_set(err, ERR_TRANSIENT, 0, "request: out of memory");
        err_classify(err, ERRC_INTERNAL, step);
        return -1;
}

/* ------------------------------------------------------------------------ */
/* Parse: bytes -> cJSON object */

static const char *json_type_name(const cJSON *v) {
        if (cJSON_IsArray(v))
                return "an array";
        if (cJSON_IsString(v))
                return "a string";
        if (cJSON_IsNumber(v))
                return "a number";
        if (cJSON_IsBool(v))
                return "a boolean";
        return "null";
}

/* The steps every request shares. Returns the root object (to free with
 * cJSON_Delete) or NULL with @p err set. */
static cJSON *parse_object(const void *buf, size_t len, struct err *err) {
        struct json_strict_result s;
        char path[ERR_MSG_LEN];
        char *copy = NULL;
        cJSON *root = NULL;

        if (len > REQUEST_PAYLOAD_MAX) {
                reject(err, "validate", "payload",
                       "%zu bytes, more than the %d allowed", len,
                       REQUEST_PAYLOAD_MAX);
                return NULL;
        }
        if (!buf || len == 0) {
                reject(err, "parse", "payload", "not JSON: empty");
                return NULL;
        }
        if (json_strict_scan(buf, len, &s) == -1) {
                reject(err, "parse", "payload", "not JSON: %s at byte %zu",
                       s.why, s.at);
                return NULL;
        }

        /* The scan proved there is no NUL byte, so a terminated copy is the
         * same text, and cJSON needs no length bookkeeping. */
        copy = malloc(len + 1);
        if (!copy) {
                oom(err, "parse");
                return NULL;
        }
        memcpy(copy, buf, len);
        copy[len] = '\0';
        root = cJSON_ParseWithOpts(copy, NULL, 1);
        free(copy);
        if (!root) {
                /* The text is valid JSON, so only allocation can fail. */
                oom(err, "parse");
                return NULL;
        }
        if (!cJSON_IsObject(root)) {
                reject(err, "parse", "payload", "must be a JSON object, not %s",
                       json_type_name(root));
                goto fail;
        }
        /* cJSON would silently end the string at the NUL; a file name or a
         * shell argument made from it would not be what the author sent. */
        if (s.nul_at != SIZE_MAX) {
                reject(err, "validate", "payload",
                       "a string contains \\u0000 (byte %zu)", s.nul_at);
                goto fail;
        }
        switch (json_strict_duplicate(root, path, sizeof(path))) {
        case 0:
                return root;
        case 1:
                reject(err, "validate", path, "duplicate key");
                goto fail;
        default:
                oom(err, "validate");
                goto fail;
        }
fail:
        cJSON_Delete(root);
        return NULL;
}

/* ------------------------------------------------------------------------ */
/* Field rules */

/* Member @p key of @p obj; NULL when absent or JSON null. */
static const cJSON *optional(const cJSON *obj, const char *key) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

        return cJSON_IsNull(v) ? NULL : v;
}

static int is_positive_int(const cJSON *v, double max) {
        double d;

        if (!cJSON_IsNumber(v))
                return 0;
        d = v->valuedouble;
        return isfinite(d) && d >= 1 && d <= max && floor(d) == d;
}

static int all_in(const char *s, const char *set) {
        for (; *s; s++)
                if (!strchr(set, *s))
                        return 0;
        return 1;
}

#define DIGITS "0123456789"
#define LOWER  "abcdefghijklmnopqrstuvwxyz"
#define UPPER  "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

/* [first][rest]{0,max-1} */
static int
is_name(const char *s, size_t max, const char *first, const char *rest) {
        size_t n = strlen(s);

        return n >= 1 && n <= max && strchr(first, s[0]) && all_in(s + 1, rest);
}

int request_id_is_valid(const char *s) {
        return s && is_name(s, REQUEST_ID_MAX, LOWER UPPER DIGITS "._:-",
                            LOWER UPPER DIGITS "._:-");
}

int request_thopter_id_is_valid(const char *s) {
        return s && strlen(s) == 14 && all_in(s, DIGITS "abcdef");
}

/* @p image against one prefix of @p n bytes (see request.h). */
static int image_under(const char *image, const char *prefix, size_t n) {
        if (n == 0 || strncmp(image, prefix, n) != 0)
                return 0;
        if (prefix[n - 1] == '/' || prefix[n - 1] == ':')
                return image[n] != '\0';
        return image[n] == '/' || image[n] == ':' || image[n] == '@';
}

int request_image_is_allowed(const char *image,
                             const char *prefixes,
                             const char *app_name) {
        const char *p = prefixes;
        char own[160];

        if (!image || !*image)
                return 0;
        if (!p || !*p) {
                if (!app_name || !*app_name)
                        return 0;
                snprintf(own, sizeof(own), "registry.fly.io/%s", app_name);
                return image_under(image, own, strlen(own));
        }
        while (*p) {
                size_t n = strcspn(p, ",");
                const char *q = p;
                size_t m = n;
                /* blanks around a list entry are not part of it */
                while (m && isspace((unsigned char)*q)) {
                        q++;
                        m--;
                }
                while (m && isspace((unsigned char)q[m - 1]))
                        m--;
                if (image_under(image, q, m))
                        return 1;
                p += n;
                if (*p == ',')
                        p++;
        }
        return 0;
}

static int repo_part_is_valid(const char *s, size_t n) {
        if (n < 1 || n > 100)
                return 0;
        if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
                return 0;
        for (size_t i = 0; i < n; i++)
                if (!strchr(LOWER UPPER DIGITS "_.-", s[i]))
                        return 0;
        return 1;
}

/* A required string, or an optional one (NULL when absent or null), of at
 * most @p max bytes (0: no limit but the payload's). */
static int get_string(const cJSON *obj,
                      const char *key,
                      const char *path,
                      int required,
                      size_t max,
                      const char **out,
                      struct err *err) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
        size_t n;

        *out = NULL;
        if (!v || (!required && cJSON_IsNull(v))) {
                if (required)
                        return reject(err, "validate", path, "is required");
                return 0;
        }
        if (!cJSON_IsString(v))
                return reject(err, "validate", path, "must be a string");
        n = strlen(v->valuestring);
        if (max && n > max)
                return reject(err, "validate", path,
                              "must be at most %zu bytes (is %zu)", max, n);
        *out = v->valuestring;
        return 0;
}

static int dup_into(char **dst, const char *src, struct err *err) {
        *dst = NULL;
        if (!src)
                return 0;
        *dst = strdup(src);
        return *dst ? 0 : oom(err, "validate");
}

static int check_comments(const cJSON *arr, struct err *err) {
        static const char *const strs[] = {"author", "body", "createdAt",
                                           "updatedAt", "url"};
        char path[64];
        const cJSON *c;
        const char *s;
        size_t i = 0;

        if (!cJSON_IsArray(arr))
                return reject(err, "validate", "github.comments",
                              "must be an array");
        for (c = arr->child; c; c = c->next, i++) {
                const cJSON *id = cJSON_GetObjectItemCaseSensitive(c, "id");

                snprintf(path, sizeof(path), "github.comments[%zu]", i);
                if (!cJSON_IsObject(c))
                        return reject(err, "validate", path,
                                      "must be an object");
                /* The hub's comments may lack a field: it reads as empty
                 * (contract section 2). */
                if (id && !cJSON_IsNull(id) &&
                    !is_positive_int(id, SAFE_INT_MAX)) {
                        snprintf(path, sizeof(path), "github.comments[%zu].id",
                                 i);
                        return reject(err, "validate", path,
                                      "must be a positive integer of at most "
                                      "2^53-1");
                }
                for (size_t k = 0; k < sizeof(strs) / sizeof(strs[0]); k++) {
                        snprintf(path, sizeof(path), "github.comments[%zu].%s",
                                 i, strs[k]);
                        if (get_string(c, strs[k], path, 0, 0, &s, err) == -1)
                                return -1;
                }
        }
        return 0;
}

static int
check_github(const cJSON *gh, struct provision_request *out, struct err *err) {
        const char *title, *body, *url, *author, *mention, *loc;
        const cJSON *num = cJSON_GetObjectItemCaseSensitive(gh, "issueNumber");
        const cJSON *v;

        if (!num)
                return reject(err, "validate", "github.issueNumber",
                              "is required");
        if (cJSON_IsString(num) &&
            is_name(num->valuestring, 10, DIGITS, DIGITS))
                snprintf(out->issue_number, sizeof(out->issue_number), "%s",
                         num->valuestring);
        else if (is_positive_int(num, ISSUE_NUMBER_MAX))
                snprintf(out->issue_number, sizeof(out->issue_number), "%lld",
                         (long long)num->valuedouble);
        else
                return reject(err, "validate", "github.issueNumber",
                              "must be a string of 1-10 "
                              "digits or a positive integer of at most 10 "
                              "digits");

        if (get_string(gh, "issueTitle", "github.issueTitle", 1, TITLE_MAX,
                       &title, err) == -1 ||
            get_string(gh, "issueBody", "github.issueBody", 1, BODY_MAX, &body,
                       err) == -1 ||
            get_string(gh, "issueUrl", "github.issueUrl", 0, 0, &url, err) ==
                -1 ||
            get_string(gh, "issueAuthor", "github.issueAuthor", 0, 0, &author,
                       err) == -1 ||
            get_string(gh, "mentionAuthor", "github.mentionAuthor", 0, 0,
                       &mention, err) == -1)
                return -1;

        v = optional(gh, "mentionLocation");
        loc = cJSON_IsString(v) ? v->valuestring : NULL;
        if (v &&
            (!loc || (strcmp(loc, "body") != 0 && strcmp(loc, "comment") != 0)))
                return reject(err, "validate", "github.mentionLocation",
                              "must be \"body\" or "
                              "\"comment\"");

        v = optional(gh, "mentionCommentId");
        if (v && !is_positive_int(v, SAFE_INT_MAX))
                return reject(err, "validate", "github.mentionCommentId",
                              "must be a positive "
                              "integer of at most 2^53-1");
        out->mention_comment_id = v ? (long long)v->valuedouble : 0;

        v = optional(gh, "comments");
        if (v && check_comments(v, err) == -1)
                return -1;

        if (dup_into(&out->issue_title, title, err) == -1 ||
            dup_into(&out->issue_body, body, err) == -1 ||
            dup_into(&out->issue_url, url, err) == -1 ||
            dup_into(&out->issue_author, author, err) == -1 ||
            dup_into(&out->mention_author, mention, err) == -1 ||
            dup_into(&out->mention_location, loc, err) == -1)
                return -1;
        if (v) {
                out->comments_json = cJSON_PrintUnformatted(v);
                if (!out->comments_json)
                        return oom(err, "validate");
        }
        out->github_json = cJSON_PrintUnformatted(gh);
        if (!out->github_json)
                return oom(err, "validate");
        return 0;
}

/* An optional name with a default (gc and prompt), normalised the way the
 * hub writes it (contract section 2): letters lowercased, then @p prefix
 * dropped from the front or @p suffix from the end (either may be NULL);
 * absent or "" means "default". */
static int get_name(const cJSON *root,
                    const char *key,
                    size_t max,
                    const char *rest,
                    const char *prefix,
                    const char *suffix,
                    const char *what,
                    char *dst,
                    size_t dstlen,
                    struct err *err) {
        const cJSON *v = optional(root, key);
        char buf[128];

        if (v && !cJSON_IsString(v))
                return reject(err, "validate", key, "must be a string");
        if (!v || !v->valuestring[0]) {
                snprintf(dst, dstlen, "default");
                return 0;
        }
        size_t n = strlen(v->valuestring);
        if (n >= sizeof(buf))
                return reject(err, "validate", key, "must be %s", what);
        for (size_t i = 0; i <= n; i++)
                buf[i] = (char)tolower((unsigned char)v->valuestring[i]);
        char *name = buf;
        if (prefix && strncmp(name, prefix, strlen(prefix)) == 0)
                name += strlen(prefix);
        size_t len = strlen(name), sl = suffix ? strlen(suffix) : 0;
        if (suffix && len > sl && strcmp(name + len - sl, suffix) == 0)
                name[len - sl] = '\0';
        if (!is_name(name, max, LOWER DIGITS, rest))
                return reject(err, "validate", key, "must be %s", what);
        snprintf(dst, dstlen, "%s", name);
        return 0;
}

/* image: an OCI reference the hub knows is current; absent = THOPTER_IMAGE. */
static int
get_image(const cJSON *root, char *dst, size_t dstlen, struct err *err) {
        const char *s = NULL;
        if (get_string(root, "image", "image", 0, 0, &s, err) == -1)
                return -1;
        if (!s || !*s)
                return 0;
        if (!is_name(s, IMAGE_MAX, LOWER UPPER DIGITS "._/:@-",
                     LOWER UPPER DIGITS "._/:@-"))
                return reject(err, "validate", "image",
                              "must be at most %d characters of "
                              "[A-Za-z0-9._/:@-]",
                              IMAGE_MAX);
        snprintf(dst, dstlen, "%s", s);
        return 0;
}

/* ------------------------------------------------------------------------ */
/* Public */

int request_parse_provision(const void *buf,
                            size_t len,
                            struct provision_request *out,
                            struct err *err) {
        const cJSON *v, *gh;
        const char *slash, *s;
        cJSON *root;
        size_t n;

        memset(out, 0, sizeof(*out));
        root = parse_object(buf, len, err);
        if (!root)
                return -1;

        if (get_string(root, "requestId", "requestId", 1, 0, &s, err) == -1)
                goto fail;
        if (!request_id_is_valid(s)) {
                reject(err, "validate", "requestId",
                       "must be 1-128 characters of "
                       "[A-Za-z0-9._:-]");
                goto fail;
        }
        snprintf(out->request_id, sizeof(out->request_id), "%s", s);

        if (get_string(root, "repository", "repository", 1, 0, &s, err) == -1)
                goto fail;
        slash = strchr(s, '/');
        n = strlen(s);
        if (!slash || !repo_part_is_valid(s, (size_t)(slash - s)) ||
            !repo_part_is_valid(slash + 1, n - (size_t)(slash - s) - 1)) {
                reject(err, "validate", "repository",
                       "must be owner/name, each part 1-100 "
                       "characters of [A-Za-z0-9_.-], neither . nor ..");
                goto fail;
        }
        snprintf(out->repository, sizeof(out->repository), "%s", s);
        snprintf(out->owner, sizeof(out->owner), "%.*s", (int)(slash - s), s);
        snprintf(out->repo_name, sizeof(out->repo_name), "%s", slash + 1);

        v = cJSON_GetObjectItemCaseSensitive(root, "github");
        if (!v) {
                reject(err, "validate", "github", "is required");
                goto fail;
        }
        if (!cJSON_IsObject(v)) {
                reject(err, "validate", "github", "must be an object");
                goto fail;
        }
        gh = v;
        if (check_github(gh, out, err) == -1)
                goto fail;

        if (get_name(root, "gc", 40, LOWER DIGITS "-", "gc-", NULL,
                     "a Golden Claude name: an optional gc- prefix, then "
                     "[a-z0-9][a-z0-9-]{0,39} (letters of any case)",
                     out->gc, sizeof(out->gc), err) == -1 ||
            get_name(root, "prompt", 64, LOWER DIGITS "_-", NULL, ".md",
                     "a prompt name: [a-z0-9][a-z0-9_-]{0,63} with an "
                     "optional .md suffix (letters of any case)",
                     out->prompt, sizeof(out->prompt), err) == -1 ||
            get_image(root, out->image, sizeof(out->image), err) == -1)
                goto fail;

        cJSON_Delete(root);
        return 0;
fail:
        cJSON_Delete(root);
        request_provision_free(out);
        return -1;
}

void request_provision_free(struct provision_request *req) {
        if (!req)
                return;
        free(req->issue_title);
        free(req->issue_body);
        free(req->issue_url);
        free(req->issue_author);
        free(req->mention_author);
        free(req->mention_location);
        /* cJSON_PrintUnformatted allocates with cJSON's hooks: the default
         * ones are malloc/free, which this project does not change. */
        cJSON_free(req->comments_json);
        cJSON_free(req->github_json);
        memset(req, 0, sizeof(*req));
}

int request_parse_destroy(const void *buf,
                          size_t len,
                          struct destroy_request *out,
                          struct err *err) {
        const char *s;
        cJSON *root;

        memset(out, 0, sizeof(*out));
        root = parse_object(buf, len, err);
        if (!root)
                return -1;

        if (get_string(root, "thopterId", "thopterId", 1, 0, &s, err) == -1)
                goto fail;
        if (!request_thopter_id_is_valid(s)) {
                reject(err, "validate", "thopterId",
                       "must be 14 lowercase hex characters");
                goto fail;
        }
        snprintf(out->thopter_id, sizeof(out->thopter_id), "%s", s);

        if (get_string(root, "requestId", "requestId", 0, 0, &s, err) == -1)
                goto fail;
        if (s && !request_id_is_valid(s)) {
                reject(err, "validate", "requestId",
                       "must be 1-128 characters of "
                       "[A-Za-z0-9._:-]");
                goto fail;
        }
        snprintf(out->request_id, sizeof(out->request_id), "%s", s ? s : "");

        if (get_string(root, "reason", "reason", 0, REASON_MAX, &s, err) == -1)
                goto fail;
        if (dup_into(&out->reason, s, err) == -1)
                goto fail;
        if (get_string(root, "source", "source", 0, 0, &s, err) == -1 ||
            get_string(root, "createdAt", "createdAt", 0, 0, &s, err) == -1)
                goto fail;

        cJSON_Delete(root);
        return 0;
fail:
        cJSON_Delete(root);
        request_destroy_free(out);
        return -1;
}

void request_destroy_free(struct destroy_request *req) {
        if (!req)
                return;
        free(req->reason);
        memset(req, 0, sizeof(*req));
}

void request_peek_id(const void *buf, size_t len, char *out, size_t cap) {
        if (!buf || len == 0 || len > REQUEST_PAYLOAD_MAX)
                return;
        cJSON *root = cJSON_ParseWithLength(buf, len);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "requestId");
        if (cJSON_IsString(id) && request_id_is_valid(id->valuestring))
                snprintf(out, cap, "%s", id->valuestring);
        cJSON_Delete(root);
}
