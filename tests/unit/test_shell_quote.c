/* test_shell_quote.c - shell_quote.c: exact quoted forms, and proof by
 * running /bin/sh (and bash, when present) on the quoted hostile inputs and
 * comparing what comes out with what went in, byte for byte. Local processes
 * only: no sockets, no sleeps. */
#define _GNU_SOURCE /* asprintf */
#include "shell_quote.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Inputs that would do something in a shell if they were not quoted right. */
static const char *const hostile[] = {
    "",
    "plain",
    "it's",
    "'",
    "''",
    "'\\''",
    "$(touch pwned-subst)",
    "`touch pwned-backtick`",
    "a\nb",
    "trailing newline\n",
    "\n",
    "back\\slash\\",
    "\\'",
    "$HOME ${IFS} $1 $@ $$",
    "* ? [a-z] ~ ~root",
    "-n",
    "--",
    "!! !$ history",
    "a b\tc  d",
    "\"double\" 'single' \"mixed'\"",
    "; touch pwned-semi; #",
    "| & && || < > >> 2>&1",
    "%s %n %d\\n",
    "ünïcødé ✓ 日本語 🚀",
    "\x01\x02\x1b[31m\x7f\xfe\xff",
    "${x:-$(touch pwned-default)}",
    "'; touch pwned-break; echo '",
};
#define NHOSTILE (sizeof(hostile) / sizeof(hostile[0]))

/* Run argv with cwd @p dir (NULL = current) and PATH @p path (NULL = keep);
 * return its stdout (malloc'd, *len bytes) and exit status in *status. */
static char *run_capture(char *const argv[],
                         const char *dir,
                         const char *path,
                         size_t *len,
                         int *status) {
        int fds[2];
        pid_t pid;
        char *buf = NULL;
        size_t cap = 0, n = 0;

        cr_assert(pipe(fds) == 0);
        pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
                dup2(fds[1], 1);
                close(fds[0]);
                close(fds[1]);
                if (dir && chdir(dir) != 0)
                        _exit(126);
                if (path)
                        setenv("PATH", path, 1);
                execv(argv[0], argv);
                _exit(127);
        }
        close(fds[1]);
        for (;;) {
                ssize_t r;
                if (n + 4096 > cap) {
                        cap = cap ? cap * 2 : 8192;
                        buf = realloc(buf, cap);
                        cr_assert(buf);
                }
                r = read(fds[0], buf + n, cap - n);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        break;
                n += (size_t)r;
        }
        close(fds[0]);
        cr_assert(waitpid(pid, status, 0) == pid);
        *len = n;
        return buf;
}

static void assert_no_pwned(const char *dir) {
        const char *marks[] = {"pwned-subst", "pwned-backtick", "pwned-semi",
                               "pwned-default", "pwned-break"};
        char p[512];

        for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
                snprintf(p, sizeof(p), "%s/%s", dir, marks[i]);
                cr_assert(access(p, F_OK) != 0, "%s was created", p);
        }
}

/* Echo every hostile input through `SHELL -c "printf %s <quoted>"`. */
static void roundtrip_with(const char *shell) {
        char dir[] = "/tmp/test_shell_quote.XXXXXX";

        cr_assert(mkdtemp(dir));
        for (size_t i = 0; i < NHOSTILE; i++) {
                char *q = shell_quote(hostile[i]);
                char *cmd = NULL;
                size_t len = 0;
                int status = -1;
                char *out;

                cr_assert(q);
                cr_assert(asprintf(&cmd, "printf %%s %s", q) > 0);
                out =
                    run_capture((char *const[]){(char *)shell, "-c", cmd, NULL},
                                dir, NULL, &len, &status);
                cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                          "%s: case %zu exited %d", shell, i, status);
                cr_expect(len == strlen(hostile[i]) &&
                              memcmp(out ? out : "", hostile[i], len) == 0,
                          "%s: case %zu: got %zu bytes, want %zu", shell, i,
                          len, strlen(hostile[i]));
                free(out);
                free(cmd);
                free(q);
        }
        assert_no_pwned(dir);
        rmdir(dir);
}

Test(shell_quote, exact_forms) {
        static const struct {
                const char *in, *want;
        } cases[] = {
            {"", "''"},
            {"abc", "'abc'"},
            {"it's", "'it'\\''s'"},
            {"'", "''\\'''"},
            {"$(id)", "'$(id)'"},
            {"`id`", "'`id`'"},
            {"a\nb", "'a\nb'"},
            {"back\\slash", "'back\\slash'"},
            {"日本", "'日本'"},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char *q = shell_quote(cases[i].in);
                cr_assert(q);
                cr_expect_str_eq(q, cases[i].want, "case %zu", i);
                free(q);
        }
}

Test(shell_quote, sh_prints_every_hostile_input_unchanged) {
        roundtrip_with("/bin/sh");
}

Test(shell_quote, bash_prints_every_hostile_input_unchanged) {
        if (access("/bin/bash", X_OK) != 0)
                cr_skip_test("no /bin/bash");
        roundtrip_with("/bin/bash");
}

/* The quoted word is safe as a word of the command line a shell reads, and
 * only there: written inside double quotes of an enclosing sh -c (what
 * shell_quote.h once promised was safe) the outer shell runs its $(…). */
Test(shell_quote, safe_as_a_word_unsafe_inside_double_quotes) {
        const char *payload = "$(echo RAN)'`echo RAN`'";
        char *word = shell_quote(payload);
        char *inner = NULL, *safe_q = NULL, *safe = NULL, *unsafe = NULL;
        size_t len = 0;
        int status;
        char *out;

        cr_assert(word);
        /* safe: the inner command line, quoted once more for the outer sh */
        cr_assert(asprintf(&inner, "printf %%s %s", word) > 0);
        safe_q = shell_quote(inner);
        cr_assert(safe_q);
        cr_assert(asprintf(&safe, "sh -c %s", safe_q) > 0);
        out = run_capture((char *const[]){"/bin/sh", "-c", safe, NULL}, NULL,
                          NULL, &len, &status);
        cr_expect(len == strlen(payload) && memcmp(out, payload, len) == 0,
                  "safe form printed %.*s", (int)len, out);
        free(out);

        /* unsafe: the same word inside double quotes */
        cr_assert(asprintf(&unsafe, "sh -c \"printf %%s %s\"", word) > 0);
        out = run_capture((char *const[]){"/bin/sh", "-c", unsafe, NULL}, NULL,
                          NULL, &len, &status);
        cr_expect(len != strlen(payload) || memcmp(out, payload, len) != 0,
                  "double quotes kept the payload literal: %.*s", (int)len,
                  out);
        cr_expect(memmem(out, len, "RAN", 3) != NULL,
                  "the outer shell did not run the payload: %.*s", (int)len,
                  out);
        free(out);
        free(word);
        free(inner);
        free(safe_q);
        free(safe);
        free(unsafe);
}

Test(shell_quote, su_command_shape) {
        char *s = shell_su_command("thopter", "echo 'a b'");

        cr_assert(s);
        cr_assert_str_eq(s, "su - thopter -c 'echo '\\''a b'\\'''");
        free(s);
        errno = 0;
        cr_assert_null(shell_su_command("-root", "id"));
        cr_assert_eq(errno, EINVAL);
        cr_assert_null(shell_su_command("a b", "id"));
        cr_assert_null(shell_su_command("", "id"));
}

/* The inner command is quoted once for the outer shell and su hands it to the
 * user's shell: a fake `su` that runs `sh -c "$4"` must reproduce each
 * hostile input exactly, and nothing may run. */
Test(shell_quote, su_command_double_quoting_roundtrips) {
        char dir[] = "/tmp/test_su_quote.XXXXXX";
        char su[600], path[700];
        FILE *f;

        cr_assert(mkdtemp(dir));
        snprintf(su, sizeof(su), "%s/su", dir);
        f = fopen(su, "w");
        cr_assert(f);
        fputs("#!/bin/sh\n"
              "[ \"$1\" = - ] && [ \"$2\" = nobody ] && [ \"$3\" = -c ] "
              "&& [ $# -eq 4 ] || exit 99\n"
              "exec /bin/sh -c \"$4\"\n",
              f);
        fclose(f);
        cr_assert(chmod(su, 0755) == 0);
        snprintf(path, sizeof(path), "%s:/usr/bin:/bin", dir);

        for (size_t i = 0; i < NHOSTILE; i++) {
                char *q = shell_quote(hostile[i]);
                char *inner = NULL, *cmd;
                size_t len = 0;
                int status = -1;
                char *out;

                cr_assert(q);
                cr_assert(asprintf(&inner, "printf %%s %s", q) > 0);
                cmd = shell_su_command("nobody", inner);
                cr_assert(cmd);
                out = run_capture((char *const[]){"/bin/sh", "-c", cmd, NULL},
                                  dir, path, &len, &status);
                cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                          "case %zu exited %d", i, status);
                cr_expect(len == strlen(hostile[i]) &&
                              memcmp(out ? out : "", hostile[i], len) == 0,
                          "case %zu: got %zu bytes, want %zu", i, len,
                          strlen(hostile[i]));
                free(out);
                free(cmd);
                free(inner);
                free(q);
        }
        assert_no_pwned(dir);
        unlink(su);
        rmdir(dir);
}

Test(shell_quote, name_is_safe_table) {
        static const struct {
                const char *name;
                int safe;
        } cases[] = {
            {"thopter", 1},    {"my-repo.v2_x", 1}, {"A9", 1},
            {".hidden", 1},    {"a..b", 1},         {"", 0},
            {".", 0},          {"..", 0},           {"-rf", 0},
            {"a/b", 0},        {"a b", 0},          {"$(id)", 0},
            {"a'b", 0},        {"a\nb", 0},         {"ünï", 0},
            {"semi;colon", 0}, {"back\\", 0},       {"`x`", 0},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                cr_expect_eq(shell_name_is_safe(cases[i].name), cases[i].safe,
                             "case %zu (%s)", i, cases[i].name);
        cr_expect_eq(shell_name_is_safe(NULL), 0);

        char longname[300];
        memset(longname, 'a', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = '\0';
        cr_expect_eq(shell_name_is_safe(longname), 0);
        longname[255] = '\0';
        cr_expect_eq(shell_name_is_safe(longname), 1);
}
