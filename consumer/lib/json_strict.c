/* json_strict.c - see json_strict.h: the strict syntax scan (RFC 8259 +
 * UTF-8 + paired surrogates + a depth limit) and the duplicate-key walk.
 */
#include "json_strict.h"

#include <cjson/cJSON.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Strict syntax scan (RFC 8259 + UTF-8 + paired surrogates) */

struct scan {
        const unsigned char *start;
        const unsigned char *p;
        const unsigned char *end;
        const char *why; /* set on failure */
        size_t nul_at;   /* offset of the first \u0000 escape, or SIZE_MAX */
};

static int scan_fail(struct scan *s, const char *why) {
        s->why = why;
        return -1;
}

static void scan_ws(struct scan *s) {
        while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' ||
                                 *s->p == '\n' || *s->p == '\r'))
                s->p++;
}

/* Length of the well-formed UTF-8 sequence at @p p (Unicode 15, table 3-7:
 * no overlong forms, no surrogates, nothing past U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end) {
        unsigned char lo = 0x80, hi = 0xBF;
        size_t n;

        if (p[0] >= 0xC2 && p[0] <= 0xDF)
                n = 2;
        else if (p[0] >= 0xE0 && p[0] <= 0xEF)
                n = 3;
        else if (p[0] >= 0xF0 && p[0] <= 0xF4)
                n = 4;
        else
                return 0;
        if (p[0] == 0xE0)
                lo = 0xA0;
        else if (p[0] == 0xED)
                hi = 0x9F;
        else if (p[0] == 0xF0)
                lo = 0x90;
        else if (p[0] == 0xF4)
                hi = 0x8F;
        if ((size_t)(end - p) < n)
                return 0;
        if (p[1] < lo || p[1] > hi)
                return 0;
        for (size_t i = 2; i < n; i++)
                if (p[i] < 0x80 || p[i] > 0xBF)
                        return 0;
        return n;
}

/* Four hex digits after "\u"; -1 when they are not there. */
static long scan_hex4(struct scan *s) {
        long v = 0;

        if (s->end - s->p < 4)
                return -1;
        for (int i = 0; i < 4; i++) {
                int c = s->p[i];
                v <<= 4;
                if (c >= '0' && c <= '9')
                        v |= c - '0';
                else if (c >= 'a' && c <= 'f')
                        v |= c - 'a' + 10;
                else if (c >= 'A' && c <= 'F')
                        v |= c - 'A' + 10;
                else
                        return -1;
        }
        s->p += 4;
        return v;
}

static int scan_escape(struct scan *s) {
        const unsigned char *at = s->p; /* the backslash */
        long cp, lo;

        s->p++;
        if (s->p >= s->end)
                return scan_fail(s, "unterminated string");
        if (*s->p && strchr("\"\\/bfnrt", *s->p)) {
                s->p++;
                return 0;
        }
        if (*s->p != 'u')
                return scan_fail(s, "invalid escape in a string");
        s->p++;
        cp = scan_hex4(s);
        if (cp < 0)
                return scan_fail(s, "invalid \\u escape in a string");
        if (cp == 0 && s->nul_at == SIZE_MAX)
                s->nul_at = (size_t)(at - s->start);
        if (cp >= 0xDC00 && cp <= 0xDFFF) {
                s->p = at;
                return scan_fail(s, "unpaired surrogate escape in a string");
        }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (s->end - s->p < 2 || s->p[0] != '\\' || s->p[1] != 'u') {
                        s->p = at;
                        return scan_fail(
                            s, "unpaired surrogate escape in a string");
                }
                s->p += 2;
                lo = scan_hex4(s);
                if (lo < 0xDC00 || lo > 0xDFFF) {
                        s->p = at;
                        return scan_fail(
                            s, "unpaired surrogate escape in a string");
                }
        }
        return 0;
}

static int scan_string(struct scan *s) {
        s->p++; /* the opening quote */
        while (s->p < s->end) {
                unsigned char c = *s->p;
                size_t n;

                if (c == '"') {
                        s->p++;
                        return 0;
                }
                if (c < 0x20)
                        return scan_fail(
                            s, "unescaped control character in a string");
                if (c == '\\') {
                        if (scan_escape(s) == -1)
                                return -1;
                        continue;
                }
                if (c < 0x80) {
                        s->p++;
                        continue;
                }
                n = utf8_len(s->p, s->end);
                if (n == 0)
                        return scan_fail(s, "not valid UTF-8");
                s->p += n;
        }
        return scan_fail(s, "unterminated string");
}

static int scan_digits(struct scan *s) {
        const unsigned char *from = s->p;

        while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
                s->p++;
        return s->p > from ? 0 : scan_fail(s, "invalid number");
}

/* number = [ "-" ] ( "0" / [1-9] *DIGIT ) [ "." 1*DIGIT ]
 *          [ ( "e" / "E" ) [ "+" / "-" ] 1*DIGIT ]          (RFC 8259 6) */
static int scan_number(struct scan *s) {
        if (*s->p == '-')
                s->p++;
        if (s->p < s->end && *s->p == '0') {
                s->p++;
                if (s->p < s->end && *s->p >= '0' && *s->p <= '9')
                        return scan_fail(s, "number with a leading zero");
        } else if (scan_digits(s) == -1) {
                return -1;
        }
        if (s->p < s->end && *s->p == '.') {
                s->p++;
                if (scan_digits(s) == -1)
                        return -1;
        }
        if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
                s->p++;
                if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
                        s->p++;
                if (scan_digits(s) == -1)
                        return -1;
        }
        return 0;
}

static int scan_literal(struct scan *s, const char *word) {
        size_t n = strlen(word);

        if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
                return scan_fail(s, "unexpected character");
        s->p += n;
        return 0;
}

static int scan_value(struct scan *s, int depth);

/* Object or array, after its opening bracket. */
static int scan_container(struct scan *s, int depth, int is_object) {
        unsigned char close = is_object ? '}' : ']';

        if (depth >= JSON_STRICT_DEPTH_MAX)
                return scan_fail(s, "nested deeper than 64 levels");
        s->p++;
        scan_ws(s);
        if (s->p < s->end && *s->p == close) {
                s->p++;
                return 0;
        }
        for (;;) {
                scan_ws(s);
                if (is_object) {
                        if (s->p >= s->end || *s->p != '"')
                                return scan_fail(s, "expected a member name");
                        if (scan_string(s) == -1)
                                return -1;
                        scan_ws(s);
                        if (s->p >= s->end || *s->p != ':')
                                return scan_fail(s, "expected ':'");
                        s->p++;
                }
                if (scan_value(s, depth + 1) == -1)
                        return -1;
                scan_ws(s);
                if (s->p < s->end && *s->p == ',') {
                        s->p++;
                        continue;
                }
                if (s->p < s->end && *s->p == close) {
                        s->p++;
                        return 0;
                }
                return scan_fail(s, is_object ? "expected ',' or '}'"
                                              : "expected ',' or ']'");
        }
}

static int scan_value(struct scan *s, int depth) {
        scan_ws(s);
        if (s->p >= s->end)
                return scan_fail(s, "unexpected end");
        switch (*s->p) {
        case '{':
                return scan_container(s, depth, 1);
        case '[':
                return scan_container(s, depth, 0);
        case '"':
                return scan_string(s);
        case 't':
                return scan_literal(s, "true");
        case 'f':
                return scan_literal(s, "false");
        case 'n':
                return scan_literal(s, "null");
        default:
                if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
                        return scan_number(s);
                return scan_fail(s, "unexpected character");
        }
}

int json_strict_scan(const void *buf,
                     size_t len,
                     struct json_strict_result *out) {
        struct scan s;

        /* No arithmetic on a NULL pointer: an absent buffer is an empty one. */
        s.start = s.p = s.end = buf ? buf : (const unsigned char *)"";
        if (buf)
                s.end = s.start + len;
        s.why = NULL;
        s.nul_at = SIZE_MAX;
        if (scan_value(&s, 0) == 0) {
                scan_ws(&s);
                if (s.p != s.end)
                        scan_fail(&s, "more after the JSON value");
        }
        out->why = s.why;
        out->at = (size_t)(s.p - s.start);
        out->nul_at = s.nul_at;
        return s.why ? -1 : 0;
}

/* ------------------------------------------------------------------------ */
/* Duplicate keys (I-JSON 2.3), on the tree cJSON built */

static int cmp_keys(const void *a, const void *b) {
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void path_join(char *out, size_t n, const char *path, const char *key) {
        if (*path)
                snprintf(out, n, "%s.%s", path, key);
        else
                snprintf(out, n, "%s", key);
}

/* The first duplicate key in @p item or below it: 1 with its path in @p dup
 * (JSON_STRICT_PATH_MAX bytes), 0 for none, -1 out of memory. Sorting the
 * keys keeps a hostile object of 50000 members at O(n log n). */
static int find_duplicate(const cJSON *item, const char *path, char *dup) {
        char sub[JSON_STRICT_PATH_MAX];
        const cJSON *c;
        size_t n = 0, i = 0;
        const char **keys = NULL;
        int rc = -1;

        for (c = item->child; c; c = c->next)
                n++;
        if (cJSON_IsObject(item) && n > 1) {
                keys = malloc(n * sizeof(*keys));
                if (!keys)
                        return -1;
                for (c = item->child; c; c = c->next)
                        keys[i++] = c->string;
                qsort(keys, n, sizeof(*keys), cmp_keys);
                for (i = 1; i < n; i++) {
                        if (strcmp(keys[i - 1], keys[i]) == 0) {
                                path_join(dup, JSON_STRICT_PATH_MAX, path,
                                          keys[i]);
                                rc = 1;
                                goto out;
                        }
                }
        }
        i = 0;
        for (c = item->child; c; c = c->next, i++) {
                if (cJSON_IsObject(item))
                        path_join(sub, sizeof(sub), path, c->string);
                else
                        snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
                rc = find_duplicate(c, sub, dup);
                if (rc != 0)
                        goto out;
        }
        rc = 0;
out:
        free(keys);
        return rc;
}

int json_strict_duplicate(const struct cJSON *root, char *path, size_t cap) {
        char found[JSON_STRICT_PATH_MAX] = "";
        int rc = find_duplicate(root, "", found);

        if (rc == 1 && cap > 0)
                snprintf(path, cap, "%s", found);
        return rc;
}
