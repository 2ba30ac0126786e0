/* test_job.c - job.c: what a handler reports through its job (machine,
 * attempts, events, intake), cancellation of its sleeps, and its token. */
#include "job.h"
#include "clock.h"
#include "test_helpers.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

static void init_job(struct job *job, char *topic, int32_t part, int64_t off) {
        memset(job, 0, sizeof(*job));
        job->rec.topic = topic;
        job->rec.partition = part;
        job->rec.offset = off;
        job->rec.kind = "destroy";
        snprintf(job->request_id, sizeof(job->request_id), "req-1");
}

Test(job, set_machine_sets_what_is_given_and_keeps_the_rest) {
        struct job job;
        char long_name[300];

        init_job(&job, "thopter.destroy", 0, 1);
        job_set_machine(&job, "148e21a3c96989", "thopter-42-x", "ord");
        cr_expect_str_eq(job.thopter_id, "148e21a3c96989");
        cr_expect_str_eq(job.machine_name, "thopter-42-x");
        cr_expect_str_eq(job.region, "ord");

        job_set_machine(&job, NULL, NULL, "ams");
        cr_expect_str_eq(job.thopter_id, "148e21a3c96989");
        cr_expect_str_eq(job.machine_name, "thopter-42-x");
        cr_expect_str_eq(job.region, "ams");

        /* Too long for its field: cut, still terminated. */
        memset(long_name, 'n', sizeof(long_name) - 1);
        long_name[sizeof(long_name) - 1] = '\0';
        job_set_machine(&job, NULL, long_name, NULL);
        cr_expect_eq(strlen(job.machine_name), sizeof(job.machine_name) - 1);
        cr_expect_eq(
            strncmp(job.machine_name, long_name, sizeof(job.machine_name) - 1),
            0);
}

struct attempt_case {
        int notes[6]; /* 0-terminated */
        int want;
};

Test(job, note_attempt_only_raises) {
        static const struct attempt_case cases[] = {
            {{1}, 1},          {{1, 2, 3}, 3}, {{3, 2, 1}, 3},
            {{2, 5, 4, 5}, 5}, {{-1}, 0},      {{0}, 0},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct job job;

                init_job(&job, "t", 0, 0);
                for (size_t k = 0; cases[i].notes[k]; k++)
                        job_note_attempt(&job, cases[i].notes[k]);
                cr_expect_eq(job.attempt, cases[i].want, "case %zu", i);
        }
}

Test(job, sleep_returns_at_once_when_cancelled) {
        struct job job;
        struct err err = {0};
        int64_t t0;

        init_job(&job, "t", 0, 0);
        atomic_store(&job.cancel, 1);
        cr_expect(job_cancelled(&job));
        t0 = clock_mono_ms();
        cr_expect_eq(job_sleep(&job, 60000, &err), -1);
        cr_expect_lt(clock_mono_ms() - t0, 50);
        cr_expect_eq(err.cause, ERR_CAUSE_CANCELLED);
        cr_expect_eq(err.kind, ERR_TRANSIENT);
}

Test(job, sleep_sleeps_when_not_cancelled) {
        struct job job;
        struct err err = {0};
        int64_t t0;

        init_job(&job, "t", 0, 0);
        cr_expect_not(job_cancelled(&job));
        t0 = clock_mono_ms();
        cr_expect_eq(job_sleep(&job, 5, &err), 0);
        cr_expect_geq(clock_mono_ms() - t0, 5);
        cr_expect_eq(err.kind, ERR_NONE);
}

Test(job, emit_step_and_hold_go_through_ops) {
        struct job job;
        struct test_events seen = {0};
        struct err failure = {0};

        init_job(&job, "t", 0, 0);
        job.ops = &test_recording_ops;
        job.ops_ctx = &seen;
        err_set(&failure, ERR_TRANSIENT, 503, "fly: HTTP 503");

        job_emit(&job, "retrying", "delete", &failure);
        cr_expect_eq(seen.n, 1);
        cr_expect_eq(seen.job, &job);
        cr_expect_str_eq(seen.e[0].state, "retrying");
        cr_expect_str_eq(seen.e[0].step, "delete");
        cr_expect_str_eq(seen.e[0].failure, "fly: HTTP 503");

        job_emit(&job, "waiting_fly", NULL, NULL);
        cr_expect_eq(seen.n, 2);
        cr_expect_str_eq(seen.list, "retrying:delete,waiting_fly"); /* NULL */
        cr_expect_str_eq(seen.e[1].failure, "");
        cr_expect_eq(seen.e[1].cls, ERRC_NONE);

        job_step(&job, "clone");
        cr_expect_eq(seen.n, 3);
        cr_expect_str_eq(seen.e[2].state, "step");
        cr_expect_str_eq(seen.e[2].step, "clone");

        job_hold_intake(&job, 1);
        cr_expect_eq(atomic_load(&seen.holds), 1);
        cr_expect_eq(atomic_load(&seen.hold_on), 1);
        job_hold_intake(&job, 0);
        cr_expect_eq(atomic_load(&seen.holds), 2);
        cr_expect_eq(atomic_load(&seen.hold_on), 0);
}

Test(job, without_ops_reports_are_no_ops) {
        static const struct job_ops no_callbacks = {NULL, NULL};
        struct job job;

        init_job(&job, "t", 0, 0);
        job_emit(&job, "retrying", "delete", NULL);
        job_step(&job, "clone");
        job_hold_intake(&job, 1);

        job.ops = &no_callbacks;
        job_emit(&job, "retrying", "delete", NULL);
        job_hold_intake(&job, 1);
}

Test(job, interruptible_is_a_flag) {
        struct job job;

        init_job(&job, "t", 0, 0);
        job_set_interruptible(&job, 1);
        cr_expect_eq(atomic_load(&job.interruptible), 1);
        job_set_interruptible(&job, 0);
        cr_expect_eq(atomic_load(&job.interruptible), 0);
}
