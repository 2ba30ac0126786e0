/* test_remote_exec.c - remote_exec.c, remote_sftp.c and remote_pipe.c against
 * a real OpenSSH sshd on loopback (remote_helpers.h): commands with their
 * output, stdin and timeouts, atomic uploads, tar piped between two hosts,
 * and remote stderr redacted before it is cut.
 */
#define _GNU_SOURCE /* asprintf */
#include "remote_helpers.h"

#include "clock.h"
#include "log.h"
#include "metrics.h"

#include <criterion/criterion.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int count_entries_with(const char *dir, const char *needle) {
        DIR *d = opendir(dir);
        struct dirent *e;
        int n = 0;

        cr_assert(d);
        while ((e = readdir(d)))
                if (strstr(e->d_name, needle))
                        n++;
        closedir(d);
        return n;
}

static void fill_pattern(unsigned char *p, size_t n, unsigned seed) {
        for (size_t i = 0; i < n; i++) {
                seed = seed * 1103515245u + 12345u;
                p[i] = (unsigned char)(seed >> 16);
        }
}

static void setup_two(void) {
        harness_start(&h1, "127.0.0.2", 0);
        harness_start(&h2, "127.0.0.3", 0);
}

TestSuite(remote, .fini = teardown, .timeout = 120);

Test(remote, run_returns_output_and_exit_status, .init = setup_one) {
        struct remote_conn *c = connect_ok(&h1);
        struct remote_result res = {0};
        struct err err = {0};

        assert_ok(remote_run(c, "echo hi; echo oops >&2; exit 3", NULL, 0,
                             test_ms(10000), &res, &err),
                  &err);
        cr_expect_eq(res.exit_status, 3);
        cr_expect_eq(res.out_len, 3);
        cr_expect_str_eq(res.out, "hi\n");
        cr_expect_str_eq(res.errout, "oops\n");
        cr_expect_eq(res.truncated, 0);
        remote_result_free(&res);

        /* One connection, many commands (one channel each). */
        for (int i = 0; i < 20; i++) {
                char cmd[64], want[16];
                snprintf(cmd, sizeof(cmd), "printf %%d %d", i);
                snprintf(want, sizeof(want), "%d", i);
                assert_ok(
                    remote_run(c, cmd, NULL, 0, test_ms(10000), &res, &err),
                    &err);
                cr_expect_eq(res.exit_status, 0);
                cr_expect_str_eq(res.out, want);
                remote_result_free(&res);
        }
        /* A command killed by a signal reports 128+N. */
        assert_ok(
            remote_run(c, "kill -TERM $$", NULL, 0, test_ms(10000), &res, &err),
            &err);
        cr_expect_eq(res.exit_status, 128 + 15);
        remote_result_free(&res);

        cr_expect_eq(metrics_get(M_SSH_CONNECTIONS, "result=\"ok\""), 1);
        cr_expect_eq(metrics_get(M_SSH_COMMANDS, ""), 22);
        remote_close(c);
}

Test(remote, stdin_data_reaches_the_command, .init = setup_one) {
        struct remote_conn *c = connect_ok(&h1);
        struct remote_result res = {0};
        struct err err = {0};
        size_t n = 3 * 1024 * 1024 + 17; /* more than the SSH windows */
        unsigned char *data = malloc(n);

        cr_assert(data);
        fill_pattern(data, n, 7);
        assert_ok(remote_run(c, "cat", data, n, test_ms(30000), &res, &err),
                  &err);
        cr_expect_eq(res.exit_status, 0);
        /* stdout is capped at 1 MiB: the tail is kept */
        cr_assert_eq(res.out_len, (size_t)REMOTE_OUTPUT_CAP);
        cr_expect_eq(res.truncated, 1);
        cr_expect(memcmp(res.out, data + n - REMOTE_OUTPUT_CAP,
                         REMOTE_OUTPUT_CAP) == 0);
        remote_result_free(&res);

        assert_ok(remote_run(c, "wc -c", data, n, test_ms(30000), &res, &err),
                  &err);
        cr_expect_eq(atol(res.out), (long)n);
        remote_result_free(&res);

        assert_ok(
            remote_run(c, "cat", "hello\n", 6, test_ms(10000), &res, &err),
            &err);
        cr_expect_str_eq(res.out, "hello\n");
        remote_result_free(&res);

        /* No stdin at all: EOF is still sent, so cat ends. */
        assert_ok(remote_run(c, "cat; echo done", NULL, 0, test_ms(10000), &res,
                             &err),
                  &err);
        cr_expect_str_eq(res.out, "done\n");
        remote_result_free(&res);

        /* The command ignores its input and exits: not an error. */
        assert_ok(remote_run(c, "exec 0<&-; echo early", data, n,
                             test_ms(10000), &res, &err),
                  &err);
        cr_expect_str_eq(res.out, "early\n");
        remote_result_free(&res);
        free(data);
        remote_close(c);
}

Test(remote, command_timeout_fails_fast, .init = setup_one) {
        struct remote_conn *c = connect_ok(&h1);
        struct remote_result res = {0};
        struct err err = {0};
        int64_t t0 = clock_mono_ms(), took;

        cr_assert_eq(remote_run(c, "sleep 30", NULL, 0, 500, &res, &err), -1);
        took = clock_mono_ms() - t0;
        cr_expect_eq(err.kind, ERR_TRANSIENT);
        cr_expect(strstr(err.msg, "timed out"), "msg: %s", err.msg);
        cr_expect_eq(err.cause, ERR_CAUSE_DEADLINE);
        cr_expect(took >= 450 && took < test_ms(1200), "took %lld ms",
                  (long long)took);
        cr_expect_null(res.out);
        fprintf(stderr,
                "remote: 500 ms command timeout returned after "
                "%lld ms\n",
                (long long)took);

        /* The connection either still works or says at once that it does
         * not (transient), so the caller reconnects. */
        err_clear(&err);
        t0 = clock_mono_ms();
        if (remote_run(c, "echo after", NULL, 0, test_ms(10000), &res, &err) ==
            0) {
                cr_expect_str_eq(res.out, "after\n");
                remote_result_free(&res);
        } else {
                cr_expect_eq(err.kind, ERR_TRANSIENT, "%s", err.msg);
                cr_expect(clock_mono_ms() - t0 < 100);
        }
        t0 = clock_mono_ms();
        remote_close(c);
        cr_expect(clock_mono_ms() - t0 < test_ms(2000), "close took too long");
}

Test(remote, upload_is_atomic_with_mode, .init = setup_one) {
        struct remote_conn *c = connect_ok(&h1);
        struct err err = {0};
        char *path = NULL, *got;
        size_t n = 200 * 1024 + 3, len = 0;
        unsigned char *data = malloc(n);
        struct stat st;

        cr_assert(data);
        fill_pattern(data, n, 42);
        cr_assert(asprintf(&path, "%s/up load's.bin", h1.dir) > 0);

        assert_ok(remote_upload(c, path, data, n, 0640, test_ms(20000), &err),
                  &err);
        cr_assert(stat(path, &st) == 0, "%s missing", path);
        cr_expect_eq(st.st_mode & 07777, 0640, "mode %o", st.st_mode & 07777);
        got = test_slurp_str(path, &len);
        cr_expect(len == n && memcmp(got, data, n) == 0, "content differs");
        free(got);
        cr_expect_eq(count_entries_with(h1.dir, ".tmp-"), 0);

        /* Replacing an existing file (SFTP v3 rename cannot; mv -f does). */
        assert_ok(
            remote_upload(c, path, "new\n", 4, 0600, test_ms(20000), &err),
            &err);
        cr_assert(stat(path, &st) == 0);
        cr_expect_eq(st.st_mode & 07777, 0600, "mode %o", st.st_mode & 07777);
        got = test_slurp_str(path, &len);
        cr_expect(len == 4 && memcmp(got, "new\n", 4) == 0);
        free(got);
        cr_expect_eq(count_entries_with(h1.dir, ".tmp-"), 0);

        /* Empty file, mode with group/other bits the umask would drop. */
        free(path);
        cr_assert(asprintf(&path, "%s/empty", h1.dir) > 0);
        assert_ok(remote_upload(c, path, "", 0, 0666, test_ms(20000), &err),
                  &err);
        cr_assert(stat(path, &st) == 0);
        cr_expect_eq(st.st_size, 0);
        cr_expect_eq(st.st_mode & 07777, 0666);

        /* A missing directory is permanent, and leaves nothing behind. */
        free(path);
        cr_assert(asprintf(&path, "%s/no/such/dir/f", h1.dir) > 0);
        cr_assert_eq(remote_upload(c, path, "x", 1, 0644, test_ms(20000), &err),
                     -1);
        cr_expect_eq(err.kind, ERR_PERMANENT);
        cr_expect(strstr(err.msg, "no such file"), "msg: %s", err.msg);

        /* And the connection is still fine. */
        struct remote_result res = {0};
        err_clear(&err);
        assert_ok(remote_run(c, "echo ok", NULL, 0, test_ms(10000), &res, &err),
                  &err);
        cr_expect_str_eq(res.out, "ok\n");
        remote_result_free(&res);
        free(path);
        free(data);
        remote_close(c);
}

Test(remote, pipe_streams_tar_between_hosts, .init = setup_two) {
        struct remote_conn *a = connect_ok(&h1), *b = connect_ok(&h2);
        struct err err = {0};
        char src[300], dst[300], p[400], *cmd_src = NULL, *cmd_dst = NULL;
        size_t n = 700 * 1024, len;
        unsigned char *big = malloc(n);
        char *got;

        cr_assert(big);
        fill_pattern(big, n, 99); /* incompressible: real streaming */
        snprintf(src, sizeof(src), "%s/src", h1.dir);
        snprintf(dst, sizeof(dst), "%s/dst", h2.dir);
        cr_assert(mkdir(src, 0755) == 0 && mkdir(dst, 0755) == 0);
        snprintf(p, sizeof(p), "%s/sub", src);
        cr_assert(mkdir(p, 0700) == 0);
        snprintf(p, sizeof(p), "%s/a.txt", src);
        write_file(p, "alpha\n", 6);
        snprintf(p, sizeof(p), "%s/sub/big.bin", src);
        write_file(p, big, n);

        cr_assert(asprintf(&cmd_src, "tar czf - -C %s .", src) > 0);
        cr_assert(asprintf(&cmd_dst, "tar xzf - -C %s", dst) > 0);
        int64_t t0 = clock_mono_ms();
        assert_ok(remote_pipe(a, cmd_src, b, cmd_dst, test_ms(30000), &err),
                  &err);
        fprintf(stderr, "remote: piped %zu KiB of tar.gz in %lld ms\n",
                n / 1024, (long long)(clock_mono_ms() - t0));

        snprintf(p, sizeof(p), "%s/a.txt", dst);
        got = test_slurp_str(p, &len);
        cr_expect(len == 6 && memcmp(got, "alpha\n", 6) == 0);
        free(got);
        snprintf(p, sizeof(p), "%s/sub/big.bin", dst);
        got = test_slurp_str(p, &len);
        cr_expect(len == n && memcmp(got, big, n) == 0);
        free(got);

        /* A failing source is reported as such, permanent. */
        err_clear(&err);
        cr_assert_eq(remote_pipe(a, "echo nope >&2; exit 2", b,
                                 "cat >/dev/null", test_ms(10000), &err),
                     -1);
        cr_expect_eq(err.kind, ERR_PERMANENT);
        cr_expect_eq(err.code, 2);
        cr_expect(strstr(err.msg, "source") && strstr(err.msg, "nope"),
                  "msg: %s", err.msg);

        /* A failing destination, while the source keeps writing. */
        err_clear(&err);
        cr_assert_eq(remote_pipe(a, "head -c 5000000 /dev/zero", b, "exit 4",
                                 test_ms(10000), &err),
                     -1);
        cr_expect_eq(err.kind, ERR_PERMANENT);
        cr_expect_eq(err.code, 4, "msg: %s", err.msg);
        cr_expect(strstr(err.msg, "destination"), "msg: %s", err.msg);

        /* Same connection at both ends works too. */
        err_clear(&err);
        assert_ok(remote_pipe(a, "printf abc", a, "cat > /dev/null",
                              test_ms(10000), &err),
                  &err);

        free(cmd_src);
        free(cmd_dst);
        free(big);
        remote_close(a);
        remote_close(b);
}

Test(remote, pipe_times_out, .init = setup_two) {
        struct remote_conn *a = connect_ok(&h1), *b = connect_ok(&h2);
        struct err err = {0};
        int64_t t0 = clock_mono_ms(), took;

        cr_assert_eq(remote_pipe(a, "sleep 30", b, "cat", 500, &err), -1);
        took = clock_mono_ms() - t0;
        cr_expect_eq(err.kind, ERR_TRANSIENT);
        cr_expect(strstr(err.msg, "timed out"), "msg: %s", err.msg);
        cr_expect_eq(err.cause, ERR_CAUSE_DEADLINE);
        cr_expect(took < test_ms(1500), "took %lld ms", (long long)took);
        remote_close(a);
        remote_close(b);
}

/* Issue 12, point 5: remote stderr is redacted first and cut after. A
 * secret longer than the kept tail, printed last, straddles the cut: cutting
 * first left its end in the message, where no registered secret matched. */
static const char *long_secret(void) {
        static char s[301];
        if (!s[0]) {
                for (int i = 0; i < 300; i++)
                        s[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[(i * 7) %
                                                                      36];
                memcpy(s, "ghp_", 4);
        }
        return s;
}

/* No 8-byte run of the secret anywhere in @p text. */
static void assert_no_fragment(const char *text, const char *secret) {
        size_t n = strlen(secret);
        for (size_t i = 0; i + 8 <= n; i++) {
                char frag[9];
                memcpy(frag, secret + i, 8);
                frag[8] = '\0';
                cr_assert(strstr(text, frag) == NULL,
                          "fragment \"%s\" of the secret in \"%s\"", frag,
                          text);
        }
}

Test(remote, stderr_tail_is_redacted_before_it_is_cut, .init = setup_one) {
        struct remote_conn *c = connect_ok(&h1);
        struct remote_result res = {0};
        struct err err = {0};
        char tail[160], *cmd = NULL;

        log_add_secret(long_secret());
        cr_assert(asprintf(&cmd, "printf 'token: %s' >&2; exit 5",
                           long_secret()) > 0);
        assert_ok(remote_run(c, cmd, NULL, 0, test_ms(10000), &res, &err),
                  &err);
        cr_expect_eq(res.exit_status, 5);
        remote_result_tail(&res, tail, sizeof(tail));
        cr_expect(strstr(tail, "[REDACTED]") != NULL, "%s", tail);
        assert_no_fragment(tail, long_secret());
        remote_result_free(&res);

        /* The same through a pipe whose source fails: the error message. */
        struct remote_conn *d = connect_ok(&h1);
        free(cmd);
        cr_assert(asprintf(&cmd, "printf 'x %s' >&2; exit 7", long_secret()) >
                  0);
        cr_expect_eq(
            remote_pipe(c, cmd, d, "cat >/dev/null", test_ms(10000), &err), -1);
        cr_expect(strstr(err.msg, "[REDACTED]") != NULL, "%s", err.msg);
        assert_no_fragment(err.msg, long_secret());
        free(cmd);
        remote_close(d);
        remote_close(c);
        log_clear_secrets();
}
