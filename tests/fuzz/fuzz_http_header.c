/* fuzz_http_header.c - libFuzzer target over the response-header handling
 * of http.c: what a hostile server's header lines can do to
 * http_resp_header() and to the Retry-After parser behind the backoff.
 *
 * The input is cut at each '\n' into header lines, each handed over with
 * its '\n' and no NUL after it (as libcurl's header callback does), into one
 * struct http_resp. After each line, and at the end:
 * - retry_after and request_id are NUL-terminated inside their buffers, hold
 *   no control byte (request_id reaches one-line error messages), and
 *   neither starts nor (unless cut at the buffer's size) ends with a blank;
 * - a status line ("HTTP/…") clears both;
 * - http_retry_after_ms() of what was kept is -1 or 0 … one day in ms, and
 *   so is that of the whole input as a C string (NUL bytes end it);
 * - a value that is all digits gives exactly min(value, 86400) s.
 */
#include "http.h"
#include "fuzz_common.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS 86400000L
#define NOW_MS 1767225600000LL /* 2026-01-01T00:00:00Z */

static void check_value(const char *v, size_t cap) {
        size_t n = strnlen(v, cap);

        CHECK(n < cap);
        for (size_t i = 0; i < n; i++)
                CHECK((unsigned char)v[i] >= 0x20 && v[i] != 0x7f);
        if (n > 0) {
                CHECK(v[0] != ' ' && v[0] != '\t');
                /* (a value cut at the buffer's size may end in a blank) */
                CHECK(n == cap - 1 || (v[n - 1] != ' ' && v[n - 1] != '\t'));
        }
}

static void check_retry_after(const char *v) {
        long ms = http_retry_after_ms(v, NOW_MS);
        size_t n = strlen(v), digits = strspn(v, "0123456789");

        CHECK(ms == -1 || (ms >= 0 && ms <= DAY_MS));
        if (n > 0 && digits == n) {
                /* delta-seconds: exact, clamped to a day */
                long want = DAY_MS;
                if (n <= 6)
                        want = strtol(v, NULL, 10) * 1000L;
                if (want > DAY_MS)
                        want = DAY_MS;
                CHECK(ms == want);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct http_resp resp = {0};
        size_t pos = 0;

        while (pos < size) {
                const uint8_t *nl = memchr(data + pos, '\n', size - pos);
                size_t n = nl ? (size_t)(nl - (data + pos)) + 1 : size - pos;
                /* Exactly the line's bytes on the heap: ASan sees any read
                 * past its end. */
                char *line = malloc(n ? n : 1);

                if (!line)
                        return 0;
                memcpy(line, data + pos, n);
                http_resp_header(&resp, line, n);
                if (n >= 5 && memcmp(line, "HTTP/", 5) == 0)
                        CHECK(resp.retry_after[0] == '\0' &&
                              resp.request_id[0] == '\0');
                free(line);
                check_value(resp.retry_after, sizeof(resp.retry_after));
                check_value(resp.request_id, sizeof(resp.request_id));
                pos += n;
        }
        check_retry_after(resp.retry_after);

        /* The whole input as one Retry-After value. */
        char *s = malloc(size + 1);
        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = '\0';
        long ms = http_retry_after_ms(s, NOW_MS);
        CHECK(ms == -1 || (ms >= 0 && ms <= DAY_MS));
        free(s);
        return 0;
}
