/* kafka_pause.c - pausing and resuming a Kafka loop's intake. See
 * kafka_loop_int.h.
 *
 * DESIGN
 * ------
 * Intake pauses while the queue is full, while final events or dead letters
 * pile up unacknowledged, while the fly circuit is open, while a job holds
 * intake (provision capacity) and while stopping. Paused partitions stay
 * assigned and the poll thread keeps polling, so group membership and
 * max.poll.interval.ms stay healthy. The queue pauses with hysteresis: a
 * paused loop stays paused until the queue has drained to the low mark, so
 * each resume buys a batch of records, not one.
 */
#include "kafka_loop_int.h"
#include "log.h"
#include "metrics.h"

/* Records whose final event or dead letter is not yet acknowledged: pause
 * at HIGH, resume at LOW (bounds memory on the dead-letter path). The count
 * bounds small records, the bytes (their keys and values) large ones: 2,000
 * records of 100 KB would be 200 MB, held twice (the job's copy and the
 * dead letter in the producer's queue). */
#define FINISHING_HIGH       2000
#define FINISHING_LOW        500
#define FINISHING_BYTES_HIGH ((size_t)8 << 20)
#define FINISHING_BYTES_LOW  ((size_t)2 << 20)

int kafka_pause_apply(struct kafka_loop *loop,
                      rd_kafka_topic_partition_list_t *parts,
                      int pause) {
        rd_kafka_resp_err_t e =
            pause ? rd_kafka_pause_partitions(loop->rk, parts)
                  : rd_kafka_resume_partitions(loop->rk, parts);
        if (e)
                log_warn(loop->name, "%s partitions: %s",
                         pause ? "pause" : "resume", rd_kafka_err2str(e));
        return e ? -1 : 0;
}

/* librdkafka 2.0.2 starts fetching a resumed partition only when its broker
 * thread next looks (up to a second later when no fetch is outstanding). A
 * seek to the position it would resume from anyway wakes it now. */
static void kick_fetch(struct kafka_loop *loop,
                       rd_kafka_topic_partition_list_t *parts) {
        rd_kafka_topic_partition_list_t *pos =
            rd_kafka_topic_partition_list_copy(parts);
        rd_kafka_topic_partition_list_t *seek =
            rd_kafka_topic_partition_list_new(pos->cnt);

        if (rd_kafka_position(loop->rk, pos) == RD_KAFKA_RESP_ERR_NO_ERROR) {
                for (int i = 0; i < pos->cnt; i++)
                        if (pos->elems[i].offset >= 0)
                                rd_kafka_topic_partition_list_add(
                                    seek, pos->elems[i].topic,
                                    pos->elems[i].partition)
                                    ->offset = pos->elems[i].offset;
        }
        if (seek->cnt) {
                rd_kafka_error_t *e =
                    rd_kafka_seek_partitions(loop->rk, seek, 0);
                if (e)
                        rd_kafka_error_destroy(e);
        }
        rd_kafka_topic_partition_list_destroy(seek);
        rd_kafka_topic_partition_list_destroy(pos);
}

int kafka_pause_wanted(struct kafka_loop *loop) {
        int full;
        pthread_mutex_lock(&loop->lock);
        int taken = loop->n_pending + loop->n_running;
        if (loop->paused_applied)
                full = taken > loop->max_in_flight + loop->prefetch_low -
                                   (loop->prefetch_high == 0) ||
                       loop->n_finishing > FINISHING_LOW ||
                       loop->finishing_bytes > FINISHING_BYTES_LOW;
        else
                full = taken >= loop->max_in_flight + loop->prefetch_high ||
                       loop->n_finishing >= FINISHING_HIGH ||
                       loop->finishing_bytes >= FINISHING_BYTES_HIGH;
        pthread_mutex_unlock(&loop->lock);
        return full || atomic_load(&loop->stopping) ||
               atomic_load(&loop->hold) ||
               (loop->breaker && fly_breaker_is_open(loop->breaker));
}

void kafka_pause_update(struct kafka_loop *loop) {
        int want = kafka_pause_wanted(loop);
        rd_kafka_topic_partition_list_t *parts = NULL;

        if (want == loop->paused_applied)
                return;
        if (rd_kafka_assignment(loop->rk, &parts) !=
                RD_KAFKA_RESP_ERR_NO_ERROR ||
            !parts)
                return; /* try again on the next tick */
        int ok = !parts->cnt || kafka_pause_apply(loop, parts, want) == 0;
        if (ok && !want && parts->cnt)
                kick_fetch(loop, parts);
        rd_kafka_topic_partition_list_destroy(parts);
        if (!ok)
                return;
        loop->paused_applied = want;
        metrics_set(M_PAUSED, loop->labels, want);
}
