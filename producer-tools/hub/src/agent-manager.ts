/* agent-manager.ts - the hub's AgentManager, publishing instead of provisioning.
 *
 * DESIGN
 * ------
 * Same public methods as thopter-swarm's hub/src/lib/agent-manager.ts
 * (dd6852b), which its routes, the GitHub poller and index.ts call:
 * start(), createProvisionRequest(), createDestroyRequest(), handleShutdown(),
 * getStatus(). What changed is where the work happens: instead of a 100 ms
 * loop calling the provisioner, a request is validated, recorded in the hub's
 * state as `pending` (so the dashboard shows it at once), and published to
 * Kafka; thopter-consumer does the work and its status events, followed by
 * EventFollower, move the request on and add or remove the thopter.
 *
 * The create methods are now async (they wait for the broker's
 * acknowledgement) and throw instead of failing silently:
 *   ValidationError  the request breaks the contract; nothing was recorded or sent
 *   PublishError     Kafka did not acknowledge it; the request is recorded as
 *                    `failed` ("not published: ...") and, for a destroy,
 *                    killRequested is cleared again so the user can retry
 * createDestroyRequest() still returns null when it refuses (thopter unknown,
 * kill already requested, or a destroy of it pending), as the original did.
 */

import { EventFollower, FollowerOptions } from './follower';
import { PublishError, RequestPublisher } from './publisher';
import type { KafkaSettings } from './config';
import type { HubStateStore } from './state-store';
import type { DestroyRequest, GitHubContext, HubLogger, ProvisionRequest } from './types';

export interface AgentManagerConfig {
  /** The hub's stateManager (it implements HubStateStore as it is). */
  stateManager: HubStateStore;
  /** Kafka settings; unset fields come from the environment (KAFKA_BROKERS, ...). */
  kafka?: Partial<KafkaSettings>;
  logger?: HubLogger;
  /** Follow thopter.events (default true). Turn off only where another component follows them. */
  follow?: boolean;
  /** Passed to EventFollower. */
  follower?: Omit<FollowerOptions, 'store' | 'settings' | 'logger'>;
  /**
   * The image new thopters should run (the original read THOPTER_IMAGE from the
   * metadata Redis at each provision). Unset, or returning nothing: the
   * consumer's THOPTER_IMAGE.
   */
  getImage?: () => string | undefined | Promise<string | undefined>;
  /** For tests: use these instead of making them. */
  publisher?: RequestPublisher;
}

export function generateRequestId(type: string): string {
  /* The hub's utils.generateRequestId: `${type}-${Date.now()}-<6 hex>`. */
  const hex = Math.floor(Math.random() * 0x1000000)
    .toString(16)
    .padStart(6, '0');
  return `${type}-${Date.now()}-${hex}`;
}

const SOURCE = 'agent-manager';

export class AgentManager {
  readonly publisher: RequestPublisher;
  readonly follower: EventFollower | null;
  private readonly store: HubStateStore;
  private readonly logger: HubLogger | undefined;
  private readonly getImage: AgentManagerConfig['getImage'];
  private started = false;

  constructor(config: AgentManagerConfig) {
    this.store = config.stateManager;
    this.logger = config.logger;
    this.getImage = config.getImage;
    this.publisher = config.publisher ?? new RequestPublisher({ settings: config.kafka, logger: config.logger });
    this.follower =
      config.follow === false
        ? null
        : new EventFollower({ ...(config.follower ?? {}), store: this.store, settings: config.kafka, logger: config.logger });
  }

  /**
   * Connects the producer and starts following thopter.events.
   * @throws Error naming the brokers when Kafka cannot be reached.
   */
  async start(): Promise<void> {
    if (this.started) {
      this.logger?.warn('Agent manager already started', undefined, SOURCE);
      return;
    }
    await this.publisher.connect();
    if (this.follower) await this.follower.start();
    this.started = true;
    this.logger?.info(
      `Agent manager publishing to ${this.publisher.settings.brokers.join(',')}` +
        (this.follower ? `, following ${this.follower.settings.topics.events} as group ${this.follower.settings.groupId}` : ''),
      undefined,
      SOURCE,
    );
  }

  /** Records and publishes a provision request; returns its requestId. */
  async createProvisionRequest(
    repository: string,
    github: ProvisionRequest['github'],
    workBranch?: string,
    gc?: string,
    prompt?: string,
  ): Promise<string> {
    const requestId = generateRequestId('provision');
    const request: ProvisionRequest = {
      requestId,
      source: 'github',
      createdAt: new Date(),
      status: 'pending',
      repository,
      workBranch,
      gc,
      prompt,
      github,
    };
    if (this.getImage) {
      try {
        const image = await this.getImage();
        if (image) request.image = image;
      } catch (e) {
        this.logger?.warn(`No image for ${requestId} (the consumer's THOPTER_IMAGE applies): ${String(e)}`, undefined, SOURCE);
      }
    }
    this.publisher.validator.serialize('provision', request); /* throws before anything is recorded */
    this.store.addProvisionRequest(request);
    try {
      const sent = await this.publisher.publish('provision', request);
      this.logger?.info(
        `Published provision request ${requestId} for ${repository}#${github.issueNumber} -> ${sent.topic} [${sent.partition}] @${sent.offset}`,
        undefined,
        SOURCE,
      );
    } catch (e) {
      this.store.updateProvisionRequest(requestId, { status: 'failed', completedAt: new Date(), error: `not published: ${errorMessage(e)}` });
      this.logger?.error(`Provision request ${requestId} not published: ${errorMessage(e)}`, undefined, SOURCE);
      throw e;
    }
    return requestId;
  }

  /**
   * Records and publishes a destroy request; returns its requestId, or null when
   * refused (the thopter is unknown, a kill was already requested, or a destroy
   * of it is pending or processing), as the original did.
   */
  async createDestroyRequest(
    thopterId: string,
    source: DestroyRequest['source'] = 'dashboard',
    reason?: string,
  ): Promise<string | null> {
    const thopter = this.store.getThopter(thopterId);
    if (!thopter) {
      this.logger?.warn(`Cannot create destroy request for non-existent thopter: ${thopterId}`, thopterId, SOURCE);
      return null;
    }
    if (thopter.hub.killRequested) {
      this.logger?.warn(`Thopter already has kill request: ${thopterId}`, thopterId, SOURCE);
      return null;
    }
    const existing = this.store
      .getRecentDestroyRequests()
      .find((r) => r.thopterId === thopterId && (r.status === 'pending' || r.status === 'processing'));
    if (existing) {
      this.logger?.warn(`Destroy request already exists for thopter ${thopterId}: ${existing.requestId}`, thopterId, SOURCE);
      return null;
    }
    const requestId = generateRequestId('destroy');
    const request: DestroyRequest = { requestId, source, createdAt: new Date(), status: 'pending', thopterId, reason };
    this.publisher.validator.serialize('destroy', request); /* throws before anything is recorded */
    this.store.setKillRequested(thopterId, true);
    this.store.addDestroyRequest(request);
    try {
      const sent = await this.publisher.publish('destroy', request);
      this.logger?.info(
        `Published destroy request ${requestId} for thopter ${thopterId} (reason: ${reason || 'none'}) -> ${sent.topic} [${sent.partition}] @${sent.offset}`,
        thopterId,
        SOURCE,
      );
    } catch (e) {
      this.store.updateDestroyRequest(requestId, { status: 'failed', completedAt: new Date(), error: `not published: ${errorMessage(e)}` });
      this.store.setKillRequested(thopterId, false);
      this.logger?.error(`Destroy request ${requestId} not published: ${errorMessage(e)}`, thopterId, SOURCE);
      throw e;
    }
    return requestId;
  }

  /** Stops following and closes the producer. */
  async handleShutdown(): Promise<void> {
    this.logger?.info('Agent manager shutting down: closing Kafka clients', undefined, SOURCE);
    this.started = false;
    const results = await Promise.allSettled([this.follower?.stop(), this.publisher.close()]);
    for (const r of results)
      if (r.status === 'rejected') this.logger?.warn(`Kafka client close: ${errorMessage(r.reason)}`, undefined, SOURCE);
  }

  getStatus() {
    const systemMode = this.store.getOperatingMode?.() ?? 'running';
    return {
      isRunning: this.started && systemMode === 'running',
      systemMode,
      hasProcessingLoop: false,
      kafka: {
        brokers: this.publisher.settings.brokers,
        producerConnected: this.publisher.isConnected,
        followerRunning: this.follower?.isRunning ?? false,
        followerJoined: this.follower?.hasJoined ?? false,
        group: this.follower?.settings.groupId ?? null,
      },
    };
  }
}

function errorMessage(e: unknown): string {
  if (e instanceof PublishError) return e.message;
  return e instanceof Error ? e.message : String(e);
}

export type { GitHubContext };
