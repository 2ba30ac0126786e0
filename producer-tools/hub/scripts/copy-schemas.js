#!/usr/bin/env node
/* copy-schemas.js - put the project's normative JSON Schemas into dist/schemas/.
 *
 * The package validates with the schema files themselves (ajv), never with
 * rules copied by hand, so it stays in step with schemas/ at every build:
 * a change there reaches the package the next time it is built or packed.
 */
"use strict";
const fs = require("fs");
const path = require("path");

const from = path.resolve(__dirname, "..", "..", "..", "schemas");
/* Default dist/schemas; the test build passes dist-test/src/schemas. */
const to = path.resolve(process.argv[2] || path.join(__dirname, "..", "dist", "schemas"));
const files = ["provision-request.schema.json", "destroy-request.schema.json", "status-event.schema.json"];

fs.mkdirSync(to, { recursive: true });
for (const f of files) {
  const src = path.join(from, f);
  JSON.parse(fs.readFileSync(src, "utf8")); /* refuse to ship a broken schema */
  fs.copyFileSync(src, path.join(to, f));
}
process.stdout.write(`copy-schemas: ${files.length} schemas from ${from} to ${to}\n`);
