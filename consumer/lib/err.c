/* err.c - recording and naming failures; see err.h. */
#include "err.h"
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const class_names[] = {
    [ERRC_NONE] = "",
    [ERRC_INVALID_REQUEST] = "invalid_request",
    [ERRC_UNKNOWN_REPOSITORY] = "unknown_repository",
    [ERRC_FORBIDDEN_TARGET] = "forbidden_target",
    [ERRC_FLY_REJECTED] = "fly_rejected",
    [ERRC_FLY_UNAVAILABLE] = "fly_unavailable",
    [ERRC_CAPACITY] = "capacity",
    [ERRC_SSH] = "ssh",
    [ERRC_TIMEOUT] = "timeout",
    [ERRC_INTERNAL] = "internal",
};

static int vset(struct err *err,
                enum err_kind kind,
                enum err_cause cause,
                int code,
                const char *fmt,
                va_list ap) {
        char full[4 * ERR_MSG_LEN];

        if (!err || err->kind != ERR_NONE)
                return -1;
        err->kind = kind == ERR_NONE ? ERR_PERMANENT : kind;
        err->cause = cause;
        err->code = code;
        vsnprintf(full, sizeof(full), fmt, ap);
        /* Redact, then cut: a secret cut in half would not be recognised. */
        log_redact_copy(err->msg, sizeof(err->msg), full, LOG_KEEP_HEAD);
        for (char *p = err->msg; *p; p++)
                if (*p == '\n' || *p == '\r')
                        *p = ' ';
        return -1;
}

int err_set(
    struct err *err, enum err_kind kind, int code, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vset(err, kind, ERR_CAUSE_OTHER, code, fmt, ap);
        va_end(ap);
        return -1;
}

int err_setc(struct err *err,
             enum err_kind kind,
             enum err_cause cause,
             int code,
             const char *fmt,
             ...) {
        va_list ap;
        va_start(ap, fmt);
        vset(err, kind, cause, code, fmt, ap);
        va_end(ap);
        return -1;
}

int err_oom(struct err *err, const char *what) {
        return err_setc(err, ERR_TRANSIENT, ERR_CAUSE_OOM, 0,
                        "%s: out of memory", what);
}

int err_cancelled(struct err *err) {
        err_clear(err);
        return err_setc(err, ERR_TRANSIENT, ERR_CAUSE_CANCELLED, 0,
                        "interrupted by shutdown");
}

int err_classify(struct err *err, enum err_class cls, const char *step) {
        if (!err)
                return -1;
        err->cls = cls;
        if (step)
                snprintf(err->step, sizeof(err->step), "%s", step);
        return -1;
}

void err_clear(struct err *err) {
        if (err)
                memset(err, 0, sizeof(*err));
}

const char *err_class_name(enum err_class cls) {
        if ((size_t)cls >= sizeof(class_names) / sizeof(class_names[0]))
                return "internal";
        return class_names[cls];
}

enum err_class err_class_parse(const char *name) {
        if (!name || !*name)
                return ERRC_NONE;
        for (size_t i = 1; i < sizeof(class_names) / sizeof(class_names[0]);
             i++)
                if (strcmp(class_names[i], name) == 0)
                        return (enum err_class)i;
        return ERRC_NONE;
}

const char *err_kind_name(enum err_kind kind) {
        switch (kind) {
        case ERR_NONE:
                return "none";
        case ERR_TRANSIENT:
                return "transient";
        case ERR_PERMANENT:
                return "permanent";
        }
        return "permanent";
}
