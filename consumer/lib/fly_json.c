/* fly_json.c - Machines API JSON mapping; see fly_json.h.
 *
 * Parsers call cJSON_Delete before they return and copy what they keep into
 * the caller's fixed-size structs, so nothing cJSON owns escapes.
 */
#include "fly_json.h"
#include "secret.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_MOUNT_PATH "/data"

/* Copy member @p key of @p obj into dst. Absent or null: "". */
static int copy_str(
    const cJSON *obj, const char *key, char *dst, size_t cap, struct err *err) {
        const cJSON *it =
            obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
        size_t n;

        dst[0] = '\0';
        if (!it || cJSON_IsNull(it))
                return 0;
        if (!cJSON_IsString(it) || !it->valuestring)
                return err_set(err, ERR_PERMANENT, 0,
                               "field %s is not a string", key);
        n = strlen(it->valuestring);
        if (n >= cap)
                return err_set(err, ERR_PERMANENT, 0,
                               "field %s too long (%zu bytes, max %zu)", key, n,
                               cap - 1);
        memcpy(dst, it->valuestring, n + 1);
        return 0;
}

static const cJSON *
member_object(const cJSON *obj, const char *key, struct err *err, int *bad) {
        const cJSON *it =
            obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
        if (!it || cJSON_IsNull(it))
                return NULL;
        if (!cJSON_IsObject(it)) {
                err_set(err, ERR_PERMANENT, 0, "field %s is not an object",
                        key);
                *bad = 1;
                return NULL;
        }
        return it;
}

/* An upper bound of the values cJSON would make of @p body: one per ',',
 * '[' and '{' outside strings, plus one. Reading it costs one pass and no
 * memory, where the tree costs about 64 bytes a value plus its strings. */
static size_t value_bound(const char *body, size_t len) {
        size_t n = 1;
        bool in_string = false;

        for (size_t i = 0; i < len; i++) {
                char c = body[i];
                if (in_string) {
                        if (c == '\\')
                                i++;
                        else if (c == '"')
                                in_string = false;
                } else if (c == '"') {
                        in_string = true;
                } else if (c == ',' || c == '[' || c == '{') {
                        n++;
                }
        }
        return n;
}

static cJSON *parse(const char *body, size_t len, struct err *err) {
        cJSON *root = NULL;

        if (!body || len == 0) {
                err_set(err, ERR_PERMANENT, 0, "empty response body");
                return NULL;
        }
        /* A body of tiny values ("[1,1,1,…]") would make a tree 30 times its
         * size: refuse it before cJSON allocates anything. */
        if (value_bound(body, len) > FLY_JSON_VALUES_MAX) {
                err_set(err, ERR_PERMANENT, 0,
                        "response has more than %d JSON values",
                        FLY_JSON_VALUES_MAX);
                return NULL;
        }
        root = cJSON_ParseWithLength(body, len);
        if (!root)
                err_set(err, ERR_PERMANENT, 0, "response is not JSON");
        return root;
}

static int
machine_from(const cJSON *obj, struct fly_machine *m, struct err *err) {
        const cJSON *config, *meta, *mounts;
        int bad = 0;

        memset(m, 0, sizeof(*m));
        if (!cJSON_IsObject(obj))
                return err_set(err, ERR_PERMANENT, 0,
                               "machine is not an object");
        if (copy_str(obj, "id", m->id, sizeof(m->id), err) == -1 ||
            copy_str(obj, "name", m->name, sizeof(m->name), err) == -1 ||
            copy_str(obj, "state", m->state, sizeof(m->state), err) == -1 ||
            copy_str(obj, "region", m->region, sizeof(m->region), err) == -1 ||
            copy_str(obj, "private_ip", m->private_ip, sizeof(m->private_ip),
                     err) == -1 ||
            copy_str(obj, "instance_id", m->instance_id, sizeof(m->instance_id),
                     err) == -1)
                return -1;
        if (!m->id[0])
                return err_set(err, ERR_PERMANENT, 0, "machine without id");
        /* Newer servers name the version "version"; same value. */
        if (!m->instance_id[0] && copy_str(obj, "version", m->instance_id,
                                           sizeof(m->instance_id), err) == -1)
                return -1;

        config = member_object(obj, "config", err, &bad);
        meta = member_object(config, "metadata", err, &bad);
        if (bad)
                return -1;
        if (copy_str(config, "image", m->image, sizeof(m->image), err) == -1 ||
            copy_str(meta, "thopter_request_id", m->request_id,
                     sizeof(m->request_id), err) == -1 ||
            copy_str(meta, "thopter_role", m->role, sizeof(m->role), err) ==
                -1 ||
            copy_str(meta, "thopter_provisioned", m->provisioned,
                     sizeof(m->provisioned), err) == -1 ||
            copy_str(obj, "created_at", m->created_at, sizeof(m->created_at),
                     err) == -1 ||
            copy_str(obj, "updated_at", m->updated_at, sizeof(m->updated_at),
                     err) == -1)
                return -1;

        mounts =
            config ? cJSON_GetObjectItemCaseSensitive(config, "mounts") : NULL;
        if (mounts && !cJSON_IsNull(mounts)) {
                if (!cJSON_IsArray(mounts))
                        return err_set(err, ERR_PERMANENT, 0,
                                       "field mounts is not an array");
                const cJSON *first = cJSON_GetArrayItem(mounts, 0);
                if (first && copy_str(first, "volume", m->volume_id,
                                      sizeof(m->volume_id), err) == -1)
                        return -1;
        }
        return 0;
}

bool fly_json_machine_state_active(const char *state) {
        return !state || (strcmp(state, "destroyed") != 0 &&
                          strcmp(state, "destroying") != 0);
}

int fly_json_machine_parse(const char *body,
                           size_t len,
                           struct fly_machine *out,
                           struct err *err) {
        cJSON *root = parse(body, len, err);
        int rc;

        if (!root)
                return -1;
        rc = machine_from(root, out, err);
        cJSON_Delete(root);
        return rc;
}

/* One element of a list response: parse @p it into @p item; 1 keeps it, 0
 * leaves it out, -1 fails the whole list. */
typedef int(list_element_fn)(const cJSON *it,
                             void *item,
                             const void *ctx,
                             struct err *err);

/* A JSON array of @p what into a malloc'd array of @p size-byte items. At
 * most FLY_JSON_LIST_MAX elements; only the kept ones take memory, growing by
 * doubling: sizing the array by the element count made every element of a
 * hostile list cost a whole struct whether it was kept or not. */
static int parse_list(const char *body,
                      size_t len,
                      const char *what,
                      size_t size,
                      list_element_fn *fn,
                      const void *ctx,
                      void **out,
                      size_t *n,
                      struct err *err) {
        unsigned char *list = NULL, *item = malloc(size);
        cJSON *root = NULL;
        const cJSON *it;
        size_t count = 0, cap = 0;
        int rc = -1;

        *out = NULL;
        *n = 0;
        if (!item) {
                err_oom(err, "fly json");
                goto out;
        }
        root = parse(body, len, err);
        if (!root)
                goto out;
        if (!cJSON_IsArray(root)) {
                err_set(err, ERR_PERMANENT, 0, "%s list is not an array", what);
                goto out;
        }
        if (cJSON_GetArraySize(root) > FLY_JSON_LIST_MAX) {
                err_set(err, ERR_PERMANENT, 0,
                        "%s list has more than %d elements", what,
                        FLY_JSON_LIST_MAX);
                goto out;
        }
        cJSON_ArrayForEach(it, root) {
                int keep = fn(it, item, ctx, err);
                if (keep == -1)
                        goto out;
                if (!keep)
                        continue;
                if (count == cap) {
                        size_t ncap = cap ? 2 * cap : 8;
                        void *grown = realloc(list, ncap * size);
                        if (!grown) {
                                err_oom(err, "fly json");
                                goto out;
                        }
                        list = grown;
                        cap = ncap;
                }
                memcpy(list + count++ * size, item, size);
        }
        *out = list;
        *n = count;
        list = NULL;
        rc = 0;
out:
        free(item);
        free(list);
        cJSON_Delete(root);
        return rc;
}

static int
machine_element(const cJSON *it, void *item, const void *ctx, struct err *err) {
        const bool *include_deleted = ctx;
        struct fly_machine *m = item;
        if (machine_from(it, m, err) == -1)
                return -1;
        return *include_deleted || fly_json_machine_state_active(m->state);
}

int fly_json_machines_parse(const char *body,
                            size_t len,
                            bool include_deleted,
                            struct fly_machine **out,
                            size_t *n,
                            struct err *err) {
        return parse_list(body, len, "machine", sizeof(**out), machine_element,
                          &include_deleted, (void **)out, n, err);
}

static int
volume_from(const cJSON *obj, struct fly_volume *v, struct err *err) {
        const cJSON *size;

        memset(v, 0, sizeof(*v));
        if (!cJSON_IsObject(obj))
                return err_set(err, ERR_PERMANENT, 0,
                               "volume is not an object");
        if (copy_str(obj, "id", v->id, sizeof(v->id), err) == -1 ||
            copy_str(obj, "name", v->name, sizeof(v->name), err) == -1 ||
            copy_str(obj, "state", v->state, sizeof(v->state), err) == -1 ||
            copy_str(obj, "region", v->region, sizeof(v->region), err) == -1 ||
            copy_str(obj, "attached_machine_id", v->attached_machine_id,
                     sizeof(v->attached_machine_id), err) == -1)
                return -1;
        if (!v->id[0])
                return err_set(err, ERR_PERMANENT, 0, "volume without id");
        size = cJSON_GetObjectItemCaseSensitive(obj, "size_gb");
        if (size && !cJSON_IsNull(size)) {
                if (!cJSON_IsNumber(size) || size->valuedouble < 0 ||
                    size->valuedouble > 1e6)
                        return err_set(err, ERR_PERMANENT, 0,
                                       "field size_gb is not a size");
                v->size_gb = (int)size->valuedouble;
        }
        return 0;
}

static bool volume_state_listed(const char *state) {
        static const char *const gone[] = {
            "scheduling_destroy", "fork_cleanup", "waiting_for_detach",
            "pending_destroy",    "destroying",   "destroyed",
        };
        for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
                if (strcmp(state, gone[i]) == 0)
                        return false;
        return true;
}

int fly_json_volume_parse(const char *body,
                          size_t len,
                          struct fly_volume *out,
                          struct err *err) {
        cJSON *root = parse(body, len, err);
        int rc;

        if (!root)
                return -1;
        rc = volume_from(root, out, err);
        cJSON_Delete(root);
        return rc;
}

static int
volume_element(const cJSON *it, void *item, const void *ctx, struct err *err) {
        struct fly_volume *v = item;
        (void)ctx;
        if (volume_from(it, v, err) == -1)
                return -1;
        return volume_state_listed(v->state);
}

int fly_json_volumes_parse(const char *body,
                           size_t len,
                           struct fly_volume **out,
                           size_t *n,
                           struct err *err) {
        return parse_list(body, len, "volume", sizeof(**out), volume_element,
                          NULL, (void **)out, n, err);
}

/* ---- request bodies ----------------------------------------------------- */

static int add_map(cJSON *parent,
                   const char *name,
                   const struct fly_kv *kv,
                   size_t n,
                   struct err *err) {
        cJSON *map;

        if (n == 0)
                return 0;
        map = cJSON_AddObjectToObject(parent, name);
        if (!map)
                return err_oom(err, "fly json");
        for (size_t i = 0; i < n; i++) {
                if (!kv[i].key || !kv[i].key[0] || !kv[i].value)
                        return err_set(err, ERR_PERMANENT, 0,
                                       "%s entry %zu has no key or value", name,
                                       i);
                if (!cJSON_AddStringToObject(map, kv[i].key, kv[i].value))
                        return err_oom(err, "fly json");
        }
        return 0;
}

static int
add_guest(cJSON *config, const struct fly_create_spec *spec, struct err *err) {
        cJSON *guest;

        if (!spec->cpu_kind && spec->cpus <= 0 && spec->memory_mb <= 0)
                return 0;
        guest = cJSON_AddObjectToObject(config, "guest");
        if (!guest ||
            (spec->cpu_kind &&
             !cJSON_AddStringToObject(guest, "cpu_kind", spec->cpu_kind)) ||
            (spec->cpus > 0 &&
             !cJSON_AddNumberToObject(guest, "cpus", spec->cpus)) ||
            (spec->memory_mb > 0 &&
             !cJSON_AddNumberToObject(guest, "memory_mb", spec->memory_mb)))
                return err_oom(err, "fly json");
        return 0;
}

static int
add_mount(cJSON *config, const struct fly_create_spec *spec, struct err *err) {
        cJSON *mounts, *mount;

        if (!spec->volume_id)
                return 0;
        mounts = cJSON_AddArrayToObject(config, "mounts");
        mount = cJSON_CreateObject();
        if (!mounts || !mount) {
                cJSON_Delete(mount);
                return err_oom(err, "fly json");
        }
        /* cJSON 1.7.15's AddItemToArray returns cJSON_bool; on failure the
         * item is still ours. */
        if (!cJSON_AddItemToArray(mounts, mount)) {
                cJSON_Delete(mount);
                return err_oom(err, "fly json");
        }
        if (!cJSON_AddStringToObject(mount, "volume", spec->volume_id) ||
            !cJSON_AddStringToObject(mount, "path",
                                     spec->mount_path ? spec->mount_path
                                                      : DEFAULT_MOUNT_PATH))
                return err_oom(err, "fly json");
        return 0;
}

static int
add_files(cJSON *config, const struct fly_create_spec *spec, struct err *err) {
        cJSON *files;

        if (spec->n_files == 0)
                return 0;
        files = cJSON_AddArrayToObject(config, "files");
        if (!files)
                return err_oom(err, "fly json");
        for (size_t i = 0; i < spec->n_files; i++) {
                const struct fly_file *f = &spec->files[i];
                cJSON *file;
                char *b64;

                if (!f->guest_path || f->guest_path[0] != '/')
                        return err_set(err, ERR_PERMANENT, 0,
                                       "files entry %zu: guest_path must be "
                                       "absolute",
                                       i);
                b64 = malloc(4 * ((f->len + 2) / 3) + 1);
                file = cJSON_CreateObject();
                if (!b64 || !file || !cJSON_AddItemToArray(files, file)) {
                        free(b64);
                        cJSON_Delete(file);
                        return err_oom(err, "fly json");
                }
                EVP_EncodeBlock((unsigned char *)b64, f->data, (int)f->len);
                int ok = cJSON_AddStringToObject(file, "guest_path",
                                                 f->guest_path) &&
                         cJSON_AddStringToObject(file, "raw_value", b64) &&
                         (!f->mode ||
                          cJSON_AddNumberToObject(file, "mode", f->mode));
                /* A file may be a private key: no copy left in freed heap. */
                secret_free(b64);
                if (!ok)
                        return err_oom(err, "fly json");
        }
        return 0;
}

/* The files' contents may be private keys: wipe cJSON's copies before the
 * tree is freed. */
static void wipe_file_values(cJSON *root) {
        cJSON *config = cJSON_GetObjectItemCaseSensitive(root, "config");
        cJSON *file;
        cJSON_ArrayForEach(file,
                           cJSON_GetObjectItemCaseSensitive(config, "files")) {
                cJSON *v = cJSON_GetObjectItemCaseSensitive(file, "raw_value");
                if (cJSON_IsString(v))
                        secret_wipe(v->valuestring, strlen(v->valuestring));
        }
}

/* Print and hand back memory the caller can free(). */
static char *print(cJSON *root, struct err *err) {
        char *s = cJSON_PrintUnformatted(root);
        char *copy = s ? strdup(s) : NULL;

        if (s)
                secret_wipe(s, strlen(s));
        cJSON_free(s);
        if (!copy)
                err_oom(err, "fly json");
        return copy;
}

char *fly_json_create_body(const struct fly_create_spec *spec,
                           struct err *err) {
        cJSON *root = NULL, *config, *restart;
        char *body = NULL;

        if (!spec || !spec->image || !spec->image[0]) {
                err_set(err, ERR_PERMANENT, 0, "create spec without image");
                goto out;
        }
        root = cJSON_CreateObject();
        if (!root ||
            (spec->name &&
             !cJSON_AddStringToObject(root, "name", spec->name)) ||
            (spec->region &&
             !cJSON_AddStringToObject(root, "region", spec->region))) {
                err_oom(err, "fly json");
                goto out;
        }
        config = cJSON_AddObjectToObject(root, "config");
        if (!config || !cJSON_AddStringToObject(config, "image", spec->image)) {
                err_oom(err, "fly json");
                goto out;
        }
        if (add_map(config, "env", spec->env, spec->n_env, err) == -1 ||
            add_guest(config, spec, err) == -1 ||
            add_map(config, "metadata", spec->metadata, spec->n_metadata,
                    err) == -1 ||
            add_mount(config, spec, err) == -1 ||
            add_files(config, spec, err) == -1)
                goto out;
        /* Why "no" and auto_destroy false: see fly_json.h. */
        restart = cJSON_AddObjectToObject(config, "restart");
        if (!restart || !cJSON_AddStringToObject(restart, "policy", "no") ||
            !cJSON_AddFalseToObject(config, "auto_destroy")) {
                err_oom(err, "fly json");
                goto out;
        }
        body = print(root, err);
out:
        wipe_file_values(root);
        cJSON_Delete(root);
        return body;
}

char *fly_json_metadata_body(const char *value, struct err *err) {
        cJSON *root = cJSON_CreateObject();
        char *body = NULL;

        if (!root ||
            !cJSON_AddStringToObject(root, "value", value ? value : ""))
                err_oom(err, "fly json");
        else
                body = print(root, err);
        cJSON_Delete(root);
        return body;
}

char *fly_json_volume_create_body(const char *name,
                                  int size_gb,
                                  const char *region,
                                  struct err *err) {
        cJSON *root = NULL;
        char *body = NULL;

        if (!name || !name[0]) {
                err_set(err, ERR_PERMANENT, 0, "volume without name");
                goto out;
        }
        root = cJSON_CreateObject();
        if (!root || !cJSON_AddStringToObject(root, "name", name) ||
            (size_gb > 0 &&
             !cJSON_AddNumberToObject(root, "size_gb", size_gb)) ||
            (region && !cJSON_AddStringToObject(root, "region", region))) {
                err_oom(err, "fly json");
                goto out;
        }
        body = print(root, err);
out:
        cJSON_Delete(root);
        return body;
}

/* ---- error bodies ------------------------------------------------------- */

static void put_text(char *buf, size_t cap, const char *s, size_t n) {
        size_t used = strlen(buf);

        for (size_t i = 0; i < n && used + 1 < cap; i++) {
                unsigned char c = (unsigned char)s[i];
                buf[used++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
        }
        buf[used] = '\0';
}

static const char *str_member(const cJSON *obj, const char *key) {
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
        return cJSON_IsString(it) && it->valuestring[0] ? it->valuestring
                                                        : NULL;
}

void fly_json_error_text(const char *body, size_t len, char *buf, size_t cap) {
        cJSON *root = NULL;

        if (!buf || cap == 0)
                return;
        buf[0] = '\0';
        if (!body || len == 0)
                return;
        /* Over the bound it is read as text, as a body that is not JSON. */
        if (value_bound(body, len) <= FLY_JSON_VALUES_MAX)
                root = cJSON_ParseWithLength(body, len);
        if (cJSON_IsObject(root)) {
                const char *text = str_member(root, "error");
                const char *status = str_member(root, "status");
                if (!text)
                        text = str_member(root, "message");
                if (text)
                        put_text(buf, cap, text, strlen(text));
                /* "status":"error" in the old lease shape says nothing. */
                if (status && strcmp(status, "error") != 0) {
                        put_text(buf, cap, text ? " (" : "(", text ? 2 : 1);
                        put_text(buf, cap, status, strlen(status));
                        put_text(buf, cap, ")", 1);
                }
        }
        if (!buf[0] && !root) {
                /* Not JSON (a proxy's HTML, plain text): use it as text. */
                while (len > 0 &&
                       (body[len - 1] == '\n' || body[len - 1] == '\r' ||
                        body[len - 1] == ' '))
                        len--;
                put_text(buf, cap, body, len);
        }
        cJSON_Delete(root);
}

static int contains_ci(const char *hay, const char *needle) {
        size_t n = strlen(needle);
        int first = tolower((unsigned char)needle[0]);
        for (; *hay; hay++)
                if (tolower((unsigned char)*hay) == first &&
                    strncasecmp(hay, needle, n) == 0)
                        return 1;
        return 0;
}

enum err_cause fly_json_error_cause(long status, const char *text) {
        static const char *const capacity[] = {
            "insufficient_capacity",
            "insufficient resources",
            "insufficient memory",
            "insufficient cpus",
            "no capacity",
            "could not reserve resource",
            "deploys to this host are temporarily disabled",
            "over the allowed quota",
        };
        if (status >= 200 && status < 300)
                return ERR_CAUSE_OTHER;
        if (status == 412 && contains_ci(text, "already claimed"))
                return ERR_CAUSE_VOLUME_CLAIMED;
        for (size_t i = 0; i < sizeof(capacity) / sizeof(capacity[0]); i++)
                if (contains_ci(text, capacity[i]))
                        return ERR_CAUSE_NO_CAPACITY;
        return ERR_CAUSE_OTHER;
}
