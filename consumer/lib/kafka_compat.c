/* kafka_compat.c - see kafka_compat.h. */
#include "kafka_compat.h"

#include <string.h>
#include <strings.h>

/* Whether @prop ("key=value") sets a SCRAM mechanism (librdkafka accepts both
 * sasl.mechanisms and its alias sasl.mechanism). */
static int sets_scram(const char *prop) {
        static const char *const keys[] = {"sasl.mechanisms=",
                                           "sasl.mechanism="};
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
                size_t len = strlen(keys[i]);
                if (!strncmp(prop, keys[i], len))
                        return !strncasecmp(prop + len, "SCRAM-", 6);
        }
        return 0;
}

const char *kafka_compat_warning(char *const *props, int n, int version) {
        int scram = 0;

        /* The last setting wins, as in librdkafka. */
        for (int i = 0; i < n; i++) {
                const char *p = props[i];
                if (!strncmp(p, "sasl.mechanism", 14))
                        scram = sets_scram(p);
        }
        if (scram && version < KAFKA_COMPAT_SCRAM_FIXED)
                return "sasl.mechanisms=SCRAM-*: this librdkafka (before "
                       "2.6.1) builds a SCRAM proof that Kafka 3.8.1 and "
                       "newer (every 4.x) refuse as invalid credentials "
                       "(librdkafka #4895); against such a broker use PLAIN "
                       "over SASL_SSL, mTLS or OAUTHBEARER, or run on "
                       "librdkafka 2.6.1 or newer";
        return NULL;
}
