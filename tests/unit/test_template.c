/* Unit tests of template_render. */
#include "template.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

Test(template, replaces_known_names_and_keeps_unknown_ones) {
        struct template_var v[] = {{"id", "148e21a3c96989"},
                                   {"app", "thopters"}};
        char *s =
            template_render("{id}.vm.{app}.internal:{port}", "{", "}", v, 2);
        cr_assert_str_eq(s, "148e21a3c96989.vm.thopters.internal:{port}");
        free(s);
}

Test(template, double_braces_and_repeats) {
        struct template_var v[] = {{"issueNumber", "42"}, {"repoName", "r"}};
        char *s = template_render(
            "#{{issueNumber}} in {{repoName}} ({{issueNumber}}) {x}", "{{",
            "}}", v, 2);
        cr_assert_str_eq(s, "#42 in r (42) {x}");
        free(s);
}

Test(template, values_are_not_expanded_again) {
        struct template_var v[] = {{"a", "{{b}}"}, {"b", "no"}};
        char *s = template_render("{{a}}", "{{", "}}", v, 2);
        cr_assert_str_eq(s, "{{b}}");
        free(s);
}

Test(template, empty_and_unterminated) {
        struct template_var v[] = {{"a", "x"}};
        char *s = template_render("", "{", "}", v, 1);
        cr_assert_str_eq(s, "");
        free(s);
        s = template_render("{a", "{", "}", v, 1);
        cr_assert_str_eq(s, "{a");
        free(s);
}

/* The text grows in a capped buffer: a value repeated past
 * TEMPLATE_RENDER_MAX fails instead of taking unbounded memory. */
Test(template, a_render_past_the_cap_fails) {
        size_t n = 1024 * 1024;
        char *big = malloc(n + 1);
        cr_assert_not_null(big);
        memset(big, 'x', n);
        big[n] = '\0';
        struct template_var v[] = {{"b", big}};

        char *s = template_render("{b}{b}{b}", "{", "}", v, 1);
        cr_assert_not_null(s);
        cr_expect_eq(strlen(s), 3 * n);
        free(s);
        cr_expect_null(template_render("{b}{b}{b}{b}{b}", "{", "}", v, 1));
        free(big);
}
