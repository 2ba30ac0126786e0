/* remote_sftp.c - remote_upload(): one file written atomically with SFTP;
 * see remote.h.
 */
#include "remote_int.h"

#include "clock.h"
#include "shell_quote.h"
#include "strfmt.h"

#include <libssh2_sftp.h>

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* ---------------------------------------------------------------------- */
/* remote_upload                                                              */

static const char *sftp_status_name(unsigned long st) {
        switch (st) {
        case LIBSSH2_FX_NO_SUCH_FILE:
                return "no such file";
        case LIBSSH2_FX_PERMISSION_DENIED:
                return "permission denied";
        case LIBSSH2_FX_FAILURE:
                return "failure";
        case LIBSSH2_FX_FILE_ALREADY_EXISTS:
                return "file exists";
        case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM:
                return "no space left";
        case LIBSSH2_FX_QUOTA_EXCEEDED:
                return "quota exceeded";
        case LIBSSH2_FX_NO_SUCH_PATH:
                return "no such path";
        default:
                return "error";
        }
}

static int fail_sftp(struct remote_conn *c,
                     LIBSSH2_SFTP *sftp,
                     struct err *err,
                     int rc,
                     const char *what,
                     const char *path,
                     long tmo) {
        if (rc == LIBSSH2_ERROR_SFTP_PROTOCOL && sftp) {
                unsigned long st = libssh2_sftp_last_error(sftp);
                return err_set(err, ERR_PERMANENT, (int)st,
                               "ssh: upload %s on %s: %s: SFTP status %lu (%s)",
                               path, c->name, what, st, sftp_status_name(st));
        }
        if (rc == REMOTE_RC_DEADLINE)
                return err_setc(err, ERR_TRANSIENT, ERR_CAUSE_DEADLINE,
                                LIBSSH2_ERROR_TIMEOUT,
                                "ssh: upload %s on %s timed out after %ld ms",
                                path, c->name, tmo);
        if (remote_io_is_transport_rc(rc))
                remote_io_mark_broken(c);
        return err_set(err, remote_io_classify(rc), rc,
                       "ssh: upload %s on %s: %s: %s (libssh2 %d)", path,
                       c->name, what, remote_io_last_msg(c), rc);
}

static unsigned tmp_suffix(void) {
        static unsigned counter;
        unsigned r = 0;

        if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
                r = (unsigned)clock_mono_ms() ^ ((unsigned)getpid() << 16) ^
                    __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
        return r;
}

/* Rename over an existing file with rename(2) on the remote side. */
static int rename_with_mv(struct remote_conn *c,
                          const char *from,
                          const char *to,
                          int64_t deadline,
                          struct err *err) {
        struct remote_result res = {0};
        char *cmd = NULL, *qfrom = NULL, *qto = NULL;
        long left = (long)(deadline - clock_mono_ms());
        int ret = -1;

        if (left <= 0)
                left = 1;
        qfrom = shell_quote(from);
        qto = shell_quote(to);
        cmd = qfrom && qto ? strfmt("mv -f -- %s %s", qfrom, qto) : NULL;
        if (!cmd)
                goto oom;
        if (remote_run(c, cmd, NULL, 0, left, &res, err) == -1)
                goto out;
        if (res.exit_status != 0) {
                char tail[128];
                remote_result_tail(&res, tail, sizeof(tail));
                err_setc(err, ERR_PERMANENT, ERR_CAUSE_REMOTE_EXIT,
                         res.exit_status,
                         "ssh: upload %s on %s: mv exited %d: %s", to, c->name,
                         res.exit_status, tail);
                goto out;
        }
        ret = 0;
        goto out;
oom:
        err_oom(err, "ssh: upload");
out:
        remote_result_free(&res);
        free(cmd);
        free(qfrom);
        free(qto);
        return ret;
}

int remote_upload(struct remote_conn *c,
                  const char *remote_path,
                  const void *data,
                  size_t len,
                  int mode,
                  long timeout_ms,
                  struct err *err) {
        LIBSSH2_SFTP *sftp = NULL;
        LIBSSH2_SFTP_HANDLE *fh = NULL;
        LIBSSH2_SFTP_ATTRIBUTES attrs;
        long tmo = timeout_ms > 0 ? timeout_ms : REMOTE_OP_TIMEOUT_DEFAULT_MS;
        int64_t deadline =
            remote_io_deadline_in(timeout_ms, REMOTE_OP_TIMEOUT_DEFAULT_MS);
        char *tmp = NULL;
        const char *p = data;
        size_t off = 0;
        int created = 0, rc, ret = -1;

        if (c->broken)
                return remote_io_fail_broken(c, err);
        tmp = strfmt("%s.tmp-%08x", remote_path, tmp_suffix());
        if (!tmp)
                return err_oom(err, "ssh: upload");
        for (;;) {
                sftp = libssh2_sftp_init(c->session);
                if (sftp)
                        break;
                rc = libssh2_session_last_errno(c->session);
                if (rc == LIBSSH2_ERROR_EAGAIN &&
                    !remote_io_wait(c, NULL, deadline))
                        rc = REMOTE_RC_DEADLINE;
                if (rc != LIBSSH2_ERROR_EAGAIN) {
                        fail_sftp(c, NULL, err, rc, "starting SFTP",
                                  remote_path, tmo);
                        goto out;
                }
        }
        for (;;) {
                /* EXCL: never write into somebody else's file. */
                fh = libssh2_sftp_open_ex(
                    sftp, tmp, (unsigned)strlen(tmp),
                    LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_EXCL,
                    mode & 07777, LIBSSH2_SFTP_OPENFILE);
                if (fh)
                        break;
                rc = libssh2_session_last_errno(c->session);
                if (rc == LIBSSH2_ERROR_EAGAIN &&
                    !remote_io_wait(c, NULL, deadline))
                        rc = REMOTE_RC_DEADLINE;
                if (rc != LIBSSH2_ERROR_EAGAIN) {
                        fail_sftp(c, sftp, err, rc, "create", remote_path, tmo);
                        goto out;
                }
        }
        created = 1;
        while (off < len) {
                /* libssh2 expects the buffer advanced by what it returned. */
                ssize_t n = libssh2_sftp_write(fh, p + off, len - off);
                if (n > 0) {
                        off += (size_t)n;
                        continue;
                }
                if (n == LIBSSH2_ERROR_EAGAIN) {
                        if (remote_io_wait(c, NULL, deadline))
                                continue;
                        n = REMOTE_RC_DEADLINE;
                }
                fail_sftp(c, sftp, err, (int)n, "write", remote_path, tmo);
                goto out;
        }
        /* The open mode went through the server's umask; set it exactly. */
        memset(&attrs, 0, sizeof(attrs));
        attrs.flags = LIBSSH2_SFTP_ATTR_PERMISSIONS;
        attrs.permissions = (unsigned long)(mode & 07777);
        REMOTE_NB_CALL(rc, c, deadline, libssh2_sftp_fsetstat(fh, &attrs));
        if (rc != 0) {
                fail_sftp(c, sftp, err, rc, "chmod", remote_path, tmo);
                goto out;
        }
        REMOTE_NB_CALL(rc, c, deadline, libssh2_sftp_close_handle(fh));
        if (rc != REMOTE_RC_DEADLINE)
                fh = NULL; /* done with, also when the close failed */
        if (rc != 0) {
                fail_sftp(c, sftp, err, rc, "close", remote_path, tmo);
                goto out;
        }
        /* SFTP v3 (OpenSSH) rename refuses to replace an existing file, and
         * libssh2 1.10 cannot send posix-rename@openssh.com; when the target
         * exists, rename(2) through `mv -f` keeps the replacement atomic. */
        REMOTE_NB_CALL(rc, c, deadline,
                       libssh2_sftp_rename_ex(sftp, tmp, (unsigned)strlen(tmp),
                                              remote_path,
                                              (unsigned)strlen(remote_path),
                                              LIBSSH2_SFTP_RENAME_OVERWRITE |
                                                  LIBSSH2_SFTP_RENAME_ATOMIC |
                                                  LIBSSH2_SFTP_RENAME_NATIVE));
        if (rc == LIBSSH2_ERROR_SFTP_PROTOCOL &&
            (libssh2_sftp_last_error(sftp) == LIBSSH2_FX_FAILURE ||
             libssh2_sftp_last_error(sftp) == LIBSSH2_FX_FILE_ALREADY_EXISTS)) {
                if (rename_with_mv(c, tmp, remote_path, deadline, err) == -1)
                        goto out;
                rc = 0;
        }
        if (rc != 0) {
                fail_sftp(c, sftp, err, rc, "rename", remote_path, tmo);
                goto out;
        }
        created = 0;
        ret = 0;
out:
        if (sftp) {
                int64_t dl = clock_mono_ms() + REMOTE_GRACE_MS;
                if (fh) {
                        REMOTE_NB_CALL(rc, c, dl,
                                       libssh2_sftp_close_handle(fh));
                        if (rc == REMOTE_RC_DEADLINE) {
                                remote_io_mark_broken(c);
                                dl = clock_mono_ms() + REMOTE_GRACE_MS;
                                REMOTE_NB_CALL(rc, c, dl,
                                               libssh2_sftp_close_handle(fh));
                        }
                }
                if (created && !c->broken) {
                        REMOTE_NB_CALL(rc, c, dl,
                                       libssh2_sftp_unlink_ex(
                                           sftp, tmp, (unsigned)strlen(tmp)));
                        if (rc == REMOTE_RC_DEADLINE)
                                remote_io_mark_broken(c);
                }
                REMOTE_NB_CALL(rc, c, dl, libssh2_sftp_shutdown(sftp));
                if (rc == REMOTE_RC_DEADLINE) {
                        /* Still mid-shutdown: continue it on a dead socket,
                         * which fails at once and frees. */
                        remote_io_mark_broken(c);
                        dl = clock_mono_ms() + REMOTE_GRACE_MS;
                        REMOTE_NB_CALL(rc, c, dl, libssh2_sftp_shutdown(sftp));
                }
        }
        free(tmp);
        return ret;
}
