/* provision_int.h - what the provision_*.c files share; not for anyone else
 * (the public contract is provision.h).
 */
#ifndef THOPTER_PROVISION_INT_H
#define THOPTER_PROVISION_INT_H

#include "destroy.h"
#include "provision.h"
#include "provision_claims.h"
#include "request.h"
#include "ssh_client.h"
#include "ssh_keys.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define PROVISION_VOLUME_NAME "thopter_data"
/* The done marker (the launch writes it; a redelivery whose machine has no
 * thopter_provisioned mark yet reads it): root's, in a directory only root
 * may write, never in the agent's home, where the agent could remove it or
 * plant a link for root to write through. */
#define PROVISION_STATE_DIR    "/var/lib/thopter"
#define PROVISION_STATE_MARKER PROVISION_STATE_DIR "/provisioned"
/* Contract 5.13: where a machine finds its SSH keys (config.files). */
#define PROVISION_HOST_KEY_PATH        "/etc/thopter/ssh/ssh_host_ed25519_key"
#define PROVISION_AUTHORIZED_KEYS_PATH "/etc/thopter/ssh/authorized_keys"

/* Shared by every worker of the provision loop (MAX_CONCURRENT_PROVISIONS):
 * read-only after provision_ctx_new() but for seed (under seed_lock) and
 * claims (its own lock). */
struct provision_ctx {
        struct provision_deps deps;
        struct destroy_deps destroy; /* the clean-up's */
        pthread_mutex_t seed_lock;
        unsigned seed;                   /* seed_lock: machine name suffixes */
        struct provision_claims *claims; /* volumes, slots, GC turns */
        unsigned char *key_secret; /* THOPTER_SSH_KEY's bytes (ssh_keys.h) */
        size_t key_secret_len;
        char *authorized_key; /* the consumer's public key line */
};

/* The Golden Claude as far as it is known before its step: picked from a
 * machines list the run already made, and connected while the thopter
 * boots (provision_golden_claude_prepare()). */
struct provision_gc {
        int known; /* a list was seen: found says what it held */
        int found; /* machine is a started gc-<name> or gc-default */
        struct fly_machine machine;
        int tried;            /* the one connect attempt was made: ssh or err */
        struct ssh_conn *ssh; /* owned; NULL when the attempt failed */
        struct err err;       /* why the attempt failed */
};

/* Everything one run knows; freed at its end. */
struct provision_run {
        struct provision_ctx *ctx;
        const struct config *cfg;
        struct job *job;
        struct provision_request *req;
        const struct repo_cred *repo;
        struct fly_machine machine;
        int have_machine;
        struct ssh_conn *ssh;
        struct ssh_host_key host_key; /* made for this request's machine */
        char *note; /* a line for the next remote step's log */
        char workspace[512];
        char work_branch[160];
        int64_t ready_deadline; /* monotonic; set at create (or lookup) */
        int create_attempts;    /* create calls made (not the lookups) */
        struct provision_gc gc;
};

/* provision_fly.c */
enum provision_found {
        FOUND_NONE, /* no machine for this request: create one */
        FOUND_LIVE, /* its machine exists: resume (or nothing, if done) */
        FOUND_DONE, /* it completed and its machine was destroyed since */
};
/** What fly knows of this request's machine, into r->machine. */
int provision_lookup(struct provision_run *r,
                     enum provision_found *found,
                     struct err *err);
/** Mark the machine: this request's provision completed on it. */
void provision_mark_done(struct provision_run *r);
/** Contract 5.8: wait, do not fail, while MAX_THOPTERS are started. */
int provision_capacity(struct provision_run *r, struct err *err);
/** Pick or create a volume, create the machine. */
int provision_create(struct provision_run *r, struct err *err);
/** Wait until fly says the machine is started (within ready_deadline); the
 * caller has announced the step. */
int provision_wait_started(struct provision_run *r, struct err *err);
/** No orphans: remove the failed provision's machine. */
void provision_cleanup(struct provision_run *r);

/* provision_remote.c */
/** A line for THOPTER_REMOTE_LOG, written with the next remote step. */
int provision_remote_note(struct provision_run *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/** Connect until sshd accepts (within ready_deadline). */
int provision_connect(struct provision_run *r, struct err *err);
/** Whether the done marker of this request is on the machine. */
int provision_is_done(struct provision_run *r, int *done, struct err *err);
/** Note in r->gc which of @p ms (a list of every machine of the app, valid
 * for the call) is this request's Golden Claude. */
void provision_gc_pick(struct provision_run *r,
                       const struct fly_machine *ms,
                       size_t n);
/** Best effort, for the time the thopter boots: look the Golden Claude up
 * (unless known) and make the one connect attempt. Nothing fails here:
 * provision_golden_claude() acts on what was found, as without it. */
void provision_golden_claude_prepare(struct provision_run *r);
/** Copy the Golden Claude's login; closes r->gc.ssh. */
int provision_golden_claude(struct provision_run *r, struct err *err);
int provision_git(struct provision_run *r, struct err *err);
int provision_context_files(struct provision_run *r, struct err *err);
int provision_launch(struct provision_run *r, struct err *err);

#endif
