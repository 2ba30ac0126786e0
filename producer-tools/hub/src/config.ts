/* config.ts - settings from the environment, with the contract's names and defaults.
 *
 * The only file that reads process.env. Every value can also be passed in code.
 *
 * Secured clusters (TLS, SASL PLAIN / SCRAM) are configured exactly as for the
 * consumer and every tool (docs/OPERATIONS.md section 4): librdkafka
 * properties in a `key=value` file named by THOPTER_KAFKA_CONFIG_FILE
 * (`security.protocol`, `sasl.mechanisms`, `sasl.username`, `sasl.password`,
 * `ssl.ca.location`, ...). The file is read the way the consumer reads it
 * (consumer/lib/kafka_conf.c): `#` comments, blanks around keys, values and
 * `=` dropped, no NUL byte, at most 1 MiB. A secret (a key containing
 * `password` or `secret`, or `ssl.key.pem`) is taken from that file only:
 * passed in code as a property it is refused, as the consumer refuses it on
 * its command line.
 */

import * as fs from 'fs';
import * as os from 'os';

export interface Topics {
  provision: string;
  destroy: string;
  events: string;
}

export interface KafkaSettings {
  /** Bootstrap servers, `host:port`. KAFKA_BROKERS (comma separated). */
  brokers: string[];
  /** Client id sent to the brokers (logs, quotas). */
  clientId: string;
  /** Contract section 1; THOPTER_{PROVISION,DESTROY,EVENTS}_TOPIC. */
  topics: Topics;
  /**
   * Consumer group of the follower. THOPTER_HUB_GROUP, default
   * `thopter-hub-<hostname>`: one group per hub instance (README, "Consumer group").
   */
  groupId: string;
  /** How long connect() / start() wait for the cluster to answer (ms); also each connection's setup timeout. */
  connectionTimeoutMs: number;
  /** Broker request timeout (ms). */
  requestTimeoutMs: number;
  /** Retries of one send within sendTimeoutMs. */
  sendRetries: number;
  /**
   * The longest one publish waits for the broker's acknowledgement (ms),
   * retries included (librdkafka's message.timeout.ms). After it the publish
   * rejects and nothing of it is sent later.
   */
  sendTimeoutMs: number;
  /** Consumer session timeout (ms); tests against the mock broker use 4000. */
  sessionTimeoutMs: number;
  /** Consumer heartbeat interval (ms). */
  heartbeatIntervalMs: number;
  /**
   * The librdkafka properties file (THOPTER_KAFKA_CONFIG_FILE), the consumer's:
   * TLS, SASL and any other property; read when the clients are made.
   */
  configFile?: string;
  /** More librdkafka properties, applied after the file's. Secrets are refused here: put them in the file. */
  properties?: Record<string, string>;
}

function positiveInt(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}: must be a non-negative integer (got "${raw}")`);
  return n;
}

/**
 * Settings from @env (default process.env) overridden by @overrides.
 * @throws Error naming the setting when KAFKA_BROKERS is missing, a number is
 * malformed or a secret is passed as a property.
 */
export function kafkaSettings(overrides: Partial<KafkaSettings> = {}, env: NodeJS.ProcessEnv = process.env): KafkaSettings {
  const brokers =
    overrides.brokers ??
    (env.KAFKA_BROKERS ?? '')
      .split(',')
      .map((b) => b.trim())
      .filter((b) => b.length > 0);
  if (brokers.length === 0) throw new Error('KAFKA_BROKERS: required (bootstrap servers, host:port[,host:port...])');
  for (const key of Object.keys(overrides.properties ?? {}))
    if (isSecretProperty(key))
      throw new Error(
        `kafka property ${key}: a secret is never taken in code or the environment: ` +
          'put it in the librdkafka properties file named by THOPTER_KAFKA_CONFIG_FILE',
      );
  const configFile = overrides.configFile ?? env.THOPTER_KAFKA_CONFIG_FILE;
  const settings: KafkaSettings = {
    brokers,
    clientId: overrides.clientId ?? env.THOPTER_HUB_CLIENT_ID ?? 'thopter-hub',
    topics: {
      provision: overrides.topics?.provision ?? env.THOPTER_PROVISION_TOPIC ?? 'thopter.provision',
      destroy: overrides.topics?.destroy ?? env.THOPTER_DESTROY_TOPIC ?? 'thopter.destroy',
      events: overrides.topics?.events ?? env.THOPTER_EVENTS_TOPIC ?? 'thopter.events',
    },
    groupId: overrides.groupId ?? env.THOPTER_HUB_GROUP ?? `thopter-hub-${os.hostname()}`,
    connectionTimeoutMs: overrides.connectionTimeoutMs ?? positiveInt(env, 'THOPTER_HUB_CONNECT_TIMEOUT_MS', 10000),
    requestTimeoutMs: overrides.requestTimeoutMs ?? positiveInt(env, 'THOPTER_HUB_REQUEST_TIMEOUT_MS', 10000),
    sendRetries: overrides.sendRetries ?? positiveInt(env, 'THOPTER_HUB_SEND_RETRIES', 3),
    sendTimeoutMs: overrides.sendTimeoutMs ?? positiveInt(env, 'THOPTER_HUB_SEND_TIMEOUT_MS', 15000),
    sessionTimeoutMs: overrides.sessionTimeoutMs ?? positiveInt(env, 'THOPTER_HUB_SESSION_TIMEOUT_MS', 30000),
    heartbeatIntervalMs: overrides.heartbeatIntervalMs ?? positiveInt(env, 'THOPTER_HUB_HEARTBEAT_MS', 3000),
  };
  if (configFile) settings.configFile = configFile;
  if (overrides.properties) settings.properties = { ...overrides.properties };
  return settings;
}

/** kafka_conf_is_secret() of consumer/lib/kafka_conf.c: `password` or `secret` in the key, or ssl.key.pem. */
export function isSecretProperty(key: string): boolean {
  return key === 'ssl.key.pem' || key.includes('password') || key.includes('secret');
}

/** SECRET_FILE_MAX of consumer/lib/secret_file.h. */
const CONFIG_FILE_MAX = 1024 * 1024;

/**
 * The properties of a librdkafka properties file, read as the consumer reads
 * THOPTER_KAFKA_CONFIG_FILE. Messages name the file and the line, never a value.
 * @throws Error "THOPTER_KAFKA_CONFIG_FILE: <path>: ..." when it cannot be read or a line is not key=value.
 */
export function readPropertiesFile(path: string, what = 'THOPTER_KAFKA_CONFIG_FILE'): Record<string, string> {
  let data: Buffer;
  try {
    const st = fs.statSync(path);
    if (!st.isFile()) throw new Error('not a regular file');
    if (st.size > CONFIG_FILE_MAX) throw new Error(`larger than ${CONFIG_FILE_MAX} bytes`);
    data = fs.readFileSync(path);
  } catch (e) {
    throw new Error(`${what}: ${path}: ${e instanceof Error ? e.message.replace(/^[A-Z]+: /, '') : String(e)}`);
  }
  if (data.length > CONFIG_FILE_MAX) throw new Error(`${what}: ${path}: larger than ${CONFIG_FILE_MAX} bytes`);
  if (data.includes(0)) throw new Error(`${what}: ${path}: holds a NUL byte`);
  const out: Record<string, string> = {};
  let lineno = 0;
  for (const raw of data.toString('utf8').split('\n')) {
    /* The consumer's strtok_r skips empty lines without counting them. */
    if (raw === '') continue;
    lineno++;
    const line = raw.replace(/[\r \t]+$/, '').replace(/^[ \t]+/, '');
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`${what}: ${path}: a line is not key=value (line ${lineno})`);
    const key = line.slice(0, eq).replace(/[ \t]+$/, '');
    out[key] = line.slice(eq + 1).replace(/^[ \t]+/, '');
  }
  return out;
}

/** The librdkafka properties of @settings: the file's, then those passed in code. */
export function librdkafkaProperties(settings: KafkaSettings): Record<string, string> {
  return { ...(settings.configFile ? readPropertiesFile(settings.configFile) : {}), ...(settings.properties ?? {}) };
}
