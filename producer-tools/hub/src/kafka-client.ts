/* kafka-client.ts - the one place that knows the Kafka client.
 *
 * The client is @confluentinc/kafka-javascript (librdkafka, the library the
 * consumer and every tool of this project use), through its KafkaJS
 * namespace. publisher.ts and follower.ts get their producer and consumer
 * from here; nothing of the client's types leaves the package.
 *
 * Configuration, in the order it applies (later wins):
 *   1. the package's settings (KafkaSettings: brokers, client id, timeouts),
 *      through the client's `kafkaJS` block;
 *   2. the librdkafka properties this package needs for its guarantees
 *      (producer: enable.idempotence, acks=all, partitioner=murmur2_random);
 *   3. the librdkafka properties of THOPTER_KAFKA_CONFIG_FILE, then those
 *      passed in code (KafkaSettings.properties): TLS, SASL, anything else,
 *      as with the consumer, whose -X properties win over its defaults.
 * One exception: `partitioner` must stay murmur2_random (the contract's
 * partitioner, which partitionForKey() and thopter-send share).
 */

import { KafkaJS } from '@confluentinc/kafka-javascript';
import { KafkaSettings, librdkafkaProperties } from './config';
import type { HubLogger } from './types';

export type KafkaProducer = KafkaJS.Producer;
export type KafkaConsumer = KafkaJS.Consumer;
export type KafkaAdmin = KafkaJS.Admin;
export type KafkaMessagePayload = KafkaJS.EachMessagePayload;

/** The contract's partitioner (murmur2.ts). */
export const PARTITIONER = 'murmur2_random';

type Props = Record<string, string | number | boolean | ((...args: never[]) => unknown)>;

/** The client's logger, forwarding warnings and errors to the hub's logger (source `kafka`). */
export function clientLogger(logger: HubLogger | undefined, namespace = ''): KafkaJS.Logger {
  const text = (message: string, extra?: object): string => {
    const fac = extra && typeof (extra as { fac?: unknown }).fac === 'string' ? ` ${(extra as { fac: string }).fac}` : '';
    return `kafka${namespace ? ` ${namespace}` : ''}${fac}: ${message}`;
  };
  const l: KafkaJS.Logger = {
    info: () => undefined,
    debug: () => undefined,
    warn: (m, extra) => logger?.warn(text(m, extra), undefined, 'kafka'),
    error: (m, extra) => logger?.warn(text(m, extra), undefined, 'kafka'),
    namespace: (ns: string) => clientLogger(logger, ns),
    setLogLevel: () => undefined,
  };
  return l;
}

/** The properties of step 3 above. @throws Error naming the file, or the partitioner. */
function userProperties(settings: KafkaSettings): Props {
  const props = librdkafkaProperties(settings);
  const p = props.partitioner;
  if (p !== undefined && p !== PARTITIONER)
    throw new Error(
      `kafka property partitioner=${p}: this package publishes with ${PARTITIONER} only ` +
        '(the partitioner thopter-send, kcat recipes and partitionForKey() agree on)',
    );
  return props;
}

function common(settings: KafkaSettings, logger: HubLogger | undefined) {
  return {
    brokers: settings.brokers,
    clientId: settings.clientId,
    /* The client enforces connectionTimeout + authenticationTimeout as one
     * connection setup timeout. */
    connectionTimeout: settings.connectionTimeoutMs,
    authenticationTimeout: 0,
    requestTimeout: settings.requestTimeoutMs,
    logLevel: KafkaJS.logLevel.WARN,
    logger: clientLogger(logger),
  };
}

/* librdkafka waits up to reconnect.backoff.max.ms (10 s by default) between
 * connection attempts to a broker that is down, and only then notices that a
 * queued message timed out: a send's deadline would slip by up to 10 s. */
const RECONNECT_BACKOFF_MAX_MS = 1000;

/** The producer of publisher.ts: idempotent, acks=all, murmur2_random. */
export function makeProducer(settings: KafkaSettings, logger: HubLogger | undefined): KafkaProducer {
  return new KafkaJS.Kafka({}).producer(producerConfig(settings, logger));
}

/** makeProducer()'s configuration (for tests). @throws Error naming the properties file or property. */
export function producerConfig(settings: KafkaSettings, logger: HubLogger | undefined): KafkaJS.ProducerConstructorConfig {
  const user = userProperties(settings);
  return {
    kafkaJS: {
      ...common(settings, logger),
      idempotent: true,
      acks: -1,
      allowAutoTopicCreation: false,
      retry: { retries: settings.sendRetries, initialRetryTime: 200, maxRetryTime: 2000 },
    },
    'enable.idempotence': true,
    acks: -1,
    partitioner: PARTITIONER,
    'linger.ms': 0,
    'message.timeout.ms': settings.sendTimeoutMs,
    'request.timeout.ms': Math.min(settings.requestTimeoutMs, settings.sendTimeoutMs),
    'reconnect.backoff.max.ms': RECONNECT_BACKOFF_MAX_MS,
    ...user,
  } as KafkaJS.ProducerConstructorConfig;
}

export interface ConsumerOptions {
  fromBeginning: boolean;
  maxWaitTimeMs: number;
  /** Called with the partitions assigned to this member (after each rebalance). */
  onAssigned: (count: number) => void;
}

/** The follower's consumer: its own group, auto-commit. */
export function makeConsumer(settings: KafkaSettings, logger: HubLogger | undefined, options: ConsumerOptions): KafkaConsumer {
  return new KafkaJS.Kafka({}).consumer(consumerConfig(settings, logger, options));
}

/** makeConsumer()'s configuration (for tests). @throws Error naming the properties file or property. */
export function consumerConfig(
  settings: KafkaSettings,
  logger: HubLogger | undefined,
  options: ConsumerOptions,
): KafkaJS.ConsumerConstructorConfig {
  const user = userProperties(settings);
  return {
    kafkaJS: {
      ...common(settings, logger),
      groupId: settings.groupId,
      sessionTimeout: settings.sessionTimeoutMs,
      heartbeatInterval: settings.heartbeatIntervalMs,
      maxWaitTimeInMs: options.maxWaitTimeMs,
      allowAutoTopicCreation: false,
      fromBeginning: options.fromBeginning,
      autoCommit: true,
      autoCommitInterval: 1000,
    },
    'reconnect.backoff.max.ms': RECONNECT_BACKOFF_MAX_MS,
    /* Returning nothing keeps the client's own assignment handling. */
    rebalance_cb: (err: { code: number }, assignment: unknown[]) => {
      if (err.code === KafkaJS.ErrorCodes.ERR__ASSIGN_PARTITIONS) options.onAssigned(assignment.length);
    },
    ...user,
  } as KafkaJS.ConsumerConstructorConfig;
}

/** An admin client with the same connection settings (tests, tools). */
export function makeAdmin(settings: KafkaSettings, logger: HubLogger | undefined): KafkaAdmin {
  const user = userProperties(settings);
  delete user.partitioner;
  return new KafkaJS.Kafka({}).admin({
    kafkaJS: { logLevel: KafkaJS.logLevel.WARN, logger: clientLogger(logger) },
    'bootstrap.servers': settings.brokers.join(','),
    'client.id': settings.clientId,
    ...user,
  } as KafkaJS.AdminConstructorConfig);
}

/** One line for an error of the client. */
export function clientErrorText(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

/**
 * @p promise, or a rejection after @p ms: the client's connect() waits 30 s
 * for the cluster's metadata whatever its settings say.
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
