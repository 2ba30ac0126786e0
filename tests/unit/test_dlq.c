/* test_dlq.c - dlq.c's headers (contract section 4): where the record came
 * from and why it failed, the original headers kept, and the reduced form
 * of a record too big to dead-letter whole. */
#include "dlq.h"
#include "log.h"
#include "test_helpers.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 2025-09-10T08:00:00.123Z */
#define FAILED_AT_MS 1757491200123LL

/* Independent digests: `head -c N /dev/zero | tr '\0' C | sha256sum`. */
#define SHA256_65537_A                                                         \
        "008ffc88d3c96a9f307524eb361e47c5222a887fc45fa0c1fb8d429c5c23b430"
#define SHA256_1025_K                                                          \
        "011cc8dcade24f43d2d7f95605d8481da1d0b86475def49be02bfc20cee86e65"

static char topic[] = "thopter.destroy";

static void init_job(struct job *job) {
        static char key[] = "148e21a3c96989";
        static char value[] = "{\"thopterId\":\"148e21a3c96989\"}";

        memset(job, 0, sizeof(*job));
        job->rec.topic = topic;
        job->rec.partition = 3;
        job->rec.offset = 1234567;
        job->rec.timestamp_ms = 1757491100000LL;
        job->rec.key = key;
        job->rec.key_len = strlen(key);
        job->rec.value = value;
        job->rec.value_len = strlen(value);
        job->rec.group = "thopter-destroyer";
        job->rec.kind = "destroy";
        job->attempt = 4;
}

static void init_failure(struct err *failure) {
        memset(failure, 0, sizeof(*failure));
        err_set(failure, ERR_TRANSIENT, 503,
                "fly: delete 148e21a3c96989: "
                "HTTP 503");
        err_classify(failure, ERRC_FLY_UNAVAILABLE, "delete");
}

/* How many headers are called @p name. */
static int count(const rd_kafka_headers_t *h, const char *name) {
        const void *val;
        size_t size;
        int n = 0;

        while (rd_kafka_header_get(h, (size_t)n, name, &val, &size) ==
               RD_KAFKA_RESP_ERR_NO_ERROR)
                n++;
        return n;
}

/* The one header called @p name as a string; the test fails unless there is
 * exactly one. Valid until the headers are destroyed... copied here. */
static const char *one(const rd_kafka_headers_t *h, const char *name) {
        static char buf[8][256];
        static int next;
        const void *val;
        size_t size;
        char *out = buf[next++ % 8];

        cr_assert_eq(count(h, name), 1, "%s: %d headers", name, count(h, name));
        cr_assert_eq(rd_kafka_header_get_last(h, name, &val, &size),
                     RD_KAFKA_RESP_ERR_NO_ERROR, "%s", name);
        cr_assert_lt(size, sizeof(buf[0]), "%s", name);
        memcpy(out, val, size);
        out[size] = '\0';
        return out;
}

Test(dlq, every_contract_header_with_its_value) {
        struct job job;
        struct err failure;
        rd_kafka_headers_t *h;

        init_job(&job);
        init_failure(&failure);
        h = dlq_headers(&job, &failure, 0, FAILED_AT_MS);
        cr_assert_not_null(h);
        cr_expect_str_eq(one(h, "thopter.dlq.topic"), "thopter.destroy");
        cr_expect_str_eq(one(h, "thopter.dlq.partition"), "3");
        cr_expect_str_eq(one(h, "thopter.dlq.offset"), "1234567");
        cr_expect_str_eq(one(h, "thopter.dlq.timestamp"), "1757491100000");
        cr_expect_str_eq(one(h, "thopter.dlq.group"), "thopter-destroyer");
        cr_expect_str_eq(one(h, "thopter.dlq.error.class"), "fly_unavailable");
        cr_expect_str_eq(one(h, "thopter.dlq.error.message"),
                         "fly: delete 148e21a3c96989: HTTP 503");
        cr_expect_str_eq(one(h, "thopter.dlq.error.step"), "delete");
        cr_expect_str_eq(one(h, "thopter.dlq.attempts"), "4");
        cr_expect_str_eq(one(h, "thopter.dlq.failed_at"),
                         "2025-09-10T08:00:00.123Z");
        /* Nothing else: no original headers, not reduced. */
        cr_expect_eq(rd_kafka_header_cnt(h), 10);
        cr_expect_eq(count(h, "thopter.dlq.truncated"), 0);
        rd_kafka_headers_destroy(h);
}

Test(dlq, defaults_for_what_the_failure_does_not_say) {
        struct job job;
        struct err failure = {0};
        rd_kafka_headers_t *h;

        init_job(&job);
        job.attempt = 0;
        job.rec.group = NULL;
        job.rec.offset = 0;
        job.rec.partition = 0;
        failure.kind = ERR_PERMANENT; /* no class, no step, no message */
        h = dlq_headers(&job, &failure, 0, 0);
        cr_expect_str_eq(one(h, "thopter.dlq.error.class"), "internal");
        cr_expect_str_eq(one(h, "thopter.dlq.error.step"), "internal");
        cr_expect_str_eq(one(h, "thopter.dlq.error.message"), "failed");
        cr_expect_str_eq(one(h, "thopter.dlq.attempts"), "1");
        cr_expect_str_eq(one(h, "thopter.dlq.group"), "");
        cr_expect_str_eq(one(h, "thopter.dlq.partition"), "0");
        cr_expect_str_eq(one(h, "thopter.dlq.offset"), "0");
        cr_expect_str_eq(one(h, "thopter.dlq.failed_at"),
                         "1970-01-01T00:00:00.000Z");
        rd_kafka_headers_destroy(h);
}

/* The record's own headers of a replayed dead letter. */
static rd_kafka_headers_t *replayed_headers(void) {
        static const char binary[] = {'\0', '\xff', '\x01'};
        rd_kafka_headers_t *orig = rd_kafka_headers_new(8);

        rd_kafka_header_add(orig, "traceparent", -1, "00-abc-01", -1);
        rd_kafka_header_add(orig, "thopter.dlq.error.class", -1, "ssh", -1);
        rd_kafka_header_add(orig, "thopter.dlq.attempts", -1, "9", -1);
        rd_kafka_header_add(orig, "thopter.replay.count", -1, "2", -1);
        rd_kafka_header_add(orig, "bin", -1, binary, sizeof(binary));
        rd_kafka_header_add(orig, "empty", -1, NULL, 0);
        rd_kafka_header_add(orig, "thopter.dlq.topic", -1, "elsewhere", -1);
        return orig;
}

Test(dlq, original_headers_kept_earlier_dead_letter_context_replaced) {
        struct job job;
        struct err failure;
        rd_kafka_headers_t *h;
        const void *val;
        size_t size;

        init_job(&job);
        init_failure(&failure);
        job.rec.headers = replayed_headers();
        h = dlq_headers(&job, &failure, 0, FAILED_AT_MS);

        cr_expect_str_eq(one(h, "traceparent"), "00-abc-01");
        cr_expect_str_eq(one(h, "thopter.replay.count"), "2");
        cr_assert_eq(rd_kafka_header_get_last(h, "bin", &val, &size),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
        cr_expect_eq(size, 3);
        cr_expect_eq(memcmp(val, "\0\xff\x01", 3), 0);
        cr_assert_eq(rd_kafka_header_get_last(h, "empty", &val, &size),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
        cr_expect_null(val);
        /* The old thopter.dlq.* are gone, the new ones are there once. */
        cr_expect_str_eq(one(h, "thopter.dlq.error.class"), "fly_unavailable");
        cr_expect_str_eq(one(h, "thopter.dlq.attempts"), "4");
        cr_expect_str_eq(one(h, "thopter.dlq.topic"), "thopter.destroy");
        cr_expect_eq(rd_kafka_header_cnt(h), 4 + 10);

        /* The originals come first, in their order. */
        const char *names[4];
        for (size_t i = 0; i < 4; i++)
                cr_assert_eq(
                    rd_kafka_header_get_all(h, i, &names[i], &val, &size),
                    RD_KAFKA_RESP_ERR_NO_ERROR);
        cr_expect_str_eq(names[0], "traceparent");
        cr_expect_str_eq(names[1], "thopter.replay.count");
        cr_expect_str_eq(names[2], "bin");
        cr_expect_str_eq(names[3], "empty");

        rd_kafka_headers_destroy(h);
        rd_kafka_headers_destroy(job.rec.headers);
}

/* Non-zero when @p needle (a string) is among the @p size bytes at @p hay. */
static int has_bytes(const void *hay, size_t size, const char *needle) {
        size_t n = strlen(needle);

        for (size_t i = 0; hay && i + n <= size; i++)
                if (memcmp((const char *)hay + i, needle, n) == 0)
                        return 1;
        return 0;
}

Test(dlq, a_secret_never_reaches_the_message) {
        const char *secret = "ghp_0123456789abcdefghijklmnopqrstuvwxyz";
        struct job job;
        struct err failure;
        rd_kafka_headers_t *h;
        const char *msg;

        init_job(&job);
        init_failure(&failure);
        /* Written past err_set() (which redacts too): dlq must redact. */
        snprintf(failure.msg, sizeof(failure.msg),
                 "git: clone https://x-access-token:%s@github.com/o/r: 403",
                 secret);
        log_add_secret(secret);
        h = dlq_headers(&job, &failure, 0, FAILED_AT_MS);
        msg = one(h, "thopter.dlq.error.message");
        cr_expect_str_eq(
            msg, "git: clone https://x-access-token:[REDACTED]@github.com/o/r: "
                 "403");
        for (size_t i = 0;; i++) {
                const char *name;
                const void *val;
                size_t size;

                if (rd_kafka_header_get_all(h, i, &name, &val, &size) !=
                    RD_KAFKA_RESP_ERR_NO_ERROR)
                        break;
                cr_expect(!has_bytes(val, size, "0123456789abcdef"), "%s",
                          name);
        }
        rd_kafka_headers_destroy(h);
        log_clear_secrets();
}

struct reduced_case {
        size_t value_len, key_len;
        const char *value_sha, *key_sha; /* NULL: header absent */
};

Test(dlq, reduced_form_says_what_was_cut) {
        static const struct reduced_case cases[] = {
            /* Reduced for another reason (the broker refused the size):
             * nothing over the caps, only the value size. */
            {30, 14, NULL, NULL},
            {DLQ_REDUCED_VALUE_MAX, DLQ_REDUCED_KEY_MAX, NULL, NULL},
            {DLQ_REDUCED_VALUE_MAX + 1, 14, SHA256_65537_A, NULL},
            {30, DLQ_REDUCED_KEY_MAX + 1, NULL, SHA256_1025_K},
            {DLQ_REDUCED_VALUE_MAX + 1, DLQ_REDUCED_KEY_MAX + 1, SHA256_65537_A,
             SHA256_1025_K},
        };
        char *value = test_repeat("a", DLQ_REDUCED_VALUE_MAX + 1);
        char *key = test_repeat("k", DLQ_REDUCED_KEY_MAX + 1);

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const struct reduced_case *c = &cases[i];
                struct job job;
                struct err failure;
                rd_kafka_headers_t *h;
                char size[32];

                init_job(&job);
                init_failure(&failure);
                job.rec.headers = replayed_headers();
                job.rec.value = value;
                job.rec.value_len = c->value_len;
                job.rec.key = key;
                job.rec.key_len = c->key_len;
                h = dlq_headers(&job, &failure, 1, FAILED_AT_MS);

                /* The originals are left out, replay count included. */
                cr_expect_eq(count(h, "traceparent"), 0, "case %zu", i);
                cr_expect_eq(count(h, "bin"), 0, "case %zu", i);
                cr_expect_eq(count(h, "thopter.replay.count"), 0, "case %zu",
                             i);
                /* The context is all there. */
                cr_expect_str_eq(one(h, "thopter.dlq.error.class"),
                                 "fly_unavailable", "case %zu", i);
                cr_expect_str_eq(one(h, "thopter.dlq.offset"), "1234567",
                                 "case %zu", i);

                snprintf(size, sizeof(size), "%zu", c->value_len);
                cr_expect_str_eq(one(h, "thopter.dlq.truncated"), size,
                                 "case %zu", i);
                if (c->value_sha) {
                        cr_expect_str_eq(
                            one(h, "thopter.dlq.truncated.value_size"), size,
                            "case %zu", i);
                        cr_expect_str_eq(
                            one(h, "thopter.dlq.truncated.value_sha256"),
                            c->value_sha, "case %zu", i);
                } else {
                        cr_expect_eq(
                            count(h, "thopter.dlq.truncated.value_size"), 0,
                            "case %zu", i);
                        cr_expect_eq(
                            count(h, "thopter.dlq.truncated.value_sha256"), 0,
                            "case %zu", i);
                }
                if (c->key_sha) {
                        snprintf(size, sizeof(size), "%zu", c->key_len);
                        cr_expect_str_eq(
                            one(h, "thopter.dlq.truncated.key_size"), size,
                            "case %zu", i);
                        cr_expect_str_eq(
                            one(h, "thopter.dlq.truncated.key_sha256"),
                            c->key_sha, "case %zu", i);
                } else {
                        cr_expect_eq(count(h, "thopter.dlq.truncated.key_size"),
                                     0, "case %zu", i);
                        cr_expect_eq(
                            count(h, "thopter.dlq.truncated.key_sha256"), 0,
                            "case %zu", i);
                }
                rd_kafka_headers_destroy(h);
                rd_kafka_headers_destroy(job.rec.headers);
        }
        free(value);
        free(key);
}
