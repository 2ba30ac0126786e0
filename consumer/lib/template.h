/* template.h - placeholder substitution for settings and prompt files.
 *
 * Replaces every "<open>NAME<close>" whose NAME is in @p vars by its value;
 * unknown names are left as they are. Used with "{" "}" for the host and
 * clone URL templates and "{{" "}}" for prompt templates. Pure.
 *
 * Callers: provision_context.c, provision_remote.c (host and URL templates).
 */
#ifndef THOPTER_TEMPLATE_H
#define THOPTER_TEMPLATE_H

struct template_var {
        const char *name;
        const char *value;
};

/** @returns a malloc'd string, or NULL on OOM. */
char *template_render(const char *tpl,
                      const char *open,
                      const char *close,
                      const struct template_var *vars,
                      int nvars);

#endif
