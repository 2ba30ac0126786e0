#!/usr/bin/env node
/* validate-schemas.js - check every schemas/examples file with a real JSON
 * Schema validator (ajv, draft 2020-12).
 *
 * For each file of schemas/examples/{valid,invalid}, named with its kind in
 * schemas/examples/expectations.json, it:
 *   1. decodes the bytes as strict UTF-8 (no replacement characters, a BOM
 *      is kept and so is not JSON) and runs JSON.parse: the reference for
 *      "is this JSON at all" (contract step "parse");
 *   2. validates the value with ajv against the kind's schema.
 *
 * Default output: one line per file, "ok" when ajv's verdict is the one
 * expectations.json gives (for rules marked "schema": false, ajv is expected
 * to accept: the schema cannot express them), "FAIL" otherwise; exit 1 on any
 * FAIL. With --json: the raw verdicts as one JSON array, for
 * tests/unit/test_schema_agreement.py, which does the comparing itself.
 *
 * Exit status 2: a schema does not compile, or an example has no
 * expectation (or an expectation has no file).
 */
"use strict";

const fs = require("fs");
const path = require("path");
const Ajv2020 = require("ajv/dist/2020");

const schemaDir = path.resolve(__dirname, "..", "..", "schemas");
const exampleDir = path.join(schemaDir, "examples");
const schemaFiles = {
  provision: "provision-request.schema.json",
  destroy: "destroy-request.schema.json",
  event: "status-event.schema.json",
};

function die(msg) {
  process.stderr.write(`validate-schemas: ${msg}\n`);
  process.exit(2);
}

/* "/github/comments/0/id" -> "github.comments[0].id"; the root is "payload",
 * the name the C validator uses for the message as a whole. */
function fieldOf(error) {
  const parts = error.instancePath
    .split("/")
    .slice(1)
    .map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
  if (error.keyword === "required") parts.push(error.params.missingProperty);
  if (error.keyword === "additionalProperties")
    parts.push(error.params.additionalProperty);
  let out = "";
  for (const p of parts) {
    if (/^[0-9]+$/.test(p)) out += `[${p}]`;
    else out += out ? `.${p}` : p;
  }
  return out || "payload";
}

function main() {
  const asJson = process.argv.includes("--json");
  /* strict: unknown keywords or bad schema constructs are errors, not
   * warnings. Union types ("type": ["string", "null"]) are how the schemas
   * say "null counts as absent", so they are allowed. strictRequired is off:
   * the if/then rules of status-event require properties declared at the
   * top. */
  const ajv = new Ajv2020({
    strict: true,
    strictRequired: false,
    allowUnionTypes: true,
    allErrors: true,
  });
  const validators = {};
  for (const [kind, file] of Object.entries(schemaFiles)) {
    try {
      const schema = JSON.parse(fs.readFileSync(path.join(schemaDir, file), "utf8"));
      validators[kind] = ajv.compile(schema);
    } catch (e) {
      die(`${file}: ${e.message}`);
    }
  }

  const expectations = JSON.parse(
    fs.readFileSync(path.join(exampleDir, "expectations.json"), "utf8"),
  );
  const files = [];
  for (const dir of ["valid", "invalid"])
    for (const name of fs.readdirSync(path.join(exampleDir, dir)).sort())
      if (name.endsWith(".json")) files.push(`${dir}/${name}`);
  for (const f of files) if (!expectations[f]) die(`${f}: not in expectations.json`);
  for (const f of Object.keys(expectations))
    if (!files.includes(f)) die(`expectations.json: ${f}: no such example`);

  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  const results = [];
  for (const file of files) {
    const exp = expectations[file];
    const validate = validators[exp.kind];
    if (!validate) die(`${file}: unknown kind "${exp.kind}"`);
    const r = { file, kind: exp.kind, parsed: false, valid: false, errors: [] };
    let value;
    try {
      value = JSON.parse(decoder.decode(fs.readFileSync(path.join(exampleDir, file))));
      r.parsed = true;
    } catch (e) {
      r.errors.push({ field: "payload", message: `not JSON: ${e.message}` });
    }
    if (r.parsed) {
      r.valid = validate(value);
      for (const e of validate.errors || [])
        r.errors.push({ field: fieldOf(e), message: `${e.keyword}: ${e.message}` });
    }
    results.push(r);
  }

  if (asJson) {
    process.stdout.write(JSON.stringify(results, null, 1) + "\n");
    return 0;
  }
  let failed = 0;
  for (const r of results) {
    const exp = expectations[r.file];
    /* A rule the schema cannot express: ajv must accept the file. */
    const want = exp.valid || exp.schema === false;
    const ok = r.valid === want;
    if (!ok) failed++;
    const why = r.valid ? "accepted" : `rejected: ${r.errors.map((e) => `${e.field}: ${e.message}`).join("; ")}`;
    console.log(`${ok ? "ok  " : "FAIL"} ${r.file} [${r.kind}] ${why}`);
  }
  console.log(`${results.length - failed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

process.exitCode = main();
