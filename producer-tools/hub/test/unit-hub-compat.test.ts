/* The hub's own StateManager, logger and request objects fit this package as they
 * are: checked by the compiler (tsc --strict) against the declarations of
 * thopter-swarm's hub (fixtures/hub-model.ts). If a signature drifts, the test
 * build fails. */

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { HubStateStore } from '../src/state-store';
import type { AgentManager } from '../src/agent-manager';
import type { HubLogger, ProvisionRequest, DestroyRequest } from '../src/types';
import type * as Hub from './fixtures/hub-model';

type Fits<T extends U, U> = T;

/* `new AgentManager({ stateManager, logger })` with the hub's singletons. */
export type StateManagerIsAStore = Fits<Hub.StateManager, HubStateStore>;
export type HubLoggerFits = Fits<Hub.Logger, HubLogger>;
/* The hub's request objects go through the package, and the package's back into the hub's state. */
export type ProvisionIn = Fits<Hub.ProvisionRequest, ProvisionRequest>;
export type DestroyIn = Fits<Hub.DestroyRequest, DestroyRequest>;
export type ProvisionOut = Fits<Omit<ProvisionRequest, 'image'>, Hub.ProvisionRequest>;
export type DestroyOut = Fits<DestroyRequest, Hub.DestroyRequest>;
/* The routes' call: createProvisionRequest(repository, github, undefined, gc, prompt). */
export type ProvisionArgs = Fits<[string, Hub.GitHubContext, undefined, string, string | undefined], Parameters<AgentManager['createProvisionRequest']>>;
export type DestroyArgs = Fits<[string, 'dashboard', string], Parameters<AgentManager['createDestroyRequest']>>;

test('the hub declarations compiled against the package (see the types above)', () => {
  assert.ok(true, 'tsc --strict accepted fixtures/hub-model.ts where the package takes hub objects');
});
