/* test_fly_client.c - fly_client.c without a network: the Authorization
 * rule, option checks, secret registration, and the error and metrics path
 * of a request that libcurl refuses before opening a socket (the base URL
 * uses a protocol outside http/https). HTTP statuses are covered by the
 * integration tests against the fake fly API.
 */
#include "fly_client.h"
#include "log.h"
#include "metrics.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN "fm2_lJPECAAAAAAAAMTestTokenBody0123456789"
#define ID    "148e21a3c96989"

static const struct {
        const char *token;
        const char *want;
} auth_rows[] = {
    {"FlyV1 fm2_abc,fm2_def", "FlyV1 fm2_abc,fm2_def"},
    {"Bearer abc123", "Bearer abc123"},
    {"fm1r_abc", "FlyV1 fm1r_abc"},
    {"fm1a_abc", "FlyV1 fm1a_abc"},
    {"fm2_abc,fm2_def", "FlyV1 fm2_abc,fm2_def"},
    {"m2.abc", "FlyV1 m2.abc"},
    {"abc123", "Bearer abc123"},
    {"flyv1 fm2_abc", "Bearer flyv1 fm2_abc"}, /* the rule is case-sensitive */
    {"FlyV1", "Bearer FlyV1"},                 /* no space: not a scheme */
    {"m2abc", "Bearer m2abc"},
    {"  fm2_abc\n", "FlyV1 fm2_abc"}, /* outer whitespace from env files */
    {"Bearer abc\r\n", "Bearer abc"},
};

Test(fly_client, auth_header_table) {
        for (size_t i = 0; i < sizeof(auth_rows) / sizeof(auth_rows[0]); i++) {
                char *got = fly_auth_header(auth_rows[i].token);
                cr_assert_not_null(got);
                cr_assert_str_eq(got, auth_rows[i].want, "row %zu", i);
                free(got);
        }
        cr_assert_null(fly_auth_header(NULL));
}

static struct fly_client *client(const char *base, struct err *err) {
        struct fly_client_opts opts = {
            .base_url = base,
            .app = "thopters",
            .token = TOKEN,
            .timeout_ms = 1000,
        };
        return fly_client_new(&opts, err);
}

Test(fly_client, new_checks_options) {
        static const struct fly_client_opts rows[] = {
            {NULL, "app", "tok", 0, NULL, 0},
            {"", "app", "tok", 0, NULL, 0},
            {"http://x", NULL, "tok", 0, NULL, 0},
            {"http://x", "", "tok", 0, NULL, 0},
            {"http://x", "app", NULL, 0, NULL, 0},
            {"http://x", "app", "", 0, NULL, 0},
            {"http://x", "app", "fm2_ab\ncd", 0, NULL, 0},
            {"http://x", "app", "fm2_ab\001cd", 0, NULL, 0},
        };
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                struct err err = {0};
                cr_assert_null(fly_client_new(&rows[i], &err), "row %zu", i);
                cr_assert_eq(err.kind, ERR_PERMANENT, "row %zu", i);
                cr_assert_eq(strncmp(err.msg, "fly: client: ", 13), 0, "%s",
                             err.msg);
                cr_assert_null(strstr(err.msg, "ab"), "row %zu: %s", i,
                               err.msg);
        }
        cr_assert_null(fly_client_new(NULL, &(struct err){0}));
        fly_client_destroy(NULL);
}

Test(fly_client, new_registers_the_token_as_a_secret) {
        struct err err = {0};
        struct fly_client_opts opts = {
            .base_url = "https://api.machines.dev",
            .app = "thopters",
            .token = "FlyV1 fm2_firstmacaroon0001,fm2_secondmacaroon002",
        };
        char line[256] = "echo: fm2_secondmacaroon002 and "
                         "FlyV1 fm2_firstmacaroon0001,fm2_secondmacaroon002";

        log_clear_secrets();
        struct fly_client *fly = fly_client_new(&opts, &err);
        cr_assert_not_null(fly, "%s", err.msg);
        log_redact(line, sizeof(line));
        cr_assert_null(strstr(line, "macaroon"), "%s", line);
        fly_client_destroy(fly);
        log_clear_secrets();
}

Test(fly_client, empty_ids_fail_before_any_request) {
        struct err err = {0};
        struct fly_client *fly = client("https://api.machines.dev", &err);
        struct fly_machine m;

        cr_assert_not_null(fly, "%s", err.msg);
        metrics_reset();
        struct err e1 = {0}, e2 = {0}, e3 = {0}, e4 = {0};
        cr_assert_eq(fly_machine_get(fly, "", &m, &e1), -1);
        cr_assert_eq(fly_machine_delete(fly, NULL, true, &e2), -1);
        cr_assert_eq(fly_machine_stop(fly, "", &e3), -1);
        cr_assert_eq(fly_machine_wait(fly, "", "started", NULL, 30, &e4), -1);
        cr_assert_str_eq(e1.msg, "fly: get machine: empty id");
        cr_assert_str_eq(e2.msg, "fly: delete machine: empty id");
        cr_assert_eq(e3.kind, ERR_PERMANENT);
        cr_assert_eq(e4.kind, ERR_PERMANENT);
        cr_assert_eq(metrics_get(M_FLY_REQUESTS,
                                 "route=\"machines.get\",status=\"error\""),
                     0);
        fly_client_destroy(fly);
}

Test(fly_client, create_without_image_fails_before_any_request) {
        struct err err = {0};
        struct fly_client *fly = client("https://api.machines.dev", &err);
        struct fly_create_spec spec = {.name = "thopter-1"};
        struct fly_machine m;

        cr_assert_not_null(fly, "%s", err.msg);
        cr_assert_eq(fly_machine_create(fly, &spec, &m, &err), -1);
        cr_assert_eq(err.kind, ERR_PERMANENT);
        cr_assert_str_eq(err.msg, "fly: create machine thopter-1 in app "
                                  "thopters: create spec without image");
        fly_client_destroy(fly);
}

Test(fly_client, transport_failure_is_classified_counted_and_named) {
        struct err err = {0};

        metrics_reset(); /* before: fly_client_new() describes the metrics */
        struct fly_client *fly = client("file:///nonexistent/", &err);
        cr_assert_not_null(fly, "%s", err.msg);
        cr_assert_eq(fly_machine_delete(fly, ID, true, &err), -1);
        cr_assert_eq(err.kind, ERR_PERMANENT); /* unsupported protocol */
        cr_assert_eq(err.code, 0);             /* no HTTP status */
        cr_assert_eq(
            strncmp(err.msg, "fly: delete machine " ID ": http: DELETE: ",
                    strlen("fly: delete machine " ID ": http: DELETE: ")),
            0, "%s", err.msg);
        cr_assert_null(strstr(err.msg, "fm2_"), "%s", err.msg);
        cr_assert_eq(metrics_get(M_FLY_REQUESTS,
                                 "route=\"machines.delete\",status=\"error\""),
                     1);

        char *text = metrics_render();
        cr_assert_not_null(
            strstr(text, "# TYPE thopter_fly_requests_total counter"), "%s",
            text);
        cr_assert_not_null(strstr(text,
                                  "thopter_fly_request_duration_seconds_count"
                                  "{route=\"machines.delete\"} 1"),
                           "%s", text);
        free(text);
        fly_client_destroy(fly);
}

Test(fly_client, every_route_is_counted_under_its_name) {
        struct err err = {0};
        struct fly_client *fly = client("file:///nonexistent", &err);
        struct fly_create_spec spec = {.image = "thopter:1"};
        struct fly_machine m, *ms = NULL;
        struct fly_volume v, *vs = NULL;
        size_t n;

        cr_assert_not_null(fly, "%s", err.msg);
        metrics_reset();
        fly_machine_create(fly, &spec, &m, &(struct err){0});
        fly_machine_get(fly, ID, &m, &(struct err){0});
        fly_machine_list(
            fly, &(struct fly_list_opts){"thopter_request_id", "req 1/2", true},
            &ms, &n, &(struct err){0});
        fly_machine_stop(fly, ID, &(struct err){0});
        fly_machine_delete(fly, ID, false, &(struct err){0});
        fly_machine_wait(fly, ID, "stopped", "01HEPA330HZ37A78TK080NAK1M", 600,
                         &(struct err){0});
        fly_volume_list(fly, &vs, &n, &(struct err){0});
        fly_volume_create(fly, "thopter_data", 10, "ord", &v, &(struct err){0});

        static const char *const routes[] = {
            "machines.create", "machines.get",    "machines.list",
            "machines.stop",   "machines.delete", "machines.wait",
            "volumes.list",    "volumes.create",
        };
        for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
                char labels[96];
                snprintf(labels, sizeof(labels),
                         "route=\"%s\",status=\"error\"", routes[i]);
                cr_assert_eq(metrics_get(M_FLY_REQUESTS, labels), 1, "%s",
                             routes[i]);
        }
        cr_assert_null(ms);
        cr_assert_null(vs);
        fly_client_destroy(fly);
}
