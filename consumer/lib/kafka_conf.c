/* kafka_conf.c - see kafka_conf.h. */
#include "kafka_conf.h"
#include "log.h"

#include <string.h>

static void
log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
        enum log_level lvl = level <= 3   ? LOG_ERROR
                             : level <= 5 ? LOG_WARN
                             : level == 6 ? LOG_INFO
                                          : LOG_DEBUG;
        log_write(lvl, "kafka", NULL, "%s: %s: %s", rd_kafka_name(rk), fac,
                  buf);
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

rd_kafka_conf_t *kafka_conf_new(const char *brokers,
                                char *const *props,
                                int nprops,
                                struct err *err) {
        rd_kafka_conf_t *conf = rd_kafka_conf_new();

        rd_kafka_conf_set_log_cb(conf, log_cb);
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
                if (kafka_conf_set(conf, key, eq + 1, err) == -1)
                        goto fail;
        }
        return conf;
fail:
        rd_kafka_conf_destroy(conf);
        return NULL;
}
