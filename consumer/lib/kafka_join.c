/* kafka_join.c - saying why a Kafka loop has no partitions yet. See
 * kafka_loop_int.h.
 *
 * DESIGN
 * ------
 * Between "consuming" (subscribed) and "assigned" a consumer can wait a
 * long time with nothing to show: a member that restarts is given its
 * partitions only once the group coordinator has seen the previous session
 * of the group's members leave, or time out (session.timeout.ms, 45 s by
 * librdkafka's default; the mock cluster waits session.timeout.ms - 1 s).
 * So while it waits, the poll thread says so every JOIN_LOG_EVERY_MS, with
 * the reason and the setting that shortens it; and once assigned, how long
 * it took when that was more than a moment.
 */
#include "clock.h"
#include "kafka_loop_int.h"
#include "log.h"

#include <stdlib.h>

/* How often the wait is logged, and from when a join counts as slow. */
#define JOIN_LOG_EVERY_MS 5000

long kafka_join_session_timeout(rd_kafka_conf_t *conf) {
        char buf[32];
        size_t size = sizeof(buf);

        if (rd_kafka_conf_get(conf, "session.timeout.ms", buf, &size) !=
            RD_KAFKA_CONF_OK)
                return 0;
        return strtol(buf, NULL, 10);
}

void kafka_join_waiting(struct kafka_loop *loop) {
        int64_t now = clock_mono_ms();

        loop->join_wait_since_ms = now;
        loop->join_next_log_ms = now + JOIN_LOG_EVERY_MS;
}

void kafka_join_tick(struct kafka_loop *loop) {
        int64_t now;

        if (!loop->join_wait_since_ms || atomic_load(&loop->joined) ||
            atomic_load(&loop->stopping))
                return;
        now = clock_mono_ms();
        if (now < loop->join_next_log_ms)
                return;
        loop->join_next_log_ms = now + JOIN_LOG_EVERY_MS;
        log_info(loop->name,
                 "no partitions of %s yet, %lld s after joining group %s: the "
                 "group coordinator assigns them once the previous members "
                 "of the group have left or timed out, which can take up to "
                 "session.timeout.ms (%ld ms here) after a restart; a "
                 "smaller -X session.timeout.ms shortens the wait",
                 loop->topic,
                 (long long)((now - loop->join_wait_since_ms) / 1000),
                 loop->group, loop->session_timeout_ms);
}

void kafka_join_done(struct kafka_loop *loop) {
        int64_t waited;

        if (!loop->join_wait_since_ms)
                return;
        waited = clock_mono_ms() - loop->join_wait_since_ms;
        loop->join_wait_since_ms = 0;
        if (waited >= JOIN_LOG_EVERY_MS)
                log_info(loop->name, "joined group %s after %lld.%01lld s",
                         loop->group, (long long)(waited / 1000),
                         (long long)(waited % 1000 / 100));
}
