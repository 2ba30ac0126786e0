"""Every thopter_* metric that deploy/prometheus names (alert rules, their
annotations, the Grafana dashboard) is served on a running consumer's /metrics.

The consumer's registry prints a family only once it has a sample, so the test
first makes the destroy consumer do what each metric counts: a destroy whose
first DELETE gets a 503 (a retry), a record that is not JSON (a dead letter), a
refused offset commit, and a fly outage that opens the circuit breaker (pause)."""
import json
import os
import re
import unittest
import urllib.request

from flyfake import FlyFake
from thopter_harness import Devbroker, Kafka, ThopterConsumer, TOKEN, machine_id, wait_until

SOURCE_DIR = os.path.abspath(os.environ.get("THOPTER_SOURCE_DIR")
                             or os.path.join(os.path.dirname(__file__), "..", ".."))
PROM_DIR = os.path.join(SOURCE_DIR, "deploy", "prometheus")
FILES = ["thopter-alerts.yml", "grafana-thopter-consumer.json"]
METRIC = re.compile(r"\bthopter_[a-z][a-z0-9_]*[a-z0-9]\b")
SUFFIXES = ("_bucket", "_sum", "_count")


def named_metrics():
    """{metric family: [files]} named anywhere in the Prometheus files."""
    out = {}
    for name in FILES:
        with open(os.path.join(PROM_DIR, name), encoding="utf-8") as f:
            text = f.read()
        if name.endswith(".json"):
            json.loads(text)
        for m in METRIC.findall(text):
            for s in SUFFIXES:
                if m.endswith(s) and m.startswith(("thopter_job_duration_seconds", "thopter_fly_request_duration_seconds")):
                    m = m[:-len(s)]
            out.setdefault(m, set()).add(name)
    return out


def served(port):
    """The metric families on /metrics: TYPE lines, and sample names (histogram suffixes dropped)."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        text = r.read().decode()
    families = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    histograms = set(re.findall(r"^# TYPE (\S+) histogram", text, re.M))
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name = re.split(r"[{ ]", line, 1)[0]
            for s in SUFFIXES:
                if name.endswith(s) and name[:-len(s)] in histograms:
                    name = name[:-len(s)]
            families.add(name)
    return families, text


class PrometheusMetricsTest(unittest.TestCase):
    def test_every_named_metric_is_served(self):
        named = named_metrics()
        self.assertIn("thopter_consumer_lag", named)
        self.assertGreaterEqual(len(named), 15, sorted(named))

        broker = Devbroker()
        self.addCleanup(broker.stop)
        fly = FlyFake()
        fly.start(token=TOKEN)
        self.addCleanup(fly.stop)
        kafka = Kafka(broker.bootstrap)
        self.addCleanup(kafka.close)
        for i in (1, 2, 3):
            fly.seed_machine(id=machine_id(i), name="thopter-%d" % i, state="started")
        consumer = ThopterConsumer(broker.bootstrap, fly.base_url, role="destroy",
                                   env={"THOPTER_BREAKER_THRESHOLD": "2", "THOPTER_FLY_RETRIES": "3"})
        self.addCleanup(consumer.close)
        consumer.wait_assigned()
        port = consumer.metrics_port()

        def destroyed(i):
            m = fly.machine(machine_id(i))
            return m.get("gone") or m["state"] in ("destroyed", "destroying")

        # A retry, a destroy, a dead letter, commits.
        fly.push_fault(route="machines.delete", status=503, count=1)
        kafka.produce("thopter.destroy", {"thopterId": machine_id(1)}, key=machine_id(1))
        kafka.produce("thopter.destroy", "this is not JSON", key="garbage")
        kafka.flush()
        wait_until(lambda: destroyed(1), timeout=30, what="machine 1 destroyed")
        wait_until(lambda: "thopter_dead_letters_total{" in served(port)[1], timeout=30, what="a dead letter")

        # A refused commit (OffsetCommit = 8, GROUP_AUTHORIZATION_FAILED = 30), retried by the consumer.
        broker.push_errors(8, 1, 30)
        kafka.produce("thopter.destroy", {"thopterId": machine_id(2)}, key=machine_id(2))
        kafka.flush()
        wait_until(lambda: "thopter_commit_failures_total" in served(port)[0], timeout=30, what="a commit failure")

        # The fly API down: the breaker opens and intake pauses; then it recovers.
        fly.outage(503)
        kafka.produce("thopter.destroy", {"thopterId": machine_id(3)}, key=machine_id(3))
        kafka.flush()
        wait_until(lambda: re.search(r"^thopter_circuit_open 1\b", served(port)[1], re.M), timeout=30,
                   what="the circuit to open")
        fly.outage_end()
        wait_until(lambda: destroyed(3), timeout=30, what="machine 3 destroyed after the outage")

        families, text = served(port)
        missing = {m: sorted(f) for m, f in named.items() if m not in families}
        self.assertEqual(missing, {}, "named in deploy/prometheus but not on /metrics:\n%s" % text)
        self.assertEqual(consumer.stop(), 0)


if __name__ == "__main__":
    unittest.main()
