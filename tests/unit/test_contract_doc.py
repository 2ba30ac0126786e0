"""docs/CONTRACT.md agrees with the code, both ways: every setting
(consumer/lib/config_table.c's table and what the producer tools read), every
dead-letter header the code writes and every metric of
consumer/lib/metrics_table.h is named in it, and every setting, header and
metric it names exists in the code. Label unit: it reads files only."""
import glob
import json
import os
import re
import shutil
import subprocess
import unittest

SOURCE_DIR = os.path.abspath(os.environ.get("THOPTER_SOURCE_DIR")
                             or os.path.join(os.path.dirname(__file__), "..", ".."))


def read(*parts):
    with open(os.path.join(SOURCE_DIR, *parts), encoding="utf-8") as f:
        return f.read()


def code_settings():
    """Environment names the C code reads: config_table.c's table, and the
    tools' cli_env()/env_or() calls."""
    text = read("consumer", "lib", "config_table.c")
    body = text[text.index("const struct setting config_table[]"):]
    body = body[:body.index("};")]
    names = set(re.findall(r'\{"([A-Z][A-Z0-9_]*)",', body))
    for path in glob.glob(os.path.join(SOURCE_DIR, "producer-tools", "**", "*.c"), recursive=True):
        if "node_modules" in path.split(os.sep):
            continue  # the hub package's npm dependencies (librdkafka's own source)
        with open(path, encoding="utf-8") as f:
            names |= set(re.findall(r'\b(?:cli_env|env_or|getenv)\("([A-Z][A-Z0-9_]*)"', f.read()))
    return names - {"USER", "HOME", "PATH"}  # the system's, not settings


def code_headers():
    """Dead-letter header names the C code writes or reads: string literals
    after a prefix macro (DLQ_PREFIX "topic") and whole literals."""
    names = set()
    paths = ["consumer/lib/dlq.c", "producer-tools/dlq.c"] + [
        os.path.relpath(p, SOURCE_DIR) for p in glob.glob(os.path.join(SOURCE_DIR, "producer-tools", "lib", "*.h"))]
    for path in paths:
        text = read(*path.split("/"))
        prefixes = dict(re.findall(r'#define\s+(\w+)\s+"(thopter\.[a-z.]+)"', text))
        for macro, lit in re.findall(r'\b(\w+)\s+"([a-z_.0-9]+)"', text):
            if macro in prefixes and prefixes[macro].endswith(".") and not lit.startswith("thopter."):
                names.add(prefixes[macro] + lit)
        names |= {v for v in prefixes.values() if not v.endswith(".")}
        names |= set(re.findall(r'"(thopter\.(?:dlq|replay)\.[a-z_.0-9]*[a-z0-9])"', text))
    return names


def code_metrics():
    return set(re.findall(r'X\(M_\w+,\s*"(thopter_[a-z_]+)"', read("consumer", "lib", "metrics_table.h")))


def doc():
    return read("docs", "CONTRACT.md")


def doc_code_spans(text):
    """Every `...` span, split on the separators a span may list names with."""
    out = set()
    for span in re.findall(r"`([^`\n]+)`", text):
        out.add(span)
        for part in re.split(r"[\s,=|()\[\]{}\"']+", span):
            if part:
                out.add(part)
    return out


def section(text, number):
    m = re.search(r"^## %d\. .*?(?=^## \d+\. |\Z)" % number, text, re.S | re.M)
    return m.group(0) if m else ""


class ContractDoc(unittest.TestCase):
    def test_every_setting_of_the_code_is_documented(self):
        spans = doc_code_spans(section(doc(), 7))
        missing = sorted(n for n in code_settings() if n not in spans)
        self.assertEqual(missing, [], "settings missing from docs/CONTRACT.md section 7")

    def test_every_documented_setting_exists(self):
        known = code_settings()
        # The first column of section 7's tables names settings.
        named = set()
        for row in re.findall(r"^\| (`[^|]+`) \|", section(doc(), 7), re.M):
            named |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", row))
        self.assertGreater(len(named), 40)
        # Any upper-case name with an underscore anywhere on the page.
        named |= {s for s in doc_code_spans(doc()) if re.fullmatch(r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)+", s)}
        unknown = sorted(named - known)
        self.assertEqual(unknown, [], "docs/CONTRACT.md names settings the code does not have")

    def test_every_header_of_the_code_is_documented(self):
        headers = code_headers()
        self.assertIn("thopter.dlq.error.class", headers)
        self.assertIn("thopter.replay.count", headers)
        spans = doc_code_spans(doc())
        missing = sorted(h for h in headers if h not in spans)
        self.assertEqual(missing, [], "headers missing from docs/CONTRACT.md")

    def test_every_documented_header_exists(self):
        named = {s for s in doc_code_spans(doc()) if re.fullmatch(r"thopter\.(dlq|replay)\.[a-z_.0-9]+", s)}
        self.assertGreater(len(named), 15)
        unknown = sorted(named - code_headers())
        self.assertEqual(unknown, [], "docs/CONTRACT.md names headers the code does not write")

    def test_every_metric_is_documented(self):
        metrics = code_metrics()
        self.assertGreater(len(metrics), 20)
        spans = doc_code_spans(section(doc(), 8))
        missing = sorted(m for m in metrics if m not in spans)
        self.assertEqual(missing, [], "metrics missing from docs/CONTRACT.md section 8")

    def test_every_documented_metric_exists(self):
        text = doc()
        named = set(re.findall(r"^\| `(thopter_[a-z_]+)` \|", section(text, 8), re.M))
        # Elsewhere on the page, anything shaped like a metric name.
        named |= {s for s in doc_code_spans(text)
                  if re.fullmatch(r"thopter_[a-z_]+_(total|seconds)|thopter_circuit_open", s)}
        unknown = sorted(named - code_metrics())
        self.assertEqual(unknown, [], "docs/CONTRACT.md names metrics the code does not have")

    def test_nothing_depends_on_a_directory_outside_the_repository(self):
        hits = []
        # Spelt in pieces so that this line is not a hit of `git grep` for the same thing.
        shared = "sha" + "red"
        rx = re.compile(r"\.\./%s/|%s/reference/|%s/CONTRACT" % (shared, shared, shared))
        for root, dirs, files in os.walk(SOURCE_DIR):
            dirs[:] = [d for d in dirs if d not in (".git", "build", "node_modules", "dist")]
            for name in files:
                path = os.path.join(root, name)
                try:
                    with open(path, encoding="utf-8") as f:
                        for i, line in enumerate(f, 1):
                            if rx.search(line) and "swagger" not in line and path != os.path.abspath(__file__):
                                hits.append("%s:%d" % (os.path.relpath(path, SOURCE_DIR), i))
                except (UnicodeDecodeError, OSError):
                    continue
        self.assertEqual(hits, [])



class DocRecipes(unittest.TestCase):
    """Recipes of the docs that are easy to get subtly wrong, run as written."""

    def test_producers_jq_filter_for_stopped_thopters(self):
        if not shutil.which("jq"):
            self.skipTest("jq is not installed")
        text = read("docs", "producers.md")
        block = text[text.index("# Stopped ones only"):]
        m = re.search(r"jq -r '([^']+)'", block)
        machines = [{"id": "a", "name": "thopter-1", "state": "stopped"},
                    {"id": "b", "name": "gc-default", "state": "stopped"},
                    {"id": "c", "name": "thopter-2", "state": "started"}]
        out = subprocess.run(["jq", "-r", m.group(1)], input=json.dumps(machines), capture_output=True,
                             text=True, timeout=10)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.split(), ["a"], "only stopped thopters, never a Golden Claude")


if __name__ == "__main__":
    unittest.main()
