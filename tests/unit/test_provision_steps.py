"""The table of provision steps (consumer/lib/provision_steps.c) and the
documents that name the steps agree: the events schema, the dead-letter
header reference, docs/CONTRACT.md and docs/OPERATIONS.md. The table comes
from the code, through tests/helpers/provision_steps_json.c; a failure names
the step and the document. Label unit: it runs that helper and reads files."""
import json
import os
import re
import subprocess
import unittest

SOURCE_DIR = os.path.abspath(os.environ.get("THOPTER_SOURCE_DIR")
                             or os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD_DIR = os.environ.get("THOPTER_BUILD_DIR") or os.path.join(SOURCE_DIR, "build", "dev")
HELPER = os.path.join(BUILD_DIR, "tests", "provision_steps_json")

# Names the contract lists that no code emits today: it keeps them as values a
# reader may meet. `ssh` (a connect failure is reported at `wait`) and `stop`
# (the destroy's stop before its delete is best effort: a failure is logged,
# never the request's).
RESERVED = {"ssh", "stop"}

SCHEMA = "schemas/status-event.schema.json"
DLQ_HEADERS = "schemas/dead-letter-headers.md"
CONTRACT = "docs/CONTRACT.md"
OPERATIONS = "docs/OPERATIONS.md"


def read(path):
    with open(os.path.join(SOURCE_DIR, *path.split("/")), encoding="utf-8") as f:
        return f.read()


def table():
    out = subprocess.run([HELPER], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise AssertionError("%s: exit %d: %s" % (HELPER, out.returncode, out.stderr))
    return json.loads(out.stdout)


def destroy_steps():
    """The step names destroy.c gives fly_retry_call(), err_classify() and
    job_step(): the other flow's, which the same documents list."""
    text = read("consumer/lib/destroy.c")
    return set(re.findall(r'\b(?:fly_retry_call\([^,;]+,[^,;]+,|err_classify\([^,;]+,[^,;]+,|job_step\([^,;]+,)'
                          r'\s*"([a-z][a-z0-9_]*)"', text))


def settings():
    text = read("consumer/lib/config_table.c")
    body = text[text.index("const struct setting config_table[]"):]
    return set(re.findall(r'\{"([A-Z][A-Z0-9_]*)",', body[:body.index("};")]))


def header_row_steps(path, header):
    """The `names` of the value cell of the table row of @header."""
    rows = [line for line in read(path).splitlines() if line.startswith("| `%s` |" % header)]
    if len(rows) != 1:
        raise AssertionError("%s: %d rows for %s, expected 1" % (path, len(rows), header))
    value = rows[0].split("|")[2]
    return set(re.findall(r"`([a-z][a-z0-9_]*)`", value))


def operations_steps():
    """The `names` of the step(s) column of the dead-letter class table."""
    lines = read(OPERATIONS).splitlines()
    start = [i for i, line in enumerate(lines) if re.match(r"^\| class \| step\(s\) \|", line)]
    if len(start) != 1:
        raise AssertionError("%s: no single '| class | step(s) |' table" % OPERATIONS)
    names = set()
    for line in lines[start[0] + 2:]:
        if not line.startswith("|"):
            break
        names |= set(re.findall(r"`([a-z][a-z0-9_]*)`", line.split("|")[2]))
    return names


class ProvisionSteps(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(HELPER, os.X_OK):
            if os.environ.get("THOPTER_BUILD_DIR"):
                raise AssertionError("%s is not built" % HELPER)
            raise unittest.SkipTest("no build in %s" % BUILD_DIR)
        cls.steps = table()
        cls.names = [s["name"] for s in cls.steps]
        cls.known = set(cls.names) | destroy_steps() | RESERVED

    def test_the_table_is_well_formed(self):
        self.assertGreaterEqual(len(self.names), 10)
        self.assertEqual(len(self.names), len(set(self.names)), "a step name twice in provision_steps.c")
        known = settings()
        problems = []
        for s in self.steps:
            # err.step is char[32]: a longer name would be cut on the wire.
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,30}", s["name"]):
                problems.append("step %r: not a name of at most 31 of [a-z0-9_]" % s["name"])
            if not s["what"] or "\n" in s["what"]:
                problems.append("step %s: its description is not one line" % s["name"])
            if s["timeout"] is not None and s["timeout"] not in known:
                problems.append("step %s: timeout %s is not a setting of consumer/lib/config.c"
                                % (s["name"], s["timeout"]))
        self.assertEqual(problems, [])

    def test_the_events_schema_accepts_every_step(self):
        step = json.loads(read(SCHEMA))["properties"]["step"]
        problems = ["step %s: refused by %s (pattern %s)" % (n, SCHEMA, step["pattern"])
                    for n in self.names if not re.search(step["pattern"], n)]
        if "enum" in step:
            problems += ["step %s: missing from the step enum of %s" % (n, SCHEMA)
                         for n in self.names if n not in step["enum"]]
            problems += ["step %s: in the step enum of %s but not a step of the code" % (n, SCHEMA)
                         for n in step["enum"] if n not in self.known]
        # The examples of its description are real steps.
        m = re.search(r"e\.g\. ([a-z_, ]+)", step.get("description", ""))
        for n in (m.group(1).replace(",", " ").split() if m else []):
            if n not in self.known:
                problems.append("step %s: named in the description of %s but not a step of the code" % (n, SCHEMA))
        self.assertEqual(problems, [])

    def check_both_ways(self, listed, where):
        """@listed names the steps a dead letter may carry: every step that can fail, and no
        wait that cannot (it only ends or is cancelled)."""
        failing = [s["name"] for s in self.steps if s["fails"]]
        waits = [s["name"] for s in self.steps if not s["fails"]]
        problems = ["step %s: missing from %s" % (n, where) for n in failing if n not in listed]
        problems += ["step %s: listed in %s but it never fails" % (n, where) for n in waits if n in listed]
        problems += ["step %s: listed in %s but not a step of the code" % (n, where)
                     for n in sorted(listed - self.known)]
        self.assertEqual(problems, [])

    def test_the_contract_names_every_wait_step(self):
        text = read(CONTRACT)
        missing = [s["name"] for s in self.steps if not s["fails"] and "`%s`" % s["name"] not in text]
        self.assertEqual(missing, [], "steps that only wait, not named in %s" % CONTRACT)

    def test_the_dead_letter_header_reference_lists_every_step(self):
        self.check_both_ways(header_row_steps(DLQ_HEADERS, "thopter.dlq.error.step"),
                             "%s (the thopter.dlq.error.step row)" % DLQ_HEADERS)

    def test_the_contract_lists_every_step(self):
        self.check_both_ways(header_row_steps(CONTRACT, "thopter.dlq.error.step"),
                             "%s (section 4, the thopter.dlq.error.step row)" % CONTRACT)

    def test_operations_says_what_to_do_at_every_step(self):
        self.check_both_ways(operations_steps(),
                             "%s (section 6, the step(s) column of the class table)" % OPERATIONS)


if __name__ == "__main__":
    unittest.main()
