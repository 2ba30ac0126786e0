/* fly_client.c - the Machines API calls of fly_client.h over http.c, with the
 * JSON mapping of fly_json.c.
 *
 * DESIGN
 * ------
 * Every call is one attempt through perform(): build the URL, send, count it
 * in the metrics, parse a 2xx body, and turn anything else into one err line
 * of the form
 *   fly: <verb> <object>: HTTP <status>: <server text> [fly-request-id <id>]
 * or, for a transport failure (code 0),
 *   fly: <verb> <object>: http: <METHOD>: <libcurl text>
 * Classification is http_classify()'s, and fly_json_error_cause() names the
 * answers a caller decides on (no capacity, volume claimed); nothing here
 * retries (fly_retry.h does).
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
#include "fly_pace.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "strfmt.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TIMEOUT_DEFAULT_MS 30000L
#define WAIT_MAX_S         60
#define WAIT_MARGIN_MS     10000L /* the server answers 408 at ~timeout */
#define SERVER_TEXT_MAX    128

struct fly_client {
        struct http *http;
        char *base;    /* no trailing '/' */
        char *app;     /* for messages */
        char *app_esc; /* for URLs */
        char *auth;    /* "Authorization: <scheme> <token>" */
        long timeout_ms;
        struct fly_pace *pace; /* NULL: not paced */
};

/* One request: what perform() needs to send it, count it, explain a
 * failure and parse the answer. */
struct call {
        const char *route; /* metrics label, e.g. "machines.delete" */
        char what[192];    /* message object, e.g. "delete machine 148e…" */
        const char *method;
        char *path;       /* after /v1/apps/{app}; segments escaped; owned */
        const char *body; /* optional JSON */
        long timeout_ms;  /* 0: the client's */
        /* optional: parse a 2xx body into out */
        int (*parse)(const char *body, size_t len, void *out, struct err *err);
        void *out;
};

/* ---- one call ----------------------------------------------------------- */

/* err_setc with Retry-After remembered (err_setc redacts, then cuts).
 * Records nothing when a failure is already recorded. Returns -1. */
static int fail(struct err *err,
                enum err_kind kind,
                enum err_cause cause,
                int code,
                long retry_after_ms,
                const char *f,
                ...) __attribute__((format(printf, 6, 7)));
static int fail(struct err *err,
                enum err_kind kind,
                enum err_cause cause,
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
        err_setc(err, kind, cause, code, "%s", msg);
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

static void count(const char *route, const char *status, double seconds) {
        char labels[128];

        snprintf(labels, sizeof(labels), "route=\"%s\",status=\"%s\"", route,
                 status);
        metrics_inc(M_FLY_REQUESTS, labels, 1);
        snprintf(labels, sizeof(labels), "route=\"%s\"", route);
        metrics_observe(M_FLY_REQUEST_DURATION, labels, seconds);
}

/* Send one request and parse its answer; frees c->path. 0 on a 2xx that
 * parsed; otherwise -1 with err set as DESIGN says. */
static int perform(struct fly_client *fly, struct call *c, struct err *err) {
        struct http_resp resp = {0};
        struct err herr = {0}, jerr = {0};
        char note[96], status[16];
        char *url = NULL;
        int rc = -1;

        if (!c->path) {
                err_oom(err, c->what);
                goto out;
        }
        url = strfmt("%s/v1/apps/%s%s", fly->base, fly->app_esc, c->path);
        if (!url) {
                err_oom(err, c->what);
                goto out;
        }
        const char *headers[] = {fly->auth};
        struct http_req req = {
            .method = c->method,
            .url = url,
            .headers = headers,
            .n_headers = 1,
            .json_body = c->body,
            .timeout_ms = c->timeout_ms > 0 ? c->timeout_ms : fly->timeout_ms,
        };
        int64_t wait = fly_pace_take(fly->pace, c->route, clock_mono_ms());
        if (wait > 0) {
                log_debug("fly", "%s (%s): paced, sent in %lld ms", c->route,
                          c->what, (long long)wait);
                clock_sleep_ms(wait);
        }
        int64_t t0 = clock_mono_ms();
        int hrc = http_request(fly->http, &req, &resp, &herr);
        double secs = (double)(clock_mono_ms() - t0) / 1000.0;

        if (hrc == -1 && resp.status == 0)
                snprintf(status, sizeof(status), "error");
        else
                snprintf(status, sizeof(status), "%ld", resp.status);
        count(c->route, status, secs);
        log_debug("fly", "%s (%s): %s -> %s in %.3f s%s", c->route, c->what,
                  c->method, status, secs,
                  req_id_note(&resp, note, sizeof(note)));

        long retry_after =
            http_retry_after_ms(resp.retry_after, clock_wall_ms());
        if (hrc == -1) {
                /* Transport failure or oversized body: code is the status,
                 * 0 when none arrived (fly_client.h). */
                fail(err, herr.kind, herr.cause, (int)resp.status, retry_after,
                     "fly: %s: %s%s", c->what, herr.msg,
                     req_id_note(&resp, note, sizeof(note)));
                goto out;
        }
        enum err_kind kind = http_classify(resp.status, CURLE_OK);
        if (kind != ERR_NONE) {
                /* The whole server text is redacted before it is cut down
                 * (err_setc), so an echoed secret cannot survive in part. */
                char text[4096];
                fly_json_error_text(resp.body, resp.len, text, sizeof(text));
                fail(err, kind, fly_json_error_cause(resp.status, text),
                     (int)resp.status, retry_after, "fly: %s: HTTP %ld%s%s%s",
                     c->what, resp.status, text[0] ? ": " : "", text,
                     req_id_note(&resp, note, sizeof(note)));
                goto out;
        }
        if (c->parse && c->parse(resp.body, resp.len, c->out, &jerr) == -1) {
                fail(err, jerr.kind, jerr.cause, (int)resp.status, 0,
                     "fly: %s: HTTP %ld: bad body: %s%s", c->what, resp.status,
                     jerr.msg, req_id_note(&resp, note, sizeof(note)));
                goto out;
        }
        rc = 0;
out:
        http_resp_free(&resp);
        free(url);
        free(c->path);
        c->path = NULL;
        return rc;
}

/* An empty id would turn ".../machines/" into another route (list). */
static int check_id(const char *verb, const char *id, struct err *err) {
        if (!id || !id[0])
                return fail(err, ERR_PERMANENT, ERR_CAUSE_OTHER, 0, 0,
                            "fly: %s: empty id", verb);
        return 0;
}

/* "/<collection>/<esc id><suffix>", malloc'd; NULL on OOM. */
static char *
item_path(const char *collection, const char *id, const char *suffix) {
        char *esc = http_escape(id);
        char *path = esc ? strfmt("/%s/%s%s", collection, esc, suffix) : NULL;

        free(esc);
        return path;
}

/* POST @p body, built by a fly_json builder (NULL: its error is in @p jerr),
 * to @p path. The body may carry secrets (env, files): wiped, then freed. */
static int post(struct fly_client *fly,
                struct call *c,
                const char *path,
                char *body,
                const struct err *jerr,
                struct err *err) {
        if (!body)
                return fail(err, jerr->kind, jerr->cause, 0, 0, "fly: %s: %s",
                            c->what, jerr->msg);
        c->method = "POST";
        c->body = body;
        c->path = strdup(path);
        int rc = perform(fly, c, err);
        secret_free(body);
        return rc;
}

/* Adapters from fly_json's parsers to call.parse. */
static int parse_machine(const char *b, size_t n, void *out, struct err *err) {
        return fly_json_machine_parse(b, n, out, err);
}

static int parse_volume(const char *b, size_t n, void *out, struct err *err) {
        return fly_json_volume_parse(b, n, out, err);
}

struct list_out {
        void **items;
        size_t *n;
        bool include_deleted;
};

static int parse_machines(const char *b, size_t n, void *out, struct err *err) {
        struct list_out *l = out;
        return fly_json_machines_parse(b, n, l->include_deleted,
                                       (struct fly_machine **)l->items, l->n,
                                       err);
}

static int parse_volumes(const char *b, size_t n, void *out, struct err *err) {
        struct list_out *l = out;
        return fly_json_volumes_parse(b, n, (struct fly_volume **)l->items,
                                      l->n, err);
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
        return strfmt("%s%.*s", scheme, (int)n, t);
}

/* Register the token and each of its comma-separated macaroons, with and
 * without a scheme, so that no form of it can reach a log line. The token
 * is registered as it is sent (outer whitespace trimmed, as
 * fly_auth_header() does): an untrimmed form would never match an echo. */
static void add_secrets(const char *token) {
        size_t len = strlen(token);
        char *copy = strdup(token);
        char *save = NULL;

        log_add_secret(token);
        if (!copy)
                return;
        char *body = copy;
        while (is_space(*body))
                body++;
        for (size_t n = strlen(body); n > 0 && is_space(body[n - 1]); n--)
                body[n - 1] = '\0';
        log_add_secret(body);
        if (starts(body, "FlyV1 "))
                body += 6;
        else if (starts(body, "Bearer "))
                body += 7;
        log_add_secret(body);
        for (char *p = strtok_r(body, ",", &save); p;
             p = strtok_r(NULL, ",", &save)) {
                while (is_space(*p))
                        p++;
                log_add_secret(p);
        }
        secret_wipe(copy, len);
        free(copy);
}

struct fly_client *fly_client_new(const struct fly_client_opts *opts,
                                  struct err *err) {
        struct fly_client *fly = NULL;
        char *value = NULL;

        if (!opts || !opts->base_url || !opts->base_url[0]) {
                fail(err, ERR_PERMANENT, ERR_CAUSE_OTHER, 0, 0,
                     "fly: client: no base URL");
                return NULL;
        }
        if (!opts->app || !opts->app[0]) {
                fail(err, ERR_PERMANENT, ERR_CAUSE_OTHER, 0, 0,
                     "fly: client: no app name");
                return NULL;
        }
        if (!opts->token || !opts->token[0]) {
                fail(err, ERR_PERMANENT, ERR_CAUSE_OTHER, 0, 0,
                     "fly: client: no token");
                return NULL;
        }
        add_secrets(opts->token);
        for (const char *p = opts->token; *p; p++) {
                /* Outer whitespace is trimmed; anything else would split the
                 * header. The message must not quote the token. */
                unsigned char c = (unsigned char)*p;
                if ((c < 0x20 || c == 0x7f) && !is_space(*p)) {
                        fail(err, ERR_PERMANENT, ERR_CAUSE_OTHER, 0, 0,
                             "fly: client: token contains control characters");
                        return NULL;
                }
        }

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
                fail(err, ERR_PERMANENT, ERR_CAUSE_OTHER, 0, 0,
                     "fly: client: token contains a line break");
                goto fail;
        }
        fly->auth = strfmt("Authorization: %s", value);
        if (!fly->auth)
                goto oom;
        /* fly's published limit for actions scoped to the app. */
        if (opts->pacing && !(fly->pace = fly_pace_new(1.0, 3.0)))
                goto oom;
        fly->http = http_new(err);
        if (!fly->http || http_set_proxy(fly->http, opts->proxy, err) == -1)
                goto fail;
        free(value);
        return fly;
oom:
        err_oom(err, "fly: client");
fail:
        free(value);
        fly_client_destroy(fly);
        return NULL;
}

void fly_client_destroy(struct fly_client *fly) {
        if (!fly)
                return;
        http_destroy(fly->http);
        fly_pace_free(fly->pace);
        /* Do not leave the token in freed heap memory. */
        secret_free(fly->auth);
        free(fly->base);
        free(fly->app);
        free(fly->app_esc);
        free(fly);
}

/* ---- machines ----------------------------------------------------------- */

int fly_machine_get(struct fly_client *fly,
                    const char *id,
                    struct fly_machine *out,
                    struct err *err) {
        struct call c = {.route = "machines.get",
                         .method = "GET",
                         .parse = parse_machine,
                         .out = out};

        memset(out, 0, sizeof(*out));
        if (check_id("get machine", id, err) == -1)
                return -1;
        snprintf(c.what, sizeof(c.what), "get machine %s", id);
        c.path = item_path("machines", id, "");
        return perform(fly, &c, err);
}

int fly_machine_list(struct fly_client *fly,
                     const struct fly_list_opts *opts,
                     struct fly_machine **out,
                     size_t *n,
                     struct err *err) {
        static const struct fly_list_opts none = {0};
        struct list_out l = {(void **)out, n, false};
        struct call c = {.route = "machines.list",
                         .method = "GET",
                         .parse = parse_machines,
                         .out = &l};
        const char *deleted;

        opts = opts ? opts : &none;
        l.include_deleted = opts->include_deleted;
        deleted = opts->include_deleted ? "include_deleted=true" : "";
        *out = NULL;
        *n = 0;
        if (opts->meta_key && opts->meta_key[0]) {
                char *k = http_escape(opts->meta_key);
                char *v = http_escape(opts->meta_value ? opts->meta_value : "");
                snprintf(c.what, sizeof(c.what),
                         "list machines in app %s (%s=%s)", fly->app,
                         opts->meta_key,
                         opts->meta_value ? opts->meta_value : "");
                c.path = k && v ? strfmt("/machines?metadata.%s=%s%s%s", k, v,
                                         deleted[0] ? "&" : "", deleted)
                                : NULL;
                free(k);
                free(v);
        } else {
                snprintf(c.what, sizeof(c.what), "list machines in app %s",
                         fly->app);
                c.path =
                    strfmt("/machines%s%s", deleted[0] ? "?" : "", deleted);
        }
        return perform(fly, &c, err);
}

int fly_list_call_run(void *call, struct err *err) {
        struct fly_list_call *c = call;
        free(c->machines);
        c->machines = NULL;
        c->n = 0;
        return fly_machine_list(c->fly, &c->opts, &c->machines, &c->n, err);
}

int fly_machine_set_metadata(struct fly_client *fly,
                             const char *id,
                             const char *key,
                             const char *value,
                             struct err *err) {
        struct call c = {.route = "machines.metadata", .method = "POST"};
        struct err jerr = {0};

        if (check_id("set machine metadata", id, err) == -1)
                return -1;
        snprintf(c.what, sizeof(c.what), "set metadata %s of machine %s", key,
                 id);
        char *esc = http_escape(key);
        char *suffix = esc ? strfmt("/metadata/%s", esc) : NULL;
        char *path = suffix ? item_path("machines", id, suffix) : NULL;
        int rc = path ? post(fly, &c, path,
                             fly_json_metadata_body(value, &jerr), &jerr, err)
                      : err_oom(err, c.what);
        free(esc);
        free(suffix);
        free(path);
        return rc;
}

int fly_machine_stop(struct fly_client *fly, const char *id, struct err *err) {
        struct call c = {.route = "machines.stop", .method = "POST"};

        if (check_id("stop machine", id, err) == -1)
                return -1;
        snprintf(c.what, sizeof(c.what), "stop machine %s", id);
        c.path = item_path("machines", id, "/stop");
        return perform(fly, &c, err);
}

int fly_machine_delete(struct fly_client *fly,
                       const char *id,
                       bool force,
                       struct err *err) {
        struct call c = {.route = "machines.delete", .method = "DELETE"};

        if (check_id("delete machine", id, err) == -1)
                return -1;
        snprintf(c.what, sizeof(c.what), "delete machine %s", id);
        /* force=true, not fly-go's kill=true: the documented spelling
         * (reference section 4.9). 404 comes back as -1, code 404: whether
         * "already gone" is done is the caller's call (fly_client.h). */
        c.path = item_path("machines", id, force ? "?force=true" : "");
        return perform(fly, &c, err);
}

int fly_machine_create(struct fly_client *fly,
                       const struct fly_create_spec *spec,
                       struct fly_machine *out,
                       struct err *err) {
        struct call c = {.route = "machines.create",
                         .method = "POST",
                         .parse = parse_machine,
                         .out = out};
        struct err jerr = {0};

        memset(out, 0, sizeof(*out));
        if (spec && spec->name && spec->name[0])
                snprintf(c.what, sizeof(c.what), "create machine %s in app %s",
                         spec->name, fly->app);
        else
                snprintf(c.what, sizeof(c.what), "create machine in app %s",
                         fly->app);
        /* Not idempotent: a 408/5xx here is ambiguous (the machine may
         * exist). The caller looks it up by metadata before retrying
         * (reference section 9). */
        return post(fly, &c, "/machines", fly_json_create_body(spec, &jerr),
                    &jerr, err);
}

int fly_machine_wait(struct fly_client *fly,
                     const char *id,
                     const char *state,
                     const char *instance_id,
                     int timeout_s,
                     struct err *err) {
        struct call c = {.route = "machines.wait", .method = "GET"};
        char *st = NULL, *iid = NULL, *suffix = NULL;

        if (!state || !state[0])
                state = "started";
        if (check_id("wait for machine", id, err) == -1)
                return -1;
        snprintf(c.what, sizeof(c.what), "wait for machine %s to be %s", id,
                 state);
        /* The server enforces [1, 60] s and rejects more with 400
         * invalid_argument (reference section 4.5). */
        if (timeout_s < 1)
                timeout_s = 1;
        if (timeout_s > WAIT_MAX_S)
                timeout_s = WAIT_MAX_S;
        st = http_escape(state);
        iid = instance_id && instance_id[0] ? http_escape(instance_id) : NULL;
        if (st && (!instance_id || !instance_id[0] || iid))
                suffix = strfmt("/wait?state=%s&timeout=%d%s%s", st, timeout_s,
                                iid ? "&instance_id=" : "", iid ? iid : "");
        c.path = suffix ? item_path("machines", id, suffix) : NULL;
        free(st);
        free(iid);
        free(suffix);
        /* Our own deadline must outlast the server's, or every slow boot
         * becomes a transport timeout instead of the server's 408 (which
         * http_classify() makes ERR_TRANSIENT, code 408). */
        c.timeout_ms = (long)timeout_s * 1000 + WAIT_MARGIN_MS;
        if (c.timeout_ms < fly->timeout_ms)
                c.timeout_ms = fly->timeout_ms;
        return perform(fly, &c, err);
}

/* ---- volumes ------------------------------------------------------------ */

int fly_volume_list(struct fly_client *fly,
                    struct fly_volume **out,
                    size_t *n,
                    struct err *err) {
        struct list_out l = {(void **)out, n, false};
        struct call c = {.route = "volumes.list",
                         .method = "GET",
                         .parse = parse_volumes,
                         .out = &l};

        *out = NULL;
        *n = 0;
        snprintf(c.what, sizeof(c.what), "list volumes in app %s", fly->app);
        c.path = strdup("/volumes");
        return perform(fly, &c, err);
}

int fly_volume_create(struct fly_client *fly,
                      const char *name,
                      int size_gb,
                      const char *region,
                      struct fly_volume *out,
                      struct err *err) {
        struct call c = {.route = "volumes.create",
                         .method = "POST",
                         .parse = parse_volume,
                         .out = out};
        struct err jerr = {0};

        memset(out, 0, sizeof(*out));
        snprintf(c.what, sizeof(c.what), "create volume %s in app %s",
                 name ? name : "", fly->app);
        return post(fly, &c, "/volumes",
                    fly_json_volume_create_body(name, size_gb, region, &jerr),
                    &jerr, err);
}
