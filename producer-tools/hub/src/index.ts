/* index.ts - thopter-hub-kafka: the hub's side of thopter-consumer.
 *
 *   AgentManager       drop-in for hub/src/lib/agent-manager.ts (publishes requests)
 *   EventFollower      thopter.events -> the hub's state (EventApplier does the bookkeeping)
 *   RequestPublisher   validated, keyed, murmur2-partitioned requests
 *   RequestValidator   the project's JSON Schemas (ajv) plus the byte rules they cannot express
 *   HubStateStore      what the hub's StateManager must offer; MemoryHubState for tests
 *   partitionForKey    librdkafka's murmur2_random partitioner
 */

export { AgentManager, type AgentManagerConfig, generateRequestId } from './agent-manager';
export { EventApplier, EventFollower, type FollowerOptions, type ApplyResult, type Applied, parseEvent } from './follower';
export { RequestPublisher, PublishError, type Published, type PublisherOptions, PRODUCER_HEADER, PACKAGE_VERSION } from './publisher';
export { RequestValidator, ValidationError, type FieldError, type RequestKind, DEFAULT_SCHEMA_DIR, PAYLOAD_MAX_BYTES } from './validate';
export { type HubStateStore, MemoryHubState } from './state-store';
export { kafkaSettings, type KafkaSettings, type Topics } from './config';
export { murmur2, partitionForKey } from './murmur2';
export * from './types';
