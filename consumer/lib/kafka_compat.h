/* kafka_compat.h - settings that the librdkafka this runs on is known not to
 * carry out against current brokers, said once at start.
 *
 * DESIGN
 * ------
 * librdkafka before 2.6.1 appends the client nonce a second time when it
 * builds the SCRAM client-final-message (librdkafka #4895). Kafka up to 3.8.0
 * accepted that; Kafka 3.8.1 and 4.x compare the nonce strictly (RFC 5802),
 * so SCRAM-SHA-256/512 fails there with "invalid credentials" whatever the
 * password. Reproduced with Debian 12's librdkafka 2.0.2 (the consumer, the
 * tools and kcat) against Apache Kafka 4.1.1, while PLAIN on the same
 * listener and SCRAM from librdkafka 2.15 worked (docs/real-kafka.md). The
 * consumer cannot know the broker's version before it connects, so this is a
 * warning with what to do, not a refusal: SCRAM still works with Kafka 3.8.0
 * and older.
 */
#ifndef THOPTER_KAFKA_COMPAT_H
#define THOPTER_KAFKA_COMPAT_H

/* The librdkafka version (rd_kafka_version()'s 0xMMmmrrpp) whose SCRAM
 * works with Kafka 3.8.1 and newer. */
#define KAFKA_COMPAT_SCRAM_FIXED 0x020601ff

/* A warning about the "key=value" properties @props (@n of them, as
 * config.h's kafka_props) on librdkafka @version, or NULL when there is
 * none. The text is static. */
const char *kafka_compat_warning(char *const *props, int n, int version);

#endif
