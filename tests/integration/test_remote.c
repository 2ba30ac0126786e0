/* test_remote.c - the remote_*.c files against a real OpenSSH sshd on loopback.
 *
 * Each test starts its own sshd(s) through tests/harness/sshd_harness.py
 * (CLI mode: first stdout line PORT=… KEY=… KNOWN_HOSTS=…; it stops sshd when
 * its stdin closes). The .fini fixture closes that stdin and reaps the
 * harness, so sshd goes away on failure too; if the test process dies
 * outright, the closed pipe stops sshd just the same.
 *
 * sshd runs locally, so files it writes are checked on the local filesystem.
 */
#define _GNU_SOURCE /* asprintf, pipe2 */
#include "remote.h"

#include "clock.h"
#include "log.h"
#include "metrics.h"

#include <criterion/criterion.h>
#include <openssl/evp.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef HARNESS_DIR
#error "HARNESS_DIR must point at tests/harness"
#endif

#define assert_ok(call, err) cr_assert((call) == 0, "%s: %s", #call, (err)->msg)

struct harness {
        pid_t pid;
        int to_fd;   /* its stdin: closing it stops sshd */
        int from_fd; /* its stdout */
        int port;
        char addr[32];
        char dir[256];
        char key[512];
        char known_hosts[512];
        char user[64];
};

static struct harness h1 = {.pid = -1, .to_fd = -1, .from_fd = -1};
static struct harness h2 = {.pid = -1, .to_fd = -1, .from_fd = -1};

static long tmo(long ms) {
        const char *m = getenv("THOPTER_TIMEOUT_MULTIPLIER");
        long k = m ? atol(m) : 1;
        return ms * (k > 0 ? k : 1);
}

static int
rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
        (void)sb;
        (void)type;
        (void)ftw;
        remove(path);
        return 0;
}

static void rm_rf(const char *dir) {
        if (dir[0])
                nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void
copy_field(const char *line, const char *name, char *out, size_t cap) {
        const char *p = strstr(line, name);
        size_t n = 0;

        cr_assert(p, "harness line has no %s: %s", name, line);
        p += strlen(name);
        while (p[n] && p[n] != ' ' && p[n] != '\n')
                n++;
        cr_assert(n < cap);
        memcpy(out, p, n);
        out[n] = '\0';
}

/* Start the harness on @p addr; @p delay_ms > 0 starts sshd only that long
 * after the line is printed (the port is already fixed). */
static void harness_start(struct harness *h, const char *addr, long delay_ms) {
        int in[2], out[2];
        char line[2048], port[16], delay[32];
        size_t n = 0;
        int64_t deadline = clock_mono_ms() + tmo(20000);

        snprintf(h->addr, sizeof(h->addr), "%s", addr);
        snprintf(h->dir, sizeof(h->dir), "/tmp/ssh-client-test.XXXXXX");
        cr_assert(mkdtemp(h->dir));
        cr_assert(pipe2(in, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0);
        snprintf(delay, sizeof(delay), "%ld", delay_ms);
        h->pid = fork();
        cr_assert(h->pid >= 0);
        if (h->pid == 0) {
                dup2(in[0], 0);
                dup2(out[1], 1);
                execl("/usr/bin/python3", "python3",
                      HARNESS_DIR "/sshd_harness.py", "--addr", addr, "--dir",
                      h->dir, "--start-delay-ms", delay, (char *)NULL);
                _exit(127);
        }
        close(in[0]);
        close(out[1]);
        h->to_fd = in[1];
        h->from_fd = out[0];
        while (n < sizeof(line) - 1 && !memchr(line, '\n', n)) {
                struct pollfd p = {.fd = h->from_fd, .events = POLLIN};
                int64_t left = deadline - clock_mono_ms();
                ssize_t r;

                cr_assert(left > 0, "harness did not print its line in time");
                if (poll(&p, 1, (int)left) <= 0)
                        continue;
                r = read(h->from_fd, line + n, 1); /* no over-read */
                cr_assert(r > 0, "harness exited before printing its line");
                n += (size_t)r;
                line[n] = '\0';
        }
        line[n] = '\0';
        copy_field(line, "PORT=", port, sizeof(port));
        h->port = atoi(port);
        copy_field(line, "KEY=", h->key, sizeof(h->key));
        copy_field(line, "KNOWN_HOSTS=", h->known_hosts,
                   sizeof(h->known_hosts));
        copy_field(line, "USER=", h->user, sizeof(h->user));
}

static void harness_stop(struct harness *h) {
        int status;

        if (h->to_fd >= 0)
                close(h->to_fd);
        if (h->pid > 0) {
                int64_t deadline = clock_mono_ms() + 10000;
                while (waitpid(h->pid, &status, WNOHANG) == 0) {
                        if (clock_mono_ms() > deadline) {
                                kill(h->pid, SIGKILL);
                                waitpid(h->pid, &status, 0);
                                break;
                        }
                        clock_sleep_ms(10);
                }
        }
        if (h->from_fd >= 0)
                close(h->from_fd);
        rm_rf(h->dir);
        h->pid = -1;
        h->to_fd = h->from_fd = -1;
        h->dir[0] = '\0';
}

static struct remote_opts opts_for(const struct harness *h) {
        struct remote_opts o = {
            .host = h->addr,
            .port = h->port,
            .user = h->user,
            .key_path = h->key,
            .known_hosts_path = h->known_hosts,
            .insecure = 0,
            .connect_timeout_ms = tmo(5000),
        };
        return o;
}

static struct remote_conn *connect_ok(const struct harness *h) {
        struct remote_opts o = opts_for(h);
        struct err err = {0};
        struct remote_conn *c = remote_connect(&o, &err);

        cr_assert(c, "connect to %s:%d: %s", h->addr, h->port, err.msg);
        return c;
}

static char *read_file(const char *path, size_t *len) {
        FILE *f = fopen(path, "rb");
        char *buf;
        long n;

        if (!f)
                return NULL;
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        fseek(f, 0, SEEK_SET);
        buf = malloc((size_t)n + 1);
        cr_assert(buf);
        cr_assert(fread(buf, 1, (size_t)n, f) == (size_t)n);
        fclose(f);
        buf[n] = '\0';
        *len = (size_t)n;
        return buf;
}

static void write_file(const char *path, const void *data, size_t len) {
        FILE *f = fopen(path, "wb");

        cr_assert(f, "%s: %s", path, strerror(errno));
        cr_assert(fwrite(data, 1, len, f) == len);
        fclose(f);
}

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

/* A port on which nothing listens (bound, then closed). */
static int closed_port(void) {
        struct sockaddr_in a = {.sin_family = AF_INET};
        socklen_t sl = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM, 0), port;

        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        cr_assert(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
        cr_assert(getsockname(fd, (struct sockaddr *)&a, &sl) == 0);
        port = ntohs(a.sin_port);
        close(fd);
        return port;
}

static void fill_pattern(unsigned char *p, size_t n, unsigned seed) {
        for (size_t i = 0; i < n; i++) {
                seed = seed * 1103515245u + 12345u;
                p[i] = (unsigned char)(seed >> 16);
        }
}

/* fixtures ------------------------------------------------------------- */

static void setup_one(void) {
        harness_start(&h1, "127.0.0.2", 0);
}

static void setup_two(void) {
        harness_start(&h1, "127.0.0.2", 0);
        harness_start(&h2, "127.0.0.3", 0);
}

static void setup_late(void) {
        harness_start(&h1, "127.0.0.4", 1500);
}

static void teardown(void) {
        harness_stop(&h1);
        harness_stop(&h2);
}

TestSuite(remote, .fini = teardown, .timeout = 120);

/* tests ---------------------------------------------------------------- */

/* remote_connect_until() as a yes/no: the connection is closed again. */
static int
connect_until(const struct remote_opts *o, int64_t deadline, struct err *err) {
        struct remote_conn *c = remote_connect_until(o, deadline, NULL, err);
        remote_close(c);
        return c ? 0 : -1;
}

Test(remote, run_returns_output_and_exit_status, .init = setup_one) {
        struct remote_conn *c = connect_ok(&h1);
        struct remote_result res = {0};
        struct err err = {0};

        assert_ok(remote_run(c, "echo hi; echo oops >&2; exit 3", NULL, 0,
                             tmo(10000), &res, &err),
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
                assert_ok(remote_run(c, cmd, NULL, 0, tmo(10000), &res, &err),
                          &err);
                cr_expect_eq(res.exit_status, 0);
                cr_expect_str_eq(res.out, want);
                remote_result_free(&res);
        }
        /* A command killed by a signal reports 128+N. */
        assert_ok(
            remote_run(c, "kill -TERM $$", NULL, 0, tmo(10000), &res, &err),
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
        assert_ok(remote_run(c, "cat", data, n, tmo(30000), &res, &err), &err);
        cr_expect_eq(res.exit_status, 0);
        /* stdout is capped at 1 MiB: the tail is kept */
        cr_assert_eq(res.out_len, (size_t)REMOTE_OUTPUT_CAP);
        cr_expect_eq(res.truncated, 1);
        cr_expect(memcmp(res.out, data + n - REMOTE_OUTPUT_CAP,
                         REMOTE_OUTPUT_CAP) == 0);
        remote_result_free(&res);

        assert_ok(remote_run(c, "wc -c", data, n, tmo(30000), &res, &err),
                  &err);
        cr_expect_eq(atol(res.out), (long)n);
        remote_result_free(&res);

        assert_ok(remote_run(c, "cat", "hello\n", 6, tmo(10000), &res, &err),
                  &err);
        cr_expect_str_eq(res.out, "hello\n");
        remote_result_free(&res);

        /* No stdin at all: EOF is still sent, so cat ends. */
        assert_ok(
            remote_run(c, "cat; echo done", NULL, 0, tmo(10000), &res, &err),
            &err);
        cr_expect_str_eq(res.out, "done\n");
        remote_result_free(&res);

        /* The command ignores its input and exits: not an error. */
        assert_ok(remote_run(c, "exec 0<&-; echo early", data, n, tmo(10000),
                             &res, &err),
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
        cr_expect(took >= 450 && took < tmo(1200), "took %lld ms",
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
        if (remote_run(c, "echo after", NULL, 0, tmo(10000), &res, &err) == 0) {
                cr_expect_str_eq(res.out, "after\n");
                remote_result_free(&res);
        } else {
                cr_expect_eq(err.kind, ERR_TRANSIENT, "%s", err.msg);
                cr_expect(clock_mono_ms() - t0 < 100);
        }
        t0 = clock_mono_ms();
        remote_close(c);
        cr_expect(clock_mono_ms() - t0 < tmo(2000), "close took too long");
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

        assert_ok(remote_upload(c, path, data, n, 0640, tmo(20000), &err),
                  &err);
        cr_assert(stat(path, &st) == 0, "%s missing", path);
        cr_expect_eq(st.st_mode & 07777, 0640, "mode %o", st.st_mode & 07777);
        got = read_file(path, &len);
        cr_assert(got);
        cr_expect(len == n && memcmp(got, data, n) == 0, "content differs");
        free(got);
        cr_expect_eq(count_entries_with(h1.dir, ".tmp-"), 0);

        /* Replacing an existing file (SFTP v3 rename cannot; mv -f does). */
        assert_ok(remote_upload(c, path, "new\n", 4, 0600, tmo(20000), &err),
                  &err);
        cr_assert(stat(path, &st) == 0);
        cr_expect_eq(st.st_mode & 07777, 0600, "mode %o", st.st_mode & 07777);
        got = read_file(path, &len);
        cr_expect(len == 4 && memcmp(got, "new\n", 4) == 0);
        free(got);
        cr_expect_eq(count_entries_with(h1.dir, ".tmp-"), 0);

        /* Empty file, mode with group/other bits the umask would drop. */
        free(path);
        cr_assert(asprintf(&path, "%s/empty", h1.dir) > 0);
        assert_ok(remote_upload(c, path, "", 0, 0666, tmo(20000), &err), &err);
        cr_assert(stat(path, &st) == 0);
        cr_expect_eq(st.st_size, 0);
        cr_expect_eq(st.st_mode & 07777, 0666);

        /* A missing directory is permanent, and leaves nothing behind. */
        free(path);
        cr_assert(asprintf(&path, "%s/no/such/dir/f", h1.dir) > 0);
        cr_assert_eq(remote_upload(c, path, "x", 1, 0644, tmo(20000), &err),
                     -1);
        cr_expect_eq(err.kind, ERR_PERMANENT);
        cr_expect(strstr(err.msg, "no such file"), "msg: %s", err.msg);

        /* And the connection is still fine. */
        struct remote_result res = {0};
        err_clear(&err);
        assert_ok(remote_run(c, "echo ok", NULL, 0, tmo(10000), &res, &err),
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
        assert_ok(remote_pipe(a, cmd_src, b, cmd_dst, tmo(30000), &err), &err);
        fprintf(stderr, "remote: piped %zu KiB of tar.gz in %lld ms\n",
                n / 1024, (long long)(clock_mono_ms() - t0));

        snprintf(p, sizeof(p), "%s/a.txt", dst);
        got = read_file(p, &len);
        cr_assert(got, "%s did not arrive", p);
        cr_expect(len == 6 && memcmp(got, "alpha\n", 6) == 0);
        free(got);
        snprintf(p, sizeof(p), "%s/sub/big.bin", dst);
        got = read_file(p, &len);
        cr_assert(got, "%s did not arrive", p);
        cr_expect(len == n && memcmp(got, big, n) == 0);
        free(got);

        /* A failing source is reported as such, permanent. */
        err_clear(&err);
        cr_assert_eq(remote_pipe(a, "echo nope >&2; exit 2", b,
                                 "cat >/dev/null", tmo(10000), &err),
                     -1);
        cr_expect_eq(err.kind, ERR_PERMANENT);
        cr_expect_eq(err.code, 2);
        cr_expect(strstr(err.msg, "source") && strstr(err.msg, "nope"),
                  "msg: %s", err.msg);

        /* A failing destination, while the source keeps writing. */
        err_clear(&err);
        cr_assert_eq(remote_pipe(a, "head -c 5000000 /dev/zero", b, "exit 4",
                                 tmo(10000), &err),
                     -1);
        cr_expect_eq(err.kind, ERR_PERMANENT);
        cr_expect_eq(err.code, 4, "msg: %s", err.msg);
        cr_expect(strstr(err.msg, "destination"), "msg: %s", err.msg);

        /* Same connection at both ends works too. */
        err_clear(&err);
        assert_ok(remote_pipe(a, "printf abc", a, "cat > /dev/null", tmo(10000),
                              &err),
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
        cr_expect(took < tmo(1500), "took %lld ms", (long long)took);
        remote_close(a);
        remote_close(b);
}

static void write_wrong_known_hosts(const struct harness *h,
                                    char *out,
                                    size_t cap,
                                    int other_host) {
        /* A valid ed25519 key that is not the harness's host key. */
        static const char other_key[] = "ssh-ed25519 "
                                        "AAAAC3NzaC1lZDI1NTE5AAAAIPcij14mcRQFLL"
                                        "gT/rJ9jR2qiZXddSJS5orNeYDnoRZm";
        char line[600];

        snprintf(out, cap, "%s/wrong_known_hosts", h->dir);
        if (other_host) /* the right key, but for another host */
                snprintf(line, sizeof(line), "[127.0.0.9]:%d %s\n", h->port,
                         other_key);
        else
                snprintf(line, sizeof(line), "[%s]:%d %s\n", h->addr, h->port,
                         other_key);
        write_file(out, line, strlen(line));
}

static void assert_refused_before_auth(int other_host) {
        struct remote_opts o = opts_for(&h1);
        struct err err = {0};
        struct remote_result res = {0};
        struct remote_conn *c;
        char kh[600], marker[600], *log, *cmd = NULL;
        size_t len;

        write_wrong_known_hosts(&h1, kh, sizeof(kh), other_host);
        o.known_hosts_path = kh;
        snprintf(marker, sizeof(marker), "%s/marker", h1.dir);
        cr_assert(asprintf(&cmd, "touch %s", marker) > 0);

        c = remote_connect(&o, &err);
        if (c) { /* what a broken check would let happen */
                struct err e2 = {0};
                remote_run(c, cmd, NULL, 0, tmo(10000), &res, &e2);
                remote_result_free(&res);
                remote_close(c);
        }
        cr_expect_null(c);
        cr_expect_eq(err.kind, ERR_PERMANENT);
        cr_expect(strstr(err.msg, "does not match THOPTER_SSH_KNOWN_HOSTS"),
                  "msg: %s", err.msg);
        cr_expect(access(marker, F_OK) != 0, "the command ran");
        /* sshd never saw a login attempt. */
        char logpath[600];
        snprintf(logpath, sizeof(logpath), "%s/sshd.log", h1.dir);
        log = read_file(logpath, &len);
        cr_assert(log);
        cr_expect_null(strstr(log, "Accepted publickey"), "log:\n%s", log);
        cr_expect_null(strstr(log, "Failed publickey"), "log:\n%s", log);
        free(log);
        free(cmd);
        cr_expect_eq(metrics_get(M_SSH_CONNECTIONS, "result=\"error\""), 1);
}

Test(remote, wrong_host_key_is_permanent_and_runs_nothing, .init = setup_one) {
        assert_refused_before_auth(0);
}

Test(remote, unknown_host_is_permanent_and_runs_nothing, .init = setup_one) {
        assert_refused_before_auth(1);
}

Test(remote, wrong_client_key_is_permanent, .init = setup_one) {
        struct remote_opts o = opts_for(&h1);
        struct err err = {0};
        char key[600], cmd[800];

        snprintf(key, sizeof(key), "%s/otherkey", h1.dir);
        snprintf(cmd, sizeof(cmd),
                 "ssh-keygen -q -t ed25519 -N '' -f %s </dev/null", key);
        cr_assert(system(cmd) == 0);
        o.key_path = key;
        cr_expect_null(remote_connect(&o, &err));
        cr_expect_eq(err.kind, ERR_PERMANENT);
        cr_expect(strstr(err.msg, "refused"), "msg: %s", err.msg);

        /* A key file that does not exist: permanent, before connecting. */
        err_clear(&err);
        o.key_path = "/nonexistent/key";
        cr_expect_null(remote_connect(&o, &err));
        cr_expect_eq(err.kind, ERR_PERMANENT);
        cr_expect(strstr(err.msg, "THOPTER_SSH_KEY"), "msg: %s", err.msg);
}

Test(remote, insecure_mode_needs_to_be_explicit, .init = setup_one) {
        struct remote_opts o = opts_for(&h1);
        struct err err = {0};
        struct remote_conn *c;

        o.known_hosts_path = NULL;
        cr_expect_null(remote_connect(&o, &err));
        cr_expect_eq(err.kind, ERR_PERMANENT);
        err_clear(&err);
        o.insecure = 1;
        c = remote_connect(&o, &err);
        cr_expect(c, "%s", err.msg);
        remote_close(c);
}

Test(remote, connection_refused_is_transient) {
        struct remote_opts o = {.host = "127.0.0.1",
                                .port = closed_port(),
                                .user = "root",
                                .key_path = "/dev/null", /* readable */
                                .insecure = 1,
                                .connect_timeout_ms = tmo(5000)};
        struct err err = {0};
        int64_t t0 = clock_mono_ms();

        cr_expect_null(remote_connect(&o, &err));
        cr_expect_eq(err.kind, ERR_TRANSIENT);
        cr_expect(strstr(err.msg, "refused"), "msg: %s", err.msg);
        cr_expect(clock_mono_ms() - t0 < tmo(1000));
        cr_expect_eq(metrics_get(M_SSH_CONNECTIONS, "result=\"error\""), 1);
}

/* A peer that accepts TCP but never says a word: the handshake times out. */
Test(remote, silent_peer_times_out_transient) {
        struct sockaddr_in a = {.sin_family = AF_INET};
        socklen_t sl = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct err err = {0};
        int64_t t0, took;

        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        cr_assert(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
        cr_assert(listen(fd, 4) == 0);
        cr_assert(getsockname(fd, (struct sockaddr *)&a, &sl) == 0);
        struct remote_opts o = {.host = "127.0.0.1",
                                .port = ntohs(a.sin_port),
                                .user = "root",
                                .key_path = "/dev/null",
                                .insecure = 1,
                                .connect_timeout_ms = 400};
        t0 = clock_mono_ms();
        cr_expect_null(remote_connect(&o, &err));
        took = clock_mono_ms() - t0;
        cr_expect_eq(err.kind, ERR_TRANSIENT);
        cr_expect(strstr(err.msg, "timed out"), "msg: %s", err.msg);
        cr_expect_eq(err.cause, ERR_CAUSE_DEADLINE);
        cr_expect(took >= 350 && took < tmo(1500), "took %lld ms",
                  (long long)took);
        close(fd);
}

Test(remote, wait_ready_succeeds_once_sshd_starts_late, .init = setup_late) {
        struct remote_opts o = opts_for(&h1);
        struct err err = {0};
        int64_t t0 = clock_mono_ms(), took;

        assert_ok(connect_until(&o, t0 + tmo(20000), &err), &err);
        took = clock_mono_ms() - t0;
        cr_expect(took >= 1000, "ready after %lld ms: too early?",
                  (long long)took);
        fprintf(stderr,
                "remote: sshd started after 1500 ms; ready after "
                "%lld ms\n",
                (long long)took);
        cr_expect(metrics_get(M_SSH_CONNECTIONS, "result=\"error\"") >= 1);
        cr_expect_eq(metrics_get(M_SSH_CONNECTIONS, "result=\"ok\""), 1);
}

Test(remote, wait_ready_gives_up_at_the_deadline) {
        struct remote_opts o = {.host = "127.0.0.1",
                                .port = closed_port(),
                                .user = "root",
                                .key_path = "/dev/null",
                                .insecure = 1,
                                .connect_timeout_ms = tmo(5000)};
        struct err err = {0};
        int64_t t0 = clock_mono_ms(), took;

        cr_assert_eq(connect_until(&o, t0 + 800, &err), -1);
        took = clock_mono_ms() - t0;
        cr_expect_eq(err.kind, ERR_TRANSIENT);
        cr_expect_eq(err.cause, ERR_CAUSE_DEADLINE);
        cr_expect(strstr(err.msg, "timed out"), "msg: %s", err.msg);
        cr_expect_eq(err.cause, ERR_CAUSE_DEADLINE);
        cr_expect(took >= 750 && took < tmo(1500), "took %lld ms",
                  (long long)took);
}

Test(remote, wait_ready_stops_at_once_on_host_key_mismatch, .init = setup_one) {
        struct remote_opts o = opts_for(&h1);
        struct err err = {0};
        char kh[600];
        int64_t t0 = clock_mono_ms();

        write_wrong_known_hosts(&h1, kh, sizeof(kh), 0);
        o.known_hosts_path = kh;
        cr_assert_eq(connect_until(&o, t0 + tmo(20000), &err), -1);
        cr_expect_eq(err.kind, ERR_PERMANENT);
        cr_expect_eq(err.cause, ERR_CAUSE_HOST_KEY);
        cr_expect(strstr(err.msg, "does not match"), "msg: %s", err.msg);
        cr_expect(clock_mono_ms() - t0 < tmo(2000));
}

Test(remote, connect_time, .init = setup_one) {
        struct remote_opts o = opts_for(&h1);
        int64_t total = 0, worst = 0;
        const int rounds = 5;

        for (int i = 0; i < rounds; i++) {
                struct err err = {0};
                int64_t t0 = clock_mono_ms(), dt;
                struct remote_conn *c = remote_connect(&o, &err);

                dt = clock_mono_ms() - t0;
                cr_assert(c, "%s", err.msg);
                remote_close(c);
                total += dt;
                worst = dt > worst ? dt : worst;
        }
        fprintf(stderr,
                "remote: connect+auth: mean %lld ms, worst %lld ms "
                "over %d connections\n",
                (long long)(total / rounds), (long long)worst, rounds);
        cr_expect(worst < tmo(3000));
}

Test(remote, hashed_known_hosts_entry_matches, .init = setup_one) {
        struct remote_opts o = opts_for(&h1);
        struct err err = {0};
        struct remote_conn *c;
        char cmd[1200], *text;
        size_t len;

        /* ssh-keygen -H rewrites entries as |1|salt|hash, as OpenSSH does
         * with HashKnownHosts. */
        snprintf(cmd, sizeof(cmd), "ssh-keygen -q -H -f %s >/dev/null 2>&1",
                 h1.known_hosts);
        cr_assert(system(cmd) == 0);
        text = read_file(h1.known_hosts, &len);
        cr_assert(text);
        cr_assert(strncmp(text, "|1|", 3) == 0, "not hashed: %s", text);
        free(text);
        c = remote_connect(&o, &err);
        cr_expect(c, "%s", err.msg);
        remote_close(c);
}

/* The harness's host key line "[addr]:port ssh-ed25519 BASE64": its key
 * blob, as libssh2_session_hostkey() returns it. */
static size_t harness_host_key(const struct harness *h,
                               unsigned char *blob,
                               size_t cap,
                               char *b64,
                               size_t b64cap) {
        size_t len;
        char *text = read_file(h->known_hosts, &len);
        char *p, *end;

        cr_assert(text);
        p = strstr(text, "ssh-ed25519 ");
        cr_assert(p, "no ed25519 key in %s", text);
        p += strlen("ssh-ed25519 ");
        end = p + strcspn(p, " \n");
        cr_assert((size_t)(end - p) < b64cap &&
                  (size_t)(end - p) * 3 / 4 <= cap);
        memcpy(b64, p, (size_t)(end - p));
        b64[end - p] = 0;
        int n =
            EVP_DecodeBlock(blob, (const unsigned char *)b64, (int)(end - p));
        cr_assert_geq(n, 0);
        n -= (int)(strlen(b64) - strcspn(b64, "=")); /* padding */
        free(text);
        return (size_t)n;
}

/* @revoked refuses a key whatever else vouches for it, the key made for the
 * machine included; an OpenSSH wildcard pattern vouches for a host. */
Test(remote, revoked_key_is_refused_and_patterns_match, .init = setup_one) {
        struct remote_opts o = opts_for(&h1);
        struct err err = {0};
        struct remote_conn *c;
        unsigned char blob[256];
        char b64[256], path[600], text[1200];

        o.host_key_len =
            harness_host_key(&h1, blob, sizeof(blob), b64, sizeof(b64));
        cr_assert_eq(o.host_key_len, 51u); /* ed25519: 4+11+4+32 */
        o.host_key = blob;
        snprintf(path, sizeof(path), "%s/revoked_known_hosts", h1.dir);
        o.known_hosts_path = path;

        snprintf(text, sizeof(text),
                 "[%s]:%d ssh-ed25519 %s\n@revoked [%s]:%d ssh-ed25519 %s\n",
                 h1.addr, h1.port, b64, h1.addr, h1.port, b64);
        write_file(path, text, strlen(text));
        cr_expect_null(c = remote_connect(&o, &err));
        remote_close(c);
        cr_expect_eq(err.kind, ERR_PERMANENT);
        cr_expect_eq(err.cause, ERR_CAUSE_HOST_KEY);
        cr_expect(strstr(err.msg, "@revoked"), "msg: %s", err.msg);

        /* A wildcard pattern, and no key made for the machine. */
        err_clear(&err);
        o.host_key = NULL;
        o.host_key_len = 0;
        snprintf(text, sizeof(text),
                 "# comment\n[127.0.0.?]:%d,!other "
                 "ssh-ed25519 %s\n",
                 h1.port, b64);
        write_file(path, text, strlen(text));
        c = remote_connect(&o, &err);
        cr_expect(c, "%s", err.msg);
        remote_close(c);

        /* The same pattern negated away. */
        err_clear(&err);
        snprintf(text, sizeof(text), "[127.0.0.?]:%d,![%s]:%d ssh-ed25519 %s\n",
                 h1.port, h1.addr, h1.port, b64);
        write_file(path, text, strlen(text));
        cr_expect_null(c = remote_connect(&o, &err));
        remote_close(c);
        cr_expect_eq(err.cause, ERR_CAUSE_HOST_KEY);
}

/* sshd can be up before the thopter's authorized key is: a refused login is
 * retried until the deadline, and then reported as permanent. */
Test(remote,
     wait_ready_retries_refused_login_until_the_deadline,
     .init = setup_one) {
        struct remote_opts o = opts_for(&h1);
        struct err err = {0};
        char key[600], cmd[800];
        int64_t t0, took;

        snprintf(key, sizeof(key), "%s/otherkey", h1.dir);
        snprintf(cmd, sizeof(cmd),
                 "ssh-keygen -q -t ed25519 -N '' -f %s </dev/null", key);
        cr_assert(system(cmd) == 0);
        o.key_path = key;
        t0 = clock_mono_ms();
        cr_assert_eq(connect_until(&o, t0 + 1200, &err), -1);
        took = clock_mono_ms() - t0;
        cr_expect_eq(err.kind, ERR_PERMANENT);
        cr_expect_eq(err.cause, ERR_CAUSE_LOGIN);
        cr_expect(strstr(err.msg, "refused"), "msg: %s", err.msg);
        cr_expect(took >= 1100 && took < tmo(2500), "took %lld ms",
                  (long long)took);
        cr_expect(metrics_get(M_SSH_CONNECTIONS, "result=\"error\"") >= 3);
}

/* A stop must not wait for a thopter that never answers. */
Test(remote, connect_until_stops_when_cancelled) {
        struct remote_opts o = {.host = "127.0.0.1",
                                .port = closed_port(),
                                .user = "root",
                                .key_path = "/dev/null",
                                .insecure = 1,
                                .connect_timeout_ms = tmo(5000)};
        struct err err = {0};
        atomic_int cancel = 1;
        int64_t t0 = clock_mono_ms();

        cr_assert_null(
            remote_connect_until(&o, t0 + tmo(20000), &cancel, &err));
        cr_expect_eq(err.cause, ERR_CAUSE_CANCELLED, "msg: %s", err.msg);
        cr_expect(clock_mono_ms() - t0 < tmo(2000));
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
        assert_ok(remote_run(c, cmd, NULL, 0, tmo(10000), &res, &err), &err);
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
        cr_expect_eq(remote_pipe(c, cmd, d, "cat >/dev/null", tmo(10000), &err),
                     -1);
        cr_expect(strstr(err.msg, "[REDACTED]") != NULL, "%s", err.msg);
        assert_no_fragment(err.msg, long_secret());
        free(cmd);
        remote_close(d);
        remote_close(c);
        log_clear_secrets();
}
