/* index.ts - thopter-hub-kafka: the hub's side of thopter-consumer.
 *
 *   AgentManager       drop-in for hub/src/lib/agent-manager.ts (publishes requests)
 *   EventFollower      thopter.events -> the hub's state (EventApplier does the bookkeeping)
 *   RequestPublisher   validated, keyed, murmur2-partitioned requests
 *   RequestValidator   the project's JSON Schemas (ajv) plus the byte rules they cannot express
 *   HubStateStore      what the hub's StateManager must offer; MemoryHubState for tests
 *   partitionForKey    librdkafka's murmur2_random partitioner
 *   kafkaSettings      the settings, from the environment (KAFKA_BROKERS, THOPTER_KAFKA_CONFIG_FILE, ...)
 *
 * Interfaces and types are re-exported with `export type` (nothing of them
 * exists at run time; isolatedModules builds need it).
 */

export { AgentManager, generateRequestId } from './agent-manager';
export type { AgentManagerConfig } from './agent-manager';
export { EventApplier, EventFollower, parseEvent } from './follower';
export type { FollowerOptions, ApplyResult, Applied } from './follower';
export { RequestPublisher, PublishError, PRODUCER_HEADER, PACKAGE_VERSION } from './publisher';
export type { Published, PublisherOptions } from './publisher';
export { RequestValidator, ValidationError, DEFAULT_SCHEMA_DIR, PAYLOAD_MAX_BYTES, NESTING_MAX } from './validate';
export type { FieldError, RequestKind } from './validate';
export { MemoryHubState } from './state-store';
export type { HubStateStore } from './state-store';
export { kafkaSettings, readPropertiesFile, isSecretProperty } from './config';
export type { KafkaSettings, Topics } from './config';
export { murmur2, partitionForKey } from './murmur2';
export type { GitHubComment, GitHubContext, RequestStatus, ProvisionRequest, DestroyRequest, ThopterState, EventState, StatusEvent, HubLogger } from './types';
