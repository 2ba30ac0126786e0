/* provision_remote.c - the SSH session of a provision and its remote steps:
 * Golden Claude copy, git, context files, launch. See provision_int.h.
 *
 * DESIGN
 * ------
 * One SSH connection per machine per provision: every remote step, and the
 * log line that announces it, runs over it. When it drops (sshd restarted, a
 * network blip) a new one is opened and the step runs again: every remote
 * step is safe to repeat (clone is skipped when the repository is there,
 * files are replaced atomically) except the launch, which types into tmux
 * and is therefore retried only after checking the done marker it writes in
 * the same command. The Golden Claude copy streams tar from the GC's
 * connection into tar on the thopter's, with no temporary file.
 *
 * The thopter's user is an agent running arbitrary code, and so is the
 * Golden Claude's: nothing root does here follows a path that user owns.
 * Whatever touches the user's home runs as the user (provision_as_user(),
 * no login shell, a clean environment): the copy is packed and unpacked by
 * the users of both machines, and only what a Claude home needs; the
 * context files are written by the user with a rename that replaces the
 * name. Root writes only the remote log and the done marker, which lives in
 * PROVISION_STATE_DIR, out of the user's reach.
 */
#include "provision_int.h"
#include "clock.h"
#include "metrics.h"
#include "provision_context.h"
#include "shell_quote.h"
#include "strfmt.h"
#include "template.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SSH_CONNECT_MS    15000L
#define SSH_STEP_ATTEMPTS 3
#define SSH_RECONNECT_MS  30000L
#define PROMPT_MAX        (1 << 20)

/* ------------------------------------------------------------------ */
/* The session */

static char *host_for(struct provision_run *r, const struct fly_machine *m) {
        struct template_var vars[] = {{"id", m->id},
                                      {"app", r->cfg->app_name},
                                      {"private_ip", m->private_ip}};
        return template_render(r->cfg->ssh_host, "{", "}", vars, 3);
}

static struct ssh_opts ssh_opts_for(struct provision_run *r, const char *host) {
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

/* Connect to this request's machine until @p deadline: its host key is the
 * one made for it at create (ssh_keys.h), or one THOPTER_SSH_KNOWN_HOSTS
 * lists (fixed-key images). */
static struct ssh_conn *
open_session(struct provision_run *r, int64_t deadline, struct err *err) {
        char *host = host_for(r, &r->machine);
        unsigned char blob[SSH_KEYS_BLOB_MAX];
        struct ssh_conn *c = NULL;

        if (!host) {
                err_oom(err, "ssh host");
                return NULL;
        }
        struct ssh_opts o = ssh_opts_for(r, host);
        o.host_key_len = ssh_keys_public_blob(&r->host_key, blob, sizeof(blob));
        o.host_key = o.host_key_len ? blob : NULL;
        c = ssh_connect_until(&o, deadline, &r->job->cancel, err);
        if (c)
                metrics_inc(M_PROVISION_SSH_CONNECTIONS, "", 1);
        free(host);
        return c;
}

int provision_connect(struct provision_run *r, struct err *err) {
        r->ssh = open_session(r, r->ready_deadline, err);
        if (r->ssh)
                return 0;
        if (err->cause == ERR_CAUSE_CANCELLED)
                return -1;
        return err_classify(
            err, err->cause == ERR_CAUSE_DEADLINE ? ERRC_TIMEOUT : ERRC_SSH,
            "wait");
}

/* Whether a failed remote call is worth another attempt on a new
 * connection: transient (the transport, not a deadline), attempts left, and
 * a new connection could be made. */
static int retry_remote(struct provision_run *r,
                        int attempt,
                        const char *step,
                        struct err *err) {
        if (err->kind != ERR_TRANSIENT || err->cause == ERR_CAUSE_DEADLINE ||
            attempt + 1 >= SSH_STEP_ATTEMPTS || job_cancelled(r->job))
                return 0;
        job_log(r->job, LOG_WARN, "%s: %s; reconnecting to retry", step,
                err->msg);
        metrics_inc(M_SSH_STEP_RETRIES, "", 1);
        long window = r->cfg->ready_timeout_s * 1000L < SSH_RECONNECT_MS
                          ? r->cfg->ready_timeout_s * 1000L
                          : SSH_RECONNECT_MS;
        struct err ce = {0};
        ssh_close(r->ssh);
        r->ssh = open_session(r, clock_deadline(window), &ce);
        if (!r->ssh) {
                job_log(r->job, LOG_WARN, "%s: reconnect failed: %s", step,
                        ce.msg);
                return 0;
        }
        err_clear(err);
        return 1;
}

/* The class of a failed remote call of @p step. */
static int remote_failed(struct err *err, const char *step) {
        if (err->cause == ERR_CAUSE_CANCELLED)
                return -1;
        return err_classify(err,
                            err->cause == ERR_CAUSE_DEADLINE ? ERRC_TIMEOUT
                            : err->cause == ERR_CAUSE_OOM    ? ERRC_INTERNAL
                                                             : ERRC_SSH,
                            step);
}

/* Run @p cmd (after logging @p what to the remote log); a non-zero exit is
 * a permanent ssh failure of @p step; a dropped connection is retried on a
 * new one when @p may_retry. */
static int remote_step(struct provision_run *r,
                       const char *step,
                       const char *what,
                       const char *cmd,
                       const void *in,
                       size_t in_len,
                       int may_retry,
                       struct err *err) {
        struct ssh_result res = {0};
        char *note = r->note ? provision_log_command(r->cfg->remote_log,
                                                     r->note, clock_wall_ms())
                             : NULL;
        char *logc =
            provision_log_command(r->cfg->remote_log, what, clock_wall_ms());
        char *full = logc && (note || !r->note)
                         ? strfmt("%s%s%s; %s", note ? note : "",
                                  note ? "; " : "", logc, cmd)
                         : NULL;
        int rc = -1;

        if (!full) {
                err_oom(err, step);
                remote_failed(err, step);
                goto out;
        }
        for (int attempt = 0;; attempt++) {
                /* A job cancelled at a revoke deadline is redone by the new
                 * owner: it must not write anything more (or type the agent
                 * into tmux) from here. */
                if (job_cancelled(r->job)) {
                        err_cancelled(err);
                        goto out;
                }
                if (ssh_run(r->ssh, full, in, in_len,
                            r->cfg->ssh_timeout_s * 1000L, &res, err) == 0)
                        break;
                ssh_result_free(&res);
                if (!may_retry || !retry_remote(r, attempt, step, err)) {
                        remote_failed(err, step);
                        goto out;
                }
        }
        if (res.exit_status != 0) {
                char tail[160];
                ssh_result_tail(&res, tail, sizeof(tail));
                err_setc(err, ERR_PERMANENT, ERR_CAUSE_REMOTE_EXIT,
                         res.exit_status, "%s: remote command exited %d: %s",
                         step, res.exit_status, tail);
                err_classify(err, ERRC_SSH, step);
                goto out;
        }
        rc = 0;
        free(r->note); /* written */
        r->note = NULL;
out:
        ssh_result_free(&res);
        free(note);
        free(logc);
        free(full);
        return rc;
}

int provision_remote_note(struct provision_run *r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        char *line = vstrfmt(fmt, ap);
        va_end(ap);
        if (!line)
                return -1;
        free(r->note);
        r->note = line;
        return 0;
}

/* ------------------------------------------------------------------ */
/* The done marker */

static char *marker_path(struct provision_run *r) {
        (void)r;
        return strdup(PROVISION_STATE_MARKER);
}

int provision_is_done(struct provision_run *r, int *done, struct err *err) {
        struct ssh_result res = {0};
        char *path = marker_path(r);
        char *q = path ? shell_quote(path) : NULL;
        char *cmd = q ? strfmt("cat %s 2>/dev/null", q) : NULL;
        int rc = -1;

        if (!cmd) {
                err_oom(err, "done marker");
                remote_failed(err, "lookup");
                goto out;
        }
        if (ssh_run(r->ssh, cmd, NULL, 0, 30000, &res, err) == -1) {
                remote_failed(err, "lookup");
                goto out;
        }
        /* The whole line must match: "prov-10" is not "prov-1". */
        size_t idlen = strlen(r->req->request_id);
        *done = res.exit_status == 0 &&
                strncmp(res.out, r->req->request_id, idlen) == 0 &&
                (res.out[idlen] == '\n' || res.out[idlen] == '\0');
        rc = 0;
out:
        ssh_result_free(&res);
        free(path);
        free(q);
        free(cmd);
        return rc;
}

/* ------------------------------------------------------------------ */
/* Golden Claude */

void provision_gc_pick(struct provision_run *r,
                       const struct fly_machine *ms,
                       size_t n) {
        char want[64];

        r->gc.known = 1;
        r->gc.found = 0;
        for (int pass = 0; pass < 2 && !r->gc.found; pass++) {
                snprintf(want, sizeof(want), "gc-%s",
                         pass == 0 ? r->req->gc : "default");
                for (size_t i = 0; i < n && !r->gc.found; i++) {
                        if (strcmp(ms[i].name, want) == 0 &&
                            strcmp(ms[i].state, "started") == 0) {
                                r->gc.machine = ms[i];
                                r->gc.found = 1;
                        }
                }
        }
}

static int find_gc_call(void *arg, struct err *err) {
        struct provision_run *r = arg;
        struct fly_machine *ms = NULL;
        size_t n = 0;

        if (fly_machine_list(r->ctx->deps.fly, NULL, &ms, &n, err) == -1)
                return -1;
        provision_gc_pick(r, ms, n);
        free(ms);
        return 0;
}

/* The one connect attempt: a Golden Claude that does not answer is
 * skipped, not waited for. */
static void gc_connect(struct provision_run *r) {
        char *gchost = host_for(r, &r->gc.machine);

        r->gc.tried = 1;
        err_clear(&r->gc.err);
        if (!gchost) {
                err_oom(&r->gc.err, "ssh host");
                return;
        }
        struct ssh_opts o = ssh_opts_for(r, gchost);
        r->gc.ssh = ssh_connect(&o, &r->gc.err);
        if (r->gc.ssh)
                metrics_inc(M_PROVISION_SSH_CONNECTIONS, "", 1);
        free(gchost);
}

void provision_golden_claude_prepare(struct provision_run *r) {
        struct err e = {0};

        /* A failed list is left for the step, which retries and fails as
         * it always did. */
        if (!r->gc.known &&
            fly_retry_call(r->ctx->deps.retry, r->job, "golden_claude", "list",
                           find_gc_call, r, &e) == -1) {
                r->gc.known = 0;
                return;
        }
        if (r->gc.found && !r->gc.tried && !job_cancelled(r->job))
                gc_connect(r);
}

/* A Golden Claude copy that was not made: counted, and by default only a
 * warning on the completed event (the original treated the copy as
 * optional: a thopter without Golden Claude credentials still works once
 * someone logs it in). With THOPTER_GOLDEN_CLAUDE_REQUIRED=1 it fails the
 * request instead. @p why is the metric's outcome and the warning code's
 * tail. @returns 0 (go on) or -1 (fail, @p err set). */
static int gc_skipped(struct provision_run *r,
                      const char *why,
                      const char *message,
                      struct err *err) {
        char labels[48], code[40];

        snprintf(labels, sizeof(labels), "outcome=\"%s\"", why);
        metrics_inc(M_GOLDEN_CLAUDE_COPIES, labels, 1);
        if (r->cfg->golden_claude_required) {
                err_set(err, ERR_PERMANENT, 0,
                        "Golden Claude copy not made "
                        "(THOPTER_GOLDEN_CLAUDE_REQUIRED=1): %s",
                        message);
                return err_classify(err, ERRC_SSH, "golden_claude");
        }
        snprintf(code, sizeof(code), "golden_claude_%s", why);
        job_set_warning(r->job, code, message);
        return 0;
}

/* Why a connection to the Golden Claude failed, as gc_skipped()'s @p why:
 * its host key (not pinned in THOPTER_SSH_KNOWN_HOSTS as [host]:port, or
 * another key), or anything else (down, refused, login refused). */
static const char *gc_connect_failure(const struct err *e) {
        return e->cause == ERR_CAUSE_HOST_KEY ? "host_key" : "unreachable";
}

/* THOPTER_GC_COPY_CONCURRENCY: wait for a turn to copy from this Golden
 * Claude, with the other provisions in flight here (one step event when it
 * has to wait, another when its copy starts). Cancelled by a stop or a
 * revoke: the request is redelivered, not failed. */
static int gc_wait_turn(struct provision_run *r, struct err *err) {
        int announced = 0, running = 0;

        for (;;) {
                int turn = provision_claims_gc_turn(
                    r->ctx->claims, r->gc.machine.id, r->req->request_id,
                    r->cfg->gc_copy_concurrency, &running);
                if (turn == 1)
                        break;
                if (turn == -1) {
                        err_oom(err, "golden_claude");
                        return remote_failed(err, "golden_claude");
                }
                if (!announced) {
                        announced = 1;
                        job_step(r->job, "golden_claude_wait");
                        job_log(r->job, LOG_INFO,
                                "waiting for the Golden Claude %s: %d "
                                "copies from it running "
                                "(THOPTER_GC_COPY_CONCURRENCY %d)",
                                r->gc.machine.name, running,
                                r->cfg->gc_copy_concurrency);
                }
                if (job_sleep(r->job, 100, err) == -1)
                        return -1;
        }
        if (announced)
                job_step(r->job, "golden_claude");
        return 0;
}

int provision_golden_claude(struct provision_run *r, struct err *err) {
        struct provision_gc *gc = &r->gc;
        struct ssh_conn *gcssh = NULL;
        char *src = NULL, *inner = NULL;
        char *logc = NULL, *dst = NULL;
        char line[ERR_MSG_LEN + 256]; /* cut to ERR_MSG_LEN in the event */
        struct err e = {0};
        int rc = -1;

        job_step(r->job, "golden_claude");
        if (!gc->known &&
            fly_retry_call(r->ctx->deps.retry, r->job, "golden_claude", "list",
                           find_gc_call, r, err) == -1)
                return -1;
        if (!gc->found) {
                snprintf(line, sizeof(line),
                         "no started Golden Claude gc-%s or gc-default: copy "
                         "skipped",
                         r->req->gc);
                if (gc_skipped(r, "not_running", line, err) == -1)
                        return -1;
                return remote_step(r, "golden_claude",
                                   "Golden Claude copy skipped: none running",
                                   "true", NULL, 0, 1, err);
        }
        if (!gc->tried)
                gc_connect(r);
        gcssh = gc->ssh; /* ours from here on */
        gc->ssh = NULL;
        if (!gcssh) {
                snprintf(line, sizeof(line),
                         "Golden Claude %s not reachable, copy skipped: %s",
                         gc->machine.name, gc->err.msg);
                return gc_skipped(r, gc_connect_failure(&gc->err), line, err);
        }
        /* Packed by the GC's user, unpacked by the thopter's: root reads and
         * writes nothing of either home, and only the Claude items travel. */
        src =
            provision_gc_pack_command(r->cfg->remote_user, r->cfg->remote_home);
        inner = provision_gc_unpack_command(r->cfg->remote_user,
                                            r->cfg->remote_home);
        logc = provision_log_command(
            r->cfg->remote_log, "copying Golden Claude data", clock_wall_ms());
        dst = logc && inner ? strfmt("%s; %s", logc, inner) : NULL;
        if (!src || !dst) {
                err_oom(err, "golden_claude");
                remote_failed(err, "golden_claude");
                goto out;
        }
        if (gc_wait_turn(r, err) == -1)
                goto out;
        if (job_cancelled(r->job)) {
                err_cancelled(err);
                goto out;
        }
        if (ssh_pipe(gcssh, src, r->ssh, dst, r->cfg->ssh_timeout_s * 1000L,
                     &e) == -1) {
                snprintf(line, sizeof(line),
                         "Golden Claude copy from %s failed: %s",
                         gc->machine.name, e.msg);
                rc = gc_skipped(r, "copy_failed", line, err);
                goto out;
        }
        metrics_inc(M_GOLDEN_CLAUDE_COPIES, "outcome=\"copied\"", 1);
        job_log(r->job, LOG_INFO, "Golden Claude data copied from %s",
                gc->machine.name);
        rc = 0;
out:
        provision_claims_gc_done(r->ctx->claims, r->req->request_id);
        ssh_close(gcssh);
        free(src);
        free(inner);
        free(logc);
        free(dst);
        return rc;
}

/* ------------------------------------------------------------------ */
/* git */

int provision_git(struct provision_run *r, struct err *err) {
        struct template_var v[] = {{"repository", r->req->repository}};
        char *url = template_render(r->cfg->git_url, "{", "}", v, 1);
        char *inner =
            url ? provision_git_command(r->repo->user_name, r->repo->user_email,
                                        r->workspace, url, r->req->repo_name)
                : NULL;
        char *cmd = inner ? provision_as_user(r->cfg->remote_user,
                                              r->cfg->remote_home, inner)
                          : NULL;
        char *in = strfmt("%s\n", r->repo->pat);
        int rc = -1;

        job_step(r->job, "git");
        if (!cmd || !in) {
                err_oom(err, "git");
                remote_failed(err, "git");
        } else {
                /* The token goes in on stdin, never on a command line. */
                rc = remote_step(r, "git", "git identity and clone", cmd, in,
                                 strlen(in), 1, err);
        }
        secret_free(in);
        free(url);
        free(inner);
        free(cmd);
        return rc;
}

/* ------------------------------------------------------------------ */
/* Context files */

static char *read_local_file(const char *path, size_t max) {
        FILE *f = fopen(path, "rb");
        char *buf = NULL;
        long n;

        if (!f)
                return NULL;
        if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
            (size_t)n < max && fseek(f, 0, SEEK_SET) == 0) {
                buf = malloc((size_t)n + 1);
                if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) {
                        buf[n] = '\0';
                } else {
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

static char *prompt_markdown(struct provision_run *r, struct err *err) {
        const char *dir = prompts_dir(r->cfg);
        char *path = strfmt("%s/%s.md", dir, r->req->prompt);
        char *tpl = path ? read_local_file(path, PROMPT_MAX) : NULL;
        char *out = NULL;

        if (path && !tpl) {
                job_log(r->job, LOG_WARN, "prompt %s not found; using default",
                        path);
                free(path);
                path = strfmt("%s/default.md", dir);
                tpl = path ? read_local_file(path, PROMPT_MAX) : NULL;
        }
        if (!path) {
                err_oom(err, "context_files");
        } else if (!tpl) {
                err_set(err, ERR_PERMANENT, 0,
                        "no prompt template %s (THOPTER_PROMPTS_DIR)", path);
        } else {
                out = provision_prompt(tpl, r->req, r->work_branch,
                                       r->machine.id);
                if (!out)
                        err_oom(err, "context_files");
        }
        if (!out)
                err_classify(err, ERRC_INTERNAL, "context_files");
        free(path);
        free(tpl);
        return out;
}

int provision_context_files(struct provision_run *r, struct err *err) {
        struct {
                const char *name;
                char *data;
        } files[3] = {
            {"issue.md", provision_issue_markdown(r->req)},
            {"prompt.md", NULL},
            {"issue.json", provision_issue_json(r->req, r->work_branch)}};
        int rc = -1;

        job_step(r->job, "context_files");
        files[1].data = prompt_markdown(r, err);
        if (!files[1].data)
                goto out;
        if (!files[0].data || !files[2].data) {
                err_oom(err, "context_files");
                remote_failed(err, "context_files");
                goto out;
        }
        /* Written by the user, from stdin: root never opens a path in the
         * workspace, where the agent may have left a link. */
        for (int i = 0; i < 3; i++) {
                char what[64];
                char *cmd = provision_write_file_command(
                    r->cfg->remote_user, r->cfg->remote_home, r->workspace,
                    files[i].name);
                if (!cmd) {
                        err_oom(err, "context_files");
                        remote_failed(err, "context_files");
                        goto out;
                }
                snprintf(what, sizeof(what), "context file %s written",
                         files[i].name);
                int step_rc =
                    remote_step(r, "context_files", what, cmd, files[i].data,
                                strlen(files[i].data), 1, err);
                free(cmd);
                if (step_rc == -1)
                        goto out;
        }
        rc = 0;
out:
        for (int i = 0; i < 3; i++)
                free(files[i].data);
        return rc;
}

/* ------------------------------------------------------------------ */
/* Launch */

/* Types the agent command into the tmux session and writes the done marker
 * in the same remote command, so a redelivery never types it twice. Once
 * both worked, the same command writes the original's last line to the
 * remote log, best effort: the agent runs already, and a lost log line must
 * not fail (and destroy) a provision that worked. */
int provision_launch(struct provision_run *r, struct err *err) {
        char *typed = provision_launch_command(
            r->workspace, r->req->repo_name, r->cfg->remote_log,
            r->cfg->agent_command, r->cfg->tmux_session);
        char *cmd = typed ? provision_as_user(r->cfg->remote_user,
                                              r->cfg->remote_home, typed)
                          : NULL;
        char *marker = marker_path(r);
        char *qmarker = marker ? shell_quote(marker) : NULL;
        char *qid = shell_quote(r->req->request_id);
        char *line = strfmt("Provisioning completed successfully. Thopter %s "
                            "is ready to work on issue %s",
                            r->machine.id, r->req->issue_number);
        char *finish = line ? provision_log_command(r->cfg->remote_log, line,
                                                    clock_wall_ms())
                            : NULL;
        /* The marker is root's, in a directory only root can write: written
         * through a temporary name and a rename. */
        char *full =
            cmd && qmarker && qid && finish
                ? strfmt("%s && install -d -m 0700 -o root -g "
                         "root " PROVISION_STATE_DIR " && printf '%%s\\n' %s > "
                         "%s.tmp && mv -f -T %s.tmp %s && { %s || true; }",
                         cmd, qid, qmarker, qmarker, qmarker, finish)
                : NULL;
        int rc = -1;

        job_step(r->job, "launch");
        if (!full) {
                err_oom(err, "launch");
                remote_failed(err, "launch");
                goto out;
        }
        /* Not blindly retried: if the connection dropped after the keys
         * were typed, typing them again would start a second agent. The
         * marker written in the same command tells which happened. */
        for (int attempt = 0;; attempt++) {
                rc = remote_step(r, "launch", "launching the agent in tmux",
                                 full, NULL, 0, 0, err);
                if (rc == 0 || err->kind != ERR_TRANSIENT ||
                    err->cause == ERR_CAUSE_DEADLINE ||
                    !retry_remote(r, attempt, "launch", err))
                        break;
                int done = 0;
                struct err e = {0};
                if (provision_is_done(r, &done, &e) == -1) {
                        *err = e;
                        break;
                }
                if (done) {
                        rc = 0;
                        break;
                }
        }
out:
        free(typed);
        free(cmd);
        free(marker);
        free(qmarker);
        free(qid);
        free(line);
        free(finish);
        free(full);
        return rc;
}
