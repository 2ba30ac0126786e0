/* The producer the package publishes with is idempotent on the broker, not only
 * in its settings: with librdkafka's `debug=eos` it logs the producer id the
 * cluster gave it (the mock, or a real Kafka with THOPTER_TEST_KAFKA=real),
 * and it publishes with acks=all. */

import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { KafkaJS } from '@confluentinc/kafka-javascript';
import { kafkaSettings } from '../src/config';
import { producerConfig } from '../src/kafka-client';
import { Devbroker, waitFor } from './helpers';

let broker: Devbroker;

before(async () => {
  broker = await Devbroker.start();
});

after(async () => {
  await broker?.stop();
});

test('the producer acquires a producer id from the cluster and publishes with acks=all', async (t) => {
  const lines: string[] = [];
  const keep = (m: string) => void lines.push(m);
  const config = producerConfig(kafkaSettings({ brokers: [broker.bootstrap], properties: { debug: 'eos' } }), undefined);
  const logger: KafkaJS.Logger = { info: keep, debug: keep, warn: keep, error: keep, namespace: () => logger, setLogLevel: () => undefined };
  config.kafkaJS = { ...config.kafkaJS, logger, logLevel: KafkaJS.logLevel.DEBUG };
  assert.equal((config as Record<string, unknown>).acks, -1);
  const producer = new KafkaJS.Kafka({}).producer(config);
  await producer.connect();
  try {
    const [meta] = await producer.send({ topic: 'thopter.destroy', messages: [{ key: '148e21a3c96989', value: '{}' }] });
    assert.equal(meta?.errorCode, 0);
    /* The client's log lines arrive on their own schedule, maybe after the send resolved. */
    const pid = await waitFor('the client to log its producer id', () => lines.find((l) => /Acquired PID\{Id:\d+,Epoch:\d+\}/.test(l)), 10000).catch(
      (e: Error) => assert.fail(`${e.message}; eos log:\n${lines.filter((l) => /PID|dempoten/.test(l)).join('\n')}`),
    );
    t.diagnostic(`${broker.kind} broker: ${pid.replace(/^\[[^\]]*\]: /, '')}`);
  } finally {
    await producer.disconnect();
  }
});
