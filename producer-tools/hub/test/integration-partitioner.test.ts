/* The same key lands on the same partition from thopter-send (librdkafka 2.0.2,
 * partitioner=murmur2_random), from this package (librdkafka 2.15 through
 * @confluentinc/kafka-javascript, partitioner=murmur2_random) and by
 * partitionForKey(), on thopter.destroy's 6 partitions. No consumer runs: the
 * records stay where they were put. */

import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import { randomBytes } from 'crypto';
import { RequestPublisher } from '../src/publisher';
import { partitionForKey } from '../src/murmur2';
import { Devbroker, binary, rawProducer, readTopic, tmo } from './helpers';

let broker: Devbroker;
let publisher: RequestPublisher;

before(async () => {
  broker = await Devbroker.start();
  publisher = new RequestPublisher({ settings: { brokers: [broker.bootstrap] } });
});

after(async () => {
  await publisher?.close();
  await broker?.stop();
});

test('300 keys: thopter-send, the package and partitionForKey agree on every partition', async () => {
  const ids = Array.from({ length: 300 }, () => randomBytes(7).toString('hex'));
  const r = spawnSync(binary('thopter-send'), ['destroy', '-', '-b', broker.bootstrap], {
    input: ids.join('\n') + '\n',
    encoding: 'utf8',
    timeout: tmo(60000),
  });
  assert.equal(r.status, 0, `thopter-send: ${r.stderr}`);
  const bySend = new Map<string, number>();
  for (const line of r.stdout.split('\n')) {
    const m = /^sent destroy ([0-9a-f]{14}) -> thopter\.destroy \[(\d+)\]/.exec(line);
    if (m && m[1] && m[2]) bySend.set(m[1], Number(m[2]));
  }
  assert.equal(bySend.size, ids.length, `thopter-send printed ${bySend.size} of ${ids.length} lines`);

  const byPackage = new Map<string, number>();
  for (const id of ids) {
    const sent = await publisher.publishDestroy({ requestId: `hub-${id}`, source: 'api', createdAt: new Date(), status: 'pending', thopterId: id });
    byPackage.set(id, sent.partition);
  }
  const used = new Set<number>();
  for (const id of ids) {
    assert.equal(byPackage.get(id), bySend.get(id), `key ${id}: package [${byPackage.get(id)}] vs thopter-send [${bySend.get(id)}]`);
    assert.equal(partitionForKey(id, 6), bySend.get(id), `key ${id}: partitionForKey`);
    used.add(bySend.get(id) ?? -1);
  }
  assert.equal(used.size, 6, 'the keys cover all 6 partitions');

  /* What the broker holds agrees with what both reported: each key twice, on one partition. */
  const records = readTopic(broker.bootstrap, 'thopter.destroy').filter((r) => /^[0-9a-f]{14}$/.test(r.key));
  assert.equal(records.length, 2 * ids.length);
  const where = new Map<string, Set<number>>();
  for (const rec of records) {
    const s = where.get(rec.key) ?? new Set<number>();
    s.add(rec.partition);
    where.set(rec.key, s);
  }
  for (const id of ids) assert.deepEqual([...(where.get(id) ?? [])], [bySend.get(id)], id);
});

test('the client partitioner is partitionForKey() for every key length (1 to 40 random bytes)', async () => {
  const producer = await rawProducer(broker.bootstrap);
  try {
    for (let i = 0; i < 400; i++) {
      const key = randomBytes(1 + (i % 40));
      /* Binary keys of every murmur2 tail length; thopter.destroy is the 6-partition topic. */
      const [meta] = await producer.send({ topic: 'thopter.destroy', messages: [{ key, value: 'partitioner test' }] });
      assert.equal(meta?.partition, partitionForKey(key, 6), key.toString('hex'));
    }
  } finally {
    await producer.disconnect();
  }
});
