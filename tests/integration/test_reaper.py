"""thopter-reaper end to end: the real binary against the fake fly Machines API
(seeded with machines of every kind and age), thopter-devbroker, the real
thopter-consumer --role destroy for the requests it publishes, and a real sshd
on loopback with a tmux session for the idle check."""
import json
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.request

from flyfake import FlyFake
from sshd_harness import Sshd, _free_port
from thopter_harness import (BUILD_DIR, SANITIZER_RE, SOURCE_DIR, TOKEN, start_broker, Kafka, ThopterConsumer,
                             machine_id, tmo, wait_until)
from tools_harness import murmur2_partition, run_tool, tool_env

DESTROY = "thopter.destroy"
H, M = 3600, 60
LINE_RE = re.compile(r"^(destroy|would-destroy|adopt|would-adopt|keep|unchecked|skip|failed) (\S+) (\S+) (\S+): (.*)$")
SUMMARY_RE = re.compile(r"^summary \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z: (.*)$")
AT_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
HOST_KEY_FOR = os.path.join(BUILD_DIR, "tests", "host_key_for")


def ago(seconds):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds))


def agent(request_id=None, marked=False, role="agent"):
    md = {"thopter_role": role}
    if request_id:
        md["thopter_request_id"] = request_id
    if marked:
        md["thopter_provisioned"] = request_id
    return md


# (n, name, state, created ago, updated ago, metadata, dry-run verdict, start of the reason)
# verdict None: the machine is not listed at all (fly_machine_list leaves out
# machines destroying or destroyed, which the fake returns here).
FLEET = [
    (1, "thopter-fresh", "started", 10 * M, 10 * M, agent("r-fresh", True), "keep",
     "started, provisioned, created 10m"),
    (2, "thopter-old", "started", 80 * H, 1 * M, agent("r-old", True), "would-destroy",
     "lifetime: created 80h"),
    (3, "thopter-orphan", "started", 2 * H, 2 * H, agent("r-orphan"), "would-destroy",
     "orphan: no thopter_provisioned mark and no completed provision event, request r-orphan has no "
     "event, created 2h ago, longer than THOPTER_ORPHAN_GRACE 1h"),
    (4, "thopter-provisioning", "started", 5 * M, 5 * M, agent("r-prov"), "keep",
     "provisioning: no thopter_provisioned mark yet, created 5m"),
    # What a failed provision's clean-up left (its dead letter's thopter.dlq.left_machine).
    (5, "thopter-left-behind", "stopped", 3 * H, 3 * H, agent("r-left"), "would-destroy",
     "orphan: no thopter_provisioned mark and no completed provision event, request r-left"),
    # No thopter metadata at all (the original hub's thopters, or one made by hand): unknown, kept.
    (6, "thopter-manual", "started", 2 * H, 2 * H, {}, "keep",
     "unknown: no thopter metadata"),
    (7, "thopter-stopped", "stopped", 5 * H, 2 * H, agent("r-stopped", True), "would-destroy",
     "stopped: stopped since updated_at 2h ago, longer than THOPTER_REAP_STOPPED_AFTER 30m"),
    (8, "thopter-stopped-new", "stopped", 5 * H, 5 * M, agent("r-stopped-new", True), "keep",
     "stopped since updated_at 5m"),
    (9, "thopter-failed", "failed", 5 * H, 1 * H, agent("r-failed", True), "would-destroy",
     "stopped: failed since updated_at 1h ago"),
    (10, "thopter-failed-new", "failed", 5 * H, 10 * M, agent("r-failed-new", True), "keep",
     "failed since updated_at 10m"),
    (11, "gc-default", "started", 900 * H, 900 * H, {}, "skip", "not a thopter"),
    (12, "hub-1700000000", "started", 900 * H, 900 * H, {}, "skip", "not a thopter"),
    (13, "metadata", "stopped", 900 * H, 900 * H, {}, "skip", "not a thopter"),
    (14, "thopter-golden", "stopped", 900 * H, 900 * H, agent(role="golden_claude"), "skip",
     "not an agent: thopter_role is \"golden_claude\""),
    (15, "thopter-gone", "destroyed", 900 * H, 900 * H, agent("r-gone", True), None, None),
    (16, "thopter-going", "destroying", 900 * H, 900 * H, agent("r-going", True), None, None),
]
DOOMED = {machine_id(0x500 + n): reason.split(":")[0] for n, _, _, _, _, _, v, reason in FLEET
          if v == "would-destroy"}


def validate_with_ajv(values):
    """[(valid, errors)] of each JSON value against schemas/destroy-request.schema.json, by
    ajv (draft 2020-12), the validator tests/unit/test_schema_agreement.py uses."""
    tools = os.path.join(SOURCE_DIR, "tests", "tools")
    node = shutil.which("node")
    if not node or not os.path.isdir(os.path.join(tools, "node_modules", "ajv")):
        raise AssertionError("node and tests/tools/node_modules are needed: run deploy/setup.sh")
    script = ('const A=require("ajv/dist/2020"),fs=require("fs");'
              'const v=new A({strict:true,allowUnionTypes:true,allErrors:true})'
              '.compile(JSON.parse(fs.readFileSync(process.argv[1],"utf8")));'
              'const out=fs.readFileSync(0,"utf8").split("\\n").filter(Boolean)'
              '.map(l=>[v(JSON.parse(l)),v.errors]);console.log(JSON.stringify(out));')
    p = subprocess.run([node, "-e", script, os.path.join(SOURCE_DIR, "schemas", "destroy-request.schema.json")],
                       input="\n".join(values) + "\n", capture_output=True, text=True, cwd=tools, timeout=60)
    if p.returncode != 0:
        raise AssertionError("ajv: " + p.stderr)
    return json.loads(p.stdout)


class ReaperTestCase(unittest.TestCase):
    def setUp(self):
        self.fly = FlyFake()
        self.fly.start(token=TOKEN, list_includes_destroyed=True, destroyed_visible_ms=600000)
        self.addCleanup(self.fly.stop)
        self.broker = start_broker()
        self.addCleanup(self.broker.stop)
        self.kafka = Kafka(self.broker.bootstrap)
        self.addCleanup(self.kafka.close)

    def env(self, **extra):
        e = {"APP_NAME": "thopters", "FLY_DEPLOY_KEY": TOKEN, "FLY_API_BASE": self.fly.base_url,
             "KAFKA_BROKERS": self.broker.bootstrap, "THOPTER_RETRY_BASE_MS": "50",
             "THOPTER_RETRY_MAX_MS": "200", "THOPTER_FLY_TIMEOUT": "5"}
        e.update(extra)
        return e

    def reaper(self, *args, env=None, expect=0):
        r = run_tool("thopter-reaper", list(args), env=env or self.env(), timeout=60)
        if expect is not None:
            self.assertEqual(r.returncode, expect, "exit %d\nstdout:\n%s\nstderr:\n%s"
                             % (r.returncode, r.stdout, r.stderr))
        return r

    def seed_fleet(self):
        for n, name, state, created, updated, md, _, _ in FLEET:
            self.fly.seed_machine(id=machine_id(0x500 + n), name=name, state=state, metadata=md,
                                  created_at=ago(created), updated_at=ago(updated))

    def parse(self, out):
        """{machine id: (verdict, name, state, reason)} and the summary text."""
        lines, summary = {}, None
        for line in out.splitlines():
            m = LINE_RE.match(line)
            if m:
                self.assertNotIn(m.group(2), lines, "one line per machine")
                lines[m.group(2)] = (m.group(1), m.group(3), m.group(4), m.group(5))
                continue
            s = SUMMARY_RE.match(line)
            self.assertTrue(s, "unexpected output line %r" % line)
            self.assertIsNone(summary, "one summary line")
            summary = s.group(1)
        self.assertIsNotNone(summary, "a summary line")
        return lines, summary

    def mutating_calls(self):
        return [c for c in self.fly.calls() if c["method"] != "GET"]


class TestFleet(ReaperTestCase):
    """Machines of every kind: what a dry run lists, what --apply publishes."""

    def check_listing(self, out, apply):
        lines, summary = self.parse(out)
        want = {machine_id(0x500 + n): (v, name, state, reason)
                for n, name, state, _, _, _, v, reason in FLEET if v}
        self.assertEqual(set(lines), set(want), "exactly the listed machines, destroyed ones left out")
        for mid, (verdict, name, state, reason) in want.items():
            got = lines[mid]
            if apply and verdict == "would-destroy":
                verdict = "destroy"
            self.assertEqual(got[:3], (verdict, name, state), mid)
            self.assertTrue(got[3].startswith(reason), "%s: %r does not start with %r" % (name, got[3], reason))
        return lines, summary

    def test_dry_run_lists_every_machine_with_its_reason_and_publishes_nothing(self):
        self.seed_fleet()
        # The fake does list the destroying/destroyed ones; the reaper leaves them out.
        req = urllib.request.Request(self.fly.base_url + "/v1/apps/thopters/machines",
                                     headers={"Authorization": "FlyV1 " + TOKEN})
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = {m["name"] for m in json.loads(resp.read())}
        self.assertTrue({"thopter-gone", "thopter-going"} <= raw)

        r = self.reaper("--once")  # brokers are set: a dry run must still send nothing
        lines, summary = self.check_listing(r.stdout, apply=False)
        self.assertEqual(summary, "14 machines: 5 would be destroyed (lifetime 1, orphan 2, stopped 2), "
                                  "5 kept (0 unchecked, 1 unknown), 4 skipped, 0 failed; dry run: nothing published "
                                  "(--apply publishes)")
        self.assertEqual(set(self.kafka.end_offsets(DESTROY).values()), {0}, "nothing published")
        self.assertEqual(self.mutating_calls(), [], "the reaper itself changes nothing on fly")
        self.assertEqual(r.stderr, "")

    def test_apply_publishes_exactly_those_destroy_requests(self):
        self.seed_fleet()
        r = self.reaper("--once", "--apply")
        lines, summary = self.check_listing(r.stdout, apply=True)
        self.assertEqual(summary, "14 machines: 5 destroy requests published (lifetime 1, orphan 2, "
                                  "stopped 2), 5 kept (0 unchecked, 1 unknown), 4 skipped, 0 failed")

        records = self.kafka.read_all(DESTROY)
        self.assertEqual(sorted(m.key().decode() for m in records), sorted(DOOMED))
        values = []
        for m in records:
            key = m.key().decode()
            v = json.loads(m.value())
            values.append(m.value().decode())
            self.assertEqual(set(v), {"thopterId", "requestId", "reason", "source", "createdAt"})
            self.assertEqual(v["thopterId"], key)
            self.assertRegex(v["requestId"], r"^reap-%s-\d{12}$" % key)
            self.assertEqual(v["source"], "reaper")
            self.assertRegex(v["createdAt"], AT_RE)
            self.assertTrue(v["reason"].startswith(DOOMED[key] + ": "), v["reason"])
            self.assertEqual(v["reason"], lines[key][3].split(" -> ")[0], "the printed reason is the sent one")
            self.assertEqual(m.partition(), murmur2_partition(m.key(), 6), "murmur2_random, as kafkajs")
            self.assertTrue(lines[key][3].endswith(" -> %s [%d] @%d" % (DESTROY, m.partition(), m.offset())),
                            lines[key])
        for (ok, errors), value in zip(validate_with_ajv(values), values):
            self.assertTrue(ok, "%s: %s" % (value, errors))
        self.assertEqual(self.mutating_calls(), [])

    def test_json_listing_matches_the_text_one(self):
        self.seed_fleet()
        text_lines, _ = self.check_listing(self.reaper("--once").stdout, apply=False)
        r = self.reaper("--once", "--apply", "--json")
        rows = [json.loads(line) for line in r.stdout.splitlines()]
        summary = rows.pop()
        self.assertEqual(summary, {"summary": summary["summary"], "apply": True, "machines": 14, "destroy": 5,
                                   "byRule": {"lifetime": 1, "orphan": 2, "stopped": 2}, "kept": 5,
                                   "unchecked": 0, "unknown": 1, "skipped": 4, "failed": 0, "notLookedAt": 0})
        by_id = {row["id"]: row for row in rows}
        self.assertEqual(set(by_id), set(text_lines))
        records = {m.key().decode(): m for m in self.kafka.read_all(DESTROY)}
        for mid, row in by_id.items():
            verdict = text_lines[mid][0]
            self.assertEqual(row["verdict"], "destroy" if verdict == "would-destroy" else verdict, mid)
            self.assertEqual((row["name"], row["state"]), text_lines[mid][1:3])
            if row["verdict"] == "destroy":
                m = records[mid]
                self.assertEqual((row["topic"], row["partition"], row["offset"]),
                                 (DESTROY, m.partition(), m.offset()))
                self.assertEqual(json.loads(m.value())["reason"], row["reason"])
                self.assertIn(row["rule"], ("lifetime", "orphan", "stopped"))

    def test_a_request_the_consumer_would_refuse_is_not_sent(self):
        # fly ids are opaque (15 characters happen); the contract's thopterId is 14 hex.
        self.fly.seed_machine(id="a5c5de9ce64ca12", name="thopter-long-id", metadata=agent("r-l", True),
                              created_at=ago(100 * H))
        self.fly.seed_machine(id=machine_id(0x600), name="thopter-ok-id", metadata=agent("r-o", True),
                              created_at=ago(100 * H))
        r = self.reaper("--once", "--apply", expect=1)
        lines, summary = self.parse(r.stdout)
        self.assertEqual(lines["a5c5de9ce64ca12"][0], "failed")
        self.assertIn("not sent: the request would be invalid: thopterId", lines["a5c5de9ce64ca12"][3])
        self.assertEqual(lines[machine_id(0x600)][0], "destroy")
        self.assertIn("a5c5de9ce64ca12: cannot request its destruction", r.stderr)
        self.assertIn("1 destroy request published (lifetime 1)", summary)
        self.assertIn("1 failed", summary)
        self.assertEqual([m.key().decode() for m in self.kafka.read_all(DESTROY)], [machine_id(0x600)])


EVENTS = "thopter.events"
OWN = 0x700


def event(request_id, state, thopter_id=None, kind="provision"):
    e = {"requestId": request_id, "kind": kind, "state": state, "attempt": 1,
         "at": "2026-01-01T00:00:00.000Z", "elapsedMs": 5}
    if thopter_id:
        e["thopterId"] = thopter_id
    return e


# Ownership is evidence (contract section 6): (n, name, created ago, metadata, events of its request,
# verdict, start of the reason). Every machine here is older than THOPTER_ORPHAN_GRACE (1h) but the young one.
OWNERSHIP = [
    # The original hub's thopters carry no metadata at all: unknown, kept whatever their age.
    (1, "thopter-legacy", 5 * H, {}, [], "keep", "unknown: no thopter metadata"),
    (2, "thopter-legacy-old", 100 * H, {}, [], "keep", "unknown: no thopter metadata"),
    (3, "thopter-marked", 3 * H, agent("r-marked", True), [], "keep", "started, provisioned"),
    # Completed, but the mark write failed: the completed event owns it.
    (4, "thopter-event-owned", 3 * H, agent("r-evt"), ["started", "step", "completed"], "keep",
     "started, owned: a completed provision event (request r-evt) names it"),
    (5, "thopter-in-flight", 2 * H, agent("r-fly"), ["started", "step"], "keep",
     "in flight: no thopter_provisioned mark yet, the latest event of request r-fly is step"),
    # A failed provision whose clean-up gave up (its dead letter names it in thopter.dlq.left_machine).
    (6, "thopter-left", 3 * H, agent("r-left"), ["started", "failed"], "would-destroy",
     "orphan: no thopter_provisioned mark and no completed provision event, request r-left failed"),
    (7, "thopter-true-orphan", 3 * H, agent("r-orphan"), [], "would-destroy",
     "orphan: no thopter_provisioned mark and no completed provision event, request r-orphan has no event"),
    (8, "thopter-young", 10 * M, agent("r-young"), [], "keep", "provisioning: no thopter_provisioned mark yet"),
]


class TestOwnership(ReaperTestCase):
    """Never destroy a live agent: only a machine no request owns is an orphan."""

    def seed(self):
        for n, name, created, md, states, _, _ in OWNERSHIP:
            mid = machine_id(OWN + n)
            self.fly.seed_machine(id=mid, name=name, state="started", metadata=md,
                                  created_at=ago(created), updated_at=ago(created))
            for st in states:
                self.kafka.produce(EVENTS, event(md["thopter_request_id"], st, mid if st != "started" else None),
                                   key=md["thopter_request_id"])
        # Events of other requests and kinds do not count.
        self.kafka.produce(EVENTS, event("r-other", "completed", machine_id(0x7ff)), key="r-other")
        self.kafka.produce(EVENTS, event("d-1", "completed", machine_id(OWN + 7), kind="destroy"), key="d-1")
        self.kafka.produce(EVENTS, b"not json", key="junk")
        self.kafka.produce("thopter.dlq", json.dumps({"requestId": "r-left"}), key="r-left",
                           headers=[("thopter.dlq.topic", b"thopter.provision"),
                                    ("thopter.dlq.error.class", b"ssh_failed"),
                                    ("thopter.dlq.left_machine", machine_id(OWN + 6).encode())])
        self.kafka.flush()

    def verdicts(self, out):
        lines, summary = self.parse(out)
        return {mid: (v, reason) for mid, (v, _, _, reason) in lines.items()}, summary

    def check(self, got, apply):
        for n, name, _, _, _, verdict, reason in OWNERSHIP:
            v, why = got[machine_id(OWN + n)]
            if apply and verdict == "would-destroy":
                verdict = "destroy"
            self.assertEqual(v, verdict, "%s: %s" % (name, why))
            self.assertTrue(why.startswith(reason), "%s: %r does not start with %r" % (name, why, reason))

    def test_dry_run_keeps_every_owned_and_unknown_machine(self):
        self.seed()
        r = self.reaper("--once")
        got, summary = self.verdicts(r.stdout)
        self.check(got, apply=False)
        self.assertIn("2 would be destroyed (orphan 2), 6 kept (0 unchecked, 2 unknown)", summary)
        self.assertEqual(set(self.kafka.end_offsets(DESTROY).values()), {0})
        self.assertEqual(self.mutating_calls(), [])

    def test_apply_destroys_only_the_orphans(self):
        self.seed()
        r = self.reaper("--once", "--apply")
        got, summary = self.verdicts(r.stdout)
        self.check(got, apply=True)
        self.assertEqual(sorted(m.key().decode() for m in self.kafka.read_all(DESTROY)),
                         sorted([machine_id(OWN + 6), machine_id(OWN + 7)]))
        self.assertEqual(self.mutating_calls(), [])

    def test_without_the_events_topic_no_unmarked_machine_is_destroyed(self):
        self.seed()
        env = self.env()
        del env["KAFKA_BROKERS"]
        r = self.reaper("--once", env=env)
        got, summary = self.verdicts(r.stdout)
        for n in (4, 5, 6, 7):
            v, why = got[machine_id(OWN + n)]
            self.assertEqual(v, "unchecked", why)
            self.assertIn("owner unknown: no thopter_provisioned mark and thopter.events not read", why)
        self.assertIn("0 would be destroyed, 8 kept (4 unchecked, 2 unknown)", summary)

    def test_adopt_marks_the_unknown_machines_and_the_rules_then_apply(self):
        self.seed()
        r = self.reaper("--once", "--adopt")
        got, summary = self.verdicts(r.stdout)
        for n in (1, 2):
            self.assertEqual(got[machine_id(OWN + n)][0], "would-adopt")
            self.assertTrue(got[machine_id(OWN + n)][1].startswith("adopt: no thopter metadata"))
        self.assertIn("2 would be adopted", summary)
        self.assertEqual(self.mutating_calls(), [], "a dry run writes nothing")

        # The mark write is retried like every fly write.
        self.fly.push_fault(method="POST", route="machines.metadata", status=503, count=1)
        r = self.reaper("--once", "--adopt", "--apply")
        got, summary = self.verdicts(r.stdout)
        for n in (1, 2):
            self.assertEqual(got[machine_id(OWN + n)][0], "adopt", got[machine_id(OWN + n)])
        self.assertIn("2 adopted", summary)
        writes = [c for c in self.mutating_calls() if c["route"] == "machines.metadata"]
        self.assertEqual(sorted({c["machine"] for c in writes}), [machine_id(OWN + 1), machine_id(OWN + 2)])
        self.assertEqual(len(writes), 3, "one write retried after a 503")
        for n in (1, 2):
            md = self.fly.machine(machine_id(OWN + n))["metadata"]
            self.assertEqual(md.get("thopter_provisioned"), "adopted")
        self.assertEqual(sorted(m.key().decode() for m in self.kafka.read_all(DESTROY)),
                         sorted([machine_id(OWN + 6), machine_id(OWN + 7)]), "adopting is not destroying")

        # Adopted, the old one is judged like any other thopter now.
        r = self.reaper("--once")
        got, _ = self.verdicts(r.stdout)
        self.assertEqual(got[machine_id(OWN + 1)][0], "keep")
        self.assertEqual(got[machine_id(OWN + 2)][0], "would-destroy")
        self.assertTrue(got[machine_id(OWN + 2)][1].startswith("lifetime:"))


class TestSeveralReapers(ReaperTestCase):
    def test_two_at_once_publish_duplicates_only_and_the_consumer_destroys_just_those(self):
        self.seed_fleet()
        before = {m["id"]: m["state"] for m in self.fly.machines()}
        procs = [subprocess.Popen([os.path.join(BUILD_DIR, "thopter-reaper"), "--once", "--apply"],
                                  env=tool_env(self.env()), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(2)]
        outs = [p.communicate(timeout=tmo(60)) for p in procs]
        for p, (out, err) in zip(procs, outs):
            self.assertEqual(p.returncode, 0, out + err)
            self.assertFalse(SANITIZER_RE.search(err), err)
        records = self.kafka.read_all(DESTROY)
        keys = sorted(m.key().decode() for m in records)
        self.assertEqual(keys, sorted(list(DOOMED) * 2), "each doomed machine twice, nothing else")

        consumer = ThopterConsumer(self.broker.bootstrap, self.fly.base_url, role="destroy")
        self.addCleanup(consumer.close)

        def destroyed():
            now = {m["id"]: m for m in self.fly.machines()}
            return all(now[i]["state"] == "destroyed" for i in DOOMED)
        wait_until(destroyed, timeout=60, interval=0.2, what="the reaped machines destroyed")

        def completed():
            evs = [e for e in self.kafka.read_json("thopter.events")
                   if e.get("kind") == "destroy" and e.get("state") in ("completed", "failed")]
            return evs if len(evs) >= 2 * len(DOOMED) else None
        evs = wait_until(completed, timeout=60, interval=0.3, what="every request finished")
        self.assertEqual({e["state"] for e in evs}, {"completed"}, "duplicates are harmless")
        self.assertEqual(sorted(e["thopterId"] for e in evs), keys)
        self.assertEqual(self.kafka.read_all("thopter.dlq"), [])
        self.assertEqual(consumer.stop(), 0)

        after = {m["id"]: m["state"] for m in self.fly.machines()}
        for mid, state in before.items():
            if mid not in DOOMED:
                self.assertEqual(after[mid], state, "untouched: %s" % mid)
        touched = {c["machine"] for c in self.fly.calls() if c["method"] != "GET"}
        self.assertEqual(touched, set(DOOMED), "stop/delete only for the reaped machines")


class TestCommand(ReaperTestCase):
    def test_help_version_and_bad_usage(self):
        r = self.reaper("--help", env={})
        for name in ("KAFKA_BROKERS", "THOPTER_DESTROY_TOPIC", "APP_NAME", "FLY_DEPLOY_KEY", "FLY_API_BASE",
                     "THOPTER_MAX_LIFETIME", "THOPTER_REAP_STOPPED_AFTER", "THOPTER_ORPHAN_GRACE",
                     "THOPTER_IDLE_AFTER", "THOPTER_REAP_INTERVAL", "THOPTER_SSH_KEY",
                     "THOPTER_SSH_KNOWN_HOSTS", "THOPTER_SSH_HOST", "THOPTER_SSH_PORT", "THOPTER_SSH_USER",
                     "THOPTER_REMOTE_USER", "THOPTER_TMUX_SESSION"):
            self.assertRegex(r.stdout, r"(?m)^  %s\s+--%s$" % (name, name.lower().replace("_", "-")))
        self.assertNotIn("GITHUB_INTEGRATION_JSON", r.stdout, "only the settings it reads")
        self.assertIn("[default: 72h]", r.stdout)
        self.assertRegex(self.reaper("--version", env={}).stdout, r"^thopter-reaper \d+\.\d+\.\d+ \(librdkafka ")
        cases = [
            ((), {"FLY_DEPLOY_KEY": TOKEN}, "APP_NAME: required but not set (environment or --app-name)"),
            (("--apply",), {"APP_NAME": "a", "FLY_DEPLOY_KEY": TOKEN}, "KAFKA_BROKERS: required with --apply"),
            ((), {"APP_NAME": "a", "FLY_DEPLOY_KEY": TOKEN, "THOPTER_MAX_LIFETIME": "72"},
             "THOPTER_MAX_LIFETIME: expected a duration such as 72h"),
            (("--thopter-idle-after", "2h"), {"APP_NAME": "a", "FLY_DEPLOY_KEY": TOKEN},
             "THOPTER_SSH_KEY: required when THOPTER_IDLE_AFTER is set"),
            (("--role", "destroy"), {}, "unknown option \"--role\""),
            (("--max-thopters", "3"), {}, "unknown option \"--max-thopters\""),
            (("extra",), {}, "unexpected argument \"extra\""),
        ]
        for args, env, msg in cases:
            with self.subTest(args=args):
                r = self.reaper(*args, env=env, expect=2)
                self.assertIn(msg, r.stderr)
                self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
                self.assertEqual(r.stdout, "")

    def test_flags_override_the_environment(self):
        self.fly.seed_machine(id=machine_id(0x700), name="thopter-5h", metadata=agent("r", True),
                              created_at=ago(5 * H))
        r = self.reaper("--once", "--thopter-max-lifetime=4h")
        self.assertTrue(self.parse(r.stdout)[0][machine_id(0x700)][3].startswith("lifetime: created 5h ago, "
                                                                                "longer than "
                                                                                "THOPTER_MAX_LIFETIME 4h"))
        r = self.reaper("--once", "--thopter-max-lifetime", "off", env=self.env(THOPTER_MAX_LIFETIME="1h"))
        self.assertEqual(self.parse(r.stdout)[0][machine_id(0x700)][0], "keep")

    def test_fly_down_is_a_failure_with_a_message(self):
        self.fly.outage(status=503)
        r = self.reaper("--once", env=self.env(THOPTER_FLY_RETRIES="2"), expect=1)
        self.assertIn("thopter-reaper: listing the machines of app thopters failed:", r.stderr)
        self.assertIn("503", r.stderr)
        self.assertNotIn(TOKEN, r.stderr + r.stdout)

    def test_loop_runs_every_interval_and_stops_gracefully_on_sigterm(self):
        self.fly.seed_machine(id=machine_id(0x701), name="thopter-old", metadata=agent("r", True),
                              created_at=ago(100 * H))
        out = tempfile.TemporaryFile(mode="w+")
        self.addCleanup(out.close)
        err = tempfile.TemporaryFile(mode="w+")
        self.addCleanup(err.close)
        p = subprocess.Popen([os.path.join(BUILD_DIR, "thopter-reaper"), "--apply"],
                             env=tool_env(self.env(THOPTER_REAP_INTERVAL="1s")), stdout=out, stderr=err)
        try:
            def summaries():
                out.seek(0)
                return len(re.findall(r"(?m)^summary ", out.read())) >= 2
            wait_until(summaries, timeout=30, interval=0.1, what="two passes")
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(tmo(20)), 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        err.seek(0)
        text = err.read()
        self.assertIn("a pass every 1s until SIGTERM/SIGINT", text)
        self.assertIn("thopter-reaper: stopped", text)
        self.assertFalse(SANITIZER_RE.search(text), text)
        out.seek(0)
        passes = len(re.findall(r"(?m)^summary ", out.read()))
        keys = [m.key().decode() for m in self.kafka.read_all(DESTROY)]
        self.assertEqual(len(keys), passes, "one request per pass")
        self.assertEqual(set(keys), {machine_id(0x701)})


class TestDeployUnit(unittest.TestCase):
    """deploy/thopter-reaper.service: a long-running reaper that publishes."""

    def test_systemd_unit(self):
        path = os.path.join(SOURCE_DIR, "deploy", "thopter-reaper.service")
        with open(path) as f:
            unit = f.read()
        keys = dict(re.findall(r"^(\w+)=(.*)$", unit, re.M))
        self.assertEqual(keys["ExecStart"].split(), ["/usr/local/bin/thopter-reaper", "--apply"],
                         "a loop (THOPTER_REAP_INTERVAL), publishing; no secret on argv")
        self.assertEqual(keys["EnvironmentFile"], "/etc/thopter/thopter.env", "the consumer's settings file")
        self.assertEqual((keys["KillSignal"], keys["Restart"]), ("SIGTERM", "on-failure"))
        self.assertIn("2", keys["RestartPreventExitStatus"].split(), "exit 2 (bad setting) must not loop")
        for k, v in {"User": "thopter", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
                     "ProtectHome": "yes", "PrivateTmp": "yes"}.items():
            self.assertEqual(keys.get(k), v, k)
        tool = shutil.which("systemd-analyze")
        if tool:
            out = subprocess.run([tool, "verify", path], capture_output=True, text=True, timeout=60)
            problems = [line for line in (out.stdout + out.stderr).splitlines()
                        if line.strip() and "is not executable" not in line and "No such file" not in line]
            self.assertEqual(problems, [])


# ---- idle detection over ssh ---------------------------------------------------------------

def run(*argv):
    return subprocess.run(argv, check=True, capture_output=True, text=True)


class IdleHosts:
    """A throwaway user with a tmux session "thopter", and two sshds on one port:
    127.0.0.2 presents the host key the consumer derives for request r-idle-a,
    127.0.0.3 one derived for another request (so it must be refused). Both accept
    the same client key, which is also the derivation secret (THOPTER_SSH_KEY)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="reaper-idle.")
        os.chmod(self.dir, 0o755)
        self.user = "reap%06d" % random.randrange(10 ** 6)
        self.home = os.path.join(self.dir, "home")
        os.makedirs(self.home)
        run("useradd", "-M", "-d", self.home, "-s", "/bin/bash", self.user)
        run("chown", self.user + ":", self.home)
        self.port = _free_port("127.0.0.2")
        self.a = Sshd(addr="127.0.0.2", port=self.port, dir=os.path.join(self.dir, "a")).prepare()
        self.b = Sshd(addr="127.0.0.3", port=self.port, dir=os.path.join(self.dir, "b")).prepare()
        self.key = self.a.client_key
        shutil.copyfile(self.key + ".pub", self.b.authorized_keys)
        self.a_pub = self.host_key(self.a, "r-idle-a")
        self.host_key(self.b, "r-not-idle-b")
        self.known_hosts = os.path.join(self.dir, "known_hosts")
        with open(self.known_hosts, "w") as f:
            f.write("[127.0.0.2]:%d %s\n" % (self.port, " ".join(self.a_pub.split()[:2])))
        self.a.start_fixed()
        self.b.start_fixed()

    def host_key(self, sshd, request_id):
        priv = run(HOST_KEY_FOR, self.key, request_id).stdout
        pub = run(HOST_KEY_FOR, "--public", self.key, request_id).stdout
        with open(sshd.host_key, "w") as f:
            f.write(priv)
        os.chmod(sshd.host_key, 0o600)
        with open(sshd.host_key + ".pub", "w") as f:
            f.write(pub)
        return pub

    def su(self, cmd):
        return run("su", "-", self.user, "-c", cmd)

    def logins(self, sshd):
        return sshd.log().count("Accepted publickey")

    def close(self):
        subprocess.run(["su", "-", self.user, "-c", "tmux kill-server"], capture_output=True)
        for s in (self.a, self.b):
            try:
                s.stop()
            except Exception:
                pass
        subprocess.run(["userdel", self.user], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("tmux") and os.path.exists("/usr/sbin/sshd"),
                     "needs root, tmux and sshd")
class TestIdle(ReaperTestCase):
    def setUp(self):
        super().setUp()
        self.hosts = IdleHosts()
        self.addCleanup(self.hosts.close)
        # A session that prints twice a second: busy.
        self.hosts.su("tmux new-session -d -s thopter 'while :; do date; sleep 0.5; done'")
        seeds = [  # n, name, request id, private ip, state, updated ago
            (1, "thopter-idle-a", "r-idle-a", "127.0.0.2", "started", H),
            (2, "thopter-wrong-key", "r-idle-b", "127.0.0.3", "started", H),
            (3, "thopter-no-sshd", "r-idle-c", "127.0.0.4", "started", H),
            (4, "thopter-no-request-id", None, "127.0.0.2", "started", H),
            (5, "thopter-stopped-recently", "r-idle-e", "127.0.0.4", "stopped", 5 * M),
        ]
        self.ids = {}
        for n, name, rid, ip, state, updated in seeds:
            md = agent(rid, True) if rid else {"thopter_role": "agent", "thopter_provisioned": "x"}
            self.ids[name] = self.fly.seed_machine(id=machine_id(0x800 + n), name=name, state=state,
                                                   metadata=md, private_ip=ip, created_at=ago(2 * H),
                                                   updated_at=ago(updated))["id"]

    def idle_env(self, **extra):
        return self.env(THOPTER_IDLE_AFTER="3s", THOPTER_SSH_KEY=self.hosts.key,
                        THOPTER_SSH_HOST="{private_ip}", THOPTER_SSH_PORT=str(self.hosts.port),
                        THOPTER_SSH_USER="root", THOPTER_REMOTE_USER=self.hosts.user, **extra)

    def verdicts(self, r):
        lines, summary = self.parse(r.stdout)
        return {name: lines[i] for name, i in self.ids.items()}, summary

    def test_idle_agents_are_found_by_tmux_activity_over_ssh(self):
        # 1. Busy; only the derived host key vouches for 127.0.0.2 (no known_hosts).
        v, summary = self.verdicts(self.reaper("--once", env=self.idle_env()))
        self.assertEqual(v["thopter-idle-a"][0], "keep", v)
        self.assertRegex(v["thopter-idle-a"][3], r"^active: last tmux activity [0-9]s ago, created 2h ago$")
        self.assertEqual(v["thopter-wrong-key"][0], "unchecked")
        self.assertIn("idleness unknown, kept: ssh: host key", v["thopter-wrong-key"][3])
        self.assertEqual(v["thopter-no-sshd"][0], "unchecked")
        self.assertEqual(v["thopter-no-request-id"][0], "unchecked")
        self.assertIn("no thopter_request_id to derive its host key from, and no THOPTER_SSH_KNOWN_HOSTS",
                      v["thopter-no-request-id"][3])
        self.assertEqual(v["thopter-stopped-recently"][0], "keep")
        self.assertIn("0 would be destroyed, 5 kept (3 unchecked)", summary)
        self.assertGreaterEqual(self.hosts.logins(self.hosts.a), 1)
        self.assertEqual(self.hosts.logins(self.hosts.b), 0, "a wrong host key: no login at all")

        # 2. Silence for longer than THOPTER_IDLE_AFTER; known_hosts now vouches for
        # 127.0.0.2 too, so the machine without a request id is checked as well.
        self.hosts.su("tmux respawn-pane -k -t =thopter: 'sleep 1000'")
        time.sleep(5)
        env = self.idle_env(THOPTER_SSH_KNOWN_HOSTS=self.hosts.known_hosts)
        v, summary = self.verdicts(self.reaper("--once", env=env))
        for name in ("thopter-idle-a", "thopter-no-request-id"):
            self.assertEqual(v[name][0], "would-destroy", v[name])
            self.assertRegex(v[name][3], r"^idle: no tmux activity for [5-9]s, longer than THOPTER_IDLE_AFTER 3s$")
        self.assertEqual(v["thopter-wrong-key"][0], "unchecked", "known_hosts does not list 127.0.0.3")
        self.assertEqual(v["thopter-no-sshd"][0], "unchecked")
        r = self.reaper("--once", "--apply", env=env)
        records = self.kafka.read_all(DESTROY)
        self.assertEqual(sorted(m.key().decode() for m in records),
                         sorted([self.ids["thopter-idle-a"], self.ids["thopter-no-request-id"]]))
        for m in records:
            self.assertTrue(json.loads(m.value())["reason"].startswith("idle: no tmux activity for "))

        # 3. No tmux session at all: cannot tell, kept.
        self.hosts.su("tmux kill-server")
        v, _ = self.verdicts(self.reaper("--once", env=self.idle_env()))
        self.assertEqual(v["thopter-idle-a"][0], "unchecked")
        self.assertIn("tmux session thopter: exit 1", v["thopter-idle-a"][3])


if __name__ == "__main__":
    unittest.main()
