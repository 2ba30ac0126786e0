"""The guarantees on a real Apache Kafka cluster (KRaft, tests/harness/kafka_cluster.py):
three nodes, replication factor 3, min.insync.replicas 2, and the real
thopter-consumer, the fake fly API and Kafka's own command-line tools.

Each fault is the short form of a scenario (tests/reliability/reliability.py has
the long ones): a burst of destroys runs while a node, the group coordinator or
a consumer instance is killed, and afterwards
  - nothing is lost: every machine destroyed, a `completed` event for each
    request, no dead letter, and the group's committed offsets at the end of
    every partition as Kafka's own kafka-consumer-groups.sh reports them;
  - no machine was ever destroyed by two calls at once (the fake fly API's
    in-flight maximum per machine).
Figures (durations, takeover time) are printed as "FIGURE ..." lines and kept in
docs/RELIABILITY.md.

Also here: deploy/create-topics.sh with the real kafka-topics.sh, and the
start-up probe against Kafka 4.
"""
import os
import re
import subprocess
import time
import unittest
import urllib.error
import urllib.request

from flyfake import FlyFake
from kafka_cluster import KAFKA_VERSION, KafkaCluster, kafka_home
from thopter_harness import (SOURCE_DIR, TOKEN, Kafka, ThopterConsumer, binary, kafka_tool_committed,
                             machine_id, tmo, wait_until)

SESSION_TIMEOUT_MS = 6000  # GROUP_PROPS on a real broker: its group.min.session.timeout.ms


def figure(name, value):
    print("FIGURE %s: %s" % (name, value), flush=True)


class ThreeNodeCase(unittest.TestCase):
    """One three-node cluster per class; each test has its own four topics and
    groups (THOPTER_*_TOPIC, THOPTER_*_GROUP), its own fake fly API, and leaves every
    node running."""

    nodes = 3
    _count = 0

    @classmethod
    def setUpClass(cls):
        cls.cluster = KafkaCluster(nodes=cls.nodes)
        try:
            cls.cluster.start()
        except Exception:
            cls.cluster.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    def setUp(self):
        ThreeNodeCase._count += 1
        n = "t%d-%d" % (os.getpid(), ThreeNodeCase._count)
        self.topics = {"provision": n + ".provision", "destroy": n + ".destroy",
                       "dlq": n + ".dlq", "events": n + ".events"}
        self.group = n + "-destroyer"
        self.cluster.create_topics({self.topics["provision"]: 1, self.topics["destroy"]: 6,
                                    self.topics["dlq"]: 1, self.topics["events"]: 3})
        self.fly = FlyFake()
        self.fly.start(token=TOKEN, latency_ms=50)
        self.addCleanup(self.fly.stop)
        self.kafka = Kafka(self.cluster.bootstrap)
        self.addCleanup(self.kafka.close)
        self.consumers = []
        self.addCleanup(self._close_consumers)
        self.addCleanup(self._all_nodes_up)

    def _close_consumers(self):
        for c in self.consumers:
            c.close()

    def _all_nodes_up(self):
        for node in self.cluster.nodes:
            if not node.running():
                self.cluster.start_node(node.id, wait=False)
        self.cluster.wait_ready()

    def run(self, result=None):
        result = super().run(result)
        if result is not None and (result.failures or result.errors):
            self.cluster.failed = True  # keep the broker logs
        return result

    def consumer(self, env=None, args=()):
        e = {"THOPTER_PROVISION_TOPIC": self.topics["provision"], "THOPTER_DESTROY_TOPIC": self.topics["destroy"],
             "THOPTER_DLQ_TOPIC": self.topics["dlq"], "THOPTER_EVENTS_TOPIC": self.topics["events"],
             "THOPTER_DESTROY_GROUP": self.group}
        e.update(env or {})
        c = ThopterConsumer(self.cluster.bootstrap, self.fly.base_url, role="destroy", env=e, args=args)
        self.consumers.append(c)
        return c

    @staticmethod
    def scrape(port, timeout=10.0):
        """(status, seconds) of one GET /metrics (status None: no answer in @timeout)."""
        t = time.monotonic()
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=timeout) as r:
                r.read()
                return r.status, time.monotonic() - t
        except urllib.error.HTTPError as e:
            return e.code, time.monotonic() - t
        except OSError:
            return None, time.monotonic() - t

    def seed_and_publish(self, n, start=1):
        ids = [self.fly.seed_machine(id=machine_id(i), name="thopter-%d" % i, state="started")["id"]
               for i in range(start, start + n)]
        for i in ids:
            self.kafka.produce(self.topics["destroy"], {"thopterId": i, "reason": "real cluster"}, key=i)
        self.kafka.flush()
        return ids

    def destroyed(self, ids):
        machines = {m["id"]: m for m in self.fly.machines()}
        return [i for i in ids if machines[i]["state"] == "destroyed" or machines[i].get("deleted")]

    def assert_nothing_lost(self, ids, timeout=120):
        """Every machine destroyed, a completed event for each, no dead letter, offsets
        committed to the end (kafka-consumer-groups.sh), never two calls at once per machine.
        The machines must be destroyed with the cluster as the fault left it; the Kafka
        side is then read back with every node up again (this test's own librdkafka 2.0.2
        reader can block for good in a watermark query while a killed node is still the
        leader in its metadata, which says nothing about the consumer)."""
        wait_until(lambda: len(self.destroyed(ids)) == len(ids), timeout=timeout, interval=0.25,
                   what="all %d machines destroyed" % len(ids))
        # when the fake fly API answered the last DELETE (wall clock, as its call log)
        self.all_done_at = max(c["ended"] or c["started"] for c in self.fly.calls(route="machines.delete"))
        self._all_nodes_up()
        topic = self.topics["destroy"]
        ends = self.kafka.end_offsets(topic)
        wait_until(lambda: all(kafka_tool_committed(self.cluster.bootstrap, self.group, topic, ends)[p] >= e
                               for p, e in ends.items() if e > 0),
                   timeout=timeout, interval=1.0, what="committed offsets at the end %r" % ends)
        self.committed_at = time.time()
        completed = {e["thopterId"] for e in self.kafka.read_json(self.topics["events"])
                     if e["state"] == "completed"}
        self.assertEqual(set(ids) - completed, set(), "requests with no completed event")
        self.assertEqual(self.kafka.read_all(self.topics["dlq"]), [], "no dead letter expected")
        stats = self.fly.stats()
        self.assertLessEqual(max(stats["max_in_flight_by_machine"].values()), 1,
                             "a machine was destroyed by two calls at once: %r" % stats)
        self.assertLessEqual(stats["max_in_flight"], 5 * max(1, len([c for c in self.consumers])))
        return stats


class TestBrokerFaults(ThreeNodeCase):
    def test_sigkill_of_the_leader_of_the_destroy_partitions_mid_burst(self):
        c = self.consumer()
        c.wait_assigned(timeout=60)
        ids = self.seed_and_publish(150)
        wait_until(lambda: len(self.destroyed(ids)) >= 30, timeout=60, what="30 destroys done")
        victim = self.cluster.leader(self.topics["destroy"], 0)
        port = c.metrics_port()
        t0 = time.time()
        self.cluster.kill(victim)
        done_at_kill = len(self.destroyed(ids))
        # /metrics asks the leaders for the lag; with one of them dead it must
        # still answer (librdkafka 2.0.2's watermark query hung for good here).
        scrapes = [self.scrape(port) for _ in range(5)]
        self.assertEqual([s[0] for s in scrapes], [200] * 5, "every /metrics scrape answered: %r" % scrapes)
        self.assertLess(max(s[1] for s in scrapes), 5.0, "scrape times %r" % scrapes)
        self.assert_nothing_lost(ids)
        figure("leader SIGKILL", "node %d killed after %d of 150 destroys; the rest finished %.1f s later" % (
            victim, done_at_kill, self.all_done_at - t0))
        self.assertEqual(c.proc.poll(), None, "the consumer kept running")

    def test_rolling_restart_of_all_three_brokers_under_load(self):
        """Each node in turn: a wave of destroys is published, the node is stopped
        (SIGTERM: controlled shutdown) while the wave runs, started again and
        waited for in the ISR; the fly latency makes each wave outlast its stop."""
        self.fly.config(latency_ms=150)
        c = self.consumer()
        c.wait_assigned(timeout=60)
        ids = []
        t0 = time.time()
        for node in self.cluster.nodes:
            wave = self.seed_and_publish(60, start=1 + len(ids))
            ids += wave
            self.cluster.stop_node(node.id)
            self.assertLess(len(self.destroyed(wave)), len(wave), "node %d stopped mid-wave" % node.id)
            self.cluster.start_node(node.id)  # waits until it is back in the metadata
            wait_until(lambda: set(self.cluster.isr(self.topics["destroy"], 0)) == {1, 2, 3},
                       timeout=60, interval=0.5, what="node %d back in the ISR" % node.id)
        restarted = time.time() - t0
        stats = self.assert_nothing_lost(ids)
        figure("rolling restart", "3 nodes stopped and restarted one by one in %.1f s, each during a wave of 60 "
               "destroys (150 ms per fly call); all %d done %.1f s after the first stop; %d fly calls "
               "(3 per destroy: none repeated)" % (restarted, len(ids), self.all_done_at - t0, stats.get("calls", 0)))

    def test_sigkill_of_the_group_coordinators_node(self):
        c = self.consumer()
        c.wait_assigned(timeout=60)
        coordinator = self.cluster.coordinator(self.group)
        self.assertIsNotNone(coordinator)
        ids = self.seed_and_publish(200)
        wait_until(lambda: len(self.destroyed(ids)) >= 20, timeout=60, what="20 destroys done")
        t0 = time.time()
        self.cluster.kill(coordinator)
        done_at_kill = len(self.destroyed(ids))
        self.assertLess(done_at_kill, len(ids), "the fault came after the burst")
        wait_until(lambda: len(self.destroyed(ids)) == len(ids), timeout=120, interval=0.25,
                   what="all machines destroyed")

        def new_coordinator():
            n = self.cluster.coordinator(self.group)
            return n if n not in (None, coordinator) else None
        new = wait_until(new_coordinator, timeout=60, interval=1.0,
                         what="kafka-consumer-groups.sh to name the new coordinator")
        self.assert_nothing_lost(ids)
        figure("coordinator SIGKILL", "node %d (coordinator of %s) killed after %d of %d destroys; the rest "
               "finished %.1f s after the kill; new coordinator node %d" % (
                   coordinator, self.group, done_at_kill, len(ids), self.all_done_at - t0, new))

    def test_brokers_refusing_writes_past_the_delivery_timeout(self):
        """Two of three nodes down: min.insync.replicas=2 makes every write fail
        (NOT_ENOUGH_REPLICAS) for longer than the producer's message.timeout.ms,
        while destroys are in flight. Their final events cannot be delivered, so
        their offsets must stay uncommitted until they are; nothing is lost."""
        c = self.consumer(args=["-X", "message.timeout.ms=4000"])
        c.wait_assigned(timeout=60)
        coordinator = self.cluster.coordinator(self.group)
        victims = [n.id for n in self.cluster.nodes if n.id != coordinator][:2]
        ids = self.seed_and_publish(150)
        wait_until(lambda: len(self.destroyed(ids)) >= 10, timeout=60, what="10 destroys done")
        t0 = time.time()
        for v in victims:
            self.cluster.kill(v)
        done_at_kill = len(self.destroyed(ids))
        self.assertLess(done_at_kill, len(ids), "the fault came after the burst")
        time.sleep(12)  # three delivery timeouts
        for v in victims:
            self.cluster.start_node(v, wait=False)
        self.cluster.wait_ready()
        self.assert_nothing_lost(ids, timeout=180)
        figure("writes refused", "nodes %s down 12 s (message.timeout.ms 4000) after %d of %d destroys; all "
               "machines destroyed %.1f s after the kill (their events waiting), offsets committed to the end "
               "%.1f s after it" % (victims, done_at_kill, len(ids), self.all_done_at - t0, self.committed_at - t0))


class TestToolsWithALeaderDown(ThreeNodeCase):
    def test_thopter_dlq_list_answers_while_the_dead_letter_leader_is_down(self):
        """librdkafka 2.0.2's watermark query ignores its timeout while the leader is
        unreachable (consumer/lib/kafka_offsets.h): thopter-dlq list hung for good."""
        self.kafka.produce(self.topics["dlq"], b"a dead letter", key=b"k")
        self.kafka.flush()
        victim = self.cluster.leader(self.topics["dlq"], 0)
        self.cluster.kill(victim)
        t = time.monotonic()
        r = subprocess.run([binary("thopter-dlq"), "list",
                            "-b", self.cluster.bootstrap, "--dlq-topic", self.topics["dlq"]],
                           capture_output=True, text=True, timeout=tmo(60))
        took = time.monotonic() - t
        self.assertIn(r.returncode, (0, 1), r.stderr)
        figure("thopter-dlq list, leader of its topic SIGKILLed", "exit %d after %.1f s" % (r.returncode, took))


class TestConsumerFaults(ThreeNodeCase):
    def test_a_sigkilled_instance_is_replaced_within_the_session_timeout(self):
        a = self.consumer()
        a.wait_assigned(timeout=60)
        b = self.consumer()
        wait_until(lambda: re.search(r'"msg":"assigned (?!nothing)', b.log_text()), timeout=60,
                   what="the second instance to get partitions")
        ids = self.seed_and_publish(150)
        wait_until(lambda: len(self.destroyed(ids)) >= 20, timeout=60, what="20 destroys done")
        before = len(b.log_text())
        t0 = time.monotonic()
        a.kill()
        m = wait_until(lambda: re.search(r'"msg":"assigned (?!nothing)([^"]*)"', b.log_text()[before:]),
                       timeout=60, interval=0.05, what="the survivor to take the partitions over")
        takeover = time.monotonic() - t0
        self.assert_nothing_lost(ids)
        self.consumers.remove(a)
        a.close()
        figure("instance SIGKILL takeover", "%.1f s (session.timeout.ms %d); survivor assigned %s" % (
            takeover, SESSION_TIMEOUT_MS, m.group(1)))
        self.assertLess(takeover, SESSION_TIMEOUT_MS / 1000.0 + tmo(10),
                        "takeover should take about one session timeout")


class TestTopicsAndProbe(unittest.TestCase):
    """One node, no topics: what an operator does first."""

    @classmethod
    def setUpClass(cls):
        cls.cluster = KafkaCluster(nodes=1)
        cls.cluster.start()

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    def test_create_topics_with_the_real_kafka_topics(self):
        script = os.path.join(SOURCE_DIR, "deploy", "create-topics.sh")
        env = dict(os.environ, KAFKA_HOME=kafka_home())
        for attempt in (1, 2):  # the second run finds them and changes nothing
            r = subprocess.run(["bash", script, "--bootstrap-server", self.cluster.bootstrap],
                               capture_output=True, text=True, env=env, timeout=tmo(300))
            self.assertEqual(r.returncode, 0, "run %d: %s%s" % (attempt, r.stdout, r.stderr))
        md = self.cluster.admin().list_topics(timeout=10)
        self.assertEqual({t: len(md.topics[t].partitions) for t in
                          ("thopter.provision", "thopter.destroy", "thopter.dlq", "thopter.events")},
                         {"thopter.provision": 1, "thopter.destroy": 6, "thopter.dlq": 1, "thopter.events": 3})
        r = self.cluster.tool("kafka-configs.sh", "--describe", "--entity-type", "topics",
                              "--entity-name", "thopter.dlq")
        self.assertIn("retention.ms=2592000000", r.stdout)

    def test_the_start_up_probe_accepts_kafka_4(self):
        self.cluster.create_topics()
        fly = FlyFake()
        fly.start(token=TOKEN)
        self.addCleanup(fly.stop)
        c = ThopterConsumer(self.cluster.bootstrap, fly.base_url, role="destroy")
        self.addCleanup(c.close)
        c.wait_assigned(timeout=60)
        text = c.log_text()
        self.assertNotIn("could not check the brokers' protocol features", text)
        self.assertNotIn('"level":"error"', text)
        figure("probe", "Kafka %s accepted; first assignment %s" % (
            KAFKA_VERSION, re.search(r'"msg":"(assigned [^"]*)"', text).group(1)))


if __name__ == "__main__":
    unittest.main()
