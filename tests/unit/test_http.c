/* test_http.c - http.c without a network: classification, Retry-After,
 * header capture, escaping, and a request libcurl refuses before any socket.
 */
#include "http.h"

#include <criterion/criterion.h>
#include <string.h>

static const struct {
        long status;
        CURLcode rc;
        enum err_kind want;
} classify_rows[] = {
    {200, CURLE_OK, ERR_NONE},
    {201, CURLE_OK, ERR_NONE},
    {204, CURLE_OK, ERR_NONE},
    {408, CURLE_OK, ERR_TRANSIENT},
    {429, CURLE_OK, ERR_TRANSIENT},
    {500, CURLE_OK, ERR_TRANSIENT},
    {502, CURLE_OK, ERR_TRANSIENT},
    {503, CURLE_OK, ERR_TRANSIENT},
    {599, CURLE_OK, ERR_TRANSIENT},
    {400, CURLE_OK, ERR_PERMANENT},
    {401, CURLE_OK, ERR_PERMANENT},
    {403, CURLE_OK, ERR_PERMANENT},
    {404, CURLE_OK, ERR_PERMANENT},
    {409, CURLE_OK, ERR_PERMANENT},
    {412, CURLE_OK, ERR_PERMANENT},
    {422, CURLE_OK, ERR_PERMANENT},
    {100, CURLE_OK, ERR_PERMANENT},
    {302, CURLE_OK, ERR_PERMANENT},
    {0, CURLE_OK, ERR_PERMANENT},
    {600, CURLE_OK, ERR_PERMANENT},
    /* transport errors win over whatever status there is */
    {0, CURLE_OPERATION_TIMEDOUT, ERR_TRANSIENT},
    {200, CURLE_OPERATION_TIMEDOUT, ERR_TRANSIENT},
    {0, CURLE_COULDNT_RESOLVE_HOST, ERR_TRANSIENT},
    {0, CURLE_COULDNT_CONNECT, ERR_TRANSIENT},
    {0, CURLE_SEND_ERROR, ERR_TRANSIENT},
    {0, CURLE_RECV_ERROR, ERR_TRANSIENT},
    {0, CURLE_GOT_NOTHING, ERR_TRANSIENT},
    {0, CURLE_PARTIAL_FILE, ERR_TRANSIENT},
    {0, CURLE_SSL_CONNECT_ERROR, ERR_TRANSIENT},
    {0, CURLE_OUT_OF_MEMORY, ERR_TRANSIENT},
    {0, CURLE_URL_MALFORMAT, ERR_PERMANENT},
    {0, CURLE_UNSUPPORTED_PROTOCOL, ERR_PERMANENT},
    {0, CURLE_PEER_FAILED_VERIFICATION, ERR_PERMANENT},
    {200, CURLE_WRITE_ERROR, ERR_PERMANENT},
    {0, (CURLcode)9999, ERR_PERMANENT},
};

Test(http, classify_table) {
        for (size_t i = 0; i < sizeof(classify_rows) / sizeof(classify_rows[0]);
             i++)
                cr_assert_eq(
                    http_classify(classify_rows[i].status, classify_rows[i].rc),
                    classify_rows[i].want, "row %zu: status %ld rc %d", i,
                    classify_rows[i].status, (int)classify_rows[i].rc);
}

/* Sun, 06 Nov 1994 08:49:37 GMT */
#define DATE_S 784111777LL

static const struct {
        const char *value;
        int64_t now_ms;
        long want;
} retry_rows[] = {
    {"120", 0, 120000},
    {"0", 0, 0},
    {"  7\r\n", 0, 7000},
    {"86400", 0, 86400000},
    {"86401", 0, 86400000},
    {"99999999999999999999", 0, 86400000},
    {"Sun, 06 Nov 1994 08:49:37 GMT", DATE_S * 1000 - 5000, 5000},
    {"Sunday, 06-Nov-94 08:49:37 GMT", DATE_S * 1000 - 2500, 2500},
    {"Sun Nov  6 08:49:37 1994", DATE_S * 1000 - 1000, 1000},
    {"Sun, 06 Nov 1994 08:49:37 GMT", DATE_S * 1000 + 60000, 0},
    {"Sun, 06 Nov 1994 08:49:37 GMT", DATE_S * 1000 - 172800000LL, 86400000},
    {"", 0, -1},
    {"   ", 0, -1},
    {"-5", 0, -1},
    {"+5", 0, -1},
    {"1.5", 0, -1},
    {"soon", 0, -1},
    /* fuzz_http_header: curl_getdate() reads the year 444444445; seconds
     * times 1000 overflowed int64 (UBSan) and gave 0 */
    {"444444445Oct8", 0, 86400000},
};

Test(http, retry_after_table) {
        cr_assert_eq(http_retry_after_ms(NULL, 0), -1);
        for (size_t i = 0; i < sizeof(retry_rows) / sizeof(retry_rows[0]); i++)
                cr_assert_eq(http_retry_after_ms(retry_rows[i].value,
                                                 retry_rows[i].now_ms),
                             retry_rows[i].want, "row %zu: \"%s\" -> %ld", i,
                             retry_rows[i].value,
                             http_retry_after_ms(retry_rows[i].value,
                                                 retry_rows[i].now_ms));
}

static void feed(struct http_resp *resp, const char *line) {
        http_resp_header(resp, line, strlen(line));
}

Test(http, header_capture_is_case_insensitive_and_trimmed) {
        struct http_resp resp = {0};

        feed(&resp, "HTTP/1.1 429 Too Many Requests\r\n");
        feed(&resp, "retry-after:   3 \r\n");
        feed(&resp, "Fly-Request-Id: 01J5ZC8N6Q0K9V-ord\r\n");
        feed(&resp, "Content-Type: application/json\r\n");
        feed(&resp, "Retry-After-Extra: 9\r\n");
        feed(&resp, "\r\n");
        cr_assert_str_eq(resp.retry_after, "3");
        cr_assert_str_eq(resp.request_id, "01J5ZC8N6Q0K9V-ord");
        http_resp_free(&resp);
}

Test(http, header_capture_resets_on_a_new_status_line) {
        struct http_resp resp = {0};

        feed(&resp, "HTTP/1.1 100 Continue\r\n");
        feed(&resp, "fly-request-id: early\r\n");
        feed(&resp, "HTTP/1.1 200 OK\r\n");
        cr_assert_str_eq(resp.request_id, "");
        feed(&resp, "fly-request-id: final\r\n");
        cr_assert_str_eq(resp.request_id, "final");
}

Test(http, header_capture_truncates_long_values) {
        struct http_resp resp = {0};
        char line[300];

        memset(line, 'a', sizeof(line));
        memcpy(line, "fly-request-id: ", 16);
        http_resp_header(&resp, line, sizeof(line)); /* not NUL-terminated */
        cr_assert_eq(strlen(resp.request_id), sizeof(resp.request_id) - 1);
}

/* A hostile server's control bytes never reach a message (the request id
 * is quoted in one-line error messages, events and dead-letter headers). */
Test(http, header_capture_replaces_control_bytes) {
        struct http_resp resp = {0};

        feed(&resp, "fly-request-id: a\rb\x1b[31mc\x7f\r\n");
        cr_assert_str_eq(resp.request_id, "a?b?[31mc?");
        feed(&resp, "Retry-After: 1\t2\r\n");
        cr_assert_str_eq(resp.retry_after, "1?2");
}

Test(http, escape_path_segments_and_query_values) {
        static const struct {
                const char *in, *want;
        } rows[] = {
            {"148e21a3c96989", "148e21a3c96989"},
            {"a/b", "a%2Fb"},
            {"a b&c=d?e#f", "a%20b%26c%3Dd%3Fe%23f"},
            {"-._~", "-._~"},
            {"", ""},
            {"\xc3\xa9", "%C3%A9"},
        };
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                char *got = http_escape(rows[i].in);
                cr_assert_not_null(got);
                cr_assert_str_eq(got, rows[i].want, "row %zu", i);
                free(got);
        }
}

Test(http, global_init_is_idempotent) {
        struct err err = {0};

        cr_assert_eq(http_global_init(&err), 0);
        cr_assert_eq(http_global_init(&err), 0);
        cr_assert_eq(err.kind, ERR_NONE);
}

Test(http, new_and_destroy) {
        struct err err = {0};
        struct http *http = http_new(&err);

        cr_assert_not_null(http, "%s", err.msg);
        http_destroy(http);
        http_destroy(NULL);
}

/* libcurl refuses a protocol outside http/https before opening anything:
 * the whole request path runs with no socket. */
Test(http, refused_protocol_is_a_permanent_transport_error) {
        struct err err = {0};
        struct http *http = http_new(&err);
        struct http_resp resp = {0};
        const char *hdr[] = {"X-Test: 1"};
        struct http_req req = {
            .method = "POST",
            .url = "file:///etc/hostname",
            .headers = hdr,
            .n_headers = 1,
            .json_body = "{}",
            .timeout_ms = 1000,
        };

        cr_assert_not_null(http, "%s", err.msg);
        for (int i = 0; i < 3; i++) { /* pooled handle reused */
                struct err e = {0};
                cr_assert_eq(http_request(http, &req, &resp, &e), -1);
                cr_assert_eq(e.kind, ERR_PERMANENT);
                cr_assert_eq(e.code, CURLE_UNSUPPORTED_PROTOCOL);
                cr_assert_eq(resp.status, 0);
                cr_assert_eq(strncmp(e.msg, "http: POST: ", 12), 0, "%s",
                             e.msg);
                http_resp_free(&resp);
        }
        http_destroy(http);
}

/* A named proxy never gets a plain-HTTP request (it would read the token);
 * refused before any socket. */
Test(http, a_plain_request_is_never_sent_through_a_proxy) {
        struct err err = {0};
        struct http *http = http_new(&err);
        struct http_resp resp = {0};
        const char *hdr[] = {"Authorization: FlyV1 fm2_secret"};
        struct http_req req = {
            .method = "GET",
            .url = "http://127.0.0.1:9/v1/apps/a/machines",
            .headers = hdr,
            .n_headers = 1,
            .timeout_ms = 1000,
        };

        cr_assert_not_null(http, "%s", err.msg);
        cr_assert_eq(http_set_proxy(http, "http://127.0.0.1:9", &err), 0);
        cr_assert_eq(http_request(http, &req, &resp, &err), -1);
        cr_expect_eq(err.kind, ERR_PERMANENT);
        cr_expect(strstr(err.msg, "refusing a plain-HTTP request through a "
                                  "proxy") != NULL,
                  "%s", err.msg);
        http_resp_free(&resp);
        cr_assert_eq(http_set_proxy(http, "", &err), 0);
        cr_assert_eq(http_set_proxy(http, NULL, &err), 0);
        http_destroy(http);
}
