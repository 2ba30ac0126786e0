/* Kafka unreachable: a clear error, in bounded time, and nothing half-sent. */

import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'net';
import { AgentManager } from '../src/agent-manager';
import { PublishError } from '../src/publisher';
import { MemoryHubState } from '../src/state-store';
import { Devbroker, endOffsets, github, memoryLogger, readTopic, sleep, tmo, total } from './helpers';

const THOPTER = '148e21a3c96989';
let broker: Devbroker;

before(async () => {
  broker = await Devbroker.start({ faults: true });
});

after(async () => {
  await broker?.stop();
});

/* A local port nothing listens on. */
async function deadPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

test('no broker at start: start() fails naming the brokers, quickly', async () => {
  const port = await deadPort();
  const am = new AgentManager({ stateManager: new MemoryHubState(), kafka: { brokers: [`127.0.0.1:${port}`], sendRetries: 1, connectionTimeoutMs: 3000 }, logger: memoryLogger() });
  const t0 = Date.now();
  await assert.rejects(am.start(), (e: unknown) => e instanceof Error && e.message.includes(`cannot reach Kafka at 127.0.0.1:${port}`));
  assert.ok(Date.now() - t0 < tmo(20000), `took ${Date.now() - t0} ms`);
  await am.handleShutdown();
});

test('broker goes down: publish rejects with PublishError, the state says so, nothing is sent later', async (t) => {
  const store = new MemoryHubState();
  store.addThopter(THOPTER, 'thopter-42-abc', 'ord', 'img', github());
  const logger = memoryLogger();
  const am = new AgentManager({ stateManager: store, follow: false, logger, kafka: { brokers: [broker.bootstrap], sendRetries: 2, requestTimeoutMs: 3000, sendTimeoutMs: 4000, connectionTimeoutMs: 3000 } });
  await am.start();
  t.after(() => am.handleShutdown());
  /* Up: one request goes through. */
  const first = await am.createProvisionRequest('a/b', github(1));
  assert.equal(total(await endOffsets(broker.bootstrap, 'thopter.provision')), 1);

  await broker.inject('down');
  const t0 = Date.now();
  let err: unknown;
  try {
    await am.createDestroyRequest(THOPTER, 'dashboard', 'while down');
  } catch (e) {
    err = e;
  }
  const took = Date.now() - t0;
  assert.ok(err instanceof PublishError, `expected PublishError, got ${String(err)}`);
  assert.match(err.message, /^thopter\.destroy: request 148e21a3c96989 not acknowledged by Kafka \(127\.0\.0\.1:\d+\): .+ Sending it again is safe/);
  assert.ok(took < tmo(30000), `the error took ${took} ms`);
  t.diagnostic(`broker down: PublishError after ${took} ms: ${err.message}`);
  const failed = store.getRecentDestroyRequests()[0];
  assert.equal(failed?.status, 'failed');
  assert.match(failed?.error ?? '', /^not published: /);
  assert.equal(store.getThopter(THOPTER)?.hub.killRequested, false, 'the user can try again');
  await assert.rejects(am.createProvisionRequest('a/b', github(2)), PublishError);

  await broker.inject('up');
  await sleep(3000); /* time for anything queued to leak out, were there a queue */
  assert.equal(total(await endOffsets(broker.bootstrap, 'thopter.destroy')), 0, 'no destroy reached the broker');
  const provisions = readTopic(broker.bootstrap, 'thopter.provision');
  assert.deepEqual(provisions.map((m) => m.key), [first], 'only the request sent while up');

  /* Back up: the same request is accepted again, once. */
  const id = await am.createDestroyRequest(THOPTER, 'dashboard', 'after the outage');
  assert.ok(id);
  const destroys = readTopic(broker.bootstrap, 'thopter.destroy');
  assert.equal(destroys.length, 1);
  assert.equal(JSON.parse(destroys[0]?.value ?? '{}').requestId, id);
  await am.handleShutdown();
});
