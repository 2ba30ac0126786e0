#!/usr/bin/python3
"""bench/run.py - benchmark the real thopter-consumer against thopter-devbroker, a real Apache
Kafka cluster, and the fake fly API.

Scenarios (each on a fresh broker + fresh fake fly API + fresh consumer). With --kafka both
(the default) the Kafka-side ones (bulk, latency, dlq) run on thopter-devbroker (librdkafka's
mock cluster) and then on a real single-node Apache Kafka cluster (tests/harness/kafka_cluster.py,
jars from deploy/kafka/fetch-kafka.sh), side by side in one run; destroy and provision run on
the mock (their figures are fly and SSH bound):

  bulk      N destroys (default 200) at L ms per fly call (default 50), with
            MAX_CONCURRENT_DESTROYS=1 (the old serial behaviour) and =5, side by side.
  latency   publish-to-start p50/p99 of destroys sent at a steady rate to an idle
            consumer, compared with the old TypeScript loop's 100 ms tick.
  dlq       overhead of the dead-letter path: 20,000 records that are not JSON.
  flood     peak RSS under a poison flood: 15,000 x 2 KB and 250 x 100 KB records that are not
            JSON, queued before the consumer starts (mock broker).
  destroy   overhead of the destroy path with zero fly latency (2,000 destroys).
  provision --provision-n (10) provisions one after another through the real consumer (role
            provision) against real sshd/tmux/git (tests/harness/provision_harness.py), once per
            --provision-latency-ms (0 and 50 ms per fly call): started->completed, the wait step
            (boot + SSH connect), total - wait; SSH connections and channels per provision from the
            sshd logs; fly calls per provision from the fake's call log. Needs root: on by default
            as root, skipped with a note otherwise (--no-provision skips it).
  parallel-provision  --parallel-n (9) provisions produced at once, MAX_CONCURRENT_PROVISIONS=1 and
            then =--parallel-concurrency (3), at --parallel-latency-ms (50) per fly call with a
            --parallel-boot-ms (3000) boot and the fake's fly rate limits on; one thopter host per
            machine (ThopterHosts(thopters=n)): wall time from the first produce to the last
            completed, ideal = serial / 3, efficiency = ideal / measured, fly 429s, fly calls per
            provision. Needs root, like provision (--no-provision skips it too).

Memory (VmHWM) is read from the consumers of these scenarios. Prints a table and writes
bench/results/<UTC date-time>.md and .json. See bench/README.md.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

DESTROY = "thopter.destroy"
PROVISION = "thopter.provision"
DLQ = "thopter.dlq"
EVENTS = "thopter.events"
DESTROY_GROUP = "thopter-destroyer"
PROVISION_GROUP = "thopter-provisioner"

# Production defaults for the retry/breaker settings (the harness sets fast test values).
PROD_ENV = {
    "THOPTER_RETRY_BASE_MS": "250",
    "THOPTER_RETRY_MAX_MS": "5000",
    "THOPTER_BREAKER_PROBE_MS": "3000",
    "THOPTER_FLY_TIMEOUT": "30",
    "THOPTER_DRAIN_TIMEOUT": "30",
    "THOPTER_LOG_LEVEL": "info",
}

TARGETS = {
    "efficiency_5": 0.9,        # ideal / actual at 5 in flight
    "speedup": 4.5,             # serial / parallel
    "p99_start_ms": 50.0,       # publish-to-start p99
    "dlq_msgs_per_s": 5000.0,
    "peak_rss_mb": 30.0,
}

# ---------------------------------------------------------------------------------------------
# Process bookkeeping: everything started here is stopped in the end, even on error.

LIVE = []  # objects with a stop()/close() to call at exit


def track(obj):
    LIVE.append(obj)
    return obj


def untrack(obj):
    if obj in LIVE:
        LIVE.remove(obj)


def stop_all():
    while LIVE:
        obj = LIVE.pop()
        try:
            if hasattr(obj, "close") and obj.__class__.__name__ == "ThopterConsumer":
                obj.kill()
                obj.logfile.close()
            else:
                obj.stop()
        except Exception:  # keep stopping the rest
            pass


def on_signal(signum, frame):
    stop_all()
    sys.stderr.write("interrupted (signal %d); stopped everything\n" % signum)
    os._exit(130)


# ---------------------------------------------------------------------------------------------
# /proc helpers


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        data = f.read()
    fields = data[data.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime = field 14, stime = field 15
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def mb(kb):
    return None if kb is None else kb / 1024.0


def pct(values, p):
    """Nearest-rank percentile."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]


def iso_ms(s):
    """'YYYY-MM-DDTHH:MM:SS.mmmZ' -> epoch seconds (float)."""
    dt = datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp()


# ---------------------------------------------------------------------------------------------
# One scenario's world: devbroker + fake + consumer(s)


# The broker of the scenario running now: "mock" (thopter-devbroker) or "real"
# (a single-node Apache Kafka cluster); main() sets it.
BROKER = {"kind": "mock"}


class Stack:
    def __init__(self, args, fly_latency_ms=0, fly_config=None):
        from flyfake import FlyFake
        from thopter_harness import Devbroker, Kafka, RealBroker, TOKEN
        self.args = args
        self.token = TOKEN
        self.kind = BROKER["kind"]
        self.broker = track(RealBroker() if self.kind == "real" else Devbroker())
        self.fly = track(FlyFake())
        self.fly.start(token=TOKEN, latency_ms=fly_latency_ms, **(fly_config or {}))
        self.kafka = Kafka(self.broker.bootstrap)
        self.consumers = []
        self._reader = None
        self._group_readers = {}

    def broker_pids(self):
        """The broker's processes (the devbroker, or the real node's JVM)."""
        if self.kind == "real":
            return [n.proc.pid for n in self.broker.cluster.nodes if n.running()]
        return [self.broker.proc.pid]

    def consumer(self, role="destroy", env=None, xprops=()):
        from thopter_harness import MOCK_GROUP_PROPS, REAL_GROUP_PROPS, ThopterConsumer
        e = dict(PROD_ENV)
        e.update(env or {})
        for kv in self.args.consumer_env:
            k, v = kv.split("=", 1)
            e[k] = v
        argv = []
        for p in list(self.args.X) + list(xprops):
            argv += ["-X", p]
        c = track(ThopterConsumer(self.broker.bootstrap, self.fly.base_url, role=role, env=e, args=argv,
                                  token=self.token,
                                  group_props=REAL_GROUP_PROPS if self.kind == "real" else MOCK_GROUP_PROPS))
        self.consumers.append(c)
        return c

    def wait_assigned(self, c, timeout=30.0):
        """Waits for the consumer's 'assigned' log line; returns its ts (epoch s) and the
        moment it was seen here."""
        rx = re.compile(r'"msg":"assigned (?!nothing)')
        deadline = time.monotonic() + timeout
        while True:
            for line in c.log_text().splitlines():
                if rx.search(line):
                    seen = time.time()
                    try:
                        ts = iso_ms(json.loads(line)["ts"])
                    except (ValueError, KeyError):
                        ts = seen
                    return ts, seen
            if c.proc.poll() is not None:
                raise RuntimeError("consumer exited (%s); log %s" % (c.proc.returncode, c.logfile.name))
            if time.monotonic() > deadline:
                raise RuntimeError("consumer not assigned after %.0f s; log %s" % (timeout, c.logfile.name))
            time.sleep(0.01)

    def reader(self):
        from confluent_kafka import Consumer
        if self._reader is None:
            self._reader = Consumer({"bootstrap.servers": self.broker.bootstrap, "group.id": "bench-reader",
                                     "enable.auto.commit": False, "log_level": 3})
        return self._reader

    def end_offsets(self, topic):
        from confluent_kafka import TopicPartition
        r = self.reader()
        md = r.list_topics(topic, timeout=10)
        return {p: r.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1]
                for p in md.topics[topic].partitions}

    def start_offsets(self, topic):
        from confluent_kafka import TopicPartition
        r = self.reader()
        md = r.list_topics(topic, timeout=10)
        return {p: r.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[0]
                for p in md.topics[topic].partitions}

    def committed(self, group, topic, parts):
        from confluent_kafka import Consumer, TopicPartition
        c = self._group_readers.get(group)
        if c is None:
            c = Consumer({"bootstrap.servers": self.broker.bootstrap, "group.id": group,
                          "enable.auto.commit": False, "log_level": 3})
            self._group_readers[group] = c
        tps = c.committed([TopicPartition(topic, p) for p in parts], timeout=10)
        return {tp.partition: tp.offset for tp in tps}

    def close(self):
        for c in [self._reader] + list(self._group_readers.values()):
            if c is not None:
                try:
                    c.close()
                except Exception:
                    pass
        for c in self.consumers:
            try:
                if c.proc.poll() is None:
                    c.stop(timeout=30)
            except Exception:
                c.kill()
            untrack(c)
            if not self.args.keep_logs:
                try:
                    c.close()
                except Exception:
                    pass
            else:
                c.logfile.close()
        try:
            self.kafka.close()
        except Exception:
            pass
        self.fly.stop()
        untrack(self.fly)
        self.broker.stop()
        untrack(self.broker)


def seed_machines(fly, n, start=1):
    from thopter_harness import machine_id
    ids = []
    for i in range(start, start + n):
        ids.append(fly.seed_machine(id=machine_id(i), name="thopter-bench-%d" % i, state="started")["id"])
    return ids


def wait_for(pred, timeout, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise RuntimeError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def delete_count(fly):
    st = fly.stats()["by_route_status"]
    return sum(v for k, v in st.items() if k.startswith("machines.delete ") and k.split()[-1] in ("200", "404"))


# ---------------------------------------------------------------------------------------------
# Scenario 1: bulk destroy


def bulk_once(args, conc, n, latency_ms):
    st = Stack(args, fly_latency_ms=latency_ms)
    try:
        ids = seed_machines(st.fly, n)
        c = st.consumer(env={"MAX_CONCURRENT_DESTROYS": str(conc)})
        st.wait_assigned(c)
        time.sleep(0.3)  # let the first fetch settle
        pid = c.proc.pid
        idle_hwm = status_kb(pid, "VmHWM")
        cpu0 = cpu_seconds(pid)
        # The clock starts when the first request is in Kafka (acknowledged):
        # the consumer cannot start before that, and this Python producer's
        # own batching of the rest is not the consumer's time.
        st.kafka.produce(DESTROY, {"thopterId": ids[0], "reason": "bench"}, key=ids[0])
        st.kafka.flush()
        t0 = time.time()
        for i in ids[1:]:
            st.kafka.produce(DESTROY, {"thopterId": i, "reason": "bench"}, key=i)
        st.kafka.flush()
        t_flushed = time.time()
        ideal_guess = n * 3 * latency_ms / 1000.0 / conc
        wait_for(lambda: delete_count(st.fly) >= n, timeout=ideal_guess * 4 + 60, interval=0.05,
                 what="%d deletes" % n)
        cpu1 = cpu_seconds(pid)
        load_hwm = status_kb(pid, "VmHWM")
        calls = st.fly.calls()
        stats = st.fly.stats()
        v1 = [x for x in calls if x["route"].startswith(("machines.", "volumes.", "apps."))]
        deletes = [x for x in v1 if x["route"] == "machines.delete"]
        t_end = max(x["ended"] for x in deletes)
        wall = t_end - t0
        cpd = len(v1) / float(n)
        ideal = n * cpd * latency_ms / 1000.0 / conc
        # Where the time goes: per-call duration (fake overhead), per-destroy service time,
        # gaps between a destroy's calls (client side), first call after the produce.
        durs = [(x["ended"] - x["started"]) * 1000.0 for x in v1 if x["ended"]]
        by_machine = {}
        for x in v1:
            by_machine.setdefault(x["machine"], []).append(x)
        service, gaps = [], []
        for m, xs in by_machine.items():
            xs.sort(key=lambda x: x["started"])
            service.append((xs[-1]["ended"] - xs[0]["started"]) * 1000.0)
            for a, b in zip(xs, xs[1:]):
                gaps.append((b["started"] - a["ended"]) * 1000.0)
        first_call = min(x["started"] for x in v1)
        busy = sum(service) / 1000.0
        # Time between one destroy's last call and the next destroy's first call on a free slot:
        # approximated as wall*conc - busy spread over n destroys.
        idle_per_destroy_ms = (wall * conc - busy) * 1000.0 / n
        return {
            "concurrency": conc, "n": n, "latency_ms": latency_ms,
            "wall_s": wall, "ideal_s": ideal, "efficiency": ideal / wall if wall > 0 else None,
            "calls_per_destroy": cpd, "calls_by_route_status": stats["by_route_status"],
            "max_in_flight": stats["max_in_flight"],
            "produce_s": t_flushed - t0,
            "first_call_after_produce_ms": (first_call - t0) * 1000.0,
            "call_ms_mean": statistics.mean(durs), "call_ms_p99": pct(durs, 99),
            "destroy_service_ms_mean": statistics.mean(service),
            "gap_between_calls_ms_mean": statistics.mean(gaps) if gaps else 0.0,
            "slot_idle_per_destroy_ms": idle_per_destroy_ms,
            "avg_in_flight": busy / wall if wall > 0 else None,
            "cpu_s": cpu1 - cpu0,
            "vmhwm_idle_kb": idle_hwm, "vmhwm_load_kb": load_hwm,
            "xprops": list(args.X),
            "pause_cycles_seen_in_debug_log": c.log_text().count("Application pausing"),
        }
    finally:
        st.close()


def scenario_bulk(args, R):
    rows = {}
    for conc in (1, 5):
        log("bulk destroy: N=%d, %d ms per call, %d in flight ..." % (args.n, args.latency_ms, conc))
        rows[conc] = bulk_once(args, conc, args.n, args.latency_ms)
        log("  %.2f s (ideal %.2f s, efficiency %.3f)" % (rows[conc]["wall_s"], rows[conc]["ideal_s"],
                                                          rows[conc]["efficiency"]))
    R["bulk"] = {"serial": rows[1], "parallel": rows[5],
                 "speedup": rows[1]["wall_s"] / rows[5]["wall_s"]}


# ---------------------------------------------------------------------------------------------
# Scenario 2: publish-to-start latency


def latency_once(args, xprops=(), label="default"):
    from confluent_kafka import Producer
    st = Stack(args, fly_latency_ms=0)
    try:
        n, rate = args.lat_n, args.lat_rate
        ids = seed_machines(st.fly, n, start=0x10000)
        c = st.consumer(xprops=xprops)
        st.wait_assigned(c)
        # A producer like the hub's: send at once (linger.ms=0), acks=all.
        p = Producer({"bootstrap.servers": st.broker.bootstrap, "partitioner": "murmur2_random",
                      "linger.ms": 0, "acks": "all", "log_level": 3})
        sent = {}
        create_ts = {}

        def dr(err, msg):
            if err is None:
                create_ts[msg.key().decode()] = msg.timestamp()[1]

        # Warm up (not measured): this producer's connection and metadata, and the consumer's
        # producer, whose first event otherwise waits up to 1 s for thopter.events metadata.
        warm = "%014x" % 0xfffff  # no such machine: GET 404, "already gone", completed
        p.produce(DESTROY, json.dumps({"thopterId": warm, "requestId": "lat-warmup"}).encode(),
                  key=b"lat-warmup")
        p.flush(10)
        wait_for(lambda: st.fly.stats()["calls"] >= 1, timeout=10, what="the warm-up request")
        time.sleep(0.5)
        bpids = st.broker_pids()
        cpu_i0, bcpu_i0, ti0 = cpu_seconds(c.proc.pid), sum(cpu_seconds(b) for b in bpids), time.monotonic()
        time.sleep(2.0)  # idle again; measures the idle CPU rate too
        idle_s = time.monotonic() - ti0
        idle_cpu_ms_per_s = (cpu_seconds(c.proc.pid) - cpu_i0) * 1000.0 / idle_s
        broker_idle_cpu_ms_per_s = (sum(cpu_seconds(b) for b in bpids) - bcpu_i0) * 1000.0 / idle_s
        t_start = time.monotonic()
        for k, mid in enumerate(ids):
            due = t_start + k / float(rate)
            while True:
                now = time.monotonic()
                if now >= due:
                    break
                p.poll(min(0.005, due - now))
            rid = "lat-%d" % k
            sent[rid] = time.time()
            p.produce(DESTROY, json.dumps({"thopterId": mid, "requestId": rid}).encode(), key=rid.encode(),
                      on_delivery=dr)
            p.poll(0)
        p.flush(10)
        wait_for(lambda: delete_count(st.fly) >= n, timeout=60, what="latency destroys")
        pid = c.proc.pid
        hwm = status_kb(pid, "VmHWM")
        # read the started events
        from thopter_harness import Kafka
        events = [e for e in st.kafka.read_json(EVENTS) if e.get("state") == "started"]
        total, kafka_leg, consumer_leg, ts_based = [], [], [], []
        key_to_rid = {}
        for e in events:
            rid = e["requestId"]
            if rid not in sent:
                continue
            at = iso_ms(e["at"])
            tot = (at - sent[rid]) * 1000.0 + 0.5  # `at` is truncated to the ms: +0.5 ms unbiases it
            total.append(tot)
            consumer_leg.append(float(e["elapsedMs"]))
            kafka_leg.append(tot - float(e["elapsedMs"]))
            if rid in create_ts:
                ts_based.append(at * 1000.0 - create_ts[rid])
        return {
            "label": label, "xprops": list(args.X) + list(xprops), "n": n, "rate_per_s": rate,
            "matched": len(total),
            "p50_ms": pct(total, 50), "p90_ms": pct(total, 90), "p99_ms": pct(total, 99),
            "max_ms": max(total) if total else None, "mean_ms": statistics.mean(total) if total else None,
            "kafka_leg_p50_ms": pct(kafka_leg, 50), "kafka_leg_p99_ms": pct(kafka_leg, 99),
            "consumer_leg_p50_ms": pct(consumer_leg, 50), "consumer_leg_p99_ms": pct(consumer_leg, 99),
            "record_ts_p50_ms": pct(ts_based, 50), "record_ts_p99_ms": pct(ts_based, 99),
            "vmhwm_kb": hwm, "idle_cpu_ms_per_s": idle_cpu_ms_per_s,
            "broker_idle_cpu_ms_per_s": broker_idle_cpu_ms_per_s,
        }
    finally:
        st.close()


def scenario_latency(args, R):
    log("publish-to-start: %d requests at %g/s, default consumer settings ..." % (args.lat_n, args.lat_rate))
    R["latency"] = latency_once(args)
    log("  p50 %.1f ms, p99 %.1f ms" % (R["latency"]["p50_ms"], R["latency"]["p99_ms"]))
    if args.lat_variant:
        log("publish-to-start: again with -X %s ..." % " -X ".join(args.lat_variant))
        R["latency_variant"] = latency_once(args, xprops=args.lat_variant, label="variant")
        log("  p50 %.1f ms, p99 %.1f ms" % (R["latency_variant"]["p50_ms"], R["latency_variant"]["p99_ms"]))


# ---------------------------------------------------------------------------------------------
# Scenario 3: overhead (DLQ path, destroy path at zero fly latency)


def overhead_once(args, kind, n, size=0):
    """kind 'dlq': n records that are not JSON (padded to size bytes when size is set);
    'destroy': n destroys of seeded machines, no latency.
    Records are produced before the consumer starts; the clock starts at the consumer's
    'assigned' log line and stops when the group's committed offsets reach the end."""
    from confluent_kafka import Producer
    st = Stack(args, fly_latency_ms=0)
    try:
        ids = seed_machines(st.fly, n, start=0x20000) if kind == "destroy" else None
        p = Producer({"bootstrap.servers": st.broker.bootstrap, "partitioner": "murmur2_random",
                      "linger.ms": 20, "batch.num.messages": 10000, "queue.buffering.max.messages": 200000,
                      "log_level": 3})
        for k in range(n):
            if kind == "dlq":
                v = b"this is not json %d {" % k
                p.produce(DESTROY, v + b"x" * max(0, size - len(v)), key=b"k%d" % k)
            else:
                p.produce(DESTROY, json.dumps({"thopterId": ids[k]}).encode(), key=ids[k].encode())
            if k % 5000 == 0 or size > 10000:
                p.poll(0)
        left = p.flush(30)
        if left:
            raise RuntimeError("%d records not delivered" % left)
        ends = st.end_offsets(DESTROY)
        assert sum(ends.values()) == n, ends
        parts = [q for q, e in ends.items() if e > 0]
        c = st.consumer()
        pid = c.proc.pid
        t_assigned, seen = st.wait_assigned(c)
        cpu0 = cpu_seconds(pid)
        idle_hwm = status_kb(pid, "VmHWM")

        def done():
            cm = st.committed(DESTROY_GROUP, DESTROY, parts)
            return all(cm.get(q, -1) >= ends[q] for q in parts)

        wait_for(done, timeout=max(60, n / 200.0), interval=0.02, what="committed offsets at the end")
        t_end = time.time()
        cpu1 = cpu_seconds(pid)
        load_hwm = status_kb(pid, "VmHWM")
        dlq_n = sum(st.end_offsets(DLQ).values())
        wall = t_end - t_assigned
        # Timeline: when did work happen? (dead letters' own timestamps, or the fake's calls)
        if kind == "dlq":
            # (the mock keeps ~5 MB per partition, so early dead letters may be gone from
            # thopter.dlq by now: use the consumer's own "dead-lettering" log lines instead)
            stamps = sorted(log_times(c, "dead-lettering "))
        else:
            stamps = sorted(x["ended"] for x in st.fly.calls(route="machines.delete") if x["ended"])
        timeline = stall_summary(stamps, t_assigned, t_end)
        timeline["pause_cycles_seen_in_debug_log"] = c.log_text().count("Application pausing")
        return {
            "kind": kind, "n": n, "wall_s": wall, "msgs_per_s": n / wall,
            "cpu_s": cpu1 - cpu0, "cpu_s_per_1000": (cpu1 - cpu0) * 1000.0 / n,
            "cpu_snapshot_lag_ms": (seen - t_assigned) * 1000.0,
            "dlq_records": dlq_n, "vmhwm_idle_kb": idle_hwm, "vmhwm_load_kb": load_hwm, "record_bytes": size,
            "topic_log_start": st.start_offsets(DESTROY) if size else None,
            "fly_calls": st.fly.stats()["calls"], "xprops": list(args.X),
            "timeline": timeline,
        }
    finally:
        st.close()


def log_times(c, needle):
    out = []
    for line in c.log_text().splitlines():
        if needle in line:
            try:
                out.append(iso_ms(json.loads(line)["ts"]))
            except (ValueError, KeyError):
                pass
    return out


def stall_summary(stamps, t0, t_end, gap_s=0.1):
    """Where the wall time went: first/last output after t0, and pauses (gaps > gap_s)
    between consecutive outputs."""
    if not stamps:
        return None
    gaps = [(b - a, a - t0) for a, b in zip(stamps, stamps[1:]) if b - a > gap_s]
    gaps.sort(reverse=True)
    return {
        "first_output_s": stamps[0] - t0,
        "last_output_s": stamps[-1] - t0,
        "commit_tail_s": t_end - stamps[-1],
        "stalls_over_100ms": len(gaps),
        "stalled_s": sum(g for g, _ in gaps),
        "longest_stalls": [{"gap_ms": round(g * 1000.0, 1), "at_s": round(at, 3)} for g, at in gaps[:5]],
    }


def scenario_dlq(args, R):
    log("overhead, dead-letter path: %d records that are not JSON ..." % args.dlq_n)
    R["dlq"] = overhead_once(args, "dlq", args.dlq_n)
    log("  %.0f msg/s, %.3f CPU s per 1000" % (R["dlq"]["msgs_per_s"], R["dlq"]["cpu_s_per_1000"]))


# Poison floods: records that are not JSON, queued before the consumer starts, small and large.
FLOODS = (("small", 15000, 2048), ("large", 250, 100 * 1024))


def scenario_flood(args, R):
    R["flood"] = {}
    for name, n, size in FLOODS:
        if args.quick:
            n = max(50, n // 10)
        log("poison flood (%s): %d records of %d KB that are not JSON ..." % (name, n, size // 1024))
        x = overhead_once(args, "dlq", n, size=size)
        R["flood"][name] = x
        log("  peak RSS %.1f MB (idle %.1f MB), %d dead letters in %.2f s" % (
            mb(x["vmhwm_load_kb"]), mb(x["vmhwm_idle_kb"]), x["dlq_records"], x["wall_s"]))


def scenario_destroy(args, R):
    log("overhead, destroy path: %d destroys at 0 ms fly latency ..." % args.destroy_n)
    R["destroy"] = overhead_once(args, "destroy", args.destroy_n)
    log("  %.0f msg/s, %.3f CPU s per 1000" % (R["destroy"]["msgs_per_s"], R["destroy"]["cpu_s_per_1000"]))


# ---------------------------------------------------------------------------------------------
# Scenario 4: provision (real consumer, real sshd/tmux/git through tests/harness/provision_harness.py)

PROVISION_STEPS = ["lookup", "capacity", "volume", "create", "wait", "golden_claude", "git", "context_files", "launch"]
# What sshd (LogLevel VERBOSE) writes once per connection / per channel that runs something.
SSHD_COUNTERS = {
    "connections": "Accepted publickey",
    "exec_channels": "Starting session: command",
    "sftp_channels": "Starting session: subsystem 'sftp'",  # OpenSSH 9.2; older: "subsystem request for sftp"
}


CONNECTED_RX = re.compile(r'"msg":"connected to \[?([0-9a-f.:]+?)\]?:\d+ as \S+ in (\d+) ms')
# SSH channel round trips on each step's critical path (the Golden Claude's tar c and the thopter's
# tar x run at once, so count as one; context files: one exec per file, written by the user).
STEP_CHANNELS = {"golden_claude": 1, "git": 1, "context_files": 3, "launch": 1}


def ssh_calibrate(hosts, reps=5):
    """A channel round trip on this machine: OpenSSH's client runs `true` over an open connection
    (ControlMaster) to the thopter's sshd; it includes the ssh client's own start (~5 ms). A new
    connection's time is kept for the record only: OpenSSH's client spends far more on its own
    key exchange than libssh2 does, so the handshake floor is the consumer's own figure (its
    "connected to … in N ms" debug line)."""
    s = hosts.thopter
    base = ["ssh", "-i", s.client_key, "-o", "UserKnownHostsFile=%s" % s.known_hosts, "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes", "-p", str(s.port), "-l", s.user]
    ctl = os.path.join(hosts.dir, "bench-ctl")

    def timed(argv):
        t = time.monotonic()
        subprocess.run(argv, check=True, capture_output=True, timeout=30)
        return (time.monotonic() - t) * 1000.0
    try:
        fresh = statistics.median(timed(base + [s.addr, "true"]) for _ in range(reps))
        subprocess.run(base + ["-M", "-S", ctl, "-f", "-N", s.addr], check=True, capture_output=True, timeout=30)
        chan = statistics.median(timed(base + ["-S", ctl, s.addr, "true"]) for _ in range(reps))
        subprocess.run(base + ["-S", ctl, "-O", "exit", s.addr], capture_output=True, timeout=30)
    except (subprocess.SubprocessError, OSError) as e:
        log("  ssh calibration failed: %s" % e)
        return None
    return {"openssh_connect_and_channel_ms": fresh, "channel_ms": chan}


def step_floors(rec, latency_ms, boot_ms, cal):
    """Each step's floor: its fly calls × latency + its SSH channel round trips (the wait: the
    fake's boot, or the wait call, + the thopter's SSH connect as the consumer timed it)."""
    if not cal:
        return {}
    out = {}
    for step, ms in rec["steps_ms"].items():
        calls = rec["fly_calls_by_step"].get(step, 0)
        f = calls * latency_ms + STEP_CHANNELS.get(step, 0) * cal["channel_ms"]
        if step == "wait":
            f = max(boot_ms, calls * latency_ms) + (rec.get("ssh_connect_ms") or {}).get("thopter", 0)
        out[step] = f
    return out


class EventTail:
    """A reader assigned to every partition of thopter.events from the start; collects the
    events of the request ids asked for."""

    def __init__(self, bootstrap):
        from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-events",
                           "enable.auto.commit": False, "log_level": 3})
        md = self.c.list_topics(EVENTS, timeout=10)
        self.c.assign([TopicPartition(EVENTS, p, OFFSET_BEGINNING) for p in md.topics[EVENTS].partitions])
        self.by_rid = {}

    def pump(self, timeout=0.05):
        for m in self.c.consume(500, timeout):
            if m.error() or m.value() is None:
                continue
            try:
                e = json.loads(m.value())
            except ValueError:
                continue
            self.by_rid.setdefault(e.get("requestId"), []).append(e)

    def final(self, rid, timeout):
        deadline = time.monotonic() + timeout
        while True:
            self.pump()
            for e in self.by_rid.get(rid, []):
                if e.get("state") in ("completed", "failed"):
                    return e
            if time.monotonic() > deadline:
                raise RuntimeError("provision %s did not finish within %.0f s" % (rid, timeout))

    def close(self):
        self.c.close()


def file_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def read_from(path, offset):
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read().decode("utf-8", "replace")


def provision_request(rid, issue, repository):
    """Shaped like the hub's JSON.stringify(ProvisionRequest) (tests/integration/test_provision.py)."""
    return {
        "requestId": rid, "source": "github", "createdAt": "2026-11-27T10:00:00.000Z", "status": "pending",
        "repository": repository, "gc": "default", "prompt": "default",
        "github": {
            "repository": repository, "issueNumber": str(issue), "issueTitle": "bench issue %d" % issue,
            "issueBody": "Benchmark request %s.\n\n/thopter" % rid,
            "issueUrl": "https://github.com/%s/issues/%d" % (repository, issue),
            "issueAuthor": "bench", "mentionAuthor": "bench", "mentionLocation": "body",
            "comments": [{"id": 1, "author": "bob", "body": "a comment", "createdAt": "2026-11-27T10:01:00Z",
                          "updatedAt": "2026-11-27T10:01:00Z",
                          "url": "https://github.com/%s/issues/%d#issuecomment-1" % (repository, issue)}],
            "labels": ["bench"],
        },
    }


def provision_once(args, hosts, latency_ms, n, issue_base):
    """One fresh devbroker + fake (latency_ms per call) + provision consumer; one warm-up
    provision (not counted), then n provisions one after another, each started only after the
    previous one's completed/failed event."""
    st = Stack(args, fly_latency_ms=latency_ms, fly_config=hosts.fly_config())
    tail = None
    try:
        st.fly.seed_machine(name="gc-default", state="started")
        env = provision_env(args, hosts,
                            # for remote_conn.c's "connected to … in N ms" (a few lines)
                            THOPTER_LOG_LEVEL="debug")
        c = st.consumer(role="provision", env=env)
        st.wait_assigned(c)
        tail = EventTail(st.broker.bootstrap)
        logs = {"thopter": hosts.thopter.log_path, "gc": hosts.gc.log_path}
        workspace = os.path.join(hosts.home, "workspace")
        per = []
        for i in range(n + 1):  # i == 0: warm-up
            rid = "bench-prov-%dms-%d" % (latency_ms, i)
            issue = issue_base + i
            # A fresh workspace each time, so every provision clones (the shared home would
            # otherwise keep the first clone and later provisions would skip it).
            shutil.rmtree(workspace, ignore_errors=True)
            offs = {k: file_size(p) for k, p in logs.items()}
            log_off = len(c.log_text())
            st.fly.clear_calls()
            cpu0 = cpu_seconds(c.proc.pid)
            t_send = time.time()
            st.kafka.produce(PROVISION, provision_request(rid, issue, hosts.repository), key=rid)
            st.kafka.flush()
            fin = tail.final(rid, args.provision_timeout)
            t_seen = time.time()
            cpu1 = cpu_seconds(c.proc.pid)
            time.sleep(0.05)  # let sshd's log writes land
            evs = tail.by_rid.get(rid, [])
            at, wall = {}, {}
            for e in evs:
                k = e.get("step") if e.get("state") == "step" else e.get("state")
                at.setdefault(k, float(e.get("elapsedMs", 0)))
                if e.get("at"):
                    wall.setdefault(k, iso_ms(e["at"]))
            sshd = {}
            for k, p in logs.items():
                text = read_from(p, offs[k])
                sshd[k] = {name: text.count(needle) for name, needle in SSHD_COUNTERS.items()}
            calls = st.fly.calls()
            routes = {}
            for x in calls:
                r = "%s %s" % (x.get("method", ""), x["route"])
                routes[r] = routes.get(r, 0) + 1
            # Each call belongs to the step announced last before it began ("lookup" before the
            # capacity step; event times are whole ms, hence the 1 ms of slack).
            marks = sorted((t, k) for k, t in wall.items() if k in PROVISION_STEPS)
            by_step = {}
            for x in calls:
                owner = "lookup"
                for t, k in marks:
                    if x["started"] >= t + 0.0005:
                        owner = k
                by_step[owner] = by_step.get(owner, 0) + 1
            connect = {}
            for m in CONNECTED_RX.finditer(c.log_text()[log_off:]):
                connect["gc" if m.group(1) == hosts.gc.addr else "thopter"] = float(m.group(2))
            rec = {"requestId": rid, "issue": issue, "state": fin["state"], "fly_calls_by_step": by_step,
                   "ssh_connect_ms": connect,
                   "error": fin.get("error"),
                   "steps_ms": {},
                   "total_ms": None, "wait_ms": None, "excl_boot_ms": None,
                   "publish_to_final_ms": (iso_ms(fin["at"]) - t_send) * 1000.0 + 0.5,
                   "seen_after_send_ms": (t_seen - t_send) * 1000.0,
                   "consumer_cpu_ms": (cpu1 - cpu0) * 1000.0,
                   "sshd": sshd, "fly_calls": len(calls), "fly_calls_by_route": routes}
            if fin["state"] == "completed" and "started" in at:
                rec["total_ms"] = at["completed"] - at["started"]
                # "lookup" = started -> the capacity step event (the request-id lookup call)
                at["lookup"] = at["started"]
                order = PROVISION_STEPS + ["completed"]
                marks = [(k, at[k]) for k in order if k in at]
                for (k, t), (_, t2) in zip(marks, marks[1:]):
                    rec["steps_ms"][k] = t2 - t
                if "wait" in rec["steps_ms"]:
                    rec["wait_ms"] = rec["steps_ms"]["wait"]
                    rec["excl_boot_ms"] = rec["total_ms"] - rec["wait_ms"]
            per.append(rec)
            if fin["state"] != "completed":
                log("  %s failed: %s" % (rid, fin.get("error")))
        hwm = status_kb(c.proc.pid, "VmHWM")
        runs = per[1:]
        ok = [r for r in runs if r["state"] == "completed" and r["total_ms"] is not None]

        def col(key):
            return [r[key] for r in ok if r[key] is not None]

        def mean_of(f):
            return statistics.mean([f(r) for r in runs]) if runs else None

        routes = {}
        for r in runs:
            for k, v in r["fly_calls_by_route"].items():
                routes[k] = routes.get(k, 0) + v
        steps = {s: pct([r["steps_ms"][s] for r in ok if s in r["steps_ms"]], 50) for s in PROVISION_STEPS}
        timings = st.fly.get_config().get("timings") or {}
        boot_ms = timings.get("create_ms", 0) + timings.get("start_ms", 0)
        floors = {}
        for r in ok:
            r["floors_ms"] = step_floors(r, latency_ms, boot_ms, args.ssh_cal)
        for s in PROVISION_STEPS:
            v = [r["floors_ms"][s] for r in ok if s in r.get("floors_ms", {})]
            floors[s] = statistics.median(v) if v else None
        connect_ms = {w: statistics.median([r["ssh_connect_ms"][w] for r in ok if w in r["ssh_connect_ms"]])
                      if any(w in r["ssh_connect_ms"] for r in ok) else None for w in ("thopter", "gc")}
        calls_by_step = {s: statistics.mean([r["fly_calls_by_step"].get(s, 0) for r in ok]) if ok else None
                         for s in PROVISION_STEPS}
        return {
            "step_floor_ms": floors, "ssh_connect_p50_ms": connect_ms, "fly_calls_by_step": calls_by_step, "ssh_calibration": args.ssh_cal,
            "latency_ms": latency_ms, "n": n, "completed": len(ok),
            "failed": sum(1 for r in runs if r["state"] != "completed"),
            "total_p50_ms": pct(col("total_ms"), 50), "total_p99_ms": pct(col("total_ms"), 99),
            "total_mean_ms": statistics.mean(col("total_ms")) if ok else None,
            "wait_p50_ms": pct(col("wait_ms"), 50), "wait_p99_ms": pct(col("wait_ms"), 99),
            "excl_boot_p50_ms": pct(col("excl_boot_ms"), 50), "excl_boot_p99_ms": pct(col("excl_boot_ms"), 99),
            "publish_to_final_p50_ms": pct(col("publish_to_final_ms"), 50),
            "step_p50_ms": steps,
            "ssh_connections_thopter": mean_of(lambda r: r["sshd"]["thopter"]["connections"]),
            "ssh_connections_gc": mean_of(lambda r: r["sshd"]["gc"]["connections"]),
            "ssh_exec_thopter": mean_of(lambda r: r["sshd"]["thopter"]["exec_channels"]),
            "ssh_exec_gc": mean_of(lambda r: r["sshd"]["gc"]["exec_channels"]),
            "ssh_sftp_thopter": mean_of(lambda r: r["sshd"]["thopter"]["sftp_channels"]),
            "ssh_sftp_gc": mean_of(lambda r: r["sshd"]["gc"]["sftp_channels"]),
            "fly_calls_per_provision": mean_of(lambda r: r["fly_calls"]),
            "consumer_cpu_ms_per_provision": mean_of(lambda r: r["consumer_cpu_ms"]),
            "fly_calls_by_route_per_provision": {k: v / float(len(runs)) for k, v in sorted(routes.items())},
            "warmup": per[0], "provisions": runs,
            "vmhwm_kb": hwm, "fake_timings": st.fly.get_config().get("timings"),
        }
    finally:
        if tail is not None:
            try:
                tail.close()
            except Exception:
                pass
        st.close()


def provision_env(args, hosts, **extra):
    """The provision consumer's settings for @hosts: MAX_THOPTERS high enough that every
    provisioned thopter may stay started in the fake, then @extra, then --provision-env."""
    env = dict(hosts.env(), MAX_THOPTERS="100000", **extra)
    for kv in args.provision_env:
        k, v = kv.split("=", 1)
        env[k] = v
    return env


def provision_skipped(args, R, key):
    """True (and R[key] says why) when the provision scenarios cannot run here."""
    if not args.provision:
        R[key] = {"status": "skipped", "why": "skipped: --no-provision"}
        return True
    if os.geteuid() != 0:
        R[key] = {"status": "skipped",
                  "why": "skipped: needs root (the harness adds a user, runs sshd in mount "
                         "namespaces); run as root or pass --no-provision"}
        log("%s: skipped (not root)" % key)
        return True
    return False


def scenario_provision(args, R):
    if provision_skipped(args, R, "provision"):
        return
    from provision_harness import ThopterHosts
    hosts = track(ThopterHosts(neutral_shell=not args.host_shell))
    hosts.stop = hosts.close
    try:
        out = {"status": "measured", "runs": [], "neutral_shell": hosts.neutral_shell}
        args.ssh_cal = ssh_calibrate(hosts)
        if args.ssh_cal:
            log("provision: a channel round trip here %.1f ms (OpenSSH client, new connection + `true` %.1f ms)" % (
                args.ssh_cal["channel_ms"], args.ssh_cal["openssh_connect_and_channel_ms"]))
        for k, lat in enumerate(args.provision_latency_ms):
            log("provision: %d provisions one after another, %d ms per fly call ..." % (args.provision_n, lat))
            r = provision_once(args, hosts, lat, args.provision_n, issue_base=1000 * (k + 1))
            out["runs"].append(r)
            log("  total p50 %.0f ms p99 %.0f ms, wait p50 %.0f ms; %d/%d completed" % (
                r["total_p50_ms"] or 0, r["total_p99_ms"] or 0, r["wait_p50_ms"] or 0, r["completed"], r["n"]))
        R["provision"] = out
    finally:
        untrack(hosts)
        hosts.close()


# ---------------------------------------------------------------------------------------------
# Scenario 5: parallel provisioning (MAX_CONCURRENT_PROVISIONS), serial vs N in flight


def max_overlap(intervals):
    """The most [start, end] intervals open at one moment."""
    edges = sorted([(a, 1) for a, b in intervals] + [(b, -1) for a, b in intervals], key=lambda e: (e[0], e[1]))
    now = best = 0
    for _, d in edges:
        now += d
        best = max(best, now)
    return best


PARALLEL_STEPS = ["lookup", "capacity", "volume", "create", "wait", "golden_claude_wait", "golden_claude", "git",
                  "context_files", "launch"]


def parallel_provision_once(args, conc):
    """A fresh ThopterHosts (one thopter host per machine) + devbroker + fake + provision consumer
    with MAX_CONCURRENT_PROVISIONS=@conc; all --parallel-n requests produced at once; the wall time
    runs from just before the first produce to the last `completed` event's `at`."""
    from provision_harness import ThopterHosts
    n, latency_ms, boot_ms = args.parallel_n, args.parallel_latency_ms, args.parallel_boot_ms
    create_ms = min(50, boot_ms)
    hosts = track(ThopterHosts(thopters=n, neutral_shell=not args.host_shell))
    hosts.stop = hosts.close
    st = tail = None
    try:
        cfg = dict(hosts.fly_config(), timings={"create_ms": create_ms, "start_ms": boot_ms - create_ms},
                   rate_limit=not args.parallel_no_rate_limit)
        st = Stack(args, fly_latency_ms=latency_ms, fly_config=cfg)
        hosts.seed_golden_claudes(st.fly)
        env = provision_env(args, hosts, MAX_CONCURRENT_PROVISIONS=str(conc))
        c = st.consumer(role="provision", env=env)
        st.wait_assigned(c)
        tail = EventTail(st.broker.bootstrap)
        tail.pump(0.3)
        st.fly.clear_calls()
        rids = ["bench-par%d-%d" % (conc, i) for i in range(n)]
        cpu0 = cpu_seconds(c.proc.pid)
        t0 = time.time()
        for i, rid in enumerate(rids):
            st.kafka.produce(PROVISION, provision_request(rid, 3000 + 100 * conc + i, hosts.repository), key=rid)
        st.kafka.flush()
        t_flushed = time.time()
        deadline = time.monotonic() + args.provision_timeout * n / max(1, conc) + 60
        fins = {}
        for rid in rids:
            fins[rid] = tail.final(rid, max(1.0, deadline - time.monotonic()))
        cpu1 = cpu_seconds(c.proc.pid)
        hwm = status_kb(c.proc.pid, "VmHWM")
        time.sleep(0.2)
        tail.pump(0.2)
        calls = [x for x in st.fly.calls() if x["route"].startswith(("machines.", "volumes."))]
        stats = st.fly.stats()
        done = [r for r in rids if fins[r]["state"] == "completed"]
        t_end = max(iso_ms(fins[r]["at"]) + 0.0005 for r in rids)
        spans, totals, gc_waits, step_ms = [], [], 0, {}
        for rid in rids:
            evs = tail.by_rid.get(rid, [])
            st_at = [iso_ms(e["at"]) for e in evs if e.get("state") == "started" and e.get("at")]
            if st_at and fins[rid].get("at"):
                spans.append((min(st_at), iso_ms(fins[rid]["at"])))
            el = {e.get("state"): e.get("elapsedMs") for e in evs if e.get("state") in ("started", "completed")}
            if el.get("started") is not None and el.get("completed") is not None:
                totals.append(float(el["completed"]) - float(el["started"]))
            gc_waits += sum(1 for e in evs if e.get("state") == "step" and e.get("step") == "golden_claude_wait")
            # Time per step: from its step event to the next event (the first `started` to the
            # capacity step is "lookup"); a step entered twice (volume after a 412) adds up.
            marks = []
            for e in evs:
                if e.get("elapsedMs") is None:
                    continue
                if e.get("state") == "started" and not marks:
                    marks.append(("lookup", float(e["elapsedMs"])))
                elif e.get("state") == "step" and marks:
                    marks.append((e.get("step"), float(e["elapsedMs"])))
                elif e.get("state") in ("completed", "failed") and marks:
                    marks.append((None, float(e["elapsedMs"])))
                    break
            for (k, t1), (_, t2) in zip(marks, marks[1:]):
                step_ms.setdefault(k, []).append(t2 - t1)
        routes = {}
        for x in calls:
            k = "%s %s" % (x["route"], x["status"])
            routes[k] = routes.get(k, 0) + 1
        n429 = sum(v for k, v in routes.items() if k.endswith(" 429"))
        return {
            "concurrency": conc, "n": n, "latency_ms": latency_ms, "boot_ms": boot_ms,
            "fake_timings": cfg["timings"], "fake_rate_limit": cfg["rate_limit"],
            "completed": len(done), "failed": [(r, fins[r].get("error")) for r in rids if r not in done],
            "wall_s": t_end - t0, "produce_s": t_flushed - t0,
            "first_call_after_produce_ms": (min(x["started"] for x in calls) - t0) * 1000.0 if calls else None,
            "provision_mean_ms": statistics.mean(totals) if totals else None,
            "provision_p50_ms": pct(totals, 50), "provision_max_ms": max(totals) if totals else None,
            "max_in_flight": max_overlap(spans) if spans else None,
            "fly_calls": len(calls), "fly_calls_per_provision": len(calls) / float(n),
            "fly_429s": n429, "fly_412s": sum(v for k, v in routes.items() if k.endswith(" 412")),
            "fly_calls_by_route_status": dict(sorted(routes.items())),
            "fake_max_in_flight": stats.get("max_in_flight"),
            "golden_claude_waits": gc_waits,
            "step_mean_ms": {k: sum(v) / float(n) for k, v in step_ms.items()},
            "machines_list_starts_s": [round(x["started"] - t0, 3) for x in calls if x["route"] == "machines.list"],
            "consumer_cpu_ms": (cpu1 - cpu0) * 1000.0, "vmhwm_kb": hwm,
            "env": {k: env[k] for k in env if k.startswith(("MAX_", "THOPTER_FLY_PACING", "THOPTER_GC_COPY"))},
        }
    finally:
        if tail is not None:
            try:
                tail.close()
            except Exception:
                pass
        if st is not None:
            st.close()
        untrack(hosts)
        hosts.close()


def scenario_parallel_provision(args, R):
    if provision_skipped(args, R, "parallel-provision"):
        return
    out = {"status": "measured"}
    for key, conc in (("serial", 1), ("parallel", args.parallel_concurrency)):
        log("parallel provision: %d provisions produced at once, %d ms per fly call, boot %d ms, %d in flight ..."
            % (args.parallel_n, args.parallel_latency_ms, args.parallel_boot_ms, conc))
        r = out[key] = parallel_provision_once(args, conc)
        log("  %.2f s, %d/%d completed, max in flight %s, %d fly 429s, %.1f fly calls per provision" % (
            r["wall_s"], r["completed"], r["n"], r["max_in_flight"], r["fly_429s"], r["fly_calls_per_provision"]))
    s, p = out["serial"], out["parallel"]
    out["ideal_s"] = s["wall_s"] / p["concurrency"]
    out["efficiency"] = out["ideal_s"] / p["wall_s"]
    out["speedup"] = s["wall_s"] / p["wall_s"]
    log("  ideal %.2f s (serial / %d), efficiency = ideal / measured = %.3f, speedup %.2fx" % (
        out["ideal_s"], p["concurrency"], out["efficiency"], out["speedup"]))
    R["parallel-provision"] = out


def parallel_provision_rows(PP):
    s, p = PP["serial"], PP["parallel"]
    k = p["concurrency"]
    setup = "%d hub-shaped requests produced at once, %d ms per fly call, fake boot %d ms (created→started), " \
            "fake rate limits %s" % (s["n"], s["latency_ms"], s["boot_ms"],
                                     "on (fly's: 1/s burst 3 per app action)" if s["fake_rate_limit"] else "off")
    rows = [
        ("parallel provision", "serial (MAX_CONCURRENT_PROVISIONS=1) wall", "%.2f s" % s["wall_s"], "", "",
         "%s; first produce → last completed; %d/%d completed; started→completed mean %s ms" % (
             setup, s["completed"], s["n"], fmt(s["provision_mean_ms"], "%.0f"))),
        ("parallel provision", "%d in flight (MAX_CONCURRENT_PROVISIONS=%d) wall" % (k, k), "%.2f s" % p["wall_s"],
         "", "", "%d/%d completed; most provisions in flight at once %s; started→completed mean %s ms, max %s ms; "
                 "golden_claude_wait steps %d" % (
                     p["completed"], p["n"], p["max_in_flight"], fmt(p["provision_mean_ms"], "%.0f"),
                     fmt(p["provision_max_ms"], "%.0f"), p["golden_claude_waits"])),
        ("parallel provision", "efficiency at %d in flight (ideal÷measured)" % k, "%.3f" % PP["efficiency"], "", "",
         "ideal %.2f s = serial ÷ %d; speedup serial÷parallel %.2f×; mean ms per provision and step, serial / %d in "
         "flight: %s" % (PP["ideal_s"], k, PP["speedup"], k, ", ".join(
             "%s %s/%s" % (st, fmt(s["step_mean_ms"].get(st), "%.0f"), fmt(p["step_mean_ms"].get(st), "%.0f"))
             for st in PARALLEL_STEPS if st in s["step_mean_ms"] or st in p["step_mean_ms"]))),
        ("parallel provision", "fly 429s / fly calls per provision (serial, %d in flight)" % k,
         "%d, %d / %.1f, %.1f" % (s["fly_429s"], p["fly_429s"], s["fly_calls_per_provision"],
                                  p["fly_calls_per_provision"]), "", "",
         "%d in flight by route and status: %s" % (k, ", ".join(
             "%s %d" % (r, v) for r, v in p["fly_calls_by_route_status"].items()))),
    ]
    return rows


# ---------------------------------------------------------------------------------------------
# Report


def log(msg):
    sys.stderr.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def run_cmd(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return ""


def header_info(args):
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import confluent_kafka
    consumer = os.path.join(args.build_dir, "thopter-consumer")
    commit = run_cmd(["git", "-C", ROOT, "rev-parse", "--short=12", "HEAD"])
    dirty = run_cmd(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"])
    return {
        "utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "host_nproc": os.cpu_count(), "cpu_model": cpu, "kernel": platform.release(),
        "git_commit": commit + ("-dirty" if dirty else ""),
        "consumer_version": run_cmd([consumer, "--version"]),
        "librdkafka_python": confluent_kafka.libversion()[0],
        "build_dir": os.path.relpath(args.build_dir, ROOT),
        "extra_X": list(args.X),
        "argv": sys.argv[1:],
    }


def fmt(v, spec="%.2f"):
    return "—" if v is None else spec % v


def verdict(ok):
    return "—" if ok is None else ("PASS" if ok else "FAIL")


def stall_note(x):
    t = x.get("timeline")
    if not t:
        return ""
    return "idle gaps >100 ms: %d, %.2f s in total (longest %.0f ms); first output %.2f s after assignment" % (
        t["stalls_over_100ms"], t["stalled_s"], t["longest_stalls"][0]["gap_ms"] if t["longest_stalls"] else 0,
        t["first_output_s"])


def build_rows(R):
    """(section, metric, value, target, verdict, note)"""
    rows = []
    b = R.get("bulk")
    if b:
        s, p = b["serial"], b["parallel"]
        cpd = s["calls_per_destroy"]
        rows.append(("bulk destroy", "serial (MAX_CONCURRENT_DESTROYS=1) wall",
                     "%.2f s" % s["wall_s"], "", "",
                     "ideal %.2f s = %d×%.2f calls×%d ms; efficiency %.3f" % (
                         s["ideal_s"], s["n"], cpd, s["latency_ms"], s["efficiency"])))
        rows.append(("bulk destroy", "parallel (MAX_CONCURRENT_DESTROYS=5) wall",
                     "%.2f s" % p["wall_s"], "", "",
                     "ideal %.2f s = %d×%.2f calls×%d ms÷5; max in flight %d" % (
                         p["ideal_s"], p["n"], p["calls_per_destroy"], p["latency_ms"], p["max_in_flight"])))
        rows.append(("bulk destroy", "efficiency at 5 in flight (ideal÷actual)", "%.3f" % p["efficiency"],
                     "≥ %.2f" % TARGETS["efficiency_5"], verdict(p["efficiency"] >= TARGETS["efficiency_5"]),
                     "serial efficiency %.3f" % s["efficiency"]))
        rows.append(("bulk destroy", "speedup serial÷parallel", "%.2f×" % b["speedup"],
                     "≥ %.1f×" % TARGETS["speedup"], verdict(b["speedup"] >= TARGETS["speedup"]),
                     "old TS loop: serial or 5 per 100 ms tick"))
        rows.append(("bulk destroy", "fake fly call time (mean) / gap between a destroy's calls",
                     "%.1f / %.1f ms" % (p["call_ms_mean"], p["gap_between_calls_ms_mean"]),
                     "", "", "slot idle per destroy: serial %.1f ms, parallel %.1f ms" % (
                         s["slot_idle_per_destroy_ms"], p["slot_idle_per_destroy_ms"])))
    for key, title in (("latency", "publish→started"), ("latency_variant", "publish→started")):
        L = R.get(key)
        if not L:
            continue
        extra = "" if key == "latency" else " with -X " + " -X ".join(L["xprops"][len(R["header"]["extra_X"]):])
        rows.append(("latency", "%s p50 / p99%s" % (title, extra),
                     "%s / %s ms" % (fmt(L["p50_ms"], "%.1f"), fmt(L["p99_ms"], "%.1f")),
                     "p99 < %d ms" % TARGETS["p99_start_ms"],
                     verdict(L["p99_ms"] is not None and L["p99_ms"] < TARGETS["p99_start_ms"]),
                     "%d req at %g/s; Kafka leg p50/p99 %s/%s ms, in-consumer p99 %s ms; old loop: mean 50, p99 ~99 ms" % (
                         L["matched"], L["rate_per_s"], fmt(L["kafka_leg_p50_ms"], "%.1f"),
                         fmt(L["kafka_leg_p99_ms"], "%.1f"), fmt(L["consumer_leg_p99_ms"], "%.0f"))))
    d = R.get("dlq")
    if d:
        rows.append(("overhead", "dead-letter path throughput", "%.0f msg/s" % d["msgs_per_s"],
                     "≥ %d msg/s" % TARGETS["dlq_msgs_per_s"], verdict(d["msgs_per_s"] >= TARGETS["dlq_msgs_per_s"]),
                     "%d not-JSON records in %.2f s; %d dead letters; %s" % (
                         d["n"], d["wall_s"], d["dlq_records"], stall_note(d))))
        rows.append(("overhead", "dead-letter path CPU", "%.3f CPU s / 1000 msgs" % d["cpu_s_per_1000"], "", "",
                     "consumer utime+stime %.2f s" % d["cpu_s"]))
    for name, n, size in FLOODS:
        f = (R.get("flood") or {}).get(name)
        if not f:
            continue
        lost = sum((f.get("topic_log_start") or {}).values())
        rows.append(("memory", "peak RSS (VmHWM) under a poison flood, %s records" % name,
                     fmt(mb(f["vmhwm_load_kb"]), "%.1f MB"), "< %d MB" % TARGETS["peak_rss_mb"],
                     verdict(mb(f["vmhwm_load_kb"]) < TARGETS["peak_rss_mb"]),
                     "%d × %d KB not-JSON records queued before the start (%.0f MB), %d dead letters in %.2f s; "
                     "idle %.1f MB%s" % (
                         f["n"], size // 1024, f["n"] * size / 1e6, f["dlq_records"], f["wall_s"],
                         mb(f["vmhwm_idle_kb"]),
                         "; %d records already gone to the mock's 5 MB per partition" % lost if lost else "")))
    x = R.get("destroy")
    if x:
        rows.append(("overhead", "destroy path throughput (0 ms fly)", "%.0f msg/s" % x["msgs_per_s"], "", "",
                     "%d destroys in %.2f s, %d fly calls; %s" % (
                         x["n"], x["wall_s"], x["fly_calls"], stall_note(x))))
        rows.append(("overhead", "destroy path CPU", "%.3f CPU s / 1000 msgs" % x["cpu_s_per_1000"], "", "",
                     "consumer utime+stime %.2f s, mostly idle time (see gaps)" % x["cpu_s"]))
    if R.get("latency") and R["latency"].get("idle_cpu_ms_per_s") is not None:
        rows.append(("overhead", "idle consumer CPU (assigned, no traffic)",
                     "%.1f ms CPU / s" % R["latency"]["idle_cpu_ms_per_s"], "", "", "measured over 2 s in the latency run"))
        if R["latency"].get("broker_idle_cpu_ms_per_s") is not None:
            rows.append(("overhead", "idle broker CPU (the same 2 s)",
                         "%.1f ms CPU / s" % R["latency"]["broker_idle_cpu_ms_per_s"], "", "",
                         "thopter-devbroker, or the real node's JVM"))
    P = R.get("provision")
    if P:
        if P.get("status") == "measured":
            rows += provision_rows(P)
        else:
            rows.append(("provision", "provision rows", "not measured", "", "—", P.get("why", "")))
    PP = R.get("parallel-provision")
    if PP:
        if PP.get("status") == "measured":
            rows += parallel_provision_rows(PP)
        else:
            rows.append(("parallel provision", "parallel provision rows", "not measured", "", "—", PP.get("why", "")))
    M = R.get("memory")
    if M:
        rows.append(("memory", "peak RSS (VmHWM) idle, after assignment", fmt(M["idle_mb"], "%.1f MB"),
                     "< %d MB" % TARGETS["peak_rss_mb"],
                     verdict(M["idle_mb"] < TARGETS["peak_rss_mb"]) if M["idle_mb"] is not None else "—",
                     M["idle_from"]))
        rows.append(("memory", "peak RSS (VmHWM) under load", fmt(M["load_mb"], "%.1f MB"),
                     "< %d MB" % TARGETS["peak_rss_mb"],
                     verdict(M["load_mb"] < TARGETS["peak_rss_mb"]) if M["load_mb"] is not None else "—",
                     M["load_from"]))
    if P and P.get("status") == "measured":
        rs = P["runs"]
        top = max(rs, key=lambda r: r["vmhwm_kb"] or 0)
        rows.append(("memory", "peak RSS (VmHWM) of the provision consumer", fmt(mb(top["vmhwm_kb"]), "%.1f MB"),
                     "< %d MB" % TARGETS["peak_rss_mb"],
                     verdict(mb(top["vmhwm_kb"]) < TARGETS["peak_rss_mb"]) if top["vmhwm_kb"] else "—",
                     "after %s" % ", ".join("%d+1 provisions at %d ms fly: %.1f MB" % (
                         r["n"], r["latency_ms"], mb(r["vmhwm_kb"])) for r in rs)))
    return rows


# The original agent-manager (thopter-swarm's hub/src/lib/provisioner.ts at dd6852b), itemised
# (each item is its own flyctl process; each SSH/SFTP one opens its own SSH connection).
ORIGINAL = {
    "ssh_sessions": 22,   # ~10 log lines, GC copy 5 (tar, sftp get, sftp put, untar, rm), git 3, files 3, launch 1
    "api_processes": 4,   # volumes list, machine run, machines list (exists?), machines list (GC); +1 volume create
}


def provision_rows(P):
    rows = []
    runs = P["runs"]
    for r in runs:
        lat = "%d ms fly" % r["latency_ms"]
        steps = r["step_p50_ms"]
        rows.append(("provision", "started→completed p50 / p99 (%s)" % lat,
                     "%s / %s ms" % (fmt(r["total_p50_ms"], "%.0f"), fmt(r["total_p99_ms"], "%.0f")), "", "",
                     "%d of %d completed (%d failed), one at a time; step p50s (ms): %s; consumer CPU %s ms "
                     "per provision; publish→completed p50 %s ms (adds the Kafka leg)" % (
                         r["completed"], r["n"], r["failed"],
                         ", ".join("%s %s" % (k, fmt(steps.get(k), "%.0f")) for k in PROVISION_STEPS),
                         fmt(r["consumer_cpu_ms_per_provision"], "%.1f"),
                         fmt(r["publish_to_final_p50_ms"], "%.0f"))))
        fl, cs = r.get("step_floor_ms") or {}, r.get("fly_calls_by_step") or {}
        if any(v is not None for v in fl.values()):
            rows.append(("provision", "steps: sum of p50s / sum of floors (%s)" % lat,
                         "%s / %s ms" % (fmt(sum(v for v in steps.values() if v is not None), "%.0f"),
                                         fmt(sum(v for v in fl.values() if v is not None), "%.0f")), "", "",
                         "floor = fly calls × %d ms + channel round trips × %.1f ms (the wait: boot + "
                         "the thopter's SSH connect, p50 %s ms; the GC's, %s ms, runs during the boot); "
                         "per step p50/floor ms (fly calls): %s" % (
                             r["latency_ms"], (r.get("ssh_calibration") or {}).get("channel_ms", 0),
                             fmt((r.get("ssh_connect_p50_ms") or {}).get("thopter"), "%.0f"),
                             fmt((r.get("ssh_connect_p50_ms") or {}).get("gc"), "%.0f"), ", ".join(
                                 "%s %s/%s (%s)" % (k, fmt(steps.get(k), "%.0f"), fmt(fl.get(k), "%.0f"),
                                                    fmt(cs.get(k), "%.2g")) for k in PROVISION_STEPS))))
        rows.append(("provision", "wait step p50 / p99 (%s)" % lat,
                     "%s / %s ms" % (fmt(r["wait_p50_ms"], "%.0f"), fmt(r["wait_p99_ms"], "%.0f")), "", "",
                     "fake boot (create %d + start %d ms) + machine wait call + SSH connect to the thopter" % (
                         (r["fake_timings"] or {}).get("create_ms", 0), (r["fake_timings"] or {}).get("start_ms", 0))))
        rows.append(("provision", "excluding the boot: total − wait, p50 / p99 (%s)" % lat,
                     "%s / %s ms" % (fmt(r["excl_boot_p50_ms"], "%.0f"), fmt(r["excl_boot_p99_ms"], "%.0f")), "", "",
                     "per provision; the consumer's own work plus fly calls and remote commands"))
    r = runs[0]
    conn_ok = all(x["ssh_connections_thopter"] == 1 and x["ssh_connections_gc"] == 1 for x in runs)
    rows.append(("provision", "SSH connections per provision (thopter + GC)",
                 "%s + %s" % (fmt(r["ssh_connections_thopter"], "%g"), fmt(r["ssh_connections_gc"], "%g")),
                 "1 + 1", verdict(conn_ok),
                 "'Accepted publickey' lines in each sshd's log per provision, mean over all runs' provisions "
                 "(%s); original: ~%d flyctl SSH/SFTP processes, each its own connection" % (
                     "; ".join("%d ms: %g + %g" % (x["latency_ms"], x["ssh_connections_thopter"],
                                                   x["ssh_connections_gc"]) for x in runs),
                     ORIGINAL["ssh_sessions"])))
    ex = r["ssh_exec_thopter"] + r["ssh_exec_gc"]
    sf = r["ssh_sftp_thopter"] + r["ssh_sftp_gc"]
    rows.append(("provision", "SSH round trips (channels) per provision",
                 "%g (%g exec + %g sftp)" % (ex + sf, ex, sf), "", "",
                 "sshd VERBOSE 'Starting session: command' (exec channels: thopter %g, GC %g) + "
                 "'Starting session: subsystem sftp' (thopter %g, GC %g); all over the 2 connections above; "
                 "original: ~%d sessions, each a new process + connection + handshake" % (
                     r["ssh_exec_thopter"], r["ssh_exec_gc"], r["ssh_sftp_thopter"], r["ssh_sftp_gc"],
                     ORIGINAL["ssh_sessions"])))
    rows.append(("provision", "fly API calls per provision", "%g" % r["fly_calls_per_provision"], "", "",
                 "%s; original: %d–%d flyctl API processes plus the API calls inside each `fly ssh` "
                 "(~%d), and readiness polling every 2 s" % (
                     ", ".join("%s %g" % (k, v) for k, v in r["fly_calls_by_route_per_provision"].items()),
                     ORIGINAL["api_processes"], ORIGINAL["api_processes"] + 1, ORIGINAL["ssh_sessions"])))
    return rows


def memory_summary(R):
    idle, load = [], []
    if "bulk" in R:
        p = R["bulk"]["parallel"]
        idle.append((p["vmhwm_idle_kb"], "bulk, 5 in flight"))
        load.append((p["vmhwm_load_kb"], "after bulk destroy (5 in flight)"))
        load.append((R["bulk"]["serial"]["vmhwm_load_kb"], "after bulk destroy (serial)"))
    for k in ("dlq", "destroy"):
        if k in R:
            idle.append((R[k]["vmhwm_idle_kb"], k))
            load.append((R[k]["vmhwm_load_kb"], "after %s run" % k))
    if "latency" in R:
        load.append((R["latency"]["vmhwm_kb"], "after latency run"))
    P = R.get("provision")
    if P and P.get("status") == "measured":
        for r in P["runs"]:
            load.append((r["vmhwm_kb"], "after provision run (%d ms fly)" % r["latency_ms"]))
    PP = R.get("parallel-provision")
    if PP and PP.get("status") == "measured":
        for key in ("serial", "parallel"):
            r = PP[key]
            load.append((r["vmhwm_kb"], "after %d provisions, %d in flight" % (r["n"], r["concurrency"])))
    if not idle and not load:
        return None
    i = max(idle) if idle else (None, "")
    l = max(load) if load else (None, "")
    return {"idle_mb": mb(i[0]), "idle_from": "max over scenarios; highest: %s" % i[1] if idle else "",
            "load_mb": mb(l[0]), "load_from": "max over scenarios; highest: %s" % l[1] if load else "",
            "idle_kb_all": idle, "load_kb_all": load}


def render(R, rows):
    h = R["header"]
    out = []
    out.append("# thopter-consumer benchmark, %s" % h["utc"])
    out.append("")
    out.append("- machine: %s CPUs, %s, Linux %s" % (h["host_nproc"], h["cpu_model"], h["kernel"]))
    out.append("- commit: %s; %s; librdkafka %s (python client) ; build dir %s" % (
        h["git_commit"], h["consumer_version"], h["librdkafka_python"], h["build_dir"]))
    out.append("- command: bench/run.py %s" % " ".join(h["argv"]))
    if h["extra_X"]:
        out.append("- consumer -X overrides for every scenario: %s" % ", ".join(h["extra_X"]))
    out.append("- brokers: \"mock\" rows: thopter-devbroker (librdkafka mock cluster, 1 broker), consumer "
               "-X session.timeout.ms=4000; \"real\" rows: Apache Kafka %s, one KRaft node on loopback "
               "(tests/harness/kafka_cluster.py), consumer -X session.timeout.ms=6000; both -X "
               "heartbeat.interval.ms=500; fly: tests/fakes/fake_fly.py" % h.get("kafka_version", "?"))
    out.append("")
    out.append("| area | metric | value | target | result | notes |")
    out.append("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        out.append("| %s |" % " | ".join(str(c).replace("|", "\\|") for c in r))
    out.append("")
    out.append("Total runtime %.0f s." % R.get("runtime_s", 0))
    if R.get("errors"):
        out.append("")
        out.append("Errors:")
        for e in R["errors"]:
            out.append("- %s" % e)
    return "\n".join(out) + "\n"


def print_table(rows):
    cols = list(zip(*rows)) if rows else []
    heads = ("area", "metric", "value", "target", "result", "notes")
    widths = [max([len(heads[i])] + [len(str(c)) for c in cols[i]]) if cols else len(heads[i])
              for i in range(6)]
    widths[5] = min(widths[5], 100)
    line = "  ".join(h.ljust(widths[i]) for i, h in enumerate(heads))
    print(line)
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(str(c).ljust(widths[i]) for i, c in enumerate(r)))


# ---------------------------------------------------------------------------------------------

SCENARIOS = ["bulk", "latency", "dlq", "flood", "destroy", "provision", "parallel-provision"]
# The scenarios run on the real cluster too with --kafka both / real.
KAFKA_SCENARIOS = ["bulk", "latency", "dlq"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200, help="bulk destroy: machines (default 200)")
    ap.add_argument("--latency-ms", type=int, default=50, help="bulk destroy: fake latency per fly call (50)")
    ap.add_argument("--lat-n", type=int, default=200, help="latency: requests (200)")
    ap.add_argument("--lat-rate", type=float, default=20.0, help="latency: requests per second (20)")
    ap.add_argument("--lat-variant", action="append", default=None, metavar="KEY=VALUE",
                    help="latency: a second run with these consumer -X properties "
                         "(default fetch.wait.max.ms=10; 'none' to skip)")
    ap.add_argument("--dlq-n", type=int, default=20000, help="overhead: not-JSON records (20000)")
    ap.add_argument("--destroy-n", type=int, default=300,
                    help="overhead: zero-latency destroys (300; 2000 takes ~4 min with the current pause/resume stalls)")
    ap.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    ap.add_argument("--only", action="append", choices=SCENARIOS, help="run only this scenario (repeatable)")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build", "release"))
    ap.add_argument("-X", action="append", default=[], metavar="KEY=VALUE",
                    help="librdkafka property passed to the consumer in every scenario")
    ap.add_argument("--consumer-env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra consumer environment in every scenario (diagnostics, e.g. THOPTER_LOG_LEVEL=debug "
                         "with -X debug=consumer to count pause/resume cycles)")
    ap.add_argument("--provision", dest="provision", action="store_true", default=None,
                    help="measure provisioning (default: on when running as root, which it needs)")
    ap.add_argument("--no-provision", dest="provision", action="store_false", help="skip provisioning")
    ap.add_argument("--provision-n", type=int, default=10,
                    help="provision: measured provisions per run, one after another (10; plus 1 warm-up)")
    ap.add_argument("--provision-latency-ms", default="0,50",
                    help="provision: one run per fake fly latency, comma-separated (0,50)")
    ap.add_argument("--provision-timeout", type=float, default=60.0, help="provision: per request (60 s)")
    ap.add_argument("--host-shell", action="store_true",
                    help="provision: let the SSH targets run this host's shell dotfiles (root's ~/.bashrc); "
                         "by default they are masked in the test sshds' mount namespaces")
    ap.add_argument("--provision-env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra consumer environment for the provision runs")
    ap.add_argument("--parallel-n", type=int, default=9,
                    help="parallel-provision: provisions produced at once, per run (9)")
    ap.add_argument("--parallel-concurrency", type=int, default=3,
                    help="parallel-provision: MAX_CONCURRENT_PROVISIONS of the run compared with 1 (3)")
    ap.add_argument("--parallel-latency-ms", type=int, default=50,
                    help="parallel-provision: fake latency per fly call (50)")
    ap.add_argument("--parallel-boot-ms", type=int, default=3000,
                    help="parallel-provision: the fake's boot, created -> started (3000: create 50 + start 2950)")
    ap.add_argument("--parallel-no-rate-limit", action="store_true",
                    help="parallel-provision: turn off the fake's per-app rate limits (fly's 1/s, burst 3)")
    ap.add_argument("--kafka", choices=["both", "mock", "real"], default="both",
                    help="the broker(s) of the Kafka-side scenarios: both side by side (default), "
                         "thopter-devbroker only, or the real Apache Kafka cluster only")
    ap.add_argument("--results-dir", default=os.path.join(HERE, "results"))
    ap.add_argument("--no-write", action="store_true", help="print only; write no results files")
    ap.add_argument("--keep-logs", action="store_true", help="keep the consumers' log files")
    args = ap.parse_args()

    if args.provision is None:
        args.provision = os.geteuid() == 0
    args.provision_latency_ms = [int(x) for x in args.provision_latency_ms.split(",") if x.strip()]
    if args.lat_variant is None:
        args.lat_variant = ["fetch.wait.max.ms=10"]
    elif args.lat_variant == ["none"]:
        args.lat_variant = []
    if args.quick:
        args.n = min(args.n, 40)
        args.lat_n = min(args.lat_n, 40)
        args.dlq_n = min(args.dlq_n, 2000)
        args.destroy_n = min(args.destroy_n, 200)
        args.provision_n = min(args.provision_n, 3)
        args.parallel_n = min(args.parallel_n, 6)
    args.build_dir = os.path.abspath(args.build_dir)
    for b in ("thopter-consumer", "thopter-devbroker"):
        if not os.access(os.path.join(args.build_dir, b), os.X_OK):
            sys.exit("no %s in %s: build first (cmake --preset release && cmake --build --preset release -j2)"
                     % (b, args.build_dir))
    os.environ["THOPTER_BUILD_DIR"] = args.build_dir
    sys.path.insert(0, os.path.join(ROOT, "tests", "harness"))

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    t_begin = time.monotonic()
    R = {"header": header_info(args), "targets": TARGETS, "errors": []}
    h = R["header"]
    print("thopter-consumer benchmark  %s" % h["utc"])
    print("machine: %s CPUs, %s | commit %s | %s | librdkafka %s" % (
        h["host_nproc"], h["cpu_model"], h["git_commit"], h["consumer_version"], h["librdkafka_python"]))
    sys.stdout.flush()
    funcs = {"bulk": scenario_bulk, "latency": scenario_latency, "dlq": scenario_dlq, "flood": scenario_flood,
             "destroy": scenario_destroy, "provision": scenario_provision,
             "parallel-provision": scenario_parallel_provision}
    plan = []  # (broker kind, scenario, results dict)
    if args.kafka in ("both", "real"):
        from kafka_cluster import KAFKA_VERSION
        h["kafka_version"] = KAFKA_VERSION
        R["real"] = {"header": h, "errors": R["errors"]}
    for name in SCENARIOS:
        if args.only and name not in args.only:
            continue
        if args.kafka in ("both", "mock") or name not in KAFKA_SCENARIOS:
            plan.append(("mock", name, R))
        if args.kafka in ("both", "real") and name in KAFKA_SCENARIOS:
            plan.append(("real", name, R["real"]))
    try:
        for kind, name, results in plan:
            BROKER["kind"] = kind
            log("[%s broker]" % kind)
            try:
                funcs[name](args, results)
            except Exception as e:
                traceback.print_exc()
                R["errors"].append("%s (%s): %s" % (name, kind, e))
            finally:
                stop_all()
    finally:
        stop_all()
    R["memory"] = memory_summary(R)
    R["runtime_s"] = time.monotonic() - t_begin
    rows = [(("%s (mock)" % r[0]) if r[0] in ("bulk destroy", "latency", "overhead") and "real" in R else r[0],)
            + tuple(r[1:]) for r in build_rows(R)]
    if "real" in R:
        real = dict(R["real"], header=h)
        rows += [("%s (real Kafka %s)" % (r[0], h["kafka_version"]),) + tuple(r[1:])
                 for r in build_rows(real) if r[0] != "memory"]
    print()
    print_table(rows)
    print("\nruntime %.0f s" % R["runtime_s"])
    if not args.no_write:
        os.makedirs(args.results_dir, exist_ok=True)
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
        base = os.path.join(args.results_dir, stamp)
        with open(base + ".md", "w") as f:
            f.write(render(R, rows))
        with open(base + ".json", "w") as f:
            json.dump(R, f, indent=2, sort_keys=True, default=str)
            f.write("\n")
        print("wrote %s.md and .json" % os.path.relpath(base, os.getcwd()))
    return 1 if R["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
