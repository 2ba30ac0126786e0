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
 * Schema cannot express") are checked after the schema, because the consumer
 * (consumer/lib/request.c) enforces them too: limits in bytes of UTF-8 rather
 * than characters, no \u0000 in any string, no unpaired surrogate, and the
 * 512 KiB payload cap. Duplicate keys cannot occur in JSON.stringify output.
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

function beyondSchema(kind: RequestKind, value: unknown, text: string): FieldError[] {
  const errors: FieldError[] = [];
  const size = Buffer.byteLength(text, 'utf8');
  if (size > PAYLOAD_MAX_BYTES)
    errors.push({ field: 'payload', message: `${size} bytes, more than the ${PAYLOAD_MAX_BYTES} allowed` });
  walkStrings(value, '', (s, where) => {
    /* The consumer names the payload as a whole for these, as here. */
    const at = where ? ` (in ${where})` : '';
    if (s.includes('\u0000')) errors.push({ field: 'payload', message: `\\u0000 in a string${at}` });
    if (hasLoneSurrogate(s)) errors.push({ field: 'payload', message: `an unpaired surrogate in a string, not Unicode text${at}` });
  });
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
    const text = JSON.stringify(request);
    if (typeof text !== 'string') throw new ValidationError(kind, [{ field: 'payload', message: 'not a JSON value' }]);
    const value: unknown = JSON.parse(text);
    const validate = this.validators[kind];
    if (!validate(value)) {
      const errors = (validate.errors ?? []).map((e) => ({ field: fieldOf(e), message: e.message ?? e.keyword }));
      /* The deepest field first: an anyOf over a field reports the field itself, not "payload". */
      errors.sort((a, b) => b.field.length - a.field.length);
      throw new ValidationError(kind, errors);
    }
    const extra = beyondSchema(kind, value, text);
    if (extra.length) throw new ValidationError(kind, extra);
    return text;
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
