/* template.c - see template.h. */
#include "template.h"

#include <stdlib.h>
#include <string.h>

char *template_render(const char *tpl,
                      const char *open,
                      const char *close,
                      const struct template_var *vars,
                      int nvars) {
        size_t olen = strlen(open), clen = strlen(close), cap = strlen(tpl) + 1,
               len = 0;
        char *out = malloc(cap);

        if (!out)
                return NULL;
        for (const char *p = tpl; *p;) {
                const char *value = NULL;
                size_t skip = 0;
                if (strncmp(p, open, olen) == 0) {
                        const char *end = strstr(p + olen, close);
                        for (int i = 0; end && i < nvars; i++) {
                                size_t n = strlen(vars[i].name);
                                if ((size_t)(end - p - olen) == n &&
                                    strncmp(p + olen, vars[i].name, n) == 0) {
                                        value =
                                            vars[i].value ? vars[i].value : "";
                                        skip = olen + n + clen;
                                        break;
                                }
                        }
                }
                size_t add = value ? strlen(value) : 1;
                if (len + add + 1 > cap) {
                        cap = (len + add + 1) * 2;
                        char *grown = realloc(out, cap);
                        if (!grown) {
                                free(out);
                                return NULL;
                        }
                        out = grown;
                }
                if (value) {
                        memcpy(out + len, value, add);
                        p += skip;
                } else {
                        out[len] = *p++;
                }
                len += add;
        }
        out[len] = '\0';
        return out;
}
