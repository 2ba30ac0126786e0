/* secret_file.c - see secret_file.h. */
#include "secret_file.h"
#include "secret.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *secret_file_read(const char *path, const char *what, struct err *err) {
        FILE *f = NULL;
        char *buf = NULL;
        size_t n = 0;

        f = fopen(path, "rb");
        if (!f) {
                err_set(err, ERR_PERMANENT, errno, "%s: cannot read %s: %s",
                        what, path, strerror(errno));
                return NULL;
        }
        buf = malloc(SECRET_FILE_MAX + 1);
        if (!buf) {
                err_oom(err, what);
                goto fail;
        }
        n = fread(buf, 1, SECRET_FILE_MAX + 1, f);
        if (ferror(f)) {
                err_set(err, ERR_PERMANENT, EIO, "%s: cannot read %s", what,
                        path);
                goto fail;
        }
        if (n > SECRET_FILE_MAX) {
                err_set(err, ERR_PERMANENT, EFBIG,
                        "%s: %s is larger than %d bytes", what, path,
                        SECRET_FILE_MAX);
                goto fail;
        }
        if (memchr(buf, '\0', n)) {
                err_set(err, ERR_PERMANENT, EINVAL,
                        "%s: %s holds a NUL byte: not a text secret", what,
                        path);
                goto fail;
        }
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
                n--;
        buf[n] = '\0';
        fclose(f);
        return buf;
fail:
        if (buf)
                secret_wipe(buf, SECRET_FILE_MAX + 1);
        free(buf);
        fclose(f);
        return NULL;
}
