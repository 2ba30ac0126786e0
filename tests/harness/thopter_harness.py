"""Test harness: the real binaries, thopter-devbroker, and Kafka helpers.

Used by the integration tests (tests/integration/test_*.py; the destroy
consumer's derive from ConsumerTestCase), the benchmark and the demo.
Everything here starts real processes and speaks Kafka over real sockets
(librdkafka's mock cluster in thopter-devbroker); Python's confluent_kafka
(Debian's python3-confluent-kafka, built on the same librdkafka) produces,
reads topics back and reads committed offsets.
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

# The mock cluster rejoins only after session.timeout.ms - 1 s; these keep
# group tests fast (see shared/reference/environment.md section 3).
GROUP_PROPS = ["session.timeout.ms=4000", "heartbeat.interval.ms=500"]
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
                out = {}
                for p in md.topics[topic].partitions:
                    out[p] = c.get_watermark_offsets(TopicPartition(topic, p), timeout=tmo(10))[1]
                return out
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
        """{partition: committed offset} for @group (-1001 = none)."""
        ends = self.end_offsets(topic)
        c = self._consumer(group)
        try:
            tps = c.committed([TopicPartition(topic, p) for p in ends], timeout=tmo(10))
            return {tp.partition: tp.offset for tp in tps}
        finally:
            c.close()

    def close(self):
        self.producer.flush(1)


def headers_dict(msg):
    return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in (msg.headers() or [])}


class ThopterConsumer:
    """thopter-consumer as a subprocess with its JSON log captured."""

    def __init__(self, bootstrap, fly_base, role="destroy", env=None, args=(), token=TOKEN, prefix=()):
        """@prefix: a command the consumer runs under (e.g. valgrind and its options)."""
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
        for p in GROUP_PROPS:
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
        self.broker = Devbroker()
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
