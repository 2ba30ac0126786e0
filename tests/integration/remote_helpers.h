/* remote_helpers.h - what tests/integration/test_remote_*.c share: an
 * OpenSSH sshd on loopback per test, and a connection to it.
 *
 * Each test starts its own sshd(s) through tests/harness/sshd_harness.py
 * (CLI mode: first stdout line PORT=… KEY=… KNOWN_HOSTS=…; it stops sshd when
 * its stdin closes). The .fini fixture teardown() closes that stdin and reaps
 * the harness, so sshd goes away on failure too; if the test process dies
 * outright, the closed pipe stops sshd just the same.
 *
 * sshd runs locally, so files it writes are checked on the local filesystem.
 * Every helper fails the running test through Criterion itself.
 */
#ifndef THOPTER_REMOTE_HELPERS_H
#define THOPTER_REMOTE_HELPERS_H

#include "remote.h"
#include "test_helpers.h"

#include <stddef.h>
#include <sys/types.h>

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

/* The test's sshds; teardown() stops both. */
extern struct harness h1, h2;

/** @brief Start the harness on @p addr; @p delay_ms > 0 starts sshd only
 * that long after the line is printed (the port is already fixed). */
void harness_start(struct harness *h, const char *addr, long delay_ms);

/** @brief Stop sshd and the harness, and remove its directory. */
void harness_stop(struct harness *h);

/** @brief Options that connect to @p h with its key and known_hosts. */
struct remote_opts opts_for(const struct harness *h);

/** @brief remote_connect() to @p h; the test fails if it does not. */
struct remote_conn *connect_ok(const struct harness *h);

/** @brief Writes @p len bytes of @p data to @p path (created or replaced). */
void write_file(const char *path, const void *data, size_t len);

/* Fixtures: one sshd (h1 on 127.0.0.2); stop whatever was started. */
void setup_one(void);
void teardown(void);

#endif
