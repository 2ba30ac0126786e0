/* murmur2.ts - the Java client's key partitioner, as librdkafka's
 * `partitioner=murmur2_random` computes it.
 *
 * partition = (murmur2(key bytes) & 0x7fffffff) % partitionCount, with
 * murmur2 seeded 0x9747b28c (Kafka's Utils.murmur2). A null key gets a random
 * partition (the "_random" part). thopter-send, thopter-dlq replay,
 * bulk-destroy and kcat -X partitioner=murmur2_random pick the same partition
 * for the same key; test/integration-partitioner.test.ts proves it against
 * thopter-send on a real socket.
 *
 * The package hands this function to its Kafka client as the partitioner, so
 * the choice does not depend on the client's own default.
 */

const SEED = 0x9747b28c;
const M = 0x5bd1e995;

/** Kafka's murmur2 of @data, as a signed 32-bit integer (what Java returns). */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  let h = (SEED ^ length) | 0;
  const whole = length & ~3;
  for (let i = 0; i < whole; i += 4) {
    let k = (data[i] ?? 0) | ((data[i + 1] ?? 0) << 8) | ((data[i + 2] ?? 0) << 16) | ((data[i + 3] ?? 0) << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M);
    h ^= k;
  }
  /* The tail, falling through as in the Java switch. */
  const rest = length & 3;
  if (rest === 3) h ^= (data[whole + 2] ?? 0) << 16;
  if (rest >= 2) h ^= (data[whole + 1] ?? 0) << 8;
  if (rest >= 1) {
    h ^= data[whole] ?? 0;
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/**
 * The partition librdkafka's murmur2_random gives @key among @partitionCount
 * partitions; a null or undefined key gets a random one.
 */
export function partitionForKey(key: string | Uint8Array | null | undefined, partitionCount: number): number {
  if (!Number.isInteger(partitionCount) || partitionCount < 1)
    throw new RangeError(`partition count must be a positive integer (got ${partitionCount})`);
  if (key === null || key === undefined) return Math.floor(Math.random() * partitionCount);
  const bytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  return (murmur2(bytes) & 0x7fffffff) % partitionCount;
}
