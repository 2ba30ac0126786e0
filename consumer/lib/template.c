/* template.c - see template.h. */
#include "template.h"
#include "dynbuf.h"

#include <string.h>

char *template_render(const char *tpl,
                      const char *open,
                      const char *close,
                      const struct template_var *vars,
                      int nvars) {
        size_t olen = strlen(open), clen = strlen(close);
        struct dynbuf out;

        dynbuf_init(&out, TEMPLATE_RENDER_MAX, DYNBUF_FAIL);
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
                if (value) {
                        dynbuf_addstr(&out, value);
                        p += skip;
                } else {
                        /* Up to the next possible placeholder at once. */
                        const char *next = strstr(p + 1, open);
                        size_t n = next ? (size_t)(next - p) : strlen(p);
                        dynbuf_add(&out, p, n);
                        p += n;
                }
                if (out.state != DYNBUF_OK)
                        break;
        }
        /* NULL when memory ran out or the text passed the cap (sticky). */
        return dynbuf_take(&out, NULL);
}
