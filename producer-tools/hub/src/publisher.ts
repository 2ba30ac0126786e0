/* publisher.ts - validated, keyed, murmur2-partitioned requests onto the contract's topics.
 *
 * DESIGN
 * ------
 * One kafkajs producer, connected on first use (or by connect()), shared by
 * every request. A request is validated and serialized first (validate.ts):
 * an invalid one throws ValidationError and nothing reaches Kafka. A valid one
 * is sent alone, keyed as contract section 1 says (requestId for a provision,
 * thopterId for a destroy), with acks=all, and placed by partitionForKey()
 * (murmur2.ts), the partitioner librdkafka's murmur2_random uses.
 *
 * kafkajs retries a failed send a bounded number of times (sendRetries, with
 * backoff) and then rejects; there is no background queue, so once publish()
 * has rejected nothing of that call is sent later. The rejection is a
 * PublishError that names the topic, the key and the brokers.
 *
 * Not idempotent at the Kafka level: kafkajs' idempotent producer asks the
 * cluster's controller for a producer id, which librdkafka 2.0.2's mock
 * (thopter-devbroker) does not name, so it cannot connect there. A retried
 * send can therefore write a request twice; both consumers are idempotent on
 * the request (provision: looked up by requestId; destroy: a gone machine is
 * done), so a duplicate is harmless.
 */

import { Kafka, logLevel, Producer, LogEntry } from 'kafkajs';
import { kafkaSettings, KafkaSettings } from './config';
import { partitionForKey } from './murmur2';
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

/** Logs of kafkajs itself, at warn and error only, to the hub's logger. */
export function kafkajsLogCreator(logger: HubLogger | undefined) {
  return () =>
    ({ level, log }: LogEntry): void => {
      if (!logger) return;
      const text = `kafkajs ${log.logger ?? ''}: ${log.message}${log.error ? `: ${String(log.error)}` : ''}`;
      if (level === logLevel.ERROR || level === logLevel.WARN) logger.warn(text, undefined, 'kafka');
    };
}

export function makeKafka(settings: KafkaSettings, logger: HubLogger | undefined): Kafka {
  return new Kafka({
    clientId: settings.clientId,
    brokers: settings.brokers,
    connectionTimeout: settings.connectionTimeoutMs,
    requestTimeout: settings.requestTimeoutMs,
    retry: { retries: settings.sendRetries, initialRetryTime: 200, maxRetryTime: 2000 },
    logLevel: logLevel.WARN,
    logCreator: kafkajsLogCreator(logger),
  });
}

export class RequestPublisher {
  readonly settings: KafkaSettings;
  readonly validator: RequestValidator;
  private readonly producer: Producer;
  private connecting: Promise<void> | null = null;
  private connected = false;
  private closed = false;

  constructor(options: PublisherOptions = {}) {
    this.settings = kafkaSettings(options.settings);
    this.validator = options.validator ?? new RequestValidator();
    const kafka = makeKafka(this.settings, options.logger);
    this.producer = kafka.producer({
      /* The contract's partitioner, not kafkajs' default. */
      createPartitioner: () => ({ message, partitionMetadata }) =>
        partitionForKey(message.key === undefined ? null : message.key, partitionMetadata.length),
      allowAutoTopicCreation: false,
      idempotent: false,
      retry: { retries: this.settings.sendRetries, initialRetryTime: 200, maxRetryTime: 2000 },
    });
    this.producer.on(this.producer.events.DISCONNECT, () => {
      this.connected = false;
    });
  }

  get isConnected(): boolean {
    return this.connected;
  }

  /** Connects now (otherwise the first publish does). @throws PublishError-like Error naming the brokers. */
  async connect(): Promise<void> {
    if (this.closed) throw new Error('thopter-hub-kafka: publisher is closed');
    if (this.connected) return;
    if (!this.connecting) {
      this.connecting = this.producer
        .connect()
        .then(() => {
          this.connected = true;
        })
        .catch((e: unknown) => {
          throw new Error(
            `cannot reach Kafka at ${this.settings.brokers.join(',')}: ${e instanceof Error ? e.message : String(e)}`,
          );
        })
        .finally(() => {
          this.connecting = null;
        });
    }
    return this.connecting;
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
        acks: -1,
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

  async close(): Promise<void> {
    this.closed = true;
    if (this.connecting) await this.connecting.catch(() => undefined);
    await this.producer.disconnect();
    this.connected = false;
  }
}
