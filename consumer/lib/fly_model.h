/* fly_model.h - the fly Machines API's objects as the consumer sees them:
 * a machine, a volume, and what a create sends. Plain structs, no calls.
 *
 * Below both fly_client.c (the routes) and fly_json.c (the JSON mapping), so
 * neither looks up at the other for its types.
 */
#ifndef THOPTER_FLY_MODEL_H
#define THOPTER_FLY_MODEL_H

#include <stddef.h>

/* The fields of a Machine the consumer uses. Strings are "" when absent. */
struct fly_machine {
        char id[64];
        char name[128];
        char state[32];
        char region[32];
        char private_ip[64];
        char instance_id[64];
        char request_id[160]; /* config.metadata.thopter_request_id */
        char role[32];        /* config.metadata.thopter_role */
        char volume_id[64];   /* config.mounts[0].volume */
        char image[256];      /* config.image */
        char created_at[40];  /* RFC 3339, "" when absent */
        char updated_at[40];
        /* config.metadata.thopter_provisioned: the requestId whose provision
         * completed on this machine (set by the consumer at the end). */
        char provisioned[160];
};

struct fly_volume {
        char id[64];
        char name[128];
        char state[32];
        char region[32];
        int size_gb;
        char attached_machine_id[64];
};

struct fly_kv {
        const char *key;
        const char *value;
};

/* A file fly writes into the machine's root filesystem before its init
 * runs (config.files; sent base64-encoded as raw_value). */
struct fly_file {
        const char *guest_path; /* absolute */
        const void *data;
        size_t len;
        unsigned mode; /* chmod(2) bits, sent as "mode"; 0: fly's 0644 */
};

/* Everything a create sends. NULL / 0 members are left out of the body. */
struct fly_create_spec {
        const char *name;
        const char *region;
        const char *image;
        const char *cpu_kind; /* "shared" | "performance" */
        int cpus;
        int memory_mb;
        const struct fly_kv *env; /* config.env */
        size_t n_env;
        const struct fly_kv *metadata; /* config.metadata */
        size_t n_metadata;
        const char *volume_id; /* mounts[0].volume, path "/data" */
        const char *mount_path;
        const struct fly_file *files; /* config.files */
        size_t n_files;
};

#endif
