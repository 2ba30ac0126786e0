/* Parity with the consumer: every request example of schemas/examples/ (and
 * mutations of the valid ones) gets the same verdict from the package's
 * validator as from the consumer's own request_parse_*() (request.c, through
 * build/dev/tests/request_verdict), and an example the consumer refuses is
 * refused as invalid_request, naming the same field. No sockets; it needs
 * the C build, hence "integration". */

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { RequestValidator, RequestKind, NESTING_MAX } from '../src/validate';
import { SOURCE_DIR, binary, tmo } from './helpers';

const EXAMPLES = path.join(SOURCE_DIR, 'schemas', 'examples');
const validator = new RequestValidator();

interface Verdict {
  valid: boolean;
  cls?: string;
  step?: string;
  field?: string;
  message?: string;
}

/* The consumer's verdict on each file, from request_verdict. */
function consumerVerdicts(kind: RequestKind, files: string[]): Map<string, Verdict> {
  const out = new Map<string, Verdict>();
  /* Bounded argv: a few hundred paths at a time. */
  for (let i = 0; i < files.length; i += 200) {
    const r = spawnSync(binary('tests/request_verdict'), [kind, ...files.slice(i, i + 200)], { encoding: 'utf8', timeout: tmo(60000) });
    assert.equal(r.status, 0, `request_verdict: ${r.stderr}`);
    for (const line of r.stdout.split('\n')) {
      if (!line) continue;
      const [file, verdict, cls, step, ...rest] = line.split('\t');
      const message = rest.join('\t');
      const colon = message.indexOf(':');
      out.set(file ?? '', verdict === 'valid' ? { valid: true } : { valid: false, cls, step, message, field: message.slice(0, colon) });
    }
  }
  assert.equal(out.size, files.length, 'a verdict for every file');
  return out;
}

function packageVerdict(kind: RequestKind, file: string): Verdict {
  const errors = validator.checkText(kind, fs.readFileSync(file));
  if (errors.length === 0) return { valid: true };
  return { valid: false, field: errors[0]?.field, message: errors[0]?.message };
}

function examples(): Array<{ name: string; file: string; kind: RequestKind }> {
  const expectations = JSON.parse(fs.readFileSync(path.join(EXAMPLES, 'expectations.json'), 'utf8')) as Record<string, { kind: string }>;
  const out: Array<{ name: string; file: string; kind: RequestKind }> = [];
  for (const dir of ['valid', 'invalid'])
    for (const f of fs.readdirSync(path.join(EXAMPLES, dir)).sort()) {
      if (!f.endsWith('.json')) continue;
      const name = `${dir}/${f}`;
      const kind = expectations[name]?.kind;
      assert.ok(kind, `${name}: not in expectations.json`);
      if (kind === 'event') continue; /* the consumer writes events, never parses them */
      out.push({ name, file: path.join(EXAMPLES, name), kind: kind as RequestKind });
    }
  return out;
}

function compare(kind: RequestKind, files: string[], label: (f: string) => string): { valid: number; invalid: number } {
  const consumer = consumerVerdicts(kind, files);
  let valid = 0;
  let invalid = 0;
  const disagree: string[] = [];
  for (const f of files) {
    const c = consumer.get(f);
    const p = packageVerdict(kind, f);
    assert.ok(c);
    if (c.valid) valid++;
    else invalid++;
    if (!c.valid) assert.equal(c.cls, 'invalid_request', `${label(f)}: the consumer's class`);
    if (c.valid !== p.valid || (!c.valid && c.field !== p.field))
      disagree.push(
        `${label(f)}: consumer ${c.valid ? 'valid' : `invalid (${c.message})`}, package ${p.valid ? 'valid' : `invalid (${p.field}: ${p.message})`}`,
      );
  }
  assert.deepEqual(disagree, [], `${disagree.length} of ${files.length} disagree`);
  return { valid, invalid };
}

test('every example of schemas/examples/: the package and the consumer give the same verdict, naming the same field', (t) => {
  const all = examples();
  assert.ok(all.length >= 100, `only ${all.length} request examples`);
  let valid = 0;
  let invalid = 0;
  for (const kind of ['provision', 'destroy'] as const) {
    const mine = all.filter((e) => e.kind === kind);
    const r = compare(kind, mine.map((e) => e.file), (f) => path.relative(EXAMPLES, f));
    valid += r.valid;
    invalid += r.invalid;
  }
  t.diagnostic(`${all.length} examples: ${valid} valid, ${invalid} invalid (invalid_request), all agreed`);
  assert.ok(valid > 0 && invalid > 0);
});

/* Mutations of the valid examples: a field dropped, set to null, to another
 * type, to a long or odd string; nesting and duplicate keys. */
function mutations(text: string): string[] {
  const root = JSON.parse(text) as Record<string, unknown>;
  const out: string[] = [];
  const odd: unknown[] = [null, 0, -1, 1.5, 1e300, true, '', ' ', 'x'.repeat(300), '\u00e9'.repeat(600), [], {}, ['a'], 'a\u0000b', '../x', 'thopter-1'];
  /* Every member, at any depth of objects: [parent path, key]. */
  const members: string[][] = [];
  const walk = (obj: Record<string, unknown>, at: string[]): void => {
    for (const [k, v] of Object.entries(obj)) {
      members.push([...at, k]);
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) walk(v as Record<string, unknown>, [...at, k]);
    }
  };
  walk(root, []);
  const edit = (where: string[], change: (parent: Record<string, unknown>, key: string) => void): string => {
    const copy = structuredClone(root);
    let parent = copy;
    for (const k of where.slice(0, -1)) parent = parent[k] as Record<string, unknown>;
    change(parent, where[where.length - 1] ?? '');
    return JSON.stringify(copy);
  };
  for (const m of members) {
    out.push(edit(m, (p, k) => delete p[k]));
    for (const x of odd) out.push(edit(m, (p, k) => (p[k] = x)));
  }
  /* Unknown field, a duplicate key, nesting just under, at and past the limit. */
  out.push(JSON.stringify({ ...root, extra: 1 }));
  const inner = text.trim().replace(/^\{/, '');
  const firstKey = Object.keys(root)[0] ?? 'requestId';
  out.push(`{"${firstKey}": ${JSON.stringify(root[firstKey])}, ${inner}`);
  for (const depth of [NESTING_MAX - 1, NESTING_MAX, NESTING_MAX + 1]) out.push(`{"x": ${'['.repeat(depth - 1)}${']'.repeat(depth - 1)}, ${inner}`);
  return out;
}

test('mutations of every valid example: the same verdict from both', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-parity-'));
  let total = 0;
  let invalid = 0;
  try {
    for (const kind of ['provision', 'destroy'] as const) {
      const files: string[] = [];
      for (const e of examples().filter((x) => x.kind === kind && x.name.startsWith('valid/')))
        for (const [i, m] of mutations(fs.readFileSync(e.file, 'utf8')).entries()) {
          const f = path.join(dir, `${path.basename(e.name, '.json')}-${i}.json`);
          fs.writeFileSync(f, m);
          files.push(f);
        }
      const r = compare(kind, files, (f) => `${path.basename(f)} (${fs.readFileSync(f, 'utf8').slice(0, 300)})`);
      total += files.length;
      invalid += r.invalid;
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  t.diagnostic(`${total} mutations, ${invalid} invalid for both, all agreed`);
  assert.ok(total > 500 && invalid > 0 && invalid < total);
});
