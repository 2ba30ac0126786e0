/* test_request_examples.c - the C validator's verdict on every file of
 * schemas/examples.
 *
 * schemas/examples/expectations.json says, per file, its kind, whether it is
 * valid and, for an invalid one, the field the message must name and the
 * step ("parse" or "validate"). test_schema_agreement.py holds ajv to the
 * same file, so together they show the C validator and the JSON Schemas agree
 * on every example. Files of kind "event" are for ajv only: the consumer
 * writes status events, it never parses them.
 */
#include "request.h"
#include "test_helpers.h"

#include <criterion/criterion.h>
#include <cjson/cJSON.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXAMPLES SCHEMA_DIR "/examples"

static cJSON *expectations(void) {
        cJSON *exp = test_load_json(EXAMPLES "/expectations.json");

        cr_assert(cJSON_IsObject(exp), "expectations.json is not an object");
        return exp;
}

static const char *str(const cJSON *obj, const char *key, const char *dflt) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

        return cJSON_IsString(v) ? v->valuestring : dflt;
}

/* Runs one example through its parser; returns 1 when it was checked. */
static int check_example(const char *dir, const char *name, const cJSON *all) {
        char path[512], key[300];
        const cJSON *exp;
        const char *kind, *field;
        struct provision_request prov;
        struct destroy_request destroy;
        struct err err = {0};
        size_t len, flen;
        char *buf;
        int valid, rc;

        snprintf(key, sizeof(key), "%s/%s", dir, name);
        snprintf(path, sizeof(path), EXAMPLES "/%s", key);
        exp = cJSON_GetObjectItemCaseSensitive(all, key);
        cr_expect(cJSON_IsObject(exp), "%s: not in expectations.json", key);
        if (!cJSON_IsObject(exp))
                return 0;
        kind = str(exp, "kind", "");
        valid = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(exp, "valid"));
        cr_expect(valid == (strcmp(dir, "valid") == 0),
                  "%s: \"valid\" disagrees with its directory", key);
        if (strcmp(kind, "event") == 0)
                return 0;

        buf = test_slurp(path, &len);
        if (strcmp(kind, "provision") == 0) {
                rc = request_parse_provision(buf, len, &prov, &err);
                request_provision_free(&prov);
        } else {
                cr_expect_str_eq(kind, "destroy", "%s: unknown kind", key);
                rc = request_parse_destroy(buf, len, &destroy, &err);
                request_destroy_free(&destroy);
        }
        free(buf);

        if (valid) {
                cr_expect(rc == 0, "%s: rejected: %s", key, err.msg);
                return 1;
        }
        field = str(exp, "field", "?");
        flen = strlen(field);
        cr_expect(rc == -1, "%s: accepted", key);
        cr_expect(err.kind == ERR_PERMANENT, "%s: kind %s", key,
                  err_kind_name(err.kind));
        cr_expect(err.cls == ERRC_INVALID_REQUEST, "%s: class %s", key,
                  err_class_name(err.cls));
        cr_expect_str_eq(err.step, str(exp, "step", "validate"), "%s: step",
                         key);
        cr_expect(strncmp(err.msg, field, flen) == 0 && err.msg[flen] == ':',
                  "%s: message \"%s\" does not name %s", key, err.msg, field);
        cr_expect_str_eq(err.field, field, "%s: err.field \"%s\", not %s", key,
                         err.field, field);
        return 1;
}

Test(request_examples, every_example_gets_its_expected_verdict) {
        static const char *const dirs[] = {"valid", "invalid"};
        cJSON *all = expectations();
        const cJSON *e;
        int checked = 0, expected = 0;

        for (size_t d = 0; d < 2; d++) {
                char path[512];
                struct dirent *de;
                DIR *dh;

                snprintf(path, sizeof(path), EXAMPLES "/%s", dirs[d]);
                dh = opendir(path);
                cr_assert(dh, "opendir %s", path);
                while ((de = readdir(dh))) {
                        size_t n = strlen(de->d_name);

                        if (n > 5 && strcmp(de->d_name + n - 5, ".json") == 0)
                                checked +=
                                    check_example(dirs[d], de->d_name, all);
                }
                closedir(dh);
        }
        /* Every request expectation has its file, and every file was run. */
        cJSON_ArrayForEach(e, all) {
                if (strcmp(str(e, "kind", ""), "event") != 0)
                        expected++;
        }
        cr_expect_eq(checked, expected, "checked %d examples, expected %d",
                     checked, expected);
        cr_expect_geq(checked, 100, "suspiciously few examples: %d", checked);
        cJSON_Delete(all);
}

Test(request_examples, invalid_examples_say_what_they_break) {
        cJSON *all = expectations();
        const cJSON *e;

        cJSON_ArrayForEach(e, all) {
                const char *step = str(e, "step", "validate");

                if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "valid")))
                        continue;
                cr_expect(*str(e, "field", ""), "%s: no field", e->string);
                cr_expect(strcmp(step, "parse") == 0 ||
                              strcmp(step, "validate") == 0,
                          "%s: step %s", e->string, step);
                /* A file named <kind>-bad-<field>-<what>.json */
                cr_expect(strstr(e->string, "-bad-") != NULL,
                          "%s: name it <kind>-bad-<field>-<what>.json",
                          e->string);
        }
        cJSON_Delete(all);
}
