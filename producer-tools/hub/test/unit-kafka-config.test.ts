/* The client configuration without a broker: the guarantees the producer is
 * made with, and TLS / SASL from the consumer's THOPTER_KAFKA_CONFIG_FILE
 * (docs/OPERATIONS.md section 4), secrets from that file only. */

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { isSecretProperty, kafkaSettings, readPropertiesFile } from '../src/config';
import { consumerConfig, producerConfig } from '../src/kafka-client';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-config-'));
function file(name: string, text: string | Buffer): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, text, { mode: 0o600 });
  return p;
}
const ENV = { KAFKA_BROKERS: '127.0.0.1:9092' };
const consumerOptions = { fromBeginning: false, maxWaitTimeMs: 500, onAssigned: () => undefined };

test('the producer: idempotent, acks=all, murmur2_random, the send deadline', () => {
  const c = producerConfig(kafkaSettings({ sendTimeoutMs: 7000 }, ENV), undefined) as Record<string, unknown>;
  assert.equal(c['enable.idempotence'], true);
  assert.equal(c.acks, -1);
  assert.equal(c.partitioner, 'murmur2_random');
  assert.equal(c['message.timeout.ms'], 7000);
  assert.equal(c['linger.ms'], 0);
  const kjs = c.kafkaJS as Record<string, unknown>;
  assert.deepEqual(kjs.brokers, ['127.0.0.1:9092']);
  assert.equal(kjs.idempotent, true);
});

test('THOPTER_KAFKA_CONFIG_FILE: SASL_SSL with SCRAM, read as the consumer reads it', () => {
  const f = file(
    'scram.properties',
    '# the consumer\'s file\n\nsecurity.protocol = SASL_SSL\r\n  sasl.mechanisms=SCRAM-SHA-512\nsasl.username=thopter\n' +
      'sasl.password=p=ss word\t\nssl.ca.location=/etc/ssl/certs/ca-certificates.crt\n',
  );
  const settings = kafkaSettings({}, { ...ENV, THOPTER_KAFKA_CONFIG_FILE: f });
  assert.equal(settings.configFile, f);
  for (const c of [producerConfig(settings, undefined), consumerConfig(settings, undefined, consumerOptions)]) {
    const r = c as Record<string, unknown>;
    assert.equal(r['security.protocol'], 'SASL_SSL');
    assert.equal(r['sasl.mechanisms'], 'SCRAM-SHA-512');
    assert.equal(r['sasl.username'], 'thopter');
    assert.equal(r['sasl.password'], 'p=ss word', 'the value after the first =, blanks around it dropped');
    assert.equal(r['ssl.ca.location'], '/etc/ssl/certs/ca-certificates.crt');
  }
});

test('the file wins over the package defaults, as the consumer -X does, but not over the partitioner', () => {
  const f = file('idem.properties', 'enable.idempotence=false\nlinger.ms=5\n');
  const c = producerConfig(kafkaSettings({ configFile: f }, ENV), undefined) as Record<string, unknown>;
  assert.equal(c['enable.idempotence'], 'false');
  assert.equal(c['linger.ms'], '5');
  const bad = file('partitioner.properties', 'partitioner=consistent_random\n');
  assert.throws(() => producerConfig(kafkaSettings({ configFile: bad }, ENV), undefined), /partitioner=consistent_random: this package publishes with murmur2_random only/);
  const same = file('partitioner-ok.properties', 'partitioner=murmur2_random\n');
  assert.equal((producerConfig(kafkaSettings({ configFile: same }, ENV), undefined) as Record<string, unknown>).partitioner, 'murmur2_random');
});

test('secrets come from the file only: a secret property in code is refused, naming the file setting', () => {
  for (const key of ['sasl.password', 'ssl.key.password', 'sasl.oauthbearer.client.secret', 'ssl.key.pem'])
    assert.throws(
      () => kafkaSettings({ properties: { [key]: 'x' } }, ENV),
      (e: unknown) => e instanceof Error && e.message.startsWith(`kafka property ${key}: a secret`) && e.message.includes('THOPTER_KAFKA_CONFIG_FILE') && !e.message.includes("'x'"),
      key,
    );
  const c = producerConfig(kafkaSettings({ properties: { 'security.protocol': 'SSL', 'ssl.ca.location': '/ca.pem' } }, ENV), undefined) as Record<string, unknown>;
  assert.equal(c['security.protocol'], 'SSL');
  assert.equal(isSecretProperty('sasl.username'), false);
  assert.equal(isSecretProperty('ssl.certificate.location'), false);
});

test('a broken properties file: one line naming the setting, the file and the line, never a value', () => {
  const f = file('broken.properties', 'security.protocol=SASL_PLAINTEXT\n# fine\nsasl.password hunter2\n');
  assert.throws(() => readPropertiesFile(f), { message: `THOPTER_KAFKA_CONFIG_FILE: ${f}: a line is not key=value (line 3)` });
  assert.throws(() => producerConfig(kafkaSettings({ configFile: f }, ENV), undefined), (e: unknown) => e instanceof Error && !e.message.includes('hunter2'));
  const missing = path.join(dir, 'nope.properties');
  assert.throws(() => readPropertiesFile(missing), (e: unknown) => e instanceof Error && e.message.startsWith(`THOPTER_KAFKA_CONFIG_FILE: ${missing}: `));
  assert.throws(() => readPropertiesFile(file('nul.properties', Buffer.from('a=b\0c\n'))), /holds a NUL byte/);
  assert.throws(() => readPropertiesFile(dir), /not a regular file/);
});
