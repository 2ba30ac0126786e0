/* test_provision_context.c - provision_context.c: the issue as markdown and
 * JSON, the prompt, the work branch, and the shell commands of the remote
 * steps. The commands are run for real with /bin/sh in a temporary
 * directory, with fake git/tmux/su first in PATH that record their argv
 * (tests/data/provision/fake-tool.sh): hostile values must arrive as
 * exactly one argument each and never run anything. Canned requests and
 * the expected markdown are files in tests/data/provision. */
#include "provision_context.h"
#include "test_helpers.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DATA TEST_DATA_DIR "/provision/"

/* Values built to break out of any quoting that is not exact. */
#define HOSTILE "it's \"$(touch pwned)\" `touch pwned2` $HOME \\ ;touch pwned3"

/* ---- a scratch directory and a shell --------------------------------------
 */

static char tmp[256];

static void make_tmp(void) {
        snprintf(tmp, sizeof(tmp), "/tmp/test_provision_context.XXXXXX");
        cr_assert_not_null(mkdtemp(tmp), "mkdtemp: %s", strerror(errno));
        cr_assert_eq(chdir(tmp), 0);
}

static void remove_tmp(void) {
        char cmd[512];

        if (!tmp[0])
                return;
        cr_assert_eq(chdir("/"), 0);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
        cr_expect_eq(system(cmd), 0);
}

TestSuite(provision_context, .fini = remove_tmp);

static char *path_in_tmp(const char *name) {
        size_t n = strlen(tmp) + strlen(name) + 2;
        char *p = malloc(n);

        cr_assert(p);
        snprintf(p, n, "%s/%s", tmp, name);
        return p;
}

static void write_file(const char *path, const char *text, mode_t mode) {
        FILE *f = fopen(path, "w");

        cr_assert_not_null(f, "%s: %s", path, strerror(errno));
        fputs(text, f);
        fclose(f);
        cr_assert_eq(chmod(path, mode), 0);
}

/* Puts fake git, tmux and su in tmp/bin and logs their calls to
 * tmp/fake.log (FAKE_LOG). */
static void install_fakes(void) {
        static const char *const tools[] = {"git", "tmux", "su", "runuser"};
        char *bin = path_in_tmp("bin"), *log = path_in_tmp("fake.log");

        cr_assert_eq(mkdir(bin, 0700), 0);
        for (size_t i = 0; i < sizeof(tools) / sizeof(tools[0]); i++) {
                char path[512], script[512];

                snprintf(path, sizeof(path), "%s/%s", bin, tools[i]);
                snprintf(script, sizeof(script),
                         "#!/bin/sh\nexec /bin/sh '%sfake-tool.sh' %s \"$@\"\n",
                         DATA, tools[i]);
                write_file(path, script, 0700);
        }
        setenv("FAKE_LOG", log, 1);
        free(bin);
        free(log);
}

/* Runs @p cmd with /bin/sh -c in tmp (-n: syntax only), @p input on its
 * stdin, stdout and stderr to tmp/out, PATH starting with tmp/bin.
 * @returns its exit status. */
static int run_sh(const char *cmd, const char *input, int syntax_only) {
        int fds[2], status;
        pid_t pid;

        cr_assert_eq(pipe(fds), 0);
        pid = fork();
        cr_assert_neq(pid, -1);
        if (pid == 0) {
                char path[512];
                int out = open("out", O_WRONLY | O_CREAT | O_APPEND, 0600);

                snprintf(path, sizeof(path), "%s/bin:/usr/bin:/bin", tmp);
                setenv("PATH", path, 1);
                dup2(fds[0], 0);
                dup2(out, 1);
                dup2(out, 2);
                close(fds[0]);
                close(fds[1]);
                if (syntax_only)
                        execl("/bin/sh", "sh", "-n", "-c", cmd, (char *)NULL);
                else
                        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
                _exit(127);
        }
        close(fds[0]);
        if (input)
                cr_assert_eq(write(fds[1], input, strlen(input)),
                             (ssize_t)strlen(input));
        close(fds[1]);
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static char *read_tmp_file(const char *name) {
        char *path = path_in_tmp(name);
        size_t len;
        char *text = test_slurp_str(path, &len);

        free(path);
        return text;
}

static int exists_in_tmp(const char *name) {
        char *path = path_in_tmp(name);
        int rc = access(path, F_OK) == 0;

        free(path);
        return rc;
}

/* Nothing a hostile value tried to run did run. */
static void expect_nothing_injected(void) {
        cr_expect_not(exists_in_tmp("pwned"));
        cr_expect_not(exists_in_tmp("pwned2"));
        cr_expect_not(exists_in_tmp("pwned3"));
}

/* ---- what the fakes recorded ----------------------------------------------
 */

struct call {
        const char *name;
        const char *argv[16];
        int argc;
        const char *token; /* GITHUB_REPO_PAT in its environment */
};

struct calls {
        char *log;
        struct call c[8];
        int n;
};

static void read_calls(struct calls *calls) {
        char *path = path_in_tmp("fake.log");
        size_t len;
        struct call *cur = NULL;

        memset(calls, 0, sizeof(*calls));
        if (access(path, F_OK) != 0) {
                free(path);
                return;
        }
        calls->log = test_slurp(path, &len);
        free(path);
        for (size_t at = 0; at < len; at += strlen(calls->log + at) + 1) {
                const char *s = calls->log + at;

                cr_assert(memchr(s, '\0', len - at), "fake.log: torn record");
                if (strncmp(s, "CALL ", 5) == 0) {
                        cr_assert_lt(calls->n, 8);
                        cur = &calls->c[calls->n++];
                        cur->name = s + 5;
                } else if (strncmp(s, "TOKEN=", 6) == 0) {
                        cr_assert_not_null(cur);
                        cur->token = s + 6;
                } else {
                        cr_assert_not_null(cur);
                        cr_assert_lt(cur->argc, 16);
                        cur->argv[cur->argc++] = s;
                }
        }
}

static void
expect_call(const struct call *c, const char *name, const char *const *argv) {
        int n = 0;

        cr_expect_str_eq(c->name, name);
        for (; argv[n]; n++) {
                cr_assert_lt(n, c->argc, "%s: %d args, wanted more", name,
                             c->argc);
                cr_expect_str_eq(c->argv[n], argv[n], "%s arg %d", name, n);
        }
        cr_expect_eq(c->argc, n, "%s: %d args, wanted %d", name, c->argc, n);
}

/* ---- the issue ------------------------------------------------------------
 */

struct markdown_case {
        const char *request, *markdown;
};

Test(provision_context, issue_markdown_is_the_expected_file) {
        static const struct markdown_case cases[] = {
            {"request-full.json", "issue-full.md"},
            {"request-minimal.json", "issue-minimal.md"},
            {"request-no-comments.json", "issue-no-comments.md"},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct provision_request req;
                char path[512];
                size_t len;
                char *want, *got;

                snprintf(path, sizeof(path), DATA "%s", cases[i].request);
                test_load_provision(path, &req);
                snprintf(path, sizeof(path), DATA "%s", cases[i].markdown);
                want = test_slurp_str(path, &len);
                got = provision_issue_markdown(&req);
                cr_assert_not_null(got, "%s", cases[i].request);
                cr_expect_str_eq(got, want, "%s", cases[i].request);
                free(got);
                free(want);
                request_provision_free(&req);
        }
}

/* The request schema requires every field of a comment, so a comment
 * missing fields reaches the renderer only through comments_json itself:
 * each missing or non-string field reads as "unknown" (author) or "". */
Test(provision_context, comment_missing_fields_renders_as_unknown) {
        struct provision_request req;
        size_t len;
        char *want, *got;

        test_load_provision(DATA "request-minimal.json", &req);
        cr_assert_null(req.comments_json);
        req.comments_json = test_slurp_str(DATA "comments-partial.json", &len);
        want = test_slurp_str(DATA "issue-partial-comments.md", &len);
        got = provision_issue_markdown(&req);
        cr_assert_not_null(got);
        cr_expect_str_eq(got, want);
        free(got);
        free(want);
        request_provision_free(&req);
}

Test(provision_context, issue_json_wraps_the_github_object_unchanged) {
        static const char *const files[] = {"request-full.json",
                                            "request-minimal.json"};

        for (size_t i = 0; i < 2; i++) {
                char path[512], keys[128];
                struct provision_request req;
                cJSON *orig, *o;
                char *json;

                snprintf(path, sizeof(path), DATA "%s", files[i]);
                test_load_provision(path, &req);
                orig = test_load_json(path);
                json = provision_issue_json(&req, "thopter/42--148e21a3c96989");
                cr_assert_not_null(json);
                o = cJSON_Parse(json);
                cr_assert(cJSON_IsObject(o), "%s", json);
                test_json_keys(o, keys, sizeof(keys));
                cr_expect_str_eq(keys, "source,repository,workBranch,github");
                cr_expect_str_eq(
                    cJSON_GetStringValue(cJSON_GetObjectItem(o, "source")),
                    "github");
                cr_expect_str_eq(
                    cJSON_GetStringValue(cJSON_GetObjectItem(o, "repository")),
                    req.repository);
                cr_expect_str_eq(
                    cJSON_GetStringValue(cJSON_GetObjectItem(o, "workBranch")),
                    "thopter/42--148e21a3c96989");
                /* Unknown fields (labels, reactions) included. */
                cr_expect(cJSON_Compare(cJSON_GetObjectItem(o, "github"),
                                        cJSON_GetObjectItem(orig, "github"), 1),
                          "%s: github changed: %s", files[i], json);
                cJSON_Delete(o);
                cJSON_Delete(orig);
                free(json);
                request_provision_free(&req);
        }
}

Test(provision_context, prompt_renders_every_variable) {
        struct provision_request req;
        char *got;

        test_load_provision(DATA "request-full.json", &req);
        got = provision_prompt(
            "Repo {{repository}} ({{repoName}}), issue #{{issueNumber}}, "
            "machine {{machineId}}, branch {{workBranch}}. "
            "{{unknown}} {{ repository }} {{repoName",
            &req, "thopter/42--148e21a3c96989", "148e21a3c96989");
        cr_assert_not_null(got);
        cr_expect_str_eq(
            got, "Repo telepath-computer/thopter-swarm (thopter-swarm), "
                 "issue #42, machine 148e21a3c96989, branch "
                 "thopter/42--148e21a3c96989. "
                 "{{unknown}} {{ repository }} {{repoName");
        free(got);

        /* A value is inserted as it is, never expanded again. */
        got = provision_prompt("{{machineId}}", &req, "b", "{{repository}}");
        cr_expect_str_eq(got, "{{repository}}");
        free(got);
        request_provision_free(&req);
}

Test(provision_context, work_branch_is_issue_and_machine) {
        struct provision_request req;
        char out[64];

        test_load_provision(DATA "request-full.json", &req);
        provision_work_branch(&req, "148e21a3c96989", out, sizeof(out));
        cr_expect_str_eq(out, "thopter/42--148e21a3c96989");
        /* Cut to the buffer, still terminated. */
        provision_work_branch(&req, "148e21a3c96989", out, 10);
        cr_expect_str_eq(out, "thopter/4");
        request_provision_free(&req);

        test_load_provision(DATA "request-minimal.json", &req);
        provision_work_branch(&req, "0123456789abcd", out, sizeof(out));
        cr_expect_str_eq(out, "thopter/7--0123456789abcd");
        request_provision_free(&req);
}

/* ---- the provisioner log --------------------------------------------------
 */

Test(provision_context, log_command_appends_the_line_literally) {
        /* 2025-09-10 08:00:00 UTC, and one second later. */
        const int64_t wall_ms = 1757491200999LL;
        const char *msg = "it's \"$(touch pwned)\" `touch pwned2` $HOME %s %d\n"
                          "second line\\n ;touch pwned3";
        char *log, *cmd, *got, *want;
        size_t n;

        make_tmp();
        log = path_in_tmp("thopter dir/it's $(x)/log");
        cmd = provision_log_command(log, msg, wall_ms);
        cr_assert_not_null(cmd);
        cr_expect_eq(run_sh(cmd, NULL, 1), 0, "sh -n: %s", cmd);
        cr_expect_eq(run_sh(cmd, NULL, 0), 0, "%s", cmd);
        free(cmd);
        cmd = provision_log_command(log, "done", wall_ms + 1000);
        cr_expect_eq(run_sh(cmd, NULL, 0), 0, "%s", cmd);

        got = test_slurp_str(log, &n);
        want = malloc(4096);
        cr_assert(want);
        snprintf(want, 4096,
                 "2025-09-10 08:00:00 [PROVISIONER] %s\n"
                 "2025-09-10 08:00:01 [PROVISIONER] done\n",
                 msg);
        cr_expect_str_eq(got, want);
        expect_nothing_injected();
        free(want);
        free(got);
        free(cmd);
        free(log);
}

/* ---- as the user ---------------------------------------------------------
 */

Test(provision_context, as_user_refuses_unsafe_user_names) {
        static const char *const unsafe[] = {
            "",   "-root", "thop ter", "a;b",      "a/b",  ".",
            "..", "$(id)", "`id`",     "thopter'", "a\nb", "t\"x",
        };

        for (size_t i = 0; i < sizeof(unsafe) / sizeof(unsafe[0]); i++) {
                char *cmd =
                    provision_as_user(unsafe[i], "/data/thopter", "true");

                cr_expect_null(cmd, "\"%s\" accepted: %s", unsafe[i], cmd);
                free(cmd);
        }
}

/* No login shell (issue 19): `su -` ran the user's ~/.bash_profile, which the
 * agent controls, with the GitHub token on its stdin. runuser with a clean
 * environment and /bin/sh -c reads no dotfile. */
Test(provision_context, as_user_hands_the_inner_command_over_unchanged) {
        const char *inner = "echo " HOSTILE;
        const char *const want[] = {"-u",
                                    "thopter",
                                    "--",
                                    "env",
                                    "-i",
                                    "HOME=/data/th opter",
                                    "USER=thopter",
                                    "LOGNAME=thopter",
                                    "SHELL=/bin/sh",
                                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/"
                                    "sbin:/usr/bin:/sbin:/bin",
                                    "LANG=C.UTF-8",
                                    "/bin/sh",
                                    "-c",
                                    inner,
                                    NULL};
        struct calls calls;
        char *cmd;

        make_tmp();
        install_fakes();
        cmd = provision_as_user("thopter", "/data/thopter", "echo hi");
        cr_expect(strstr(cmd, "su ") == NULL && strstr(cmd, " -l") == NULL &&
                      strncmp(cmd, "runuser -u thopter -- env -i ", 29) == 0,
                  "%s", cmd);
        free(cmd);

        cmd = provision_as_user("thopter", "/data/th opter", inner);
        cr_assert_not_null(cmd);
        cr_expect_eq(run_sh(cmd, NULL, 0), 0, "%s", cmd);
        read_calls(&calls);
        cr_assert_eq(calls.n, 1);
        expect_call(&calls.c[0], "runuser", want);
        expect_nothing_injected();
        free(calls.log);
        free(cmd);
}

/* ---- git ------------------------------------------------------------------
 */

Test(provision_context, git_command_quotes_every_value_and_reads_the_token) {
        const char *token = "ghp_token0000000000000000000000000001";
        const char *name = "O'Brien \"$(touch pwned)\" `touch pwned2`";
        const char *email = "bot@example.com;touch pwned3";
        const char *url = "https://github.com/o/r.git#$(touch pwned)";
        const char *repo = "r'$(touch pwned2)";
        char *ws, *cmd, *input, *out;
        struct calls calls;

        make_tmp();
        install_fakes();
        ws = path_in_tmp("work space/it's `x` $(y)");
        cmd = provision_git_command(name, email, ws, url, repo);
        cr_assert_not_null(cmd);
        cr_expect_null(strstr(cmd, token));
        cr_expect_eq(run_sh(cmd, NULL, 1), 0, "sh -n: %s", cmd);

        input = malloc(strlen(token) + 2);
        cr_assert(input);
        sprintf(input, "%s\n", token);
        cr_expect_eq(run_sh(cmd, input, 0), 0, "%s", cmd);
        read_calls(&calls);
        cr_assert_eq(calls.n, 6, "%d calls", calls.n);
        expect_call(&calls.c[0], "git",
                    (const char *const[]){"config", "--global", "user.name",
                                          name, NULL});
        expect_call(&calls.c[1], "git",
                    (const char *const[]){"config", "--global", "user.email",
                                          email, NULL});
        /* The credential helper, for the URL's host only, and only it: the
         * empty value first resets any helper (a system "store" would write
         * the token to disk). */
        const char *key = "credential.https://github.com.helper";
        const char *helper =
            "!f() { test \"$1\" = get || exit 0; echo username=x-access-token; "
            "echo \"password=${GITHUB_REPO_PAT}\"; }; f";
        expect_call(&calls.c[2], "git",
                    (const char *const[]){"config", "--global", "--unset-all",
                                          key, NULL});
        expect_call(&calls.c[3], "git",
                    (const char *const[]){"config", "--global", "--add", key,
                                          "", NULL});
        expect_call(&calls.c[4], "git",
                    (const char *const[]){"config", "--global", "--add", key,
                                          helper, NULL});
        /* Into a directory of this attempt's own (.thopter-clone.PID). */
        cr_expect_str_eq(calls.c[5].name, "git");
        cr_assert_eq(calls.c[5].argc, 4);
        cr_expect_str_eq(calls.c[5].argv[0], "clone");
        cr_expect_str_eq(calls.c[5].argv[2], url);
        cr_expect(strncmp(calls.c[5].argv[3], ".thopter-clone.", 15) == 0 &&
                      strspn(calls.c[5].argv[3] + 15, "0123456789") ==
                          strlen(calls.c[5].argv[3] + 15) &&
                      calls.c[5].argv[3][15],
                  "clone target %s", calls.c[5].argv[3]);
        /* The token reaches git through its environment only. */
        cr_expect_str_eq(calls.c[5].token, token);
        for (int i = 0; i < calls.n; i++)
                for (int k = 0; k < calls.c[i].argc; k++)
                        cr_expect_null(strstr(calls.c[i].argv[k], token));
        /* The clone landed in WORKSPACE/REPO. */
        {
                char *clone = malloc(strlen(ws) + strlen(repo) + 8);

                cr_assert(clone);
                sprintf(clone, "%s/%s/.git", ws, repo);
                cr_expect_eq(access(clone, F_OK), 0, "%s", clone);
                free(clone);
        }
        expect_nothing_injected();
        free(calls.log);

        /* Run again: already there, no second clone. */
        cr_assert_eq(unlink(getenv("FAKE_LOG")), 0);
        cr_expect_eq(run_sh(cmd, input, 0), 0, "%s", cmd);
        read_calls(&calls);
        /* Identity and helper again (idempotent), no clone. */
        cr_expect_eq(calls.n, 5, "%d calls", calls.n);
        out = read_tmp_file("out");
        cr_expect_not_null(strstr(out, "already cloned"), "%s", out);
        free(out);
        free(calls.log);
        free(input);
        free(cmd);
        free(ws);
}

/* ---- launch ---------------------------------------------------------------
 */

Test(provision_context, launch_types_the_expected_text) {
        const char *typed =
            "(cd '/data/thopter/workspace'/'thopter-swarm' && if [ -f "
            "../post-checkout.sh ]; then chmod +x ../post-checkout.sh && echo "
            "'Running post-checkout.sh...' && ../post-checkout.sh 2>&1 | tee "
            "-a '/thopter/log' || true; fi); cd '/data/thopter/workspace' && "
            "claude --dangerously-skip-permissions \"read ./prompt.md for "
            "your instructions\"";
        struct calls calls;
        char *cmd;

        make_tmp();
        install_fakes();
        cmd = provision_launch_command(
            "/data/thopter/workspace", "thopter-swarm", "/thopter/log",
            "claude --dangerously-skip-permissions \"read ./prompt.md for "
            "your instructions\"",
            "thopter");
        cr_assert_not_null(cmd);
        cr_expect_eq(run_sh(cmd, NULL, 1), 0, "sh -n: %s", cmd);
        cr_expect_eq(run_sh(cmd, NULL, 0), 0, "%s", cmd);
        read_calls(&calls);
        cr_assert_eq(calls.n, 2);
        expect_call(&calls.c[0], "tmux",
                    (const char *const[]){"send-keys", "-t", "thopter", "-l",
                                          typed, NULL});
        expect_call(
            &calls.c[1], "tmux",
            (const char *const[]){"send-keys", "-t", "thopter", "Enter", NULL});
        free(calls.log);
        free(cmd);
}

/* Hostile workspace, repository, log path and session: the typed text,
 * run as the thopter's shell would, does what it says and nothing else. */
Test(provision_context, launch_with_hostile_values_runs_only_what_it_says) {
        const char *repo = "r'$(touch pwned)";
        const char *session = "s'$(touch pwned2)";
        char *ws, *log, *dir, *script, *cmd, *got;
        struct calls calls;

        make_tmp();
        install_fakes();
        ws = path_in_tmp("ws \"$(touch pwned3)\" `x` it's");
        log = path_in_tmp("log $(touch pwned)");
        dir = malloc(strlen(ws) + strlen(repo) + 2);
        script = malloc(strlen(ws) + 32);
        cr_assert(dir && script);
        sprintf(dir, "%s/%s", ws, repo);
        cr_assert_eq(mkdir(ws, 0700), 0);
        cr_assert_eq(mkdir(dir, 0700), 0);
        sprintf(script, "%s/post-checkout.sh", ws);
        write_file(script, "#!/bin/sh\necho post-checkout ran in \"$PWD\"\n",
                   0600);

        cmd =
            provision_launch_command(ws, repo, log, "pwd > agent.out", session);
        cr_assert_not_null(cmd);
        cr_expect_eq(run_sh(cmd, NULL, 1), 0, "sh -n: %s", cmd);
        cr_expect_eq(run_sh(cmd, NULL, 0), 0, "%s", cmd);
        read_calls(&calls);
        cr_assert_eq(calls.n, 2);
        cr_assert_eq(calls.c[0].argc, 5);
        cr_expect_str_eq(calls.c[0].argv[2], session);
        cr_expect_str_eq(calls.c[1].argv[2], session);
        cr_expect_str_eq(calls.c[1].argv[3], "Enter");
        expect_nothing_injected();

        /* Type it: run the text the way the shell in tmux would. */
        cr_expect_eq(run_sh(calls.c[0].argv[4], NULL, 1), 0, "sh -n: %s",
                     calls.c[0].argv[4]);
        cr_expect_eq(run_sh(calls.c[0].argv[4], NULL, 0), 0, "%s",
                     calls.c[0].argv[4]);
        expect_nothing_injected();
        {
                size_t n;
                char *agent_out = malloc(strlen(ws) + 16);

                cr_assert(agent_out);
                sprintf(agent_out, "%s/agent.out", ws);
                got = test_slurp_str(agent_out, &n);
                free(agent_out);
        }
        cr_expect_eq(strncmp(got, ws, strlen(ws)), 0, "agent ran in %s", got);
        cr_expect_str_eq(got + strlen(ws), "\n");
        free(got);
        {
                size_t n;
                char *want = malloc(strlen(dir) + 64);

                cr_assert(want);
                sprintf(want, "post-checkout ran in %s\n", dir);
                got = test_slurp_str(log, &n);
                cr_expect_str_eq(got, want);
                free(want);
                free(got);
        }
        free(calls.log);
        free(cmd);
        free(script);
        free(dir);
        free(log);
        free(ws);
}

Test(provision_context, empty_values_become_empty_words) {
        char *cmd = provision_git_command("", "", "/w", "", "r");

        cr_assert_not_null(cmd);
        cr_expect_not_null(strstr(cmd, "user.name '' &&"), "%s", cmd);
        free(cmd);
}
