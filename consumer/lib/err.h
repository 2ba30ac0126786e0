/* err.h - the one error value every module returns through.
 *
 * A failure has:
 *   - a kind: transient (worth retrying) or permanent (not);
 *   - a cause: what happened, as a code callers may branch on (out of memory,
 *     cancelled, a deadline, no capacity, ...), and the input it is about
 *     (a request's field, a setting). Decisions read kind, cause, class,
 *     code and field, never the message;
 *   - a code from the layer that failed (HTTP status, CURLcode, libssh2 rc,
 *     errno) and a one-line message for people;
 *   - once a flow gives up on a message, the dead-letter class and step of
 *     contract section 4.
 *
 * Functions return 0 or -1 and take `struct err *err` last. The first failure
 * recorded wins, so the message names the root cause.
 *
 * @locality any thread (a struct err belongs to one thread at a time).
 *
 * Callers: everyone.
 */
#ifndef THOPTER_ERR_H
#define THOPTER_ERR_H

#include <stddef.h>

enum err_kind {
        ERR_NONE = 0,
        ERR_TRANSIENT, /* retry with backoff; do not commit */
        ERR_PERMANENT, /* dead-letter, then commit */
};

/* What happened, when a caller needs to tell. ERR_CAUSE_OTHER is "nothing a
 * caller decides on": read kind and code. */
enum err_cause {
        ERR_CAUSE_OTHER = 0,
        ERR_CAUSE_OOM,            /* out of memory (transient) */
        ERR_CAUSE_CANCELLED,      /* a stop or a revoke told the work to end */
        ERR_CAUSE_DEADLINE,       /* the operation's own deadline passed */
        ERR_CAUSE_NO_CAPACITY,    /* fly has no room for the machine */
        ERR_CAUSE_VOLUME_CLAIMED, /* the volume was taken by another machine */
        ERR_CAUSE_HOST_KEY,       /* ssh: the host key was not the expected */
        ERR_CAUSE_LOGIN,          /* ssh: the login was refused */
        ERR_CAUSE_REMOTE_EXIT,    /* a remote command exited non-zero */
};

/* The dead-letter classes of contract section 4, in its order. */
enum err_class {
        ERRC_NONE = 0,
        ERRC_INVALID_REQUEST,
        ERRC_UNKNOWN_REPOSITORY,
        ERRC_FORBIDDEN_TARGET,
        ERRC_FLY_REJECTED,
        ERRC_FLY_UNAVAILABLE,
        ERRC_CAPACITY,
        ERRC_SSH,
        ERRC_TIMEOUT,
        ERRC_INTERNAL,
};

#define ERR_MSG_LEN 256

struct err {
        enum err_kind kind;
        enum err_cause cause;
        enum err_class cls;    /* set when a flow classifies the failure */
        int code;              /* HTTP status, CURLcode, libssh2 rc or errno */
        char step[32];         /* contract step name, e.g. "delete" */
        char field[64];        /* the input the message starts with: a
                                  request's field ("github.issueNumber",
                                  "payload"; request.c) or a setting
                                  ("THOPTER_SSH_KEY"); "" if none */
        char msg[ERR_MSG_LEN]; /* one line, no '\n'; first failure wins */
        long retry_after_ms;   /* >0: the peer asked us to wait (Retry-After) */
};

/**
 * @brief Record a failure unless one is already recorded.
 *
 * The message is redacted (log_redact) before it is cut to size, and
 * newlines are replaced by spaces.
 * @returns -1 always, so `return err_set(...)` reads naturally.
 */
int err_set(struct err *err, enum err_kind kind, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** @brief err_set() with a cause. @returns -1. */
int err_setc(struct err *err,
             enum err_kind kind,
             enum err_cause cause,
             int code,
             const char *fmt,
             ...) __attribute__((format(printf, 5, 6)));

/** @brief "<what>: out of memory", transient, ERR_CAUSE_OOM. @returns -1. */
int err_oom(struct err *err, const char *what);

/**
 * @brief Replace whatever is recorded by "interrupted by shutdown"
 * (transient, ERR_CAUSE_CANCELLED): a cancelled job's earlier failure is
 * not its outcome. @returns -1.
 */
int err_cancelled(struct err *err);

/** @brief Attach the dead-letter class and step (overwrites). @returns -1. */
int err_classify(struct err *err, enum err_class cls, const char *step);

/** @brief Forget any recorded failure (start of a new attempt). */
void err_clear(struct err *err);

/** @brief Contract name of a class ("fly_unavailable"); "" for ERRC_NONE. */
const char *err_class_name(enum err_class cls);

/** @brief Parse a contract class name; ERRC_NONE when unknown. */
enum err_class err_class_parse(const char *name);

const char *err_kind_name(enum err_kind kind);

#endif
