/* publisher.ts - validated, keyed, murmur2-partitioned requests onto the contract's topics.
 *
 * DESIGN
 * ------
 * One producer (kafka-client.ts: librdkafka through
 * @confluentinc/kafka-javascript), connected on first use (or by connect()),
 * shared by every request. A request is validated and serialized first
 * (validate.ts): an invalid one throws ValidationError and nothing reaches
 * Kafka. A valid one is sent alone, keyed as contract section 1 says
 * (requestId for a provision, thopterId for a destroy), by an idempotent
 * producer with acks=all, placed by librdkafka's murmur2_random partitioner
 * (the one thopter-send and the kcat recipes use; partitionForKey() in
 * murmur2.ts computes the same partition).
 *
 * librdkafka queues a record and retries it until its delivery deadline
 * (sendTimeoutMs, message.timeout.ms); then the delivery report fails it and
 * publish() rejects. A record whose delivery failed is never sent afterwards,
 * so once publish() has rejected nothing of that call reaches Kafka later
 * (unless it already had: a timeout after the broker got the record but
 * before its answer; the consumers are idempotent on the request, so a
 * second copy is harmless). The rejection is a PublishError that names the
 * topic, the key and the brokers.
 *
 * The idempotent producer makes the client's own retries safe: a record the
 * broker wrote but whose answer was lost is not written twice by a retry.
 */

import { clientErrorText, KafkaProducer, makeProducer, withDeadline } from './kafka-client';
import { kafkaSettings, KafkaSettings } from './config';
import { RequestKind, RequestValidator } from './validate';
import type { DestroyRequest, HubLogger, ProvisionRequest } from './types';

export const PACKAGE_VERSION = '0.1.0';
/** A header on every request this package publishes; dead letters keep it (contract section 4). */
export const PRODUCER_HEADER = 'thopter.producer';

/** Kafka did not acknowledge the request. */
export class PublishError extends Error {
  readonly topic: string;
  readonly key: string;
  readonly cause: unknown;

  constructor(topic: string, key: string, brokers: string[], cause: unknown) {
    const why = cause instanceof Error ? cause.message : String(cause);
    super(
      `${topic}: request ${key} not acknowledged by Kafka (${brokers.join(',')}): ${why}. ` +
        'Sending it again is safe: the consumers are idempotent.',
    );
    this.name = 'PublishError';
    this.topic = topic;
    this.key = key;
    this.cause = cause;
  }
}

export interface Published {
  topic: string;
  partition: number;
  offset: string;
  key: string;
}

export interface PublisherOptions {
  settings?: Partial<KafkaSettings>;
  /** Already compiled validators; default: the schemas in dist/schemas/. */
  validator?: RequestValidator;
  logger?: HubLogger;
}

export class RequestPublisher {
  readonly settings: KafkaSettings;
  readonly validator: RequestValidator;
  private readonly logger: HubLogger | undefined;
  private producer: KafkaProducer;
  private connecting: Promise<void> | null = null;
  private connected = false;
  private closed = false;

  /** @throws Error naming the setting or the properties file when they are unusable. */
  constructor(options: PublisherOptions = {}) {
    this.settings = kafkaSettings(options.settings);
    this.validator = options.validator ?? new RequestValidator();
    this.logger = options.logger;
    this.producer = makeProducer(this.settings, this.logger);
  }

  get isConnected(): boolean {
    return this.connected;
  }

  /**
   * Connects now (otherwise the first publish does), within connectionTimeoutMs.
   * @throws Error "cannot reach Kafka at <brokers>: ..."; a later call tries again.
   */
  async connect(): Promise<void> {
    if (this.closed) throw new Error('thopter-hub-kafka: publisher is closed');
    if (this.connected) return;
    if (!this.connecting) {
      const producer = this.producer;
      const attempt = producer.connect();
      this.connecting = withDeadline(attempt, this.settings.connectionTimeoutMs, 'the cluster')
        .then(() => {
          this.connected = true;
        })
        .catch((e: unknown) => {
          /* A client whose connect() was called cannot connect again: close it
           * (once its attempt is over) and make a new one for the next try. */
          this.discard(producer, attempt);
          if (!this.closed) this.producer = makeProducer(this.settings, this.logger);
          throw new Error(`cannot reach Kafka at ${this.settings.brokers.join(',')}: ${clientErrorText(e)}`);
        })
        .finally(() => {
          this.connecting = null;
        });
    }
    return this.connecting;
  }

  /* Closed at once. Its attempt still runs in the client (which waits up to
   * 30 s for the cluster's metadata) and keeps the event loop alive until it
   * ends: a process that gives up on Kafka should exit, not wait for it. */
  private discard(producer: KafkaProducer, attempt: Promise<void>): void {
    attempt.catch(() => undefined);
    producer.disconnect().catch(() => undefined);
  }

  /**
   * Validates @request, then publishes it to @kind's topic, keyed by its requestId
   * (provision) or thopterId (destroy).
   * @throws ValidationError (nothing sent) or PublishError (not acknowledged).
   */
  async publish(kind: RequestKind, request: ProvisionRequest | DestroyRequest | Record<string, unknown>): Promise<Published> {
    const value = this.validator.serialize(kind, request);
    const parsed = JSON.parse(value) as Record<string, unknown>;
    const key = String(kind === 'provision' ? parsed.requestId : parsed.thopterId);
    const topic = kind === 'provision' ? this.settings.topics.provision : this.settings.topics.destroy;
    try {
      await this.connect();
      const [meta] = await this.producer.send({
        topic,
        messages: [{ key, value, headers: { [PRODUCER_HEADER]: `thopter-hub-kafka/${PACKAGE_VERSION}` } }],
      });
      if (!meta) throw new Error('the broker returned no record metadata');
      return { topic, partition: meta.partition, offset: String(meta.baseOffset ?? meta.offset ?? ''), key };
    } catch (e) {
      throw new PublishError(topic, key, this.settings.brokers, e);
    }
  }

  publishProvision(request: ProvisionRequest): Promise<Published> {
    return this.publish('provision', request);
  }

  publishDestroy(request: DestroyRequest): Promise<Published> {
    return this.publish('destroy', request);
  }

  /** Waits for what is in flight (each record at most sendTimeoutMs), then closes the producer. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.connecting) await this.connecting.catch(() => undefined);
    const wasConnected = this.connected;
    this.connected = false;
    if (wasConnected) await this.producer.disconnect();
  }
}
