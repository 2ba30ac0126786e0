"""deploy/prometheus: the alert rules load (promtool check rules), fire on the series
they are meant for and stay quiet otherwise (promtool test rules with
thopter-alerts.test.yml), and the Grafana dashboard is well-formed. Label unit:
files and promtool only. tests/integration/test_prometheus_metrics.py checks the
metric names against a running consumer."""
import json
import os
import re
import shutil
import subprocess
import unittest

SOURCE_DIR = os.path.abspath(os.environ.get("THOPTER_SOURCE_DIR")
                             or os.path.join(os.path.dirname(__file__), "..", ".."))
PROM_DIR = os.path.join(SOURCE_DIR, "deploy", "prometheus")
RULES = os.path.join(PROM_DIR, "thopter-alerts.yml")
RULE_TESTS = os.path.join(PROM_DIR, "thopter-alerts.test.yml")
DASHBOARD = os.path.join(PROM_DIR, "grafana-thopter-consumer.json")
# What the issue asks operators to be alerted on, by alert name.
EXPECTED_ALERTS = {"ThopterConsumerLagGrowing", "ThopterDeadLetters", "ThopterCircuitOpen",
                   "ThopterConsumerNotReady", "ThopterNoCommit"}


def promtool():
    path = shutil.which("promtool")
    if not path:
        raise AssertionError("promtool not found: run deploy/setup.sh (Debian package prometheus)")
    return path


class PrometheusRulesTest(unittest.TestCase):
    def run_promtool(self, *args):
        r = subprocess.run([promtool(), *args], cwd=PROM_DIR, capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, "promtool %s:\n%s%s" % (" ".join(args), r.stdout, r.stderr))
        return r.stdout

    def test_rules_load(self):
        out = self.run_promtool("check", "rules", RULES)
        self.assertRegex(out, r"SUCCESS: \d+ rules found")

    def test_every_alert_the_operators_expect_exists_and_is_unit_tested(self):
        with open(RULES, encoding="utf-8") as f:
            names = set(re.findall(r"^\s*- alert: (\w+)\s*$", f.read(), re.M))
        self.assertLessEqual(EXPECTED_ALERTS, names)
        with open(RULE_TESTS, encoding="utf-8") as f:
            tested = set(re.findall(r"alertname: (\w+)", f.read()))
        self.assertEqual(names, tested, "every alert has a promtool unit test")

    def test_alerts_fire_as_the_unit_tests_say(self):
        out = self.run_promtool("test", "rules", RULE_TESTS)
        self.assertIn("SUCCESS", out)

    def test_dashboard_is_well_formed(self):
        with open(DASHBOARD, encoding="utf-8") as f:
            dash = json.load(f)
        self.assertEqual(dash["uid"], "thopter-consumer")
        ids = [p["id"] for p in dash["panels"]]
        self.assertEqual(len(ids), len(set(ids)), "panel ids are unique")
        for p in dash["panels"]:
            self.assertTrue(p["targets"], p["title"])
            for t in p["targets"]:
                self.assertRegex(t["expr"], r"\bthopter_[a-z_]+", p["title"])
                self.assertEqual(t["expr"].count("("), t["expr"].count(")"), t["expr"])
                self.assertIn('instance=~"$instance"', t["expr"], "%s: follows the instance selector" % p["title"])
        variables = {v["name"] for v in dash["templating"]["list"]}
        self.assertEqual(variables, {"datasource", "instance"})


if __name__ == "__main__":
    unittest.main()
