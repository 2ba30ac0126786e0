/* kafka_log.h - librdkafka's own log lines, through log.h, repeats
 * collapsed.
 *
 * librdkafka logs from its threads, and a broker that is down makes every
 * client handle say the same thing again and again: "Connect to ... failed"
 * as a FAIL line, the same again as an ERROR line from the application
 * thread, once per handle and once per reconnect. Here each line goes to
 * log.h with its level (syslog 0-3 error, 4-5 warn, 6 info, 7 debug); a line
 * with the same text (minus the handle name, the thread tag and the
 * "(after N ms in state ...)" tail) and level as one written less than
 * KAFKA_LOG_REPEAT_MS ago is counted instead of written, and the next time
 * it is written it says how many were left out.
 *
 * Callers: kafka_conf.c (every handle's log callback); the unit test.
 */
#ifndef THOPTER_KAFKA_LOG_H
#define THOPTER_KAFKA_LOG_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#define KAFKA_LOG_REPEAT_MS 30000
#define KAFKA_LOG_SLOTS     32
#define KAFKA_LOG_KEY_MAX   512

/** @brief librdkafka's log callback (rd_kafka_conf_set_log_cb()).
 * @locality any librdkafka thread. */
void kafka_log_cb(const rd_kafka_t *rk,
                  int level,
                  const char *fac,
                  const char *buf);

/**
 * @brief What makes two lines "the same": @p buf without a leading
 * "[thrd:...]: ", without the handle name @p name (optional) where it
 * starts the rest, and without a trailing "(after ...)" note.
 */
void kafka_log_key(const char *buf, const char *name, char *out, size_t cap);

/** The repeats seen, per line (the process has one, kafka_log.c's). */
struct kafka_log_seen {
        struct {
                char key[KAFKA_LOG_KEY_MAX];
                int level;
                int64_t written_ms; /* 0: free slot */
                long suppressed;
        } slot[KAFKA_LOG_SLOTS];
};

/**
 * @brief Should the line @p key at @p level be written at @p now_ms?
 * @returns 1 and *@p suppressed = how many were left out since it was
 * last written; or 0 (counted, leave it out). Not thread-safe.
 */
int kafka_log_admit(struct kafka_log_seen *seen,
                    const char *key,
                    int level,
                    int64_t now_ms,
                    long *suppressed);

#endif
