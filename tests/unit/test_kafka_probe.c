/* test_kafka_probe.c - the decision of kafka_probe.c on librdkafka 2.0.2's
 * FEATURE log lines, captured from real brokers into tests/data/kafka
 * (the mock cluster, Kafka 0.9.0.1 with and without api.version.request),
 * plus made-up sequences; and kafka_conf_scope() on librdkafka's own table.
 */
#include "kafka_conf.h"
#include "kafka_probe.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static enum kafka_headers_verdict
from_file(const char *name, char *why, size_t cap) {
        char path[512], line[1024];
        struct kafka_features f = {0};
        FILE *fp;

        snprintf(path, sizeof(path), "%s/kafka/%s", TEST_DATA_DIR, name);
        fp = fopen(path, "r");
        cr_assert_not_null(fp, "%s", path);
        while (fgets(line, sizeof(line), fp)) {
                line[strcspn(line, "\n")] = '\0';
                kafka_features_add(&f, line);
        }
        fclose(fp);
        return kafka_features_verdict(&f, why, cap);
}

Test(kafka_probe, mock_cluster_carries_headers) {
        char why[512] = "";
        cr_expect_eq(from_file("features-mock-2.0.2.log", why, sizeof(why)),
                     KAFKA_HEADERS_OK);
}

Test(kafka_probe, kafka_09_with_fallback_is_missing_headers) {
        char why[512] = "";
        cr_expect_eq(
            from_file("features-kafka-0.9-fallback.log", why, sizeof(why)),
            KAFKA_HEADERS_MISSING);
        cr_expect(strstr(why,
                         "127.0.0.1:19092/bootstrap cannot carry record "
                         "headers (it speaks BrokerBalancedConsumer,") != NULL,
                  "%s", why);
}

Test(kafka_probe, kafka_09_default_config_never_answers_apiversion) {
        char why[512] = "";
        cr_expect_eq(
            from_file("features-kafka-0.9-default.log", why, sizeof(why)),
            KAFKA_HEADERS_MISSING);
        cr_expect(strstr(why, "does not answer ApiVersion") != NULL, "%s", why);
}

struct row {
        const char *lines[6];
        enum kafka_headers_verdict want;
        const char *why;
};

#define B1 "[thrd:b1:9092/bootstrap]: b1:9092/bootstrap: "
#define B2 "[thrd:b2:9092/bootstrap]: b2:9092/bootstrap: "
#define UP "Updated enabled protocol features "
#define NEW                                                                    \
        "to MsgVer1,ApiVersion,BrokerBalancedConsumer,ThrottleTime,Sasl,"      \
        "BrokerGroupCoordinator,LZ4,OffsetTime,MsgVer2,IdempotentProducer,"    \
        "ZSTD"
#define OLD "to MsgVer1,ApiVersion,BrokerBalancedConsumer,ThrottleTime,LZ4"

static const struct row rows[] = {
    {{NULL}, KAFKA_HEADERS_UNKNOWN, "no line: no broker answered"},
    {{B1 UP "+ApiVersion to ApiVersion"},
     KAFKA_HEADERS_UNKNOWN,
     "only the placeholder before the ApiVersion answer"},
    {{B1 UP "+ApiVersion to ApiVersion", B1 UP "-ApiVersion to "},
     KAFKA_HEADERS_UNKNOWN,
     "one unanswered ApiVersion may be a blip"},
    {{B1 UP "+ApiVersion to ApiVersion", B1 UP NEW},
     KAFKA_HEADERS_OK,
     "a 0.11+ broker"},
    {{B1 UP "+ApiVersion to ApiVersion", B1 UP OLD},
     KAFKA_HEADERS_MISSING,
     "a 0.10 broker: ApiVersion but no MsgVer2"},
    {{B1 UP NEW, B2 UP OLD},
     KAFKA_HEADERS_MISSING,
     "one old broker among new ones"},
    {{B1 UP "to MsgVer1,MsgVer20"},
     KAFKA_HEADERS_MISSING,
     "MsgVer20 is not MsgVer2"},
    {{B1 UP NEW, B1 UP "-MsgVer2 to MsgVer1"},
     KAFKA_HEADERS_OK,
     "a +/- line is not a whole set: the last whole set counts"},
    {{"Updated enabled protocol features to MsgVer1", "garbage",
      B1 "Updated enabled protocol feature to X"},
     KAFKA_HEADERS_UNKNOWN,
     "lines without a broker name or the marker are ignored"},
    {{"b3:9092/3: " UP OLD},
     KAFKA_HEADERS_MISSING,
     "a line without a thread prefix"},
};

Test(kafka_probe, verdict_table) {
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                struct kafka_features f = {0};
                char why[512] = "";
                for (int k = 0; k < 6 && rows[i].lines[k]; k++)
                        kafka_features_add(&f, rows[i].lines[k]);
                cr_expect_eq(kafka_features_verdict(&f, why, sizeof(why)),
                             rows[i].want, "row %zu: %s (%s)", i, rows[i].why,
                             why);
        }
}

Test(kafka_probe, many_brokers_do_not_overflow) {
        struct kafka_features f = {0};
        char line[256], why[256];

        for (int i = 0; i < 3 * KAFKA_PROBE_MAX_BROKERS; i++) {
                snprintf(line, sizeof(line), "b%d:9092/%d: " UP NEW, i, i);
                kafka_features_add(&f, line);
        }
        cr_expect_eq(f.n, KAFKA_PROBE_MAX_BROKERS);
        cr_expect_eq(kafka_features_verdict(&f, why, sizeof(why)),
                     KAFKA_HEADERS_OK);
}

Test(kafka_conf, scope_follows_librdkafkas_table) {
        cr_expect_eq(kafka_conf_scope("fetch.wait.max.ms"), 'C');
        cr_expect_eq(kafka_conf_scope("group.id"), 'C');
        cr_expect_eq(kafka_conf_scope("auto.offset.reset"), 'C');
        cr_expect_eq(kafka_conf_scope("linger.ms"), 'P');
        cr_expect_eq(kafka_conf_scope("enable.idempotence"), 'P');
        cr_expect_eq(kafka_conf_scope("acks"), 'P');
        cr_expect_eq(kafka_conf_scope("bootstrap.servers"), '*');
        cr_expect_eq(kafka_conf_scope("sasl.password"), '*');
        cr_expect_eq(kafka_conf_scope("linger"), 0);
        cr_expect_eq(kafka_conf_scope("no.such.property"), 0);
}

Test(kafka_conf, each_client_gets_only_its_properties) {
        char *props[] = {"fetch.wait.max.ms=10", "linger.ms=7", "client.id=x"};
        char buf[64];
        size_t n;
        struct err err = {0};

        rd_kafka_conf_t *p =
            kafka_conf_new_for(RD_KAFKA_PRODUCER, "h:1", props, 3, &err);
        rd_kafka_conf_t *c =
            kafka_conf_new_for(RD_KAFKA_CONSUMER, "h:1", props, 3, &err);
        cr_assert(p && c, "%s", err.msg);
        n = sizeof(buf);
        cr_expect_eq(rd_kafka_conf_get(p, "linger.ms", buf, &n),
                     RD_KAFKA_CONF_OK);
        cr_expect_str_eq(buf, "7");
        n = sizeof(buf);
        rd_kafka_conf_get(p, "fetch.wait.max.ms", buf, &n);
        cr_expect_str_neq(buf, "10", "the producer's is librdkafka's default");
        n = sizeof(buf);
        rd_kafka_conf_get(c, "fetch.wait.max.ms", buf, &n);
        cr_expect_str_eq(buf, "10");
        n = sizeof(buf);
        rd_kafka_conf_get(c, "client.id", buf, &n);
        cr_expect_str_eq(buf, "x", "both get * properties");
        rd_kafka_conf_destroy(p);
        rd_kafka_conf_destroy(c);
        /* an unknown property is still refused */
        char *bad[] = {"no.such.property=1"};
        cr_expect_null(
            kafka_conf_new_for(RD_KAFKA_CONSUMER, "h:1", bad, 1, &err));
        cr_expect(strstr(err.msg, "no.such.property") != NULL, "%s", err.msg);
}

Test(kafka_conf, secret_properties) {
        cr_expect(kafka_conf_is_secret("sasl.password", 13));
        cr_expect(kafka_conf_is_secret("ssl.key.password", 16));
        cr_expect(kafka_conf_is_secret("sasl.oauthbearer.client.secret", 30));
        cr_expect(kafka_conf_is_secret("ssl.key.pem", 11));
        cr_expect(!kafka_conf_is_secret("ssl.key.location", 16));
        cr_expect(!kafka_conf_is_secret("sasl.username", 13));
        cr_expect(!kafka_conf_is_secret("sasl.password", 8), "only len bytes");
}
