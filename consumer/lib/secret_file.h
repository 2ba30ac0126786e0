/* secret_file.h - read a secret (a token, a credentials JSON, a librdkafka
 * properties file with a password) from a file, the form contract section
 * 5.10 leaves for secrets besides the environment: never a command-line
 * argument, which every user of the host reads in /proc/PID/cmdline.
 *
 * @locality any thread.
 */
#ifndef THOPTER_SECRET_FILE_H
#define THOPTER_SECRET_FILE_H

#include "err.h"

#include <stddef.h>

#define SECRET_FILE_MAX (1024 * 1024)

/**
 * @brief The whole content of @p path, NUL-terminated, without trailing
 * newlines (CR or LF; an editor's last newline is never part of a token).
 * @p what names the setting in messages ("FLY_DEPLOY_KEY_FILE"); messages
 * never quote the content.
 * @returns a malloc'd string: wipe it with secret_wipe() and free() it; or
 * NULL (ERR_PERMANENT) when the file cannot be read, holds a NUL byte or is
 * larger than SECRET_FILE_MAX.
 */
char *secret_file_read(const char *path, const char *what, struct err *err);

#endif
