/* provision_fly.c - the fly steps of a provision: lookup, capacity, volume
 * and create, wait for started, and the clean-up of a failed provision.
 * See provision_int.h.
 *
 * DESIGN
 * ------
 * Create is not idempotent, so every machine carries its requestId in
 * config.metadata.thopter_request_id and is looked up before the flow and
 * before every create attempt: an ambiguous failure (a timeout or a 5xx
 * after fly made the machine) never turns into a second machine.
 */
#include "provision_int.h"
#include "clock.h"
#include "fly_json.h"
#include "metrics.h"
#include "provision_claims.h"
#include "strfmt.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Lookup and capacity */

/* One attempt: what fly knows of this request's machines. A live one goes
 * into r->machine (FOUND_LIVE); else a destroyed one that carries the
 * consumer's "provisioned" mark for this request means the request was done
 * and its thopter destroyed since (FOUND_DONE). Destroyed machines without
 * the mark (a failed attempt's clean-up) do not count. */
static int find_by_request_id(struct provision_run *r,
                              enum provision_found *found,
                              struct err *err) {
        const char *id = r->req->request_id;
        struct fly_list_call c = {
            r->ctx->deps.fly, {"thopter_request_id", id, true}, NULL, 0};

        *found = FOUND_NONE;
        if (fly_list_call_run(&c, err) == -1)
                return -1;
        for (size_t i = 0; i < c.n; i++) {
                struct fly_machine *m = &c.machines[i];
                if (strcmp(m->request_id, id) != 0)
                        continue;
                if (fly_json_machine_state_active(m->state)) {
                        r->machine = *m;
                        *found = FOUND_LIVE;
                        break;
                }
                if (strcmp(m->provisioned, id) == 0 && *found == FOUND_NONE) {
                        r->machine = *m;
                        *found = FOUND_DONE;
                }
        }
        free(c.machines);
        return 0;
}

struct lookup_call {
        struct provision_run *r;
        enum provision_found found;
};

static int call_lookup(void *arg, struct err *err) {
        struct lookup_call *l = arg;
        return find_by_request_id(l->r, &l->found, err);
}

int provision_lookup(struct provision_run *r,
                     enum provision_found *found,
                     struct err *err) {
        struct lookup_call l = {r, FOUND_NONE};
        if (fly_retry_call(r->ctx->deps.retry, r->job, "lookup", "lookup",
                           call_lookup, &l, err) == -1)
                return -1;
        *found = l.found;
        r->have_machine = l.found == FOUND_LIVE;
        return 0;
}

/* A thopter that takes capacity: started, or on its way there (a create in
 * flight, maybe another consumer's, that fly already lists). */
static int takes_capacity(const struct fly_machine *m) {
        return destroy_name_is_thopter(m->name) &&
               (strcmp(m->state, "started") == 0 ||
                strcmp(m->state, "starting") == 0 ||
                strcmp(m->state, "created") == 0);
}

/* One look at capacity: fly's thopters that take it, plus this consumer's
 * provisions past this step whose machines fly does not list yet. Takes a
 * slot (provision_claims.h) when one is free: *taken 1. */
static int
try_slot(struct provision_run *r, int *taken, int *in_use, struct err *err) {
        struct fly_list_call c = {r->ctx->deps.fly, {0}, NULL, 0};
        const char **busy = NULL;
        size_t n = 0;

        if (fly_retry_call(r->ctx->deps.retry, r->job, "capacity", "list",
                           fly_list_call_run, &c, err) == -1)
                return -1;
        busy = calloc(c.n + 1, sizeof(*busy));
        if (!busy) {
                free(c.machines);
                err_oom(err, "capacity");
                return err_classify(err, ERRC_INTERNAL, "capacity");
        }
        for (size_t i = 0; i < c.n; i++)
                if (takes_capacity(&c.machines[i]))
                        busy[n++] = c.machines[i].id;
        *taken = provision_claims_slot(r->ctx->claims, r->req->request_id, busy,
                                       n, r->cfg->max_thopters, in_use);
        /* The same list names the Golden Claude: no list of its own. */
        provision_gc_pick(r, c.machines, c.n);
        free(busy);
        free(c.machines);
        if (*taken == -1) {
                err_oom(err, "capacity");
                return err_classify(err, ERRC_INTERNAL, "capacity");
        }
        return 0;
}

/* Contract 5.8: wait, do not fail, while at capacity. The hold pauses the
 * partition; the loop keeps polling. One waiting_capacity event. A slot
 * taken here is this request's until its run ends (provision.c), so the
 * provisions in flight beside it count it before fly lists its machine. */
int provision_capacity(struct provision_run *r, struct err *err) {
        long delay = 1000, max = r->cfg->capacity_recheck_max_s * 1000L;
        int announced = 0, taken = 0, in_use = 0, rc = -1;

        job_step(r->job, "capacity");
        for (;;) {
                if (try_slot(r, &taken, &in_use, err) == -1)
                        goto out;
                if (taken)
                        break;
                if (!announced) {
                        announced = 1;
                        /* Nothing done yet: a stop may take it back at once. */
                        job_set_interruptible(r->job, 1);
                        job_hold_intake(r->job, 1);
                        job_log(r->job, LOG_INFO,
                                "at capacity (%d thopters started or "
                                "starting, MAX_THOPTERS %d): waiting",
                                in_use, r->cfg->max_thopters);
                        job_emit(r->job, "waiting_capacity", "capacity", NULL);
                }
                if (job_sleep(r->job, delay, err) == -1)
                        goto out;
                delay = delay * 2 > max ? max : delay * 2;
        }
        if (announced)
                job_log(r->job, LOG_INFO, "capacity available again");
        rc = 0;
out:
        job_set_interruptible(r->job, 0);
        if (announced)
                job_hold_intake(r->job, 0);
        return rc;
}

/* ------------------------------------------------------------------ */
/* Volume and create */

struct volume_call {
        struct provision_run *r;
        const char *region;
        char skip[4][64]; /* volumes that turned out to be claimed */
        int nskip;
        struct fly_volume chosen;
};

static int call_volume(void *arg, struct err *err) {
        struct volume_call *c = arg;
        struct fly_volume *vols = NULL;
        size_t n = 0;
        struct fly_client *fly = c->r->ctx->deps.fly;
        const char *owner = c->r->req->request_id;

        if (fly_volume_list(fly, &vols, &n, err) == -1)
                return -1;
        for (size_t i = 0; i < n; i++) {
                int skipped = 0;
                for (int s = 0; s < c->nskip; s++)
                        skipped |= strcmp(c->skip[s], vols[i].id) == 0;
                if (skipped ||
                    strcmp(vols[i].name, PROVISION_VOLUME_NAME) != 0 ||
                    strcmp(vols[i].region, c->region) != 0 ||
                    vols[i].attached_machine_id[0])
                        continue;
                /* Free in fly's list; another provision in flight here may
                 * have picked it from the same list. */
                int mine = provision_claims_volume(c->r->ctx->claims,
                                                   vols[i].id, owner);
                if (mine == -1) {
                        free(vols);
                        err_oom(err, "volume");
                        return -1;
                }
                if (mine) {
                        c->chosen = vols[i];
                        free(vols);
                        return 0;
                }
        }
        free(vols);
        /* A new volume is this request's alone: no claim needed. */
        return fly_volume_create(fly, PROVISION_VOLUME_NAME,
                                 c->r->cfg->volume_size_gb, c->region,
                                 &c->chosen, err);
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
        struct provision_run *r;
        struct fly_create_spec spec;
        int created;
};

/* Look the request up before every attempt after the first, so an ambiguous
 * failure (408, 5xx after the machine was made) is not turned into a second
 * machine. The first attempt follows provision_lookup(), which found none,
 * with nothing of ours in between that could have made one. */
static int call_create(void *arg, struct err *err) {
        struct create_call *c = arg;
        enum provision_found found;

        if (c->r->create_attempts > 0) {
                if (find_by_request_id(c->r, &found, err) == -1)
                        return -1;
                if (found == FOUND_LIVE)
                        return 0;
        }
        c->r->create_attempts++;
        if (fly_machine_create(c->r->ctx->deps.fly, &c->spec, &c->r->machine,
                               err) == -1)
                return -1;
        c->created = 1;
        return 0;
}

/* The create's budget is spent on ambiguous answers (a timeout or a 5xx
 * after the POST may have made the machine): one more lookup decides before
 * giving up, so a machine fly did make is used, not orphaned. */
static int made_after_all(struct provision_run *r, struct err *err) {
        enum provision_found found = FOUND_NONE;
        struct err e = {0};

        if (err->kind != ERR_TRANSIENT || err->cause == ERR_CAUSE_CANCELLED ||
            find_by_request_id(r, &found, &e) == -1 || found != FOUND_LIVE)
                return 0;
        job_log(r->job, LOG_INFO,
                "create gave up (%s) but machine %s exists: using it", err->msg,
                r->machine.id);
        err_clear(err);
        return 1;
}

static void random_suffix(struct provision_ctx *ctx, char *out, size_t n) {
        static const char alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyz";
        /* Provisions in flight share the seed (MAX_CONCURRENT_PROVISIONS). */
        pthread_mutex_lock(&ctx->seed_lock);
        for (size_t i = 0; i + 1 < n; i++)
                out[i] = alphabet[rand_r(&ctx->seed) % 36];
        pthread_mutex_unlock(&ctx->seed_lock);
        out[n - 1] = '\0';
}

#define ENV_MAX   16
#define FILES_MAX 4

/* Add @p k=@p v to the machine's environment when @p v is set. */
static void
env_add(struct fly_kv *env, size_t *n, const char *k, const char *v) {
        if (v && *v && *n < ENV_MAX)
                env[(*n)++] = (struct fly_kv){k, v};
}

/* What a create sends besides the volume and the region; freed by
 * machine_spec_free(). */
struct machine_spec {
        struct fly_create_spec spec;
        char name[64];
        struct fly_kv env[ENV_MAX], meta[2];
        struct fly_file files[FILES_MAX];
        char *host_key_pem, *authorized_keys;
        unsigned char *local[2]; /* THOPTER_ENV_FILE, _POST_CHECKOUT_FILE */
        size_t local_len[2];
};

static void machine_spec_free(struct machine_spec *m) {
        secret_free(m->host_key_pem);
        free(m->authorized_keys);
        for (int i = 0; i < 2; i++) {
                /* .env.thopters holds the developers' secrets. */
                if (m->local[i])
                        secret_wipe(m->local[i], m->local_len[i]);
                free(m->local[i]);
        }
}

/* config.files: the machine's SSH host key and the consumer's public key
 * (contract 5.13), and the local files the original's --file-local put in
 * /tmp for its init to move into the workspace. */
static int
add_files(struct provision_run *r, struct machine_spec *m, struct err *err) {
        static const char *const local_setting[2] = {
            "THOPTER_ENV_FILE", "THOPTER_POST_CHECKOUT_FILE"};
        static const char *const local_guest[2] = {"/tmp/.env.thopters",
                                                   "/tmp/post-checkout.sh"};
        static const unsigned local_mode[2] = {0600, 0755};
        const char *local_path[2] = {r->cfg->env_file,
                                     r->cfg->post_checkout_file};
        size_t n = 0;

        m->host_key_pem =
            ssh_keys_private_openssh(&r->host_key, r->req->request_id);
        m->authorized_keys = strfmt("%s\n", r->ctx->authorized_key);
        if (!m->host_key_pem || !m->authorized_keys)
                return err_oom(err, "create");
        /* Secrets are 0600 from the moment fly writes them (fly-go's
         * File.Mode): no user of the machine may read them before the
         * start hook runs, and .env.thopters keeps its mode when the init
         * moves it into the workspace. */
        m->files[n++] =
            (struct fly_file){PROVISION_HOST_KEY_PATH, m->host_key_pem,
                              strlen(m->host_key_pem), 0600};
        m->files[n++] = (struct fly_file){PROVISION_AUTHORIZED_KEYS_PATH,
                                          m->authorized_keys,
                                          strlen(m->authorized_keys), 0644};
        for (int i = 0; i < 2; i++) {
                struct err fe = {0};
                if (!local_path[i] || !*local_path[i])
                        continue;
                /* Read per provision: an operator may replace the file. */
                m->local[i] =
                    ssh_keys_read_file(local_path[i], &m->local_len[i], &fe);
                if (!m->local[i]) {
                        err_set(err, ERR_PERMANENT, fe.code, "%s: %s",
                                local_setting[i], fe.msg);
                        return err_classify(err, ERRC_INTERNAL, "create");
                }
                m->files[n++] =
                    (struct fly_file){local_guest[i], m->local[i],
                                      m->local_len[i], local_mode[i]};
        }
        m->spec.files = m->files;
        m->spec.n_files = n;
        return 0;
}

static int machine_spec_init(struct provision_run *r,
                             struct machine_spec *m,
                             struct err *err) {
        const struct config *cfg = r->cfg;
        char suffix[7];
        size_t nenv = 0;
        const char *kind;
        int cpus, mem;

        if (guest_for(cfg->vm_size, &kind, &cpus, &mem) == -1) {
                err_set(err, ERR_PERMANENT, 0,
                        "THOPTER_VM_SIZE \"%s\" is not a fly size name",
                        cfg->vm_size);
                return err_classify(err, ERRC_FLY_REJECTED, "create");
        }
        random_suffix(r->ctx, suffix, sizeof(suffix));
        snprintf(m->name, sizeof(m->name), THOPTER_NAME_PREFIX "%s-%s",
                 r->req->issue_number, suffix);
        env_add(m->env, &nenv, "APP_NAME", cfg->app_name);
        env_add(m->env, &nenv, "METADATA_SERVICE_HOST",
                cfg->metadata_service_host);
        env_add(m->env, &nenv, "WEB_TERMINAL_PORT", cfg->web_terminal_port);
        env_add(m->env, &nenv, "HUB_STATUS_PORT", cfg->hub_status_port);
        /* The agent's pushes find the token here (its git credential
         * helper reads it), never in a file or a remote URL. */
        env_add(m->env, &nenv, "GITHUB_REPO_PAT", r->repo->pat);
        env_add(m->env, &nenv, "REPOSITORY", r->req->repository);
        env_add(m->env, &nenv, "ISSUE_NUMBER", r->req->issue_number);
        env_add(m->env, &nenv, "GIT_USER_NAME", r->repo->user_name);
        env_add(m->env, &nenv, "GIT_USER_EMAIL", r->repo->user_email);
        env_add(m->env, &nenv, "DANGEROUSLY_SKIP_FIREWALL",
                cfg->dangerously_skip_firewall);
        env_add(m->env, &nenv, "ALLOWED_DOMAINS", cfg->allowed_domains);
        m->meta[0] = (struct fly_kv){"thopter_request_id", r->req->request_id};
        m->meta[1] = (struct fly_kv){"thopter_role", "agent"};
        m->spec = (struct fly_create_spec){
            .name = m->name,
            .image = r->req->image[0] ? r->req->image : cfg->image,
            .cpu_kind = kind,
            .cpus = cpus,
            .memory_mb = mem,
            .env = m->env,
            .n_env = nenv,
            .metadata = m->meta,
            .n_metadata = 2,
            .mount_path = "/data",
        };
        return add_files(r, m, err);
}

/* Volume and create in @p region: a volume claimed by another create in
 * between is skipped and another one taken. */
static int create_in(struct provision_run *r,
                     struct machine_spec *m,
                     const char *region,
                     struct err *err) {
        struct volume_call vc = {.r = r, .region = region};
        struct create_call cc = {.r = r};

        for (int tries = 0;; tries++) {
                job_step(r->job, "volume");
                memset(&vc.chosen, 0, sizeof(vc.chosen));
                if (fly_retry_call(r->ctx->deps.retry, r->job, "volume",
                                   "volume", call_volume, &vc, err) == -1)
                        return -1;
                cc.spec = m->spec;
                cc.spec.region = region;
                cc.spec.volume_id = vc.chosen.id;
                job_step(r->job, "create");
                if (fly_retry_call(r->ctx->deps.retry, r->job, "create",
                                   "create", call_create, &cc, err) == 0 ||
                    made_after_all(r, err))
                        break;
                if (err->cause != ERR_CAUSE_VOLUME_CLAIMED || tries >= 3 ||
                    vc.nskip >= 4)
                        return -1;
                /* Another create took the volume: pick another. */
                snprintf(vc.skip[vc.nskip++], sizeof(vc.skip[0]), "%s",
                         vc.chosen.id);
                job_log(r->job, LOG_INFO,
                        "volume %s already claimed; picking another",
                        vc.chosen.id);
                err_clear(err);
        }
        job_log(r->job, LOG_INFO, "%s machine %s (%s) in %s with volume %s",
                cc.created ? "created" : "found", r->machine.id,
                r->machine.name, r->machine.region, vc.chosen.id);
        return 0;
}

/* REGION, then THOPTER_FALLBACK_REGIONS in order (comma or space
 * separated), into @p out. */
static int regions_of(const struct config *cfg, char out[][32], int cap) {
        int n = 0;
        snprintf(out[n++], 32, "%s", cfg->region);
        for (const char *p = cfg->fallback_regions; p && *p && n < cap;) {
                size_t len = strcspn(p, ", ");
                if (len && len < 32) {
                        snprintf(out[n], 32, "%.*s", (int)len, p);
                        int dup = 0;
                        for (int i = 0; i < n; i++)
                                dup |= strcmp(out[i], out[n]) == 0;
                        n += !dup;
                }
                p += len;
                p += strspn(p, ", ");
        }
        return n;
}

int provision_create(struct provision_run *r, struct err *err) {
        struct machine_spec m = {0};
        char regions[8][32];
        int nregions = regions_of(r->cfg, regions, 8), rc = -1;

        if (machine_spec_init(r, &m, err) == -1)
                goto out;
        for (int i = 0; i < nregions; i++) {
                if (create_in(r, &m, regions[i], err) == 0) {
                        rc = 0;
                        break;
                }
                if (err->cause != ERR_CAUSE_NO_CAPACITY)
                        goto out;
                if (i + 1 == nregions) {
                        err_classify(err, ERRC_CAPACITY, "create");
                        goto out;
                }
                /* Contract 7: the next region, its own volume. */
                job_log(r->job, LOG_WARN, "no capacity in %s (%s); trying %s",
                        regions[i], err->msg, regions[i + 1]);
                struct err note = {0};
                err_setc(&note, ERR_TRANSIENT, ERR_CAUSE_NO_CAPACITY, 0,
                         "no capacity in %s; trying %s", regions[i],
                         regions[i + 1]);
                err_classify(&note, ERRC_CAPACITY, "create");
                job_emit(r->job, "retrying", "create", &note);
                err_clear(err);
        }
        r->have_machine = 1;
        /* Counted by its id from now on: once fly lists it, only once. */
        provision_claims_slot_machine(r->ctx->claims, r->req->request_id,
                                      r->machine.id);
        r->ready_deadline = clock_deadline(r->cfg->ready_timeout_s * 1000L);
        job_set_machine(r->job, r->machine.id, r->machine.name,
                        r->machine.region);
out:
        machine_spec_free(&m);
        return rc;
}

/* ------------------------------------------------------------------ */
/* Wait */

/* Seconds of THOPTER_READY_TIMEOUT spent so far. */
static long ready_elapsed_s(const struct provision_run *r) {
        return r->cfg->ready_timeout_s -
               clock_left_ms(r->ready_deadline) / 1000;
}

static int call_wait(void *arg, struct err *err) {
        struct provision_run *r = arg;
        int64_t left = clock_left_ms(r->ready_deadline);
        int secs = (int)(left / 1000);

        /* Each call waits up to 60 s for fly to answer; a call after the
         * first says how long the machine has taken so far. */
        if (left > 0 && ready_elapsed_s(r) >= 1)
                job_log(r->job, LOG_INFO,
                        "machine %s not started yet after %ld s; waiting up "
                        "to THOPTER_READY_TIMEOUT (%d s)",
                        r->machine.id, ready_elapsed_s(r),
                        r->cfg->ready_timeout_s);
        if (left <= 0)
                return err_setc(err, ERR_PERMANENT, ERR_CAUSE_DEADLINE, 0,
                                "machine %s not started within "
                                "THOPTER_READY_TIMEOUT (%d s)",
                                r->machine.id, r->cfg->ready_timeout_s);
        return fly_machine_wait(r->ctx->deps.fly, r->machine.id, "started",
                                NULL,
                                secs < 1    ? 1
                                : secs > 60 ? 60
                                            : secs,
                                err);
}

int provision_wait_started(struct provision_run *r, struct err *err) {
        /* A 408 from /wait only means "not yet": keep waiting until the
         * deadline instead of spending the usual retry budget. */
        struct fly_retry patient = *r->ctx->deps.retry;
        char target[96];

        patient.max_attempts = 1000;
        snprintf(target, sizeof(target), "wait:%s", r->machine.id);
        job_log(r->job, LOG_INFO,
                "waiting for machine %s to be started (%ld s of "
                "THOPTER_READY_TIMEOUT's %d s left)",
                r->machine.id, r->cfg->ready_timeout_s - ready_elapsed_s(r),
                r->cfg->ready_timeout_s);
        if (fly_retry_call(&patient, r->job, "wait", target, call_wait, r,
                           err) == -1) {
                if (err->cause == ERR_CAUSE_DEADLINE)
                        err_classify(err, ERRC_TIMEOUT, "wait");
                return -1;
        }
        job_log(r->job, LOG_INFO,
                "machine %s started after %ld s; waiting for its SSH server",
                r->machine.id, ready_elapsed_s(r));
        snprintf(r->machine.state, sizeof(r->machine.state), "started");
        /* fly assigns the private address at create and the create's (or
         * the lookup's) answer carries it; ask again only if it did not. */
        if (!r->machine.private_ip[0]) {
                struct fly_machine fresh;
                struct err e = {0};
                if (fly_machine_get(r->ctx->deps.fly, r->machine.id, &fresh,
                                    &e) == 0)
                        r->machine = fresh;
        }
        return 0;
}

/* ------------------------------------------------------------------ */
/* The "provisioned" mark */

struct mark_call {
        struct provision_run *r;
};

static int call_mark(void *arg, struct err *err) {
        struct mark_call *c = arg;
        return fly_machine_set_metadata(c->r->ctx->deps.fly, c->r->machine.id,
                                        "thopter_provisioned",
                                        c->r->req->request_id, err);
}

void provision_mark_done(struct provision_run *r) {
        struct mark_call c = {r};
        struct err e = {0};
        char target[96];

        /* Best effort: the agent runs. Without the mark a redelivery finds
         * the machine alive (the done marker answers), and only a
         * redelivery after the machine was destroyed would provision again;
         * the reaper reads the mark too (an unmarked old thopter is an
         * orphan). */
        snprintf(target, sizeof(target), "metadata:%s", r->machine.id);
        if (fly_retry_call(r->ctx->deps.retry, r->job, "launch", target,
                           call_mark, &c, &e) == -1)
                job_log(r->job, LOG_WARN,
                        "could not mark machine %s as provisioned: %s",
                        r->machine.id, e.msg);
}

/* ------------------------------------------------------------------ */
/* Clean-up */

void provision_cleanup(struct provision_run *r) {
        struct err e = {0};

        if (!r->have_machine || job_cancelled(r->job))
                return;
        if (r->cfg->keep_failed) {
                job_set_left_behind(r->job, r->machine.id);
                job_log(r->job, LOG_WARN,
                        "keeping failed machine %s (THOPTER_KEEP_FAILED=1)",
                        r->machine.id);
                return;
        }
        if (destroy_machine(&r->ctx->destroy, r->job, r->machine.id, NULL, NULL,
                            &e) == 0) {
                job_log(r->job, LOG_INFO, "destroyed failed machine %s",
                        r->machine.id);
                return;
        }
        if (e.cause == ERR_CAUSE_CANCELLED)
                return; /* a stop: the redelivery cleans up */
        job_set_left_behind(r->job, r->machine.id);
        job_log(r->job, LOG_ERROR,
                "could not destroy failed machine %s: %s (its dead letter "
                "names it; thopter-reaper or an operator removes it)",
                r->machine.id, e.msg);
}
