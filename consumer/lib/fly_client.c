/* fly_client.c - the Machines API calls of fly_client.h over http.c, with the
 * JSON mapping of fly_json.c.
 *
 * DESIGN
 * ------
 * Every call is one attempt through call(): build the URL, send, count it in
 * the metrics, and turn anything but a 2xx into one err line of the form
 *   fly: <verb> <object>: HTTP <status>: <server text> [fly-request-id <id>]
 * or, for a transport failure (code 0),
 *   fly: <verb> <object>: http: <METHOD>: <libcurl text>
 * Classification is http_classify()'s; nothing here retries (retry.h does).
 *
 * Secrets: the token travels only in the Authorization header, which is
 * built once in fly_client_new() and never formatted into a URL, a message
 * or a log line. fly_client_new() also registers the token (and its
 * comma-separated macaroons) with log_add_secret(), and every message this
 * file records is passed through log_redact(), so a server that echoes the
 * token still cannot leak it.
 *
 * Thread safety: after fly_client_new() the struct is read-only; the shared
 * mutable state (handle pool, cookie jar) lives in struct http, which locks.
 */
#include "fly_client.h"
#include "clock.h"
#include "fly_json.h"
#include "http.h"
#include "log.h"
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TIMEOUT_DEFAULT_MS 30000L
#define WAIT_MAX_S         60
#define WAIT_MARGIN_MS     10000L /* the server answers 408 at ~timeout */
#define SERVER_TEXT_MAX    128

#define METRIC_REQUESTS "thopter_fly_requests_total"
#define METRIC_DURATION "thopter_fly_request_duration_seconds"

struct fly_client {
        struct http *http;
        char *base;    /* no trailing '/' */
        char *app;     /* for messages */
        char *app_esc; /* for URLs */
        char *auth;    /* "Authorization: <scheme> <token>" */
        long timeout_ms;
};

/* One request as call() sends it. */
struct call {
        const char *route; /* metrics label, e.g. "machines.delete" */
        const char *what;  /* message object, e.g. "delete machine 148e…" */
        const char *method;
        const char *path; /* after /v1/apps/{app}; segments escaped */
        const char *body; /* optional JSON */
        long timeout_ms;  /* 0: the client's */
};

/* ---- helpers ------------------------------------------------------------- */

static char *vfmt(const char *fmt, va_list ap) {
        va_list ap2;
        int n;
        char *s;

        va_copy(ap2, ap);
        n = vsnprintf(NULL, 0, fmt, ap2);
        va_end(ap2);
        if (n < 0)
                return NULL;
        s = malloc((size_t)n + 1);
        if (s)
                vsnprintf(s, (size_t)n + 1, fmt, ap);
        return s;
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...) {
        va_list ap;
        char *s;

        va_start(ap, f);
        s = vfmt(f, ap);
        va_end(ap);
        return s;
}

/* err_set, then redact the message, and remember Retry-After. Records
 * nothing when an earlier failure is already recorded. Returns -1. */
static int fail(struct err *err,
                enum err_kind kind,
                int code,
                long retry_after_ms,
                const char *f,
                ...) __attribute__((format(printf, 5, 6)));
static int fail(struct err *err,
                enum err_kind kind,
                int code,
                long retry_after_ms,
                const char *f,
                ...) {
        char msg[4 * ERR_MSG_LEN];
        va_list ap;

        if (!err || err->kind != ERR_NONE)
                return -1;
        va_start(ap, f);
        vsnprintf(msg, sizeof(msg), f, ap);
        va_end(ap);
        log_redact(msg, sizeof(msg));
        err_set(err, kind, code, "%s", msg);
        log_redact(err->msg, sizeof(err->msg));
        if (retry_after_ms > 0)
                err->retry_after_ms = retry_after_ms;
        return -1;
}

/* " [fly-request-id X]" or "" (into a caller buffer). */
static const char *
req_id_note(const struct http_resp *resp, char *buf, size_t cap) {
        buf[0] = '\0';
        if (resp->request_id[0])
                snprintf(buf, cap, " [fly-request-id %s]", resp->request_id);
        return buf;
}

/* An empty id would turn ".../machines/" into another route (list). */
static int check_id(const char *verb, const char *id, struct err *err) {
        if (!id || !id[0])
                return fail(err, ERR_PERMANENT, 0, 0, "fly: %s: empty id",
                            verb);
        return 0;
}

static void count(const char *route, const char *status, double seconds) {
        char labels[128];

        snprintf(labels, sizeof(labels), "route=\"%s\",status=\"%s\"", route,
                 status);
        metrics_inc(METRIC_REQUESTS, labels, 1);
        snprintf(labels, sizeof(labels), "route=\"%s\"", route);
        metrics_observe(METRIC_DURATION, labels, seconds);
}

/*
 * Send one request. 0 on a 2xx (resp holds the body); otherwise -1 with err
 * set as DESIGN says. resp must be freed by the caller either way.
 */
static int call(struct fly_client *fly,
                const struct call *c,
                struct http_resp *resp,
                struct err *err) {
        struct err herr = {0};
        char note[96];
        char status[16];
        char *url = NULL;
        int rc = -1;

        url = fmt("%s/v1/apps/%s%s", fly->base, fly->app_esc, c->path);
        if (!url)
                return fail(err, ERR_TRANSIENT, 0, 0, "fly: %s: out of memory",
                            c->what);
        const char *headers[] = {fly->auth};
        struct http_req req = {
            .method = c->method,
            .url = url,
            .headers = headers,
            .n_headers = 1,
            .json_body = c->body,
            .timeout_ms = c->timeout_ms > 0 ? c->timeout_ms : fly->timeout_ms,
        };
        int64_t t0 = clock_mono_ms();
        int hrc = http_request(fly->http, &req, resp, &herr);
        double secs = (double)(clock_mono_ms() - t0) / 1000.0;

        if (hrc == -1 && resp->status == 0)
                snprintf(status, sizeof(status), "error");
        else
                snprintf(status, sizeof(status), "%ld", resp->status);
        count(c->route, status, secs);
        log_debug("fly", "%s (%s): %s -> %s in %.3f s%s", c->route, c->what,
                  c->method, status, secs,
                  req_id_note(resp, note, sizeof(note)));

        long retry_after =
            http_retry_after_ms(resp->retry_after, clock_wall_ms());
        if (hrc == -1) {
                /* Transport failure or oversized body: code is the status,
                 * 0 when none arrived (fly_client.h). */
                fail(err, herr.kind, (int)resp->status, retry_after,
                     "fly: %s: %s%s", c->what, herr.msg,
                     req_id_note(resp, note, sizeof(note)));
                goto out;
        }
        enum err_kind kind = http_classify(resp->status, CURLE_OK);
        if (kind != ERR_NONE) {
                /* Redact the whole server text before cutting it down, so a
                 * secret it echoes cannot survive as a prefix. */
                char full[4096], text[SERVER_TEXT_MAX];
                fly_json_error_text(resp->body, resp->len, full, sizeof(full));
                log_redact(full, sizeof(full));
                full[sizeof(text) - 1] = '\0';
                memcpy(text, full, sizeof(text));
                fail(err, kind, (int)resp->status, retry_after,
                     "fly: %s: HTTP %ld%s%s%s", c->what, resp->status,
                     text[0] ? ": " : "", text,
                     req_id_note(resp, note, sizeof(note)));
                goto out;
        }
        rc = 0;
out:
        free(url);
        return rc;
}

/* Wrap a fly_json failure on a 2xx body. */
static int bad_body(const char *what,
                    const struct http_resp *resp,
                    const struct err *jerr,
                    struct err *err) {
        char note[96];

        return fail(err, jerr->kind, (int)resp->status, 0,
                    "fly: %s: HTTP %ld: bad body: %s%s", what, resp->status,
                    jerr->msg, req_id_note(resp, note, sizeof(note)));
}

/* ---- auth and lifecycle ------------------------------------------------- */

static int starts(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int is_space(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

char *fly_auth_header(const char *token) {
        const char *scheme = "";
        const char *t;
        size_t n;

        if (!token)
                return NULL;
        /* Outer whitespace is never part of a token; a trailing newline from
         * an env file would otherwise end the header early. */
        t = token;
        while (is_space(*t))
                t++;
        n = strlen(t);
        while (n > 0 && is_space(t[n - 1]))
                n--;
        if (starts(t, "FlyV1 ") || starts(t, "Bearer "))
                scheme = "";
        else if (starts(t, "fm1") || starts(t, "fm2") || starts(t, "m2."))
                scheme = "FlyV1 ";
        else
                scheme = "Bearer ";
        return fmt("%s%.*s", scheme, (int)n, t);
}

/* Register the token and each of its comma-separated macaroons, with and
 * without a scheme, so that no form of it can reach a log line. */
static void add_secrets(const char *token) {
        char *copy = strdup(token);
        char *save = NULL;

        log_add_secret(token);
        if (!copy)
                return;
        char *body = copy;
        if (starts(body, "FlyV1 "))
                body += 6;
        else if (starts(body, "Bearer "))
                body += 7;
        log_add_secret(body);
        for (char *p = strtok_r(body, ",", &save); p;
             p = strtok_r(NULL, ",", &save))
                log_add_secret(p);
        free(copy);
}

struct fly_client *fly_client_new(const struct fly_client_opts *opts,
                                  struct err *err) {
        struct fly_client *fly = NULL;
        char *value = NULL;

        if (!opts || !opts->base_url || !opts->base_url[0]) {
                fail(err, ERR_PERMANENT, 0, 0, "fly: client: no base URL");
                return NULL;
        }
        if (!opts->app || !opts->app[0]) {
                fail(err, ERR_PERMANENT, 0, 0, "fly: client: no app name");
                return NULL;
        }
        if (!opts->token || !opts->token[0]) {
                fail(err, ERR_PERMANENT, 0, 0, "fly: client: no token");
                return NULL;
        }
        add_secrets(opts->token);
        for (const char *p = opts->token; *p; p++) {
                /* Outer whitespace is trimmed; anything else would split the
                 * header. The message must not quote the token. */
                unsigned char c = (unsigned char)*p;
                if ((c < 0x20 || c == 0x7f) && !is_space(*p)) {
                        fail(err, ERR_PERMANENT, 0, 0,
                             "fly: client: token contains control characters");
                        return NULL;
                }
        }

        metrics_describe(METRIC_REQUESTS, METRICS_COUNTER,
                         "Machines API requests by route and HTTP status "
                         "(\"error\": no response)");
        metrics_describe(METRIC_DURATION, METRICS_HISTOGRAM,
                         "Machines API request duration by route");

        fly = calloc(1, sizeof(*fly));
        if (!fly)
                goto oom;
        fly->timeout_ms =
            opts->timeout_ms > 0 ? opts->timeout_ms : TIMEOUT_DEFAULT_MS;
        fly->base = strdup(opts->base_url);
        fly->app = strdup(opts->app);
        fly->app_esc = http_escape(opts->app);
        value = fly_auth_header(opts->token);
        if (!fly->base || !fly->app || !fly->app_esc || !value)
                goto oom;
        for (size_t n = strlen(fly->base); n > 0 && fly->base[n - 1] == '/';
             n--)
                fly->base[n - 1] = '\0';
        if (strchr(value, '\r') || strchr(value, '\n')) {
                fail(err, ERR_PERMANENT, 0, 0,
                     "fly: client: token contains a line break");
                goto fail;
        }
        fly->auth = fmt("Authorization: %s", value);
        if (!fly->auth)
                goto oom;
        fly->http = http_new(err);
        if (!fly->http)
                goto fail;
        free(value);
        return fly;
oom:
        fail(err, ERR_TRANSIENT, 0, 0, "fly: client: out of memory");
fail:
        free(value);
        fly_client_destroy(fly);
        return NULL;
}

void fly_client_destroy(struct fly_client *fly) {
        if (!fly)
                return;
        http_destroy(fly->http);
        if (fly->auth) {
                /* Do not leave the token in freed heap memory. */
                memset(fly->auth, 0, strlen(fly->auth));
                free(fly->auth);
        }
        free(fly->base);
        free(fly->app);
        free(fly->app_esc);
        free(fly);
}

/* ---- machines ----------------------------------------------------------- */

/* "/machines/<esc id><suffix>" */
static char *machine_path(const char *id, const char *suffix) {
        char *esc = http_escape(id);
        char *path = esc ? fmt("/machines/%s%s", esc, suffix) : NULL;

        free(esc);
        return path;
}

int fly_machine_get(struct fly_client *fly,
                    const char *id,
                    struct fly_machine *out,
                    struct err *err) {
        struct http_resp resp = {0};
        struct err jerr = {0};
        char what[96];
        char *path = NULL;
        int rc = -1;

        memset(out, 0, sizeof(*out));
        if (check_id("get machine", id, err) == -1)
                goto out;
        snprintf(what, sizeof(what), "get machine %s", id);
        path = machine_path(id, "");
        if (!path) {
                fail(err, ERR_TRANSIENT, 0, 0, "fly: %s: out of memory", what);
                goto out;
        }
        struct call c = {"machines.get", what, "GET", path, NULL, 0};
        if (call(fly, &c, &resp, err) == -1)
                goto out;
        if (fly_json_machine_parse(resp.body, resp.len, out, &jerr) == -1) {
                bad_body(what, &resp, &jerr, err);
                goto out;
        }
        rc = 0;
out:
        http_resp_free(&resp);
        free(path);
        return rc;
}

int fly_machine_list(struct fly_client *fly,
                     const char *meta_key,
                     const char *meta_value,
                     struct fly_machine **out,
                     size_t *n,
                     struct err *err) {
        struct http_resp resp = {0};
        struct err jerr = {0};
        char what[160];
        char *path = NULL, *k = NULL, *v = NULL;
        int rc = -1;

        *out = NULL;
        *n = 0;
        if (meta_key && meta_key[0]) {
                snprintf(what, sizeof(what), "list machines in app %s (%s=%s)",
                         fly->app, meta_key, meta_value ? meta_value : "");
                k = http_escape(meta_key);
                v = http_escape(meta_value ? meta_value : "");
                path = k && v ? fmt("/machines?metadata.%s=%s", k, v) : NULL;
        } else {
                snprintf(what, sizeof(what), "list machines in app %s",
                         fly->app);
                path = strdup("/machines");
        }
        if (!path) {
                fail(err, ERR_TRANSIENT, 0, 0, "fly: %s: out of memory", what);
                goto out;
        }
        struct call c = {"machines.list", what, "GET", path, NULL, 0};
        if (call(fly, &c, &resp, err) == -1)
                goto out;
        if (fly_json_machines_parse(resp.body, resp.len, out, n, &jerr) == -1) {
                bad_body(what, &resp, &jerr, err);
                goto out;
        }
        rc = 0;
out:
        http_resp_free(&resp);
        free(path);
        free(k);
        free(v);
        return rc;
}

int fly_machine_stop(struct fly_client *fly, const char *id, struct err *err) {
        struct http_resp resp = {0};
        char what[96];
        char *path = NULL;
        int rc = -1;

        if (check_id("stop machine", id, err) == -1)
                goto out;
        snprintf(what, sizeof(what), "stop machine %s", id);
        path = machine_path(id, "/stop");
        if (!path) {
                fail(err, ERR_TRANSIENT, 0, 0, "fly: %s: out of memory", what);
                goto out;
        }
        struct call c = {"machines.stop", what, "POST", path, NULL, 0};
        if (call(fly, &c, &resp, err) == -1)
                goto out;
        rc = 0;
out:
        http_resp_free(&resp);
        free(path);
        return rc;
}

int fly_machine_delete(struct fly_client *fly,
                       const char *id,
                       bool force,
                       struct err *err) {
        struct http_resp resp = {0};
        char what[96];
        char *path = NULL;
        int rc = -1;

        if (check_id("delete machine", id, err) == -1)
                goto out;
        snprintf(what, sizeof(what), "delete machine %s", id);
        /* force=true, not fly-go's kill=true: the documented spelling
         * (reference section 4.9). */
        path = machine_path(id, force ? "?force=true" : "");
        if (!path) {
                fail(err, ERR_TRANSIENT, 0, 0, "fly: %s: out of memory", what);
                goto out;
        }
        struct call c = {"machines.delete", what, "DELETE", path, NULL, 0};
        /* 404 comes back as -1, code 404: whether "already gone" is done is
         * the caller's call (fly_client.h). */
        if (call(fly, &c, &resp, err) == -1)
                goto out;
        rc = 0;
out:
        http_resp_free(&resp);
        free(path);
        return rc;
}

int fly_machine_create(struct fly_client *fly,
                       const struct fly_create_spec *spec,
                       struct fly_machine *out,
                       struct err *err) {
        struct http_resp resp = {0};
        struct err jerr = {0};
        char what[192];
        char *body = NULL;
        int rc = -1;

        memset(out, 0, sizeof(*out));
        if (spec && spec->name && spec->name[0])
                snprintf(what, sizeof(what), "create machine %s in app %s",
                         spec->name, fly->app);
        else
                snprintf(what, sizeof(what), "create machine in app %s",
                         fly->app);
        body = fly_json_create_body(spec, &jerr);
        if (!body) {
                fail(err, jerr.kind, 0, 0, "fly: %s: %s", what, jerr.msg);
                goto out;
        }
        /* Not idempotent: a 408/5xx here is ambiguous (the machine may
         * exist). The caller looks it up by metadata before retrying
         * (reference section 9). */
        struct call c = {"machines.create", what, "POST", "/machines", body, 0};
        if (call(fly, &c, &resp, err) == -1)
                goto out;
        if (fly_json_machine_parse(resp.body, resp.len, out, &jerr) == -1) {
                bad_body(what, &resp, &jerr, err);
                goto out;
        }
        rc = 0;
out:
        http_resp_free(&resp);
        free(body);
        return rc;
}

int fly_machine_wait(struct fly_client *fly,
                     const char *id,
                     const char *state,
                     const char *instance_id,
                     int timeout_s,
                     struct err *err) {
        struct http_resp resp = {0};
        char what[128];
        char *path = NULL, *st = NULL, *iid = NULL, *suffix = NULL;
        int rc = -1;

        if (!state || !state[0])
                state = "started";
        if (check_id("wait for machine", id, err) == -1)
                goto out;
        snprintf(what, sizeof(what), "wait for machine %s to be %s", id, state);
        /* The server enforces [1, 60] s and rejects more with 400
         * invalid_argument (reference section 4.5). */
        if (timeout_s < 1)
                timeout_s = 1;
        if (timeout_s > WAIT_MAX_S)
                timeout_s = WAIT_MAX_S;
        st = http_escape(state);
        iid = instance_id && instance_id[0] ? http_escape(instance_id) : NULL;
        if (st && (!instance_id || !instance_id[0] || iid))
                suffix = fmt("/wait?state=%s&timeout=%d%s%s", st, timeout_s,
                             iid ? "&instance_id=" : "", iid ? iid : "");
        path = suffix ? machine_path(id, suffix) : NULL;
        if (!path) {
                fail(err, ERR_TRANSIENT, 0, 0, "fly: %s: out of memory", what);
                goto out;
        }
        /* Our own deadline must outlast the server's, or every slow boot
         * becomes a transport timeout instead of the server's 408. */
        long http_timeout = (long)timeout_s * 1000 + WAIT_MARGIN_MS;
        if (http_timeout < fly->timeout_ms)
                http_timeout = fly->timeout_ms;
        struct call c = {"machines.wait", what, "GET", path, NULL,
                         http_timeout};
        /* 408 (the state was not reached in time) is ERR_TRANSIENT with code
         * 408 through http_classify(). */
        if (call(fly, &c, &resp, err) == -1)
                goto out;
        rc = 0;
out:
        http_resp_free(&resp);
        free(path);
        free(st);
        free(iid);
        free(suffix);
        return rc;
}

/* ---- volumes ------------------------------------------------------------ */

int fly_volume_list(struct fly_client *fly,
                    struct fly_volume **out,
                    size_t *n,
                    struct err *err) {
        struct http_resp resp = {0};
        struct err jerr = {0};
        char what[128];
        int rc = -1;

        *out = NULL;
        *n = 0;
        snprintf(what, sizeof(what), "list volumes in app %s", fly->app);
        struct call c = {"volumes.list", what, "GET", "/volumes", NULL, 0};
        if (call(fly, &c, &resp, err) == -1)
                goto out;
        if (fly_json_volumes_parse(resp.body, resp.len, out, n, &jerr) == -1) {
                bad_body(what, &resp, &jerr, err);
                goto out;
        }
        rc = 0;
out:
        http_resp_free(&resp);
        return rc;
}

int fly_volume_create(struct fly_client *fly,
                      const char *name,
                      int size_gb,
                      const char *region,
                      struct fly_volume *out,
                      struct err *err) {
        struct http_resp resp = {0};
        struct err jerr = {0};
        char what[192];
        char *body = NULL;
        int rc = -1;

        memset(out, 0, sizeof(*out));
        snprintf(what, sizeof(what), "create volume %s in app %s",
                 name ? name : "", fly->app);
        body = fly_json_volume_create_body(name, size_gb, region, &jerr);
        if (!body) {
                fail(err, jerr.kind, 0, 0, "fly: %s: %s", what, jerr.msg);
                goto out;
        }
        struct call c = {"volumes.create", what, "POST", "/volumes", body, 0};
        if (call(fly, &c, &resp, err) == -1)
                goto out;
        if (fly_json_volume_parse(resp.body, resp.len, out, &jerr) == -1) {
                bad_body(what, &resp, &jerr, err);
                goto out;
        }
        rc = 0;
out:
        http_resp_free(&resp);
        free(body);
        return rc;
}

int fly_volume_delete(struct fly_client *fly, const char *id, struct err *err) {
        struct http_resp resp = {0};
        char what[96];
        char *esc = NULL, *path = NULL;
        int rc = -1;

        if (check_id("delete volume", id, err) == -1)
                goto out;
        snprintf(what, sizeof(what), "delete volume %s", id);
        esc = http_escape(id);
        path = esc ? fmt("/volumes/%s", esc) : NULL;
        if (!path) {
                fail(err, ERR_TRANSIENT, 0, 0, "fly: %s: out of memory", what);
                goto out;
        }
        struct call c = {"volumes.delete", what, "DELETE", path, NULL, 0};
        if (call(fly, &c, &resp, err) == -1)
                goto out;
        rc = 0;
out:
        http_resp_free(&resp);
        free(esc);
        free(path);
        return rc;
}
