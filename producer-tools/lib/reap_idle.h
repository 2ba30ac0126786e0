/* reap_idle.h - how long a thopter's agent has been idle, asked over SSH.
 *
 * The signal is tmux's own activity clock for the agent's session
 * (THOPTER_TMUX_SESSION, run as THOPTER_REMOTE_USER): the newest of
 * #{session_activity} (a client typed into it: a person on the web
 * terminal) and #{window_activity} of each of its windows (a pane wrote
 * output, which includes the echo of anything typed or sent with
 * send-keys), in seconds since the epoch. The same command prints the
 * machine's own `date +%s`, and idleness is the difference of the two, so a
 * skew between the machine's clock and the reaper's does not count.
 *
 * Limits (OPERATIONS.md says the same): an agent that prints nothing for a
 * long time while it works (a long silent build or test run) looks idle;
 * a program that repaints an unchanged screen looks busy forever (kept: the
 * lifetime rule still applies). A session that does not exist, a machine
 * that does not answer, a host key that does not match: the machine could
 * not be checked and is kept.
 *
 * The connection is checked like the consumer's (contract 5.13): the host
 * key derived from THOPTER_SSH_KEY and the machine's requestId
 * (host_keys_derive_host_key()), or one that THOPTER_SSH_KNOWN_HOSTS lists.
 */
#ifndef THOPTER_REAP_IDLE_H
#define THOPTER_REAP_IDLE_H

#include "err.h"
#include "fly_client.h"
#include "reap_rules.h"

#include <stddef.h>
#include <stdint.h>

struct reap_idle_opts {
        const char
            *host_template; /* THOPTER_SSH_HOST: {id} {app} {private_ip} */
        const char *app;
        int port;
        const char *user;            /* THOPTER_SSH_USER */
        const char *key_path;        /* THOPTER_SSH_KEY */
        const char *known_hosts;     /* optional: THOPTER_SSH_KNOWN_HOSTS */
        const unsigned char *secret; /* the bytes of THOPTER_SSH_KEY */
        size_t secret_len;
        const char *remote_user;  /* THOPTER_REMOTE_USER */
        const char *tmux_session; /* THOPTER_TMUX_SESSION */
        long timeout_ms;          /* the connect, and the command; each */
};

/** @brief The remote command (su - USER -c '…'); malloc'd, or NULL. */
char *reap_idle_command(const char *remote_user, const char *session);

/**
 * @brief Parse what reap_idle_command() printed: the machine's time on the
 * first line, then one "SESSION_ACTIVITY WINDOW_ACTIVITY" line per window.
 * @returns 0 with the seconds since the newest activity (0 if that is in
 * the future), or -1 with @p err saying what was wrong.
 */
int reap_idle_parse(const char *out, int64_t *idle_s, struct err *err);

/**
 * @brief Connect to @p m and measure; never fails: what went wrong is in
 * @p res (known = 0, why).
 */
void reap_idle_check(const struct reap_idle_opts *o,
                     const struct fly_machine *m,
                     struct reap_idle_result *res);

#endif
