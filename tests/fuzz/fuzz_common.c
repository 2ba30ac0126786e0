/* fuzz_common.c - see fuzz_common.h. */
#include "fuzz_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Noreturn void
fuzz_invariant_failed(const char *cond, const char *file, int line) {
        const char *base = strrchr(file, '/');
        size_t n;

        base = base ? base + 1 : file;
        n = strcspn(base, ".");
        fprintf(stderr, "%.*s: invariant failed: %s (%s:%d)\n", (int)n, base,
                cond, file, line);
        abort();
}

int fuzz_utf8_ok(const unsigned char *s, size_t n) {
        size_t i = 0;

        while (i < n) {
                unsigned char c = s[i];
                size_t k;
                uint32_t cp;

                if (c < 0x80) {
                        i++;
                        continue;
                }
                if (c >= 0xC2 && c <= 0xDF) {
                        k = 1;
                        cp = c & 0x1F;
                } else if (c >= 0xE0 && c <= 0xEF) {
                        k = 2;
                        cp = c & 0x0F;
                } else if (c >= 0xF0 && c <= 0xF4) {
                        k = 3;
                        cp = c & 0x07;
                } else {
                        return 0;
                }
                if (n - i - 1 < k)
                        return 0;
                for (size_t j = 1; j <= k; j++) {
                        if ((s[i + j] & 0xC0) != 0x80)
                                return 0;
                        cp = (cp << 6) | (s[i + j] & 0x3F);
                }
                if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
                    (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
                        return 0;
                i += k + 1;
        }
        return 1;
}
