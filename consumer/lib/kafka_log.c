/* kafka_log.c - see kafka_log.h. */
#include "kafka_log.h"
#include "clock.h"
#include "log.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct kafka_log_seen seen; /* under lock */

void kafka_log_key(const char *buf, const char *name, char *out, size_t cap) {
        const char *p = buf;
        size_t n;

        if (strncmp(p, "[thrd:", 6) == 0) {
                const char *end = strstr(p, "]: ");
                if (end)
                        p = end + 3;
        }
        n = name ? strlen(name) : 0;
        if (n && strncmp(p, name, n) == 0 && strncmp(p + n, ": ", 2) == 0)
                p += n + 2;
        snprintf(out, cap, "%s", p);
        /* librdkafka's "(after 12ms in state UP[, N identical error(s)
         * suppressed])": the only part that changes between repeats. */
        char *tail = strstr(out, " (after ");
        if (tail && isdigit((unsigned char)tail[8]) && strchr(tail, ')'))
                *tail = '\0';
}

int kafka_log_admit(struct kafka_log_seen *s,
                    const char *key,
                    int level,
                    int64_t now_ms,
                    long *suppressed) {
        int oldest = 0;

        *suppressed = 0;
        for (int i = 0; i < KAFKA_LOG_SLOTS; i++) {
                if (s->slot[i].written_ms && s->slot[i].level == level &&
                    strcmp(s->slot[i].key, key) == 0) {
                        if (now_ms - s->slot[i].written_ms <
                            KAFKA_LOG_REPEAT_MS) {
                                s->slot[i].suppressed++;
                                return 0;
                        }
                        *suppressed = s->slot[i].suppressed;
                        s->slot[i].suppressed = 0;
                        s->slot[i].written_ms = now_ms;
                        return 1;
                }
                if (s->slot[i].written_ms < s->slot[oldest].written_ms)
                        oldest = i;
        }
        /* A new line takes a free slot, or the one written longest ago. */
        snprintf(s->slot[oldest].key, sizeof(s->slot[oldest].key), "%s", key);
        s->slot[oldest].level = level;
        s->slot[oldest].written_ms = now_ms ? now_ms : 1;
        s->slot[oldest].suppressed = 0;
        return 1;
}

void kafka_log_cb(const rd_kafka_t *rk,
                  int level,
                  const char *fac,
                  const char *buf) {
        enum log_level lvl = level <= 3   ? LOG_ERROR
                             : level <= 5 ? LOG_WARN
                             : level == 6 ? LOG_INFO
                                          : LOG_DEBUG;
        const char *name = rd_kafka_name(rk);
        char key[KAFKA_LOG_KEY_MAX];
        long suppressed = 0;
        int write;

        kafka_log_key(buf, name, key, sizeof(key));
        pthread_mutex_lock(&lock);
        write =
            kafka_log_admit(&seen, key, (int)lvl, clock_mono_ms(), &suppressed);
        pthread_mutex_unlock(&lock);
        if (!write)
                return;
        if (suppressed)
                log_write(lvl, "kafka", NULL,
                          "%s: %s: %s (and %ld more like it in the last %d s)",
                          name, fac, buf, suppressed,
                          KAFKA_LOG_REPEAT_MS / 1000);
        else
                log_write(lvl, "kafka", NULL, "%s: %s: %s", name, fac, buf);
}
