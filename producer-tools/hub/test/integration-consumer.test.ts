/* End to end, over real sockets: requests published by this package, worked by the
 * real thopter-consumer (--role destroy) against the fake fly Machines API, and
 * the consumer's status events followed back into a hub state store.
 *
 * Provisioning end to end needs sshd, a thopter stand-in and git (see
 * tests/integration/test_provision.py); here the provision request is published
 * by the package and checked on thopter.provision, and its status events are
 * SYNTHETIC (written to thopter.events by this test, as the consumer would).
 */

import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { AgentManager } from '../src/agent-manager';
import { MemoryHubState } from '../src/state-store';
import { ValidationError } from '../src/validate';
import { PRODUCER_HEADER, PACKAGE_VERSION } from '../src/publisher';
import type { ApplyResult } from '../src/follower';
import type { KafkaProducer } from '../src/kafka-client';
import { Devbroker, FakeFly, GROUP, ThopterConsumer, endOffsets, github, memoryLogger, rawProducer, readTopic, total, waitFor } from './helpers';

const THOPTER = '148e21a3c96989';
const GOLDEN = 'aaaaaaaaaaaa01';
const NEW_THOPTER = '3d8e2c1b0a9f77';

let broker: Devbroker;
let fly: FakeFly;
let consumer: ThopterConsumer;
let store: MemoryHubState;
let am: AgentManager;
let synthetic: KafkaProducer;
const applied: ApplyResult[] = [];
const logger = memoryLogger();

before(async () => {
  broker = await Devbroker.start();
  fly = await FakeFly.start();
  await fly.seedMachine({ id: THOPTER, name: 'thopter-42-abc123', state: 'started' });
  await fly.seedMachine({ id: GOLDEN, name: 'gc-default', state: 'started' });
  consumer = new ThopterConsumer(broker.bootstrap, fly.base, 'destroy');

  store = new MemoryHubState();
  store.addThopter(THOPTER, 'thopter-42-abc123', 'ord', 'img', github(42));
  store.addThopter(GOLDEN, 'gc-default', 'ord', 'img');
  am = new AgentManager({
    stateManager: store,
    logger,
    kafka: { brokers: [broker.bootstrap], groupId: 'thopter-hub-test', ...GROUP },
    follower: { fromBeginning: true, maxWaitTimeMs: 200, onApplied: (r) => applied.push(r) },
  });
  await am.start();
  await Promise.all([consumer.waitAssigned(), am.follower?.waitUntilJoined(30000)]);
  synthetic = await rawProducer(broker.bootstrap, 'synthetic-events');
});

after(async () => {
  await synthetic?.disconnect();
  await am?.handleShutdown();
  const code = await consumer?.stop();
  await fly?.stop();
  await broker?.stop();
  assert.equal(code, 0, `thopter-consumer exit status (log ${consumer?.logFile})`);
});

test('destroy: published by the package, destroyed by the consumer, completed and removed in the hub state', async () => {
  const id = await am.createDestroyRequest(THOPTER, 'dashboard', 'Manual kill request from dashboard');
  assert.ok(id);
  assert.equal(store.getThopter(THOPTER)?.hub.killRequested, true);
  const req = await waitFor('the destroy request to complete', () => {
    const r = store.getRecentDestroyRequests().find((x) => x.requestId === id);
    return r?.status === 'completed' ? r : undefined;
  }, 30000);
  assert.ok(req.completedAt instanceof Date);
  assert.equal(store.getThopter(THOPTER), undefined, 'the destroyed thopter left the state');
  const deletes = (await fly.calls('machines.delete')).filter((c) => c.machine === THOPTER);
  assert.equal(deletes.length, 1, 'one DELETE of the machine reached fly');
  assert.notEqual((await fly.machine(THOPTER)).state, 'started');
  const seen = applied.filter((r) => r.event.requestId === id).map((r) => r.event.state);
  assert.equal(seen[0], 'started');
  assert.equal(seen[seen.length - 1], 'completed');
});

test('a failed destroy (not a thopter: forbidden_target) marks the request failed and clears killRequested', async () => {
  const id = await am.createDestroyRequest(GOLDEN);
  assert.ok(id);
  const req = await waitFor('the destroy request to fail', () => {
    const r = store.getRecentDestroyRequests().find((x) => x.requestId === id);
    return r?.status === 'failed' ? r : undefined;
  }, 30000);
  assert.match(req.error ?? '', /^forbidden_target: /);
  const t = store.getThopter(GOLDEN);
  assert.ok(t, 'a failed destroy keeps the machine in the state');
  assert.equal(t.hub.killRequested, false, 'the user can ask again');
  assert.equal((await fly.calls('machines.delete')).filter((c) => c.machine === GOLDEN).length, 0);
  /* The dead letter is the package's record, headers included. */
  const dlq = await waitFor('the dead letter', () => readTopic(broker.bootstrap, 'thopter.dlq').find((m) => m.key === GOLDEN), 10000);
  const headers = new Map<string, string>();
  for (let i = 0; i + 1 < dlq.headers.length; i += 2) headers.set(String(dlq.headers[i]), String(dlq.headers[i + 1]));
  assert.equal(headers.get(PRODUCER_HEADER), `thopter-hub-kafka/${PACKAGE_VERSION}`);
  assert.equal(headers.get('thopter.dlq.error.class'), 'forbidden_target');
  assert.equal(JSON.parse(dlq.value).requestId, id);
});

test('invalid objects are refused before sending: nothing reaches either topic', async () => {
  const before = { d: total(await endOffsets(broker.bootstrap, 'thopter.destroy')), p: total(await endOffsets(broker.bootstrap, 'thopter.provision')) };
  store.addThopter('NOT-A-MACHINE', 'thopter-x', 'ord', 'img');
  await assert.rejects(am.createDestroyRequest('NOT-A-MACHINE'), (e: unknown) => e instanceof ValidationError && e.field === 'thopterId');
  await assert.rejects(am.createProvisionRequest('owner/../etc', github()), (e: unknown) => e instanceof ValidationError && e.field === 'repository');
  await assert.rejects(am.createProvisionRequest('a/b', { ...github(), issueTitle: 'x'.repeat(2000) }), (e: unknown) => e instanceof ValidationError && e.field === 'github.issueTitle');
  assert.equal(store.getThopter('NOT-A-MACHINE')?.hub.killRequested, false);
  assert.equal(store.getRecentProvisionRequests().length, 0);
  assert.equal(total(await endOffsets(broker.bootstrap, 'thopter.destroy')), before.d);
  assert.equal(total(await endOffsets(broker.bootstrap, 'thopter.provision')), before.p);
  store.removeThopter('NOT-A-MACHINE');
});

test('provision: published keyed by requestId; SYNTHETIC events (with a redelivery) complete it once', async () => {
  const id = await am.createProvisionRequest('telepath-computer/thopter-swarm', github(77), undefined, 'default', undefined);
  const rec = readTopic(broker.bootstrap, 'thopter.provision').find((m) => m.key === id);
  assert.ok(rec, 'the request is on thopter.provision under its requestId');
  assert.equal(JSON.parse(rec.value).github.issueNumber, '77');

  /* SYNTHETIC: what the provision consumer would write for this request. */
  const event = (state: string, extra: Record<string, unknown> = {}) => ({
    key: id,
    value: JSON.stringify({ requestId: id, kind: 'provision', state, attempt: 1, at: new Date().toISOString(), elapsedMs: 10, ...extra }),
  });
  const done = { thopterId: NEW_THOPTER, machineName: 'thopter-77-q1w2e3', region: 'ord' };
  await synthetic.send({ topic: 'thopter.events', messages: [event('started'), event('step', { step: 'create' }), event('completed', done)] });
  await waitFor('the provision to complete in the state', () => store.getRecentProvisionRequests().find((r) => r.requestId === id)?.status === 'completed', 20000);
  const t = store.getThopter(NEW_THOPTER);
  assert.ok(t, 'the new thopter was added');
  assert.equal(t.fly.name, 'thopter-77-q1w2e3');
  assert.equal(t.github?.issueNumber, '77');
  assert.equal(store.getRecentProvisionRequests().find((r) => r.requestId === id)?.thopterId, NEW_THOPTER);

  /* SYNTHETIC redelivery (contract section 3): started and completed again, same thopterId. */
  t.session = { tmuxState: 'active', claudeProcess: 'running', lastActivity: new Date(), screenDump: '$ claude' };
  const before = applied.length;
  await synthetic.send({ topic: 'thopter.events', messages: [event('started', { attempt: 2 }), event('completed', { ...done, attempt: 2 })] });
  await waitFor('the redelivered events to be applied', () => applied.length >= before + 2, 20000);
  assert.deepEqual(applied.slice(before).map((r) => r.actions), [['stale'], ['duplicate']]);
  assert.equal(store.getThopter(NEW_THOPTER), t, 'not re-added');
  assert.ok(store.getThopter(NEW_THOPTER)?.session, 'the observer session survived');
  assert.equal(store.getRecentProvisionRequests().find((r) => r.requestId === id)?.status, 'completed');

  /* The real consumer then destroys it: the machine is not on fly, so 404 = done. */
  const d = await am.createDestroyRequest(NEW_THOPTER);
  await waitFor('the destroy of the new thopter', () => store.getRecentDestroyRequests().find((r) => r.requestId === d)?.status === 'completed', 30000);
  assert.equal(store.getThopter(NEW_THOPTER), undefined);
});
