/* remote_helpers.c - see remote_helpers.h. */
#define _GNU_SOURCE /* pipe2 */
#include "remote_helpers.h"

#include "clock.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef HARNESS_DIR
#error "HARNESS_DIR must point at tests/harness"
#endif

struct harness h1 = {.pid = -1, .to_fd = -1, .from_fd = -1};
struct harness h2 = {.pid = -1, .to_fd = -1, .from_fd = -1};

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

void harness_start(struct harness *h, const char *addr, long delay_ms) {
        int in[2], out[2];
        char line[2048], port[16], delay[32];
        size_t n = 0;
        int64_t deadline = clock_mono_ms() + test_ms(20000);

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

void harness_stop(struct harness *h) {
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

struct remote_opts opts_for(const struct harness *h) {
        struct remote_opts o = {
            .host = h->addr,
            .port = h->port,
            .user = h->user,
            .key_path = h->key,
            .known_hosts_path = h->known_hosts,
            .insecure = 0,
            .connect_timeout_ms = test_ms(5000),
        };
        return o;
}

struct remote_conn *connect_ok(const struct harness *h) {
        struct remote_opts o = opts_for(h);
        struct err err = {0};
        struct remote_conn *c = remote_connect(&o, &err);

        cr_assert(c, "connect to %s:%d: %s", h->addr, h->port, err.msg);
        return c;
}

void write_file(const char *path, const void *data, size_t len) {
        FILE *f = fopen(path, "wb");

        cr_assert(f, "%s: %s", path, strerror(errno));
        cr_assert(fwrite(data, 1, len, f) == len);
        fclose(f);
}

void setup_one(void) {
        harness_start(&h1, "127.0.0.2", 0);
}

void teardown(void) {
        harness_stop(&h1);
        harness_stop(&h2);
}
