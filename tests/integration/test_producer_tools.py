"""The producer tools end to end: thopter-send, thopter-dlq and
producer-tools/bulk-destroy (kcat) against thopter-devbroker, with the real
thopter-consumer and the fake fly Machines API where a flow needs them."""
import json
import os
import re
import unittest

from flyfake import FlyFake
from thopter_harness import (GROUP_PROPS, SOURCE_DIR, TOKEN, start_broker, Kafka, ThopterConsumer, headers_dict,
                             machine_id, wait_until)
from tools_harness import murmur2_partition, run_tool

DESTROY = "thopter.destroy"
PROVISION = "thopter.provision"
DLQ = "thopter.dlq"
EXAMPLES = os.path.join(SOURCE_DIR, "schemas", "examples")
SENT_RE = re.compile(r"^sent (provision|destroy) (\S+) -> (\S+) \[(\d+)\] @(\d+)$")


def x_props():
    out = []
    for p in GROUP_PROPS:
        out += ["-X", p]
    return out


class ToolsTestCase(unittest.TestCase):
    def setUp(self):
        self.broker = start_broker()
        self.addCleanup(self.broker.stop)
        self.b = self.broker.bootstrap
        self.kafka = Kafka(self.b)
        self.addCleanup(self.kafka.close)
        self.consumers = []
        self.fly = None

    def tearDown(self):
        for c in self.consumers:
            c.close()

    def start_fly(self):
        self.fly = FlyFake()
        self.fly.start(token=TOKEN)
        self.addCleanup(self.fly.stop)

    def start_consumer(self, **kw):
        c = ThopterConsumer(self.b, self.fly.base_url, role="destroy", **kw)
        self.consumers.append(c)
        return c

    def seed(self, n, start):
        return [self.fly.seed_machine(id=machine_id(i), name="thopter-%d" % i, state="started")["id"]
                for i in range(start, start + n)]

    def gone(self, ids):
        machines = {m["id"]: m for m in self.fly.machines()}
        return all(machines[i]["state"] == "destroyed" or machines[i].get("deleted") for i in ids)

    def tool(self, name, *args, **kw):
        return run_tool(name, list(args), **kw)

    def ok(self, name, *args, **kw):
        r = self.tool(name, *args, **kw)
        self.assertEqual(r.returncode, 0, "%s %s: exit %d\nstdout: %s\nstderr: %s"
                         % (name, " ".join(args), r.returncode, r.stdout, r.stderr))
        return r


class TestReplay(ToolsTestCase):
    """Dead letters of a fly outage for five machines; list, show, replay."""

    def test_dead_letters_listed_shown_and_replayed_once(self):
        self.start_fly()
        ids = self.seed(5, start=0x700)
        for i in ids:
            self.fly.push_fault(method="DELETE", route="machines.delete", machine=i, status=503, count=-1)
        # The breaker would make the failures wait in Kafka (contract 5.12):
        # here the rest of the API answers, so they are this message's own.
        self.start_consumer(env={"THOPTER_FLY_RETRIES": "2", "THOPTER_BREAKER_THRESHOLD": "64"})
        sent = self.ok("thopter-send", "-b", self.b, "destroy", *ids, "--reason", "replay test")
        originals = {}
        for line in sent.stdout.splitlines():
            m = SENT_RE.match(line)
            self.assertTrue(m, line)
            originals[m.group(2)] = (int(m.group(4)), int(m.group(5)))
        self.assertEqual(set(originals), set(ids))

        wait_until(lambda: len(self.kafka.read_all(DLQ)) == 5, timeout=40, interval=0.3,
                   what="five dead letters")
        dls = self.kafka.read_all(DLQ)
        for m in dls:
            self.assertEqual(headers_dict(m)["thopter.dlq.error.class"], "fly_unavailable")
        originals_bytes = {m.key().decode(): m.value() for m in self.kafka.read_all(DESTROY)}

        # list: one row per dead letter, pointing at the original record.
        rows = self.ok("thopter-dlq", "-b", self.b, "list").stdout.splitlines()
        self.assertEqual(len(rows), 5, rows)
        for row in rows:
            key = next(i for i in ids if i in row)
            p, o = originals[key]
            self.assertIn("  fly_unavailable  delete  %s [%d] @%d  %s  " % (DESTROY, p, o, key), row)
        js = [json.loads(line) for line in
              self.ok("thopter-dlq", "-b", self.b, "list", "--json").stdout.splitlines()]
        self.assertEqual(len(js), 5)
        for j in js:
            self.assertEqual((j["class"], j["step"], j["topic"]), ("fly_unavailable", "delete", DESTROY))
            self.assertEqual((j["originalPartition"], j["originalOffset"]), originals[j["key"]])
            self.assertEqual(j["attempts"], 2)
            self.assertEqual(j["replayCount"], 0)
            self.assertRegex(j["failedAt"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertIn("503", j["message"])
        self.assertEqual(self.ok("thopter-dlq", "-b", self.b, "list", "--class", "capacity").stdout, "")
        self.assertEqual(len(self.ok("thopter-dlq", "-b", self.b, "list", "--json", "--from", "3")
                             .stdout.splitlines()), 2)

        # show: the whole record.
        j = js[2]
        shown = self.ok("thopter-dlq", "-b", self.b, "show", "%d:%d" % (j["partition"], j["offset"])).stdout
        self.assertIn("key:         %s\n" % j["key"], shown)
        self.assertIn("  thopter.dlq.error.class: fly_unavailable\n", shown)
        self.assertIn("  thopter.dlq.offset: %d\n" % j["originalOffset"], shown)
        self.assertIn('  "thopterId": "%s",\n' % j["key"], shown)
        missing = self.tool("thopter-dlq", "-b", self.b, "show", "99")
        self.assertEqual(missing.returncode, 1)
        self.assertIn("0..4", missing.stderr)

        # A dry run sends and commits nothing.
        ends = self.kafka.end_offsets(DESTROY)
        dry = self.ok("thopter-dlq", "-b", self.b, "replay", "--class", "fly_unavailable", "--dry-run")
        self.assertIn("would replay 5, skipped 0 (filters), failed 0", dry.stdout)
        self.assertEqual(self.kafka.end_offsets(DESTROY), ends)
        self.assertEqual(set(self.kafka.committed("thopter-dlq-replay", DLQ).values()), {-1001})

        # The outage ends; the replay destroys the machines.
        self.fly.clear_faults()
        r = self.ok("thopter-dlq", "-b", self.b, "replay", "--class", "fly_unavailable", *x_props())
        self.assertIn("replayed 5, skipped 0 (filters), failed 0", r.stdout)
        wait_until(lambda: self.gone(ids), timeout=30, what="replayed destroys done")

        replayed = [m for m in self.kafka.read_all(DESTROY) if "thopter.replay.count" in headers_dict(m)]
        self.assertEqual(len(replayed), 5)
        for m in replayed:
            h = headers_dict(m)
            self.assertEqual(h["thopter.replay.count"], "1")
            self.assertFalse([k for k in h if k.startswith("thopter.dlq.")], h)
            key = m.key().decode()
            self.assertEqual(m.value(), originals_bytes[key], "the original value, byte for byte")
            self.assertEqual(m.partition(), originals[key][0], "the same key lands on the same partition")
        self.assertEqual(self.kafka.committed("thopter-dlq-replay", DLQ), self.kafka.end_offsets(DLQ))

        again = self.ok("thopter-dlq", "-b", self.b, "replay", *x_props())
        self.assertIn("replayed 0, skipped 0 (filters), failed 0", again.stdout)
        self.assertEqual(len(self.kafka.read_all(DLQ)), 5, "no new dead letters")
        self.assertEqual(self.consumers[0].stop(), 0)

    def test_replay_filters_and_replay_count_of_a_replayed_record(self):
        # Dead letters produced directly, as the consumer writes them.
        def dead_letter(key, cls, topic, count=None):
            h = [("origin", b"hub"), ("thopter.dlq.topic", topic.encode()), ("thopter.dlq.partition", b"0"),
                 ("thopter.dlq.offset", b"7"), ("thopter.dlq.error.class", cls.encode()),
                 ("thopter.dlq.error.step", b"validate"), ("thopter.dlq.error.message", b"m"),
                 ("thopter.dlq.failed_at", b"2026-01-01T00:00:00.000Z"), ("thopter.dlq.attempts", b"1")]
            if count is not None:
                h.append(("thopter.replay.count", str(count).encode()))
            self.kafka.produce(DLQ, json.dumps({"thopterId": key}), key=key, headers=h)

        dead_letter(machine_id(1), "capacity", PROVISION, count=2)
        dead_letter(machine_id(2), "invalid_request", DESTROY)
        dead_letter(machine_id(3), "capacity", DESTROY)
        self.kafka.produce(DLQ, b"no headers", key=b"junk")
        self.kafka.flush()

        r = self.ok("thopter-dlq", "-b", self.b, "replay", "--class", "capacity", "--topic", PROVISION)
        self.assertIn("replayed 1, skipped 3 (filters), failed 0", r.stdout)
        [m] = self.kafka.read_all(PROVISION)
        self.assertEqual(headers_dict(m), {"origin": "hub", "thopter.replay.count": "3"})
        # Records a filter skipped are committed past: a new group sees them.
        self.assertIn("replayed 0, skipped 0", self.ok("thopter-dlq", "-b", self.b, "replay").stdout)
        r = self.tool("thopter-dlq", "-b", self.b, "replay", "--group", "second", "--to", "3")
        self.assertEqual(r.returncode, 1, "the junk record cannot be replayed")
        self.assertIn("replayed 3, skipped 0 (filters), failed 1", r.stdout)
        self.assertIn("not a dead letter", r.stderr)
        self.assertEqual(self.kafka.committed("second", DLQ), {0: 4})


class TestBulkDestroy(ToolsTestCase):
    def test_fifty_ids_from_stdin_two_invalid_lines_skipped(self):
        self.start_fly()
        ids = self.seed(50, start=0x1000)
        text = "# from fly machines list\n" + "\n".join(ids[:25]) + "\nnot-a-machine\n\n" + \
            "\n".join(ids[25:]) + "\n148E21A3C96989\n"
        dry = self.ok("bulk-destroy", "-b", self.b, "--dry-run", input=text)
        self.assertIn("would send 50 destroy request(s) to thopter.destroy, skipped 2 invalid", dry.stdout)
        self.assertEqual(sum(self.kafka.end_offsets(DESTROY).values()), 0)

        r = self.ok("bulk-destroy", "-b", self.b, "-X", "linger.ms=5", input=text)
        self.assertEqual(r.stdout.strip().splitlines()[-1], "sent 50 destroy request(s), skipped 2 invalid")
        self.assertIn('line 27: "not-a-machine": not a fly machine id', r.stderr)
        self.assertIn('"148E21A3C96989"', r.stderr)

        records = self.kafka.read_all(DESTROY)
        self.assertEqual(sorted(m.key().decode() for m in records), sorted(ids))
        for m in records:
            v = json.loads(m.value())
            self.assertEqual(v["thopterId"], m.key().decode())
            self.assertEqual((v["reason"], v["source"]), ("bulk destroy", "bulk-destroy"))
            self.assertRegex(v["requestId"], r"^bulk-\d+-\d+$")
            self.assertEqual(m.partition(), murmur2_partition(m.key(), 6), "kafkajs' partitioner")

        self.start_consumer()
        wait_until(lambda: self.gone(ids), timeout=60, interval=0.3, what="all 50 machines destroyed")
        self.assertEqual(self.kafka.read_all(DLQ), [])


class TestSend(ToolsTestCase):
    def expectations(self, valid):
        with open(os.path.join(EXAMPLES, "expectations.json")) as f:
            exp = json.load(f)
        return sorted((name, e) for name, e in exp.items()
                      if e["kind"] in ("provision", "destroy") and e["valid"] == valid)

    def test_invalid_examples_are_refused_and_nothing_reaches_the_topics(self):
        before = {t: self.kafka.end_offsets(t) for t in (PROVISION, DESTROY)}
        cases = self.expectations(valid=False)
        self.assertGreater(len(cases), 100)
        for name, e in cases:
            path = os.path.join(EXAMPLES, name)
            r = self.tool("thopter-send", "-b", self.b, e["kind"], "--file", path)
            self.assertEqual(r.returncode, 1, "%s: %s" % (name, r.stderr))
            self.assertIn("%s: %s:" % (path, e["field"]), r.stderr, name)
            self.assertIn("nothing sent", r.stderr, name)
            self.assertEqual(r.stdout, "", name)

        # All or nothing: one bad line in a batch and nothing is sent.
        batch = '{"thopterId":"%s"}\n%s\n# a comment\n{"thopterId":"ABC"}\n' % (machine_id(1), machine_id(2))
        r = self.tool("thopter-send", "-b", self.b, "destroy", "-", input=batch)
        self.assertEqual(r.returncode, 1)
        self.assertIn("thopter-send: line 4: thopterId: must be 14 lowercase hex characters", r.stderr)
        r = self.tool("thopter-send", "-b", self.b, "destroy", machine_id(3), "nope")
        self.assertEqual(r.returncode, 1)
        self.assertIn("nope: thopterId:", r.stderr)
        r = self.tool("thopter-send", "-b", self.b, "provision", "--request-id", "r-1", "--repository", "a/b",
                      "--issue-number", "12x", "--issue-title", "t", "--issue-body", "")
        self.assertEqual(r.returncode, 1)
        self.assertIn("github.issueNumber:", r.stderr)
        self.assertIn("(--issue-number)", r.stderr)
        after = {t: self.kafka.end_offsets(t) for t in (PROVISION, DESTROY)}
        self.assertEqual(after, before)

    def test_valid_examples_are_sent_byte_for_byte_and_keyed(self):
        expected = {}
        for name, e in self.expectations(valid=True):
            path = os.path.join(EXAMPLES, name)
            r = self.ok("thopter-send", "-b", self.b, e["kind"], "--file", path)
            m = SENT_RE.match(r.stdout.strip())
            self.assertTrue(m, r.stdout)
            with open(path, "rb") as f:
                raw = f.read()
            raw = raw[:-1] if raw.endswith(b"\n") else raw
            doc = json.loads(raw)
            key = doc["requestId"] if e["kind"] == "provision" else doc["thopterId"]
            self.assertEqual(m.group(2), key)
            expected[(m.group(3), int(m.group(4)), int(m.group(5)))] = (key, raw)
        self.assertGreater(len(expected), 8)

        # Flags and stdin.
        r = self.ok("thopter-send", "-b", self.b, "provision", "--request-id", "req-flags-1",
                    "--repository", "telepath-computer/thopter-swarm", "--issue-number", "42",
                    "--issue-title", "Fix it", "--issue-body", "Body\nwith lines", "--gc", "default")
        flags_pos = SENT_RE.match(r.stdout.strip())
        r = self.ok("thopter-send", "-b", self.b, "destroy", "-", "--reason", "from stdin",
                    input="%s\n\n{\"thopterId\":\"%s\",\"requestId\":\"hub-9\"}\n" % (machine_id(5), machine_id(6)))
        self.assertEqual(len(r.stdout.splitlines()), 2)

        got = {}
        for t in (PROVISION, DESTROY):
            for m in self.kafka.read_all(t):
                got[(t, m.partition(), m.offset())] = m
        for pos, (key, raw) in expected.items():
            m = got[pos]
            self.assertEqual(m.key().decode(), key)
            self.assertEqual(m.value(), raw)
            if pos[0] == DESTROY:
                self.assertEqual(m.partition(), murmur2_partition(m.key(), 6))
        v = json.loads(got[(PROVISION, int(flags_pos.group(4)), int(flags_pos.group(5)))].value())
        self.assertEqual(v["github"], {"issueNumber": "42", "issueTitle": "Fix it", "issueBody": "Body\nwith lines"})
        self.assertEqual((v["requestId"], v["gc"], v["source"]), ("req-flags-1", "default", "thopter-send"))
        stdin_recs = {m.key().decode(): json.loads(m.value()) for m in got.values()
                      if m.key() in (machine_id(5).encode(), machine_id(6).encode())}
        self.assertEqual(stdin_recs[machine_id(5)]["reason"], "from stdin")
        self.assertRegex(stdin_recs[machine_id(5)]["requestId"], r"^send-\d+-[0-9a-f]{6}-1$")
        self.assertEqual(stdin_recs[machine_id(6)], {"thopterId": machine_id(6), "requestId": "hub-9"})

    def test_delivery_failure_exits_1(self):
        r = self.tool("thopter-send", "-b", "127.0.0.1:1", "-X", "message.timeout.ms=1500", "destroy",
                      machine_id(1))
        self.assertEqual(r.returncode, 1)
        self.assertIn("not delivered", r.stderr)
        self.assertIn("send again", r.stderr)


class TestCommandLine(unittest.TestCase):
    """Contract section 6: --help, --version, bad usage, no brokers."""

    def test_every_tool_follows_the_conventions(self):
        for tool, sub in (("thopter-send", ["destroy", machine_id(1)]), ("thopter-dlq", ["list"]),
                          ("bulk-destroy", [])):
            h = run_tool(tool, ["--help"])
            self.assertEqual(h.returncode, 0, tool)
            self.assertIn("Usage", h.stdout)
            self.assertIn("-X key=value", h.stdout)
            v = run_tool(tool, ["--version"])
            self.assertEqual(v.returncode, 0, tool)
            self.assertRegex(v.stdout, r"^%s \d+\.\d+\.\d+" % re.escape(tool))
            bad = run_tool(tool, sub + ["--no-such-option"], input="")
            self.assertEqual(bad.returncode, 2, tool)
            self.assertIn("--no-such-option", bad.stderr)
            self.assertIn("--help", bad.stderr)
            nob = run_tool(tool, sub, input=machine_id(1) + "\n")
            self.assertEqual(nob.returncode, 2, "%s without brokers: %s" % (tool, nob.stderr))
            self.assertIn("KAFKA_BROKERS", nob.stderr)
        for args in (["frobnicate"], ["destroy"], ["provision", "--request-id", "x"], ["destroy", "-X", "nokey"]):
            self.assertEqual(run_tool("thopter-send", args + ["-b", "h:1"], input="").returncode, 2, args)
        for args in (["show"], ["list", "--from", "x"], ["replay", "--class", "nope"], ["show", "a:b"]):
            self.assertEqual(run_tool("thopter-dlq", args + ["-b", "h:1"]).returncode, 2, args)


if __name__ == "__main__":
    unittest.main()
