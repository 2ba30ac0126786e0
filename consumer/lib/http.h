/* http.h - the one libcurl wrapper: a request, its response, and what a
 * failure means (transient or permanent).
 *
 * It knows HTTP and libcurl, not fly: no JSON, no routes, no tokens (headers
 * arrive ready-made from the caller and never appear in a message).
 *
 * @locality any thread: a struct http may be shared by every worker thread.
 *
 * Callers: fly_client.c only.
 */
#ifndef THOPTER_HTTP_H
#define THOPTER_HTTP_H

#include "err.h"

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_BODY_CAP_DEFAULT (4u * 1024u * 1024u) /* 4 MiB */

struct http;

/* One response. Embed it zeroed ({0}) and release it with http_resp_free(). */
struct http_resp {
        long status;          /* 0 until a status line arrived */
        char *body;           /* malloc'd, NUL-terminated; NULL when empty */
        size_t len;           /* bytes in body, without the NUL */
        char retry_after[32]; /* raw Retry-After value, "" when absent */
        char request_id[64];  /* fly-request-id response header, or "" */
};

struct http_req {
        const char *method; /* "GET", "POST", "DELETE", ... */
        const char *url;
        /* Extra header lines ("Name: value"); may be NULL when n_headers 0. */
        const char *const *headers;
        size_t n_headers;
        const char *json_body; /* optional: sent with application/json */
        long timeout_ms;       /* whole request; <= 0 means 30000 */
        size_t body_cap;       /* 0 means HTTP_BODY_CAP_DEFAULT */
};

/**
 * @brief curl_global_init(), once per process, whatever the number of
 * callers or threads (pthread_once). http_new() calls it too.
 * @returns 0, or -1 when libcurl could not initialise (ERR_PERMANENT).
 */
int http_global_init(struct err *err);

/** @returns a client to free with http_destroy(), or NULL (see @p err). */
struct http *http_new(struct err *err);
void http_destroy(struct http *http); /* NULL is a no-op */

/**
 * @brief The proxy every request of @p http uses (copied), before the first
 * request. NULL or "" (the default): no proxy at all, whatever http_proxy,
 * HTTPS_PROXY, ALL_PROXY or NO_PROXY say in the environment. With a proxy,
 * https:// requests go through a CONNECT tunnel and a plain http:// request
 * is refused (ERR_PERMANENT): the proxy would read its headers.
 * @returns 0, or -1 out of memory.
 */
int http_set_proxy(struct http *http, const char *proxy, struct err *err);

/**
 * @brief Perform one request (no retries, no redirects).
 *
 * Returns 0 whenever a complete response arrived, whatever its status: the
 * caller interprets the status (http_classify()). Returns -1 with @p err set
 * when no usable response arrived: transport failure (kind from
 * http_classify(0, rc), code = CURLcode), or a body larger than the cap
 * (ERR_PERMANENT, code = status). @p resp holds whatever arrived in both
 * cases and must be freed with http_resp_free().
 */
int http_request(struct http *http,
                 const struct http_req *req,
                 struct http_resp *resp,
                 struct err *err);

/** @brief Free the body and zero @p resp (safe on a zeroed resp). */
void http_resp_free(struct http_resp *resp);

/**
 * @brief What an outcome means. @p rc wins when it is not CURLE_OK.
 * 2xx: ERR_NONE. 408, 429, 5xx, timeouts and connect/resolve/send/receive
 * failures: ERR_TRANSIENT. Everything else, including what we do not know:
 * ERR_PERMANENT.
 */
enum err_kind http_classify(long status, CURLcode rc);

/**
 * @brief Parse a Retry-After value (RFC 9110 10.2.3): delta-seconds or an
 * HTTP-date, the latter relative to @p now_wall_ms (ms since the epoch).
 * @returns milliseconds to wait (0 for a date in the past), capped at one
 * day, or -1 when @p value is NULL, empty or unparsable.
 */
long http_retry_after_ms(const char *value, int64_t now_wall_ms);

/**
 * @brief Percent-encode @p s for a path segment or a query value
 * (curl_easy_escape: everything but ALPHA DIGIT - . _ ~).
 * @returns a malloc'd string to free(), or NULL on OOM.
 */
char *http_escape(const char *s);

/**
 * @brief Record one response header line into @p resp (Retry-After,
 * fly-request-id); a status line ("HTTP/...") clears what an earlier
 * response (100 Continue) left. Used by the libcurl header callback;
 * exposed for the unit tests.
 */
void http_resp_header(struct http_resp *resp, const char *line, size_t len);

#endif
