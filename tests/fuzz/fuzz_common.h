/* fuzz_common.h - what the libFuzzer targets of tests/fuzz share: the entry
 * point's prototype, CHECK() for their invariants, and a reference UTF-8
 * check written apart from consumer/lib. fuzz_common.c is linked into every
 * target (tests/fuzz/run-fuzz.sh).
 */
#ifndef THOPTER_FUZZ_COMMON_H
#define THOPTER_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/**
 * @brief Print "<target>: invariant failed: <cond> (<file>:<line>)" to
 * stderr, the target named after @p file, and abort: libFuzzer writes the
 * input as a reproducer.
 */
_Noreturn void
fuzz_invariant_failed(const char *cond, const char *file, int line);

/* An invariant of the target: on failure, fuzz_invariant_failed(). */
#define CHECK(cond)                                                            \
        do {                                                                   \
                if (!(cond))                                                   \
                        fuzz_invariant_failed(#cond, __FILE__, __LINE__);      \
        } while (0)

/**
 * @brief 1 when the @p n bytes at @p s are well-formed UTF-8: no overlongs,
 * surrogates or code points past U+10FFFF, nothing cut short. A NUL byte is
 * ASCII here; a caller that refuses it checks that apart.
 */
int fuzz_utf8_ok(const unsigned char *s, size_t n);

#endif
