/* follower.ts - thopter.events into the hub's state, the way the original AgentManager did it.
 *
 * DESIGN
 * ------
 * EventApplier is pure bookkeeping over a HubStateStore; EventFollower feeds it
 * from a consumer of thopter.events (kafka-client.ts), in its own group,
 * committing what it applied every second (and when it stops). What each event does is what
 * agent-manager.ts (dd6852b) did when its provisioner returned:
 *
 *   provision started/step/retrying/waiting_fly   request -> processing
 *   provision waiting_capacity                    request -> pending (the original
 *                                                 left a request at capacity pending)
 *   provision completed                           request -> completed, completedAt,
 *                                                 thopterId; addThopter(); reconcile
 *   provision failed                              request -> failed, error
 *   destroy started/...                           request -> processing
 *   destroy completed                             request -> completed; removeThopter()
 *   destroy failed                                request -> failed, error;
 *                                                 setKillRequested(id, false)
 *
 * Events are at least once and a redelivered request runs again (contract
 * section 3), so every rule is idempotent:
 *   - `completed` is final. A second `completed` changes nothing; a later
 *     started/step/failed of the same request (a redelivery) is ignored.
 *   - `failed` is not final: a replay from the dead-letter topic sends
 *     `started` again and the request goes back to processing. A progress
 *     event stamped (`at`) before the failure is stale and ignored.
 *   - addThopter() runs only for a thopter the state does not have (calling it
 *     again would reset killRequested and the observer's session), and never
 *     for a thopter this follower has seen destroyed (an old provision
 *     `completed` read after the destroy, e.g. from another partition).
 *   - removeThopter() / setKillRequested() only touch thopters the state has.
 * Events for requests the hub did not make (thopter-send, bulk-destroy, the
 * reaper, or from before a hub restart) still add and remove thopters, so the
 * dashboard shows what the consumer did; they update no request.
 *
 * Events are parsed leniently: the fields used here are checked, others are
 * ignored (status-event.schema.json is closed for the consumer's own sake, but
 * a hub built against an older schema must not drop a newer consumer's events).
 */

import { kafkaSettings, KafkaSettings } from './config';
import { clientErrorText, KafkaConsumer, KafkaMessagePayload, makeConsumer, withDeadline } from './kafka-client';
import type { HubStateStore } from './state-store';
import type { DestroyRequest, EventState, HubLogger, ProvisionRequest, StatusEvent } from './types';

const STATES: ReadonlySet<string> = new Set([
  'started',
  'step',
  'waiting_capacity',
  'waiting_fly',
  'retrying',
  'completed',
  'failed',
]);
const MACHINE_ID = /^[0-9a-f]{14}$/;

/** An event from thopter.events, or the reason it cannot be used. */
export function parseEvent(value: Buffer | string | null): StatusEvent | string {
  if (value === null) return 'no value (tombstone)';
  let o: unknown;
  try {
    o = JSON.parse(typeof value === 'string' ? value : value.toString('utf8'));
  } catch {
    return 'not JSON';
  }
  if (o === null || typeof o !== 'object' || Array.isArray(o)) return 'not a JSON object';
  const e = o as Record<string, unknown>;
  if (typeof e.requestId !== 'string' || e.requestId === '') return 'requestId: missing';
  if (e.kind !== 'provision' && e.kind !== 'destroy') return 'kind: must be provision or destroy';
  if (typeof e.state !== 'string' || !STATES.has(e.state)) return `state: unknown (${String(e.state)})`;
  if (e.thopterId !== undefined && (typeof e.thopterId !== 'string' || !MACHINE_ID.test(e.thopterId)))
    return 'thopterId: not a machine id';
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
  const err = e.error as Record<string, unknown> | undefined;
  const ev: StatusEvent = {
    requestId: e.requestId,
    kind: e.kind,
    state: e.state as EventState,
    attempt: typeof e.attempt === 'number' ? e.attempt : 1,
    at: typeof e.at === 'string' ? e.at : '',
    elapsedMs: typeof e.elapsedMs === 'number' ? e.elapsedMs : 0,
  };
  const step = str(e.step);
  if (step) ev.step = step;
  const thopterId = str(e.thopterId);
  if (thopterId) ev.thopterId = thopterId;
  const machineName = str(e.machineName);
  if (machineName) ev.machineName = machineName;
  const region = str(e.region);
  if (region) ev.region = region;
  if (err && typeof err === 'object')
    ev.error = { class: String(err.class ?? 'internal'), message: String(err.message ?? '') };
  return ev;
}

/** What apply() did, for logs and tests. */
export type Applied =
  | 'processing'
  | 'pending'
  | 'completed'
  | 'failed'
  | 'duplicate'
  | 'stale'
  | 'unknown-request'
  | 'thopter-added'
  | 'thopter-removed';

export interface ApplyResult {
  event: StatusEvent;
  actions: Applied[];
}

/* The fields both request kinds share. */
type RequestUpdate = Partial<Pick<ProvisionRequest, 'status' | 'error' | 'completedAt'>>;

function eventTime(ev: StatusEvent): Date {
  const t = Date.parse(ev.at);
  return Number.isNaN(t) ? new Date() : new Date(t);
}

function errorText(ev: StatusEvent): string {
  return ev.error ? `${ev.error.class}: ${ev.error.message}` : 'failed (no error given)';
}

export class EventApplier {
  private readonly store: HubStateStore;
  private readonly logger: HubLogger | undefined;
  /* Thopters seen destroyed, newest last; bounded. */
  private readonly destroyed = new Map<string, number>();
  private readonly maxDestroyed: number;

  constructor(store: HubStateStore, logger?: HubLogger, maxDestroyed = 2000) {
    this.store = store;
    this.logger = logger;
    this.maxDestroyed = maxDestroyed;
  }

  apply(ev: StatusEvent): ApplyResult {
    return { event: ev, actions: ev.kind === 'provision' ? this.provision(ev) : this.destroy(ev) };
  }

  private findProvision(id: string): ProvisionRequest | undefined {
    return this.store.getRecentProvisionRequests().find((r) => r.requestId === id);
  }

  private findDestroy(id: string): DestroyRequest | undefined {
    return this.store.getRecentDestroyRequests().find((r) => r.requestId === id);
  }

  /* Progress of a request that is not finished; shared by both kinds. */
  private progress(
    req: ProvisionRequest | DestroyRequest | undefined,
    ev: StatusEvent,
    update: (u: RequestUpdate) => void,
  ): Applied[] {
    if (!req) return ['unknown-request'];
    if (req.status === 'completed') return ['stale'];
    if (req.status === 'failed' && req.completedAt && eventTime(ev) < req.completedAt) return ['stale'];
    const status = ev.state === 'waiting_capacity' ? 'pending' : 'processing';
    if (req.status === status) return ['duplicate'];
    const u: RequestUpdate = { status };
    if (req.status === 'failed') {
      /* A replay of a dead letter: the old outcome no longer holds. */
      u.error = undefined;
      u.completedAt = undefined;
    }
    update(u);
    return [status];
  }

  private provision(ev: StatusEvent): Applied[] {
    const req = this.findProvision(ev.requestId);
    const update = (u: Partial<ProvisionRequest>) => this.store.updateProvisionRequest(ev.requestId, u);
    if (ev.state === 'completed') {
      const actions: Applied[] = [];
      if (!req) actions.push('unknown-request');
      else if (req.status === 'completed') actions.push('duplicate');
      else {
        update({ status: 'completed', completedAt: eventTime(ev), thopterId: ev.thopterId ?? req.thopterId, error: undefined });
        actions.push('completed');
      }
      const id = ev.thopterId;
      if (id && !this.destroyed.has(id) && !this.store.getThopter(id)) {
        this.store.addThopter(id, ev.machineName ?? `thopter-${id}`, ev.region ?? 'unknown', req?.image ?? 'unknown', req?.github);
        actions.push('thopter-added');
        this.logger?.info(`Provision ${ev.requestId} completed: thopter ${id} added`, id, 'thopter-events');
        this.store.triggerReconciliation?.().catch((e: unknown) => {
          this.logger?.warn(`Reconciliation after provision failed: ${e instanceof Error ? e.message : String(e)}`, id, 'thopter-events');
        });
      }
      return actions;
    }
    if (ev.state === 'failed') {
      if (!req) return ['unknown-request'];
      if (req.status === 'completed') return ['stale'];
      if (req.status === 'failed' && req.error === errorText(ev)) return ['duplicate'];
      update({ status: 'failed', completedAt: eventTime(ev), error: errorText(ev) });
      this.logger?.error(`Provision ${ev.requestId} failed: ${errorText(ev)}`, ev.thopterId, 'thopter-events');
      return ['failed'];
    }
    return this.progress(req, ev, update);
  }

  private destroy(ev: StatusEvent): Applied[] {
    const req = this.findDestroy(ev.requestId);
    const thopterId = ev.thopterId ?? req?.thopterId;
    const update = (u: Partial<DestroyRequest>) => this.store.updateDestroyRequest(ev.requestId, u);
    if (ev.state === 'completed') {
      const actions: Applied[] = [];
      if (!req) actions.push('unknown-request');
      else if (req.status === 'completed') actions.push('duplicate');
      else {
        update({ status: 'completed', completedAt: eventTime(ev), error: undefined });
        actions.push('completed');
      }
      if (thopterId) {
        this.destroyed.delete(thopterId);
        this.destroyed.set(thopterId, Date.now());
        if (this.destroyed.size > this.maxDestroyed) {
          const oldest = this.destroyed.keys().next().value;
          if (oldest !== undefined) this.destroyed.delete(oldest);
        }
        if (this.store.getThopter(thopterId)) {
          this.store.removeThopter(thopterId);
          actions.push('thopter-removed');
          this.logger?.info(`Destroy ${ev.requestId} completed: thopter ${thopterId} removed`, thopterId, 'thopter-events');
        }
      }
      return actions;
    }
    if (ev.state === 'failed') {
      const actions: Applied[] = [];
      if (!req) actions.push('unknown-request');
      else if (req.status === 'completed') return ['stale'];
      else if (req.status === 'failed' && req.error === errorText(ev)) actions.push('duplicate');
      else {
        update({ status: 'failed', completedAt: eventTime(ev), error: errorText(ev) });
        actions.push('failed');
        this.logger?.error(`Destroy ${ev.requestId} failed: ${errorText(ev)}`, thopterId, 'thopter-events');
      }
      /* As the original: clear killRequested so the user can try again, unless
       * another destroy of that thopter is still on its way. */
      const t = thopterId ? this.store.getThopter(thopterId) : undefined;
      if (thopterId && t?.hub.killRequested) {
        const other = this.store
          .getRecentDestroyRequests()
          .some(
            (r) =>
              r.thopterId === thopterId &&
              r.requestId !== ev.requestId &&
              (r.status === 'pending' || r.status === 'processing'),
          );
        if (!other) this.store.setKillRequested(thopterId, false);
      }
      return actions;
    }
    return this.progress(req, ev, update);
  }
}

export interface FollowerOptions {
  store: HubStateStore;
  settings?: Partial<KafkaSettings>;
  logger?: HubLogger;
  /** A brand-new group starts at the beginning of thopter.events instead of its end. Default false. */
  fromBeginning?: boolean;
  /** Longest wait (ms) of one fetch; the mock broker holds an empty fetch this long. Default 1000. */
  maxWaitTimeMs?: number;
  /** Called after each event was applied (dashboards, tests). */
  onApplied?: (result: ApplyResult) => void;
}

export class EventFollower {
  readonly settings: KafkaSettings;
  readonly applier: EventApplier;
  private readonly consumer: KafkaConsumer;
  private readonly options: FollowerOptions;
  private running = false;
  private joined = false;
  private joinWaiters: Array<() => void> = [];

  /** @throws Error naming the setting or the properties file when they are unusable. */
  constructor(options: FollowerOptions) {
    this.options = options;
    this.settings = kafkaSettings(options.settings);
    this.applier = new EventApplier(options.store, options.logger);
    this.consumer = makeConsumer(this.settings, options.logger, {
      fromBeginning: options.fromBeginning ?? false,
      maxWaitTimeMs: options.maxWaitTimeMs ?? 1000,
      onAssigned: () => {
        this.joined = true;
        for (const w of this.joinWaiters.splice(0)) w();
      },
    });
  }

  get isRunning(): boolean {
    return this.running;
  }

  get hasJoined(): boolean {
    return this.joined;
  }

  /** Applies one record's value; never throws (a bad event must not stall its partition). */
  handle(value: Buffer | string | null): ApplyResult | null {
    const ev = parseEvent(value);
    if (typeof ev === 'string') {
      this.options.logger?.warn(`Ignored a record of ${this.settings.topics.events}: ${ev}`, undefined, 'thopter-events');
      return null;
    }
    try {
      const result = this.applier.apply(ev);
      this.options.onApplied?.(result);
      return result;
    } catch (e) {
      this.options.logger?.error(
        `Applying ${ev.kind} event ${ev.state} of ${ev.requestId} failed: ${e instanceof Error ? e.message : String(e)}`,
        ev.thopterId,
        'thopter-events',
      );
      return null;
    }
  }

  /** Joins the group and follows thopter.events. @throws Error naming the brokers when they cannot be reached. */
  async start(): Promise<void> {
    if (this.running) return;
    try {
      await withDeadline(this.consumer.connect(), this.settings.connectionTimeoutMs, 'the cluster');
      await this.consumer.subscribe({ topics: [this.settings.topics.events] });
      await this.consumer.run({
        eachMessage: async ({ message }: KafkaMessagePayload) => {
          this.handle(message.value);
        },
      });
    } catch (e) {
      await this.consumer.disconnect().catch(() => undefined);
      throw new Error(`cannot follow ${this.settings.topics.events} at ${this.settings.brokers.join(',')}: ${clientErrorText(e)}`);
    }
    this.running = true;
  }

  /** Resolves once the group gave this follower its partitions (a few seconds on the mock broker). */
  waitUntilJoined(timeoutMs = 30000): Promise<void> {
    if (this.joined) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`follower did not join group ${this.settings.groupId} in ${timeoutMs} ms`)), timeoutMs);
      this.joinWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Commits what was applied and leaves the group. */
  async stop(): Promise<void> {
    this.running = false;
    await this.consumer.disconnect();
  }
}
