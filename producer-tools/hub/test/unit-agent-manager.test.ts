/* AgentManager without a broker: what it records, refuses and publishes, and what a
 * failed publish leaves in the state. The publisher is the real one with send()
 * replaced, so validation is the real one too. */

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { AgentManager, generateRequestId } from '../src/agent-manager';
import { PublishError, Published, RequestPublisher } from '../src/publisher';
import { MemoryHubState } from '../src/state-store';
import { ValidationError, RequestKind } from '../src/validate';
import { github } from './helpers';

class FakePublisher extends RequestPublisher {
  sent: Array<{ kind: RequestKind; key: string; value: string }> = [];
  fail: Error | null = null;

  constructor() {
    super({ settings: { brokers: ['127.0.0.1:1'] } });
  }

  override async connect(): Promise<void> {}

  override async publish(kind: RequestKind, request: object): Promise<Published> {
    const value = this.validator.serialize(kind, request);
    const o = JSON.parse(value) as { requestId: string; thopterId: string };
    const key = kind === 'provision' ? o.requestId : o.thopterId;
    if (this.fail) throw new PublishError(`thopter.${kind}`, key, this.settings.brokers, this.fail);
    this.sent.push({ kind, key, value });
    return { topic: `thopter.${kind}`, partition: 0, offset: String(this.sent.length - 1), key };
  }
}

function setup() {
  const store = new MemoryHubState();
  const publisher = new FakePublisher();
  const am = new AgentManager({ stateManager: store, publisher, follow: false });
  store.addThopter('148e21a3c96989', 'thopter-42-abc', 'ord', 'img', github());
  return { store, publisher, am };
}

test('generateRequestId keeps the hub form and the contract charset', () => {
  for (let i = 0; i < 200; i++) assert.match(generateRequestId('provision'), /^provision-\d{13}-[0-9a-f]{6}$/);
});

test('createProvisionRequest records the request pending and publishes it keyed by requestId', async () => {
  const { store, publisher, am } = setup();
  const id = await am.createProvisionRequest('telepath-computer/thopter-swarm', github(), undefined, 'default', undefined);
  const req = store.getRecentProvisionRequests()[0];
  assert.equal(req?.requestId, id);
  assert.equal(req?.status, 'pending');
  assert.equal(publisher.sent.length, 1);
  assert.equal(publisher.sent[0]?.key, id);
  const sent = JSON.parse(publisher.sent[0]?.value ?? '{}');
  assert.equal(sent.repository, 'telepath-computer/thopter-swarm');
  assert.equal(sent.github.issueNumber, '42');
  assert.equal(sent.gc, 'default');
  assert.equal(sent.source, 'github');
});

test('createProvisionRequest passes the hub image when getImage gives one', async () => {
  const store = new MemoryHubState();
  const publisher = new FakePublisher();
  const am = new AgentManager({ stateManager: store, publisher, follow: false, getImage: async () => 'registry.fly.io/thopters:thopter-abc-1' });
  await am.createProvisionRequest('a/b', github());
  assert.equal(JSON.parse(publisher.sent[0]?.value ?? '{}').image, 'registry.fly.io/thopters:thopter-abc-1');
});

test('an invalid provision is refused before anything is recorded or sent', async () => {
  const { store, publisher, am } = setup();
  await assert.rejects(am.createProvisionRequest('not a repo', github()), (e: unknown) => e instanceof ValidationError && e.field === 'repository');
  await assert.rejects(am.createProvisionRequest('a/b', { ...github(), issueNumber: 'forty-two' }), ValidationError);
  assert.equal(store.getRecentProvisionRequests().length, 0);
  assert.equal(publisher.sent.length, 0);
});

test('createDestroyRequest refuses as the original did (unknown, already killing, pending)', async () => {
  const { store, publisher, am } = setup();
  assert.equal(await am.createDestroyRequest('00000000000000'), null);
  const id = await am.createDestroyRequest('148e21a3c96989', 'dashboard', 'Manual kill request from dashboard');
  assert.ok(id);
  assert.equal(store.getThopter('148e21a3c96989')?.hub.killRequested, true);
  assert.equal(await am.createDestroyRequest('148e21a3c96989'), null, 'kill already requested');
  store.setKillRequested('148e21a3c96989', false);
  assert.equal(await am.createDestroyRequest('148e21a3c96989'), null, 'a destroy is pending');
  assert.equal(publisher.sent.length, 1);
  assert.equal(publisher.sent[0]?.key, '148e21a3c96989');
  assert.equal(JSON.parse(publisher.sent[0]?.value ?? '{}').requestId, id);
});

test('a destroy of a thopter whose id is not a machine id is refused before anything changes', async () => {
  const { store, publisher, am } = setup();
  store.addThopter('ABC', 'thopter-x', 'ord', 'img');
  await assert.rejects(am.createDestroyRequest('ABC'), (e: unknown) => e instanceof ValidationError && e.field === 'thopterId');
  assert.equal(store.getThopter('ABC')?.hub.killRequested, false);
  assert.equal(store.getRecentDestroyRequests().length, 0);
  assert.equal(publisher.sent.length, 0);
});

test('a publish failure marks the request failed, clears killRequested and throws PublishError', async () => {
  const { store, publisher, am } = setup();
  publisher.fail = new Error('Connection error: connect ECONNREFUSED 127.0.0.1:1');
  await assert.rejects(am.createDestroyRequest('148e21a3c96989'), (e: unknown) => e instanceof PublishError && /thopter\.destroy/.test(e.message) && /127\.0\.0\.1:1/.test(e.message));
  const d = store.getRecentDestroyRequests()[0];
  assert.equal(d?.status, 'failed');
  assert.match(d?.error ?? '', /^not published: /);
  assert.equal(store.getThopter('148e21a3c96989')?.hub.killRequested, false);
  await assert.rejects(am.createProvisionRequest('a/b', github()), PublishError);
  assert.equal(store.getRecentProvisionRequests()[0]?.status, 'failed');
  /* The user can try again once Kafka is back. */
  publisher.fail = null;
  assert.ok(await am.createDestroyRequest('148e21a3c96989'));
});

test('getStatus reports the operating mode and the Kafka side', () => {
  const { store, am } = setup();
  store.mode = 'paused';
  const s = am.getStatus();
  assert.equal(s.systemMode, 'paused');
  assert.equal(s.isRunning, false);
  assert.deepEqual(s.kafka.brokers, ['127.0.0.1:1']);
  assert.equal(s.kafka.followerRunning, false);
});
