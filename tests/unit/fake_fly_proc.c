/* fake_fly_proc.c - see fake_fly_proc.h. */
#include "fake_fly_proc.h"
#include "test_helpers.h"

#include <curl/curl.h>
#include <criterion/criterion.h>

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

void fake_fly_start(struct fake_fly *ff, const char *config_json) {
        int in[2], out[2];
        posix_spawn_file_actions_t fa;
        char *argv[10];
        int argc = 0;
        char line[128];
        FILE *fp;

        memset(ff, 0, sizeof(*ff));
        cr_assert(pipe(in) == 0 && pipe(out) == 0, "pipe: %s", strerror(errno));
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        posix_spawn_file_actions_addclose(&fa, in[1]);
        posix_spawn_file_actions_addclose(&fa, out[0]);
        argv[argc++] = PYTHON3;
        argv[argc++] = FAKES_DIR "/fake_fly.py";
        argv[argc++] = "--port";
        argv[argc++] = "0";
        argv[argc++] = "--stdin-eof";
        argv[argc++] = "--app";
        argv[argc++] = FAKE_FLY_APP;
        if (config_json) {
                argv[argc++] = "--config";
                argv[argc++] = (char *)config_json;
        }
        argv[argc] = NULL;
        cr_assert(setenv("FAKE_FLY_TOKEN", FAKE_FLY_TOKEN, 1) == 0);
        int rc = posix_spawn(&ff->pid, PYTHON3, &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        cr_assert_eq(rc, 0, "spawn %s: %s", PYTHON3, strerror(rc));
        close(in[0]);
        close(out[1]);
        ff->stdin_fd = in[1];
        fp = fdopen(out[0], "r");
        cr_assert(fp);
        cr_assert(fgets(line, sizeof(line), fp), "the fake said nothing");
        fclose(fp);
        cr_assert(sscanf(line, "PORT=%d", &ff->port) == 1, "fake: %s", line);
        snprintf(ff->base_url, sizeof(ff->base_url), "http://127.0.0.1:%d",
                 ff->port);
}

void fake_fly_stop(struct fake_fly *ff) {
        int status;

        if (ff->pid <= 0)
                return;
        close(ff->stdin_fd);
        if (waitpid(ff->pid, &status, 0) != ff->pid)
                kill(ff->pid, SIGKILL);
        ff->pid = 0;
}

static size_t collect(char *data, size_t size, size_t n, void *arg) {
        struct {
                char *buf;
                size_t len;
        } *b = arg;
        char *grown = realloc(b->buf, b->len + size * n + 1);
        if (!grown)
                return 0;
        b->buf = grown;
        memcpy(b->buf + b->len, data, size * n);
        b->len += size * n;
        b->buf[b->len] = '\0';
        return size * n;
}

cJSON *fake_fly_control(struct fake_fly *ff,
                        const char *method,
                        const char *path,
                        const char *body) {
        struct {
                char *buf;
                size_t len;
        } b = {NULL, 0};
        char url[512];
        long status = 0;
        struct curl_slist *hs = NULL;
        CURL *c = curl_easy_init();

        cr_assert(c);
        snprintf(url, sizeof(url), "%s%s", ff->base_url, path);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, test_ms(10000));
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        if (body) {
                hs = curl_slist_append(hs, "Content-Type: application/json");
                curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        }
        CURLcode rc = curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_slist_free_all(hs);
        curl_easy_cleanup(c);
        cr_assert_eq(rc, CURLE_OK, "%s %s: %s", method, path,
                     curl_easy_strerror(rc));
        cr_assert_eq(status, 200, "%s %s: HTTP %ld: %s", method, path, status,
                     b.buf ? b.buf : "");
        cJSON *root = cJSON_Parse(b.buf ? b.buf : "");
        cr_assert(root, "%s %s: not JSON", method, path);
        free(b.buf);
        return root;
}

void fake_fly_post(struct fake_fly *ff, const char *path, const char *body) {
        cJSON_Delete(fake_fly_control(ff, "POST", path, body ? body : "{}"));
}

cJSON *fake_fly_calls(struct fake_fly *ff) {
        return fake_fly_control(ff, "GET", "/_fake/calls", NULL);
}

void fake_fly_call_list(const cJSON *calls, char *out, size_t cap) {
        const cJSON *c;
        size_t n = 0;

        out[0] = '\0';
        cJSON_ArrayForEach(c, calls) {
                const char *m =
                    cJSON_GetStringValue(cJSON_GetObjectItem(c, "method"));
                const char *r =
                    cJSON_GetStringValue(cJSON_GetObjectItem(c, "route"));
                n += (size_t)snprintf(out + n, cap - n, "%s%s %s", n ? "," : "",
                                      m ? m : "?", r ? r : "?");
                cr_assert_lt(n, cap, "calls do not fit in %zu bytes", cap);
        }
}

#include "fly_client.h"

struct fly_client *fake_fly_client(struct fake_fly *ff) {
        struct err err = {0};
        struct fly_client_opts o = {
            .base_url = ff->base_url,
            .app = FAKE_FLY_APP,
            .token = FAKE_FLY_TOKEN,
            .timeout_ms = test_ms(5000),
        };
        struct fly_client *fly = fly_client_new(&o, &err);

        cr_assert(fly, "fly_client_new: %s", err.msg);
        return fly;
}

void fake_fly_seed_machine(struct fake_fly *ff,
                           const char *id,
                           const char *name,
                           const char *state) {
        char body[256];

        snprintf(body, sizeof(body),
                 "{\"id\":\"%s\",\"name\":\"%s\",\"state\":\"%s\"}", id, name,
                 state);
        fake_fly_post(ff, "/_fake/machines", body);
}

void fake_fly_expect_calls(struct fake_fly *ff, const char *want) {
        char got[1024];
        cJSON *calls = fake_fly_calls(ff);

        fake_fly_call_list(calls, got, sizeof(got));
        cr_expect_str_eq(got, want);
        cJSON_Delete(calls);
}
