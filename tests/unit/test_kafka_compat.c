/* test_kafka_compat.c - the start-up warning about SCRAM on a librdkafka
 * older than 2.6.1 (kafka_compat.h): which properties draw it, and that the
 * last setting wins. */
#include "kafka_compat.h"

#include <criterion/criterion.h>
#include <stddef.h>
#include <string.h>

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const int OLD = 0x020002ff; /* Debian 12's 2.0.2 */
static const int NEW = 0x020f01ff; /* 2.15.1 */

Test(kafka_compat, scram_on_an_old_librdkafka_is_warned_about) {
        char *props[] = {"security.protocol=SASL_SSL",
                         "sasl.mechanisms=SCRAM-SHA-512",
                         "sasl.username=thopter"};
        const char *w = kafka_compat_warning(props, N(props), OLD);
        cr_assert_not_null(w);
        cr_expect(strstr(w, "2.6.1") && strstr(w, "#4895"), "%s", w);
}

Test(kafka_compat, the_alias_and_any_case_count) {
        char *props[] = {"sasl.mechanism=scram-sha-256"};
        cr_expect_not_null(kafka_compat_warning(props, N(props), OLD));
}

Test(kafka_compat, nothing_to_say) {
        char *plain[] = {"sasl.mechanisms=PLAIN"};
        char *scram[] = {"sasl.mechanisms=SCRAM-SHA-256"};
        char *later_plain[] = {"sasl.mechanisms=SCRAM-SHA-256",
                               "sasl.mechanisms=PLAIN"};
        cr_expect_null(kafka_compat_warning(NULL, 0, OLD));
        cr_expect_null(kafka_compat_warning(plain, N(plain), OLD));
        cr_expect_null(kafka_compat_warning(scram, N(scram), NEW));
        cr_expect_null(
            kafka_compat_warning(scram, N(scram), KAFKA_COMPAT_SCRAM_FIXED));
        cr_expect_null(kafka_compat_warning(later_plain, N(later_plain), OLD));
}
