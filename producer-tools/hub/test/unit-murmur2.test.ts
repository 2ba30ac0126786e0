/* The partitioner, without a broker: Kafka's own test vectors.
 * (integration-partitioner.test.ts compares it with librdkafka's murmur2_random
 * over a socket, for every tail length, through thopter-send and this package.) */

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { murmur2, partitionForKey } from '../src/murmur2';

/* org.apache.kafka.common.utils.UtilsTest#testMurmur2 */
const JAVA_VECTORS: Array<[string, number]> = [
  ['21', -973932308],
  ['foobar', -790332482],
  ['a-little-bit-long-string', -985981536],
  ['a-little-bit-longer-string', -1486304829],
  ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
  ['abc', 479470107],
];

test('murmur2 gives the Java client values', () => {
  for (const [key, want] of JAVA_VECTORS) assert.equal(murmur2(Buffer.from(key)), want, key);
});

test('partitionForKey: positive murmur2 modulo the partition count', () => {
  assert.equal(partitionForKey('21', 6), (-973932308 & 0x7fffffff) % 6);
  assert.equal(partitionForKey(Buffer.from('foobar'), 7), (-790332482 & 0x7fffffff) % 7);
  assert.equal(partitionForKey('abc', 1), 0);
  /* A string key is hashed as its UTF-8 bytes. */
  assert.equal(partitionForKey('é', 6), partitionForKey(Buffer.from([0xc3, 0xa9]), 6));
});

test('partitionForKey: a null key lands on a random partition in range', () => {
  const seen = new Set<number>();
  for (let i = 0; i < 600; i++) {
    const p = partitionForKey(null, 6);
    assert.ok(p >= 0 && p < 6);
    seen.add(p);
  }
  assert.equal(seen.size, 6, 'random over every partition');
});

test('partitionForKey refuses a bad partition count', () => {
  assert.throws(() => partitionForKey('k', 0), RangeError);
  assert.throws(() => partitionForKey('k', 1.5), RangeError);
});
