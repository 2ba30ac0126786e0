/* config.ts - settings from the environment, with the contract's names and defaults.
 *
 * The only file that reads process.env. Every value can also be passed in code.
 */

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
  /** Connect timeout (ms) for each broker connection. */
  connectionTimeoutMs: number;
  /** Broker request timeout (ms). */
  requestTimeoutMs: number;
  /** Retries of one send before it is reported as failed (nothing is sent after that). */
  sendRetries: number;
  /** Consumer session timeout (ms); tests against the mock broker use 4000. */
  sessionTimeoutMs: number;
  /** Consumer heartbeat interval (ms). */
  heartbeatIntervalMs: number;
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
 * @throws Error naming the setting when KAFKA_BROKERS is missing or a number is malformed.
 */
export function kafkaSettings(overrides: Partial<KafkaSettings> = {}, env: NodeJS.ProcessEnv = process.env): KafkaSettings {
  const brokers =
    overrides.brokers ??
    (env.KAFKA_BROKERS ?? '')
      .split(',')
      .map((b) => b.trim())
      .filter((b) => b.length > 0);
  if (brokers.length === 0) throw new Error('KAFKA_BROKERS: required (bootstrap servers, host:port[,host:port...])');
  return {
    brokers,
    clientId: overrides.clientId ?? env.THOPTER_HUB_CLIENT_ID ?? 'thopter-hub',
    topics: {
      provision: overrides.topics?.provision ?? env.THOPTER_PROVISION_TOPIC ?? 'thopter.provision',
      destroy: overrides.topics?.destroy ?? env.THOPTER_DESTROY_TOPIC ?? 'thopter.destroy',
      events: overrides.topics?.events ?? env.THOPTER_EVENTS_TOPIC ?? 'thopter.events',
    },
    groupId: overrides.groupId ?? env.THOPTER_HUB_GROUP ?? `thopter-hub-${os.hostname()}`,
    connectionTimeoutMs: overrides.connectionTimeoutMs ?? positiveInt(env, 'THOPTER_HUB_CONNECT_TIMEOUT_MS', 3000),
    requestTimeoutMs: overrides.requestTimeoutMs ?? positiveInt(env, 'THOPTER_HUB_REQUEST_TIMEOUT_MS', 10000),
    sendRetries: overrides.sendRetries ?? positiveInt(env, 'THOPTER_HUB_SEND_RETRIES', 3),
    sessionTimeoutMs: overrides.sessionTimeoutMs ?? positiveInt(env, 'THOPTER_HUB_SESSION_TIMEOUT_MS', 30000),
    heartbeatIntervalMs: overrides.heartbeatIntervalMs ?? positiveInt(env, 'THOPTER_HUB_HEARTBEAT_MS', 3000),
  };
}
