"""test_schema_agreement - the JSON Schemas of schemas/ say of every example
what schemas/examples/expectations.json says, checked by a real validator
(ajv, draft 2020-12, through tests/tools/validate-schemas.js).

test_request_examples.c holds the C validator to the same expectations file,
so together the two show that the C validator and the schemas agree on every
example. The rules a JSON Schema cannot express (duplicate keys, \\u0000,
unpaired surrogate escapes, byte lengths) are marked "schema": false there;
for those, this test requires ajv to *accept* the file, so the mark cannot
outlive the gap it documents.

Needs node and tests/tools/node_modules (deploy/setup.sh installs both).
"""

import json
import os
import shutil
import subprocess
import unittest

SOURCE_DIR = os.environ.get(
    "THOPTER_SOURCE_DIR",
    os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
TOOLS = os.path.join(SOURCE_DIR, "tests", "tools")
EXAMPLES = os.path.join(SOURCE_DIR, "schemas", "examples")


def run_validator():
    node = shutil.which("node")
    if not node:
        raise AssertionError("node is not installed: run deploy/setup.sh")
    if not os.path.isdir(os.path.join(TOOLS, "node_modules", "ajv")):
        raise AssertionError(
            "ajv is not installed in tests/tools: run deploy/setup.sh")
    proc = subprocess.run(
        [node, os.path.join(TOOLS, "validate-schemas.js"), "--json"],
        capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise AssertionError("validate-schemas.js exited %d: %s" %
                             (proc.returncode, proc.stderr.strip()))
    return json.loads(proc.stdout)


class SchemaAgreement(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        with open(os.path.join(EXAMPLES, "expectations.json"),
                  encoding="utf-8") as f:
            cls.expectations = json.load(f)
        cls.results = {r["file"]: r for r in run_validator()}

    def test_every_example_was_validated(self):
        files = sorted(
            "%s/%s" % (d, name) for d in ("valid", "invalid")
            for name in os.listdir(os.path.join(EXAMPLES, d))
            if name.endswith(".json"))
        self.assertEqual(files, sorted(self.expectations))
        self.assertEqual(files, sorted(self.results))
        self.assertGreaterEqual(len(files), 100)

    def test_valid_examples_are_valid(self):
        for name, exp in sorted(self.expectations.items()):
            if not exp["valid"]:
                continue
            with self.subTest(example=name):
                r = self.results[name]
                self.assertTrue(r["parsed"] and r["valid"],
                                "ajv rejects it: %s" % r["errors"])

    def test_invalid_examples_are_invalid_for_the_named_field(self):
        for name, exp in sorted(self.expectations.items()):
            if exp["valid"] or exp.get("schema", True) is False:
                continue
            with self.subTest(example=name):
                r = self.results[name]
                self.assertFalse(r["valid"], "ajv accepts it")
                if exp.get("step") == "parse" and not r["parsed"]:
                    continue  # not JSON at all: nothing for a schema to name
                fields = {e["field"] for e in r["errors"]}
                self.assertIn(exp["field"], fields,
                              "ajv names other fields: %s" % r["errors"])

    def test_parse_failures_are_not_json_to_javascript_either(self):
        # step "parse" is "not JSON, or not an object": the first kind must
        # fail JSON.parse (strict UTF-8), the second must parse.
        for name, exp in sorted(self.expectations.items()):
            if exp.get("step") != "parse" or exp.get("schema", True) is False:
                continue
            with self.subTest(example=name):
                r = self.results[name]
                if r["parsed"]:
                    self.assertEqual(
                        [e["field"] for e in r["errors"]], ["payload"],
                        "parses, so it must be 'not an object': %s" %
                        r["errors"])

    def test_rules_beyond_the_schema_are_really_beyond_it(self):
        beyond = {n: e for n, e in self.expectations.items()
                  if e.get("schema", True) is False}
        self.assertTrue(beyond)
        for name, exp in sorted(beyond.items()):
            with self.subTest(example=name):
                self.assertFalse(exp["valid"])
                self.assertTrue(exp.get("why"), "say why the schema can't")
                r = self.results[name]
                self.assertTrue(
                    r["valid"],
                    "ajv rejects it, so the schema can express the rule: "
                    "drop \"schema\": false (%s)" % r["errors"])


if __name__ == "__main__":
    unittest.main()
