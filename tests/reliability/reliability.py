#!/usr/bin/python3
"""reliability.py - prove the contract's guarantees (docs/CONTRACT.md section 5) under faults.

Runs every reliability scenario against the real binaries (thopter-consumer,
thopter-devbroker), the fake fly Machines API and real sshd, and writes
docs/RELIABILITY.md with the date, the git commit, the machine and the figures.

    tests/reliability/reliability.py                 # every scenario, default rounds (~10 min on 2 cores)
    tests/reliability/reliability.py --rounds 3      # fewer rounds
    tests/reliability/reliability.py --only crash_destroy,fly_faults --no-write
    tests/reliability/reliability.py --valgrind      # only the valgrind leak check

Needs root (sshd, useradd) as the integration tests do, and a dev build
(THOPTER_BUILD_DIR, default build/dev). The short versions of the same
scenarios are the unit tests in test_reliability.py (ctest -L reliability);
both call the scenario functions below, which return a result dict:

    {"scenario", "tried", "times", "outcome", "lost", "repeats", "failures": [...],
     "notes": [...], "figures": {...}, "seconds"}

"failures" lists every guarantee that did not hold (empty = the scenario passed).

Scenarios
  crash_destroy     SIGKILL the destroy consumer at a random moment of each 200-destroy burst, restart
  crash_provision   SIGKILL the provision consumer during the capacity / volume / golden_claude steps
  crash_provision_parallel  the same with MAX_CONCURRENT_PROVISIONS=3: three requests in flight at each
                    kill, at every step from capacity to launch (golden_claude_wait included)
  broker_faults     OffsetCommit errors, a moving group coordinator, one broker and every broker down;
                    a sampler checks that no committed offset ever passes unfinished work
  stop_during_outage  SIGTERM while every broker is down; exit status and time; a restart finishes the rest
  event_after_commit  the final status event is unacknowledged when its record is committed (known bug)
  scale_out         two destroy consumers share the 6 partitions; one is SIGKILLed mid-run
  fly_faults        429 storms (with/without Retry-After), 503 bursts, answers slower than the client's
                    timeout, reset connections, and faults that outlast the retry budget
  ssh_faults        sshd killed at the git step (left down, or restarted), and a host key mismatch
  hostile_inputs    tests/fuzz/run-fuzz.sh (libFuzzer) for 20 s per target; its figures
  valgrind          one destroy burst and one provision with the consumer under valgrind --leak-check=full
"""
import argparse
import datetime
import json
import os
import platform
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "harness"))

from flyfake import FlyFake  # noqa: E402
from thopter_harness import (Devbroker, Kafka, ThopterConsumer, TOKEN, WrappedThopterConsumer,  # noqa: E402
                             headers_dict, kill_sshd_tree, machine_id, tmo, wait_until)

DESTROY = "thopter.destroy"
PROVISION = "thopter.provision"
DLQ = "thopter.dlq"
EVENTS = "thopter.events"
DGROUP = "thopter-destroyer"
PGROUP = "thopter-provisioner"
SOURCE_DIR = os.path.abspath(os.path.join(HERE, "..", ".."))


def say(*a):
    print("[reliability %s]" % time.strftime("%H:%M:%S"), *a, flush=True)


# ---------------------------------------------------------------------------------------
# The rig: devbroker + fake fly + Kafka helpers + consumers, torn down in reverse order.

class Rig:
    def __init__(self, brokers=1, fly_config=None):
        self._cleanup = []
        self.consumers = []
        try:
            self.broker = Devbroker(["--brokers", str(brokers)] if brokers > 1 else [])
            self._cleanup.append(self.broker.stop)
            self.fly = FlyFake()
            self.fly.start(token=TOKEN, **(fly_config or {}))
            self._cleanup.append(self.fly.stop)
            self.kafka = Kafka(self.broker.bootstrap)
            self._cleanup.append(self.kafka.close)
        except Exception:
            self.close()
            raise
        self.where = {}  # (partition, offset) -> thopterId, for destroy records
        self._where_lock = threading.Lock()

    def consumer(self, role="destroy", env=None, prefix=()):
        if prefix:
            c = WrappedThopterConsumer(self.broker.bootstrap, self.fly.base_url, role=role, env=env,
                                       prefix=prefix)
        else:
            c = ThopterConsumer(self.broker.bootstrap, self.fly.base_url, role=role, env=env)
        self.consumers.append(c)
        return c

    def close(self):
        errors = []
        keep = os.environ.get("RELIABILITY_KEEP_LOGS")
        for n, c in enumerate(self.consumers):
            if keep:
                os.makedirs(keep, exist_ok=True)
                with open(os.path.join(keep, "%s-%d-%s.log" % (time.strftime("%H%M%S"), n, c.role)), "w") as f:
                    f.write(c.log_text())
            try:
                c.close()
            except Exception as e:  # a sanitizer report
                errors.append(str(e))
        self.consumers = []
        for f in reversed(self._cleanup):
            try:
                f()
            except Exception as e:
                errors.append(str(e))
        self._cleanup = []
        if errors:
            raise AssertionError("\n".join(errors))

    # ---- destroy helpers ----------------------------------------------------------------

    def seed(self, ids):
        for i in ids:
            self.fly.seed_machine(id=i, name="thopter-" + i, state="started")
        return ids

    def produce_destroys(self, ids):
        """Destroy requests without requestId, so each is named destroy-<partition>-<offset>;
        the delivery reports record where each landed."""
        def on_delivery(err, msg, mid=None):
            if err is None:
                with self._where_lock:
                    self.where[(msg.partition(), msg.offset())] = mid
        for i in ids:
            self.kafka.producer.produce(DESTROY, value=json.dumps({"thopterId": i}), key=i,
                                        on_delivery=lambda err, msg, mid=i: on_delivery(err, msg, mid))
            self.kafka.producer.poll(0)
        self.kafka.flush()

    def finished_ids(self):
        return {m["id"] for m in self.fly.machines()
                if m["state"] in ("destroying", "destroyed") or m.get("gone")}

    def gone(self, ids):
        return set(ids) <= self.finished_ids()

    def delete_200s(self):
        return self.fly.stats()["by_route_status"].get("machines.delete 200", 0)

    def committed_to_end(self, group=DGROUP, topic=DESTROY, timeout=60):
        ends = self.kafka.end_offsets(topic)
        wait_until(lambda: all(self.kafka.committed(group, topic).get(p, -1) >= e
                               for p, e in ends.items() if e > 0),
                   timeout=timeout, interval=0.3, what="committed offsets of %s to reach %r" % (group, ends))
        return ends

    def dead_letters(self):
        return self.kafka.read_all(DLQ)

    def events(self):
        return self.kafka.read_json(EVENTS)

    def destroy_repeats(self, ids):
        """Harmless repeats: fly deletes per machine beyond one, completed events per thopterId beyond one."""
        want = set(ids)
        deletes = {}
        for x in self.fly.calls(route="machines.delete"):
            if x["machine"] in want:
                deletes[x["machine"]] = deletes.get(x["machine"], 0) + 1
        done = {}
        for e in self.events():
            if e.get("kind") == "destroy" and e["state"] == "completed" and e.get("thopterId") in want:
                done[e["thopterId"]] = done.get(e["thopterId"], 0) + 1
        return {
            "extra_deletes": sum(n - 1 for n in deletes.values() if n > 1),
            "machines_deleted_twice": sum(1 for n in deletes.values() if n > 1),
            "extra_completed_events": sum(n - 1 for n in done.values() if n > 1),
            "completed_ids": set(done),
        }


def new_result(scenario, tried):
    return {"scenario": scenario, "tried": tried, "times": 0, "outcome": "", "lost": None,
            "repeats": "", "failures": [], "notes": [], "figures": {}, "seconds": 0.0}


def check(res, cond, msg):
    if not cond:
        res["failures"].append(msg)
    return cond


def note_missing_events(res, missing):
    """Requests whose work was done but that have no `completed` event break contract section 3
    (a valid request's last event is `completed` or `failed`): a record is committed only once its
    final event is acknowledged, so this must never happen, crashes included."""
    res["figures"]["requests_without_completed_event"] = \
        res["figures"].get("requests_without_completed_event", 0) + len(missing)
    if missing:
        res["failures"].append("%d request(s) done (machine destroyed, offset committed) without a "
                               "`completed` event" % len(missing))


def assignment_sizes(consumer):
    """The number of partitions this consumer holds now, from its log."""
    held = 0
    for rec in consumer.logs():
        msg = rec.get("msg", "")
        if msg.startswith("assigned "):
            held = 0 if msg == "assigned nothing" else msg.count("[")
        elif msg.startswith("revoked "):
            held = 0
    return held


# ---------------------------------------------------------------------------------------
# 1a. Crashes of the destroy consumer.

def scenario_crash_destroy(rounds=10, n=200, latency_ms=20, rng=None):
    rng = rng or random.Random(1)
    res = new_result("Crash: destroy consumer SIGKILLed",
                     "SIGKILL at a random moment of a %d-destroy burst (fake latency %d ms), restart; "
                     "one kill per burst" % (n, latency_ms))
    t0 = time.monotonic()
    rig = Rig(fly_config={"latency_ms": latency_ms})
    all_ids = []
    kills = []
    try:
        c = rig.consumer()
        c.wait_assigned()
        for r in range(rounds):
            ids = rig.seed([machine_id(0x10000000 * (r + 1) + i) for i in range(n)])
            all_ids += ids
            base = rig.delete_200s()
            k = rng.randint(1, n - n // 10)
            rig.produce_destroys(ids)
            wait_until(lambda: rig.delete_200s() - base >= k, timeout=60, interval=0.01,
                       what="%d deletes of round %d" % (k, r))
            c.kill()
            in_flight = rig.fly.stats()["in_flight"]
            kills.append((k, in_flight))
            c = rig.consumer()
            wait_until(lambda: rig.gone(ids), timeout=120, interval=0.3, what="round %d destroyed" % r)
            rig.committed_to_end(timeout=60)
            res["times"] += 1
            say("crash_destroy round %d: killed after %d deletes (%d calls in flight at the fake); all %d done"
                % (r + 1, k, in_flight, n))
        check(res, c.stop() == 0, "the last consumer did not exit 0 on SIGTERM")
        dls = rig.dead_letters()
        check(res, len(dls) == 0, "%d dead letters" % len(dls))
        rep = rig.destroy_repeats(all_ids)
        missing = set(all_ids) - rep["completed_ids"]
        note_missing_events(res, missing)
        res["lost"] = len(set(all_ids) - rig.finished_ids())
        check(res, res["lost"] == 0, "%d machines left undestroyed" % res["lost"])
        res["figures"].update({"destroys": len(all_ids), "kills": len(kills),
                               "kill_after_deletes": [k for k, _ in kills],
                               "dead_letters": len(dls), "extra_deletes": rep["extra_deletes"],
                               "extra_completed_events": rep["extra_completed_events"]})
        res["repeats"] = "%d extra fly deletes (%d machines), %d extra `completed` events" % (
            rep["extra_deletes"], rep["machines_deleted_twice"], rep["extra_completed_events"])
        res["outcome"] = "%d/%d machines destroyed, 0 dead letters expected (got %d), offsets committed to the end " \
                         "after every round" % (len(all_ids) - res["lost"], len(all_ids), len(dls))
    finally:
        rig.close()
        res["seconds"] = time.monotonic() - t0
    return res


# ---------------------------------------------------------------------------------------
# 1b. Crashes of the provision consumer at given steps.

def _provision_rig(hosts):
    rig = Rig(fly_config=hosts.fly_config())
    rig.fly.seed_machine(name="gc-default", state="started")
    return rig


def _hub_request(request_id, issue):
    return {"requestId": request_id, "repository": "acme/widgets", "gc": "default", "prompt": "default",
            "github": {"issueNumber": str(issue), "issueTitle": "Make the widgets spin",
                       "issueBody": "They should spin clockwise."}}


def _provision(rig, req):
    rig.kafka.produce(PROVISION, req, key=req["requestId"])
    rig.kafka.flush()


def _final(rig, rid, timeout=90):
    return wait_until(lambda: [e for e in rig.events() if e["requestId"] == rid
                               and e["state"] in ("completed", "failed")],
                      timeout=timeout, interval=0.3, what="request %s to finish" % rid)


def scenario_crash_provision(rounds=1, steps=("capacity", "volume", "golden_claude")):
    from provision_harness import ThopterHosts
    res = new_result("Crash: provision consumer SIGKILLed",
                     "SIGKILL when a step starts (%s), restart" % ", ".join(steps))
    t0 = time.monotonic()
    hosts = ThopterHosts()
    rig = None
    try:
        rig = _provision_rig(hosts)
        env = dict(hosts.env(), MAX_THOPTERS="1000")
        c = rig.consumer("provision", env=env)
        c.wait_assigned()
        n = 0
        for r in range(rounds):
            for step in steps:
                rid = "crash-%d-%s" % (r, step)
                _provision(rig, _hub_request(rid, 200 + n))
                c.wait_log(r'"requestId":"%s","msg":"step %s"' % (rid, step), timeout=60)
                c.kill()
                c = rig.consumer("provision", env=env)
                final = _final(rig, rid)
                n += 1
                ok = check(res, final[-1]["state"] == "completed", "killed at %s: %r" % (step, final[-1]))
                mine = [m for m in rig.fly.machines() if m["name"].startswith("thopter-")
                        and m["config"].get("metadata", {}).get("thopter_request_id") == rid]
                creates = [x for x in rig.fly.calls(route="machines.create")
                           if (x.get("body") or {}).get("config", {}).get("metadata", {})
                           .get("thopter_request_id") == rid]
                check(res, len(mine) == 1, "killed at %s: %d machines" % (step, len(mine)))
                check(res, len(creates) == 1, "killed at %s: %d creates" % (step, len(creates)))
                wait_until(lambda: hosts.agent_runs() >= n, timeout=10, what="the agent launch")
                time.sleep(0.3)
                check(res, hosts.agent_runs() == n, "killed at %s: the agent ran %d times for %d provisions"
                      % (step, hosts.agent_runs(), n))
                res["times"] += 1 if ok else 0
                say("crash_provision: killed at step %s -> %s, machines %d" % (step, final[-1]["state"], len(mine)))
        check(res, c.stop() == 0, "the last consumer did not exit 0 on SIGTERM")
        dls = rig.dead_letters()
        check(res, not dls, "%d dead letters" % len(dls))
        vols = rig.fly.volumes()
        live = [v for v in vols if not v.get("deleted")]
        unattached = [v for v in live if not v.get("attached_machine_id")]
        res["notes"].append("volumes: %d for %d provisions (%d unattached)" % (len(live), n, len(unattached)))
        res["lost"] = n - res["times"]
        res["figures"] = {"provisions": n, "volumes": len(live), "unattached_volumes": len(unattached)}
        res["outcome"] = "%d/%d completed; one machine and one create per request; agent launched once each" % (
            res["times"], n)
        started = {}
        for e in rig.events():
            if e["state"] == "started":
                started[e["requestId"]] = started.get(e["requestId"], 0) + 1
        lost_started = sum(1 for k in started.values() if k < 2)
        res["repeats"] = ("%d requests resumed after the kill (steps redone idempotently, nothing created twice); "
                          "%d `started` events re-emitted" % (n, sum(started.values()) - n))
        if lost_started:
            res["notes"].append("%d of %d killed attempts never got their first `started` event out: status events "
                                "still in the producer's queue die with a SIGKILL (events are not covered by "
                                "guarantee 1; the redelivery emits `started` again, so every request still has "
                                "one `started` and one final event)" % (lost_started, n))
    finally:
        if rig:
            rig.close()
        hosts.close()
        res["seconds"] = time.monotonic() - t0
    return res


# The steps scenario_crash_provision_parallel kills at: the serial scenario's three, the rest of
# the provision, and golden_claude_wait (a provision waiting for its turn at the Golden Claude,
# THOPTER_GC_COPY_CONCURRENCY=1; only reached when two copies would overlap, so a round that
# never reaches it is noted, not failed).
PARALLEL_CRASH_STEPS = ("capacity", "volume", "create", "wait", "golden_claude_wait", "golden_claude", "git",
                        "context_files", "launch")
OPTIONAL_CRASH_STEPS = ("golden_claude_wait",)


def _live(m):
    return m["state"] not in ("destroying", "destroyed") and not m.get("gone")


def _rid_of(m):
    return (m.get("config") or {}).get("metadata", {}).get("thopter_request_id")


def scenario_crash_provision_parallel(rounds=1, steps=PARALLEL_CRASH_STEPS, concurrency=3, copy_delay_s=0.3,
                                      fly_pacing=False, fly_latency_ms=100):
    """MAX_CONCURRENT_PROVISIONS=@concurrency: each round produces @concurrency requests at once,
    SIGKILLs the consumer as soon as one of them announces the step, restarts it, and checks every
    request of the round (they were all in flight, or queued behind them): completed, one live
    machine and one create per requestId, the agent launched once on that machine's own host.
    At the end: no thopter machine without a completed request, no unattached volume beyond the
    fake's own, no dead letters, the group's offsets at the end of thopter.provision, exit 0 on
    SIGTERM. Every machine gets its own thopter host (ThopterHosts(thopters=k)), as hosts are
    never wiped; @copy_delay_s slows each Golden Claude copy, so copies meet at the GC.
    THOPTER_FLY_PACING is off by default here (the fake does not rate-limit): with it on, the
    capacity step's list waits 1 s per request after the first three lists, so the requests of a
    round run staggered and the other two sit at capacity at most kills; off, they move nearly
    in step, and each kill finds all of them in flight. @fly_latency_ms per fly call makes the
    steps that are fly calls (capacity, volume, create) outlast the log polling, so a kill there
    lands inside the step; figures["at_kill"] says where each request of the round was."""
    from provision_harness import ThopterHosts
    res = new_result("Crash: provision consumer SIGKILLed, %d in flight" % concurrency,
                     "MAX_CONCURRENT_PROVISIONS=%d, %d requests produced at once; SIGKILL when one of them starts "
                     "a step (%s), restart; THOPTER_FLY_PACING=%d" % (concurrency, concurrency, ", ".join(steps),
                                                                      1 if fly_pacing else 0))
    t0 = time.monotonic()
    n_req = rounds * len(steps) * concurrency
    # A few hosts beyond one per request, so a duplicate machine shows as a duplicate, not as the
    # fake's 503 of an exhausted address pool.
    hosts = ThopterHosts(thopters=min(80, n_req + concurrency), observe_copies=True, copy_delay_s=copy_delay_s)
    rig = None
    say("crash_provision_parallel: %d thopter hosts up in %.1f s" % (len(hosts.thopters), time.monotonic() - t0))
    try:
        rig = Rig(fly_config=dict(hosts.fly_config(), latency_ms=fly_latency_ms))
        hosts.seed_golden_claudes(rig.fly)
        pre_volumes = {v["id"] for v in rig.fly.volumes()}
        env = dict(hosts.env(), MAX_THOPTERS="1000", MAX_CONCURRENT_PROVISIONS=str(concurrency),
                   THOPTER_FLY_PACING="1" if fly_pacing else "0")
        c = rig.consumer("provision", env=env)
        c.wait_assigned()
        all_rids, not_reached, killed_at, in_step = [], [], {}, 0
        for r in range(rounds):
            for step in steps:
                rids = ["pcrash-%d-%s-%d" % (r, step, j) for j in range(concurrency)]
                for j, rid in enumerate(rids):
                    rig.kafka.produce(PROVISION, _hub_request(rid, 500 + len(all_rids) + j), key=rid)
                rig.kafka.flush()
                all_rids += rids
                rx = r'"requestId":"(%s)","msg":"step %s"' % ("|".join(re.escape(x) for x in rids), step)
                try:
                    m = c.wait_log(rx, timeout=20 if step in OPTIONAL_CRASH_STEPS else 60)
                except AssertionError:
                    if step not in OPTIONAL_CRASH_STEPS:
                        raise
                    m = None
                if m is None:
                    not_reached.append(step)
                    say("crash_provision_parallel: no request reached step %s; not killed" % step)
                else:
                    killed_at[step] = {"by": m.group(1)}
                    # Where the others were: each request's last step in this consumer's log.
                    text = c.log_text()
                    c.kill()
                    where = {}
                    for rid in rids:
                        last = re.findall(r'"requestId":"%s","msg":"step (\w+)"' % re.escape(rid), text)
                        where[rid] = last[-1] if last else "-"
                    killed_at[step]["at"] = [where[x] for x in rids]
                    in_step += where[m.group(1)] == step
                    c = rig.consumer("provision", env=env)
                    say("crash_provision_parallel: killed when %s started %s; the round's requests were at %s" % (
                        m.group(1), step, ", ".join(where[x] for x in rids)))
                for rid in rids:
                    final = _final(rig, rid, timeout=120)
                    ok = check(res, final[-1]["state"] == "completed", "%s: %r" % (rid, final[-1]))
                    res["times"] += 1 if ok else 0
        # Every request of every round, now that all are final.
        machines = [m for m in rig.fly.machines() if m["name"].startswith("thopter-")]
        creates = rig.fly.calls(route="machines.create")
        completed = set()
        for e in rig.events():
            if e["state"] == "completed":
                completed.add(e["requestId"])
        wait_until(lambda: hosts.agent_runs() >= len(all_rids), timeout=10, what="the agent launches")
        time.sleep(0.3)
        per_host, refused = {}, 0
        for rid in all_rids:
            mine = [m for m in machines if _rid_of(m) == rid and _live(m)]
            made = [x for x in creates if (x.get("body") or {}).get("config", {}).get("metadata", {})
                    .get("thopter_request_id") == rid]
            check(res, len(mine) == 1, "%s: %d live machines" % (rid, len(mine)))
            # A create that fly refused with 412 (the volume it named was attached meanwhile to
            # another request's machine) made nothing, and the provision picks another volume:
            # counted apart. Every other create, answered or cut off by the kill, counts.
            made_ok = [x for x in made if x["status"] != 412]
            refused += len(made) - len(made_ok)
            check(res, len(made_ok) == 1, "%s: %d creates (status, volume: %s)" % (rid, len(made_ok), ", ".join(
                "%s %s" % (x["status"], ((x.get("body") or {}).get("config", {}).get("mounts") or [{}])[0]
                           .get("volume")) for x in made)))
            for m in mine:
                try:
                    i = hosts.host_index(m.get("private_ip"))
                except ValueError:
                    check(res, False, "%s: machine %s has no thopter host (%r)" % (rid, m["id"], m.get("private_ip")))
                    continue
                per_host[i] = per_host.get(i, 0) + 1
                runs = hosts.agent_runs(i)
                check(res, runs == 1, "%s: the agent ran %d times on its host" % (rid, runs))
        check(res, all(v == 1 for v in per_host.values()), "two requests' machines on one host: %r" % per_host)
        check(res, hosts.agent_runs() == len(all_rids), "the agent ran %d times for %d requests" % (
            hosts.agent_runs(), len(all_rids)))
        orphans = [m["id"] for m in machines if _live(m) and _rid_of(m) not in completed]
        check(res, not orphans, "orphan thopter machines (no completed request): %r" % orphans)
        vols = rig.fly.volumes()
        live = [v for v in vols if not v.get("deleted")]
        unattached = [v for v in live if not v.get("attached_machine_id") and v["id"] not in pre_volumes]
        check(res, not unattached, "%d unattached volumes left: %r" % (len(unattached), [v["id"] for v in unattached]))
        ends = rig.committed_to_end(group=PGROUP, topic=PROVISION)
        check(res, c.stop() == 0, "the last consumer did not exit 0 on SIGTERM")
        dls = rig.dead_letters()
        check(res, not dls, "%d dead letters" % len(dls))
        started = {}
        for e in rig.events():
            if e["state"] == "started" and e["requestId"] in set(all_rids):
                started[e["requestId"]] = started.get(e["requestId"], 0) + 1
        max_copies = max(o.max_concurrent() for o in hosts.observers.values())
        n = len(all_rids)
        res["lost"] = n - res["times"]
        res["figures"] = {"provisions": n, "concurrency": concurrency, "kills": len(killed_at),
                          "steps_not_reached": not_reached, "machines": len(machines),
                          "volumes": len(live), "pre_existing_volumes": len(pre_volumes),
                          "unattached_volumes": len(unattached), "orphans": len(orphans),
                          "dead_letters": len(dls), "provision_end_offsets": ends,
                          "gc_copies_max_at_once": max_copies, "started_events": sum(started.values()),
                          "creates_refused_volume_claimed": refused, "at_kill": killed_at,
                          "kills_inside_the_step": in_step}
        res["outcome"] = ("%d/%d completed over %d kills; one live machine and one successful create per request "
                          "(%d creates refused with 412), each on its own host; agent launched once each; %d orphan "
                          "machines, %d unattached volumes (the fake had %d), 0 dead letters expected (got %d), "
                          "offsets at the end" % (res["times"], n, len(killed_at), refused, len(orphans),
                                                  len(unattached), len(pre_volumes), len(dls)))
        res["repeats"] = "%d `started` events for %d requests (a redelivery after a kill emits it again)" % (
            sum(started.values()), n)
        if not_reached:
            res["notes"].append("no request reached step(s) %s, so no kill there" % ", ".join(not_reached))
        res["notes"].append("%d of %d kills landed while the request that announced the step was still in it (the "
                            "rest a step or two later: the log is polled every 50 ms); the round's requests at each "
                            "kill: %s" % (in_step, len(killed_at), "; ".join(
                                "%s: %s" % (k, ", ".join(v["at"])) for k, v in killed_at.items())))
        # Within one consumer the claims keep two provisions off one volume, the new ones too.
        check(res, refused == 0, "%d creates refused with 412: two provisions in flight named one volume" % refused)
        if refused:
            res["notes"].append("%d creates refused by fly with 412 (volume already attached to another request's "
                                "new machine), each followed by another pick and one successful create: a volume "
                                "another provision in flight had just created showed free in the volume list"
                                % refused)
        res["notes"].append("Golden Claude copies at once, seen on the GC: at most %d (a SIGKILLed consumer's copy "
                            "can still be running on the GC when its successor starts one)" % max_copies)
    finally:
        if rig:
            rig.close()
        hosts.close()
        res["seconds"] = time.monotonic() - t0
    return res


# ---------------------------------------------------------------------------------------
# 2. Broker faults, with a sampler of committed offsets against finished work.

class CommitSampler(threading.Thread):
    """Every interval: read the group's committed offsets, then which machines the fake has
    destroyed; a committed offset past the contiguous finished prefix of its partition is a
    violation of guarantee 1 (the fake's view is read second, so it can only be ahead)."""

    def __init__(self, rig, interval=0.2):
        super().__init__(daemon=True)
        self.rig, self.interval = rig, interval
        self.samples = self.errors = 0
        self.violations = []
        self.halt = threading.Event()

    def run(self):
        from confluent_kafka import Consumer, TopicPartition
        reader = Consumer({"bootstrap.servers": self.rig.broker.bootstrap, "group.id": DGROUP,
                           "enable.auto.commit": False, "log_level": 0})
        tps = [TopicPartition(DESTROY, p) for p in range(6)]
        try:
            self._run(reader, tps)
        finally:
            reader.close()

    def _run(self, reader, tps):
        while not self.halt.is_set():
            try:
                committed = {tp.partition: tp.offset for tp in reader.committed(tps, timeout=5)}
                done = self.rig.finished_ids()
                with self.rig._where_lock:
                    where = dict(self.rig.where)
                for p, off in committed.items():
                    if off < 0:
                        continue
                    fin = {o for (pp, o), mid in where.items() if pp == p and mid in done}
                    prefix = 0
                    while prefix in fin:
                        prefix += 1
                    if off > prefix:
                        self.violations.append((p, off, prefix))
                self.samples += 1
            except Exception:
                self.errors += 1  # a broker down: this sample is skipped
            self.halt.wait(self.interval)

    def stop(self):
        self.halt.set()
        self.join(tmo(30))


def scenario_broker_faults(rounds=3, per_wave=100, latency_ms=80, long_outage_s=6):
    res = new_result("Broker faults (3 mock brokers)",
                     "per round: OffsetCommit errors (20 x COORDINATOR_NOT_AVAILABLE, 10 x REBALANCE_IN_PROGRESS, "
                     "10 x REQUEST_TIMED_OUT), the group coordinator moved twice, one broker down 4 s, every broker "
                     "down 2 s%s; %d destroys produced per fault" % (
                         ", every broker down %d s (past the 4 s session timeout)" % long_outage_s
                         if long_outage_s else "", per_wave))
    t0 = time.monotonic()
    rig = Rig(brokers=3, fly_config={"latency_ms": latency_ms})
    ids_all = []
    faults = 0
    sampler = None
    try:
        c = rig.consumer()
        c.wait_assigned()
        sampler = CommitSampler(rig)
        sampler.start()
        seq = [0]

        def wave():
            ids = rig.seed([machine_id(0x20000000 + seq[0] * 1000 + i) for i in range(per_wave)])
            seq[0] += 1
            ids_all.extend(ids)
            rig.produce_destroys(ids)
            wait_until(lambda: rig.delete_200s() > 0, timeout=30, what="work under way")

        for r in range(rounds):
            wave()
            rig.broker.push_errors(8, 20, 15)
            rig.broker.push_errors(8, 10, 27)
            rig.broker.push_errors(8, 10, 7)
            time.sleep(3)
            faults += 1
            wave()
            rig.broker.move_coordinator(DGROUP, 2 + r % 2)
            time.sleep(2)
            rig.broker.move_coordinator(DGROUP, 1 + (r + 2) % 3)
            time.sleep(2)
            faults += 1
            wave()
            rig.broker.down_one(2)
            time.sleep(4)
            rig.broker.up_one(2)
            faults += 1
            wave()
            rig.broker.down()
            time.sleep(2)
            rig.broker.up()
            faults += 1
            if long_outage_s:
                wave()
                rig.broker.down()
                time.sleep(long_outage_s)
                rig.broker.up()
                faults += 1
            say("broker_faults round %d: faults injected (%d samples so far, %d violations)"
                % (r + 1, sampler.samples, len(sampler.violations)))
            res["times"] += 1
        wait_until(lambda: rig.gone(ids_all), timeout=180, interval=0.5, what="every machine destroyed")
        ends = rig.committed_to_end(timeout=90)
        time.sleep(1)
        sampler.stop()
        committed = rig.kafka.committed(DGROUP, DESTROY)
        check(res, all(committed.get(p, -1) == e for p, e in ends.items()),
              "committed %r != end %r" % (committed, ends))
        check(res, not sampler.violations, "committed past unfinished work: %r" % sampler.violations[:5])
        check(res, sampler.samples >= 5, "only %d samples" % sampler.samples)
        check(res, c.stop() == 0, "the consumer did not exit 0 on SIGTERM")
        dls = rig.dead_letters()
        check(res, not dls, "%d dead letters" % len(dls))
        rep = rig.destroy_repeats(ids_all)
        missing = set(ids_all) - rep["completed_ids"]
        note_missing_events(res, missing)
        res["lost"] = len(set(ids_all) - rig.finished_ids())
        check(res, res["lost"] == 0, "%d machines left undestroyed" % res["lost"])
        commit_failures = len(re.findall(r"commit of .* failed", c.log_text()))
        rebalances = len(re.findall(r'"msg":"assigned ', c.log_text()))
        res["figures"].update({"destroys": len(ids_all), "faults": faults, "samples": sampler.samples,
                          "samples_skipped": sampler.errors, "violations": len(sampler.violations),
                          "commit_failures_logged": commit_failures, "assignments": rebalances})
        res["outcome"] = ("%d/%d destroys completed; %d commit samples (%d skipped while brokers were down), "
                          "%d past unfinished work; committed = end; %d commit failures logged and retried; "
                          "%d dead letters" % (len(ids_all) - res["lost"], len(ids_all), sampler.samples,
                                               sampler.errors, len(sampler.violations), commit_failures, len(dls)))
        res["repeats"] = "%d extra deletes, %d extra `completed` events" % (rep["extra_deletes"],
                                                                          rep["extra_completed_events"])
    finally:
        if sampler and sampler.is_alive():
            sampler.stop()
        rig.close()
        res["seconds"] = time.monotonic() - t0
    return res


def scenario_stop_during_outage(rounds=2, n=60, latency_ms=200):
    """Guarantee 9 when the broker is away: SIGTERM while every broker is down."""
    res = new_result("Graceful stop while every broker is down",
                     "SIGTERM during a %d-destroy burst right after every broker went down; brokers back; "
                     "restart" % n)
    t0 = time.monotonic()
    stops, lost_events, extra_deletes, extra_completed = [], 0, 0, 0
    try:
        for r in range(rounds):
            rig = Rig(fly_config={"latency_ms": latency_ms})
            try:
                c = rig.consumer()
                c.wait_assigned()
                ids = rig.seed([machine_id(0x60000000 + r * 1000 + i) for i in range(n)])
                rig.produce_destroys(ids)
                wait_until(lambda: rig.delete_200s() >= n // 5 and rig.fly.stats()["in_flight"] >= 3,
                           timeout=30, interval=0.01, what="work under way")
                rig.broker.down()
                time.sleep(0.05)
                in_flight = rig.fly.stats()["in_flight"]
                ts = time.monotonic()
                c.signal()
                rc = c.wait(timeout=90)
                stops.append((rc, round(time.monotonic() - ts, 1), in_flight))
                check(res, rc == 0, "exit %s after SIGTERM with the brokers down" % rc)
                rig.broker.up()
                c2 = rig.consumer()
                wait_until(lambda: rig.gone(ids), timeout=120, interval=0.3, what="the rest destroyed")
                rig.committed_to_end(timeout=60)
                check(res, c2.stop() == 0, "restarted consumer did not exit 0")
                dls = rig.dead_letters()
                check(res, not dls, "%d dead letters" % len(dls))
                rep = rig.destroy_repeats(ids)
                lost_events += len(set(ids) - rep["completed_ids"])
                extra_deletes += rep["extra_deletes"]
                extra_completed += rep["extra_completed_events"]
                check(res, rig.gone(ids), "machines left")
                res["times"] += 1
                say("stop_during_outage round %d: exit %s after %.1f s (%d fly calls in flight at SIGTERM)"
                    % (r + 1, rc, stops[-1][1], in_flight))
            finally:
                rig.close()
        res["lost"] = 0 if not res["failures"] else None
        res["figures"] = {"exit_status_seconds_in_flight": stops, "requests_without_completed_event": lost_events}
        res["outcome"] = ("exit %s after %s s (drain deadline 20 s); the restarted consumer finished everything, "
                          "offsets at the end, 0 dead letters; %d requests never got a `completed` event"
                          % ("/".join(sorted({str(x[0]) for x in stops})),
                             "/".join(str(x[1]) for x in stops), lost_events))
        res["repeats"] = "%d extra deletes, %d extra `completed` events" % (extra_deletes, extra_completed)
        if lost_events:
            res["notes"].append("Status events still unacknowledged at exit are dropped (the consumer logs "
                                "\"N record(s) not acknowledged at shutdown\"); their records were committed, "
                                "so no redelivery re-emits them.")
    finally:
        res["seconds"] = time.monotonic() - t0
    return res


def scenario_event_lost_after_commit(wait_s=8):
    """The final status event cannot be delivered: the events topic's leader (broker 3) is down,
    the group coordinator and the destroy partitions are on brokers 1-2. The destroy's work
    completes, but its record must stay uncommitted until its `completed` event is acknowledged
    (contract section 3: a valid request's last event is `completed` or `failed`). Stop the
    consumer, bring broker 3 back, start another: the record is redelivered, the events are sent,
    and only then is the offset committed."""
    res = new_result("Final event vs commit", "events-topic leader down while a destroy completes; "
                     "SIGTERM; broker back; restart")
    t0 = time.monotonic()
    rig = Rig(brokers=3, fly_config={"latency_ms": 5})
    try:
        rig.broker.move_coordinator(DGROUP, 1)
        for p in range(6):
            rig.broker.inject("leader %s %d %d" % (DESTROY, p, 1 + p % 2))
        for p in range(3):
            rig.broker.inject("leader %s %d 3" % (EVENTS, p))
        time.sleep(0.3)
        c = rig.consumer(env={"THOPTER_DRAIN_TIMEOUT": "3"})
        c.wait_assigned()
        mid = rig.seed([machine_id(0x70000001)])[0]
        rig.broker.down_one(3)
        time.sleep(0.2)
        rig.produce_destroys([mid])
        wait_until(lambda: rig.gone([mid]), timeout=30, what="the machine destroyed")
        ends = rig.kafka.end_offsets(DESTROY)
        time.sleep(3.0)  # the commit would have happened by now
        committed_early = sum(max(o, 0) for o in rig.kafka.committed(DGROUP, DESTROY).values())
        rc = c.stop(timeout=60)
        rig.broker.up_one(3)
        c2 = rig.consumer()
        c2.wait_assigned()
        rig.committed_to_end(timeout=60)
        time.sleep(1.0)
        evs = [e for e in rig.events() if e.get("thopterId") == mid]
        states = [e["state"] for e in evs]
        res["times"] = 1
        res["figures"] = {"exit": rc, "events": states, "committed_while_event_pending": committed_early,
                          "end": sum(ends.values())}
        check(res, committed_early == 0, "the record was committed before its final event was acknowledged")
        check(res, "completed" in states, "no `completed` event after the restart (events seen: %r)" % states)
        res["lost"] = 0 if rig.gone([mid]) else 1
        res["outcome"] = ("work done, offset held back while the event was pending (committed %d of %d), "
                          "stop exit %s; after the restart: events %s, offset committed"
                          % (committed_early, sum(ends.values()), rc, ", ".join(states) or "none"))
        c2.stop()
    finally:
        rig.close()
        res["seconds"] = time.monotonic() - t0
    return res


# ---------------------------------------------------------------------------------------
# 3. Scale-out: two consumers in the destroy group, one SIGKILLed.

def scenario_scale_out(rounds=2, n=300, latency_ms=30, rng=None):
    rng = rng or random.Random(3)
    res = new_result("Scale-out: two destroy consumers",
                     "two consumers share the 6 partitions; one SIGKILLed mid-run (%d destroys per round, "
                     "fresh broker per round)" % n)
    t0 = time.monotonic()
    totals = {"destroys": 0, "lost": 0, "extra_deletes": 0, "extra_completed": 0, "max_in_flight": 0,
              "split": []}
    try:
        for r in range(rounds):
            rig = Rig(fly_config={"latency_ms": latency_ms})
            try:
                a, b = rig.consumer(), rig.consumer()
                wait_until(lambda: assignment_sizes(a) > 0 and assignment_sizes(b) > 0
                           and assignment_sizes(a) + assignment_sizes(b) == 6,
                           timeout=40, interval=0.2, what="both consumers assigned")
                split = (assignment_sizes(a), assignment_sizes(b))
                totals["split"].append("%d+%d" % split)
                ids = rig.seed([machine_id(0x30000000 + r * 10000 + i) for i in range(n)])
                rig.produce_destroys(ids)
                k = rng.randint(n // 5, n // 2)
                wait_until(lambda: rig.delete_200s() >= k, timeout=60, interval=0.02, what="%d deletes" % k)
                both = rig.fly.stats()["max_in_flight"]
                victim, survivor = (a, b) if rng.random() < 0.5 else (b, a)
                victim.kill()
                wait_until(lambda: rig.gone(ids), timeout=120, interval=0.3, what="all destroyed by the survivor")
                rig.committed_to_end(timeout=60)
                check(res, survivor.stop() == 0, "the survivor did not exit 0")
                dls = rig.dead_letters()
                check(res, not dls, "round %d: %d dead letters" % (r, len(dls)))
                rep = rig.destroy_repeats(ids)
                missing = set(ids) - rep["completed_ids"]
                note_missing_events(res, missing)
                check(res, rig.gone(ids), "round %d: machines left undestroyed" % r)
                missing = set(ids) - rig.finished_ids()
                st = rig.fly.stats()
                check(res, max(st["max_in_flight_by_machine"].values()) <= 1, "two calls at once for one machine")
                check(res, st["max_in_flight"] <= 10, "max in flight %d > 2 x 5" % st["max_in_flight"])
                totals["destroys"] += n
                totals["lost"] += len(missing)
                totals["extra_deletes"] += rep["extra_deletes"]
                totals["extra_completed"] += rep["extra_completed_events"]
                totals["max_in_flight"] = max(totals["max_in_flight"], both)
                res["times"] += 1
                say("scale_out round %d: split %s, killed one after %d deletes; survivor finished %d"
                    % (r + 1, "%d+%d" % split, k, n))
            finally:
                rig.close()
        res["lost"] = totals["lost"]
        res["figures"].update(totals)
        res["outcome"] = ("both consumers held partitions (%s); the survivor destroyed all %d, offsets at the end, "
                          "0 dead letters; fake saw at most %d calls at once with both running (limit 2 x 5)"
                          % (", ".join(totals["split"]), totals["destroys"], totals["max_in_flight"]))
        res["repeats"] = "%d extra deletes, %d extra `completed` events" % (totals["extra_deletes"],
                                                                          totals["extra_completed"])
    finally:
        res["seconds"] = time.monotonic() - t0
    return res


# ---------------------------------------------------------------------------------------
# 4. fly faults.

def _max_overlap(intervals):
    points = []
    for s, e in intervals:
        points.append((s, 1))
        points.append((e, -1))
    points.sort(key=lambda p: (p[0], p[1]))
    cur = best = 0
    for _, d in points:
        cur += d
        best = max(best, cur)
    return best


def scenario_fly_faults(rounds=2, plain=40, retries=5, concurrency=5):
    res = new_result("fly API faults",
                     "per round, on distinct machines: 429 x3 with Retry-After: 1, 429 x3 without, 503 x3 on lookup, "
                     "an answer 2 s late with a 1 s client timeout, 2 reset connections; and faults that outlast "
                     "the budget (503, 429, 2 s late, forever); %d plain destroys alongside; "
                     "THOPTER_FLY_RETRIES=%d" % (plain, retries))
    t0 = time.monotonic()
    fly_timeout = 1.0
    t0_wall = time.time()
    rig = Rig(fly_config={"latency_ms": 10})
    env = {"THOPTER_FLY_RETRIES": str(retries), "THOPTER_FLY_TIMEOUT": "1",
           "MAX_CONCURRENT_DESTROYS": str(concurrency)}
    recovered = {}
    dead = {}
    all_ids = []
    try:
        c = rig.consumer(env=env)
        c.wait_assigned()
        for r in range(rounds):
            base = 0x40000000 + r * 100000
            seq = iter(range(10000))

            def mk(count):
                return rig.seed([machine_id(base + next(seq)) for _ in range(count)])
            groups = {
                "429+Retry-After": (mk(3), dict(method="DELETE", route="machines.delete", status=429, count=3,
                                                retry_after=1)),
                "429 bare": (mk(3), dict(method="DELETE", route="machines.delete", status=429, count=3)),
                "503 burst": (mk(3), dict(method="GET", route="machines.get", status=503, count=3)),
                "slow > timeout": (mk(2), dict(method="GET", route="machines.get", delay_ms=2000, count=1)),
                "reset": (mk(3), dict(method="DELETE", route="machines.delete", drop="reset", count=2)),
            }
            forever = {
                "503 forever": (mk(1), dict(method="DELETE", route="machines.delete", status=503, count=-1)),
                "429 forever": (mk(1), dict(method="DELETE", route="machines.delete", status=429, count=-1,
                                            retry_after=1)),
                "slow forever": (mk(1), dict(method="GET", route="machines.get", delay_ms=2000, count=-1)),
            }
            for name, (ids, rule) in list(groups.items()) + list(forever.items()):
                for i in ids:
                    rig.fly.push_fault(machine=i, **rule)
            for name, (ids, _) in groups.items():
                recovered.setdefault(name, []).extend(ids)
            for name, (ids, _) in forever.items():
                dead.setdefault(name, []).extend(ids)
            ids = mk(plain)
            mixed = [i for g in list(groups.values()) + list(forever.values()) for i in g[0]] + ids
            random.Random(r).shuffle(mixed)
            all_ids += mixed
            rig.produce_destroys(mixed)
            want_ok = set(mixed) - {i for g in forever.values() for i in g[0]}
            wait_until(lambda: rig.gone(want_ok), timeout=120, interval=0.3, what="round %d recovered" % r)
            wait_until(lambda: len(rig.dead_letters()) >= sum(len(v) for v in dead.values()), timeout=120,
                       interval=0.3, what="the dead letters of the hopeless machines")
            rig.committed_to_end(timeout=60)
            res["times"] += 1
            say("fly_faults round %d done" % (r + 1))
        check(res, c.stop() == 0, "the consumer did not exit 0")
        calls = rig.fly.calls()
        by_machine = {}
        for x in calls:
            if x["machine"]:
                by_machine.setdefault(x["machine"], []).append(x)
        # Recovered within the budget.
        for name, ids in recovered.items():
            for i in ids:
                route = "machines.delete" if "429" in name or name == "reset" else "machines.get"
                tries = [x for x in by_machine.get(i, []) if x["route"] == route]
                check(res, tries and tries[-1]["status"] in (200, 404) and len(tries) <= retries,
                      "%s %s: %r" % (name, i, [x["status"] for x in tries]))
        # Retry-After honoured: each retry came at least ~1 s after the 429.
        ra_gaps, bare_gaps = [], []
        for name, gaps in (("429+Retry-After", ra_gaps), ("429 bare", bare_gaps)):
            for i in recovered[name]:
                tries = [x for x in by_machine[i] if x["route"] == "machines.delete"]
                for a, b in zip(tries, tries[1:]):
                    gaps.append(b["started"] - a["ended"])
        check(res, ra_gaps and min(ra_gaps) >= 0.9, "Retry-After not honoured: gaps %r" % ra_gaps[:6])
        # The hopeless ones: fly_unavailable after the budget.
        dls = {json.loads(m.value())["thopterId"]: headers_dict(m) for m in rig.dead_letters()}
        classes = {}
        breaker_extra = []
        for name, ids in dead.items():
            for i in ids:
                h = dls.get(i)
                if check(res, h is not None, "%s %s: no dead letter" % (name, i)):
                    cls = "%s/%s attempts %s" % (h["thopter.dlq.error.class"], h["thopter.dlq.error.step"],
                                                 h["thopter.dlq.attempts"])
                    classes.setdefault(name, set()).add(cls)
                    check(res, h["thopter.dlq.error.class"] == "fly_unavailable",
                          "%s: class %s" % (name, h["thopter.dlq.error.class"]))
                    # Exactly the budget: the API answers the breaker's probe, so these
                    # failures are the machine's own and the budget is never restarted
                    # (guarantee 12; the budget restarts only after a real outage).
                    att = int(h["thopter.dlq.attempts"])
                    check(res, att == retries, "%s: attempts %d (budget %d)" % (name, att, retries))
                    if att > retries:
                        breaker_extra.append("%s %s: %d attempts" % (name, i, att))
        check(res, len(dls) == sum(len(v) for v in dead.values()), "unexpected dead letters: %d" % len(dls))
        # Concurrency, as the consumer saw it: a call abandoned at the client's timeout stops counting there.
        iv, per_machine = [], {}
        for x in calls:
            if not x["machine"] or x["started"] is None:
                continue
            # The client's 1 s timer starts before the fake's "started" (headers read): it has
            # given up by started + 1 s at the latest.
            end = min(x["ended"] or x["started"] + fly_timeout, x["started"] + fly_timeout)
            iv.append((x["started"], end))
            per_machine.setdefault(x["machine"], []).append((x["started"], end))
        max_all = _max_overlap(iv)
        max_one = max(_max_overlap(v) for v in per_machine.values())
        raw = rig.fly.stats()
        check(res, max_all <= concurrency, "max in flight %d > %d" % (max_all, concurrency))
        for mid, v in per_machine.items():
            if _max_overlap(v) > 1:
                check(res, False, "two calls at once for machine %s: %r" % (mid, [
                    (x["route"], x["status"], round(x["started"] - t0_wall, 3),
                     x["ended"] and round(x["ended"] - t0_wall, 3)) for x in by_machine[mid]]))
        rep = rig.destroy_repeats(all_ids)
        res["lost"] = len(set(all_ids) - rep["completed_ids"] - set(dls))
        check(res, res["lost"] == 0, "%d requests neither completed nor dead-lettered" % res["lost"])
        res["figures"] = {"destroys": len(all_ids), "recovered": sum(len(v) for v in recovered.values()),
                          "dead_letters": len(dls), "classes": {k: sorted(v) for k, v in classes.items()},
                          "retry_after_min_gap_s": round(min(ra_gaps), 3) if ra_gaps else None,
                          "bare_429_max_gap_s": round(max(bare_gaps), 3) if bare_gaps else None,
                          "max_in_flight": max_all, "max_in_flight_per_machine": max_one,
                          "fake_raw_max_in_flight": raw["max_in_flight"],
                          "fake_raw_max_per_machine": max(raw["max_in_flight_by_machine"].values()),
                          "calls": len(calls)}
        res["outcome"] = ("%d transiently-failing machines destroyed within %d attempts; Retry-After honoured "
                          "(min gap %.2f s, bare 429 max gap %.2f s); hopeless ones dead-lettered as %s; "
                          "at most %d calls in flight (limit %d), %d per machine" % (
                              res["figures"]["recovered"], retries, min(ra_gaps), max(bare_gaps),
                              "; ".join("%s: %s" % (k, ", ".join(sorted(v))) for k, v in classes.items()),
                              max_all, concurrency, max_one))
        res["repeats"] = "%d extra `completed` events" % rep["extra_completed_events"]
        opens = len(re.findall(r"circuit open", c.log_text()))
        res["figures"]["circuit_opened"] = opens
        check(res, opens == 0, "the circuit opened %d time(s) while the API answered" % opens)
        if breaker_extra:
            res["notes"].append("attempts beyond the budget of %d: %s; the circuit opened %d time(s) during the run "
                                "(attempts while it is open do not spend the budget)" % (
                                    retries, "; ".join(breaker_extra), opens))
        res["notes"].append("The fake itself counted up to %d calls in flight (%d per machine): calls the client "
                            "had abandoned at its 1 s timeout still sleep out their 2 s delay at the fake; counted "
                            "as the client sees them (cut at the timeout) the figures are %d and %d."
                            % (raw["max_in_flight"], res["figures"]["fake_raw_max_per_machine"], max_all, max_one))
    finally:
        rig.close()
        res["seconds"] = time.monotonic() - t0
    return res


# ---------------------------------------------------------------------------------------
# 4b. A dead fly host is not an outage; an outage is not a reason to dead-letter.

def scenario_dead_host(rounds=2, hopeless=5, healthy=60, retries=5):
    res = new_result("dead fly host",
                     "per round: %d machines whose DELETE answers 503 forever (a dead host) published "
                     "before %d healthy ones, on the same partitions; THOPTER_FLY_RETRIES=%d, breaker "
                     "threshold 3, probe every 500 ms" % (hopeless, healthy, retries))
    t0 = time.monotonic()
    rig = Rig(fly_config={"latency_ms": 10})
    env = {"THOPTER_FLY_RETRIES": str(retries), "THOPTER_BREAKER_THRESHOLD": "3",
           "THOPTER_BREAKER_PROBE_MS": "500"}
    healthy_s, all_ids, dead = [], [], []
    try:
        c = rig.consumer(env=env)
        c.wait_assigned()
        for r in range(rounds):
            base = 0x50000000 + r * 100000
            bad = rig.seed([machine_id(base + i) for i in range(hopeless)])
            good = rig.seed([machine_id(base + 1000 + i) for i in range(healthy)])
            for i in bad:
                rig.fly.push_fault(method="DELETE", route="machines.delete", machine=i, status=503, count=-1)
            t = time.monotonic()
            rig.produce_destroys(bad + good)
            wait_until(lambda: rig.gone(good), timeout=120, interval=0.2, what="round %d: the healthy ones" % r)
            healthy_s.append(time.monotonic() - t)
            dead += bad
            all_ids += bad + good
            wait_until(lambda: len(rig.dead_letters()) >= len(dead), timeout=120, interval=0.3,
                       what="round %d: the hopeless ones dead-lettered" % r)
            rig.committed_to_end(timeout=60)
            res["times"] += 1
            say("dead_host round %d done" % (r + 1))
        check(res, c.stop() == 0, "the consumer did not exit 0")
        dls = {json.loads(m.value())["thopterId"]: headers_dict(m) for m in rig.dead_letters()}
        check(res, set(dls) == set(dead), "dead letters %r, hopeless %r" % (sorted(dls), sorted(dead)))
        attempts = sorted({int(h["thopter.dlq.attempts"]) for h in dls.values()})
        check(res, attempts == [retries], "attempts %r (budget %d)" % (attempts, retries))
        check(res, all(h["thopter.dlq.error.class"] == "fly_unavailable" for h in dls.values()), "classes")
        deletes = {}
        for x in rig.fly.calls(route="machines.delete"):
            deletes[x["machine"]] = deletes.get(x["machine"], 0) + 1
        per_bad = sorted({deletes.get(i, 0) for i in dead})
        check(res, per_bad == [retries], "DELETE calls per hopeless machine %r" % per_bad)
        opens = len(re.findall(r"circuit open", c.log_text()))
        checks = len(re.findall(r"probing the fly API", c.log_text()))
        check(res, opens == 0, "the circuit opened %d time(s)" % opens)
        rep = rig.destroy_repeats(all_ids)
        res["lost"] = len(set(all_ids) - rep["completed_ids"] - set(dls))
        check(res, res["lost"] == 0, "%d requests neither completed nor dead-lettered" % res["lost"])
        res["figures"] = {"destroys": len(all_ids), "dead_letters": len(dls), "attempts": attempts,
                          "healthy_done_s": [round(x, 2) for x in healthy_s], "circuit_opened": opens,
                          "outage_checks": checks}
        res["outcome"] = ("%d healthy destroys per round finished in %s s with %d hopeless ones ahead of "
                          "them; every hopeless one dead-lettered as fly_unavailable after exactly %d "
                          "attempts; the breaker checked %d time(s), the probe answered, the circuit never "
                          "opened" % (healthy, ", ".join("%.1f" % x for x in healthy_s), hopeless, retries,
                                      checks))
        res["repeats"] = "%d extra `completed` events" % rep["extra_completed_events"]
    finally:
        rig.close()
        res["seconds"] = time.monotonic() - t0
    return res


def scenario_fly_outage(rounds=1, n=40, outage_s=20, probe_ms=1000):
    res = new_result("fly API outage",
                     "every route answers 503 for %d s in the middle of a burst of %d destroys "
                     "(half before, half during); probe every %d ms" % (outage_s, n, probe_ms))
    t0 = time.monotonic()
    rig = Rig(fly_config={"latency_ms": 20})
    all_ids, during_calls = [], []
    try:
        c = rig.consumer(env={"THOPTER_BREAKER_PROBE_MS": str(probe_ms)})
        c.wait_assigned()
        for r in range(rounds):
            ids = rig.seed([machine_id(0x60000000 + r * 100000 + i) for i in range(n)])
            all_ids += ids
            rig.produce_destroys(ids[:n // 2])
            wait_until(lambda: len(rig.finished_ids() & set(ids)) >= 5, timeout=30, what="the burst under way")
            rig.fly.outage(status=503)
            t_out = time.time()
            rig.produce_destroys(ids[n // 2:])
            time.sleep(outage_s)
            t_end = time.time()
            check(res, rig.dead_letters() == [], "dead letters during the outage")
            rig.fly.outage_end()
            wait_until(lambda: rig.gone(ids), timeout=120, interval=0.3, what="all done after the outage")
            rig.committed_to_end(timeout=60)
            during_calls += [x for x in rig.fly.calls() if t_out + 2 <= x["started"] < t_end]
            res["times"] += 1
            say("fly_outage round %d done" % (r + 1))
        check(res, c.stop() == 0, "the consumer did not exit 0")
        check(res, rig.dead_letters() == [], "%d dead letters" % len(rig.dead_letters()))
        evs = rig.events()
        waiting = len([e for e in evs if e["state"] == "waiting_fly"])
        check(res, waiting > 0, "no waiting_fly event")
        routes = sorted({x["route"] for x in during_calls})
        per_s = len(during_calls) / max(1.0, rounds * (outage_s - 2))
        check(res, routes in ([], ["machines.list"]), "calls during the outage: %r" % routes)
        check(res, per_s <= 1000.0 / probe_ms + 0.5, "%.2f calls/s during the outage" % per_s)
        rep = rig.destroy_repeats(all_ids)
        res["lost"] = len(set(all_ids) - rep["completed_ids"])
        check(res, res["lost"] == 0, "%d requests not completed" % res["lost"])
        res["figures"] = {"destroys": len(all_ids), "calls_during_outage": len(during_calls),
                          "calls_per_s_during_outage": round(per_s, 2), "waiting_fly_events": waiting}
        res["outcome"] = ("0 dead letters; %d waiting_fly events; during the outage only the probe reached "
                          "the API (%d calls, %.2f/s); every request completed after it" % (
                              waiting, len(during_calls), per_s))
        res["repeats"] = "%d extra `completed` events" % rep["extra_completed_events"]
    finally:
        rig.close()
        res["seconds"] = time.monotonic() - t0
    return res


# ---------------------------------------------------------------------------------------
# 5. SSH faults during provisioning.

def _home_snapshot(path):
    out = {}
    for root, dirs, files in os.walk(path):
        for f in dirs + files:
            p = os.path.join(root, f)
            try:
                st = os.lstat(p)
                out[os.path.relpath(p, path)] = (st.st_size, st.st_mtime_ns)
            except OSError:
                pass
    return out


def _kill_sshd(sshd):
    if sshd.proc is None:
        return
    kill_sshd_tree(sshd.proc.pid)
    sshd.proc.wait()
    sshd.proc = None


def scenario_ssh_faults(rounds=1, restart_variant=True):
    from provision_harness import ThopterHosts
    res = new_result("SSH faults (provision)",
                     "host key mismatch; thopter sshd (listener and sessions) SIGKILLed when the git step starts, "
                     "left down%s" % (" / restarted after 1 s" if restart_variant else ""))
    t0 = time.monotonic()
    hosts = ThopterHosts()
    rig = None
    outcomes = []
    try:
        rig = _provision_rig(hosts)
        # (a) A host key that does not match: refused before any command runs.
        wrong = os.path.join(hosts.dir, "known_hosts.wrong")
        keyfile = os.path.join(hosts.dir, "otherkey")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", keyfile], check=True,
                       stdin=subprocess.DEVNULL)
        with open(keyfile + ".pub") as f:
            kt, kb = f.read().split()[:2]
        with open(hosts.gc.known_hosts) as f:
            gc_line = f.read()
        with open(wrong, "w") as f:
            f.write("[127.0.0.2]:%d %s %s\n" % (hosts.port, kt, kb))
            f.write(gc_line)
        before = _home_snapshot(hosts.home)
        accepted_before = hosts.accepted_logins("thopter")
        env = dict(hosts.env(), MAX_THOPTERS="1000", THOPTER_SSH_KNOWN_HOSTS=wrong, THOPTER_READY_TIMEOUT="5")
        c = rig.consumer("provision", env=env)
        for r in range(rounds):
            rid = "hostkey-%d" % r
            _provision(rig, _hub_request(rid, 300 + r))
            final = _final(rig, rid)[-1]
            err = final.get("error") or {}
            outcomes.append("host key mismatch: %s (%s at %s)" % (final["state"], err.get("class"),
                                                                  _dl_step(rig, rid)))
            check(res, final["state"] == "failed", "host key mismatch was not refused: %r" % final)
            wait_until(lambda: _thopters_dead(rig, rid), timeout=20, what="the machine destroyed")
            res["times"] += 1
        time.sleep(0.5)
        check(res, hosts.accepted_logins("thopter") == accepted_before,
              "sshd accepted a login despite the wrong host key")
        after = _home_snapshot(hosts.home)
        check(res, after == before, "something was written on the machine: %r" % sorted(set(after) - set(before)))
        check(res, c.stop() == 0, "consumer did not exit 0")

        # (b) sshd killed when the git step starts.
        env = dict(hosts.env(), MAX_THOPTERS="1000", THOPTER_READY_TIMEOUT="5")
        c = rig.consumer("provision", env=env)
        variants = ["left down"] + (["restarted after 1 s"] if restart_variant else [])
        for r in range(rounds):
            for v in variants:
                rid = "sshkill-%d-%s" % (r, v.split()[0])
                _provision(rig, _hub_request(rid, 400 + r))
                c.wait_log(r'"requestId":"%s","msg":"step git"' % rid, timeout=60)
                _kill_sshd(hosts.thopter)
                if v != "left down":
                    time.sleep(1)
                    hosts.thopter.start_fixed()
                final = _final(rig, rid, timeout=120)[-1]
                err = final.get("error") or {}
                if final["state"] == "failed":
                    wait_until(lambda: _thopters_dead(rig, rid), timeout=20, what="the failed machine destroyed")
                    outcomes.append("sshd killed at git, %s: dead letter %s at step %s, machine destroyed"
                                    % (v, err.get("class"), _dl_step(rig, rid)))
                    check(res, err.get("class") in ("ssh", "timeout"), "%s: class %s" % (v, err.get("class")))
                else:
                    outcomes.append("sshd killed at git, %s: retried to success" % v)
                if hosts.thopter.proc is None:
                    hosts.thopter.start_fixed()
                res["times"] += 1
                say("ssh_faults: %s" % outcomes[-1])
        check(res, c.stop() == 0, "consumer did not exit 0")
        res["lost"] = 0
        res["outcome"] = "; ".join(sorted(set(outcomes)))
        res["repeats"] = "none possible (each failed request dead-lettered once)"
        res["figures"] = {"outcomes": outcomes}
    finally:
        if rig:
            rig.close()
        hosts.close()
        res["seconds"] = time.monotonic() - t0
    return res


def _dl_step(rig, rid):
    try:
        wait_until(lambda: _dl_step1(rig, rid), timeout=20, interval=0.3, what="dead letter of " + rid)
    except AssertionError:
        return None
    return _dl_step1(rig, rid)


def _dl_step1(rig, rid):
    for m in rig.dead_letters():
        try:
            if json.loads(m.value()).get("requestId") == rid:
                return headers_dict(m)["thopter.dlq.error.step"]
        except ValueError:
            pass
    return None


def _thopters_dead(rig, rid):
    mine = [m for m in rig.fly.machines() if (m.get("config") or {}).get("metadata", {})
            .get("thopter_request_id") == rid]
    return all(m["state"] in ("destroying", "destroyed") or m.get("gone") for m in mine)


# ---------------------------------------------------------------------------------------
# 6. valgrind.

def _valgrind_summary(path):
    with open(path, errors="replace") as f:
        text = f.read()

    def num(rx):
        m = re.search(rx, text)
        return int(m.group(1).replace(",", "")) if m else None
    return {"errors": num(r"ERROR SUMMARY: ([\d,]+) errors"),
            "definitely_lost": num(r"definitely lost: ([\d,]+) bytes") or 0,
            "indirectly_lost": num(r"indirectly lost: ([\d,]+) bytes") or 0,
            "possibly_lost": num(r"possibly lost: ([\d,]+) bytes") or 0,
            "log": path}


def scenario_valgrind(n=50):
    from provision_harness import ThopterHosts
    res = new_result("valgrind --leak-check=full",
                     "the consumer under valgrind (dev build): a %d-destroy burst with retried 503s, a reset, a hopeless "
                     "machine and a non-JSON record (2 dead letters); then one provision" % n)
    t0 = time.monotonic()
    logdir = tempfile.mkdtemp(prefix="thopter-valgrind.")
    prefix = ["valgrind", "--leak-check=full", "--error-exitcode=99", "--errors-for-leak-kinds=definite,indirect",
              "--show-leak-kinds=definite,indirect", "--num-callers=30"]
    summaries = {}
    try:
        rig = Rig(fly_config={"latency_ms": 10})
        try:
            log = os.path.join(logdir, "destroy.vg")
            c = rig.consumer(prefix=prefix + ["--log-file=" + log],
                             env={"THOPTER_DRAIN_TIMEOUT": "60", "THOPTER_FLY_RETRIES": "3"})
            c.wait_assigned(timeout=60)
            ids = rig.seed([machine_id(0x50000000 + i) for i in range(n)])
            # Error paths too: retried 503s, a machine whose delete never succeeds (dead letter),
            # a reset connection and a record that is not JSON (dead letter).
            for i in ids[:3]:
                rig.fly.push_fault(method="DELETE", route="machines.delete", machine=i, status=503, count=2)
            rig.fly.push_fault(method="GET", route="machines.get", machine=ids[3], drop="reset", count=1)
            rig.fly.push_fault(method="DELETE", route="machines.delete", machine=ids[4], status=503, count=-1)
            rig.kafka.produce(DESTROY, b"not json {", key=b"junk")
            rig.produce_destroys(ids)
            wait_until(lambda: rig.gone(ids[:4] + ids[5:]), timeout=120, interval=0.5,
                       what="the destroy burst under valgrind")
            wait_until(lambda: len(rig.dead_letters()) == 2, timeout=60, interval=0.5, what="2 dead letters")
            rig.committed_to_end(timeout=60)
            rc = c.stop(timeout=120)
            summaries["destroy"] = dict(_valgrind_summary(log), exit=rc)
            res["times"] += 1
        finally:
            rig.close()
        hosts = ThopterHosts()
        rig = None
        try:
            rig = _provision_rig(hosts)
            log = os.path.join(logdir, "provision.vg")
            c = rig.consumer("provision", env=dict(hosts.env(), THOPTER_DRAIN_TIMEOUT="60",
                                                   THOPTER_READY_TIMEOUT="60"),
                             prefix=prefix + ["--log-file=" + log])
            c.wait_assigned(timeout=60)
            _provision(rig, _hub_request("vg-1", 500))
            final = _final(rig, "vg-1", timeout=180)[-1]
            check(res, final["state"] == "completed", "provision under valgrind: %r" % final)
            rc = c.stop(timeout=120)
            summaries["provision"] = dict(_valgrind_summary(log), exit=rc)
            res["times"] += 1
        finally:
            if rig:
                rig.close()
            hosts.close()
        for k, s in summaries.items():
            check(res, s["exit"] == 0, "%s: exit %s (99 = valgrind errors); log %s" % (k, s["exit"], s["log"]))
            check(res, s["errors"] == 0, "%s: %s valgrind errors; log %s" % (k, s["errors"], s["log"]))
            check(res, s["definitely_lost"] == 0 and s["indirectly_lost"] == 0,
                  "%s: leaks %r; log %s" % (k, s, s["log"]))
        res["figures"] = summaries
        res["lost"] = 0
        res["outcome"] = "; ".join("%s: exit %s, %s errors, definitely lost %d B, indirectly lost %d B, "
                                   "possibly lost %d B" % (k, s["exit"], s["errors"], s["definitely_lost"],
                                                           s["indirectly_lost"], s["possibly_lost"])
                                   for k, s in summaries.items())
        res["repeats"] = "-"
    finally:
        res["seconds"] = time.monotonic() - t0
    return res


def scenario_hostile_inputs(seconds=20):
    """Hostile inputs: tests/fuzz/run-fuzz.sh (libFuzzer over every target of tests/fuzz)."""
    res = new_result("Hostile inputs (fuzz)", "tests/fuzz/run-fuzz.sh --seconds %d: libFuzzer over request.c "
                     "(both parsers), shell_quote.c, fly_json.c, http.c's header handling and "
                     "known_hosts.c, with ASan/UBSan and invariant checks" % seconds)
    t0 = time.monotonic()
    script = os.path.join(SOURCE_DIR, "tests", "fuzz", "run-fuzz.sh")
    try:
        if not os.path.exists(script):
            res["outcome"] = "no tests/fuzz in this commit"
            return res
        p = subprocess.run(["bash", script, "--seconds", str(seconds)], capture_output=True, text=True,
                           timeout=seconds * 8 + 300)
        lines = [l for l in p.stdout.splitlines() if l.startswith("== ")]
        execs = 0
        for l in lines:
            m = re.search(r"executions (\d+)", l)
            execs += int(m.group(1)) if m else 0
        res["times"] = execs
        res["figures"] = {"exit": p.returncode, "targets": lines}
        why = " ".join(l for l in p.stderr.splitlines() if "undefined reference" in l or "run-fuzz:" in l)
        check(res, p.returncode == 0, "run-fuzz.sh exited %d: %s" % (p.returncode, why or p.stderr.strip()[-300:]))
        res["lost"] = 0 if p.returncode == 0 else None
        if p.returncode == 0:
            res["outcome"] = "%s inputs, no crash, leak, UB, timeout or broken invariant" % execs
        elif not execs:
            res["outcome"] = "not run: run-fuzz.sh could not build the targets (%s)" % (why or "see stderr")
        else:
            res["outcome"] = "%s inputs; run-fuzz.sh found a problem (see details)" % execs
        res["repeats"] = "-"
    except Exception as e:
        res["failures"].append("run-fuzz.sh: %s" % e)
    finally:
        res["seconds"] = time.monotonic() - t0
    return res


# ---------------------------------------------------------------------------------------
# The document.

def _git(*args):
    try:
        return subprocess.run(["git", "-C", SOURCE_DIR] + list(args), capture_output=True, text=True,
                              check=True).stdout.strip()
    except Exception:
        return "?"


def machine_line():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            mem = "%.1f GiB" % (int(f.readline().split()[1]) / 1048576)
    except (OSError, ValueError):
        pass
    return "%s %s, %d CPUs (%s), %s RAM, Python %s" % (platform.system(), platform.release(), os.cpu_count(),
                                                      cpu, mem, platform.python_version())


def fuzz_line(results):
    if any(r["scenario"].startswith("Hostile inputs") and r["times"] for r in results):
        return ("Hostile inputs: the \"Hostile inputs (fuzz)\" row is a run of tests/fuzz/run-fuzz.sh made by this "
                "script (see tests/fuzz/README.md for what each target checks); hostile request fields end to end "
                "are tests/integration/test_provision.py (TestHostileInput).")
    return ("Hostile inputs: not run here; see tests/fuzz/README.md (libFuzzer targets) and "
            "tests/integration/test_provision.py (TestHostileInput).")


def _walk(d):
    for root, _, files in os.walk(d):
        for f in files:
            yield os.path.join(root, f)


# Bugs this script found, by scenario key, while they are open. Fixed so far: B1 (a record was
# committed before its final status event was acknowledged: now the event's acknowledgement
# finishes the record) and B2 (run-fuzz.sh did not link after err.c began to redact).
KNOWN_BUGS = {}


def render(results, args, started, total_s):
    commit = _git("rev-parse", "--short=12", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    lines = [
        "# Reliability",
        "",
        "Generated by `tests/reliability/reliability.py` — do not edit by hand; rerun it:",
        "",
        "```sh",
        "cmake --preset dev && cmake --build --preset dev -j2",
        "sudo tests/reliability/reliability.py%s     # writes this file" % (
            " --rounds %d" % args.rounds if args.rounds else ""),
        "```",
        "",
        "| | |",
        "| --- | --- |",
        "| date | %s |" % started.strftime("%Y-%m-%d %H:%M UTC"),
        "| git commit | `%s`%s (branch `%s`) |" % (commit, " + uncommitted changes" if dirty and dirty != "?" else "",
                                                 _git("rev-parse", "--abbrev-ref", "HEAD")),
        "| machine | %s |" % machine_line(),
        "| librdkafka | %s (Kafka: thopter-devbroker, librdkafka's mock cluster) |" % _rdkafka_version(),
        "| run | %s; random seed %d; %.0f s in all |" % (args.describe(), args.seed, total_s),
        "",
        "Each scenario checks the guarantees of docs/CONTRACT.md §5 that it can break: **nothing lost** (every request "
        "ends completed, or dead-lettered when it should be), **nothing committed past unfinished work**, the "
        "**concurrency limits**, **idempotent effects**. A \"harmless repeat\" is work done again after a crash "
        "or rebalance (at-least-once): a second fly delete of a machine already destroyed, or a second "
        "`completed` event for a request. Across a rebalance the mock broker refuses offset commits "
        "(librdkafka 2.0.2 answers OffsetCommit with REBALANCE_IN_PROGRESS while the group is joining or syncing, stricter than a real broker), so repeats there are expected; losses never are.",
        "",
        "| scenario | what was tried | times | outcome | messages lost | harmless repeats | result |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    def cell(text, limit=400):
        text = re.sub(r"\s+", " ", str(text)).replace("|", "/")
        return text if len(text) <= limit else text[:limit - 1] + "…"
    for r in results:
        verdict = "**pass**"
        if r["failures"]:
            tag = KNOWN_BUGS.get(r["key"], ("", ""))[0]
            verdict = "**FAIL**%s: %s" % (" (known bug %s)" % tag if tag else "", cell("; ".join(r["failures"][:3]), 250))
        lines.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            cell(r["scenario"]), cell(r["tried"]), r["times"], cell(r["outcome"] or "-", 600),
            "—" if r["lost"] is None else r["lost"], cell(r["repeats"] or "-"), verdict))
    bugs = [KNOWN_BUGS[r["key"]] for r in results if r["failures"] and r["key"] in KNOWN_BUGS]
    if bugs:
        lines += ["", "### Known bugs behind the failing rows", ""]
        for tag, text in bugs:
            lines.append("- **%s**: %s" % (tag, text))
    lines += ["", fuzz_line(results), ""]
    # Two tables are kept by hand and copied in as they are: the hostile-input
    # one (what was tried against each hole, and its test) and the real-cluster
    # one (the figures of tests/realkafka).
    for kept in ("hostile-inputs.md", "reliability-real-kafka.md"):
        path = os.path.join(SOURCE_DIR, "docs", kept)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                lines += [f.read().rstrip("\n"), ""]
    lines += ["## Details", ""]
    for r in results:
        lines.append("### %s (%.0f s)" % (r["scenario"], r["seconds"]))
        lines.append("")
        for k, v in r["figures"].items():
            lines.append("- %s: %s" % (k, json.dumps(v, default=str)))
        for n in r["notes"]:
            lines.append("- %s" % n)
        for f in r["failures"]:
            lines.append("- **failure**: %s" % f)
        lines.append("")
    lines += [
        "## How the checks are made",
        "",
        "- Kafka is thopter-devbroker (librdkafka 2.0.2's mock cluster, TCP); broker faults are lines on its stdin "
        "(`err 8 COUNT CODE` → `rd_kafka_mock_push_request_errors`, `coordinator GROUP N`, `down N`/`up N`, see "
        "`thopter-devbroker --help`).",
        "- fly.io is tests/fakes/fake_fly.py; faults are its fault rules (status, Retry-After, delay, reset); "
        "\"finished\" for the commit sampler is the fake's view (a machine destroying/destroyed), read *after* "
        "the committed offsets, so it can only be ahead of the consumer.",
        "- Crashes are SIGKILL (no drain, no commit); restarts rejoin the same group. Kills happen after the "
        "group join (a kill mid-join can wedge the mock group for > 60 s, §2 of the reference).",
        "- SSH is a real OpenSSH sshd on 127.0.0.2; \"killed\" means the listener and every session process "
        "it forked.",
        "- The short versions of these scenarios run in CI: `ctest --preset dev -L reliability` "
        "(tests/reliability/test_reliability.py), also under ASan/UBSan.",
        "",
    ]
    return "\n".join(lines)


def _rdkafka_version():
    try:
        import confluent_kafka
        return confluent_kafka.libversion()[0]
    except Exception:
        return "?"


SCENARIOS = ["crash_destroy", "crash_provision", "crash_provision_parallel", "broker_faults", "stop_during_outage",
             "event_after_commit", "scale_out", "fly_faults", "dead_host", "fly_outage", "ssh_faults",
             "hostile_inputs", "valgrind"]


def run_one(name, rounds, rng):
    r = rounds
    if name == "crash_destroy":
        return scenario_crash_destroy(rounds=r or 10, rng=rng)
    if name == "crash_provision":
        return scenario_crash_provision(rounds=r and max(1, r // 3) or 2)
    if name == "crash_provision_parallel":
        # 27 requests a round, each machine on its own host (ThopterHosts has at most 80).
        return scenario_crash_provision_parallel(rounds=r and min(2, max(1, r // 5)) or 1)
    if name == "broker_faults":
        return scenario_broker_faults(rounds=r and max(1, r // 3) or 3)
    if name == "stop_during_outage":
        return scenario_stop_during_outage(rounds=r and max(1, r // 5) or 2)
    if name == "event_after_commit":
        return scenario_event_lost_after_commit()
    if name == "scale_out":
        return scenario_scale_out(rounds=r and max(1, r // 3) or 3, rng=rng)
    if name == "fly_faults":
        return scenario_fly_faults(rounds=r and max(1, r // 3) or 3)
    if name == "dead_host":
        return scenario_dead_host(rounds=r and max(1, r // 3) or 2)
    if name == "fly_outage":
        return scenario_fly_outage(rounds=r and max(1, r // 10) or 1)
    if name == "ssh_faults":
        return scenario_ssh_faults(rounds=r and max(1, r // 5) or 2)
    if name == "valgrind":
        return scenario_valgrind()
    if name == "hostile_inputs":
        return scenario_hostile_inputs()
    raise ValueError(name)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Run the reliability scenarios and write docs/RELIABILITY.md.")
    ap.add_argument("--rounds", type=int, default=0,
                    help="crash rounds (default 10); the other scenarios run rounds/3 (default 2-3)")
    ap.add_argument("--only", default="", help="comma list of scenarios: " + ",".join(SCENARIOS))
    ap.add_argument("--valgrind", action="store_true", help="run only the valgrind leak check")
    ap.add_argument("--no-valgrind", action="store_true", help="skip the valgrind leak check")
    ap.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    ap.add_argument("--no-write", action="store_true", help="print the report instead of writing the doc")
    ap.add_argument("--output", default=os.path.join(SOURCE_DIR, "docs", "RELIABILITY.md"))
    args = ap.parse_args(argv)
    names = SCENARIOS
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
    if args.valgrind:
        names = ["valgrind"]
    if args.no_valgrind:
        names = [n for n in names if n != "valgrind"]
    for n in names:
        if n not in SCENARIOS:
            ap.error("unknown scenario %s" % n)
    args.describe = lambda: "scenarios %s; rounds %s" % (",".join(names), args.rounds or "default")
    rng = random.Random(args.seed)
    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.monotonic()
    results = []
    for n in names:
        say("scenario %s ..." % n)
        try:
            res = run_one(n, args.rounds, rng)
        except Exception as e:
            traceback.print_exc()
            res = new_result(n, "(aborted)")
            res["failures"].append("aborted: %s" % str(e).splitlines()[0][:300])
        res["key"] = n
        say("scenario %s: %s in %.0f s %s" % (n, "pass" if not res["failures"] else "FAIL", res["seconds"],
                                              res["failures"][:3]))
        results.append(res)
    text = render(results, args, started, time.monotonic() - t0)
    with open(os.path.join(tempfile.gettempdir(), "thopter-reliability-results.json"), "w") as f:
        json.dump(results, f, indent=1, default=str)
    if args.no_write:
        print(text)
    else:
        with open(args.output, "w") as f:
            f.write(text)
        say("wrote %s" % args.output)
    return 0 if all(not r["failures"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
