/* http.c - requests over libcurl's easy interface; see http.h.
 *
 * DESIGN
 * ------
 * Handles. A struct http keeps a mutex-protected stack of idle easy handles.
 * A call pops one (or makes one), sets every option it needs, runs
 * curl_easy_perform() and pushes it back. An easy handle keeps its own
 * connection cache, so a reused handle reuses its keep-alive connection: with N
 * worker threads there are at most N handles and N connections. We do not put
 * connections in the share handle instead (one easy handle per call +
 * CURL_LOCK_DATA_CONNECT): libcurl documents that sharing connections between
 * concurrent threads is not supported (CURLSHOPT_SHARE(3); curl issues #4544,
 * #5802).
 *
 * Share handle. DNS and TLS sessions are shared through one CURLSH with a
 * mutex per curl_lock_data, which libcurl supports across threads.
 *
 * Cookies. Fly's Machines API sets path-scoped affinity cookies so that reads
 * after our own writes reach the flaps node that made them (reference
 * fly-machines-api.md section 1); every handle must send what any handle
 * received. CURL_LOCK_DATA_COOKIE would do that, but libcurl documents that
 * sharing cookies between concurrent threads is not supported (curl PR
 * #14292, and issue #17774 reports crashes in 8.12-8.14 even with lock
 * callbacks). So each handle runs its own cookie engine (COOKIEFILE ""), and
 * the struct http keeps the jar: before a transfer the handle's cookies are
 * replaced by the jar (CURLOPT_COOKIELIST), after it what changed is merged
 * back (CURLINFO_COOKIELIST), both under the pool mutex. A handle is used by
 * one thread at a time, so libcurl never sees concurrent cookie access.
 *
 * What this file does not do: retries, redirects, JSON, auth.
 */
#include "http.h"
#include "dynbuf.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define POOL_MAX            16 /* idle handles kept; extra ones are freed */
#define JAR_MAX             64 /* cookies kept; fly sets one per app */
#define CONNECT_TIMEOUT_MAX 10000L
#define TIMEOUT_DEFAULT_MS  30000L
#define RETRY_AFTER_MAX_S   86400L

struct http {
        CURLSH *share;
        pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
        pthread_mutex_t lock; /* idle[], n_idle, jar[], n_jar */
        CURL *idle[POOL_MAX];
        int n_idle;
        char *jar[JAR_MAX]; /* Netscape cookie lines, malloc'd */
        int n_jar;
        char *proxy; /* http_set_proxy(), or NULL: no proxy at all */
};

/* Where the write callback puts the body: a dynbuf capped at the request's
 * body_cap (DYNBUF_FAIL: a body bigger than that is an error), handed to
 * resp->body when the transfer is over. */
struct sink {
        struct http_resp *resp;
        struct dynbuf body;
};

/* ---- global init ------------------------------------------------------ */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init_once(void) {
        global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int http_global_init(struct err *err) {
        pthread_once(&global_once, global_init_once);
        if (global_rc != CURLE_OK)
                return err_set(err, ERR_PERMANENT, (int)global_rc,
                               "http: curl_global_init: %s",
                               curl_easy_strerror(global_rc));
        return 0;
}

/* ---- classification and header parsing (pure) -------------------------- */

enum err_kind http_classify(long status, CURLcode rc) {
        if (rc != CURLE_OK) {
                switch (rc) {
                case CURLE_OPERATION_TIMEDOUT:
                case CURLE_COULDNT_RESOLVE_HOST:
                case CURLE_COULDNT_RESOLVE_PROXY:
                case CURLE_COULDNT_CONNECT:
                case CURLE_SEND_ERROR:
                case CURLE_RECV_ERROR:
                case CURLE_GOT_NOTHING:
                case CURLE_PARTIAL_FILE:
                case CURLE_SSL_CONNECT_ERROR:
                case CURLE_HTTP2:
                case CURLE_HTTP2_STREAM:
                case CURLE_AGAIN:
                /* A later attempt may well have the memory; dead-lettering a
                 * valid request for our own OOM would be wrong. */
                case CURLE_OUT_OF_MEMORY:
                        return ERR_TRANSIENT;
                default:
                        /* Unknown means permanent (STYLE section 4). */
                        return ERR_PERMANENT;
                }
        }
        if (status >= 200 && status < 300)
                return ERR_NONE;
        if (status == 408 || status == 429 || (status >= 500 && status < 600))
                return ERR_TRANSIENT;
        return ERR_PERMANENT;
}

static int all_digits(const char *s, size_t n) {
        if (n == 0)
                return 0;
        for (size_t i = 0; i < n; i++)
                if (s[i] < '0' || s[i] > '9')
                        return 0;
        return 1;
}

long http_retry_after_ms(const char *value, int64_t now_wall_ms) {
        char buf[64];
        size_t n;
        const char *p;

        if (!value)
                return -1;
        p = value;
        while (*p == ' ' || *p == '\t')
                p++;
        n = strlen(p);
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' ||
                         p[n - 1] == '\r' || p[n - 1] == '\n'))
                n--;
        if (n == 0 || n >= sizeof(buf))
                return -1;
        memcpy(buf, p, n);
        buf[n] = '\0';

        if (all_digits(buf, n)) {
                /* delta-seconds; anything above a day is clamped, which also
                 * keeps the multiplication from overflowing. */
                long s = n > 6 ? RETRY_AFTER_MAX_S : strtol(buf, NULL, 10);
                if (s > RETRY_AFTER_MAX_S)
                        s = RETRY_AFTER_MAX_S;
                return s * 1000L;
        }
        /* An HTTP-date; curl_getdate() knows IMF-fixdate, RFC 850 and asctime
         * and touches no network. A value with a sign or a fraction is
         * neither form: refuse it rather than let getdate guess. */
        if (buf[0] == '-' || buf[0] == '+' || strchr(buf, '.'))
                return -1;
        time_t t = curl_getdate(buf, NULL);
        if (t == (time_t)-1)
                return -1;
        /* curl_getdate() takes "444444445Oct8" for the year 444444445:
         * compare in seconds first, so the product below cannot overflow. */
        if ((int64_t)t > now_wall_ms / 1000 + RETRY_AFTER_MAX_S)
                return RETRY_AFTER_MAX_S * 1000L;
        int64_t delta = (int64_t)t * 1000 - now_wall_ms;
        if (delta < 0)
                return 0;
        if (delta > (int64_t)RETRY_AFTER_MAX_S * 1000)
                return RETRY_AFTER_MAX_S * 1000L;
        return (long)delta;
}

/* Copy the trimmed value of "Name: value" into out when the name matches. */
static int header_value(
    const char *line, size_t len, const char *name, char *out, size_t cap) {
        size_t nlen = strlen(name);

        if (len <= nlen || line[nlen] != ':' ||
            strncasecmp(line, name, nlen) != 0)
                return 0;
        const char *v = line + nlen + 1;
        const char *end = line + len;
        while (v < end && (*v == ' ' || *v == '\t'))
                v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' ||
                           end[-1] == ' ' || end[-1] == '\t'))
                end--;
        size_t n = (size_t)(end - v);
        if (n >= cap)
                n = cap - 1;
        /* The value reaches error messages (fly-request-id), which are one
         * line in a log record, an event and a dead-letter header: a server
         * gets no control byte into them. */
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)v[i];
                out[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
        }
        out[n] = '\0';
        return 1;
}

void http_resp_header(struct http_resp *resp, const char *line, size_t len) {
        if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
                resp->retry_after[0] = '\0';
                resp->request_id[0] = '\0';
                return;
        }
        if (header_value(line, len, "Retry-After", resp->retry_after,
                         sizeof(resp->retry_after)))
                return;
        header_value(line, len, "fly-request-id", resp->request_id,
                     sizeof(resp->request_id));
}

char *http_escape(const char *s) {
        /* Since 7.82.0 curl_easy_escape ignores its handle argument. */
        char *e = curl_easy_escape(NULL, s ? s : "", 0);
        char *copy = NULL;

        if (e) {
                copy = strdup(e);
                curl_free(e);
        }
        return copy;
}

void http_resp_free(struct http_resp *resp) {
        if (!resp)
                return;
        free(resp->body);
        memset(resp, 0, sizeof(*resp));
}

/* ---- share handle locks ------------------------------------------------ */

static void
share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *userp) {
        struct http *http = userp;
        (void)h;
        (void)access;
        if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
                pthread_mutex_lock(&http->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *userp) {
        struct http *http = userp;
        (void)h;
        if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
                pthread_mutex_unlock(&http->share_locks[data]);
}

/* ---- lifecycle ---------------------------------------------------------- */

struct http *http_new(struct err *err) {
        struct http *http = NULL;

        if (http_global_init(err) == -1)
                return NULL;
        http = calloc(1, sizeof(*http));
        if (!http) {
                err_oom(err, "http");
                return NULL;
        }
        for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
                pthread_mutex_init(&http->share_locks[i], NULL);
        pthread_mutex_init(&http->lock, NULL);
        http->share = curl_share_init();
        if (!http->share ||
            curl_share_setopt(http->share, CURLSHOPT_LOCKFUNC, share_lock) ||
            curl_share_setopt(http->share, CURLSHOPT_UNLOCKFUNC,
                              share_unlock) ||
            curl_share_setopt(http->share, CURLSHOPT_USERDATA, http) ||
            curl_share_setopt(http->share, CURLSHOPT_SHARE,
                              CURL_LOCK_DATA_DNS) ||
            curl_share_setopt(http->share, CURLSHOPT_SHARE,
                              CURL_LOCK_DATA_SSL_SESSION)) {
                err_set(err, ERR_PERMANENT, 0, "http: cannot set up a share");
                http_destroy(http);
                return NULL;
        }
        return http;
}

void http_destroy(struct http *http) {
        if (!http)
                return;
        /* Easy handles first: they hold references into the share. */
        for (int i = 0; i < http->n_idle; i++)
                curl_easy_cleanup(http->idle[i]);
        for (int i = 0; i < http->n_jar; i++)
                free(http->jar[i]);
        if (http->share)
                curl_share_cleanup(http->share);
        for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
                pthread_mutex_destroy(&http->share_locks[i]);
        pthread_mutex_destroy(&http->lock);
        free(http->proxy);
        free(http);
}

int http_set_proxy(struct http *http, const char *proxy, struct err *err) {
        free(http->proxy);
        http->proxy = NULL;
        if (!proxy || !*proxy)
                return 0;
        http->proxy = strdup(proxy);
        if (!http->proxy)
                return err_oom(err, "http: proxy");
        return 0;
}

static CURL *pool_get(struct http *http) {
        CURL *h = NULL;

        pthread_mutex_lock(&http->lock);
        if (http->n_idle > 0)
                h = http->idle[--http->n_idle];
        pthread_mutex_unlock(&http->lock);
        if (h)
                return h;
        h = curl_easy_init();
        /* The in-memory cookie engine, no file (see DESIGN); once per
         * handle, which keeps it for its life. */
        if (h && curl_easy_setopt(h, CURLOPT_COOKIEFILE, "") != CURLE_OK) {
                curl_easy_cleanup(h);
                h = NULL;
        }
        return h;
}

static void pool_put(struct http *http, CURL *h) {
        if (!h)
                return;
        /* Drop pointers to this call's buffers. Not curl_easy_reset():
         * libcurl 7.88 leaks the handle's COOKIEFILE list on a reset, and
         * set_options() sets every option we use on each call anyway.
         * Connections, DNS and cookies stay with the handle. */
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, NULL);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, NULL);
        pthread_mutex_lock(&http->lock);
        if (http->n_idle < POOL_MAX) {
                http->idle[http->n_idle++] = h;
                h = NULL;
        }
        pthread_mutex_unlock(&http->lock);
        if (h)
                curl_easy_cleanup(h);
}

/* ---- cookie jar --------------------------------------------------------- */

/* Field idx of a Netscape cookie line: domain, tailmatch, path, secure,
 * expires, name, value (tab-separated). */
static int field(const char *line, int idx, const char **start, size_t *n) {
        const char *p = line;
        for (int i = 0; i < idx; i++) {
                p = strchr(p, '\t');
                if (!p)
                        return 0;
                p++;
        }
        const char *end = strchr(p, '\t');
        *start = p;
        *n = end ? (size_t)(end - p) : strlen(p);
        return 1;
}

/* Same cookie: same domain, path and name. */
static int cookie_same(const char *a, const char *b) {
        static const int key[] = {0, 2, 5};
        for (size_t i = 0; i < sizeof(key) / sizeof(key[0]); i++) {
                const char *pa, *pb;
                size_t na, nb;
                if (!field(a, key[i], &pa, &na) || !field(b, key[i], &pb, &nb))
                        return 0;
                if (na != nb || memcmp(pa, pb, na) != 0)
                        return 0;
        }
        return 1;
}

static int slist_has(const struct curl_slist *l, const char *line) {
        for (; l; l = l->next)
                if (strcmp(l->data, line) == 0)
                        return 1;
        return 0;
}

static int slist_has_cookie(const struct curl_slist *l, const char *line) {
        for (; l; l = l->next)
                if (cookie_same(l->data, line))
                        return 1;
        return 0;
}

/* Load the jar into the handle (called with http->lock held). Returns the
 * lines loaded, to compare with after the transfer; NULL for none or OOM
 * (an OOM then only costs cookie propagation). */
static struct curl_slist *jar_load(struct http *http, CURL *h) {
        struct curl_slist *loaded = NULL;

        curl_easy_setopt(h, CURLOPT_COOKIELIST, "ALL");
        for (int i = 0; i < http->n_jar; i++) {
                struct curl_slist *n = curl_slist_append(loaded, http->jar[i]);
                if (!n)
                        break;
                loaded = n;
                curl_easy_setopt(h, CURLOPT_COOKIELIST, http->jar[i]);
        }
        return loaded;
}

/* Merge what the transfer changed into the jar (http->lock held): cookies
 * that were loaded and are gone now were deleted or expired; new or changed
 * lines replace the jar's entry for that cookie. */
static void jar_merge(struct http *http,
                      const struct curl_slist *loaded,
                      const struct curl_slist *now) {
        for (const struct curl_slist *l = loaded; l; l = l->next) {
                if (slist_has_cookie(now, l->data))
                        continue;
                for (int i = 0; i < http->n_jar; i++) {
                        /* Only if no other transfer updated it meanwhile. */
                        if (strcmp(http->jar[i], l->data) == 0) {
                                free(http->jar[i]);
                                http->jar[i] = http->jar[--http->n_jar];
                                break;
                        }
                }
        }
        for (const struct curl_slist *c = now; c; c = c->next) {
                if (slist_has(loaded, c->data))
                        continue;
                char *copy = strdup(c->data);
                if (!copy)
                        return;
                int i;
                for (i = 0; i < http->n_jar; i++)
                        if (cookie_same(http->jar[i], copy))
                                break;
                if (i < http->n_jar) {
                        free(http->jar[i]);
                        http->jar[i] = copy;
                } else if (http->n_jar < JAR_MAX) {
                        http->jar[http->n_jar++] = copy;
                } else {
                        free(copy);
                }
        }
}

/* ---- one request -------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp) {
        struct sink *sink = userp;
        size_t n = size * nmemb;

        /* 0 (not n) ends the transfer: CURLE_WRITE_ERROR; the state says
         * why. */
        return dynbuf_add(&sink->body, data, n) == 0 ? n : 0;
}

/* The body so far becomes resp->body (NULL when empty). */
static void sink_to_resp(struct sink *sink) {
        struct http_resp *resp = sink->resp;
        size_t len = 0;
        char *body;

        if (sink->body.state != DYNBUF_OK || sink->body.len == 0) {
                dynbuf_free(&sink->body);
                return;
        }
        body = dynbuf_take(&sink->body, &len);
        if (!body)
                return;
        free(resp->body);
        resp->body = body;
        resp->len = len;
}

static size_t on_header(char *data, size_t size, size_t nitems, void *userp) {
        http_resp_header(userp, data, size * nitems);
        return size * nitems;
}

/* Method and body options. A pooled handle is not reset, so each branch
 * also undoes what another method may have left (CUSTOMREQUEST, POST). */
static CURLcode set_method(CURL *h, const struct http_req *req) {
        int is_post = strcmp(req->method, "POST") == 0;
        int is_get = strcmp(req->method, "GET") == 0;
        const char *body = req->json_body;
        CURLcode rc;

        if (!body && is_post)
                body = ""; /* an empty POST still sends Content-Length: 0 */
        if (body) {
                rc = curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                                      (curl_off_t)strlen(body));
                if (!rc)
                        rc = curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        } else {
                rc = curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        }
        if (!rc)
                rc = curl_easy_setopt(
                    h, CURLOPT_CUSTOMREQUEST,
                    is_post || (is_get && !body) ? NULL : req->method);
        return rc;
}

static struct curl_slist *build_headers(const struct http_req *req) {
        struct curl_slist *list = NULL, *n;
        const char *fixed[] = {
            "Accept: application/json",
            /* No 100-continue round trip before a body. */
            "Expect:",
            /* No body: suppress libcurl's form content type on an empty
             * POST. */
            req->json_body ? "Content-Type: application/json" : "Content-Type:",
        };

        for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
                if (!fixed[i])
                        continue;
                n = curl_slist_append(list, fixed[i]);
                if (!n)
                        goto oom;
                list = n;
        }
        for (size_t i = 0; i < req->n_headers; i++) {
                n = curl_slist_append(list, req->headers[i]);
                if (!n)
                        goto oom;
                list = n;
        }
        return list;
oom:
        curl_slist_free_all(list);
        return NULL;
}

static CURLcode set_options(struct http *http,
                            CURL *h,
                            const struct http_req *req,
                            struct curl_slist *headers,
                            struct sink *sink,
                            char *errbuf) {
        long timeout =
            req->timeout_ms > 0 ? req->timeout_ms : TIMEOUT_DEFAULT_MS;
        long connect =
            timeout < CONNECT_TIMEOUT_MAX ? timeout : CONNECT_TIMEOUT_MAX;
        CURLcode rc;

#define SET(opt, val)                                                          \
        do {                                                                   \
                rc = curl_easy_setopt(h, opt, val);                            \
                if (rc != CURLE_OK)                                            \
                        return rc;                                             \
        } while (0)

        SET(CURLOPT_SHARE, http->share);
        SET(CURLOPT_URL, req->url);
        SET(CURLOPT_ERRORBUFFER, errbuf);
        /* Threads: no SIGALRM-based DNS timeouts. */
        SET(CURLOPT_NOSIGNAL, 1L);
        SET(CURLOPT_TCP_NODELAY, 1L);
        SET(CURLOPT_TCP_KEEPALIVE, 1L);
        SET(CURLOPT_TIMEOUT_MS, timeout);
        SET(CURLOPT_CONNECTTIMEOUT_MS, connect);
        SET(CURLOPT_FOLLOWLOCATION, 0L);
        /* Never the environment's proxy (http_proxy and the like): every
         * request may carry a token. "" turns libcurl's proxy off even
         * when the environment names one; NOPROXY "*" says it twice. */
        SET(CURLOPT_PROXY, http->proxy ? http->proxy : "");
        SET(CURLOPT_NOPROXY, http->proxy ? "" : "*");
        SET(CURLOPT_HTTPPROXYTUNNEL, http->proxy ? 1L : 0L);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85.0 */
        SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
        SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
        SET(CURLOPT_USERAGENT, "thopter-consumer/" THOPTER_VERSION);
        SET(CURLOPT_ACCEPT_ENCODING, "");
        SET(CURLOPT_HTTPHEADER, headers);
        SET(CURLOPT_WRITEFUNCTION, on_body);
        SET(CURLOPT_WRITEDATA, sink);
        SET(CURLOPT_HEADERFUNCTION, on_header);
        SET(CURLOPT_HEADERDATA, sink->resp);
#undef SET
        return set_method(h, req);
}

int http_request(struct http *http,
                 const struct http_req *req,
                 struct http_resp *resp,
                 struct err *err) {
        char errbuf[CURL_ERROR_SIZE] = "";
        size_t cap = req->body_cap ? req->body_cap : HTTP_BODY_CAP_DEFAULT;
        struct sink sink = {.resp = resp};
        struct curl_slist *headers = NULL;
        struct curl_slist *loaded = NULL;
        struct curl_slist *now = NULL;
        CURL *h = NULL;
        CURLcode rc;
        int ret = -1;

        dynbuf_init(&sink.body, cap, DYNBUF_FAIL);
        /* Through a proxy, only TLS: in a tunnel the proxy sees bytes it
         * cannot read; a plain request would hand it the headers. */
        if (http->proxy && strncmp(req->url, "https://", 8) != 0)
                return err_set(err, ERR_PERMANENT, 0,
                               "http: %s: refusing a plain-HTTP request "
                               "through a proxy (its headers would be read)",
                               req->method);
        h = pool_get(http);
        headers = build_headers(req);
        if (!h || !headers) {
                err_setc(err, ERR_TRANSIENT, ERR_CAUSE_OOM, CURLE_OUT_OF_MEMORY,
                         "http: %s: out of memory", req->method);
                goto out;
        }
        rc = set_options(http, h, req, headers, &sink, errbuf);
        if (rc != CURLE_OK) {
                err_set(err, http_classify(0, rc), rc, "http: %s: setopt: %s",
                        req->method, curl_easy_strerror(rc));
                goto out;
        }

        pthread_mutex_lock(&http->lock);
        loaded = jar_load(http, h);
        pthread_mutex_unlock(&http->lock);

        rc = curl_easy_perform(h);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);

        if (curl_easy_getinfo(h, CURLINFO_COOKIELIST, &now) == CURLE_OK) {
                pthread_mutex_lock(&http->lock);
                jar_merge(http, loaded, now);
                pthread_mutex_unlock(&http->lock);
        }

        if (sink.body.state == DYNBUF_TOOBIG) {
                err_set(err, ERR_PERMANENT, (int)resp->status,
                        "http: %s: HTTP %ld: response body larger than %zu "
                        "bytes",
                        req->method, resp->status, cap);
                goto out;
        }
        if (sink.body.state == DYNBUF_OOM) {
                err_setc(err, ERR_TRANSIENT, ERR_CAUSE_OOM, CURLE_OUT_OF_MEMORY,
                         "http: %s: out of memory for the response body",
                         req->method);
                goto out;
        }
        if (rc != CURLE_OK) {
                err_set(err, http_classify(0, rc), rc, "http: %s: %s",
                        req->method,
                        errbuf[0] ? errbuf : curl_easy_strerror(rc));
                goto out;
        }
        ret = 0;
out:
        sink_to_resp(&sink);
        curl_slist_free_all(now);
        curl_slist_free_all(loaded);
        pool_put(http, h);
        curl_slist_free_all(headers);
        return ret;
}
