"""Parallel provisioning (issue 24), end to end: the real thopter-consumer with
MAX_CONCURRENT_PROVISIONS > 1 against thopter-devbroker (or THOPTER_TEST_KAFKA's
broker), the fake fly API and real sshd/tmux/git hosts
(tests/harness/provision_harness.py's ThopterHosts with one host per machine).

What the consumer promises and how each is seen from outside it:
- N provisions in flight: machines of different requests booting at the same time
  (the fake's state, sampled), in clearly less time than one after another;
- MAX_THOPTERS never exceeded within one instance, creates in flight counted: the
  fake's thopter machines, sampled every ~50 ms from a thread;
- no volume attached to two machines: the same samples, and the fake's machines;
- at most THOPTER_GC_COPY_CONCURRENCY copies from one Golden Claude at once: the GC's
  own tar runs, recorded on the GC (CopyObserver), and the golden_claude_wait step of
  the provisions that had to wait their turn;
- one machine and one create per requestId, no dead letter, offsets committed to the
  end.
The first test checks the observer itself, with no consumer: it sees two copies at once
when there are two, so "at most one" is not a blind observer's answer.
"""
import datetime
import json
import os
import subprocess
import threading
import time
import unittest

from flyfake import FlyFake
from provision_harness import ThopterHosts
from thopter_harness import Kafka, ThopterConsumer, TOKEN, start_broker, wait_until

PROVISION = "thopter.provision"
GROUP = "thopter-provisioner"
LIVE = ("created", "starting", "started")


def request(rid, issue, gc="default", repository="acme/widgets"):
    """A hub-shaped provision request."""
    return {
        "requestId": rid, "source": "github", "createdAt": "2026-11-27T10:00:00.000Z",
        "status": "pending", "repository": repository, "gc": gc, "prompt": "default",
        "github": {"repository": repository, "issueNumber": str(issue),
                   "issueTitle": "Make the widgets spin #%d" % issue, "issueBody": "/thopter",
                   "issueUrl": "https://github.com/%s/issues/%d" % (repository, issue),
                   "issueAuthor": "alice", "mentionAuthor": "alice", "mentionLocation": "body",
                   "comments": [], "labels": []},
    }


def at_seconds(event):
    """An event's "at" (UTC, ms) as seconds since the epoch."""
    return datetime.datetime.strptime(event["at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


class FlySampler:
    """Samples the fake's machines every @interval s in a thread: the most thopter machines
    started at once, the most live (created, starting or started: creates in flight count),
    the most booting (created or starting), and any volume on two live machines."""

    def __init__(self, fly, interval=0.05):
        self.fly = fly
        self.interval = interval
        self.max_started = self.max_live = self.max_booting = 0
        self.samples = 0
        self.shared_volumes = []   # (time, volume, [machine ids]) where two live machines had one
        self.errors = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fly-sampler", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(10)
        self.sample()  # one last look

    def sample(self):
        try:
            ms = [m for m in self.fly.machines() if m["name"].startswith("thopter-")]
        except Exception as e:  # noqa: BLE001 - counted; the test fails on it
            self.errors.append(repr(e))
            return
        live = [m for m in ms if m["state"] in LIVE and not m.get("gone")]
        self.max_started = max(self.max_started, sum(m["state"] == "started" for m in live))
        self.max_live = max(self.max_live, len(live))
        self.max_booting = max(self.max_booting, sum(m["state"] in ("created", "starting") for m in live))
        by_volume = {}
        for m in live:
            if m.get("volume"):
                by_volume.setdefault(m["volume"], []).append(m["id"])
        for v, ids in by_volume.items():
            if len(ids) > 1:
                self.shared_volumes.append((time.time(), v, ids))
        self.samples += 1

    def _run(self):
        while not self._stop.wait(self.interval):
            self.sample()


class ParallelTestCase(unittest.TestCase):
    """A broker, the fake fly API, ThopterHosts and Kafka helpers per test."""

    def rig(self, thopters, gcs, fly_config=None, **hosts_kw):
        self.broker = start_broker()
        self.addCleanup(self.broker.stop)
        self.hosts = ThopterHosts(thopters=thopters, gcs=gcs, **hosts_kw)
        self.addCleanup(self.hosts.close)
        self.fly = FlyFake()
        self.fly.start(token=TOKEN, **dict(self.hosts.fly_config(), **(fly_config or {})))
        self.addCleanup(self.fly.stop)
        self.hosts.seed_golden_claudes(self.fly)
        self.kafka = Kafka(self.broker.bootstrap)
        self.addCleanup(self.kafka.close)
        self.consumers = []

    def tearDown(self):
        failed = self._outcome.result and any(
            t is self for t, _ in self._outcome.result.failures + self._outcome.result.errors)
        if failed and getattr(self, "kafka", None):
            try:
                print("\n--- provision events of the failed %s:" % self.id(), flush=True)
                for rid, es in sorted(self.by_request().items()):
                    print("%s: %s" % (rid, " ".join(e["state"] if e["state"] != "step" else e["step"]
                                                    for e in es)), flush=True)
            except Exception as e:  # noqa: BLE001 - the failure itself matters more
                print("(events unreadable: %r)" % e)
        for c in getattr(self, "consumers", []):
            if failed:
                print("\n--- thopter-consumer log (last 150 lines) of the failed %s:\n%s" % (
                    self.id(), "\n".join(c.log_text().splitlines()[-150:])), flush=True)
            c.close()

    def start_consumer(self, **env):
        e = dict(self.hosts.env(), THOPTER_READY_TIMEOUT="60", THOPTER_CAPACITY_RECHECK_MAX="2")
        e.update(env)
        c = ThopterConsumer(self.broker.bootstrap, self.fly.base_url, role="provision", env=e)
        self.consumers.append(c)
        return c

    def provision(self, reqs):
        for r in reqs:
            self.kafka.produce(PROVISION, r, key=r["requestId"])
        self.kafka.flush()

    def all_events(self):
        return [e for e in self.kafka.read_json("thopter.events") if e.get("kind") == "provision"]

    def by_request(self, events=None):
        out = {}
        for e in events if events is not None else self.all_events():
            out.setdefault(e["requestId"], []).append(e)
        return out

    def finished(self, events=None):
        """{requestId: its final event} of the requests that finished."""
        return {rid: [e for e in es if e["state"] in ("completed", "failed")][-1]
                for rid, es in self.by_request(events).items()
                if any(e["state"] in ("completed", "failed") for e in es)}

    def wait_completed(self, n, timeout=150):
        return wait_until(lambda: (lambda f: f if len(f) >= n else None)(self.finished()),
                          timeout=timeout, interval=0.3, what="%d provisions finished" % n)

    def thopters_of(self, rid):
        return [m for m in self.fly.machines() if m["name"].startswith("thopter-")
                and m["config"].get("metadata", {}).get("thopter_request_id") == rid]

    def creates_of(self, rid):
        return [c for c in self.fly.calls(route="machines.create") if c["status"] == 200
                and ((c.get("body") or {}).get("config") or {}).get("metadata", {})
                .get("thopter_request_id") == rid]

    def assert_committed_to_end(self):
        ends = self.kafka.end_offsets(PROVISION)
        wait_until(lambda: self.kafka.committed(GROUP, PROVISION) == ends, timeout=20,
                   what="the provision offsets committed to the end %r" % ends)


class TestObserver(ParallelTestCase):
    def test_the_copy_observer_sees_two_copies_at_once_and_the_hosts_are_apart(self):
        # No consumer, no Kafka: OpenSSH's client runs the pack's tar on the GC, as the
        # consumer does, twice at once and then twice in a row.
        hosts = ThopterHosts(thopters=2, gcs=["x"], observe_copies=True, copy_delay_s=1)
        self.addCleanup(hosts.close)
        hosts.add_gc_blob(2)
        gc, obs = hosts.gcs["x"], hosts.observers["x"]

        def ssh(host, cmd):
            return subprocess.Popen(
                ["ssh", "-i", hosts.thopter.client_key, "-o", "UserKnownHostsFile=" + hosts.known_hosts,
                 "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-p", str(hosts.port),
                 "root@" + host.addr, cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        pack = "runuser -u %s -- tar czf - -C %s .claude | wc -c" % (hosts.user, hosts.home)
        mark = obs.mark()
        both = [ssh(gc, pack) for _ in range(2)]
        outs = [p.communicate(timeout=60) for p in both]
        self.assertEqual([p.returncode for p in both], [0, 0], outs)
        self.assertGreater(int(outs[0][0]), 1 << 20, "the blob travelled")
        self.assertEqual(obs.max_concurrent(mark), 2, obs.lines(mark))
        mark = obs.mark()
        for _ in range(2):
            p = ssh(gc, pack)
            p.communicate(timeout=60)
        self.assertEqual(obs.max_concurrent(mark), 1, obs.lines(mark))
        runs = obs.runs(mark)
        self.assertEqual(len(runs), 2)
        self.assertGreaterEqual(runs[0][1] - runs[0][0], 1.0, "copy_delay_s")
        # Each thopter host has its own home and tmux at the same paths.
        for i, s in enumerate(hosts.thopters):
            p = ssh(s, "echo host-%d > %s/who && runuser -u %s -- tmux has-session -t thopter" % (
                i, hosts.home, hosts.user))
            _, err = p.communicate(timeout=30)
            self.assertEqual(p.returncode, 0, err)
        who = []
        for i in range(2):
            with open(hosts.thopter_path(i, "who")) as f:
                who.append(f.read())
        self.assertEqual(who, ["host-0\n", "host-1\n"])


class TestParallelProvision(ParallelTestCase):
    def test_three_provisions_are_in_flight_at_once(self):
        # A slow boot (5 s): one after another, three provisions take 15 s at least and
        # never have two machines booting at once.
        boot = 5.0
        self.rig(thopters=3, gcs=["default"], fly_config={"timings": {"start_ms": int(boot * 1000)}})
        sampler = FlySampler(self.fly).start()
        self.addCleanup(sampler.stop)
        c = self.start_consumer(MAX_CONCURRENT_PROVISIONS="3", THOPTER_FLY_PACING="0")
        c.wait_assigned()
        self.provision([request("conc-%d" % i, 300 + i) for i in range(3)])
        done = self.wait_completed(3, timeout=90)
        sampler.stop()
        self.assertEqual({r: e["state"] for r, e in done.items()}, {"conc-%d" % i: "completed" for i in range(3)})
        events = self.all_events()
        first = min(at_seconds(e) for e in events if e["state"] == "started")
        last = max(at_seconds(e) for e in events if e["state"] == "completed")
        self.assertLess(last - first, 2.2 * boot, "three provisions with a %.0f s boot took %.1f s: not in "
                                                  "parallel" % (boot, last - first))
        self.assertEqual(sampler.max_booting, 3, "machines booting at once")
        self.assertEqual(sampler.errors, [])
        self.assertEqual(self.hosts.agent_runs(), 3)
        self.assert_committed_to_end()

    def test_gc_copy_concurrency_3_lets_copies_from_one_golden_claude_overlap(self):
        # The observer's other side: allowed three at once, copies from one GC do overlap
        # (each takes 3 s on this slow GC), and nobody waits for the Golden Claude.
        self.rig(thopters=3, gcs=["default"], observe_copies=True, copy_delay_s=3)
        self.hosts.add_gc_blob(2)
        c = self.start_consumer(MAX_CONCURRENT_PROVISIONS="3", THOPTER_GC_COPY_CONCURRENCY="3",
                                THOPTER_FLY_PACING="0")
        c.wait_assigned()
        self.provision([request("gc3-%d" % i, 400 + i) for i in range(3)])
        done = self.wait_completed(3, timeout=90)
        self.assertEqual(sorted(e["state"] for e in done.values()), ["completed"] * 3, done)
        self.assertNotIn("warning", json.dumps(list(done.values())))
        obs = self.hosts.observers["default"]
        self.assertEqual(len(obs.runs()), 3)
        self.assertGreaterEqual(obs.max_concurrent(), 2, obs.lines())
        self.assertEqual([e for e in self.all_events() if e.get("step") == "golden_claude_wait"], [])

    def test_nine_requests_three_in_flight_at_most_five_thopters(self):
        """MAX_CONCURRENT_PROVISIONS=3, MAX_THOPTERS=5, 9 requests: 3 name one Golden Claude
        (the other 6 two others, 3 each), one free thopter_data volume for the first ones to
        race for, the fake's rate limits on, 50 ms a fly call."""
        gcs = ["shared", "a", "b"]
        self.rig(thopters=9, gcs=gcs, observe_copies=True, copy_delay_s=2.5,
                 fly_config={"latency_ms": 50, "rate_limit": True})
        self.hosts.add_gc_blob(4)
        free = self.fly.seed_volume(name="thopter_data", region="ord", size_gb=10)
        sampler = FlySampler(self.fly).start()
        self.addCleanup(sampler.stop)
        c = self.start_consumer(MAX_CONCURRENT_PROVISIONS="3", MAX_THOPTERS="5",
                                THOPTER_GC_COPY_CONCURRENCY="1")
        c.wait_assigned()
        gc_of = {}
        reqs = []
        for i in range(9):
            rid = "par-%d" % i
            gc_of[rid] = "shared" if i < 3 else gcs[1 + i % 2]
            reqs.append(request(rid, 500 + i, gc=gc_of[rid]))
        self.provision(reqs)

        def waiting(events):
            return {e["requestId"] for e in events if e["state"] == "waiting_capacity"}

        # Five complete, and what is in flight then waits for capacity (how many of the 3 slots
        # hold one depends on when the first wait paused intake: it holds intake).
        wait_until(lambda: (lambda ev: len(self.finished(ev)) >= 5 and waiting(ev))(self.all_events()),
                   timeout=90, interval=0.3, what="5 completed and one waiting for capacity")
        time.sleep(1.5)
        events = self.all_events()
        first_five = self.finished(events)
        self.assertEqual(len(first_five), 5, first_five)
        self.assertEqual(sorted(e["state"] for e in first_five.values()), ["completed"] * 5, first_five)
        self.assertFalse(waiting(events) & set(first_five))
        self.assertEqual(len([m for m in self.fly.machines() if m["name"].startswith("thopter-")]), 5,
                         "no create while at capacity")
        def waiting_now(events):
            """Requests still waiting for capacity: their latest event is waiting_capacity, or a
            retry of the capacity check's fly list after it (the fake's rate limits are on); a
            request's events keep their order (one key, one partition)."""
            out = set()
            for rid, es in self.by_request(events).items():
                last = [e for e in es if e["state"] not in ("retrying", "waiting_fly")]
                if last and last[-1]["state"] == "waiting_capacity":
                    out.add(rid)
            return out

        # One machine destroyed at a time, each while a request waits: one provision goes on
        # (not two: its create in flight counts) and completes, and what comes next meets
        # MAX_THOPTERS again. Which one goes on is not fixed: a request fetched meanwhile may take
        # the slot before the waiter's next check (no queue among them), so a request waits at
        # most once, and at least one waits.
        order = sorted(first_five, key=lambda r: at_seconds(first_five[r]))
        for k in range(1, 5):
            wait_until(lambda: waiting_now(self.all_events()), timeout=60, interval=0.3,
                       what="a request waiting for capacity (%d completed)" % (4 + k))
            self.fly.set_state(first_five[order[k - 1]]["thopterId"], "destroyed")
            self.wait_completed(5 + k, timeout=90)
        done = self.wait_completed(9, timeout=120)
        sampler.stop()

        events = self.all_events()
        rids = [r["requestId"] for r in reqs]
        self.assertEqual({r: done[r]["state"] for r in rids}, {r: "completed" for r in rids})
        self.assertNotIn("warning", json.dumps(list(done.values())), "every Golden Claude copy made")
        self.assertEqual(self.kafka.read_all("thopter.dlq"), [])
        self.assertTrue(waiting(events), "no request waited for capacity")
        self.assertLessEqual(waiting(events), {r["requestId"] for r in reqs} - set(first_five))
        per = self.by_request(events)
        for rid in waiting(events):
            self.assertEqual(len([e for e in per[rid] if e["state"] == "waiting_capacity"]), 1, per[rid])
        # Capacity within the instance: never more than MAX_THOPTERS started, nor live with the
        # creates in flight.
        self.assertEqual(sampler.errors, [])
        self.assertGreater(sampler.samples, 100)
        self.assertLessEqual(sampler.max_started, 5)
        self.assertLessEqual(sampler.max_live, 5)
        self.assertEqual(sampler.max_started, 5, "capacity was reached")
        # One machine and one create per requestId, each on its own host, which ran its agent once.
        ips = set()
        for rid in rids:
            mine = self.thopters_of(rid)
            self.assertEqual(len(mine), 1, (rid, mine))
            self.assertEqual(len(self.creates_of(rid)), 1, rid)
            self.assertEqual(mine[0]["id"], done[rid]["thopterId"])
            ips.add(mine[0]["private_ip"])
            self.assertEqual(self.hosts.agent_runs(self.hosts.host_index(mine[0]["private_ip"])), 1, rid)
        self.assertEqual(len(ips), 9)
        # Volumes: never one on two live machines; the free one was used.
        self.assertEqual(sampler.shared_volumes, [])
        machines = [m for m in self.fly.machines() if m["name"].startswith("thopter-")]
        self.assertIn(free["id"], [m["volume"] for m in machines])
        self.assertEqual(len({m["volume"] for m in machines[:5]}), 5, "the first five live together")
        # The Golden Claudes: one copy at a time from each, one per request naming it.
        for g in gcs:
            obs = self.hosts.observers[g]
            self.assertEqual(len(obs.runs()), sum(1 for r in rids if gc_of[r] == g), (g, obs.lines()))
            self.assertEqual(obs.max_concurrent(), 1, (g, obs.lines()))
        # Who had to wait for its Golden Claude: a request whose copy step began while another
        # copy from its GC ran. Each of them said so (step golden_claude_wait, and the log).
        logs = c.logs()
        waited_for_gc = set()
        for rid in rids:
            steps = [e for e in per[rid] if e.get("step") in ("golden_claude", "golden_claude_wait")
                     and e["state"] == "step"]
            self.assertTrue(steps, per[rid])
            t = min(at_seconds(e) for e in steps)
            if any(s + 0.1 < t < e - 0.1 for s, e in self.hosts.observers[gc_of[rid]].runs() if e):
                waited_for_gc.add(rid)
                self.assertIn("golden_claude_wait", [e.get("step") for e in per[rid]], rid)
                self.assertTrue([x for x in logs if x.get("requestId") == rid
                                 and "waiting for the Golden Claude" in x.get("msg", "")], rid)
        self.assertTrue(waited_for_gc & {"par-0", "par-1", "par-2"},
                        "no provision of the shared Golden Claude had to wait: the test did not test it")
        self.assert_committed_to_end()
        fly_429 = sum(v for k, v in self.fly.stats()["by_route_status"].items() if k.endswith(" 429"))
        print("\nparallel provision: %d samples, max started %d, max live %d, %d fly 429s, waited for a "
              "GC: %s" % (sampler.samples, sampler.max_started, sampler.max_live, fly_429,
                          sorted(waited_for_gc)), flush=True)


if __name__ == "__main__":
    unittest.main()
