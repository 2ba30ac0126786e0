/* replay_mark.h - what thopter-dlq replay leaves on the dead-letter topic so
 * that the next operator sees a dead letter was replayed.
 *
 * After a dead letter was replayed (the broker acknowledged the copy on its
 * original topic), replay adds a mark to the dead-letter topic: a record with
 * no key and a null value, and the headers below. `list` and `show` read the
 * marks and say "replayed <when> by <who> -> <topic> [<p>] @<o>" beside the
 * dead letter; replay never takes a mark for a dead letter.
 *
 *   thopter.replay.of   "<partition>/<offset>" of the dead letter
 *   thopter.replay.to   "<topic> [<partition>] @<offset>" of the copy
 *   thopter.replay.at   when, YYYY-MM-DDTHH:MM:SS.mmmZ
 *   thopter.replay.by   $USER@hostname of who ran replay (or "unknown")
 *
 * Marks are data from the topic like any other: read as hostile input
 * (plain decimal numbers only, values cut to size).
 *
 * Callers: thopter-dlq.
 */
#ifndef THOPTER_REPLAY_MARK_H
#define THOPTER_REPLAY_MARK_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#define REPLAY_MARK_OF "thopter.replay.of"
#define REPLAY_MARK_TO "thopter.replay.to"
#define REPLAY_MARK_AT "thopter.replay.at"
#define REPLAY_MARK_BY "thopter.replay.by"

struct replay_mark {
        int32_t partition; /* of the dead letter it marks */
        int64_t offset;
        char text[512]; /* "replayed <at> by <by> -> <to>" */
};

/** The marks read so far. Zero it to start; replay_marks_free() it. */
struct replay_marks {
        struct replay_mark *v;
        size_t n, cap;
};

/** @brief The headers of the mark of dead letter @p partition/@p offset
 * replayed to @p to_topic [@p to_partition] @@p to_offset at @p now_ms by
 * @p by. The caller owns them (rd_kafka_producev() takes them). */
rd_kafka_headers_t *replay_mark_headers(int32_t partition,
                                        int64_t offset,
                                        const char *to_topic,
                                        int32_t to_partition,
                                        int64_t to_offset,
                                        int64_t now_ms,
                                        const char *by);

/** @brief Is @p rkm a mark (a thopter.replay.of header)? */
int replay_mark_is(const rd_kafka_message_t *rkm);

/**
 * @brief Add the mark @p rkm to @p marks.
 * @returns 1 added, 0 not a mark or malformed (skipped), -1 out of memory.
 */
int replay_marks_add(struct replay_marks *marks, const rd_kafka_message_t *rkm);

/** @brief The text of the latest mark of dead letter @p partition/@p offset,
 * or NULL. Valid until replay_marks_free(). */
const char *replay_marks_find(const struct replay_marks *marks,
                              int32_t partition,
                              int64_t offset);

void replay_marks_free(struct replay_marks *marks);

/** @brief "$USER@hostname" (or parts "unknown") into @p buf. */
void replay_mark_who(char *buf, size_t cap);

#endif
