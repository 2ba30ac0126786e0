/* job.c - the handler side of a job; see job.h. */
#include "job.h"
#include "clock.h"

#include <stdarg.h>
#include <stdio.h>

void job_emit(struct job *job,
              const char *state,
              const char *step,
              const struct err *failure) {
        if (job->ops && job->ops->emit)
                job->ops->emit(job->ops_ctx, job, state, step, failure);
}

void job_step(struct job *job, const char *step) {
        job_log(job, LOG_INFO, "step %s", step);
        job_emit(job, "step", step, NULL);
}

void job_hold_intake(struct job *job, int on) {
        if (job->ops && job->ops->hold)
                job->ops->hold(job->ops_ctx, on);
}

int job_cancelled(const struct job *job) {
        return atomic_load(&job->cancel);
}

void job_set_interruptible(struct job *job, int on) {
        atomic_store(&job->interruptible, on);
}

int job_sleep(struct job *job, int64_t ms, struct err *err) {
        if (clock_sleep_cancellable(ms, &job->cancel) == -1)
                return err_cancelled(err);
        return 0;
}

void job_set_machine(struct job *job,
                     const char *id,
                     const char *name,
                     const char *region) {
        if (id)
                snprintf(job->thopter_id, sizeof(job->thopter_id), "%s", id);
        if (name)
                snprintf(job->machine_name, sizeof(job->machine_name), "%s",
                         name);
        if (region)
                snprintf(job->region, sizeof(job->region), "%s", region);
}

void job_set_left_behind(struct job *job, const char *id) {
        snprintf(job->left_behind, sizeof(job->left_behind), "%s", id);
}

void job_set_warning(struct job *job, const char *code, const char *message) {
        if (!code) {
                job->warning_code[0] = job->warning[0] = '\0';
                return;
        }
        snprintf(job->warning_code, sizeof(job->warning_code), "%s", code);
        snprintf(job->warning, sizeof(job->warning), "%s", message);
        job_log(job, LOG_WARN, "%s: %s", code, message);
}

void job_note_attempt(struct job *job, int attempt) {
        if (attempt > job->attempt)
                job->attempt = attempt;
}

void job_log(const struct job *job,
             enum log_level level,
             const char *fmt,
             ...) {
        char msg[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        log_write(level, job->rec.kind, job->request_id, "%s", msg);
}
