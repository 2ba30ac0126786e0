/* kafka_conf.c - see kafka_conf.h. */
#include "kafka_conf.h"
#include "kafka_log.h"
#include "log.h"
#include "secret.h"
#include "secret_file.h"
#include "strfmt.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int kafka_conf_is_secret(const char *key, size_t len) {
        static const char *const words[] = {"password", "secret"};

        if (len == strlen("ssl.key.pem") && !strncmp(key, "ssl.key.pem", len))
                return 1;
        for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++) {
                size_t wl = strlen(words[w]);
                for (size_t i = 0; i + wl <= len; i++)
                        if (!strncmp(key + i, words[w], wl))
                                return 1;
        }
        return 0;
}

int kafka_conf_read_file(const char *path,
                         const char *what,
                         char ***props,
                         int *n,
                         struct err *err) {
        char *text = secret_file_read(path, what, err);
        char *save = NULL;
        int rc = -1, lineno = 0;

        if (!text)
                return -1;
        size_t len = strlen(text);
        for (char *line = strtok_r(text, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
                lineno++;
                size_t l = strlen(line);
                while (l > 0 && (line[l - 1] == '\r' || line[l - 1] == ' ' ||
                                 line[l - 1] == '\t'))
                        line[--l] = '\0';
                while (*line == ' ' || *line == '\t')
                        line++;
                if (!*line || *line == '#')
                        continue;
                char *eq = strchr(line, '=');
                if (!eq || eq == line) {
                        err_set(err, ERR_PERMANENT, EINVAL,
                                "%s: %s: a line is not key=value (line %d)",
                                what, path, lineno);
                        goto out;
                }
                /* "key = value" too: blanks around '=' are not part of
                 * either. */
                size_t klen = (size_t)(eq - line);
                while (klen > 0 &&
                       (line[klen - 1] == ' ' || line[klen - 1] == '\t'))
                        klen--;
                const char *val = eq + 1;
                while (*val == ' ' || *val == '\t')
                        val++;
                if (kafka_conf_is_secret(line, klen))
                        log_add_secret(val);
                char **grown =
                    realloc(*props, sizeof(char *) * (size_t)(*n + 1));
                if (!grown) {
                        err_oom(err, what);
                        goto out;
                }
                *props = grown;
                grown[*n] = strfmt("%.*s=%s", (int)klen, line, val);
                if (!grown[*n]) {
                        err_oom(err, what);
                        goto out;
                }
                (*n)++;
        }
        rc = 0;
out:
        secret_wipe(text, len);
        free(text);
        return rc;
}

int kafka_conf_set(rd_kafka_conf_t *conf,
                   const char *key,
                   const char *value,
                   struct err *err) {
        char errstr[512];
        if (rd_kafka_conf_set(conf, key, value, errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK)
                return err_set(err, ERR_PERMANENT, 0, "kafka property %s: %s",
                               key, errstr);
        return 0;
}

int kafka_conf_default(rd_kafka_conf_t *conf,
                       char *const *props,
                       int nprops,
                       const char *key,
                       const char *value,
                       struct err *err) {
        size_t klen = strlen(key);
        for (int i = 0; i < nprops; i++)
                if (strncmp(props[i], key, klen) == 0 && props[i][klen] == '=')
                        return 0;
        return kafka_conf_set(conf, key, value, err);
}

/* librdkafka's property table, as rd_kafka_conf_properties_show() prints
 * it ("name | C/P | range | default | importance | description" rows);
 * static for the process's life. */
static char *scope_table;
static pthread_once_t scope_once = PTHREAD_ONCE_INIT;

static void scope_load(void) {
        size_t len = 0;
        FILE *f = open_memstream(&scope_table, &len);
        if (!f)
                return;
        rd_kafka_conf_properties_show(f);
        fclose(f);
}

char kafka_conf_scope(const char *key) {
        size_t k = strlen(key);

        pthread_once(&scope_once, scope_load);
        for (const char *line = scope_table; line && *line;) {
                const char *nl = strchr(line, '\n');
                if (!strncmp(line, key, k) && line[k] == ' ') {
                        const char *bar = strchr(line, '|');
                        if (bar && (!nl || bar < nl)) {
                                bar++;
                                while (*bar == ' ')
                                        bar++;
                                if (*bar == 'C' || *bar == 'P' || *bar == '*')
                                        return *bar;
                        }
                }
                line = nl ? nl + 1 : NULL;
        }
        return 0;
}

static rd_kafka_conf_t *conf_new(int type,
                                 const char *brokers,
                                 char *const *props,
                                 int nprops,
                                 struct err *err) {
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char other = type == RD_KAFKA_PRODUCER   ? 'C'
                     : type == RD_KAFKA_CONSUMER ? 'P'
                                                 : 0;

        rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
        if (brokers && *brokers &&
            kafka_conf_set(conf, "bootstrap.servers", brokers, err) == -1)
                goto fail;
        for (int i = 0; i < nprops; i++) {
                char key[256];
                const char *eq = strchr(props[i], '=');
                if (!eq || (size_t)(eq - props[i]) >= sizeof(key)) {
                        err_set(err, ERR_PERMANENT, 0,
                                "-X %s: expected key=value", props[i]);
                        goto fail;
                }
                memcpy(key, props[i], (size_t)(eq - props[i]));
                key[eq - props[i]] = '\0';
                if (other && kafka_conf_scope(key) == other)
                        continue; /* the other client's property */
                if (kafka_conf_set(conf, key, eq + 1, err) == -1)
                        goto fail;
        }
        return conf;
fail:
        rd_kafka_conf_destroy(conf);
        return NULL;
}

rd_kafka_conf_t *kafka_conf_new(const char *brokers,
                                char *const *props,
                                int nprops,
                                struct err *err) {
        return conf_new(-1, brokers, props, nprops, err);
}

rd_kafka_conf_t *kafka_conf_new_for(rd_kafka_type_t type,
                                    const char *brokers,
                                    char *const *props,
                                    int nprops,
                                    struct err *err) {
        return conf_new((int)type, brokers, props, nprops, err);
}
