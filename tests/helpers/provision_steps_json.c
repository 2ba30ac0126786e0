/* provision_steps_json.c - tests only: the table of provision steps
 * (provision_steps.h) as JSON, so tests/unit/test_provision_steps.py checks
 * the docs against what the code has, not against a copy of it.
 *
 *   provision_steps_json     one array on stdout, in PSTEP_ order:
 *     [{"name": "...", "what": "...", "timeout": "THOPTER_..." or null,
 *       "retried": true/false, "fails": true/false}, ...]
 *
 * Exit 0; 1 when a row is empty (a PSTEP_ id without its row).
 */
#include "provision_steps.h"

#include <stdio.h>

/* The table holds only our own ASCII text; escape anyway, so a quote in a
 * description cannot break the JSON the test reads. */
static void put_string(const char *s) {
        putchar('"');
        for (; *s; s++) {
                if (*s == '"' || *s == '\\')
                        printf("\\%c", *s);
                else if ((unsigned char)*s < 0x20)
                        printf("\\u%04x", (unsigned char)*s);
                else
                        putchar(*s);
        }
        putchar('"');
}

int main(void) {
        int rc = 0;

        putchar('[');
        for (int i = 0; i < PSTEP_COUNT; i++) {
                const struct provision_step *s =
                    provision_steps_get((enum provision_steps_id)i);
                if (!s || !s->name || !s->what) {
                        fprintf(stderr, "provision step %d has no row\n", i);
                        rc = 1;
                        continue;
                }
                printf("%s\n {\"name\": ", i ? "," : "");
                put_string(s->name);
                printf(", \"what\": ");
                put_string(s->what);
                printf(", \"timeout\": ");
                if (s->timeout)
                        put_string(s->timeout);
                else
                        printf("null");
                printf(", \"retried\": %s, \"fails\": %s}",
                       s->retried ? "true" : "false",
                       s->fails ? "true" : "false");
        }
        printf("\n]\n");
        return rc;
}
