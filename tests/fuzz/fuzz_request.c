/* fuzz_request.c - libFuzzer target over request.c (contract section 2).
 *
 * Every input goes to request_parse_destroy() and request_parse_provision().
 * Neither may crash, leak or hang (the sanitizers and libFuzzer's -timeout
 * see to that), and what they return must keep the promises of request.h,
 * checked here with reference checks written independently of request.c:
 *
 *  - success: every required field is set and matches the contract's
 *    pattern; every optional one is absent or within its rule; every string
 *    handed on is UTF-8 with no NUL inside (no \u0000 slipped through);
 *  - failure: ERR_PERMANENT + ERRC_INVALID_REQUEST (or ERR_TRANSIENT +
 *    ERRC_INTERNAL for out of memory), step "parse" or "validate", a
 *    non-empty one-line message (no '\n', '\r' or other control byte, valid
 *    UTF-8: it ends up in a dead-letter header and a status event), and the
 *    output struct left empty;
 *  - both parsers share the steps before the field rules, so a payload one of
 *    them refuses as "parse" is refused by the other with the same message.
 *
 * Build and run: tests/fuzz/run-fuzz.sh (see tests/fuzz/README.md).
 */
#include "request.h"
#include "fuzz_common.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reference checks (deliberately not request.c's own helpers) ---- */

static int in_set(char c, const char *set) {
        return c != '\0' && strchr(set, c) != NULL;
}

#define R_LOWER  "abcdefghijklmnopqrstuvwxyz"
#define R_UPPER  "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#define R_DIGITS "0123456789"

/* [first][rest]{min-1,max-1} */
static int matches(const char *s,
                   size_t min,
                   size_t max,
                   const char *first,
                   const char *rest) {
        size_t n = strlen(s);

        if (n < min || n > max)
                return 0;
        if (n == 0)
                return 1;
        if (!in_set(s[0], first))
                return 0;
        for (size_t i = 1; i < n; i++)
                if (!in_set(s[i], rest))
                        return 0;
        return 1;
}

static int ref_request_id(const char *s) {
        const char *set = R_LOWER R_UPPER R_DIGITS "._:-";

        return matches(s, 1, 128, set, set);
}

static int ref_thopter_id(const char *s) {
        return matches(s, 14, 14, R_DIGITS "abcdef", R_DIGITS "abcdef");
}

static int ref_repo_part(const char *s) {
        const char *set = R_LOWER R_UPPER R_DIGITS "_.-";

        return matches(s, 1, 100, set, set) && strcmp(s, ".") != 0 &&
               strcmp(s, "..") != 0 && !strchr(s, '/');
}

/* Well-formed UTF-8 (fuzz_utf8_ok()) with no NUL. */
static int ref_utf8(const char *s, size_t n) {
        return memchr(s, '\0', n) == NULL &&
               fuzz_utf8_ok((const unsigned char *)s, n);
}

static void check_text(const char *s, size_t max) {
        size_t n;

        if (!s)
                return;
        n = strlen(s);
        CHECK(!max || n <= max);
        CHECK(ref_utf8(s, n));
}

static int all_zero(const void *p, size_t n) {
        const unsigned char *b = p;

        for (size_t i = 0; i < n; i++)
                if (b[i])
                        return 0;
        return 1;
}

static void check_failure(const struct err *err) {
        size_t n = strlen(err->msg);

        CHECK(
            (err->kind == ERR_PERMANENT && err->cls == ERRC_INVALID_REQUEST) ||
            (err->kind == ERR_TRANSIENT && err->cls == ERRC_INTERNAL));
        CHECK(strcmp(err->step, "parse") == 0 ||
              strcmp(err->step, "validate") == 0);
        CHECK(n > 0 && n < ERR_MSG_LEN);
        for (size_t i = 0; i < n; i++)
                CHECK((unsigned char)err->msg[i] >= 0x20 &&
                      err->msg[i] != 0x7f);
        CHECK(ref_utf8(err->msg, n));
}

/* ---- the two parsers ---- */

static void check_destroy(const struct destroy_request *r) {
        CHECK(ref_thopter_id(r->thopter_id));
        CHECK(r->request_id[0] == '\0' || ref_request_id(r->request_id));
        check_text(r->reason, 1024);
}

static void check_provision(const struct provision_request *r) {
        char joined[sizeof(r->owner) + sizeof(r->repo_name) + 1];
        const char *loc = r->mention_location ? r->mention_location : "body";

        CHECK(ref_request_id(r->request_id));
        CHECK(ref_repo_part(r->owner));
        CHECK(ref_repo_part(r->repo_name));
        snprintf(joined, sizeof(joined), "%s/%s", r->owner, r->repo_name);
        CHECK(strcmp(joined, r->repository) == 0);
        CHECK(matches(r->issue_number, 1, 10, R_DIGITS, R_DIGITS));
        CHECK(matches(r->gc, 1, 40, R_LOWER R_DIGITS, R_LOWER R_DIGITS "-"));
        CHECK(
            matches(r->prompt, 1, 64, R_LOWER R_DIGITS, R_LOWER R_DIGITS "_-"));
        CHECK(r->issue_title && r->issue_body && r->github_json);
        check_text(r->issue_title, 1024);
        check_text(r->issue_body, 256 * 1024);
        check_text(r->issue_url, 0);
        check_text(r->issue_author, 0);
        check_text(r->mention_author, 0);
        CHECK(strcmp(loc, "body") == 0 || strcmp(loc, "comment") == 0);
        CHECK(r->mention_comment_id >= 0 &&
              r->mention_comment_id <= 9007199254740991LL);
        check_text(r->comments_json, 0);
        check_text(r->github_json, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct destroy_request d;
        struct provision_request p;
        struct err derr = {0}, perr = {0};
        /* A buffer of exactly @p size bytes with no terminator, as a Kafka
         * payload arrives: ASan catches any read past the end. */
        int drc = request_parse_destroy(data, size, &d, &derr);
        int prc = request_parse_provision(data, size, &p, &perr);

        if (drc == 0) {
                CHECK(derr.kind == ERR_NONE);
                check_destroy(&d);
        } else {
                CHECK(drc == -1);
                check_failure(&derr);
                CHECK(all_zero(&d, sizeof(d)));
        }
        if (prc == 0) {
                CHECK(perr.kind == ERR_NONE);
                check_provision(&p);
        } else {
                CHECK(prc == -1);
                check_failure(&perr);
                CHECK(all_zero(&p, sizeof(p)));
        }

        /* Shared steps: a "parse" failure, and the size cap, do not depend
         * on which kind of request was expected. */
        if (derr.kind == ERR_PERMANENT && strcmp(derr.step, "parse") == 0)
                CHECK(perr.kind == ERR_PERMANENT &&
                      strcmp(perr.step, "parse") == 0 &&
                      strcmp(perr.msg, derr.msg) == 0);
        if (perr.kind == ERR_PERMANENT && strcmp(perr.step, "parse") == 0)
                CHECK(derr.kind == ERR_PERMANENT &&
                      strcmp(derr.step, "parse") == 0);
        if (size > REQUEST_PAYLOAD_MAX)
                CHECK(drc == -1 && prc == -1 &&
                      strncmp(derr.msg, "payload: ", 9) == 0);

        request_destroy_free(&d);
        request_provision_free(&p);
        return 0;
}
