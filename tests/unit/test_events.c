/* test_events.c - events.c: the status event JSON of contract section 3,
 * field by field, with its presence rules. */
#include "events.h"
#include "log.h"
#include "test_helpers.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 2025-09-10T08:00:00.123Z */
#define WALL_MS 1757491200123LL

static void init_job(struct job *job) {
        memset(job, 0, sizeof(*job));
        job->rec.topic = "thopter.provision";
        job->rec.kind = "provision";
        job->rec.received_mono_ms = 1000;
        snprintf(job->request_id, sizeof(job->request_id), "%s",
                 "provision-1757491200000-9f3c1e");
}

/* The event as a cJSON object; the test fails on anything else. */
static cJSON *event(const struct job *job,
                    const char *state,
                    const char *step,
                    const struct err *failure,
                    int64_t wall_ms,
                    int64_t mono_ms) {
        char *json = events_json(job, state, step, failure, wall_ms, mono_ms);
        cJSON *o;

        cr_assert_not_null(json);
        o = cJSON_Parse(json);
        cr_assert(cJSON_IsObject(o), "not a JSON object: %s", json);
        free(json);
        return o;
}

static const char *str(const cJSON *o, const char *key) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

        cr_assert(cJSON_IsString(v), "%s: not a string", key);
        return v->valuestring;
}

static double num(const cJSON *o, const char *key) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

        cr_assert(cJSON_IsNumber(v), "%s: not a number", key);
        return v->valuedouble;
}

struct presence_case {
        const char *step;
        int machine; /* job_set_machine() called */
        int failure; /* 0 none, 1 ERR_NONE struct, 2 a failure */
        const char *keys;
};

Test(events, optional_fields_appear_only_when_given) {
        static const struct presence_case cases[] = {
            {NULL, 0, 0, "requestId,kind,state,attempt,at,elapsedMs"},
            {"clone", 0, 0, "requestId,kind,state,step,attempt,at,elapsedMs"},
            {NULL, 1, 0,
             "requestId,kind,state,thopterId,machineName,region,attempt,at,"
             "elapsedMs"},
            {NULL, 0, 1, "requestId,kind,state,attempt,at,elapsedMs"},
            {"create", 1, 2,
             "requestId,kind,state,step,thopterId,machineName,region,attempt,"
             "error,at,elapsedMs"},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const struct presence_case *c = &cases[i];
                struct job job;
                struct err failure = {0};
                char keys[256];
                cJSON *o;

                init_job(&job);
                if (c->machine)
                        job_set_machine(&job, "148e21a3c96989", "thopter-42-x",
                                        "ord");
                if (c->failure == 2)
                        err_set(&failure, ERR_TRANSIENT, 503, "HTTP 503");
                o = event(&job, "step", c->step, c->failure ? &failure : NULL,
                          WALL_MS, 1000);
                test_json_keys(o, keys, sizeof(keys));
                cr_expect_str_eq(keys, c->keys, "case %zu", i);
                cJSON_Delete(o);
        }
}

Test(events, fields_carry_the_job) {
        struct job job;
        cJSON *o;

        init_job(&job);
        job_set_machine(&job, "148e21a3c96989", "thopter-42-x", "ord");
        job.attempt = 3;
        o = event(&job, "retrying", "create", NULL, WALL_MS, 1000 + 2500);
        cr_expect_str_eq(str(o, "requestId"), "provision-1757491200000-9f3c1e");
        cr_expect_str_eq(str(o, "kind"), "provision");
        cr_expect_str_eq(str(o, "state"), "retrying");
        cr_expect_str_eq(str(o, "step"), "create");
        cr_expect_str_eq(str(o, "thopterId"), "148e21a3c96989");
        cr_expect_str_eq(str(o, "machineName"), "thopter-42-x");
        cr_expect_str_eq(str(o, "region"), "ord");
        cr_expect_eq(num(o, "attempt"), 3);
        cr_expect_str_eq(str(o, "at"), "2025-09-10T08:00:00.123Z");
        cr_expect_eq(num(o, "elapsedMs"), 2500);
        cJSON_Delete(o);
}

Test(events, attempt_counts_from_one) {
        static const int attempts[][2] = {{0, 1}, {-5, 1}, {1, 1}, {7, 7}};

        for (size_t i = 0; i < sizeof(attempts) / sizeof(attempts[0]); i++) {
                struct job job;
                cJSON *o;

                init_job(&job);
                job.attempt = attempts[i][0];
                o = event(&job, "started", NULL, NULL, WALL_MS, 1000);
                cr_expect_eq(num(o, "attempt"), attempts[i][1], "attempt %d",
                             attempts[i][0]);
                cJSON_Delete(o);
        }
}

struct error_case {
        enum err_class cls;
        const char *want;
};

Test(events, error_has_class_and_message) {
        static const struct error_case cases[] = {
            {ERRC_NONE, "internal"},
            {ERRC_FLY_UNAVAILABLE, "fly_unavailable"},
            {ERRC_FLY_REJECTED, "fly_rejected"},
            {ERRC_INVALID_REQUEST, "invalid_request"},
            {ERRC_SSH, "ssh"},
            {ERRC_TIMEOUT, "timeout"},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct job job;
                struct err failure = {0};
                const cJSON *e;
                char keys[64];
                cJSON *o;

                init_job(&job);
                err_set(&failure, ERR_PERMANENT, 422, "fly: create: HTTP 422");
                if (cases[i].cls)
                        err_classify(&failure, cases[i].cls, "create");
                o = event(&job, "failed", NULL, &failure, WALL_MS, 1000);
                e = cJSON_GetObjectItemCaseSensitive(o, "error");
                cr_assert(cJSON_IsObject(e), "case %zu", i);
                test_json_keys(e, keys, sizeof(keys));
                cr_expect_str_eq(keys, "class,message", "case %zu", i);
                cr_expect_str_eq(str(e, "class"), cases[i].want, "case %zu", i);
                cr_expect_str_eq(str(e, "message"), "fly: create: HTTP 422",
                                 "case %zu", i);
                cJSON_Delete(o);
        }
}

struct at_case {
        int64_t wall_ms;
        const char *want;
};

Test(events, at_is_utc_with_milliseconds) {
        static const struct at_case cases[] = {
            {WALL_MS, "2025-09-10T08:00:00.123Z"},
            {0, "1970-01-01T00:00:00.000Z"},
            {1757491200005LL, "2025-09-10T08:00:00.005Z"},
            {1709164799999LL, "2024-02-28T23:59:59.999Z"},
            {1709251199000LL, "2024-02-29T23:59:59.000Z"},
            {4102444800000LL, "2100-01-01T00:00:00.000Z"},
        };
        regex_t rx;

        cr_assert_eq(regcomp(&rx,
                             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:"
                             "[0-9]{2}\\.[0-9]{3}Z$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct job job;
                cJSON *o;

                init_job(&job);
                o = event(&job, "started", NULL, NULL, cases[i].wall_ms, 1000);
                cr_expect_str_eq(str(o, "at"), cases[i].want, "case %zu", i);
                cr_expect_eq(regexec(&rx, str(o, "at"), 0, NULL, 0), 0,
                             "case %zu", i);
                cJSON_Delete(o);
        }
        regfree(&rx);
}

Test(events, elapsed_counts_from_receipt_and_is_never_negative) {
        static const int64_t cases[][2] = {
            {1000, 0}, {1001, 1}, {61000, 60000}, {999, 0}, {0, 0},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct job job;
                cJSON *o;

                init_job(&job); /* received at 1000 */
                o = event(&job, "started", NULL, NULL, WALL_MS, cases[i][0]);
                cr_expect_eq(num(o, "elapsedMs"), (double)cases[i][1],
                             "now %lld", (long long)cases[i][0]);
                cJSON_Delete(o);
        }
}

Test(events, secrets_are_redacted_in_the_message) {
        const char *secret = "fm2_test-secret-token-ABCDEF0123456789";
        struct job job;
        struct err failure = {0};
        char *json;

        init_job(&job);
        /* Written past err_set(), which would redact it already: the event
         * must redact on its own. */
        failure.kind = ERR_TRANSIENT;
        snprintf(failure.msg, sizeof(failure.msg),
                 "fly: GET /apps?token=%s: HTTP 401", secret);
        log_add_secret(secret);
        json = events_json(&job, "failed", "lookup", &failure, WALL_MS, 1000);
        cr_assert_not_null(json);
        cr_expect_null(strstr(json, secret), "%s", json);
        cr_expect_null(strstr(json, "ABCDEF0123456789"), "%s", json);
        cr_expect_not_null(strstr(json, "token=[REDACTED]: HTTP 401"), "%s",
                           json);
        free(json);
        log_clear_secrets();
}

Test(events, an_unnamed_kind_is_empty) {
        struct job job;
        cJSON *o;

        init_job(&job);
        job.rec.kind = NULL;
        o = event(&job, "failed", NULL, NULL, WALL_MS, 1000);
        cr_expect_str_eq(str(o, "kind"), "");
        cJSON_Delete(o);
}

Test(events, a_warning_rides_only_the_completed_event) {
        static const char *const states[] = {"started", "step", "failed"};
        struct job job;
        cJSON *o, *w;

        init_job(&job);
        job_set_warning(&job, "golden_claude_unreachable",
                        "Golden Claude gc-default not reachable, copy skipped");
        o = event(&job, "completed", NULL, NULL, WALL_MS, 2000);
        w = cJSON_GetObjectItemCaseSensitive(o, "warning");
        cr_assert(cJSON_IsObject(w), "no warning object");
        cr_expect_str_eq(str(w, "code"), "golden_claude_unreachable");
        cr_expect_str_eq(
            str(w, "message"),
            "Golden Claude gc-default not reachable, copy skipped");
        cr_expect_eq(cJSON_GetArraySize(w), 2);
        cJSON_Delete(o);
        for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
                o = event(&job, states[i], NULL, NULL, WALL_MS, 2000);
                cr_expect_null(cJSON_GetObjectItemCaseSensitive(o, "warning"),
                               "%s", states[i]);
                cJSON_Delete(o);
        }
        job_set_warning(&job, NULL, NULL);
        o = event(&job, "completed", NULL, NULL, WALL_MS, 2000);
        cr_expect_null(cJSON_GetObjectItemCaseSensitive(o, "warning"));
        cJSON_Delete(o);
}
