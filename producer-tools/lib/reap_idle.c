/* reap_idle.c - see reap_idle.h. */
#include "reap_idle.h"
#include "shell_quote.h"
#include "remote.h"
#include "host_keys.h"
#include "strfmt.h"
#include "template.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *reap_idle_command(const char *remote_user, const char *session) {
        char *target = strfmt("=%s", session); /* exactly this session */
        char *qtarget = target ? shell_quote(target) : NULL;
        char *inner = qtarget
                          ? strfmt("date +%%s && tmux list-windows -t %s -F "
                                   "'#{session_activity} #{window_activity}'",
                                   qtarget)
                          : NULL;
        char *cmd = inner ? shell_su_command(remote_user, inner) : NULL;

        free(target);
        free(qtarget);
        free(inner);
        return cmd;
}

/* A non-negative decimal number at *p (advanced past it and any blanks). */
static int number(const char **p, long long *out) {
        char *end;
        if (!isdigit((unsigned char)**p))
                return -1;
        errno = 0;
        *out = strtoll(*p, &end, 10);
        if (errno)
                return -1;
        *p = end;
        while (**p == ' ' || **p == '\t' || **p == '\r')
                (*p)++;
        return 0;
}

int reap_idle_parse(const char *out, int64_t *idle_s, struct err *err) {
        const char *p = out;
        long long now, v, newest = -1;

        if (!p || number(&p, &now) == -1 || (*p && *p != '\n'))
                return err_set(err, ERR_PERMANENT, 0,
                               "idle check: no time on the first line");
        while (*p) {
                if (*p == '\n') {
                        p++;
                        continue;
                }
                /* Each window's line: two numbers. */
                for (int i = 0; i < 2; i++) {
                        if (number(&p, &v) == -1)
                                return err_set(err, ERR_PERMANENT, 0,
                                               "idle check: unexpected tmux "
                                               "output");
                        if (v > newest)
                                newest = v;
                }
                if (*p && *p != '\n')
                        return err_set(err, ERR_PERMANENT, 0,
                                       "idle check: unexpected tmux output");
        }
        if (newest < 0)
                return err_set(err, ERR_PERMANENT, 0,
                               "idle check: tmux listed no window");
        *idle_s = now > newest ? (int64_t)(now - newest) : 0;
        return 0;
}

static char *host_for(const struct reap_idle_opts *o,
                      const struct fly_machine *m) {
        struct template_var vars[] = {
            {"id", m->id}, {"app", o->app}, {"private_ip", m->private_ip}};
        return template_render(o->host_template, "{", "}", vars, 3);
}

void reap_idle_check(const struct reap_idle_opts *o,
                     const struct fly_machine *m,
                     struct reap_idle_result *res) {
        struct err err = {0};
        struct host_key key;
        struct remote_result out = {0};
        unsigned char blob[HOST_KEYS_BLOB_MAX];
        struct remote_conn *c = NULL;
        char *host = host_for(o, m);
        char *cmd = reap_idle_command(o->remote_user, o->tmux_session);
        struct remote_opts so = {
            .port = o->port,
            .user = o->user,
            .key_path = o->key_path,
            .known_hosts_path =
                o->known_hosts && *o->known_hosts ? o->known_hosts : NULL,
            .connect_timeout_ms = o->timeout_ms,
        };

        memset(res, 0, sizeof(*res));
        memset(&key, 0, sizeof(key));
        if (!host || !cmd) {
                err_oom(&err, "idle check");
                goto out;
        }
        so.host = host;
        /* The consumer gave the machine a host key made from its requestId;
         * without one, only THOPTER_SSH_KNOWN_HOSTS can vouch for it. */
        if (m->request_id[0]) {
                if (host_keys_derive_host_key(o->secret, o->secret_len,
                                              m->request_id, &key, &err) == -1)
                        goto out;
                so.host_key_len =
                    host_keys_public_blob(&key, blob, sizeof(blob));
                so.host_key = so.host_key_len ? blob : NULL;
        } else if (!so.known_hosts_path) {
                err_set(&err, ERR_PERMANENT, 0,
                        "no thopter_request_id to derive its host key from, "
                        "and no THOPTER_SSH_KNOWN_HOSTS");
                goto out;
        }
        c = remote_connect(&so, &err);
        if (!c)
                goto out;
        if (remote_run(c, cmd, NULL, 0, o->timeout_ms, &out, &err) == -1)
                goto out;
        if (out.exit_status != 0) {
                char tail[160];
                remote_result_tail(&out, tail, sizeof(tail));
                err_set(&err, ERR_PERMANENT, out.exit_status,
                        "tmux session %s: exit %d: %s", o->tmux_session,
                        out.exit_status, tail);
                goto out;
        }
        if (reap_idle_parse(out.out, &res->idle_s, &err) == -1)
                goto out;
        res->known = 1;
out:
        if (!res->known)
                snprintf(res->why, sizeof(res->why), "%s", err.msg);
        remote_result_free(&out);
        remote_close(c);
        host_keys_wipe(&key);
        free(host);
        free(cmd);
}
