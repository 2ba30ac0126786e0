/* test_fly_json.c - fly_json.c on the canned bodies in tests/data/fly. */
#include "fly_json.h"
#include "test_helpers.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The bytes of tests/data/fly/@p name, NUL-terminated; *len without it. */
static char *slurp(const char *name, size_t *len) {
        char path[512];

        snprintf(path, sizeof(path), "%s/fly/%s", TEST_DATA_DIR, name);
        return test_slurp_str(path, len);
}

static int
parse_machine(const char *file, struct fly_machine *m, struct err *err) {
        size_t len;
        char *body = slurp(file, &len);
        int rc = fly_json_machine_parse(body, len, m, err);
        free(body);
        return rc;
}

Test(fly_json, create_response_maps_every_field) {
        struct fly_machine m;
        struct err err = {0};

        assert_ok(parse_machine("machine_create.json", &m, &err), &err);
        cr_assert_str_eq(m.id, "148e21a3c96989");
        cr_assert_str_eq(m.name, "thopter-42-x7k");
        cr_assert_str_eq(m.state, "created");
        cr_assert_str_eq(m.region, "ord");
        cr_assert_str_eq(m.instance_id, "01HEPA330HZ37A78TK080NAK1M");
        cr_assert_str_eq(m.private_ip, "fdaa:ff:ff:a7b:195:e229:8038:2");
        cr_assert_str_eq(m.request_id, "req-0001");
        cr_assert_str_eq(m.role, "thopter");
        cr_assert_str_eq(m.volume_id, "vol_9vw681egy1jj5xm4");
        cr_assert_str_eq(
            m.image,
            "registry.fly.io/thopter:deployment-01HEPA2YQ8Q5ZGQ7F8RWK0Y1K9");
}

Test(fly_json, body_need_not_be_nul_terminated) {
        struct fly_machine m;
        struct err err = {0};
        size_t len;
        char *body = slurp("machine_create.json", &len);
        char *copy = malloc(len); /* exactly len bytes: ASan sees overreads */

        memcpy(copy, body, len);
        assert_ok(fly_json_machine_parse(copy, len, &m, &err), &err);
        cr_assert_str_eq(m.id, "148e21a3c96989");
        free(copy);
        free(body);
}

Test(fly_json, machine_without_private_ip_has_empty_ip) {
        struct fly_machine m;
        struct err err = {0};

        assert_ok(parse_machine("machine_no_private_ip.json", &m, &err), &err);
        cr_assert_str_eq(m.id, "3d8d9944c96d88");
        cr_assert_str_eq(m.private_ip, "");
        cr_assert_str_eq(m.volume_id, "");
        cr_assert_str_eq(m.request_id, "");
        cr_assert_str_eq(m.image, "thopter:latest");
}

Test(fly_json, null_private_ip_and_config_are_absent) {
        struct fly_machine m;
        struct err err = {0};

        assert_ok(parse_machine("machine_private_ip_null.json", &m, &err),
                  &err);
        cr_assert_str_eq(m.private_ip, "");
        cr_assert_str_eq(m.image, "");
        cr_assert_str_eq(m.state, "starting");
}

Test(fly_json, version_stands_in_for_instance_id) {
        struct fly_machine m;
        struct err err = {0};

        assert_ok(parse_machine("machine_version_only.json", &m, &err), &err);
        cr_assert_str_eq(m.id, "a5c5de9ce64ca12");
        cr_assert_str_eq(m.instance_id, "01HQ0Z1ZK1J4BDWAN39W2QT9SK");
}

/* Bodies the parser must refuse, and a word its message must contain. */
static const struct {
        const char *file;
        const char *needle;
} bad_machines[] = {
    {"machine_no_id.json", "without id"},
    {"machine_id_not_string.json", "id is not a string"},
    {"machine_config_not_object.json", "config is not an object"},
    {"machine_image_too_long.json", "image too long"},
    {"bad_body_html.json", "not JSON"},
    {"bad_body_truncated.json", "not JSON"},
    {"machines_list_empty.json", "not an object"},
};

Test(fly_json, bad_machine_bodies_are_permanent_errors) {
        for (size_t i = 0; i < sizeof(bad_machines) / sizeof(bad_machines[0]);
             i++) {
                struct fly_machine m;
                struct err err = {0};

                cr_assert_eq(parse_machine(bad_machines[i].file, &m, &err), -1,
                             "%s parsed", bad_machines[i].file);
                cr_assert_eq(err.kind, ERR_PERMANENT, "%s",
                             bad_machines[i].file);
                cr_assert_not_null(strstr(err.msg, bad_machines[i].needle),
                                   "%s: \"%s\" lacks \"%s\"",
                                   bad_machines[i].file, err.msg,
                                   bad_machines[i].needle);
        }
}

Test(fly_json, empty_body_is_rejected) {
        struct fly_machine m;
        struct err err = {0};

        cr_assert_eq(fly_json_machine_parse(NULL, 0, &m, &err), -1);
        cr_assert_eq(err.kind, ERR_PERMANENT);
}

Test(fly_json, list_skips_destroyed_and_destroying) {
        struct fly_machine *ms = NULL;
        struct err err = {0};
        size_t n = 99, len;
        char *body = slurp("machines_list_mixed.json", &len);

        assert_ok(fly_json_machines_parse(body, len, false, &ms, &n, &err),
                  &err);
        cr_assert_eq(n, 2);
        cr_assert_str_eq(ms[0].id, "148e21a3c96989");
        cr_assert_str_eq(ms[0].request_id, "req-0001");
        cr_assert_str_eq(ms[1].id, "a5c5de9ce64ca12");
        cr_assert_str_eq(ms[1].state, "stopped");
        cr_assert_str_eq(ms[1].role, "");
        free(ms);
        free(body);
}

/* include_deleted: a destroyed machine that carries the "provisioned" mark
 * tells the provision flow its request was done (provision_fly.c). */
Test(fly_json, list_with_deleted_keeps_them_and_reads_marks_and_times) {
        struct fly_machine *ms = NULL;
        struct err err = {0};
        size_t n = 99, len;
        char *body = slurp("machines_list_with_deleted.json", &len);

        assert_ok(fly_json_machines_parse(body, len, true, &ms, &n, &err),
                  &err);
        cr_assert_eq(n, 2);
        cr_assert_str_eq(ms[1].state, "destroyed");
        cr_assert_str_eq(ms[1].provisioned, "req-0002");
        cr_assert_str_eq(ms[0].created_at, "2026-12-01T10:00:00Z");
        cr_assert_str_eq(ms[0].updated_at, "2026-12-01T10:01:00Z");
        free(ms);
        assert_ok(fly_json_machines_parse(body, len, false, &ms, &n, &err),
                  &err);
        cr_assert_eq(n, 1);
        cr_assert_str_eq(ms[0].id, "148e21a3c96989");
        free(ms);
        free(body);
}

Test(fly_json, empty_and_all_destroyed_lists_are_empty) {
        const char *files[] = {"machines_list_empty.json",
                               "machines_list_all_destroyed.json"};
        for (size_t i = 0; i < 2; i++) {
                struct fly_machine *ms = (void *)1;
                struct err err = {0};
                size_t n = 99, len;
                char *body = slurp(files[i], &len);

                assert_ok(
                    fly_json_machines_parse(body, len, false, &ms, &n, &err),
                    &err);
                cr_assert_eq(n, 0, "%s", files[i]);
                cr_assert_null(ms, "%s", files[i]);
                free(body);
        }
}

Test(fly_json, bad_lists_fail_whole) {
        const char *files[] = {"machines_list_not_array.json",
                               "machines_list_bad_element.json",
                               "bad_body_html.json"};
        for (size_t i = 0; i < 3; i++) {
                struct fly_machine *ms = (void *)1;
                struct err err = {0};
                size_t n = 99, len;
                char *body = slurp(files[i], &len);

                cr_assert_eq(
                    fly_json_machines_parse(body, len, false, &ms, &n, &err),
                    -1, "%s", files[i]);
                cr_assert_eq(err.kind, ERR_PERMANENT, "%s", files[i]);
                cr_assert_null(ms, "%s", files[i]);
                cr_assert_eq(n, 0, "%s", files[i]);
                free(body);
        }
}

Test(fly_json, state_active) {
        cr_assert(fly_json_machine_state_active("started"));
        cr_assert(fly_json_machine_state_active("stopped"));
        cr_assert(fly_json_machine_state_active(""));
        cr_assert_not(fly_json_machine_state_active("destroyed"));
        cr_assert_not(fly_json_machine_state_active("destroying"));
}

Test(fly_json, volume_create_response) {
        struct fly_volume v;
        struct err err = {0};
        size_t len;
        char *body = slurp("volume_create.json", &len);

        assert_ok(fly_json_volume_parse(body, len, &v, &err), &err);
        cr_assert_str_eq(v.id, "vol_9vw681egy1jj5xm4");
        cr_assert_str_eq(v.name, "thopter_data");
        cr_assert_str_eq(v.state, "created");
        cr_assert_str_eq(v.region, "ord");
        cr_assert_eq(v.size_gb, 10);
        cr_assert_str_eq(v.attached_machine_id, "");
        free(body);
}

Test(fly_json, volume_size_must_be_a_number) {
        struct fly_volume v;
        struct err err = {0};
        size_t len;
        char *body = slurp("volume_size_not_number.json", &len);

        cr_assert_eq(fly_json_volume_parse(body, len, &v, &err), -1);
        cr_assert_eq(err.kind, ERR_PERMANENT);
        cr_assert_not_null(strstr(err.msg, "size_gb"), "%s", err.msg);
        free(body);
}

Test(fly_json, volume_list_skips_destroy_path_states) {
        struct fly_volume *vs = NULL;
        struct err err = {0};
        size_t n = 0, len;
        char *body = slurp("volumes_list.json", &len);

        assert_ok(fly_json_volumes_parse(body, len, &vs, &n, &err), &err);
        cr_assert_eq(n, 2);
        cr_assert_str_eq(vs[0].id, "vol_9vw681egy1jj5xm4");
        cr_assert_str_eq(vs[0].attached_machine_id, "148e21a3c96989");
        cr_assert_str_eq(vs[1].id, "vol_re8q5v3w7gg7o2qr");
        cr_assert_eq(vs[1].size_gb, 3);
        cr_assert_str_eq(vs[1].attached_machine_id, "");
        free(vs);
        free(body);
}

/* Compare a produced body with an expected file, as JSON (order-free). */
static void assert_json_eq_file(const char *got, const char *file) {
        size_t len;
        char *want = slurp(file, &len);
        cJSON *a = cJSON_Parse(got);
        cJSON *b = cJSON_ParseWithLength(want, len);

        cr_assert_not_null(a, "produced body is not JSON: %s", got);
        cr_assert_not_null(b, "%s is not JSON", file);
        cr_assert(cJSON_Compare(a, b, 1), "body differs from %s: %s", file,
                  got);
        cJSON_Delete(a);
        cJSON_Delete(b);
        free(want);
}

Test(fly_json, create_body_full_spec) {
        const struct fly_kv env[] = {
            {"WEB_TERMINAL_PORT", "7681"},
            {"ALLOWED_DOMAINS", "github.com,api.anthropic.com"},
        };
        const struct fly_kv meta[] = {
            {"thopter_request_id", "req-0001"},
            {"thopter_role", "thopter"},
        };
        const struct fly_create_spec spec = {
            .name = "thopter-42-x7k",
            .region = "ord",
            .image = "registry.fly.io/thopter:latest",
            .cpu_kind = "shared",
            .cpus = 1,
            .memory_mb = 1024,
            .env = env,
            .n_env = 2,
            .metadata = meta,
            .n_metadata = 2,
            .volume_id = "vol_9vw681egy1jj5xm4",
        };
        struct err err = {0};
        char *body = fly_json_create_body(&spec, &err);

        cr_assert_not_null(body, "%s", err.msg);
        assert_json_eq_file(body, "create_body_full.json");
        free(body);
}

Test(fly_json, create_body_leaves_out_unset_members) {
        const struct fly_create_spec spec = {.image = "thopter:1"};
        struct err err = {0};
        char *body = fly_json_create_body(&spec, &err);

        cr_assert_not_null(body, "%s", err.msg);
        assert_json_eq_file(body, "create_body_minimal.json");
        free(body);
}

Test(fly_json, create_body_requires_image) {
        const struct fly_create_spec spec = {.name = "x"};
        struct err err = {0};

        cr_assert_null(fly_json_create_body(&spec, &err));
        cr_assert_eq(err.kind, ERR_PERMANENT);
        cr_assert_not_null(strstr(err.msg, "image"));
}

Test(fly_json, create_body_rejects_kv_without_key) {
        const struct fly_kv env[] = {{NULL, "v"}};
        const struct fly_create_spec spec = {
            .image = "i", .env = env, .n_env = 1};
        struct err err = {0};

        cr_assert_null(fly_json_create_body(&spec, &err));
        cr_assert_eq(err.kind, ERR_PERMANENT);
}

Test(fly_json, volume_create_body) {
        struct err err = {0};
        char *body =
            fly_json_volume_create_body("thopter_data", 10, "ord", &err);

        cr_assert_not_null(body, "%s", err.msg);
        assert_json_eq_file(body, "volume_create_body.json");
        free(body);
}

/* Error bodies and the text that goes into the message. */
static const struct {
        const char *file;
        const char *want;
} error_texts[] = {
    {"error_not_found.json", "machine not found"},
    {"error_capacity.json",
     "insufficient resources to create new machine with existing volume "
     "'vol_9vw681egy1jj5xm4' (insufficient_capacity)"},
    {"error_message_field.json",
     "machine ID 148e21a3c96989 lease currently held by ops@tokens.fly.io"},
    {"error_multiline.json", "invalid_argument: line two"},
    {"bad_body_html.json",
     "<html><body><h1>502 Bad Gateway</h1></body></html>"},
    {"machines_list_not_array.json", ""},
};

Test(fly_json, error_text_table) {
        for (size_t i = 0; i < sizeof(error_texts) / sizeof(error_texts[0]);
             i++) {
                char buf[256];
                size_t len;
                char *body = slurp(error_texts[i].file, &len);

                fly_json_error_text(body, len, buf, sizeof(buf));
                cr_assert_str_eq(buf, error_texts[i].want, "%s",
                                 error_texts[i].file);
                free(body);
        }
}

Test(fly_json, error_text_is_cut_to_cap_and_empty_for_no_body) {
        char buf[8];
        size_t len;
        char *body = slurp("error_not_found.json", &len);

        fly_json_error_text(body, len, buf, sizeof(buf));
        cr_assert_str_eq(buf, "machine");
        fly_json_error_text(NULL, 0, buf, sizeof(buf));
        cr_assert_str_eq(buf, "");
        free(body);
}

/* ---- memory: a hostile list must not amplify (issue 12, point 6) ------- */

/* Peak RSS of this process in KiB since the last reset_peak_rss(). */
static long peak_rss_kib(void) {
        FILE *f = fopen("/proc/self/status", "r");
        char line[256];
        long kib = -1;

        cr_assert_not_null(f);
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
                        break;
        fclose(f);
        return kib;
}

static void reset_peak_rss(void) {
        FILE *f = fopen("/proc/self/clear_refs", "w");

        cr_assert_not_null(f);
        fputs("5", f); /* "5": reset the peak RSS (proc(5)) */
        fclose(f);
}

/* [elem,elem,…] with @p count elements; *len its length. */
static char *list_body(const char *elem, size_t count, size_t *len) {
        size_t el = strlen(elem), n = 0;
        char *b = malloc(count * (el + 1) + 3);

        cr_assert_not_null(b);
        b[n++] = '[';
        for (size_t i = 0; i < count; i++) {
                if (i)
                        b[n++] = ',';
                memcpy(b + n, elem, el);
                n += el;
        }
        b[n++] = ']';
        b[n] = '\0';
        *len = n;
        return b;
}

#if defined(__SANITIZE_ADDRESS__)
#define RSS_LIMIT_KIB (160L * 1024) /* ASan: redzones and quarantine */
#else
#define RSS_LIMIT_KIB (48L * 1024)
#endif

/* Before the fix: 381,300 entries of {"id":"a"} (4 MiB) were parsed into an
 * array of 896-byte structs sized by the element count, plus the tree:
 * 412 MiB RSS for a 4 MiB body. Now the body is refused before cJSON
 * allocates. */
Test(fly_json, tiny_entry_list_of_4mib_is_refused_without_growing) {
        struct fly_machine *list = NULL;
        struct err err = {0};
        size_t len, n = 0;
        char *body = list_body("{\"id\":\"a\"}", 4u * 1024 * 1024 / 11, &len);

        reset_peak_rss();
        long before = peak_rss_kib();
        int rc = fly_json_machines_parse(body, len, false, &list, &n, &err);
        long grew = peak_rss_kib() - before;
        fprintf(stderr,
                "tiny-entry list: %zu bytes, rc %d, peak RSS +%ld KiB\n", len,
                rc, grew);
        cr_expect_eq(rc, -1);
        cr_expect_null(list);
        cr_expect_eq(err.kind, ERR_PERMANENT);
        cr_expect(strstr(err.msg, "JSON values") != NULL, "%s", err.msg);
        cr_expect_lt(grew, RSS_LIMIT_KIB, "peak RSS grew by %ld KiB", grew);
        free(list);
        free(body);
}

/* The worst list still accepted: FLY_JSON_LIST_MAX elements with the values
 * cap nearly spent. */
Test(fly_json, largest_accepted_list_stays_within_the_cap) {
        char elem[512];
        size_t k = 0, len, n = 0;
        struct fly_machine *list = NULL;
        struct err err = {0};
        int per = FLY_JSON_VALUES_MAX / FLY_JSON_LIST_MAX - 8;

        k += (size_t)snprintf(elem, sizeof(elem),
                              "{\"id\":\"148e21a3c96989\",\"state\":"
                              "\"started\",\"x\":[1");
        for (int i = 1; i < per; i++)
                k += (size_t)snprintf(elem + k, sizeof(elem) - k, ",1");
        snprintf(elem + k, sizeof(elem) - k, "]}");
        char *body = list_body(elem, FLY_JSON_LIST_MAX, &len);

        reset_peak_rss();
        long before = peak_rss_kib();
        int rc = fly_json_machines_parse(body, len, false, &list, &n, &err);
        long grew = peak_rss_kib() - before;
        fprintf(stderr, "largest list: %zu bytes, rc %d, peak RSS +%ld KiB\n",
                len, rc, grew);
        cr_expect_eq(rc, 0, "%s", err.msg);
        cr_expect_eq(n, FLY_JSON_LIST_MAX);
        cr_expect_lt(grew, RSS_LIMIT_KIB, "peak RSS grew by %ld KiB", grew);
        free(list);
        free(body);
}

Test(fly_json, list_over_the_element_cap_is_refused) {
        struct fly_machine *m = NULL;
        struct fly_volume *v = NULL;
        struct err err = {0}, verr = {0};
        size_t len, n = 0;
        char *body = list_body("{\"id\":\"a\"}", FLY_JSON_LIST_MAX + 1, &len);

        cr_expect_eq(fly_json_machines_parse(body, len, false, &m, &n, &err),
                     -1);
        cr_expect(strstr(err.msg, "more than 4096 elements") != NULL, "%s",
                  err.msg);
        cr_expect_eq(fly_json_volumes_parse(body, len, &v, &n, &verr), -1);
        cr_expect(strstr(verr.msg, "more than 4096 elements") != NULL, "%s",
                  verr.msg);
        cr_expect_null(m);
        cr_expect_null(v);
        free(body);
}

/* The values cap holds for one object too, and an error body over it is
 * read as text. */
Test(fly_json, object_of_tiny_values_is_refused) {
        struct fly_machine m;
        struct err err = {0};
        size_t len;
        char *arr = list_body("1", FLY_JSON_VALUES_MAX, &len);
        char *body = malloc(len + 32), buf[64];

        cr_assert_not_null(body);
        int n = snprintf(body, len + 32, "{\"id\":\"a\",\"x\":%s}", arr);
        cr_expect_eq(fly_json_machine_parse(body, (size_t)n, &m, &err), -1);
        cr_expect(strstr(err.msg, "JSON values") != NULL, "%s", err.msg);
        fly_json_error_text(body, (size_t)n, buf, sizeof(buf));
        cr_expect(strncmp(buf, "{\"id\":\"a\",\"x\":[1,1", 18) == 0, "%s", buf);
        free(arr);
        free(body);
}

Test(fly_json, create_body_sends_a_file_mode_when_set) {
        const struct fly_file files[] = {
            {"/etc/key", "secret", 6, 0600},
            {"/etc/pub", "public", 6, 0},
        };
        const struct fly_create_spec spec = {
            .name = "thopter-1",
            .region = "ord",
            .image = "registry.fly.io/thopters:1",
            .files = files,
            .n_files = 2,
        };
        struct err err = {0};
        char *body = fly_json_create_body(&spec, &err);
        cJSON *root = body ? cJSON_Parse(body) : NULL;
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(root, "config"), "files");

        cr_assert_not_null(body, "%s", err.msg);
        cr_assert_eq(cJSON_GetArraySize(f), 2);
        cr_expect_eq(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(f, 0), "mode")
                ->valueint,
            0600);
        cr_expect_null(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(f, 1), "mode"),
            "no mode: fly's default");
        cJSON_Delete(root);
        free(body);
}
