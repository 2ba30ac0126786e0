/* test_remote_connect.c - remote_conn.c against a real OpenSSH sshd on
 * loopback (remote_helpers.h): host keys checked against known_hosts
 * (wrong, unknown, hashed, @revoked, patterns) before any login, client keys,
 * refused and silent peers, and remote_connect_until() waiting for a thopter
 * that is not up yet.
 */
#define _GNU_SOURCE /* asprintf */
#include "remote_helpers.h"

#include "clock.h"
#include "metrics.h"

#include <criterion/criterion.h>
#include <openssl/evp.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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

/* remote_connect_until() as a yes/no: the connection is closed again. */
static int
connect_until(const struct remote_opts *o, int64_t deadline, struct err *err) {
        struct remote_conn *c = remote_connect_until(o, deadline, NULL, err);
        remote_close(c);
        return c ? 0 : -1;
}

static void setup_late(void) {
        harness_start(&h1, "127.0.0.4", 1500);
}

TestSuite(remote, .fini = teardown, .timeout = 120);

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
                remote_run(c, cmd, NULL, 0, test_ms(10000), &res, &e2);
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
        log = test_slurp_str(logpath, &len);
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
                                .connect_timeout_ms = test_ms(5000)};
        struct err err = {0};
        int64_t t0 = clock_mono_ms();

        cr_expect_null(remote_connect(&o, &err));
        cr_expect_eq(err.kind, ERR_TRANSIENT);
        cr_expect(strstr(err.msg, "refused"), "msg: %s", err.msg);
        cr_expect(clock_mono_ms() - t0 < test_ms(1000));
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
        cr_expect(took >= 350 && took < test_ms(1500), "took %lld ms",
                  (long long)took);
        close(fd);
}

Test(remote, wait_ready_succeeds_once_sshd_starts_late, .init = setup_late) {
        struct remote_opts o = opts_for(&h1);
        struct err err = {0};
        int64_t t0 = clock_mono_ms(), took;

        assert_ok(connect_until(&o, t0 + test_ms(20000), &err), &err);
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
                                .connect_timeout_ms = test_ms(5000)};
        struct err err = {0};
        int64_t t0 = clock_mono_ms(), took;

        cr_assert_eq(connect_until(&o, t0 + 800, &err), -1);
        took = clock_mono_ms() - t0;
        cr_expect_eq(err.kind, ERR_TRANSIENT);
        cr_expect_eq(err.cause, ERR_CAUSE_DEADLINE);
        cr_expect(strstr(err.msg, "timed out"), "msg: %s", err.msg);
        cr_expect_eq(err.cause, ERR_CAUSE_DEADLINE);
        cr_expect(took >= 750 && took < test_ms(1500), "took %lld ms",
                  (long long)took);
}

Test(remote, wait_ready_stops_at_once_on_host_key_mismatch, .init = setup_one) {
        struct remote_opts o = opts_for(&h1);
        struct err err = {0};
        char kh[600];
        int64_t t0 = clock_mono_ms();

        write_wrong_known_hosts(&h1, kh, sizeof(kh), 0);
        o.known_hosts_path = kh;
        cr_assert_eq(connect_until(&o, t0 + test_ms(20000), &err), -1);
        cr_expect_eq(err.kind, ERR_PERMANENT);
        cr_expect_eq(err.cause, ERR_CAUSE_HOST_KEY);
        cr_expect(strstr(err.msg, "does not match"), "msg: %s", err.msg);
        cr_expect(clock_mono_ms() - t0 < test_ms(2000));
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
        cr_expect(worst < test_ms(3000));
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
        text = test_slurp_str(h1.known_hosts, &len);
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
        char *text = test_slurp_str(h->known_hosts, &len);
        char *p, *end;

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
        cr_expect(took >= 1100 && took < test_ms(2500), "took %lld ms",
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
                                .connect_timeout_ms = test_ms(5000)};
        struct err err = {0};
        atomic_int cancel = 1;
        int64_t t0 = clock_mono_ms();

        cr_assert_null(
            remote_connect_until(&o, t0 + test_ms(20000), &cancel, &err));
        cr_expect_eq(err.cause, ERR_CAUSE_CANCELLED, "msg: %s", err.msg);
        cr_expect(clock_mono_ms() - t0 < test_ms(2000));
}
