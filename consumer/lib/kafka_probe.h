/* kafka_probe.h - at start, refuse a Kafka broker that cannot carry record
 * headers (contract 5.14): on such a broker (Kafka < 0.11) every dead letter
 * would silently lose its thopter.dlq.* headers, as kcat's would.
 *
 * DESIGN
 * ------
 * librdkafka 2.0.2 has no public call that says what a broker supports. What
 * it does say, in its debug log (contexts "broker" and "feature"), is the
 * protocol feature set it settled on for each broker connection:
 *
 *   127.0.0.1:9092/bootstrap: Updated enabled protocol features to
 *   MsgVer1,ApiVersion,...,MsgVer2,...
 *
 * after an ApiVersion answer, or from broker.version.fallback when
 * api.version.request=false. MsgVer2 (Produce v3 / Fetch v4, Kafka 0.11) is
 * the message format with headers. A broker older than 0.10 does not answer
 * ApiVersion at all: librdkafka then logs "-ApiVersion to ..." after each
 * unanswered query and retries forever.
 *
 * So the probe is a short-lived producer handle with the user's -X
 * properties plus debug=broker,feature, its log captured (not forwarded),
 * asking for metadata until it has a verdict or a deadline passes:
 * - OK: some broker settled on a feature set with MsgVer2, none without;
 * - MISSING: a broker settled on one without MsgVer2, or did not answer
 *   ApiVersion twice (Kafka < 0.10, or a security.protocol that does not
 *   match the listener: both stop the consumer from working);
 * - UNKNOWN: no broker answered (down, unreachable): not refused, since a
 *   broker that is away is waited for (contract 5.9); the main handles
 *   report it.
 * The alternative, api.version.request=false with a fallback below 0.11,
 * decides nothing by itself (a 0.11 broker may be behind it), and it is
 * covered by the same rule: librdkafka then logs the fallback's set.
 *
 * @locality main thread, before any other Kafka handle.
 */
#ifndef THOPTER_KAFKA_PROBE_H
#define THOPTER_KAFKA_PROBE_H

#include "err.h"

#include <stddef.h>

#define KAFKA_PROBE_MAX_BROKERS 16

enum kafka_headers_verdict {
        KAFKA_HEADERS_UNKNOWN = 0,
        KAFKA_HEADERS_OK,
        KAFKA_HEADERS_MISSING,
};

/* What the FEATURE log lines said, per broker connection. */
struct kafka_features {
        struct {
                char name[128];    /* "127.0.0.1:9092/bootstrap" */
                int settled;       /* a full feature set was logged */
                char set[512];     /* the last full set */
                int av_unanswered; /* "-ApiVersion" lines */
        } b[KAFKA_PROBE_MAX_BROKERS];
        int n;
};

/**
 * @brief Take one librdkafka log line of facility "FEATURE" into @p f
 * (anything else, or an unreadable line, is ignored). Pure.
 */
void kafka_features_add(struct kafka_features *f, const char *line);

/**
 * @brief The verdict of @p f (see DESIGN); for MISSING, @p why (of @p cap
 * bytes) names the broker and what it negotiated. Pure.
 */
enum kafka_headers_verdict
kafka_features_verdict(const struct kafka_features *f, char *why, size_t cap);

/**
 * @brief Probe @p brokers with the "key=value" @p props (the user's -X, so
 * security settings apply) for at most @p timeout_ms.
 * @returns 0 when the brokers carry headers or could not be asked (logged),
 * -1 (ERR_PERMANENT, one line for stderr) when a broker cannot carry them
 * or the probe handle cannot be made.
 */
int kafka_probe_headers(const char *brokers,
                        char *const *props,
                        int nprops,
                        long timeout_ms,
                        struct err *err);

#endif
