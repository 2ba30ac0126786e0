/* secret.h - wiping secrets (tokens, keys, credentials JSON) from memory
 * before it is freed, so a core dump or a later reuse of the heap does not
 * hand them on.
 *
 * Memory only: reading a secret from a file is secret_file.h, keeping it out
 * of the logs is log_add_secret(). Callers: whoever holds a secret.
 */
#ifndef THOPTER_SECRET_H
#define THOPTER_SECRET_H

#include <stddef.h>

/** @brief explicit_bzero() @p len bytes of @p p (NULL is a no-op). */
void secret_wipe(void *p, size_t len);
/** @brief Wipe the NUL-terminated secret @p s, then free it (NULL ok). */
void secret_free(char *s);

#endif
