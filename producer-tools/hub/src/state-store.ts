/* state-store.ts - what this package needs of the hub's state, and an in-memory one.
 *
 * HubStateStore is the subset of thopter-swarm's StateManager
 * (hub/src/lib/state-manager.ts, dd6852b) that the original AgentManager used,
 * with the same names and signatures: the hub's `stateManager` singleton
 * implements it as it is (test/unit-hub-compat.test.ts checks that against the
 * StateManager's declared methods). MemoryHubState behaves like StateManager for
 * these methods (including the 50-request ring buffers) and is what the tests
 * and local experiments use.
 */

import type { DestroyRequest, GitHubContext, ProvisionRequest, ThopterState } from './types';

export interface HubStateStore {
  addProvisionRequest(request: ProvisionRequest): void;
  updateProvisionRequest(requestId: string, updates: Partial<ProvisionRequest>): void;
  getRecentProvisionRequests(limit?: number): ProvisionRequest[];

  addDestroyRequest(request: DestroyRequest): void;
  updateDestroyRequest(requestId: string, updates: Partial<DestroyRequest>): void;
  getRecentDestroyRequests(limit?: number): DestroyRequest[];

  getThopter(thopterId: string): ThopterState | undefined;
  addThopter(
    machineId: string,
    machineName: string,
    region: string,
    image: string,
    github?: GitHubContext,
    createdAt?: Date,
  ): unknown;
  removeThopter(thopterId: string): void;
  setKillRequested(thopterId: string, requested?: boolean): void;

  /** Optional: the original called it after a provision completed (fly is the source of truth). */
  triggerReconciliation?(): Promise<void>;
  /** Optional: 'running', 'paused', ... (the original's OperatingMode). */
  getOperatingMode?(): string;
}

export class MemoryHubState implements HubStateStore {
  private readonly thopters = new Map<string, ThopterState>();
  private readonly provisionRequests: ProvisionRequest[] = [];
  private readonly destroyRequests: DestroyRequest[] = [];
  private readonly maxRequests: number;
  mode = 'running';
  reconciliations = 0;

  constructor(maxRequests = 50) {
    this.maxRequests = maxRequests;
  }

  addProvisionRequest(request: ProvisionRequest): void {
    this.pushCapped(this.provisionRequests, request);
  }

  updateProvisionRequest(requestId: string, updates: Partial<ProvisionRequest>): void {
    updateById(this.provisionRequests, requestId, updates);
  }

  getRecentProvisionRequests(limit?: number): ProvisionRequest[] {
    return recent(this.provisionRequests, limit);
  }

  addDestroyRequest(request: DestroyRequest): void {
    this.pushCapped(this.destroyRequests, request);
  }

  updateDestroyRequest(requestId: string, updates: Partial<DestroyRequest>): void {
    updateById(this.destroyRequests, requestId, updates);
  }

  getRecentDestroyRequests(limit?: number): DestroyRequest[] {
    return recent(this.destroyRequests, limit);
  }

  /** StateManager's ring buffer: the newest maxRequests requests. */
  private pushCapped<T>(list: T[], item: T): void {
    list.push(item);
    if (list.length > this.maxRequests) list.shift();
  }

  getThopter(thopterId: string): ThopterState | undefined {
    return this.thopters.get(thopterId);
  }

  getAllThopters(): ThopterState[] {
    return [...this.thopters.values()];
  }

  addThopter(
    machineId: string,
    machineName: string,
    region: string,
    image: string,
    github?: GitHubContext,
    createdAt?: Date,
  ): ThopterState {
    const t: ThopterState = {
      fly: { id: machineId, name: machineName, machineState: 'started', region, image, createdAt: createdAt ?? new Date() },
      hub: { killRequested: false },
      session: undefined,
      github,
    };
    this.thopters.set(machineId, t);
    return t;
  }

  removeThopter(thopterId: string): void {
    this.thopters.delete(thopterId);
  }

  setKillRequested(thopterId: string, requested = true): void {
    const t = this.thopters.get(thopterId);
    if (t) t.hub.killRequested = requested;
  }

  async triggerReconciliation(): Promise<void> {
    this.reconciliations++;
  }

  getOperatingMode(): string {
    return this.mode;
  }
}

function updateById<T extends { requestId: string }>(list: T[], requestId: string, updates: Partial<T>): void {
  const r = list.find((x) => x.requestId === requestId);
  if (r) Object.assign(r, updates);
}

function recent<T>(list: T[], limit?: number): T[] {
  return [...(limit ? list.slice(-limit) : list)];
}
