/* EventApplier over MemoryHubState: what the original AgentManager did on each outcome,
 * and idempotence under duplicates, redeliveries and replays. No broker. */

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { EventApplier, parseEvent } from '../src/follower';
import { MemoryHubState } from '../src/state-store';
import type { StatusEvent } from '../src/types';
import { SOURCE_DIR, github } from './helpers';

const T = '148e21a3c96989';
let clock = Date.parse('2026-01-12T09:00:00.000Z');

function ev(e: Partial<StatusEvent> & Pick<StatusEvent, 'requestId' | 'kind' | 'state'>): StatusEvent {
  clock += 1000;
  return { attempt: 1, at: new Date(clock).toISOString(), elapsedMs: 5, ...e };
}

function withProvision(store: MemoryHubState, requestId = 'provision-1-aaaaaa') {
  store.addProvisionRequest({
    requestId,
    source: 'github',
    createdAt: new Date(),
    status: 'pending',
    repository: 'telepath-computer/thopter-swarm',
    github: github(42),
    image: 'registry.fly.io/thopters:thopter-1',
  });
  return requestId;
}

function withDestroy(store: MemoryHubState, requestId = 'destroy-1-bbbbbb', thopterId = T) {
  store.addThopter(thopterId, `thopter-42-abc`, 'ord', 'img', github(42));
  store.setKillRequested(thopterId, true);
  store.addDestroyRequest({ requestId, source: 'dashboard', createdAt: new Date(), status: 'pending', thopterId, reason: 'r' });
  return requestId;
}

test('provision: started -> processing, waiting_capacity -> pending, completed adds the thopter with its GitHub context', () => {
  const store = new MemoryHubState();
  const a = new EventApplier(store);
  const id = withProvision(store);
  assert.deepEqual(a.apply(ev({ requestId: id, kind: 'provision', state: 'started' })).actions, ['processing']);
  assert.equal(store.getRecentProvisionRequests()[0]?.status, 'processing');
  a.apply(ev({ requestId: id, kind: 'provision', state: 'waiting_capacity' }));
  assert.equal(store.getRecentProvisionRequests()[0]?.status, 'pending');
  a.apply(ev({ requestId: id, kind: 'provision', state: 'step', step: 'create' }));
  assert.equal(store.getRecentProvisionRequests()[0]?.status, 'processing');
  const done = ev({ requestId: id, kind: 'provision', state: 'completed', thopterId: T, machineName: 'thopter-42-x1y2z3', region: 'ord' });
  assert.deepEqual(a.apply(done).actions, ['completed', 'thopter-added']);
  const req = store.getRecentProvisionRequests()[0];
  assert.equal(req?.status, 'completed');
  assert.equal(req?.thopterId, T);
  assert.equal(req?.completedAt?.toISOString(), done.at);
  const t = store.getThopter(T);
  assert.equal(t?.fly.name, 'thopter-42-x1y2z3');
  assert.equal(t?.fly.region, 'ord');
  assert.equal(t?.fly.image, 'registry.fly.io/thopters:thopter-1');
  assert.equal(t?.github?.issueNumber, '42');
  assert.equal(t?.hub.killRequested, false);
  assert.equal(store.reconciliations, 1);
});

test('provision: a redelivery (started, completed again) changes nothing and does not reset the thopter', () => {
  const store = new MemoryHubState();
  const a = new EventApplier(store);
  const id = withProvision(store);
  a.apply(ev({ requestId: id, kind: 'provision', state: 'started' }));
  const done = ev({ requestId: id, kind: 'provision', state: 'completed', thopterId: T, machineName: 'thopter-42-x', region: 'ord' });
  a.apply(done);
  /* The user asked to kill it meanwhile; the observer reported a session. */
  store.setKillRequested(T, true);
  const t = store.getThopter(T);
  assert.ok(t);
  t.session = { tmuxState: 'active', claudeProcess: 'running', lastActivity: new Date(), screenDump: '$' };
  assert.deepEqual(a.apply(ev({ requestId: id, kind: 'provision', state: 'started' })).actions, ['stale']);
  assert.deepEqual(a.apply(ev({ requestId: id, kind: 'provision', state: 'completed', thopterId: T })).actions, ['duplicate']);
  assert.deepEqual(a.apply(done).actions, ['duplicate']);
  assert.equal(store.getRecentProvisionRequests()[0]?.status, 'completed');
  assert.equal(store.getThopter(T)?.hub.killRequested, true);
  assert.ok(store.getThopter(T)?.session);
  assert.equal(store.reconciliations, 1);
});

test('provision: failed records the error; a dead-letter replay runs again and completes', () => {
  const store = new MemoryHubState();
  const a = new EventApplier(store);
  const id = withProvision(store);
  a.apply(ev({ requestId: id, kind: 'provision', state: 'started' }));
  const failed = ev({ requestId: id, kind: 'provision', state: 'failed', error: { class: 'capacity', message: 'no capacity in ord' } });
  assert.deepEqual(a.apply(failed).actions, ['failed']);
  let req = store.getRecentProvisionRequests()[0];
  assert.equal(req?.status, 'failed');
  assert.equal(req?.error, 'capacity: no capacity in ord');
  assert.equal(store.getThopter(T), undefined);
  assert.deepEqual(a.apply(failed).actions, ['duplicate']);
  /* A progress event from before the failure (out of order) is stale. */
  assert.deepEqual(a.apply({ ...ev({ requestId: id, kind: 'provision', state: 'step', step: 'create' }), at: '2020-01-01T00:00:00.000Z' }).actions, ['stale']);
  /* thopter-dlq replay: started again, later. */
  assert.deepEqual(a.apply(ev({ requestId: id, kind: 'provision', state: 'started' })).actions, ['processing']);
  req = store.getRecentProvisionRequests()[0];
  assert.equal(req?.status, 'processing');
  assert.equal(req?.error, undefined);
  a.apply(ev({ requestId: id, kind: 'provision', state: 'completed', thopterId: T }));
  assert.equal(store.getRecentProvisionRequests()[0]?.status, 'completed');
  assert.equal(store.getThopter(T)?.fly.name, `thopter-${T}`);
  /* failed after completed (a stale record) does not undo it */
  assert.deepEqual(a.apply(failed).actions, ['stale']);
  assert.equal(store.getRecentProvisionRequests()[0]?.status, 'completed');
});

test('destroy: completed marks the request and removes the thopter; a duplicate is harmless', () => {
  const store = new MemoryHubState();
  const a = new EventApplier(store);
  const id = withDestroy(store);
  a.apply(ev({ requestId: id, kind: 'destroy', state: 'started', thopterId: T }));
  assert.equal(store.getRecentDestroyRequests()[0]?.status, 'processing');
  assert.deepEqual(a.apply(ev({ requestId: id, kind: 'destroy', state: 'completed', thopterId: T })).actions, ['completed', 'thopter-removed']);
  assert.equal(store.getRecentDestroyRequests()[0]?.status, 'completed');
  assert.equal(store.getThopter(T), undefined);
  assert.deepEqual(a.apply(ev({ requestId: id, kind: 'destroy', state: 'completed', thopterId: T })).actions, ['duplicate']);
});

test('destroy: failed records the error and clears killRequested so the user can retry', () => {
  const store = new MemoryHubState();
  const a = new EventApplier(store);
  const id = withDestroy(store);
  assert.equal(store.getThopter(T)?.hub.killRequested, true);
  const r = a.apply(ev({ requestId: id, kind: 'destroy', state: 'failed', thopterId: T, error: { class: 'fly_unavailable', message: 'HTTP 503' } }));
  assert.deepEqual(r.actions, ['failed']);
  const req = store.getRecentDestroyRequests()[0];
  assert.equal(req?.status, 'failed');
  assert.equal(req?.error, 'fly_unavailable: HTTP 503');
  assert.equal(store.getThopter(T)?.hub.killRequested, false);
  assert.ok(store.getThopter(T), 'a failed destroy keeps the thopter');
});

test('destroy: a failure of one request leaves killRequested while another destroy of that thopter is pending', () => {
  const store = new MemoryHubState();
  const a = new EventApplier(store);
  withDestroy(store, 'destroy-1-aaaaaa');
  store.addDestroyRequest({ requestId: 'destroy-2-bbbbbb', source: 'dashboard', createdAt: new Date(), status: 'pending', thopterId: T });
  a.apply(ev({ requestId: 'destroy-1-aaaaaa', kind: 'destroy', state: 'failed', thopterId: T, error: { class: 'internal', message: 'x' } }));
  assert.equal(store.getThopter(T)?.hub.killRequested, true);
});

test('events of requests the hub did not make still add and remove thopters', () => {
  const store = new MemoryHubState();
  const a = new EventApplier(store);
  assert.deepEqual(a.apply(ev({ requestId: 'send-1-abcdef-1', kind: 'provision', state: 'completed', thopterId: T, region: 'ams' })).actions, [
    'unknown-request',
    'thopter-added',
  ]);
  assert.equal(store.getThopter(T)?.fly.region, 'ams');
  assert.deepEqual(a.apply(ev({ requestId: 'bulk-1-1', kind: 'destroy', state: 'completed', thopterId: T })).actions, [
    'unknown-request',
    'thopter-removed',
  ]);
  assert.equal(store.getThopter(T), undefined);
  /* An old provision `completed` read after the destroy does not bring it back. */
  assert.deepEqual(a.apply(ev({ requestId: 'send-1-abcdef-1', kind: 'provision', state: 'completed', thopterId: T })).actions, ['unknown-request']);
  assert.equal(store.getThopter(T), undefined);
  assert.deepEqual(a.apply(ev({ requestId: 'thopter.destroy-0-7', kind: 'destroy', state: 'failed', error: { class: 'invalid_request', message: 'x' } })).actions, [
    'unknown-request',
  ]);
});

test('parseEvent: the schema examples parse; garbage is refused with a reason', () => {
  const dir = path.join(SOURCE_DIR, 'schemas', 'examples', 'valid');
  const files = fs.readdirSync(dir).filter((f) => f.startsWith('event-'));
  assert.ok(files.length >= 3);
  for (const f of files) {
    const e = parseEvent(fs.readFileSync(path.join(dir, f)));
    assert.equal(typeof e, 'object', `${f}: ${String(e)}`);
  }
  assert.match(String(parseEvent(null)), /tombstone/);
  assert.match(String(parseEvent('nope')), /not JSON/);
  assert.match(String(parseEvent('[]')), /object/);
  assert.match(String(parseEvent('{"requestId":"r","kind":"other","state":"started"}')), /kind/);
  assert.match(String(parseEvent('{"requestId":"r","kind":"destroy","state":"exploded"}')), /state/);
  assert.match(String(parseEvent('{"requestId":"r","kind":"destroy","state":"started","thopterId":"X"}')), /thopterId/);
  /* Unknown fields from a newer consumer are ignored, not fatal. */
  const e = parseEvent('{"requestId":"r","kind":"destroy","state":"started","attempt":1,"at":"2026-01-12T09:00:00.000Z","elapsedMs":1,"newField":true}');
  assert.equal(typeof e, 'object');
});
