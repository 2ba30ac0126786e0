"""Operability of thopter-consumer: /metrics counts what happened, /livez and
/readyz follow the broker, bad settings stop the process with one line, and
no secret leaks. The real binary against thopter-devbroker and the fake fly
Machines API (tests/fakes/fake_fly.py)."""
import json
import math
import os
import re
import subprocess
import threading
import time
import unittest
import urllib.error
import urllib.request

from flyfake import FlyFake
from thopter_harness import (ConsumerTestCase, Devbroker, Kafka, ThopterConsumer, TOKEN, binary, machine_id, tmo,
                             wait_until, SOURCE_DIR)

DESTROY = "thopter.destroy"
DLQ = "thopter.dlq"
GROUP = "thopter-destroyer"
TOPIC = 'topic="%s"' % DESTROY


# ---- HTTP and the Prometheus text format ---------------------------------------------

def http_get(port, path, timeout=10.0):
    """(status, body, seconds)."""
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=tmo(timeout)) as r:
            return r.status, r.read().decode(), time.monotonic() - t0
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), time.monotonic() - t0


SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"(,|$)')


def parse_labels(text):
    labels, pos = {}, 0
    while pos < len(text):
        m = LABEL_RE.match(text, pos)
        if not m:
            raise AssertionError("bad label syntax at %r" % text[pos:])
        if m.group(1) in labels:
            raise AssertionError("label %s repeated in {%s}" % (m.group(1), text))
        labels[m.group(1)] = m.group(2)
        pos = m.end()
    return labels


def parse_prometheus(text):
    """The text exposition format 0.0.4, strictly: returns {family: {"type", "help",
    "samples": [(name, labels, value)]}}; raises AssertionError on anything malformed."""
    families, current, seen = {}, None, set()
    if text and not text.endswith("\n"):
        raise AssertionError("exposition must end with a newline")
    for n, line in enumerate(text.splitlines(), 1):
        if not line:
            continue
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            parts = line.split(" ", 3)
            if len(parts) < 4:
                raise AssertionError("line %d: %r" % (n, line))
            kind, name, rest = parts[1], parts[2], parts[3]
            fam = families.setdefault(name, {"type": None, "help": None, "samples": []})
            if fam["samples"]:
                raise AssertionError("line %d: %s %s after its samples" % (n, kind, name))
            key = "help" if kind == "HELP" else "type"
            if fam[key] is not None:
                raise AssertionError("line %d: second %s for %s" % (n, kind, name))
            if kind == "TYPE" and rest not in ("counter", "gauge", "histogram", "summary", "untyped"):
                raise AssertionError("line %d: bad type %r" % (n, rest))
            fam[key] = rest
            current = name
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        if not m:
            raise AssertionError("line %d: not a sample: %r" % (n, line))
        name, labels = m.group(1), parse_labels(m.group(3) or "")
        try:
            value = float(m.group(4))  # accepts NaN, +Inf
        except ValueError:
            raise AssertionError("line %d: bad value %r" % (n, m.group(4))) from None
        base = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and families.get(name[:-len(suffix)], {}).get("type") == "histogram":
                base = name[:-len(suffix)]
        if base not in families:
            raise AssertionError("line %d: %s has no HELP/TYPE" % (n, name))
        if base != current:
            raise AssertionError("line %d: %s is not grouped with its family" % (n, name))
        key = (name, tuple(sorted(labels.items())))
        if key in seen:
            raise AssertionError("line %d: duplicate series %r" % (n, key))
        seen.add(key)
        families[base]["samples"].append((name, labels, value))
    for name, fam in families.items():
        if fam["type"] is None or fam["help"] is None:
            raise AssertionError("%s lacks TYPE or HELP" % name)
        if fam["type"] == "counter" and not name.endswith("_total"):
            raise AssertionError("counter %s should end in _total" % name)
        if fam["type"] == "histogram":
            check_histogram(name, fam["samples"])
    return families


def check_histogram(name, samples):
    by_series = {}
    for sname, labels, value in samples:
        rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        by_series.setdefault(rest, {"buckets": [], "sum": None, "count": None})
        s = by_series[rest]
        if sname == name + "_bucket":
            s["buckets"].append((float(labels["le"]), value))
        elif sname == name + "_sum":
            s["sum"] = value
        elif sname == name + "_count":
            s["count"] = value
        else:
            raise AssertionError("%s: stray sample %s" % (name, sname))
    for rest, s in by_series.items():
        if s["count"] is None or s["sum"] is None or not s["buckets"]:
            raise AssertionError("%s%r: needs buckets, _sum and _count" % (name, rest))
        les = [le for le, _ in s["buckets"]]
        if les != sorted(les) or not math.isinf(les[-1]):
            raise AssertionError("%s%r: buckets not ascending to +Inf" % (name, rest))
        counts = [c for _, c in s["buckets"]]
        if counts != sorted(counts) or counts[-1] != s["count"]:
            raise AssertionError("%s%r: bucket counts not cumulative or +Inf != _count" % (name, rest))


def value(families, name, **labels):
    """The value of the one sample of @name whose labels include @labels (None if absent)."""
    base = re.sub(r"_(bucket|sum|count)$", "", name)
    fam = families.get(name) or families.get(base)
    if not fam:
        return None
    hits = [v for n, l, v in fam["samples"] if n == name and all(l.get(k) == str(x) for k, x in labels.items())]
    if len(hits) > 1:
        raise AssertionError("%s%r matches %d series" % (name, labels, len(hits)))
    return hits[0] if hits else None


def total(families, name, **labels):
    fam = families.get(name)
    return sum(v for n, l, v in (fam["samples"] if fam else [])
               if n == name and all(l.get(k) == str(x) for k, x in labels.items()))


class TestPrometheusParser(unittest.TestCase):
    """The tiny parser rejects what Prometheus would."""

    def test_rejects_malformed(self):
        good = "# HELP a_total x\n# TYPE a_total counter\na_total{k=\"v\"} 1\n"
        self.assertEqual(value(parse_prometheus(good), "a_total", k="v"), 1)
        for bad in ["a_total 1\n", good + "a_total{k=\"v\"} 2\n", good.replace("} 1", "} one"),
                    "# TYPE a gauge\na 1\n", good.replace('k="v"', "k=v"), good[:-1]]:
            with self.subTest(bad=bad), self.assertRaises(AssertionError):
                parse_prometheus(bad)


# ---- the consumer ----------------------------------------------------------------------

class OperabilityTestCase(ConsumerTestCase):
    def scrape(self, port):
        status, body, secs = http_get(port, "/metrics")
        self.assertEqual(status, 200, body)
        return parse_prometheus(body)


class TestMetricsCountWhatHappened(OperabilityTestCase):
    def test_counters_histograms_and_lag(self):
        hub = self.fly.seed_machine(id=machine_id(0xabc), name="hub-1", state="started")["id"]
        ok = self.seed(10, start=0x100)
        stuck = self.seed(1, start=0x900)[0]
        self.fly.push_fault(method="DELETE", route="machines.delete", machine=stuck, status=503, count=-1)
        for i in ok:
            self.kafka.produce(DESTROY, {"thopterId": i, "reason": "operability"}, key=i)
        invalid = [b"not json at all {", json.dumps({"reason": "no id"}).encode(),
                   json.dumps({"thopterId": "XYZ"}).encode()]
        for v in invalid:
            self.kafka.produce(DESTROY, v, key=b"bad")
        self.kafka.produce(DESTROY, {"thopterId": hub, "requestId": "kill-the-hub"}, key=hub)
        self.kafka.produce(DESTROY, {"thopterId": stuck}, key=stuck)
        self.kafka.flush()

        c = self.start_consumer(env={"THOPTER_FLY_RETRIES": "2", "THOPTER_DESTROY_BACKLOG": "5"})
        port = c.metrics_port()
        t0 = time.monotonic()
        wait_until(lambda: self.gone(ok), timeout=40, interval=0.2, what="10 machines destroyed")
        wait_until(lambda: value(self.scrape(port), "thopter_messages_finished_total", topic=DESTROY) == 15,
                   timeout=30, interval=0.3, what="15 records finished")
        print("\n15 records (10 ok, 5 dead letters) finished in %.2f s" % (time.monotonic() - t0))
        m = self.scrape(port)

        self.assertEqual(value(m, "thopter_messages_received_total", topic=DESTROY), 15)
        self.assertEqual(value(m, "thopter_messages_finished_total", topic=DESTROY), 15)
        dl = {l["class"]: v for n, l, v in m["thopter_dead_letters_total"]["samples"] if l["topic"] == DESTROY}
        # Every class is served from the start, at 0.
        self.assertEqual(len(dl), 9)
        self.assertEqual({c: v for c, v in dl.items() if v},
                         {"invalid_request": 3, "forbidden_target": 1, "fly_unavailable": 1})
        self.assertEqual(len(self.kafka.read_all(DLQ)), 5)
        outcomes = {l["outcome"]: v for n, l, v in m["thopter_requests_total"]["samples"]
                    if l.get("kind") == "destroy"}
        self.assertEqual(outcomes, {"destroyed": 10, "forbidden": 1, "failed": 1})

        # Every fly call the fake answered is counted once, by route and status.
        seen = {}
        for call in self.fly.calls():
            if call["status"] is not None:
                key = (call["route"], str(call["status"]))
                seen[key] = seen.get(key, 0) + 1
        counted = {(l["route"], l["status"]): v for n, l, v in m["thopter_fly_requests_total"]["samples"]}
        self.assertEqual(counted, seen)
        self.assertEqual(counted[("machines.delete", "200")], 10)
        self.assertEqual(counted[("machines.delete", "503")], 2, "THOPTER_FLY_RETRIES=2 attempts")
        self.assertEqual(counted[("machines.get", "200")], 12)

        # Histograms: one observation per worked request / fly call.
        self.assertEqual(value(m, "thopter_job_duration_seconds_count", topic=DESTROY), 12)
        self.assertEqual(value(m, "thopter_fly_request_duration_seconds_count", route="machines.delete"), 12)
        for fam in ("thopter_job_duration_seconds", "thopter_fly_request_duration_seconds"):
            self.assertEqual(m[fam]["type"], "histogram")
        for fam, kind in [("thopter_messages_received_total", "counter"), ("thopter_in_flight", "gauge"),
                          ("thopter_consumer_lag", "gauge"), ("thopter_seconds_since_last_commit", "gauge"),
                          ("thopter_last_commit_timestamp_seconds", "gauge"), ("thopter_poll_age_seconds", "gauge"),
                          ("thopter_circuit_open", "gauge"), ("thopter_rebalances_total", "counter"),
                          ("thopter_build_info", "gauge")]:
            self.assertEqual(m[fam]["type"], kind, fam)
            self.assertTrue(m[fam]["help"], fam)
        self.assertEqual(value(m, "thopter_in_flight", topic=DESTROY), 0)
        self.assertEqual(value(m, "thopter_circuit_open"), 0)
        self.assertEqual(total(m, "thopter_commit_failures_total"), 0)

        # Lag: all six partitions are ours and everything is committed.
        wait_until(lambda: total(self.scrape(port), "thopter_consumer_lag", topic=DESTROY) == 0, timeout=15,
                   interval=0.3, what="lag 0 once everything is committed")
        m = self.scrape(port)
        lag = {l["partition"]: v for n, l, v in m["thopter_consumer_lag"]["samples"] if l["topic"] == DESTROY}
        self.assertEqual(sorted(lag), [str(p) for p in range(6)])
        since = value(m, "thopter_seconds_since_last_commit", topic=DESTROY)
        self.assertTrue(0 <= since < 30, since)
        self.assertAlmostEqual(value(m, "thopter_last_commit_timestamp_seconds", topic=DESTROY) + since,
                               time.time(), delta=5)

        # Lag while busy: slow lookups keep 5 in flight, the loop fills its
        # backlog (THOPTER_DESTROY_BACKLOG=5 queued) and pauses, and the lag
        # of the paused partitions still counts everything not committed.
        more = self.seed(14, start=0x200)
        self.fly.config(latency_by_route={"machines.get": 4000})
        for i in more:
            self.kafka.produce(DESTROY, {"thopterId": i}, key=i)
        self.kafka.flush()

        def busy():
            s = self.scrape(port)
            return (value(s, "thopter_paused", topic=DESTROY) == 1
                    and total(s, "thopter_consumer_lag", topic=DESTROY) == len(more) and s)
        s = wait_until(busy, timeout=10, interval=0.2, what="paused with lag %d" % len(more))
        self.assertEqual(value(s, "thopter_in_flight", topic=DESTROY), 5)
        self.fly.config(latency_by_route={})
        wait_until(lambda: self.gone(more), timeout=90, interval=0.3, what="the %d machines destroyed" % len(more))
        wait_until(lambda: total(self.scrape(port), "thopter_consumer_lag", topic=DESTROY) == 0, timeout=15,
                   interval=0.3, what="lag back to 0")

        self.assertEqual(c.stop(), 0)
        log = c.check_clean()
        self.assertNotIn(TOKEN, log, "the fly token leaked into the log")
        self.assertNotIn(TOKEN[4:], log)


class TestSilenceWhileJoining(OperabilityTestCase):
    """Issue 22: no silent minute between "consuming" and "assigned"; librdkafka's repeats collapsed."""

    def test_a_restarted_consumer_says_why_it_waits_for_its_partitions(self):
        props = ["-X", "session.timeout.ms=9000"]
        first = self.start_consumer(args=props)
        first.wait_assigned()
        self.assertEqual(first.stop(), 0)
        # The mock assigns to a new member only after session.timeout.ms - 1 s.
        second = self.start_consumer(args=props)
        m = second.wait_log(r'"msg":"(no partitions of thopter\.destroy yet, \d+ s after joining group '
                            r'thopter-destroyer[^"]*)"', timeout=30)
        self.assertIn("session.timeout.ms (9000 ms here)", m.group(1))
        self.assertIn("-X session.timeout.ms shortens", m.group(1))
        second.wait_log(r'"msg":"joined group thopter-destroyer after \d+\.\d s"', timeout=30)
        second.wait_assigned()

    def test_an_unreachable_broker_is_said_once_not_every_second(self):
        c = self.start_consumer(env={"KAFKA_BROKERS": "127.0.0.1:1"})
        c.wait_log(r'"msg":"consuming thopter\.destroy', timeout=30)
        time.sleep(4)
        lines = [r for r in c.logs() if r.get("component") == "kafka" and "Connect to ipv4#127.0.0.1:1" in r["msg"]]
        # One per level (FAIL and librdkafka's ERROR restatement collapse into one key), not one per
        # handle and per reconnect (8 or more in this time before).
        self.assertGreaterEqual(len(lines), 1)
        self.assertLessEqual(len(lines), 2, [r["msg"] for r in lines])
        self.assertTrue(all(r["level"] == "error" for r in lines))


class TestHealthEndpoints(OperabilityTestCase):
    def test_livez_readyz_follow_the_broker_and_the_consumer_recovers(self):
        ids = self.seed(2, start=0x300)
        c = self.start_consumer()
        port = c.metrics_port()
        self.assertEqual(http_get(port, "/livez")[0], 200)
        self.assertEqual(http_get(port, "/nope")[0], 404)
        c.wait_assigned()
        wait_until(lambda: http_get(port, "/readyz")[0] == 200, timeout=10, what="/readyz 200 once assigned")

        self.kafka.produce(DESTROY, {"thopterId": ids[0]}, key=ids[0])
        self.kafka.flush()
        wait_until(lambda: self.gone(ids[:1]), timeout=20, what="first destroy")

        self.broker.down()
        t0 = time.monotonic()
        status, body, _ = wait_until(lambda: (lambda r: r if r[0] == 503 else None)(http_get(port, "/readyz")),
                                     timeout=15, interval=0.2, what="/readyz 503 with the broker down")
        took = time.monotonic() - t0
        print("\n/readyz went 503 %.2f s after the broker went down: %s" % (took, body.strip()))
        self.assertIn("destroy", body)
        # Liveness is the poll loop, not the broker: a broker outage must not get
        # the process restarted. /livez stays fast even while a /metrics scrape
        # waits on the broker (one thread per connection).
        slow = {}
        t = threading.Thread(target=lambda: slow.update(r=http_get(port, "/metrics", timeout=20)))
        t.start()
        for _ in range(5):
            st, _, secs = http_get(port, "/livez")
            self.assertEqual(st, 200)
            self.assertLess(secs, tmo(1.0))
            time.sleep(0.1)
        t.join(tmo(20))
        self.assertEqual(slow["r"][0], 200)
        self.assertLess(slow["r"][2], tmo(10), "a scrape during an outage is bounded")
        parse_prometheus(slow["r"][1])

        self.broker.up()
        t0 = time.monotonic()
        wait_until(lambda: http_get(port, "/readyz")[0] == 200, timeout=30, interval=0.3,
                   what="/readyz 200 after the broker came back")
        print("/readyz back to 200 %.2f s after the broker came back" % (time.monotonic() - t0))
        self.kafka.produce(DESTROY, {"thopterId": ids[1]}, key=ids[1])
        self.kafka.flush()
        wait_until(lambda: self.gone(ids[1:]), timeout=40, interval=0.3, what="a destroy after the outage")
        self.assertEqual(c.stop(), 0)

    def test_livez_check_script(self):
        """deploy/livez-check.sh (the image's HEALTHCHECK) against the real server."""
        c = self.start_consumer()
        port = c.metrics_port()
        script = os.path.join(SOURCE_DIR, "deploy", "livez-check.sh")
        env = {"PATH": "/usr/bin:/bin", "THOPTER_METRICS_ADDR": "127.0.0.1:%d" % port}
        self.assertEqual(subprocess.run([script], env=env, timeout=10).returncode, 0)
        env["THOPTER_METRICS_ADDR"] = "[::]:%d" % port
        self.assertEqual(subprocess.run([script], env=env, timeout=10).returncode, 0)
        c.stop()
        self.assertNotEqual(subprocess.run([script], env=env, timeout=10, stderr=subprocess.DEVNULL).returncode, 0)


class TestSettings(unittest.TestCase):
    SECRET = "fm2_operability-secret-" + "Q" * 24

    def run_consumer(self, env, args=("--role", "destroy")):
        e = {"PATH": "/usr/bin:/bin", "ASAN_OPTIONS": "detect_leaks=1",
             "KAFKA_BROKERS": "127.0.0.1:9", "APP_NAME": "thopters", "FLY_DEPLOY_KEY": self.SECRET,
             "FLY_API_BASE": "http://127.0.0.1:9", "THOPTER_METRICS_ADDR": "127.0.0.1:0"}
        e.update(env)
        for k in [k for k, v in e.items() if v is None]:
            del e[k]
        return subprocess.run([binary("thopter-consumer")] + list(args), env=e, capture_output=True, text=True,
                              timeout=tmo(20))

    def assert_one_line_naming(self, out, name):
        lines = [line for line in out.stderr.splitlines() if line.strip()]
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertEqual(len(lines), 1, "exactly one line on stderr: %r" % lines)
        self.assertIn(name, lines[0])
        self.assertEqual(out.stdout, "")
        self.assertNotIn(self.SECRET, out.stderr)

    def test_bad_settings_exit_2_with_one_line_naming_the_setting(self):
        cases = [
            ({"MAX_CONCURRENT_DESTROYS": "abc"}, (), "MAX_CONCURRENT_DESTROYS"),
            ({"MAX_CONCURRENT_DESTROYS": "0"}, (), "MAX_CONCURRENT_DESTROYS"),
            ({"KAFKA_BROKERS": None}, (), "KAFKA_BROKERS"),
            ({"FLY_DEPLOY_KEY": None}, (), "FLY_DEPLOY_KEY"),
            ({"THOPTER_LOG_LEVEL": "loud"}, (), "THOPTER_LOG_LEVEL"),
            ({"FLY_API_BASE": "ftp://x"}, (), "FLY_API_BASE"),
            ({}, ("--role", "bogus"), "--role"),
            ({}, ("--role", "destroy", "--frobnicate", "1"), "--frobnicate"),
            ({}, ("--role", "destroy", "--max-concurrent-destroys"), "--max-concurrent-destroys"),
        ]
        for env, args, name in cases:
            with self.subTest(env=env, args=args):
                self.assert_one_line_naming(self.run_consumer(env, args or ("--role", "destroy")), name)

    def test_every_missing_setting_is_named_at_once_one_line_each(self):
        out = self.run_consumer({"KAFKA_BROKERS": None, "APP_NAME": None}, ("--role", "provision"))
        self.assertEqual(out.returncode, 2, out.stderr)
        names = [re.match(r"thopter-consumer: ([A-Z_]+(?: and [A-Z_]+)?): (?:both )?required", line).group(1)
                 for line in out.stderr.splitlines()]
        self.assertEqual(names, ["KAFKA_BROKERS", "APP_NAME", "REGION", "THOPTER_IMAGE", "GITHUB_INTEGRATION_JSON",
                                 "THOPTER_SSH_KEY", "THOPTER_SSH_KNOWN_HOSTS",
                                 "METADATA_SERVICE_HOST and HUB_STATUS_PORT"])
        self.assertNotIn(self.SECRET, out.stderr)

    def test_durations_take_units_and_insecure_ssh_warns(self):
        out = self.run_consumer({"THOPTER_DRAIN_TIMEOUT": "lots"})
        self.assert_one_line_naming(out, "THOPTER_DRAIN_TIMEOUT")
        self.assertIn("1h30m", out.stderr)
        # Accepted with units: the consumer starts (the broker is unreachable) and stops on SIGTERM.
        p = subprocess.Popen([binary("thopter-consumer"), "--role", "all", "--thopter-drain-timeout", "2s"],
                             env={"PATH": "/usr/bin:/bin", "KAFKA_BROKERS": "127.0.0.1:9", "APP_NAME": "thopters",
                                  "FLY_DEPLOY_KEY": self.SECRET, "FLY_API_BASE": "http://127.0.0.1:9",
                                  "THOPTER_METRICS_ADDR": "off", "REGION": "ord", "THOPTER_IMAGE": "img",
                                  "GITHUB_INTEGRATION_JSON": '{"repositories":{}}', "THOPTER_SSH_KEY": "/nonexistent",
                                  "THOPTER_SSH_INSECURE": "1", "THOPTER_OBSERVER": "0",
                                  "ASAN_OPTIONS": "detect_leaks=1"},
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + tmo(20)
            seen = ""
            while time.monotonic() < deadline and "THOPTER_SSH_INSECURE=1" not in seen:
                line = p.stderr.readline()
                if not line:
                    break
                seen += line
        finally:
            p.kill()
            p.communicate()
        warn = [json.loads(line) for line in seen.splitlines() if "THOPTER_SSH_INSECURE=1" in line]
        self.assertTrue(warn, seen)
        self.assertEqual(warn[0]["level"], "warn")
        self.assertIn("any SSH host key is accepted", warn[0]["msg"])

    def test_bad_metrics_addr_exits_2_with_one_line(self):
        for addr in ("nonsense", "127.0.0.1:99999", "[::1]", "localhost:9464"):
            with self.subTest(addr=addr):
                self.assert_one_line_naming(self.run_consumer({"THOPTER_METRICS_ADDR": addr}),
                                            "THOPTER_METRICS_ADDR")

    def test_bad_metrics_addr_is_refused(self):
        """What holds today: the process refuses to run and names the setting."""
        out = self.run_consumer({"THOPTER_METRICS_ADDR": "nonsense"})
        self.assertIn(out.returncode, (1, 2))
        self.assertIn("THOPTER_METRICS_ADDR", out.stderr)
        self.assertNotIn(self.SECRET, out.stderr)

    def test_help_lists_every_setting_and_no_secret(self):
        out = self.run_consumer({"GITHUB_INTEGRATION_JSON": '{"repositories":{}}'}, ("--help",))
        self.assertEqual(out.returncode, 0)
        with open(os.path.join(SOURCE_DIR, "consumer", "lib", "config_table.c")) as f:
            src = f.read()
        table = src[src.index("config_table[] = {"):src.index("#define NSETTINGS")]
        names = re.findall(r'\{"([A-Z][A-Z0-9_]*)",', table)
        self.assertGreaterEqual(len(names), 40)
        for name in names:
            flag = "--" + name.lower().replace("_", "-")
            # The flag, then DURATION for a duration, and the consumer's "(required...)" mark.
            self.assertRegex(out.stdout, r"(?m)^  %s\s+%s( DURATION)?(  \(required[^)]*\))?$"
                             % (name, re.escape(flag)))
        self.assertNotIn(self.SECRET, out.stdout + out.stderr)
        self.assertEqual(self.run_consumer({}, ("--version",)).returncode, 0)

    def test_secret_never_in_output_of_a_run(self):
        """Debug logging, a completed destroy, a dead letter, a stop: the token is
        in none of the log lines, the events or the dead letter's headers."""
        broker = Devbroker()
        fly = FlyFake()
        k = None
        try:
            fly.start(token=self.SECRET)
            ok = fly.seed_machine(id=machine_id(0x71), name="thopter-71", state="started")["id"]
            hub = fly.seed_machine(id=machine_id(0x72), name="hub-72", state="started")["id"]
            c = ThopterConsumer(broker.bootstrap, fly.base_url, role="destroy", token=self.SECRET,
                                env={"THOPTER_LOG_LEVEL": "debug"})
            try:
                k = Kafka(broker.bootstrap)
                k.produce(DESTROY, {"thopterId": ok}, key=ok)
                k.produce(DESTROY, {"thopterId": hub}, key=hub)
                k.flush()
                c.wait_log("dead-lettering", timeout=40)
                c.wait_log("machine %s .* destroyed" % ok, timeout=40)
                self.assertEqual(c.stop(), 0)
                log = c.check_clean()
                self.assertIn('"level":"debug"', log)
                self.assertNotIn(self.SECRET, log)
                self.assertNotIn(self.SECRET[4:], log)
                for line in log.splitlines():  # every line is one JSON record
                    json.loads(line)
                for m in k.read_all(DLQ) + k.read_all("thopter.events"):
                    self.assertNotIn(self.SECRET.encode(), repr(m.headers()).encode() + (m.value() or b""))
                calls = fly.calls()
                self.assertTrue(calls and all(x["auth"] == "FlyV1 " + self.SECRET for x in calls))
            finally:
                c.close()
        finally:
            if k:
                k.close()
            fly.stop()
            broker.stop()

if __name__ == "__main__":
    unittest.main()
