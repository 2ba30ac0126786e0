"""Test harness: the real binaries, the Kafka they talk to, and Kafka helpers.

Used by the integration tests (tests/integration/test_*.py; the destroy
consumer's derive from ConsumerTestCase), the benchmark and the demo.
Everything here starts real processes and speaks Kafka over real sockets.
Which Kafka is THOPTER_TEST_KAFKA's choice, read by start_broker():
  devbroker (default)  thopter-devbroker: librdkafka's mock cluster, fast, with
                       fault injection (broker down, request errors, RTT).
  real                 a real Apache Kafka cluster (kafka_cluster.py, KRaft, one
                       node); the ctest tier "realkafka" runs the flows this way.
Python's confluent_kafka (Debian's python3-confluent-kafka, built on the same
librdkafka) produces, reads topics back and reads committed offsets.
"""
import json
import os
import re
import signal
import subprocess
import tempfile
import time
import unittest

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from flyfake import FlyFake

BUILD_DIR = os.environ.get("THOPTER_BUILD_DIR") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "dev")
SOURCE_DIR = os.environ.get("THOPTER_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
TIMEOUT_MULTIPLIER = float(os.environ.get("THOPTER_TIMEOUT_MULTIPLIER", "1"))

# Which Kafka the tests run against (see the docstring).
KAFKA_KIND = os.environ.get("THOPTER_TEST_KAFKA", "devbroker")
if KAFKA_KIND not in ("devbroker", "real"):
    raise RuntimeError("THOPTER_TEST_KAFKA must be devbroker or real, not %r" % KAFKA_KIND)
REAL_KAFKA = KAFKA_KIND == "real"

# The mock cluster (librdkafka 2.0.2) rejoins a group only after
# session.timeout.ms - 1 s (44 s at the default 45 s), and a session shorter
# than its fixed 3 s initial join delay never gets an assignment, so its tests
# use a short session. A real broker refuses a session shorter than its
# group.min.session.timeout.ms (6000 by default), and rebalances at once when
# a member leaves cleanly, so real-broker tests use that minimum.
MOCK_GROUP_PROPS = ["session.timeout.ms=4000", "heartbeat.interval.ms=500"]
REAL_GROUP_PROPS = ["session.timeout.ms=6000", "heartbeat.interval.ms=500"]
GROUP_PROPS = REAL_GROUP_PROPS if REAL_KAFKA else MOCK_GROUP_PROPS
SANITIZER_RE = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: \w+Sanitizer")

TOKEN = "fm2_test-secret-token-ABCDEF0123456789"


def tmo(seconds):
    """A timeout scaled for slow builds (ASan)."""
    return seconds * TIMEOUT_MULTIPLIER


def binary(name):
    return os.path.join(BUILD_DIR, name)


def wait_until(predicate, timeout=10.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + tmo(timeout)
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (tmo(timeout), what))
        time.sleep(interval)


class Devbroker:
    """thopter-devbroker in a subprocess; stops when its stdin closes."""

    def __init__(self, extra_args=()):
        self.proc = subprocess.Popen([binary("thopter-devbroker")] + list(extra_args),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("bootstrap.servers="):
            self.proc.kill()
            raise RuntimeError("devbroker did not start: %r %s" % (line, self.proc.stderr.read()))
        self.bootstrap = line.split("=", 1)[1]

    def down(self):
        self.proc.stdin.write("down\n")
        self.proc.stdin.flush()

    def up(self):
        self.proc.stdin.write("up\n")
        self.proc.stdin.flush()

    # Fault injection (tests/reliability).

    def inject(self, command):
        """Sends one fault-injection line to thopter-devbroker's stdin (see its --help):
        "down 2", "up 2", "err 8 20 15", "coordinator thopter-destroyer 3", "rtt 1 200", ..."""
        self.proc.stdin.write(command.strip() + "\n")
        self.proc.stdin.flush()

    def down_one(self, broker_id):
        self.inject("down %d" % broker_id)

    def up_one(self, broker_id):
        self.inject("up %d" % broker_id)

    def push_errors(self, apikey, count, errcode):
        """The next @count requests of @apikey (8 = OffsetCommit) fail with Kafka error @errcode."""
        self.inject("err %d %d %d" % (apikey, count, errcode))

    def move_coordinator(self, group, broker_id):
        self.inject("coordinator %s %d" % (group, broker_id))

    def rtt(self, broker_id, ms):
        self.inject("rtt %d %d" % (broker_id, ms))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(tmo(10))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        err = self.proc.stderr.read()
        self.proc.stderr.close()
        self.proc.stdout.close()
        if SANITIZER_RE.search(err or ""):
            raise AssertionError("sanitizer report from thopter-devbroker:\n" + err)


class RealBroker:
    """A real Apache Kafka cluster with the four thopter topics, in the shape of
    Devbroker (bootstrap, stop). Devbroker's fault injection has no equivalent
    here: a test that needs it is skipped on this broker, saying so; the real
    cluster's own faults (SIGKILL a node, rolling restarts) are KafkaCluster's."""

    def __init__(self, nodes=1, topics=None):
        from kafka_cluster import KafkaCluster
        self.cluster = KafkaCluster(nodes=nodes)
        try:
            self.cluster.start()
            self.cluster.create_topics(topics)
        except Exception:
            self.cluster.stop()
            raise
        self.bootstrap = self.cluster.bootstrap

    def _no_faults(self, what):
        raise unittest.SkipTest("%s is thopter-devbroker fault injection; the real cluster has "
                                "its own faults (tests/realkafka)" % what)

    def down(self):
        self._no_faults("down")

    def up(self):
        self._no_faults("up")

    def inject(self, command):
        self._no_faults("inject %r" % command)

    def down_one(self, broker_id):
        self._no_faults("down_one")

    def up_one(self, broker_id):
        self._no_faults("up_one")

    def push_errors(self, apikey, count, errcode):
        self._no_faults("push_errors")

    def move_coordinator(self, group, broker_id):
        self._no_faults("move_coordinator")

    def rtt(self, broker_id, ms):
        self._no_faults("rtt")

    def stop(self):
        self.cluster.stop()


def start_broker(extra_args=()):
    """The Kafka a test talks to: thopter-devbroker, or with THOPTER_TEST_KAFKA=real
    a fresh single-node Apache Kafka cluster. @extra_args are thopter-devbroker's
    (a test that needs more than one mock broker is skipped on the real one)."""
    if REAL_KAFKA:
        if extra_args:
            raise unittest.SkipTest("thopter-devbroker %s has no real-cluster form here" % " ".join(extra_args))
        return RealBroker()
    return Devbroker(extra_args)


def skip_on_real_kafka(why):
    """Decorator: this test runs on thopter-devbroker only, for the reason given."""
    return unittest.skipIf(REAL_KAFKA, "not on the real cluster: " + why)


class Kafka:
    """Produce, read back and inspect committed offsets."""

    def __init__(self, bootstrap):
        self.bootstrap = bootstrap
        self.producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random",
                                  "linger.ms": 5, "log_level": 3})

    def produce(self, topic, value, key=None, headers=None):
        if isinstance(value, (dict, list)):
            value = json.dumps(value)
        self.producer.produce(topic, value=value, key=key, headers=headers)

    def flush(self):
        left = self.producer.flush(tmo(10))
        assert left == 0, "%d messages not delivered" % left

    def _consumer(self, group=None):
        return Consumer({"bootstrap.servers": self.bootstrap,
                         "group.id": group or "thopter-test-reader",
                         "enable.auto.commit": False, "enable.partition.eof": False,
                         "log_level": 3})

    def end_offsets(self, topic):
        # A short-lived client's first connection can fail on a loaded machine
        # ("Broker transport failure"): the broker is up, so ask again.
        for attempt in range(3):
            c = self._consumer()
            try:
                md = c.list_topics(topic, timeout=tmo(10))
                # offsets_for_times(latest), not get_watermark_offsets: the latter
                # ignores its timeout while a leader is down (librdkafka 2.0.2).
                tps = c.offsets_for_times([TopicPartition(topic, p, -1) for p in md.topics[topic].partitions],
                                          timeout=tmo(10))
                return {tp.partition: tp.offset for tp in tps}
            except KafkaException:
                if attempt == 2:
                    raise
                time.sleep(0.5)
            finally:
                c.close()

    def read_all(self, topic):
        """Every record of @topic from the beginning to the current end."""
        ends = self.end_offsets(topic)
        if not any(ends.values()):
            return []
        c = self._consumer()
        try:
            c.assign([TopicPartition(topic, p, 0) for p in ends])
            want = {p: e for p, e in ends.items() if e > 0}
            records = []
            deadline = time.monotonic() + tmo(20)
            while want and time.monotonic() < deadline:
                m = c.poll(0.2)
                if m is None or m.error():
                    continue
                records.append(m)
                if m.offset() + 1 >= want.get(m.partition(), 0):
                    want.pop(m.partition(), None)
            assert not want, "could not read %s to its end: %r" % (topic, want)
            return records
        finally:
            c.close()

    def read_json(self, topic):
        return [json.loads(m.value()) for m in self.read_all(topic)]

    def committed(self, group, topic):
        """{partition: committed offset} for @group (-1001 = none). On the real
        cluster Apache Kafka's own kafka-consumer-groups.sh is asked too, between
        two librdkafka reads, and must fall between them (offsets only grow)."""
        offsets = self._committed(group, topic)
        if REAL_KAFKA:
            theirs = kafka_tool_committed(self.bootstrap, group, topic, offsets)
            after = self._committed(group, topic)
            for p, off in theirs.items():
                if not offsets[p] <= off <= after[p]:
                    raise AssertionError("committed offsets of %s on %s: librdkafka says %r then %r, "
                                         "kafka-consumer-groups.sh says %r" % (group, topic, offsets, after, theirs))
            offsets = after
        return offsets

    def _committed(self, group, topic):
        ends = self.end_offsets(topic)
        c = self._consumer(group)
        try:
            tps = c.committed([TopicPartition(topic, p) for p in ends], timeout=tmo(10))
            return {tp.partition: tp.offset for tp in tps}
        finally:
            c.close()

    def close(self):
        if self.producer is not None:
            self.producer.flush(1)
            self.producer = None  # destroyed now, not after the broker has gone


def kafka_tool_committed(bootstrap, group, topic, partitions):
    """{partition: committed offset} of @group on @topic as Apache Kafka's own
    kafka-consumer-groups.sh --describe reports it (-1001 where it has none)."""
    from kafka_cluster import kafka_home, parse_group_describe
    tool = os.path.join(kafka_home(), "bin", "kafka-consumer-groups.sh")
    r = subprocess.run([tool, "--bootstrap-server", bootstrap.split(",")[0], "--describe", "--group", group],
                       capture_output=True, text=True, timeout=tmo(120))
    if r.returncode != 0 and "does not exist" not in r.stdout + r.stderr:
        raise AssertionError("kafka-consumer-groups.sh --describe --group %s failed: %s%s" % (
            group, r.stdout, r.stderr))
    rows = parse_group_describe(r.stdout)
    out = {}
    for p in partitions:
        committed = rows.get((topic, p), (None, None, None))[0]
        out[p] = -1001 if committed is None else committed
    return out


def headers_dict(msg):
    return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in (msg.headers() or [])}


class ThopterConsumer:
    """thopter-consumer as a subprocess with its JSON log captured."""

    def __init__(self, bootstrap, fly_base, role="destroy", env=None, args=(), token=TOKEN, prefix=(),
                 group_props=None):
        """@prefix: a command the consumer runs under (e.g. valgrind and its options).
        @group_props: the group -X properties (default GROUP_PROPS, for THOPTER_TEST_KAFKA's broker)."""
        self.logfile = tempfile.NamedTemporaryFile(prefix="thopter-consumer-", suffix=".log", delete=False)
        e = {k: v for k, v in os.environ.items() if not k.startswith(("THOPTER_", "KAFKA_", "FLY_"))}
        e.update({
            "KAFKA_BROKERS": bootstrap,
            "APP_NAME": "thopters",
            "FLY_DEPLOY_KEY": token,
            "FLY_API_BASE": fly_base,
            "THOPTER_METRICS_ADDR": "127.0.0.1:0",
            "THOPTER_RETRY_BASE_MS": "50",
            "THOPTER_RETRY_MAX_MS": "400",
            "THOPTER_BREAKER_PROBE_MS": "300",
            "THOPTER_FLY_TIMEOUT": "5",
            "THOPTER_DRAIN_TIMEOUT": "20",
            "ASAN_OPTIONS": "detect_leaks=1",
            # The hub's addresses the provision role requires (each thopter's observer
            # reports there); a test that wants them unset overrides them with "".
            "METADATA_SERVICE_HOST": "1.redis.kv._metadata.thopters.internal",
            "HUB_STATUS_PORT": "8081",
        })
        e.update(env or {})
        argv = list(prefix) + [binary("thopter-consumer"), "--role", role]
        for p in GROUP_PROPS if group_props is None else group_props:
            argv += ["-X", p]
        argv += list(args)
        self.proc = subprocess.Popen(argv, env=e, stdout=subprocess.DEVNULL, stderr=self.logfile)
        self.role = role

    def log_text(self):
        with open(self.logfile.name, errors="replace") as f:
            return f.read()

    def logs(self):
        out = []
        for line in self.log_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"raw": line})
        return out

    def wait_log(self, pattern, timeout=20.0):
        rx = re.compile(pattern)
        return wait_until(lambda: rx.search(self.log_text()), timeout=timeout,
                          what="log line /%s/ (log: %s)" % (pattern, self.logfile.name))

    def wait_assigned(self, timeout=30.0):
        """The group join (about 3 s on the mock) gave this consumer partitions."""
        return self.wait_log(r'"msg":"assigned (?!nothing)', timeout)

    def metrics_port(self):
        m = self.wait_log(r"serving /metrics /livez /readyz on [0-9.]+:(\d+)")
        return int(m.group(1))

    def signal(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)

    def wait(self, timeout=40.0):
        try:
            return self.proc.wait(tmo(timeout))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("thopter-consumer did not exit in time; log: " + self.logfile.name)

    def stop(self, timeout=40.0):
        """SIGTERM and wait; returns the exit status."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def check_clean(self):
        text = self.log_text()
        if SANITIZER_RE.search(text):
            raise AssertionError("sanitizer report from thopter-consumer:\n" + text[-6000:])
        return text

    def close(self):
        self.kill()
        self.logfile.close()
        self.check_clean()
        os.unlink(self.logfile.name)


def machine_id(n):
    """A valid 14-hex machine id from a number."""
    return "%014x" % n


# ---- the base of the destroy consumer's integration tests --------------------------------

class ConsumerTestCase(unittest.TestCase):
    """A thopter-devbroker, the fake fly API (token TOKEN) and Kafka helpers per test, and
    the destroy consumers a test starts with start_consumer(); all stopped after it (the
    consumers first, then Kafka, the fake and the broker)."""

    def setUp(self):
        self.broker = start_broker()
        self.addCleanup(self.broker.stop)
        self.fly = FlyFake()
        self.fly.start(token=TOKEN)
        self.addCleanup(self.fly.stop)
        self.kafka = Kafka(self.broker.bootstrap)
        self.addCleanup(self.kafka.close)
        self.consumers = []

    def tearDown(self):
        for c in self.consumers:
            c.close()

    def start_consumer(self, **kw):
        c = ThopterConsumer(self.broker.bootstrap, self.fly.base_url, role="destroy", **kw)
        self.consumers.append(c)
        return c

    def seed(self, n, start=1, name="thopter-%d", state="started"):
        """@n machines with ids machine_id(start..), named @name % i; returns their ids."""
        return [self.fly.seed_machine(id=machine_id(i), name=name % i, state=state)["id"]
                for i in range(start, start + n)]

    def gone(self, ids):
        machines = {m["id"]: m for m in self.fly.machines()}
        return all(machines[i]["state"] == "destroyed" or machines[i].get("deleted") for i in ids)


# ---- wrapped consumers (tests/reliability) ----------------------------------------------

class WrappedThopterConsumer(ThopterConsumer):
    """ThopterConsumer under a command prefix (e.g. valgrind); the same as
    ThopterConsumer(..., prefix=prefix), kept for tests/reliability."""

    def __init__(self, bootstrap, fly_base, role="destroy", env=None, args=(), token=TOKEN, prefix=()):
        super().__init__(bootstrap, fly_base, role=role, env=env, args=args, token=token, prefix=prefix)


def kill_process_tree(pid, sig=signal.SIGKILL):
    """Kills @pid and every descendant (found through /proc), children first.
    For sshd: its per-connection children outlive the listener otherwise."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d))
    order = []

    def walk(p):
        for c in children.get(p, []):
            walk(c)
        order.append(p)
    walk(pid)
    for p in order:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass
    return order


def kill_sshd_tree(pid, sig=signal.SIGKILL):
    """Kills an sshd listener @pid and every sshd process below it (the per-connection
    ones), so open connections drop as if the machine's sshd died; the shells they ran
    are left to exit on the hangup (a SIGKILLed shell could leave lock files behind on
    this shared host, e.g. pyenv's rehash lock from root's .bashrc)."""
    children = {}
    comm = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            comm[int(d)] = stat[stat.index("(") + 1:stat.rindex(")")]
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d))
    victims = []

    def walk(p):
        for c in children.get(p, []):
            if comm.get(c) == "sshd":
                walk(c)
        victims.append(p)
    walk(pid)
    for p in victims:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass
    return victims
