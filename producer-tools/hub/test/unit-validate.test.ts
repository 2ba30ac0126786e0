/* Validation before sending: the project's schema examples, the hub's own objects,
 * and the byte rules a JSON Schema cannot express. No broker. */

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { RequestValidator, ValidationError, DEFAULT_SCHEMA_DIR, NESTING_MAX } from '../src/validate';
import { SOURCE_DIR, github } from './helpers';

const EXAMPLES = path.join(SOURCE_DIR, 'schemas', 'examples');
const validator = new RequestValidator();

interface Expectation {
  kind: string;
  valid: boolean;
  field?: string;
  schema?: boolean;
  why?: string;
}

test('the package validates with the schema files of the source tree it was built from', () => {
  const shipped = path.resolve(__dirname, '..', '..', 'dist', 'schemas');
  for (const dir of [DEFAULT_SCHEMA_DIR, shipped])
  for (const f of ['provision-request.schema.json', 'destroy-request.schema.json', 'status-event.schema.json'])
    assert.deepEqual(
      JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')),
      JSON.parse(fs.readFileSync(path.join(SOURCE_DIR, 'schemas', f), 'utf8')),
      `${f}: dist/schemas is stale: rebuild the package`,
    );
});

test('every request example of schemas/examples gets the verdict expectations.json gives', () => {
  const expectations = JSON.parse(fs.readFileSync(path.join(EXAMPLES, 'expectations.json'), 'utf8')) as Record<string, Expectation>;
  let checked = 0;
  for (const [file, exp] of Object.entries(expectations)) {
    if (exp.kind !== 'provision' && exp.kind !== 'destroy') continue;
    /* The file's bytes, as the consumer reads them off Kafka. */
    const errors = validator.checkText(exp.kind, fs.readFileSync(path.join(EXAMPLES, file)));
    if (exp.valid) assert.deepEqual(errors, [], `${file} must be accepted`);
    else assert.equal(errors[0]?.field, exp.field, `${file} must be refused naming ${exp.field}; got ${JSON.stringify(errors)}`);
    checked++;
  }
  assert.ok(checked >= 100, `only ${checked} examples checked`);
});

test("the hub's own objects (Dates, status, undefined fields) are valid as JSON.stringify sends them", () => {
  const provision = {
    requestId: 'provision-1757491200000-9f3c1e',
    source: 'github',
    createdAt: new Date(),
    status: 'pending',
    repository: 'telepath-computer/thopter-swarm',
    workBranch: undefined,
    gc: 'default',
    prompt: undefined,
    github: { ...github(7), mentionCommentId: 3289123123, comments: [{ id: 1, author: 'a', body: 'b', createdAt: 'c', updatedAt: 'd', url: 'e' }] },
  };
  const text = validator.serialize('provision', provision);
  assert.equal(JSON.parse(text).createdAt, provision.createdAt.toISOString());
  assert.ok(!('workBranch' in JSON.parse(text)));
  validator.serialize('destroy', {
    requestId: 'destroy-1757491200000-abcdef',
    source: 'dashboard',
    createdAt: new Date(),
    status: 'pending',
    thopterId: '148e21a3c96989',
    reason: 'Manual kill request from dashboard',
  });
});

test('an invalid request throws ValidationError naming the field', () => {
  assert.throws(
    () => validator.serialize('destroy', { thopterId: 'ABC' }),
    (e: unknown) => e instanceof ValidationError && e.field === 'thopterId' && /nothing sent/.test(e.message),
  );
  assert.throws(
    () => validator.serialize('provision', { requestId: 'r-1', repository: 'no-slash', github: github() }),
    (e: unknown) => e instanceof ValidationError && e.field === 'repository',
  );
  assert.throws(
    () => validator.serialize('provision', { requestId: 'r-1', repository: 'a/b', github: { ...github(), issueNumber: '12x' } }),
    (e: unknown) => e instanceof ValidationError && e.field === 'github.issueNumber',
  );
});

test('rules beyond the schema: bytes of UTF-8, \\u0000, lone surrogates, the 512 KiB cap', () => {
  const base = { requestId: 'r-1', repository: 'a/b', github: github() };
  /* 513 two-byte characters: 513 characters pass maxLength 1024, 1026 bytes do not. */
  assert.deepEqual(validator.check('provision', { ...base, github: { ...github(), issueTitle: 'é'.repeat(512) } }), []);
  assert.equal(validator.check('provision', { ...base, github: { ...github(), issueTitle: 'é'.repeat(513) } })[0]?.field, 'github.issueTitle');
  assert.equal(validator.check('destroy', { thopterId: '148e21a3c96989', reason: 'é'.repeat(513) })[0]?.field, 'reason');
  assert.equal(validator.check('provision', { ...base, github: { ...github(), issueBody: 'a\u0000b' } })[0]?.field, 'payload');
  assert.equal(validator.check('provision', { ...base, github: { ...github(), issueBody: 'a\ud800b' } })[0]?.field, 'payload');
  /* A paired surrogate is ordinary text. */
  assert.deepEqual(validator.check('provision', { ...base, github: { ...github(), issueBody: 'rocket \ud83d\ude80' } }), []);
  const comments = Array.from({ length: 40 }, (_, i) => ({ id: i + 1, author: 'a', body: 'x'.repeat(15000), createdAt: '', updatedAt: '', url: '' }));
  const big = validator.check('provision', { ...base, github: { ...github(), issueBody: 'x'.repeat(262144), comments } });
  assert.equal(big[0]?.field, 'payload');
  assert.match(big[0]?.message ?? '', /524288/);
});

test('a schema change reaches the validator (schemas are read, not copied by hand)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-schemas-'));
  for (const f of ['provision-request.schema.json', 'destroy-request.schema.json'])
    fs.copyFileSync(path.join(DEFAULT_SCHEMA_DIR, f), path.join(dir, f));
  const destroy = JSON.parse(fs.readFileSync(path.join(dir, 'destroy-request.schema.json'), 'utf8'));
  destroy.properties.reason.maxLength = 5;
  fs.writeFileSync(path.join(dir, 'destroy-request.schema.json'), JSON.stringify(destroy));
  const changed = new RequestValidator(dir);
  assert.equal(changed.check('destroy', { thopterId: '148e21a3c96989', reason: 'too long' })[0]?.field, 'reason');
  assert.deepEqual(validator.check('destroy', { thopterId: '148e21a3c96989', reason: 'too long' }), []);
  fs.rmSync(dir, { recursive: true });
});

test('checkText: the consumer reading of a payload (nesting, duplicate keys, UTF-8, BOM, top-level type)', () => {
  const ok = '{"thopterId":"148e21a3c96989"}';
  assert.deepEqual(validator.checkText('destroy', ok), []);
  assert.deepEqual(validator.checkText('destroy', Buffer.from(ok)), []);
  const nest = (n: number) => `{"thopterId":"148e21a3c96989","reason":${'['.repeat(n - 1)}${']'.repeat(n - 1)}}`;
  /* 64 levels (the object and 63 arrays) are read, and refused for the field; 65 are not read at all. */
  assert.equal(validator.checkText('destroy', nest(NESTING_MAX))[0]?.field, 'reason');
  assert.deepEqual(validator.checkText('destroy', nest(NESTING_MAX + 1)), [{ field: 'payload', message: 'nested deeper than 64 levels' }]);
  const deep: Record<string, unknown> = { thopterId: '148e21a3c96989' };
  let at: unknown[] = [];
  deep.reason = at;
  for (let i = 0; i < 100; i++) at = (at[0] = []) as unknown[];
  assert.throws(() => validator.serialize('destroy', deep), (e: unknown) => e instanceof ValidationError && e.field === 'payload' && /nested deeper/.test(e.message));
  assert.deepEqual(validator.checkText('destroy', '{"thopterId":"148e21a3c96989","thopterId":"148e21a3c96989"}'), [{ field: 'thopterId', message: 'duplicate key' }]);
  assert.equal(validator.checkText('destroy', '{"thopterId":"148e21a3c96989","reason":"a","x":{"a":1,"\\u0061":2}}')[0]?.field, 'x.a');
  assert.match(validator.checkText('destroy', Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]))[0]?.message ?? '', /not valid UTF-8/);
  assert.match(validator.checkText('destroy', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(ok)]))[0]?.message ?? '', /^not JSON/);
  assert.deepEqual(validator.checkText('destroy', '[1]'), [{ field: 'payload', message: 'must be a JSON object, not an array' }]);
  const cyclic: Record<string, unknown> = { thopterId: '148e21a3c96989' };
  cyclic.self = cyclic;
  assert.throws(() => validator.serialize('destroy', cyclic), (e: unknown) => e instanceof ValidationError && e.field === 'payload' && /not serializable/.test(e.message));
});
