/* test_provision_ctx.c - provision_ctx_new() (provision.c): a THOPTER_SSH_KEY
 * that cannot be used stops the consumer with a message that names the
 * setting exactly once, decided by err->field, not by reading the message. */
#include "provision.h"
#include "strfmt.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int count_of(const char *hay, const char *needle) {
        int n = 0;
        for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}

static struct err ctx_new_with_key(char *key_path) {
        struct config cfg = {0};
        struct provision_deps deps = {&cfg, NULL, NULL};
        struct err err = {0};

        cfg.ssh_key = key_path;
        cr_assert_null(provision_ctx_new(&deps, &err));
        cr_assert_eq(err.kind, ERR_PERMANENT, "%s", err.msg);
        cr_assert_str_eq(err.field, "THOPTER_SSH_KEY");
        return err;
}

Test(provision, an_unreadable_key_is_named_by_its_setting) {
        char path[] = "/nonexistent/id_ed25519";
        const char want[] =
            "THOPTER_SSH_KEY: cannot read /nonexistent/id_ed25519: ";
        struct err err = ctx_new_with_key(path);

        cr_assert(strncmp(err.msg, want, strlen(want)) == 0, "%s", err.msg);
        cr_assert_eq(count_of(err.msg, "THOPTER_SSH_KEY"), 1, "%s", err.msg);
}

Test(provision, a_key_whose_message_names_the_setting_is_not_prefixed) {
        char dir[] = "/tmp/thopter-ctx-XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        char *key = strfmt("%s/id", dir);
        FILE *f = fopen(key, "w");
        cr_assert_not_null(f);
        fputs("not a key\n", f);
        fclose(f);

        struct err err = ctx_new_with_key(key);
        char *want = strfmt("THOPTER_SSH_KEY %s: not an OpenSSH", key);
        cr_assert(strncmp(err.msg, want, strlen(want)) == 0, "%s", err.msg);
        cr_assert_eq(count_of(err.msg, "THOPTER_SSH_KEY"), 1, "%s", err.msg);

        unlink(key);
        rmdir(dir);
        free(want);
        free(key);
}
