/* provision_steps.c - turn one provision request into a running, set-up
 * thopter. See provision_steps.h.
 *
 * DESIGN
 * ------
 *   lookup -> capacity -> volume -> create -> wait -> golden_claude -> git
 *          -> context_files -> launch (+ done marker)
 *
 * Idempotent by construction: every machine carries its requestId in
 * config.metadata.thopter_request_id, and the first step looks it up. A
 * machine that has the done marker means the request already finished (a
 * redelivery): emit completed again, touch nothing. A machine without it is
 * resumed from the wait step. The remote steps are safe to repeat (clone is
 * skipped when the repository is there, files are replaced atomically), and
 * the launch types into tmux and writes the marker in one remote command.
 *
 * One SSH connection per machine per provision: every remote step, and the
 * log line that announces it, runs over it. The Golden Claude copy streams
 * tar from the GC's connection into tar on the thopter's, no temporary file.
 *
 * A failure after the machine exists destroys it (unless THOPTER_KEEP_FAILED)
 * before the request is dead-lettered: no orphans.
 */
#include "provision_steps.h"
#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "request.h"
#include "shell_quote.h"
#include "strfmt.h"
#include "ssh_client.h"
#include "template.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define VOLUME_NAME    "thopter_data"
#define DONE_MARKER    ".thopter-provisioned"
#define SSH_CONNECT_MS 15000L

struct provision_ctx {
        struct job_services *svc;
        unsigned seed;
};

/* Everything one run() knows; freed at its end. */
struct run {
        struct provision_ctx *ctx;
        const struct config *cfg;
        struct job *job;
        struct provision_request *req;
        const struct repo_cred *repo;
        struct fly_machine machine;
        int have_machine;
        struct ssh_conn *ssh;
        char workspace[512];
        char work_branch[160];
        int64_t ready_deadline;
};

/* ------------------------------------------------------------------ */
/* Small helpers */

static const char *loop_name(struct run *r) {
        return kafka_loop_name(r->ctx->svc->loop);
}

static int fail(struct err *err, enum err_class cls, const char *step) {
        err_classify(err, cls, step);
        return -1;
}

static void step_event(struct run *r, const char *step) {
        log_write(LOG_INFO, loop_name(r), r->job->request_id, "step %s", step);
        kafka_loop_emit(r->ctx->svc->loop, r->job, "step", step, NULL);
}

/* A line for THOPTER_REMOTE_LOG, as a shell command prefix. */
static char *remote_log_cmd(struct run *r, const char *msg) {
        char ts[32], line[512];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
        snprintf(line, sizeof(line), "%s [PROVISIONER] %s", ts, msg);
        char *qline = shell_quote(line);
        char *qlog = shell_quote(r->cfg->remote_log);
        char *out = NULL;
        if (qline && qlog)
                out = strfmt(
                    "mkdir -p \"$(dirname %s)\" && printf '%%s\\n' %s >> %s",
                    qlog, qline, qlog);
        free(qline);
        free(qlog);
        return out;
}

static char *host_for(struct run *r, const struct fly_machine *m);
static struct ssh_opts ssh_opts_for(struct run *r, const char *host);

/* The connection dropped (sshd restarted, a network blip): open a new one,
 * retrying until @p deadline. Remote steps are safe to repeat, so the caller
 * then runs the step again. */
static int reconnect(struct run *r, int64_t deadline, struct err *err) {
        char *host = host_for(r, &r->machine);
        int rc = -1;

        ssh_close(r->ssh);
        r->ssh = NULL;
        if (!host)
                return err_set(err, ERR_PERMANENT, 0, "out of memory");
        struct ssh_opts o = ssh_opts_for(r, host);
        for (;;) {
                struct err ce = {0};
                r->ssh = ssh_connect(&o, &ce);
                if (r->ssh) {
                        metrics_inc("thopter_provision_ssh_connections_total",
                                    "", 1);
                        rc = 0;
                        break;
                }
                if (ce.kind == ERR_PERMANENT ||
                    clock_mono_ms() + 1000 >= deadline) {
                        err_clear(err);
                        *err = ce;
                        break;
                }
                if (retry_sleep(1000, &r->job->cancel) == -1) {
                        r->job->abandoned = 1;
                        err_clear(err);
                        err_set(err, ERR_TRANSIENT, 0,
                                "interrupted by shutdown");
                        break;
                }
        }
        free(host);
        return rc;
}

#define SSH_STEP_ATTEMPTS 3
#define SSH_RECONNECT_MS  30000

/* Decides whether a failed remote call is worth another attempt: transient
 * (the transport), attempts left, and a new connection could be made. */
static int
retry_remote(struct run *r, int attempt, const char *step, struct err *err) {
        if (err->kind != ERR_TRANSIENT || attempt + 1 >= SSH_STEP_ATTEMPTS ||
            r->job->abandoned)
                return 0;
        log_write(LOG_WARN, loop_name(r), r->job->request_id,
                  "%s: %s; reconnecting to retry", step, err->msg);
        metrics_inc("thopter_ssh_step_retries_total", "", 1);
        struct err ce = {0};
        long window = r->cfg->ready_timeout_s * 1000L < SSH_RECONNECT_MS
                          ? r->cfg->ready_timeout_s * 1000L
                          : SSH_RECONNECT_MS;
        if (reconnect(r, clock_mono_ms() + window, &ce) == -1) {
                log_write(LOG_WARN, loop_name(r), r->job->request_id,
                          "%s: reconnect failed: %s", step, ce.msg);
                return 0;
        }
        err_clear(err);
        return 1;
}

/* Run @p cmd (after logging @p what to the remote log); non-zero exit is a
 * permanent ssh failure of @p step; a dropped connection is retried on a
 * new one. */
static int remote_step(struct run *r,
                       const char *step,
                       const char *what,
                       const char *cmd,
                       const void *in,
                       size_t in_len,
                       int may_retry,
                       struct err *err) {
        struct ssh_result res = {0};
        char *logc = remote_log_cmd(r, what);
        char *full = logc ? strfmt("%s; %s", logc, cmd) : NULL;
        int rc = -1;

        if (!full) {
                err_set(err, ERR_PERMANENT, 0, "%s: out of memory", step);
                fail(err, ERRC_INTERNAL, step);
                goto out;
        }
        for (int attempt = 0;; attempt++) {
                if (ssh_run(r->ssh, full, in, in_len,
                            r->cfg->ssh_timeout_s * 1000L, &res, err) == 0)
                        break;
                ssh_result_free(&res);
                if (!may_retry || strstr(err->msg, "timed out") ||
                    !retry_remote(r, attempt, step, err)) {
                        fail(err,
                             strstr(err->msg, "timed out") ? ERRC_TIMEOUT
                                                           : ERRC_SSH,
                             step);
                        goto out;
                }
        }
        if (res.exit_status != 0) {
                char tail[160];
                const char *e = res.err_len ? res.errout : res.out;
                size_t len = strlen(e);
                snprintf(tail, sizeof(tail), "%s",
                         len > 150 ? e + len - 150 : e);
                err_set(err, ERR_PERMANENT, res.exit_status,
                        "%s: remote command exited %d: %s", step,
                        res.exit_status, tail);
                fail(err, ERRC_SSH, step);
                goto out;
        }
        rc = 0;
out:
        ssh_result_free(&res);
        free(logc);
        free(full);
        return rc;
}

static char *su(struct run *r, const char *inner) {
        return shell_su_command(r->cfg->remote_user, inner);
}

static char *host_for(struct run *r, const struct fly_machine *m) {
        struct template_var vars[] = {{"id", m->id},
                                      {"app", r->cfg->app_name},
                                      {"private_ip", m->private_ip}};
        return template_render(r->cfg->ssh_host, "{", "}", vars, 3);
}

static struct ssh_opts ssh_opts_for(struct run *r, const char *host) {
        struct ssh_opts o = {
            .host = host,
            .port = r->cfg->ssh_port,
            .user = r->cfg->ssh_user,
            .key_path = r->cfg->ssh_key,
            .known_hosts_path =
                r->cfg->ssh_known_hosts && *r->cfg->ssh_known_hosts
                    ? r->cfg->ssh_known_hosts
                    : NULL,
            .insecure = r->cfg->ssh_insecure,
            .connect_timeout_ms = SSH_CONNECT_MS,
        };
        return o;
}

/* ------------------------------------------------------------------ */
/* fly steps */

struct list_call {
        struct job_services *svc;
        const char *key, *value;
        struct fly_machine *machines;
        size_t n;
};

static int call_list(void *arg, struct err *err) {
        struct list_call *c = arg;
        free(c->machines);
        c->machines = NULL;
        c->n = 0;
        return fly_machine_list(c->svc->fly, c->key, c->value, &c->machines,
                                &c->n, err);
}

/* The machine already made for this request, if any. */
/* One attempt: the machine already made for this request, if any, into
 * r->machine. Every machine carries its requestId in its metadata. */
static int find_by_request_id(struct run *r, int *found, struct err *err) {
        struct list_call c = {r->ctx->svc, "thopter_request_id",
                              r->req->request_id, NULL, 0};
        *found = 0;
        if (call_list(&c, err) == -1)
                return -1;
        for (size_t i = 0; i < c.n && !*found; i++) {
                if (strcmp(c.machines[i].request_id, r->req->request_id) == 0) {
                        r->machine = c.machines[i];
                        *found = 1;
                }
        }
        free(c.machines);
        return 0;
}

struct lookup_call {
        struct run *r;
        int found;
};

static int call_lookup(void *arg, struct err *err) {
        struct lookup_call *l = arg;
        return find_by_request_id(l->r, &l->found, err);
}

/* The machine already made for this request, if any (retried). */
static int lookup(struct run *r, int *found, struct err *err) {
        struct lookup_call l = {r, 0};
        if (job_fly_call(r->ctx->svc, r->job, "lookup", call_lookup, &l, err) ==
            -1)
                return -1;
        *found = l.found;
        r->have_machine = l.found;
        return 0;
}

static int count_started_thopters(struct run *r, int *count, struct err *err) {
        struct list_call c = {r->ctx->svc, NULL, NULL, NULL, 0};
        if (job_fly_call(r->ctx->svc, r->job, "capacity", call_list, &c, err) ==
            -1)
                return -1;
        *count = 0;
        for (size_t i = 0; i < c.n; i++)
                *count += strncmp(c.machines[i].name, "thopter-", 8) == 0 &&
                          strcmp(c.machines[i].state, "started") == 0;
        free(c.machines);
        return 0;
}

/* Contract 5.8: wait, do not fail, while at capacity. The hold pauses the
 * partition; the loop keeps polling. One waiting_capacity event. */
static int capacity(struct run *r, struct err *err) {
        const volatile int *cancel = &r->job->cancel;
        long delay = 1000;
        int announced = 0, started;

        step_event(r, "capacity");
        for (;;) {
                if (count_started_thopters(r, &started, err) == -1)
                        goto fail;
                if (started < r->cfg->max_thopters)
                        break;
                if (!announced) {
                        announced = 1;
                        /* Nothing done yet: a stop may take it back at once. */
                        r->job->interruptible = 1;
                        kafka_loop_hold(r->ctx->svc->loop, 1);
                        log_write(LOG_INFO, loop_name(r), r->job->request_id,
                                  "at capacity (%d started thopters, "
                                  "MAX_THOPTERS %d): waiting",
                                  started, r->cfg->max_thopters);
                        kafka_loop_emit(r->ctx->svc->loop, r->job,
                                        "waiting_capacity", "capacity", NULL);
                }
                if (retry_sleep(delay, cancel) == -1) {
                        r->job->abandoned = 1;
                        err_set(err, ERR_TRANSIENT, 0,
                                "interrupted by shutdown");
                        goto fail;
                }
                delay = delay * 2 > r->cfg->capacity_recheck_max_s * 1000L
                            ? r->cfg->capacity_recheck_max_s * 1000L
                            : delay * 2;
        }
        if (announced) {
                r->job->interruptible = 0;
                kafka_loop_hold(r->ctx->svc->loop, 0);
                log_write(LOG_INFO, loop_name(r), r->job->request_id,
                          "capacity available again");
        }
        return 0;
fail:
        r->job->interruptible = 0;
        if (announced)
                kafka_loop_hold(r->ctx->svc->loop, 0);
        return -1;
}

struct volume_call {
        struct run *r;
        char skip[4][64]; /* volumes that turned out to be claimed */
        int nskip;
        struct fly_volume chosen;
};

static int call_volume(void *arg, struct err *err) {
        struct volume_call *c = arg;
        struct fly_volume *vols = NULL;
        size_t n = 0;
        const struct config *cfg = c->r->cfg;

        if (fly_volume_list(c->r->ctx->svc->fly, &vols, &n, err) == -1)
                return -1;
        for (size_t i = 0; i < n; i++) {
                int skipped = 0;
                for (int s = 0; s < c->nskip; s++)
                        skipped |= strcmp(c->skip[s], vols[i].id) == 0;
                if (!skipped && strcmp(vols[i].name, VOLUME_NAME) == 0 &&
                    strcmp(vols[i].region, cfg->region) == 0 &&
                    !vols[i].attached_machine_id[0]) {
                        c->chosen = vols[i];
                        free(vols);
                        return 0;
                }
        }
        free(vols);
        return fly_volume_create(c->r->ctx->svc->fly, VOLUME_NAME,
                                 cfg->volume_size_gb, cfg->region, &c->chosen,
                                 err);
}

/* fly's preset sizes (fly docs "Machine sizing"). */
static int guest_for(const char *size, const char **kind, int *cpus, int *mem) {
        static const struct {
                const char *name;
                const char *kind;
                int cpus, mem;
        } sizes[] = {
            {"shared-cpu-1x", "shared", 1, 256},
            {"shared-cpu-2x", "shared", 2, 512},
            {"shared-cpu-4x", "shared", 4, 1024},
            {"shared-cpu-8x", "shared", 8, 2048},
            {"performance-1x", "performance", 1, 2048},
            {"performance-2x", "performance", 2, 4096},
            {"performance-4x", "performance", 4, 8192},
            {"performance-8x", "performance", 8, 16384},
            {"performance-16x", "performance", 16, 32768},
        };
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                if (strcmp(sizes[i].name, size) == 0) {
                        *kind = sizes[i].kind;
                        *cpus = sizes[i].cpus;
                        *mem = sizes[i].mem;
                        return 0;
                }
        }
        return -1;
}

struct create_call {
        struct run *r;
        struct fly_create_spec spec;
        int created;
};

/* Create is not idempotent: look the request up before every attempt, so
 * an ambiguous failure (408, 5xx after the machine was made) is not turned
 * into a second machine by the retry. */
static int call_create(void *arg, struct err *err) {
        struct create_call *c = arg;
        int found = 0;

        if (find_by_request_id(c->r, &found, err) == -1)
                return -1;
        if (found)
                return 0;
        if (fly_machine_create(c->r->ctx->svc->fly, &c->spec, &c->r->machine,
                               err) == -1)
                return -1;
        c->created = 1;
        return 0;
}

static void random_suffix(struct provision_ctx *ctx, char *out, size_t n) {
        static const char alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyz";
        for (size_t i = 0; i + 1 < n; i++)
                out[i] = alphabet[rand_r(&ctx->seed) % 36];
        out[n - 1] = '\0';
}

static int create(struct run *r, struct err *err) {
        const struct config *cfg = r->cfg;
        struct volume_call vc = {.r = r};
        struct create_call cc = {.r = r};
        char name[64], suffix[7];
        struct fly_kv env[16], meta[2];
        size_t nenv = 0;
        const char *kind;
        int cpus, mem;

        if (guest_for(cfg->vm_size, &kind, &cpus, &mem) == -1) {
                err_set(err, ERR_PERMANENT, 0,
                        "THOPTER_VM_SIZE \"%s\" is not a fly size name",
                        cfg->vm_size);
                return fail(err, ERRC_FLY_REJECTED, "create");
        }
        random_suffix(r->ctx, suffix, sizeof(suffix));
        snprintf(name, sizeof(name), "thopter-%s-%s", r->req->issue_number,
                 suffix);
#define ENV(k, v)                                                              \
        do {                                                                   \
                if ((v) && *(v))                                               \
                        env[nenv++] = (struct fly_kv){k, v};                   \
        } while (0)
        ENV("APP_NAME", cfg->app_name);
        ENV("METADATA_SERVICE_HOST", cfg->metadata_service_host);
        ENV("WEB_TERMINAL_PORT", cfg->web_terminal_port);
        ENV("HUB_STATUS_PORT", cfg->hub_status_port);
        ENV("GITHUB_REPO_PAT", r->repo->pat);
        ENV("REPOSITORY", r->req->repository);
        ENV("ISSUE_NUMBER", r->req->issue_number);
        ENV("GIT_USER_NAME", r->repo->user_name);
        ENV("GIT_USER_EMAIL", r->repo->user_email);
        ENV("DANGEROUSLY_SKIP_FIREWALL", cfg->dangerously_skip_firewall);
        ENV("ALLOWED_DOMAINS", cfg->allowed_domains);
#undef ENV
        meta[0] = (struct fly_kv){"thopter_request_id", r->req->request_id};
        meta[1] = (struct fly_kv){"thopter_role", "agent"};

        for (int tries = 0;; tries++) {
                step_event(r, "volume");
                memset(&vc.chosen, 0, sizeof(vc.chosen));
                if (job_fly_call(r->ctx->svc, r->job, "volume", call_volume,
                                 &vc, err) == -1)
                        return -1;
                cc.spec = (struct fly_create_spec){.name = name,
                                                   .region = cfg->region,
                                                   .image = cfg->image,
                                                   .cpu_kind = kind,
                                                   .cpus = cpus,
                                                   .memory_mb = mem,
                                                   .env = env,
                                                   .n_env = nenv,
                                                   .metadata = meta,
                                                   .n_metadata = 2,
                                                   .volume_id = vc.chosen.id,
                                                   .mount_path = "/data"};
                step_event(r, "create");
                if (job_fly_call(r->ctx->svc, r->job, "create", call_create,
                                 &cc, err) == 0)
                        break;
                if (r->job->abandoned)
                        return -1;
                /* 412 "already claimed": another create took the volume. */
                if (err->code == 412 && strstr(err->msg, "claimed") &&
                    tries < 3 && vc.nskip < 4) {
                        snprintf(vc.skip[vc.nskip++], sizeof(vc.skip[0]), "%s",
                                 vc.chosen.id);
                        log_write(LOG_INFO, loop_name(r), r->job->request_id,
                                  "volume %s already claimed; picking another",
                                  vc.chosen.id);
                        err_clear(err);
                        continue;
                }
                if (strstr(err->msg, "capacity"))
                        err_classify(err, ERRC_CAPACITY, "create");
                return -1;
        }
        r->have_machine = 1;
        snprintf(r->job->thopter_id, sizeof(r->job->thopter_id), "%s",
                 r->machine.id);
        snprintf(r->job->machine_name, sizeof(r->job->machine_name), "%s",
                 r->machine.name);
        snprintf(r->job->region, sizeof(r->job->region), "%s",
                 r->machine.region);
        log_write(LOG_INFO, loop_name(r), r->job->request_id,
                  "%s machine %s (%s) in %s with volume %s",
                  cc.created ? "created" : "found", r->machine.id,
                  r->machine.name, r->machine.region, vc.chosen.id);
        return 0;
}

struct wait_call {
        struct run *r;
};

static int call_wait(void *arg, struct err *err) {
        struct wait_call *c = arg;
        int64_t left = c->r->ready_deadline - clock_mono_ms();
        int secs = (int)(left / 1000);
        if (left <= 0) {
                /* Not transient: the readiness deadline is spent. */
                return err_set(err, ERR_PERMANENT, 0,
                               "machine %s not started within "
                               "THOPTER_READY_TIMEOUT (%d s)",
                               c->r->machine.id, c->r->cfg->ready_timeout_s);
        }
        return fly_machine_wait(c->r->ctx->svc->fly, c->r->machine.id,
                                "started", NULL,
                                secs < 1    ? 1
                                : secs > 60 ? 60
                                            : secs,
                                err);
}

/* started per the API, then until SSH accepts (the image's init runs first). */
static int wait_ready(struct run *r, struct err *err) {
        struct wait_call wc = {r};
        struct retry_policy pol = r->ctx->svc->policy;
        struct job_services svc = *r->ctx->svc;
        char *host = NULL;
        int rc = -1;

        step_event(r, "wait");
        /* A 408 from /wait only means "not yet": keep waiting until the
         * deadline instead of spending the usual retry budget. */
        pol.max_attempts = 1000;
        svc.policy = pol;
        if (job_fly_call(&svc, r->job, "wait", call_wait, &wc, err) == -1) {
                if (clock_mono_ms() >= r->ready_deadline)
                        err_classify(err, ERRC_TIMEOUT, "wait");
                return -1;
        }
        /* private_ip may only be known now. */
        struct fly_machine fresh;
        struct err e = {0};
        if (fly_machine_get(r->ctx->svc->fly, r->machine.id, &fresh, &e) == 0)
                r->machine = fresh;
        host = host_for(r, &r->machine);
        if (!host) {
                err_set(err, ERR_PERMANENT, 0, "out of memory");
                return fail(err, ERRC_INTERNAL, "wait");
        }
        /* Connect until sshd accepts: this connection is the one every
         * remote step uses, so a provision opens one, not one per step. */
        struct ssh_opts o = ssh_opts_for(r, host);
        for (;;) {
                struct err ce = {0};
                r->ssh = ssh_connect(&o, &ce);
                if (r->ssh)
                        break;
                if (ce.kind == ERR_PERMANENT ||
                    clock_mono_ms() + 500 >= r->ready_deadline) {
                        *err = ce;
                        fail(err,
                             ce.kind == ERR_PERMANENT ? ERRC_SSH : ERRC_TIMEOUT,
                             "wait");
                        goto out;
                }
                if (retry_sleep(500, &r->job->cancel) == -1) {
                        r->job->abandoned = 1;
                        err_set(err, ERR_TRANSIENT, 0,
                                "interrupted by shutdown");
                        goto out;
                }
        }
        metrics_inc("thopter_provision_ssh_connections_total", "", 1);
        rc = 0;
out:
        free(host);
        return rc;
}

/* ------------------------------------------------------------------ */
/* Remote steps */

static int is_done(struct run *r, int *done, struct err *err) {
        char path[600], *q, *cmd;
        struct ssh_result res = {0};
        snprintf(path, sizeof(path), "%s/%s", r->cfg->remote_home, DONE_MARKER);
        q = shell_quote(path);
        cmd = q ? strfmt("cat %s 2>/dev/null", q) : NULL;
        if (!cmd) {
                free(q);
                err_set(err, ERR_PERMANENT, 0, "out of memory");
                return fail(err, ERRC_INTERNAL, "lookup");
        }
        int rc = ssh_run(r->ssh, cmd, NULL, 0, 30000, &res, err);
        free(q);
        free(cmd);
        if (rc == -1)
                return fail(err, ERRC_SSH, "lookup");
        /* The whole line must match: "prov-10" is not "prov-1". */
        size_t idlen = strlen(r->req->request_id);
        *done = res.exit_status == 0 &&
                strncmp(res.out, r->req->request_id, idlen) == 0 &&
                (res.out[idlen] == '\n' || res.out[idlen] == '\0');
        ssh_result_free(&res);
        return 0;
}

static struct fly_machine *
find_gc(struct run *r, struct fly_machine *out, struct err *err) {
        struct list_call c = {r->ctx->svc, NULL, NULL, NULL, 0};
        char want[64];
        struct fly_machine *found = NULL;

        if (job_fly_call(r->ctx->svc, r->job, "golden_claude", call_list, &c,
                         err) == -1)
                return NULL;
        for (int pass = 0; pass < 2 && !found; pass++) {
                snprintf(want, sizeof(want), "gc-%s",
                         pass == 0 ? r->req->gc : "default");
                for (size_t i = 0; i < c.n; i++) {
                        if (strcmp(c.machines[i].name, want) == 0 &&
                            strcmp(c.machines[i].state, "started") == 0) {
                                *out = c.machines[i];
                                found = out;
                                break;
                        }
                }
        }
        free(c.machines);
        return found;
}

/* The original treated this copy as optional: a thopter without Golden
 * Claude credentials still works once someone logs it in. So a missing GC
 * is a note, and a failed copy a warning; neither fails the request. */
static int golden_claude(struct run *r, struct err *err) {
        struct fly_machine gc;
        struct ssh_conn *gcssh = NULL;
        char *host = NULL, *qhome = NULL, *src = NULL, *dst = NULL,
             *inner = NULL, *qdst = NULL;
        char *quser = NULL;
        struct err e = {0};

        step_event(r, "golden_claude");
        if (!find_gc(r, &gc, err)) {
                if (err->kind != ERR_NONE)
                        return -1;
                log_write(LOG_INFO, loop_name(r), r->job->request_id,
                          "no started Golden Claude gc-%s or gc-default: copy "
                          "skipped",
                          r->req->gc);
                return remote_step(r, "golden_claude",
                                   "Golden Claude copy skipped: none running",
                                   "true", NULL, 0, 1, err);
        }
        host = host_for(r, &gc);
        qhome = shell_quote(r->cfg->remote_home);
        if (!host || !qhome)
                goto oom;
        struct ssh_opts o = ssh_opts_for(r, host);
        gcssh = ssh_connect(&o, &e);
        if (!gcssh) {
                log_write(LOG_WARN, loop_name(r), r->job->request_id,
                          "Golden Claude %s unreachable: %s", gc.name, e.msg);
                goto out;
        }
        metrics_inc("thopter_provision_ssh_connections_total", "", 1);
        quser = shell_quote(r->cfg->remote_user);
        src = strfmt("tar czf - -C %s --exclude=./.bashrc "
                     "--exclude=./.claude/projects .",
                     qhome);
        inner =
            quser ? strfmt("mkdir -p %s && tar xzf - -C %s && chown -R %s: %s",
                           qhome, qhome, quser, qhome)
                  : NULL;
        qdst = remote_log_cmd(r, "copying Golden Claude data");
        dst = qdst && inner ? strfmt("%s; %s", qdst, inner) : NULL;
        if (!src || !dst)
                goto oom;
        if (ssh_pipe(gcssh, src, r->ssh, dst, r->cfg->ssh_timeout_s * 1000L,
                     &e) == -1)
                log_write(LOG_WARN, loop_name(r), r->job->request_id,
                          "Golden Claude copy from %s failed (continuing): %s",
                          gc.name, e.msg);
        else
                log_write(LOG_INFO, loop_name(r), r->job->request_id,
                          "Golden Claude data copied from %s", gc.name);
        goto out;
oom:
        err_set(err, ERR_PERMANENT, 0, "out of memory");
        fail(err, ERRC_INTERNAL, "golden_claude");
out:
        ssh_close(gcssh);
        free(host);
        free(qhome);
        free(src);
        free(dst);
        free(qdst);
        free(inner);
        free(quser);
        return err->kind == ERR_NONE ? 0 : -1;
}

/* The token reaches git through stdin and a credential helper that reads an
 * environment variable: never on a command line, never in .git/config. */
static int git_setup(struct run *r, struct err *err) {
        struct template_var v[] = {{"repository", r->req->repository}};
        char *url = template_render(r->cfg->git_url, "{", "}", v, 1);
        char *qname = shell_quote(r->repo->user_name),
             *qmail = shell_quote(r->repo->user_email);
        char *qws = shell_quote(r->workspace),
             *qurl = url ? shell_quote(url) : NULL;
        char *qrepo = shell_quote(r->req->repo_name);
        char *inner = NULL, *cmd = NULL, *in = NULL;
        int rc = -1;

        step_event(r, "git");
        if (!url || !qname || !qmail || !qws || !qurl || !qrepo)
                goto oom;
        size_t n = strlen(qname) + strlen(qmail) + 2 * strlen(qws) +
                   strlen(qurl) + 3 * strlen(qrepo) + 512;
        inner = malloc(n);
        if (!inner)
                goto oom;
        snprintf(
            inner, n,
            "IFS= read -r THOPTER_GIT_TOKEN; export THOPTER_GIT_TOKEN; "
            "git config --global user.name %s && git config --global "
            "user.email %s && "
            "mkdir -p %s && cd %s && "
            "if [ -d %s/.git ]; then echo 'already cloned'; else "
            "rm -rf .thopter-clone && "
            "git -c credential.helper= "
            "-c 'credential.helper=!f() { echo username=x-access-token; echo "
            "\"password=$THOPTER_GIT_TOKEN\"; }; f' "
            "clone --quiet %s .thopter-clone && mv -- .thopter-clone %s; fi",
            qname, qmail, qws, qws, qrepo, qurl, qrepo);
        cmd = su(r, inner);
        if (!cmd)
                goto oom;
        size_t tlen = strlen(r->repo->pat);
        in = malloc(tlen + 2);
        if (!in)
                goto oom;
        memcpy(in, r->repo->pat, tlen);
        in[tlen] = '\n';
        rc = remote_step(r, "git", "git identity and clone", cmd, in, tlen + 1,
                         1, err);
        goto out;
oom:
        err_set(err, ERR_PERMANENT, 0, "out of memory");
        fail(err, ERRC_INTERNAL, "git");
out:
        if (in)
                memset(in, 0, tlen + 1);
        free(in);
        free(url);
        free(qname);
        free(qmail);
        free(qws);
        free(qurl);
        free(qrepo);
        free(inner);
        free(cmd);
        return rc;
}

static void md_append(char **buf, size_t *len, size_t *cap, const char *s) {
        size_t n = strlen(s);
        if (!*buf)
                return;
        if (*len + n + 1 > *cap) {
                *cap = (*len + n + 1) * 2;
                char *g = realloc(*buf, *cap);
                if (!g) {
                        free(*buf);
                        *buf = NULL;
                        return;
                }
                *buf = g;
        }
        memcpy(*buf + *len, s, n + 1);
        *len += n;
}

static char *issue_markdown(const struct provision_request *req) {
        size_t len = 0, cap = 4096;
        char *b = malloc(cap), line[512];
        if (!b)
                return NULL;
        b[0] = '\0';
        md_append(&b, &len, &cap, "# ");
        md_append(&b, &len, &cap, req->issue_title);
        snprintf(line, sizeof(line), "\n\n- Repository: %s\n- Issue: #%s\n",
                 req->repository, req->issue_number);
        md_append(&b, &len, &cap, line);
        if (req->issue_url) {
                md_append(&b, &len, &cap, "- URL: ");
                md_append(&b, &len, &cap, req->issue_url);
                md_append(&b, &len, &cap, "\n");
        }
        if (req->issue_author) {
                md_append(&b, &len, &cap, "- Author: ");
                md_append(&b, &len, &cap, req->issue_author);
                md_append(&b, &len, &cap, "\n");
        }
        md_append(&b, &len, &cap, "\n## Description\n\n");
        md_append(&b, &len, &cap, req->issue_body);
        md_append(&b, &len, &cap, "\n");
        cJSON *comments =
            req->comments_json ? cJSON_Parse(req->comments_json) : NULL;
        const cJSON *c;
        if (cJSON_GetArraySize(comments) > 0)
                md_append(&b, &len, &cap, "\n## Comments\n");
        cJSON_ArrayForEach(c, comments) {
                const cJSON *author =
                    cJSON_GetObjectItemCaseSensitive(c, "author");
                const cJSON *at =
                    cJSON_GetObjectItemCaseSensitive(c, "createdAt");
                const cJSON *body = cJSON_GetObjectItemCaseSensitive(c, "body");
                md_append(&b, &len, &cap, "\n### ");
                md_append(&b, &len, &cap,
                          cJSON_IsString(author) ? author->valuestring
                                                 : "unknown");
                md_append(&b, &len, &cap, " (");
                md_append(&b, &len, &cap,
                          cJSON_IsString(at) ? at->valuestring : "");
                md_append(&b, &len, &cap, ")\n\n");
                md_append(&b, &len, &cap,
                          cJSON_IsString(body) ? body->valuestring : "");
                md_append(&b, &len, &cap, "\n");
        }
        cJSON_Delete(comments);
        return b;
}

static char *issue_json(struct run *r) {
        cJSON *o = cJSON_CreateObject();
        cJSON *gh = cJSON_Parse(r->req->github_json);
        char *out = NULL;
        if (o && gh) {
                cJSON_AddStringToObject(o, "source", "github");
                cJSON_AddStringToObject(o, "repository", r->req->repository);
                cJSON_AddStringToObject(o, "workBranch", r->work_branch);
                cJSON_AddItemToObject(o, "github", gh);
                gh = NULL;
                out = cJSON_Print(o);
        }
        cJSON_Delete(gh);
        cJSON_Delete(o);
        return out;
}

static char *read_file(const char *path) {
        FILE *f = fopen(path, "rb");
        char *buf = NULL;
        long n;
        if (!f)
                return NULL;
        if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && n < 1 << 20 &&
            fseek(f, 0, SEEK_SET) == 0) {
                buf = malloc((size_t)n + 1);
                if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n)
                        buf[n] = '\0';
                else {
                        free(buf);
                        buf = NULL;
                }
        }
        fclose(f);
        return buf;
}

static const char *prompts_dir(const struct config *cfg) {
        struct stat st;
        if (cfg->prompts_dir && *cfg->prompts_dir)
                return cfg->prompts_dir;
        if (stat(THOPTER_DATA_DIR "/prompts", &st) == 0)
                return THOPTER_DATA_DIR "/prompts";
        return THOPTER_SOURCE_DATA_DIR "/prompts";
}

static char *prompt_markdown(struct run *r, struct err *err) {
        char path[1024];
        const char *dir = prompts_dir(r->cfg);
        snprintf(path, sizeof(path), "%s/%s.md", dir, r->req->prompt);
        char *tpl = read_file(path);
        if (!tpl) {
                log_write(LOG_WARN, loop_name(r), r->job->request_id,
                          "prompt %s not found; using default", path);
                snprintf(path, sizeof(path), "%s/default.md", dir);
                tpl = read_file(path);
        }
        if (!tpl) {
                err_set(err, ERR_PERMANENT, 0,
                        "no prompt template %s (THOPTER_PROMPTS_DIR)", path);
                fail(err, ERRC_INTERNAL, "context_files");
                return NULL;
        }
        struct template_var v[] = {{"repository", r->req->repository},
                                   {"workBranch", r->work_branch},
                                   {"repoName", r->req->repo_name},
                                   {"issueNumber", r->req->issue_number},
                                   {"machineId", r->machine.id}};
        char *out = template_render(tpl, "{{", "}}", v, 5);
        free(tpl);
        return out;
}

static int context_files(struct run *r, struct err *err) {
        struct {
                const char *name;
                char *data;
        } files[3] = {{"issue.md", issue_markdown(r->req)},
                      {"prompt.md", NULL},
                      {"issue.json", issue_json(r)}};
        char path[700], *qws = shell_quote(r->workspace), *inner = NULL,
                        *cmd = NULL;
        int rc = -1;

        step_event(r, "context_files");
        files[1].data = prompt_markdown(r, err);
        if (!files[1].data)
                goto out;
        if (!files[0].data || !files[2].data || !qws)
                goto oom;
        for (int i = 0; i < 3; i++) {
                snprintf(path, sizeof(path), "%s/%s", r->workspace,
                         files[i].name);
                for (int attempt = 0;; attempt++) {
                        if (ssh_upload(r->ssh, path, files[i].data,
                                       strlen(files[i].data), 0644,
                                       r->cfg->ssh_timeout_s * 1000L, err) == 0)
                                break;
                        if (!retry_remote(r, attempt, "context_files", err)) {
                                fail(err, ERRC_SSH, "context_files");
                                goto out;
                        }
                }
        }
        char *quser = shell_quote(r->cfg->remote_user);
        inner = quser
                    ? strfmt("chown %s: %s/issue.md %s/prompt.md %s/issue.json",
                             quser, qws, qws, qws)
                    : NULL;
        free(quser);
        if (!inner)
                goto oom;
        rc = remote_step(r, "context_files", "context files written", inner,
                         NULL, 0, 1, err);
        goto out;
oom:
        err_set(err, ERR_PERMANENT, 0, "out of memory");
        fail(err, ERRC_INTERNAL, "context_files");
out:
        for (int i = 0; i < 3; i++)
                free(files[i].data);
        free(qws);
        free(inner);
        free(cmd);
        return rc;
}

/* Types the agent command into the tmux session and writes the done marker
 * in the same remote command, so a redelivery never types it twice. */
static int launch(struct run *r, struct err *err) {
        char marker[600];
        char *qws = shell_quote(r->workspace),
             *qrepo = shell_quote(r->req->repo_name);
        char *qlog = shell_quote(r->cfg->remote_log);
        char *typed = NULL, *qtyped = NULL,
             *qsess = shell_quote(r->cfg->tmux_session), *inner = NULL;
        char *qmarker = NULL, *qid = shell_quote(r->req->request_id),
             *cmd = NULL, *full = NULL;
        int rc = -1;

        step_event(r, "launch");
        snprintf(marker, sizeof(marker), "%s/%s", r->cfg->remote_home,
                 DONE_MARKER);
        qmarker = shell_quote(marker);
        if (!qws || !qrepo || !qlog || !qsess || !qmarker || !qid)
                goto oom;
        size_t n = 2 * strlen(qws) + strlen(qrepo) + strlen(qlog) +
                   strlen(r->cfg->agent_command) + 256;
        typed = malloc(n);
        if (!typed)
                goto oom;
        snprintf(typed, n,
                 "(cd %s/%s && if [ -f ../post-checkout.sh ]; then chmod +x "
                 "../post-checkout.sh && "
                 "echo 'Running post-checkout.sh...' && ../post-checkout.sh "
                 "2>&1 | tee -a %s || true; fi); "
                 "cd %s && %s",
                 qws, qrepo, qlog, qws, r->cfg->agent_command);
        qtyped = shell_quote(typed);
        if (!qtyped)
                goto oom;
        n = strlen(qsess) * 2 + strlen(qtyped) + 64;
        inner = malloc(n);
        if (!inner)
                goto oom;
        snprintf(inner, n,
                 "tmux send-keys -t %s -l %s && tmux send-keys -t %s Enter",
                 qsess, qtyped, qsess);
        cmd = su(r, inner);
        if (!cmd)
                goto oom;
        n = strlen(cmd) + strlen(qid) + strlen(qmarker) + 64;
        full = malloc(n);
        if (!full)
                goto oom;
        snprintf(full, n, "%s && printf '%%s\\n' %s > %s", cmd, qid, qmarker);
        /* Not blindly retried: if the connection dropped after the keys
         * were typed, typing them again would start a second agent. The
         * marker written in the same command tells which happened. */
        for (int attempt = 0;; attempt++) {
                rc = remote_step(r, "launch", "launching the agent in tmux",
                                 full, NULL, 0, 0, err);
                if (rc == 0 || err->kind != ERR_TRANSIENT ||
                    strstr(err->msg, "timed out") ||
                    !retry_remote(r, attempt, "launch", err))
                        break;
                int done = 0;
                struct err e = {0};
                if (is_done(r, &done, &e) == -1) {
                        *err = e;
                        break;
                }
                if (done) {
                        rc = 0;
                        break;
                }
        }
        goto out;
oom:
        err_set(err, ERR_PERMANENT, 0, "out of memory");
        fail(err, ERRC_INTERNAL, "launch");
out:
        free(qws);
        free(qrepo);
        free(qlog);
        free(typed);
        free(qtyped);
        free(qsess);
        free(inner);
        free(qmarker);
        free(qid);
        free(cmd);
        free(full);
        return rc;
}

/* No orphans: a failed provision takes its machine with it. */
static void cleanup_machine(struct run *r) {
        struct err e = {0};
        if (!r->have_machine || r->job->abandoned)
                return;
        if (r->cfg->keep_failed) {
                log_write(LOG_WARN, loop_name(r), r->job->request_id,
                          "keeping failed machine %s (THOPTER_KEEP_FAILED=1)",
                          r->machine.id);
                return;
        }
        for (int i = 0; i < 5; i++) {
                err_clear(&e);
                if (fly_machine_delete(r->ctx->svc->fly, r->machine.id, 1,
                                       &e) == 0 ||
                    e.code == 404) {
                        log_write(LOG_INFO, loop_name(r), r->job->request_id,
                                  "destroyed failed machine %s", r->machine.id);
                        return;
                }
                if (e.kind != ERR_TRANSIENT)
                        break;
                clock_sleep_ms(500L << i);
        }
        log_write(
            LOG_ERROR, loop_name(r), r->job->request_id,
            "could not destroy failed machine %s: %s (destroy it by hand)",
            r->machine.id, e.msg);
}

/* ------------------------------------------------------------------ */
/* The handler */

static int prepare(struct job *job, void *opaque, struct err *err) {
        struct provision_request *req = calloc(1, sizeof(*req));
        (void)opaque;
        if (!req) {
                err_set(err, ERR_TRANSIENT, 0, "out of memory");
                return fail(err, ERRC_INTERNAL, "parse");
        }
        if (request_parse_provision(job->value, job->value_len, req, err) ==
            -1) {
                job_peek_request_id(job, job->request_id,
                                    sizeof(job->request_id));
                request_provision_free(req);
                free(req);
                return -1;
        }
        snprintf(job->request_id, sizeof(job->request_id), "%s",
                 req->request_id);
        snprintf(job->exclusive_key, sizeof(job->exclusive_key), "%s",
                 req->request_id);
        job->request = req;
        return 0;
}

static void release(struct job *job, void *opaque) {
        (void)opaque;
        request_provision_free(job->request);
        free(job->request);
        job->request = NULL;
}

static void count(const char *outcome) {
        char labels[64];
        snprintf(labels, sizeof(labels), "kind=\"provision\",outcome=\"%s\"",
                 outcome);
        metrics_inc("thopter_requests_total", labels, 1);
}

static int run(struct job *job, void *opaque, struct err *err) {
        struct provision_ctx *ctx = opaque;
        struct run r = {
            .ctx = ctx, .cfg = ctx->svc->cfg, .job = job, .req = job->request};
        int found = 0, done = 0, rc = -1;

        r.ready_deadline = clock_mono_ms() + r.cfg->ready_timeout_s * 1000L;
        snprintf(r.workspace, sizeof(r.workspace), "%s/workspace",
                 r.cfg->remote_home);
        log_write(LOG_INFO, loop_name(&r), job->request_id,
                  "provisioning %s#%s", r.req->repository, r.req->issue_number);
        r.repo = config_repo(r.cfg, r.req->repository);
        if (!r.repo) {
                err_set(err, ERR_PERMANENT, 0,
                        "no credentials for repository %s in "
                        "GITHUB_INTEGRATION_JSON",
                        r.req->repository);
                fail(err, ERRC_UNKNOWN_REPOSITORY, "validate");
                count("unknown_repository");
                return -1;
        }
        if (lookup(&r, &found, err) == -1)
                goto out;
        if (found) {
                snprintf(job->thopter_id, sizeof(job->thopter_id), "%s",
                         r.machine.id);
                snprintf(job->machine_name, sizeof(job->machine_name), "%s",
                         r.machine.name);
                snprintf(job->region, sizeof(job->region), "%s",
                         r.machine.region);
                log_write(LOG_INFO, loop_name(&r), job->request_id,
                          "machine %s already exists for this request",
                          r.machine.id);
        } else {
                if (capacity(&r, err) == -1 || create(&r, err) == -1)
                        goto out;
        }
        snprintf(r.work_branch, sizeof(r.work_branch), "thopter/%s--%s",
                 r.req->issue_number, r.machine.id);
        if (wait_ready(&r, err) == -1)
                goto out;
        if (found) {
                if (is_done(&r, &done, err) == -1)
                        goto out;
                if (done) {
                        log_write(LOG_INFO, loop_name(&r), job->request_id,
                                  "already provisioned (redelivered request): "
                                  "nothing to do");
                        count("already_done");
                        rc = 0;
                        goto out;
                }
        }
        if (golden_claude(&r, err) == -1 || git_setup(&r, err) == -1 ||
            context_files(&r, err) == -1 || launch(&r, err) == -1)
                goto out;
        log_write(LOG_INFO, loop_name(&r), job->request_id,
                  "provisioned %s (%s) for %s#%s", r.machine.id, r.machine.name,
                  r.req->repository, r.req->issue_number);
        count("provisioned");
        rc = 0;
out:
        ssh_close(r.ssh);
        if (rc == -1 && !job->abandoned) {
                count("failed");
                cleanup_machine(&r);
        }
        return rc;
}

struct provision_ctx *provision_ctx_new(struct job_services *svc,
                                        struct err *err) {
        struct provision_ctx *ctx = calloc(1, sizeof(*ctx));
        if (!ctx) {
                err_set(err, ERR_PERMANENT, 0, "provision: out of memory");
                return NULL;
        }
        ctx->svc = svc;
        ctx->seed = (unsigned)clock_wall_ms() ^ (unsigned)getpid();
        metrics_describe("thopter_provision_ssh_connections_total",
                         METRICS_COUNTER,
                         "SSH connections opened by provisioning");
        metrics_describe("thopter_ssh_step_retries_total", METRICS_COUNTER,
                         "Remote steps run again on a new connection after the "
                         "old one dropped");
        return ctx;
}

void provision_ctx_destroy(struct provision_ctx *ctx) {
        free(ctx);
}

struct job_handler provision_steps_handler(struct provision_ctx *ctx) {
        struct job_handler h = {
            .prepare = prepare, .run = run, .release = release, .opaque = ctx};
        return h;
}
