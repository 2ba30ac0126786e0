/* secret.c - see secret.h. */
#include "secret.h"

#include <stdlib.h>
#include <string.h>

void secret_wipe(void *p, size_t len) {
        /* explicit_bzero, not memset: the compiler may drop a memset of
         * memory that is freed right after. */
        if (p)
                explicit_bzero(p, len);
}

void secret_free(char *s) {
        if (!s)
                return;
        secret_wipe(s, strlen(s));
        free(s);
}
