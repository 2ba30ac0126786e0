#!/usr/bin/env node
/* check-c-build.js - before the integration tests: the programs of the C build
 * they run are there, or one line saying which is missing and how to build it.
 * (The same list as C_BINARIES in test/helpers.ts.) */
"use strict";
const fs = require("fs");
const path = require("path");

const source = process.env.THOPTER_SOURCE_DIR || path.resolve(__dirname, "..", "..", "..");
const build = process.env.THOPTER_BUILD_DIR || path.join(source, "build", "dev");
const binaries = ["thopter-devbroker", "thopter-consumer", "thopter-send", "tests/request_verdict"];

for (const b of binaries) {
  const file = path.join(build, b);
  if (!fs.existsSync(file)) {
    process.stderr.write(
      `thopter-hub-kafka: ${file} is missing (the integration tests run the C build): ` +
        `cd ${source} && bash deploy/setup.sh && cmake --preset dev && cmake --build --preset dev -j2 ` +
        "(or point THOPTER_BUILD_DIR at a build)\n",
    );
    process.exit(1);
  }
}
