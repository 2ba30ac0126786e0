/* fuzz_fly_json.c - libFuzzer target over fly_json.c: what a hostile fly
 * API (or anything posing as it on the private network) can send back.
 *
 * Every input goes, as a body of exactly its size (no NUL after it: ASan
 * catches a read past the end), through the machine, machine-list, volume
 * and volume-list parsers and the error-body reader. Checks:
 * - success: every string field is NUL-terminated inside its buffer, a
 *   machine or volume has an id, a list holds at most FLY_JSON_LIST_MAX
 *   entries, none of them destroyed (machines) or on the destroy path
 *   (volumes), and *out is NULL exactly when *n is 0;
 * - failure: ERR_PERMANENT (ERR_TRANSIENT only for out of memory), a
 *   non-empty one-line message, and *out NULL, *n 0;
 * - fly_json_error_text(): at most cap - 1 bytes, no control byte, the same
 *   text for a smaller cap's prefix; fly_json_error_cause() is one of its
 *   three values.
 */
#include "fly_json.h"
#include "fuzz_common.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TERMINATED(field) CHECK(memchr((field), '\0', sizeof(field)) != NULL)

static void check_failure(const struct err *err) {
        CHECK(err->kind == ERR_PERMANENT ||
              (err->kind == ERR_TRANSIENT && err->cause == ERR_CAUSE_OOM));
        CHECK(err->msg[0] != '\0');
        CHECK(strchr(err->msg, '\n') == NULL);
}

static void check_machine(const struct fly_machine *m) {
        TERMINATED(m->id);
        TERMINATED(m->name);
        TERMINATED(m->state);
        TERMINATED(m->region);
        TERMINATED(m->private_ip);
        TERMINATED(m->instance_id);
        TERMINATED(m->request_id);
        TERMINATED(m->role);
        TERMINATED(m->volume_id);
        TERMINATED(m->image);
        CHECK(m->id[0] != '\0');
}

static void check_volume(const struct fly_volume *v, int listed) {
        static const char *const gone[] = {
            "scheduling_destroy", "fork_cleanup", "waiting_for_detach",
            "pending_destroy",    "destroying",   "destroyed",
        };
        TERMINATED(v->id);
        TERMINATED(v->name);
        TERMINATED(v->state);
        TERMINATED(v->region);
        TERMINATED(v->attached_machine_id);
        CHECK(v->id[0] != '\0');
        CHECK(v->size_gb >= 0 && v->size_gb <= 1000000);
        if (listed)
                for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
                        CHECK(strcmp(v->state, gone[i]) != 0);
}

static void check_error_text(const char *body, size_t size) {
        char big[512], small[17];

        fly_json_error_text(body, size, big, sizeof(big));
        fly_json_error_text(body, size, small, sizeof(small));
        CHECK(strlen(big) < sizeof(big));
        for (const char *p = big; *p; p++)
                CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
        /* The smaller buffer holds the same text, cut. */
        CHECK(strncmp(big, small, sizeof(small) - 1) == 0);
        enum err_cause c = fly_json_error_cause(409, big);
        CHECK(c == ERR_CAUSE_OTHER || c == ERR_CAUSE_NO_CAPACITY ||
              c == ERR_CAUSE_VOLUME_CLAIMED);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *body = (const char *)data;
        struct fly_machine m, *ml = NULL;
        struct fly_volume v, *vl = NULL;
        size_t n;
        struct err err;

        err = (struct err){0};
        if (fly_json_machine_parse(body, size, &m, &err) == 0) {
                CHECK(err.kind == ERR_NONE);
                check_machine(&m);
        } else {
                check_failure(&err);
        }

        err = (struct err){0};
        n = 12345;
        if (fly_json_machines_parse(body, size, false, &ml, &n, &err) == 0) {
                CHECK(err.kind == ERR_NONE);
                CHECK(n <= FLY_JSON_LIST_MAX);
                CHECK((ml == NULL) == (n == 0));
                for (size_t i = 0; i < n; i++) {
                        check_machine(&ml[i]);
                        CHECK(fly_json_machine_state_active(ml[i].state));
                }
        } else {
                check_failure(&err);
                CHECK(ml == NULL && n == 0);
        }
        free(ml);

        err = (struct err){0};
        if (fly_json_volume_parse(body, size, &v, &err) == 0)
                check_volume(&v, 0);
        else
                check_failure(&err);

        err = (struct err){0};
        n = 12345;
        if (fly_json_volumes_parse(body, size, &vl, &n, &err) == 0) {
                CHECK(n <= FLY_JSON_LIST_MAX);
                CHECK((vl == NULL) == (n == 0));
                for (size_t i = 0; i < n; i++)
                        check_volume(&vl[i], 1);
        } else {
                check_failure(&err);
                CHECK(vl == NULL && n == 0);
        }
        free(vl);

        check_error_text(body, size);
        return 0;
}
