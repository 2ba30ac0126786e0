/* provision_context.c - see provision_context.h. */
#include "provision_context.h"
#include "dynbuf.h"
#include "shell_quote.h"
#include "strfmt.h"
#include "template.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* issue.md of the largest request (256 KiB body + comments) fits easily. */
#define MARKDOWN_MAX (4u * 1024u * 1024u)

static void md_comment(struct dynbuf *b, const cJSON *c) {
        const cJSON *author = cJSON_GetObjectItemCaseSensitive(c, "author");
        const cJSON *at = cJSON_GetObjectItemCaseSensitive(c, "createdAt");
        const cJSON *body = cJSON_GetObjectItemCaseSensitive(c, "body");

        dynbuf_addf(b, "\n### %s (%s)\n\n%s\n",
                    cJSON_IsString(author) ? author->valuestring : "unknown",
                    cJSON_IsString(at) ? at->valuestring : "",
                    cJSON_IsString(body) ? body->valuestring : "");
}

char *provision_issue_markdown(const struct provision_request *req) {
        struct dynbuf b;
        cJSON *comments = NULL;
        const cJSON *c;

        dynbuf_init(&b, MARKDOWN_MAX, DYNBUF_FAIL);
        dynbuf_addf(&b, "# %s\n\n- Repository: %s\n- Issue: #%s\n",
                    req->issue_title, req->repository, req->issue_number);
        if (req->issue_url)
                dynbuf_addf(&b, "- URL: %s\n", req->issue_url);
        if (req->issue_author)
                dynbuf_addf(&b, "- Author: %s\n", req->issue_author);
        dynbuf_addf(&b, "\n## Description\n\n%s\n", req->issue_body);
        if (req->comments_json)
                comments = cJSON_Parse(req->comments_json);
        if (cJSON_GetArraySize(comments) > 0)
                dynbuf_addstr(&b, "\n## Comments\n");
        cJSON_ArrayForEach(c, comments) md_comment(&b, c);
        cJSON_Delete(comments);
        return dynbuf_take(&b, NULL);
}

char *provision_issue_json(const struct provision_request *req,
                           const char *work_branch) {
        cJSON *o = cJSON_CreateObject();
        cJSON *gh = cJSON_Parse(req->github_json);
        char *out = NULL;

        if (o && gh && cJSON_AddStringToObject(o, "source", "github") &&
            cJSON_AddStringToObject(o, "repository", req->repository) &&
            cJSON_AddStringToObject(o, "workBranch", work_branch) &&
            cJSON_AddItemToObject(o, "github", gh)) {
                gh = NULL; /* o owns it now */
                out = cJSON_Print(o);
        }
        cJSON_Delete(gh);
        cJSON_Delete(o);
        return out;
}

char *provision_prompt(const char *tpl,
                       const struct provision_request *req,
                       const char *work_branch,
                       const char *machine_id) {
        struct template_var v[] = {{"repository", req->repository},
                                   {"workBranch", work_branch},
                                   {"repoName", req->repo_name},
                                   {"issueNumber", req->issue_number},
                                   {"machineId", machine_id}};
        return template_render(tpl, "{{", "}}", v, 5);
}

void provision_work_branch(const struct provision_request *req,
                           const char *machine_id,
                           char *out,
                           size_t cap) {
        snprintf(out, cap, "thopter/%s--%s", req->issue_number, machine_id);
}

char *
provision_log_command(const char *log_path, const char *msg, int64_t wall_ms) {
        char ts[32];
        time_t secs = (time_t)(wall_ms / 1000);
        struct tm tm;

        gmtime_r(&secs, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
        char *line = strfmt("%s [PROVISIONER] %s", ts, msg);
        char *qline = line ? shell_quote(line) : NULL;
        char *qlog = shell_quote(log_path);
        char *out = NULL;
        if (qline && qlog)
                out = strfmt(
                    "mkdir -p \"$(dirname %s)\" && printf '%%s\\n' %s >> %s",
                    qlog, qline, qlog);
        free(line);
        free(qline);
        free(qlog);
        return out;
}

/* What a Claude home needs from the Golden Claude: its login and its
 * settings. Nothing else of that home (a machine whose user is an agent
 * running arbitrary code) is carried over. */
static const char *const gc_items[] = {".claude", ".claude.json"};

#define USER_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

char *provision_as_user(const char *user, const char *home, const char *inner) {
        char *qhome = NULL, *qinner = NULL, *out = NULL;

        if (!shell_name_is_safe(user))
                return NULL;
        qhome = strfmt("HOME=%s", home);
        char *qh = qhome ? shell_quote(qhome) : NULL;
        qinner = shell_quote(inner);
        /* The name passed shell_name_is_safe(): no quotes needed. */
        if (qh && qinner)
                out = strfmt("runuser -u %s -- env -i %s USER=%s LOGNAME=%s "
                             "SHELL=/bin/sh PATH=" USER_PATH
                             " LANG=C.UTF-8 /bin/sh -c %s",
                             user, qh, user, user, qinner);
        free(qhome);
        free(qh);
        free(qinner);
        return out;
}

char *provision_gc_pack_command(const char *user, const char *home) {
        char *qhome = shell_quote(home), *inner = NULL, *out = NULL;
        char items[128] = "";

        for (size_t i = 0; i < sizeof(gc_items) / sizeof(gc_items[0]); i++) {
                strcat(items, " ");
                strcat(items, gc_items[i]);
        }
        /* Only the items that exist (tar refuses a missing one); an empty
         * archive when none does. No -h: a symlink is sent as a link. */
        if (qhome)
                inner = strfmt(
                    "cd %s && set -- && for f in%s; do if [ -e \"$f\" ] || "
                    "[ -L \"$f\" ]; then set -- \"$@\" \"$f\"; fi; done && "
                    "if [ $# -eq 0 ]; then tar czf - -T /dev/null; else "
                    "tar czf - --exclude=.claude/projects -- \"$@\"; fi",
                    qhome, items);
        if (inner)
                out = provision_as_user(user, home, inner);
        free(qhome);
        free(inner);
        return out;
}

char *provision_gc_unpack_command(const char *user, const char *home) {
        char *qhome = shell_quote(home), *inner = NULL, *out = NULL;

        if (qhome)
                inner = strfmt("umask 077 && cd %s && tar xzf - "
                               "--no-same-owner --no-same-permissions "
                               "--no-overwrite-dir",
                               qhome);
        if (inner)
                out = provision_as_user(user, home, inner);
        free(qhome);
        free(inner);
        return out;
}

char *provision_write_file_command(const char *user,
                                   const char *home,
                                   const char *dir,
                                   const char *name) {
        char *qdir = shell_quote(dir), *qname = shell_quote(name);
        char *tmp = strfmt(".%s.thopter-tmp", name);
        char *qtmp = tmp ? shell_quote(tmp) : NULL;
        char *inner = NULL, *out = NULL;

        if (qdir && qname && qtmp)
                inner = strfmt("umask 022 && mkdir -p %s && cd %s && "
                               "rm -f -- %s && cat > %s && mv -f -T -- %s %s",
                               qdir, qdir, qtmp, qtmp, qtmp, qname);
        if (inner)
                out = provision_as_user(user, home, inner);
        free(qdir);
        free(qname);
        free(tmp);
        free(qtmp);
        free(inner);
        return out;
}

int provision_credential_base(const char *url, char *out, size_t cap) {
        const char *host;

        if (strncmp(url, "https://", 8) == 0)
                host = url + 8;
        else if (strncmp(url, "http://", 7) == 0)
                host = url + 7;
        else
                host = NULL;
        size_t n = host ? strcspn(host, "/?#") : 0;
        /* user@ in the URL would put a credential where it must not be. */
        if (!host || n == 0 || memchr(host, '@', n) ||
            (size_t)(host - url) + n >= cap) {
                if (cap)
                        out[0] = '\0';
                return -1;
        }
        memcpy(out, url, (size_t)(host - url) + n);
        out[(size_t)(host - url) + n] = '\0';
        return 0;
}

/* The helper git runs: answers "get" with the token from the environment,
 * ignores "store" and "erase" (it keeps nothing). */
#define CREDENTIAL_HELPER                                                      \
        "!f() { test \"$1\" = get || exit 0; echo username=x-access-token; "   \
        "echo \"password=${GITHUB_REPO_PAT}\"; }; f"

char *provision_git_command(const char *user_name,
                            const char *user_email,
                            const char *workspace,
                            const char *url,
                            const char *repo_name) {
        char base[512], *key = NULL, *qkey = NULL;
        char *qname = shell_quote(user_name), *qmail = shell_quote(user_email);
        char *qws = shell_quote(workspace), *qurl = shell_quote(url);
        char *qrepo = shell_quote(repo_name), *qhelper = NULL, *cred = NULL;
        char *out = NULL;

        if (provision_credential_base(url, base, sizeof(base)) == 0) {
                key = strfmt("credential.%s.helper", base);
                qkey = key ? shell_quote(key) : NULL;
                qhelper = shell_quote(CREDENTIAL_HELPER);
                /* An empty helper first resets the list (git >= 2.9). */
                cred = qkey && qhelper
                           ? strfmt("{ git config --global --unset-all %s; "
                                    "true; } && "
                                    "git config --global --add %s '' && "
                                    "git config --global --add %s %s && ",
                                    qkey, qkey, qkey, qhelper)
                           : NULL;
        } else {
                cred = strdup("");
        }
        /* The clone goes to a directory of this attempt's own, moved into
         * place when complete: a dropped connection may leave the previous
         * attempt's git running, and git removes its target directory when
         * it fails, so a shared name would be deleted under the retry's
         * clone ("--stdin requires a git repository" from its index-pack). */
        if (qname && qmail && qws && qurl && qrepo && cred)
                out = strfmt(
                    "IFS= read -r GITHUB_REPO_PAT; export GITHUB_REPO_PAT; "
                    "git config --global user.name %s && "
                    "git config --global user.email %s && %s"
                    "mkdir -p %s && cd %s && "
                    "if [ -d %s/.git ]; then echo 'already cloned'; else "
                    "rm -rf .thopter-clone.* && t=.thopter-clone.$$ && "
                    "git clone --quiet %s \"$t\" && "
                    "if [ -d %s/.git ]; then rm -rf \"$t\"; "
                    "else mv -- \"$t\" %s; fi; fi",
                    qname, qmail, cred, qws, qws, qrepo, qurl, qrepo, qrepo);
        free(key);
        free(qkey);
        free(qhelper);
        free(cred);
        free(qname);
        free(qmail);
        free(qws);
        free(qurl);
        free(qrepo);
        return out;
}

char *provision_launch_command(const char *workspace,
                               const char *repo_name,
                               const char *remote_log,
                               const char *agent_command,
                               const char *session) {
        char *qws = shell_quote(workspace), *qrepo = shell_quote(repo_name);
        char *qlog = shell_quote(remote_log), *qsess = shell_quote(session);
        char *typed = NULL, *qtyped = NULL, *out = NULL;

        if (qws && qrepo && qlog)
                typed = strfmt(
                    "(cd %s/%s && if [ -f ../post-checkout.sh ]; then chmod +x "
                    "../post-checkout.sh && echo 'Running "
                    "post-checkout.sh...' && ../post-checkout.sh 2>&1 | tee "
                    "-a %s || true; fi); cd %s && %s",
                    qws, qrepo, qlog, qws, agent_command);
        qtyped = typed ? shell_quote(typed) : NULL;
        if (qtyped && qsess)
                out = strfmt(
                    "tmux send-keys -t %s -l %s && tmux send-keys -t %s Enter",
                    qsess, qtyped, qsess);
        free(qws);
        free(qrepo);
        free(qlog);
        free(qsess);
        free(typed);
        free(qtyped);
        return out;
}
