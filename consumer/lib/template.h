/* template.h - placeholder substitution for settings and prompt files.
 *
 * Replaces every "<open>NAME<close>" whose NAME is in @p vars by its value;
 * unknown names are left as they are. Used with "{" "}" for the host and
 * clone URL templates and "{{" "}}" for prompt templates. Pure; the text
 * grows in a dynbuf with a cap (TEMPLATE_RENDER_MAX).
 *
 * Callers: provision_context.c, provision_remote.c (host and URL templates).
 */
#ifndef THOPTER_TEMPLATE_H
#define THOPTER_TEMPLATE_H

struct template_var {
        const char *name;
        const char *value;
};

/* The largest text a render makes: a prompt is at most a few copies of a
 * request (REQUEST_PAYLOAD_MAX, 512 KiB), and a template that repeats a big
 * value must not take unbounded memory. */
#define TEMPLATE_RENDER_MAX (4u * 1024 * 1024)

/** @returns a malloc'd string, or NULL when out of memory or longer than
 * TEMPLATE_RENDER_MAX. */
char *template_render(const char *tpl,
                      const char *open,
                      const char *close,
                      const struct template_var *vars,
                      int nvars);

#endif
