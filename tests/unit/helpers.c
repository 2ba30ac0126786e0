/* helpers.c - see test_helpers.h. Linked into every Criterion test. */
#include "test_helpers.h"
#include "clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_all(const char *path, size_t *len, int terminate) {
        FILE *f = fopen(path, "rb");
        char *buf;
        long n;

        cr_assert(f, "open %s", path);
        cr_assert(fseek(f, 0, SEEK_END) == 0, "seek %s", path);
        n = ftell(f);
        cr_assert(n >= 0, "size of %s", path);
        rewind(f);
        buf = malloc((size_t)n + (terminate || n == 0 ? 1 : 0));
        cr_assert(buf);
        cr_assert(fread(buf, 1, (size_t)n, f) == (size_t)n, "read %s", path);
        fclose(f);
        if (terminate)
                buf[n] = '\0';
        *len = (size_t)n;
        return buf;
}

char *test_slurp(const char *path, size_t *len) {
        return read_all(path, len, 0);
}

char *test_slurp_str(const char *path, size_t *len) {
        return read_all(path, len, 1);
}

char *test_repeat(const char *unit, size_t times) {
        size_t u = strlen(unit);
        char *s = malloc(u * times + 1);

        cr_assert(s);
        for (size_t i = 0; i < times; i++)
                memcpy(s + i * u, unit, u);
        s[u * times] = '\0';
        return s;
}

char *test_payload(const void *text, size_t len) {
        char *buf = malloc(len ? len : 1);

        cr_assert(buf);
        if (len)
                memcpy(buf, text, len);
        return buf;
}

int test_parse_provision(const char *text,
                         size_t len,
                         struct provision_request *req,
                         struct err *err) {
        char *buf = test_payload(text, len);
        int rc = request_parse_provision(buf, len, req, err);

        free(buf);
        return rc;
}

int test_parse_destroy(const char *text,
                       size_t len,
                       struct destroy_request *req,
                       struct err *err) {
        char *buf = test_payload(text, len);
        int rc = request_parse_destroy(buf, len, req, err);

        free(buf);
        return rc;
}

void test_load_provision(const char *path, struct provision_request *req) {
        struct err err = {0};
        size_t len;
        char *buf = test_slurp(path, &len);

        assert_ok(request_parse_provision(buf, len, req, &err), &err);
        free(buf);
}

cJSON *test_load_json(const char *path) {
        size_t len;
        char *text = test_slurp(path, &len);
        cJSON *root = cJSON_ParseWithLength(text, len);

        free(text);
        cr_assert(root, "%s: not JSON", path);
        return root;
}

long test_ms(long ms) {
        const char *m = getenv("THOPTER_TIMEOUT_MULTIPLIER");
        double k = m ? atof(m) : 1.0;

        return (long)(ms * (k >= 1.0 ? k : 1.0));
}

int test_wait_for(int (*done)(void *arg), void *arg, long timeout_ms) {
        int64_t deadline = clock_deadline(test_ms(timeout_ms));
        int rc;

        for (;;) {
                rc = done(arg);
                if (rc || clock_left_ms(deadline) == 0)
                        return rc;
                clock_sleep_ms(1);
        }
}

void test_json_keys(const cJSON *obj, char *out, size_t cap) {
        const cJSON *f;
        size_t n = 0;

        out[0] = '\0';
        cJSON_ArrayForEach(f, obj) {
                n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? "," : "",
                                      f->string);
                cr_assert_lt(n, cap, "keys do not fit in %zu bytes", cap);
        }
}

/* ---- test_recording_ops ---------------------------------------------- */

#include <pthread.h>

/* One lock for every struct test_events: it needs no init or destroy. */
static pthread_mutex_t events_lock = PTHREAD_MUTEX_INITIALIZER;

static void record_emit(void *ctx,
                        struct job *job,
                        const char *state,
                        const char *step,
                        const struct err *failure) {
        struct test_events *ev = ctx;
        size_t len;

        pthread_mutex_lock(&events_lock);
        if (ev->n < TEST_EVENTS_MAX) {
                struct test_event *e = &ev->e[ev->n];

                snprintf(e->state, sizeof(e->state), "%s", state);
                snprintf(e->step, sizeof(e->step), "%s", step ? step : "");
                snprintf(e->failure, sizeof(e->failure), "%s",
                         failure ? failure->msg : "");
                e->cls = failure ? failure->cls : ERRC_NONE;
                e->code = failure ? failure->code : 0;
        }
        len = strlen(ev->list);
        snprintf(ev->list + len, sizeof(ev->list) - len, "%s%s%s%s",
                 ev->n ? "," : "", state, step ? ":" : "", step ? step : "");
        ev->n++;
        ev->job = job;
        pthread_mutex_unlock(&events_lock);
}

static void record_hold(void *ctx, int on) {
        struct test_events *ev = ctx;

        atomic_fetch_add(&ev->holds, 1);
        atomic_store(&ev->hold_on, on);
}

const struct job_ops test_recording_ops = {record_emit, record_hold};

int test_events_count(struct test_events *ev, const char *state) {
        int n = 0;

        pthread_mutex_lock(&events_lock);
        for (int i = 0; i < ev->n && i < TEST_EVENTS_MAX; i++)
                n += strcmp(ev->e[i].state, state) == 0;
        pthread_mutex_unlock(&events_lock);
        return n;
}
