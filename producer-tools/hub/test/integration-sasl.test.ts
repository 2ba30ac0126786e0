/* A secured cluster, configured as the consumer's (docs/OPERATIONS.md section
 * 4): the SASL_PLAINTEXT listener of a real Kafka (THOPTER_TEST_KAFKA=real,
 * tests/harness/kafka_cluster.py --sasl), with PLAIN, SCRAM-SHA-256 and
 * SCRAM-SHA-512, the password only in the THOPTER_KAFKA_CONFIG_FILE file.
 * thopter-devbroker (librdkafka's mock) has no SASL listener: skipped there. */

import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AgentManager } from '../src/agent-manager';
import { MemoryHubState } from '../src/state-store';
import { kafkaSettings } from '../src/config';
import type { ApplyResult } from '../src/follower';
import { makeProducer } from '../src/kafka-client';
import { Devbroker, GROUP, REAL_KAFKA, SASL_USER, github, memoryLogger, readTopic, waitFor } from './helpers';

const SKIP = REAL_KAFKA ? false : 'thopter-devbroker has no SASL listener (THOPTER_TEST_KAFKA=real runs this)';
const THOPTER = '148e21a3c96989';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-sasl-'));
let broker: Devbroker;

function propertiesFile(name: string, mechanism: string, password: string): string {
  const f = path.join(dir, name);
  fs.writeFileSync(
    f,
    `# as for thopter-consumer\nsecurity.protocol=SASL_PLAINTEXT\nsasl.mechanisms=${mechanism}\nsasl.username=${SASL_USER.username}\nsasl.password=${password}\n`,
    { mode: 0o600 },
  );
  return f;
}

before(async () => {
  if (!SKIP) broker = await Devbroker.start();
});

after(async () => {
  await broker?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

for (const mechanism of ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512']) {
  test(`SASL ${mechanism} from THOPTER_KAFKA_CONFIG_FILE: publish and follow`, { skip: SKIP }, async (t) => {
    const configFile = propertiesFile(`${mechanism}.properties`, mechanism, SASL_USER.password);
    const store = new MemoryHubState();
    store.addThopter(THOPTER, 'thopter-42-abc', 'ord', 'img', github());
    const applied: ApplyResult[] = [];
    /* As the hub runs it: everything from the environment. */
    const env = { KAFKA_BROKERS: broker.saslBootstrap, THOPTER_KAFKA_CONFIG_FILE: configFile, THOPTER_HUB_GROUP: `hub-sasl-${mechanism}` };
    const am = new AgentManager({
      stateManager: store,
      logger: memoryLogger(),
      kafka: kafkaSettings({ ...GROUP }, env),
      follower: { fromBeginning: true, maxWaitTimeMs: 200, onApplied: (r) => applied.push(r) },
    });
    t.after(() => am.handleShutdown());
    await am.start();
    await am.follower?.waitUntilJoined(60000);
    const id = await am.createDestroyRequest(THOPTER, 'dashboard', `over SASL ${mechanism}`);
    assert.ok(id);
    /* The record is there, read back over the plaintext listener. */
    const rec = readTopic(broker.bootstrap, 'thopter.destroy').find((r) => JSON.parse(r.value).requestId === id);
    assert.ok(rec, 'the destroy request is on thopter.destroy');
    assert.equal(rec.key, THOPTER);
    /* An event written over SASL reaches the follower, which completes the request. */
    const events = makeProducer(kafkaSettings({}, env), undefined);
    await events.connect();
    t.after(() => events.disconnect());
    await events.send({
      topic: 'thopter.events',
      messages: [{ key: id, value: JSON.stringify({ requestId: id, kind: 'destroy', state: 'completed', thopterId: THOPTER, attempt: 1, at: new Date().toISOString(), elapsedMs: 5 }) }],
    });
    await waitFor('the follower to complete the request', () => store.getRecentDestroyRequests().find((r) => r.requestId === id)?.status === 'completed', 30000);
    assert.equal(store.getThopter(THOPTER), undefined);
  });
}

test('SASL with a wrong password: start() fails with one error naming the brokers', { skip: SKIP }, async () => {
  const configFile = propertiesFile('wrong.properties', 'SCRAM-SHA-256', 'not-the-password');
  const logger = memoryLogger();
  const am = new AgentManager({
    stateManager: new MemoryHubState(),
    logger,
    follow: false,
    kafka: kafkaSettings({ connectionTimeoutMs: 10000 }, { KAFKA_BROKERS: broker.saslBootstrap, THOPTER_KAFKA_CONFIG_FILE: configFile }),
  });
  await assert.rejects(am.start(), (e: unknown) => e instanceof Error && e.message.startsWith(`cannot reach Kafka at ${broker.saslBootstrap}: `));
  await am.handleShutdown();
  assert.ok(!logger.lines.join('\n').includes('not-the-password'), 'the password is in no log line');
});
