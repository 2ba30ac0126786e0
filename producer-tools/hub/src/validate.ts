/* validate.ts - refuse a request the consumer would dead-letter, before it is sent.
 *
 * DESIGN
 * ------
 * The rules are the project's JSON Schemas (schemas/*.schema.json, the
 * normative form of contract section 2), copied into dist/schemas/ at build
 * time and compiled with ajv (draft 2020-12) when first needed: nothing here
 * restates a schema rule, so a schema change reaches the hub with the next
 * build of this package. What is validated is the exact text that will be
 * sent (JSON.stringify, then JSON.parse), so Dates, undefined fields and
 * toJSON methods are seen as the consumer will see them.
 *
 * The few rules a JSON Schema cannot express (schemas/README.md, "What a JSON
 * Schema cannot express") are checked too, because the consumer
 * (consumer/lib/request.c) enforces them: the 512 KiB payload cap, UTF-8,
 * nesting at most 64 deep, no duplicate key, no \u0000 in any string, no
 * unpaired surrogate, and limits in bytes of UTF-8 rather than characters.
 *
 * checkText() judges a payload as the consumer would read it off Kafka (bytes
 * or text: what other producers send); serialize() judges an object by the
 * text JSON.stringify makes of it, through the same checkText(). Every file
 * of schemas/examples/ gets the consumer's verdict from checkText()
 * (test/integration-parity.test.ts runs both on each).
 */

import * as fs from 'fs';
import * as path from 'path';
import Ajv2020 from 'ajv/dist/2020';
import type { ErrorObject, ValidateFunction } from 'ajv';

export type RequestKind = 'provision' | 'destroy';

/** Where a compiled package keeps its schemas (copied there by scripts/copy-schemas.js). */
export const DEFAULT_SCHEMA_DIR = path.join(__dirname, 'schemas');

/** REQUEST_PAYLOAD_MAX in consumer/lib/request.h. */
export const PAYLOAD_MAX_BYTES = 524288;

/** DEPTH_MAX in consumer/lib/request.c: objects and arrays nested at most this deep. */
export const NESTING_MAX = 64;

const SCHEMA_FILES: Record<RequestKind, string> = {
  provision: 'provision-request.schema.json',
  destroy: 'destroy-request.schema.json',
};

/** Byte limits the schemas can only state as character counts (schemas/README.md). */
const BYTE_LIMITS: Record<RequestKind, Array<{ path: string[]; max: number }>> = {
  provision: [
    { path: ['github', 'issueTitle'], max: 1024 },
    { path: ['github', 'issueBody'], max: 262144 },
  ],
  destroy: [{ path: ['reason'], max: 1024 }],
};

export interface FieldError {
  /** The field as the consumer names it: `github.comments[0].id`; `payload` for the whole. */
  field: string;
  message: string;
}

/** The request breaks contract section 2: nothing was sent. */
export class ValidationError extends Error {
  readonly kind: RequestKind;
  readonly field: string;
  readonly errors: FieldError[];

  constructor(kind: RequestKind, errors: FieldError[]) {
    const first = errors[0] ?? { field: 'payload', message: 'invalid' };
    super(`invalid ${kind} request: ${first.field}: ${first.message} (nothing sent)`);
    this.name = 'ValidationError';
    this.kind = kind;
    this.field = first.field;
    this.errors = errors;
  }
}

/* "/github/comments/0/id" -> "github.comments[0].id", the C validator's naming. */
function fieldOf(error: ErrorObject): string {
  const parts = error.instancePath
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (error.keyword === 'required') parts.push(String((error.params as { missingProperty: string }).missingProperty));
  let out = '';
  for (const p of parts) {
    if (/^[0-9]+$/.test(p)) out += `[${p}]`;
    else out += out ? `.${p}` : p;
  }
  return out || 'payload';
}

function walkStrings(value: unknown, where: string, visit: (s: string, where: string) => void): void {
  if (typeof value === 'string') {
    visit(value, where);
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => walkStrings(v, `${where}[${i}]`, visit));
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      visit(k, where || 'payload');
      walkStrings(v, where ? `${where}.${k}` : k, visit);
    }
  }
}

function hasLoneSurrogate(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
      return true;
    }
    if (c >= 0xdc00 && c <= 0xdfff) return true;
  }
  return false;
}

/* Checked before the schema, as the consumer does (its parse step). */
function stringRules(value: unknown): FieldError[] {
  const errors: FieldError[] = [];
  walkStrings(value, '', (s, where) => {
    /* The consumer names the payload as a whole for these, as here. */
    const at = where ? ` (in ${where})` : '';
    if (hasLoneSurrogate(s)) errors.push({ field: 'payload', message: `an unpaired surrogate in a string, not Unicode text${at}` });
    if (s.includes('\u0000')) errors.push({ field: 'payload', message: `\\u0000 in a string${at}` });
  });
  return errors;
}

/* Checked after the schema, with the fields, as the consumer does. */
function byteLimits(kind: RequestKind, value: unknown): FieldError[] {
  const errors: FieldError[] = [];
  for (const limit of BYTE_LIMITS[kind]) {
    let v: unknown = value;
    for (const p of limit.path) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[p] : undefined;
    if (typeof v === 'string') {
      const bytes = Buffer.byteLength(v, 'utf8');
      if (bytes > limit.max)
        errors.push({ field: limit.path.join('.'), message: `${bytes} bytes of UTF-8, more than the ${limit.max} allowed` });
    }
  }
  return errors;
}

const WS = new Set([' ', '\t', '\n', '\r']);

/**
 * Nesting depth and duplicate keys of @text, which JSON.parse accepted (so
 * the scan need not check the grammar). Names the first duplicate as the
 * consumer does (`github.labels` / `comments[0].id`); a nesting deeper than
 * NESTING_MAX wins over a duplicate, as the consumer's scan runs first.
 */
function scanStructure(text: string): FieldError | null {
  let i = 0;
  let duplicate: FieldError | null = null;
  const skipWs = (): void => {
    while (i < text.length && WS.has(text.charAt(i))) i++;
  };
  const skipString = (): string => {
    const start = i++;
    while (text.charAt(i) !== '"') i += text.charAt(i) === '\\' ? 2 : 1;
    i++;
    return text.slice(start, i);
  };
  const value = (depth: number, path: string): FieldError | null => {
    skipWs();
    const c = text.charAt(i);
    if (c === '"') {
      skipString();
      return null;
    }
    if (c !== '{' && c !== '[') {
      while (i < text.length && !',]} \t\n\r'.includes(text.charAt(i))) i++;
      return null;
    }
    if (depth >= NESTING_MAX) return { field: 'payload', message: `nested deeper than ${NESTING_MAX} levels` };
    const isObject = c === '{';
    const close = isObject ? '}' : ']';
    const keys = new Set<string>();
    i++;
    skipWs();
    if (text.charAt(i) === close) {
      i++;
      return null;
    }
    for (let index = 0; ; index++) {
      skipWs();
      let sub: string;
      if (isObject) {
        const key = JSON.parse(skipString()) as string;
        skipWs();
        i++; /* ':' */
        sub = path ? `${path}.${key}` : key;
        if (keys.has(key)) duplicate ??= { field: sub, message: 'duplicate key' };
        keys.add(key);
      } else {
        sub = `${path}[${index}]`;
      }
      const e = value(depth + 1, sub);
      if (e) return e;
      skipWs();
      if (text.charAt(i++) !== ',') return null;
    }
  };
  return value(0, '') ?? duplicate;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v}`;
}

/** Compiled validators for both request kinds, from one schema directory. */
export class RequestValidator {
  private readonly validators: Record<RequestKind, ValidateFunction>;
  readonly schemaDir: string;

  constructor(schemaDir: string = DEFAULT_SCHEMA_DIR) {
    this.schemaDir = schemaDir;
    /* The settings of tests/tools/validate-schemas.js: strict schema
     * checking, union types for "null counts as absent". */
    const ajv = new Ajv2020({ strict: true, strictRequired: false, allowUnionTypes: true, allErrors: true });
    const load = (kind: RequestKind): ValidateFunction => {
      const file = path.join(schemaDir, SCHEMA_FILES[kind]);
      let schema: unknown;
      try {
        schema = JSON.parse(fs.readFileSync(file, 'utf8'));
      } catch (e) {
        throw new Error(`thopter-hub-kafka: cannot read ${file}: ${(e as Error).message} (was the package built?)`);
      }
      return ajv.compile(schema as object);
    };
    this.validators = { provision: load('provision'), destroy: load('destroy') };
  }

  /**
   * Checks @request as it will be sent and returns that text.
   * @throws ValidationError naming the first broken field.
   */
  serialize(kind: RequestKind, request: unknown): string {
    let text: string | undefined;
    try {
      text = JSON.stringify(request);
    } catch (e) {
      throw new ValidationError(kind, [{ field: 'payload', message: `not serializable: ${(e as Error).message}` }]);
    }
    if (typeof text !== 'string') throw new ValidationError(kind, [{ field: 'payload', message: 'not a JSON value' }]);
    const errors = this.checkText(kind, text);
    if (errors.length) throw new ValidationError(kind, errors);
    return text;
  }

  /**
   * The consumer's verdict on a payload as it would read it off Kafka: [] when
   * valid, else the broken fields (the first is the one the consumer names).
   * Bytes must be UTF-8; a string is taken as the text of those bytes.
   */
  checkText(kind: RequestKind, payload: string | Uint8Array): FieldError[] {
    let text: string;
    let size: number;
    if (typeof payload === 'string') {
      text = payload;
      size = Buffer.byteLength(text, 'utf8');
    } else {
      size = payload.length;
      if (size > PAYLOAD_MAX_BYTES) return [{ field: 'payload', message: `${size} bytes, more than the ${PAYLOAD_MAX_BYTES} allowed` }];
      try {
        text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(payload);
      } catch {
        return [{ field: 'payload', message: 'not JSON: not valid UTF-8' }];
      }
    }
    if (size > PAYLOAD_MAX_BYTES) return [{ field: 'payload', message: `${size} bytes, more than the ${PAYLOAD_MAX_BYTES} allowed` }];
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      return [{ field: 'payload', message: `not JSON: ${(e as Error).message}` }];
    }
    const structure = scanStructure(text);
    if (structure?.field === 'payload') return [structure];
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      return [{ field: 'payload', message: `must be a JSON object, not ${typeName(value)}` }];
    const strings = stringRules(value);
    if (strings.length) return strings;
    if (structure) return [structure];
    const validate = this.validators[kind];
    if (!validate(value)) {
      const errors = (validate.errors ?? []).map((e) => ({ field: fieldOf(e), message: e.message ?? e.keyword }));
      /* The deepest field first: an anyOf over a field reports the field itself, not "payload". */
      errors.sort((a, b) => b.field.length - a.field.length);
      return errors;
    }
    return byteLimits(kind, value);
  }

  /** The same check, as a verdict: [] when valid. */
  check(kind: RequestKind, request: unknown): FieldError[] {
    try {
      this.serialize(kind, request);
      return [];
    } catch (e) {
      if (e instanceof ValidationError) return e.errors;
      throw e;
    }
  }
}
