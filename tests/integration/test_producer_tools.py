"""The producer tools end to end: thopter-send, thopter-dlq and
producer-tools/bulk-destroy (kcat) against thopter-devbroker, with the real
thopter-consumer and the fake fly Machines API where a flow needs them."""
import json
import os
import pty
import re
import select
import signal
import time
import unittest

from flyfake import FlyFake
from thopter_harness import (GROUP_PROPS, SOURCE_DIR, TOKEN, start_broker, Kafka, ThopterConsumer, headers_dict,
                             machine_id, wait_until)
from tools_harness import murmur2_partition, run_tool, tool_path

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
        # Each replayed dead letter got a mark on the DLQ (after them: not yet examined by the group).
        marks = [m for m in self.kafka.read_all(DLQ) if "thopter.replay.of" in headers_dict(m)]
        self.assertEqual(len(marks), 5)
        by_of = {headers_dict(m)["thopter.replay.of"]: headers_dict(m) for m in marks}
        self.assertEqual(set(by_of), {"%d/%d" % (j["partition"], j["offset"]) for j in js})
        for m in marks:
            self.assertIsNone(m.key())
            self.assertIsNone(m.value())
            h = headers_dict(m)
            self.assertRegex(h["thopter.replay.to"], r"^thopter\.destroy \[\d\] @\d+$")
            self.assertRegex(h["thopter.replay.at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertIn("@", h["thopter.replay.by"])

        # A second operator sees what was replayed; the marks are not dead letters.
        listed = [json.loads(line) for line in
                  self.ok("thopter-dlq", "-b", self.b, "list", "--json").stdout.splitlines()]
        self.assertEqual(len(listed), 5)
        for row in listed:
            mark = by_of["%d/%d" % (row["partition"], row["offset"])]
            self.assertEqual(row["replayed"], "replayed %s by %s -> %s" % (
                mark["thopter.replay.at"], mark["thopter.replay.by"], mark["thopter.replay.to"]))
        text = self.ok("thopter-dlq", "-b", self.b, "list").stdout
        self.assertEqual(text.count("(replayed "), 5)
        shown = self.ok("thopter-dlq", "-b", self.b, "show", "%d:%d" % (js[0]["partition"], js[0]["offset"])).stdout
        self.assertIn("replay:      replayed ", shown)

        again = self.ok("thopter-dlq", "-b", self.b, "replay", *x_props())
        self.assertIn("replayed 0, skipped 0 (filters), failed 0", again.stdout)
        self.assertEqual(self.kafka.committed("thopter-dlq-replay", DLQ), self.kafka.end_offsets(DLQ))
        self.assertEqual(len([m for m in self.kafka.read_all(DLQ) if "thopter.dlq.topic" in headers_dict(m)]), 5,
                         "no new dead letters")
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
            value = {"thopterId": key} if topic == DESTROY else {
                "requestId": key, "repository": "owner/name",
                "github": {"issueNumber": 7, "issueTitle": "t", "issueBody": ""}}
            self.kafka.produce(DLQ, json.dumps(value), key=key, headers=h)

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


    def test_empty_input_warns(self):
        # A filter upstream that matched nothing (issue 22: a jq precedence slip) is said, not a quiet 0.
        for text in ("", "# only a comment\n\n"):
            r = self.ok("bulk-destroy", "-b", self.b, input=text)
            self.assertIn("warning: no machine id in the input", r.stderr)
            self.assertIn("sent 0 destroy request(s)", r.stdout)
        self.assertEqual(sum(self.kafka.end_offsets(DESTROY).values()), 0)


class TestDevbroker(unittest.TestCase):
    def test_started_in_the_background_of_a_terminal_it_keeps_running(self):
        """README's "thopter-devbroker &" in an interactive shell: never "Stopped (tty input)"."""
        pid, fd = pty.fork()
        if pid == 0:
            os.execvp("bash", ["bash", "--norc", "--noprofile", "-i"])
        self.addCleanup(os.close, fd)
        out = b""

        def read_until(pattern, timeout):
            nonlocal out
            end = time.time() + timeout
            while time.time() < end and not re.search(pattern, out):
                r, _, _ = select.select([fd], [], [], 0.2)
                if r:
                    try:
                        out += os.read(fd, 65536)
                    except OSError:
                        break
            return re.search(pattern, out)

        try:
            os.write(fd, b"%s &\n" % tool_path("thopter-devbroker").encode())
            self.assertTrue(read_until(rb"bootstrap\.servers=127\.0\.0\.1:\d+", 20), out)
            time.sleep(1)
            # printf: the echoed command line holds "jobs-%s", only the output "jobs-done".
            os.write(fd, b"jobs -l; printf 'jobs-%s\\n' done\n")
            self.assertTrue(read_until(rb"jobs-done", 10), out)
            self.assertRegex(out, rb"Running\s+\S*thopter-devbroker")
            self.assertNotIn(b"Stopped", out)
            os.write(fd, b"kill %1; wait; exit\n")
            read_until(rb"exit\s*$", 10)
        finally:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)


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

    def test_json_output_names_where_each_request_went(self):
        r = self.ok("thopter-send", "-b", self.b, "--json", "destroy", machine_id(7), machine_id(8))
        rows = [json.loads(line) for line in r.stdout.splitlines()]
        got = {(m.key().decode(), m.partition(), m.offset()) for m in self.kafka.read_all(DESTROY)}
        self.assertEqual({(x["key"], x["partition"], x["offset"]) for x in rows}, got)
        self.assertEqual({(x["kind"], x["topic"]) for x in rows}, {("destroy", DESTROY)})
        dry = self.ok("thopter-send", "--json", "--dry-run", "destroy", machine_id(9), "--reason", "r")
        row = json.loads(dry.stdout)
        self.assertEqual((row["key"], row["value"]["thopterId"], row["value"]["reason"]),
                         (machine_id(9), machine_id(9), "r"))

    def test_delivery_failure_exits_1(self):
        r = self.tool("thopter-send", "-b", "127.0.0.1:1", "-X", "message.timeout.ms=1500", "destroy",
                      machine_id(1))
        self.assertEqual(r.returncode, 1)
        # The topic check finds no broker first (topic_check.h): nothing was sent.
        self.assertIn("cannot reach the brokers", r.stderr)
        self.assertIn("nothing sent; send again", r.stderr)


class TestTopicsChecked(ToolsTestCase):
    """Typos refused (issue 22): a topic that does not exist is named, exit 1, and never created."""

    def topics(self):
        return set(self.kafka.producer.list_topics(timeout=10).topics)

    def assert_refused(self, r, topic):
        self.assertEqual(r.returncode, 1, "stdout: %s\nstderr: %s" % (r.stdout, r.stderr))
        self.assertIn("topic %s does not exist" % topic, r.stderr)
        self.assertIn("never create topics", r.stderr)
        self.assertEqual(r.stdout, "")

    def test_send_refuses_a_topic_that_does_not_exist(self):
        r = self.tool("thopter-send", "-b", self.b, "-t", "thopter.destory", "destroy", machine_id(1))
        self.assert_refused(r, "thopter.destory")
        self.assertIn("-t/--topic or THOPTER_DESTROY_TOPIC", r.stderr)
        r = self.tool("thopter-send", "-b", self.b, "provision", "--file",
                      os.path.join(EXAMPLES, "valid", "provision-minimal.json"),
                      env={"THOPTER_PROVISION_TOPIC": "thopter.provison"})
        self.assert_refused(r, "thopter.provison")
        self.assertNotIn("thopter.destory", self.topics())
        self.assertNotIn("thopter.provison", self.topics())
        self.assertEqual(sum(self.kafka.end_offsets(DESTROY).values()), 0)

    def test_bulk_destroy_refuses_a_topic_that_does_not_exist(self):
        r = self.tool("bulk-destroy", "-b", self.b, "-t", "thopter.destory", input=machine_id(1) + "\n")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("topic thopter.destory does not exist", r.stderr)
        self.assertNotIn("thopter.destory", self.topics())

    def test_dlq_refuses_a_dead_letter_topic_that_does_not_exist(self):
        for args in (["list"], ["list", "--json"], ["show", "0"], ["replay"], ["replay", "--dry-run"]):
            r = self.tool("thopter-dlq", "-b", self.b, "--dlq-topic", "nope", *args)
            self.assert_refused(r, "nope")
        r = self.tool("thopter-dlq", "-b", self.b, "list", env={"THOPTER_DLQ_TOPIC": "thopter.dql"})
        self.assert_refused(r, "thopter.dql")
        self.assertFalse({"nope", "thopter.dql"} & self.topics())

    def test_replay_to_an_original_topic_that_does_not_exist_is_refused_and_kept(self):
        hdrs = [("thopter.dlq.topic", b"thopter.gone"), ("thopter.dlq.partition", b"0"),
                ("thopter.dlq.offset", b"3"), ("thopter.dlq.error.class", b"fly_unavailable")]
        self.kafka.produce(DLQ, b'{"thopterId":"%s"}' % machine_id(1).encode(), key=machine_id(1).encode(),
                           headers=hdrs)
        self.kafka.flush()
        for _ in range(2):  # the group stays at it: a second run reports it again
            # (--to-topic: without it replay only ever sends to the request topics)
            r = self.tool("thopter-dlq", "-b", self.b, "replay", "--group", "g-gone", "--to-topic", "thopter.gone")
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("-> thopter.gone: topic thopter.gone does not exist: not replayed", r.stderr)
            self.assertIn("replayed 0, skipped 0 (filters), failed 1", r.stdout)
        self.assertNotIn("thopter.gone", self.topics())

    def test_reaper_apply_refuses_a_destroy_topic_that_does_not_exist(self):
        self.start_fly()
        env = {"APP_NAME": "thopters", "FLY_DEPLOY_KEY": TOKEN, "FLY_API_BASE": self.fly.base_url,
               "KAFKA_BROKERS": self.b, "THOPTER_DESTROY_TOPIC": "thopter.destory"}
        r = self.tool("thopter-reaper", "--apply", "--once", env=env)
        self.assert_refused(r, "thopter.destory")
        self.assertNotIn("thopter.destory", self.topics())
        # A dry run publishes nothing and needs no topic.
        self.ok("thopter-reaper", "--once", env=env)


class TestDlqTimeAndJson(ToolsTestCase):
    """thopter-dlq list/replay --since/--until (failed_at), and show --json."""

    def dead_letter(self, n, failed_at):
        hdrs = [("thopter.dlq.topic", b"thopter.destroy"), ("thopter.dlq.partition", b"0"),
                ("thopter.dlq.offset", str(n).encode()), ("thopter.dlq.error.class", b"fly_unavailable"),
                ("thopter.dlq.error.step", b"delete"), ("thopter.dlq.attempts", b"6")]
        if failed_at:
            hdrs.append(("thopter.dlq.failed_at", failed_at.encode()))
        self.kafka.produce(DLQ, b'{"thopterId":"%s"}' % machine_id(n).encode(), key=machine_id(n).encode(),
                           headers=hdrs)

    def test_time_filters_and_show_json(self):
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        self.dead_letter(1, "2026-01-01T00:00:00.000Z")
        self.dead_letter(2, "2026-06-01T12:00:00.000Z")
        self.dead_letter(3, now)
        self.dead_letter(4, None)  # no failed_at: the record's own timestamp (now)
        self.kafka.flush()

        def keys(*args):
            r = self.ok("thopter-dlq", "-b", self.b, "list", "--json", *args)
            return [json.loads(line)["key"] for line in r.stdout.splitlines()]
        self.assertEqual(keys(), [machine_id(i) for i in (1, 2, 3, 4)])
        self.assertEqual(keys("--since", "2026-03-01", "--until", "2026-07-01T00:00"), [machine_id(2)])
        self.assertEqual(keys("--since", "1h"), [machine_id(3), machine_id(4)])
        self.assertEqual(keys("--until", "2026-01-01T00:00:00Z"), [machine_id(1)])
        self.assertEqual(keys("--since", "1h", "--key", machine_id(4)), [machine_id(4)])
        dry = self.ok("thopter-dlq", "-b", self.b, "replay", "--dry-run", "--since", "2026-05-01",
                      "--until", "2026-06-02")
        self.assertIn("would replay 1, skipped 3 (filters)", dry.stdout)
        for bad in ("yesterday", "1796688000", "2026-13-01"):
            r = self.tool("thopter-dlq", "-b", self.b, "list", "--since", bad)
            self.assertEqual(r.returncode, 2, bad)
            self.assertIn("--since %s: expected a UTC time" % bad, r.stderr)

        r = self.ok("thopter-dlq", "-b", self.b, "show", "--json", "1")
        doc = json.loads(r.stdout)
        self.assertEqual((doc["topic"], doc["partition"], doc["offset"]), (DLQ, 0, 1))
        self.assertEqual(doc["key"], machine_id(2))
        self.assertEqual(doc["valueJson"], {"thopterId": machine_id(2)})
        self.assertEqual(doc["value"], '{"thopterId":"%s"}' % machine_id(2))
        self.assertIn({"name": "thopter.dlq.failed_at", "value": "2026-06-01T12:00:00.000Z"}, doc["headers"])
        self.assertIsNone(doc["reduced"])
        self.assertEqual(self.tool("thopter-dlq", "-b", self.b, "show", "--json", "--since", "1h", "1").returncode, 2)


class TestStatus(ToolsTestCase):
    """thopter-status: committed, end, lag per partition; /metrics of a running consumer; --json."""

    def status(self, *args):
        r = self.ok("thopter-status", "-b", self.b, "--json", *args)
        return [json.loads(line) for line in r.stdout.splitlines()]

    def test_lag_before_and_after_the_consumer_and_its_metrics(self):
        self.start_fly()
        ids = self.seed(4, start=0x2000)
        self.ok("thopter-send", "-b", self.b, "destroy", *ids)
        rows = [r for r in self.status() if "partition" in r]
        destroy = [r for r in rows if r["group"] == "thopter-destroyer"]
        self.assertEqual(sorted(r["partition"] for r in destroy), list(range(6)))
        self.assertEqual(sum(r["lag"] for r in destroy), 4)
        self.assertTrue(all(r["committed"] is None for r in destroy))
        self.assertEqual([r["topic"] for r in rows if r["group"] == "thopter-provisioner"], ["thopter.provision"])
        members = [r for r in self.status() if "members" in r]
        self.assertEqual(len(members), 2)  # the mock answers no DescribeGroups: said, not fatal

        c = self.start_consumer()
        wait_until(lambda: self.gone(ids), timeout=60, interval=0.3, what="the 4 machines destroyed")
        wait_until(lambda: sum(r["lag"] for r in self.status("-g", "thopter-destroyer:thopter.destroy")
                               if "lag" in r) == 0, timeout=30, interval=0.5, what="lag 0 once committed")
        rows = [r for r in self.status("-g", "thopter-destroyer:thopter.destroy") if "partition" in r]
        self.assertEqual(sum(r["end"] for r in rows), 4)
        self.assertTrue(all(r["committed"] == r["end"] for r in rows if r["end"]))

        port = c.metrics_port()
        m = [r for r in self.status("-g", "thopter-destroyer:thopter.destroy", "-m", "127.0.0.1:%d" % port)
             if "metrics" in r][0]
        self.assertEqual(m["inFlight"], {"thopter.destroy": 0})
        self.assertEqual(m["circuitOpen"], False)
        self.assertIn(1, m["ready"].values())

        text = self.ok("thopter-status", "-b", self.b, "-m", "127.0.0.1:%d" % port).stdout
        self.assertRegex(text, r"(?m)^thopter-destroyer\s+thopter\.destroy\s+\d+\s+")
        self.assertIn("consumer 127.0.0.1:%d: in flight thopter.destroy 0" % port, text)

    def test_a_missing_topic_or_metrics_address_fails(self):
        r = self.tool("thopter-status", "-b", self.b, "-g", "g:thopter.nope")
        self.assertEqual(r.returncode, 1)
        self.assertIn("topic thopter.nope does not exist", r.stderr)
        self.assertNotIn("thopter.nope", set(self.kafka.producer.list_topics(timeout=10).topics))
        r = self.tool("thopter-status", "-b", self.b, "-m", "127.0.0.1:1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("http://127.0.0.1:1/metrics", r.stderr)
        self.assertEqual(self.tool("thopter-status", "-b", self.b, "-g", "nocolon").returncode, 2)


class TestCommandLine(unittest.TestCase):
    """Contract section 6: --help, --version, bad usage, no brokers."""

    def test_every_tool_follows_the_conventions(self):
        for tool, sub in (("thopter-send", ["destroy", machine_id(1)]), ("thopter-dlq", ["list"]),
                          ("bulk-destroy", []), ("thopter-status", [])):
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
