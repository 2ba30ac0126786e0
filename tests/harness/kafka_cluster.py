#!/usr/bin/python3
"""A real Apache Kafka cluster (KRaft) on loopback, for tests, the benchmark
and the demo: one node or three, each a broker and a controller (combined
mode), with its own ports and its own temporary folder.

The Kafka jars come from deploy/kafka/fetch-kafka.sh (the version pinned in
deploy/kafka/pom.xml) in THOPTER_KAFKA_HOME, by default
~/.cache/thopter/kafka-<version>. Everything is started the way Kafka's own
scripts start it: kafka.tools.StorageTool formats each node's log folder with
one cluster id, then kafka.Kafka runs each node
from its server.properties.

As a library:
    c = KafkaCluster(nodes=3)          # replication factor 3, min.insync.replicas 2
    c.start(); c.create_topics(THOPTER_TOPICS)
    c.bootstrap                        # "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3"
    c.kill(2); c.start_node(2)         # SIGKILL a node, bring it back
    c.leader("thopter.destroy", 0); c.coordinator("thopter-destroyer")
    c.tool("kafka-consumer-groups.sh", "--describe", "--group", "g")
    c.stop()                           # logs kept (and the folder printed) if a test failed

As a program (the same first line as thopter-devbroker, so tools and tests
can swap one for the other):
    tests/harness/kafka_cluster.py [--nodes 1|3] [--sasl USER:PASSWORD]
prints bootstrap.servers=... (and sasl.bootstrap.servers=... with --sasl),
creates the four thopter topics, and runs until its standard input closes
(or, when that is a terminal, until Ctrl-C or SIGTERM).

Settings that differ from a production broker, and why (everything else is
Kafka's default): group.initial.rebalance.delay.ms=0 (as in Kafka's own
config/server.properties for development: the first join of a group is not
held 3 s), small heaps, and internal topics replicated on all nodes.
"""
import argparse
import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

KAFKA_VERSION = "4.1.1"
HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.abspath(os.path.join(HERE, "..", ".."))

# The four topics of the contract, as thopter-devbroker and
# deploy/create-topics.sh create them: name -> partitions.
THOPTER_TOPICS = {"thopter.provision": 1, "thopter.destroy": 6, "thopter.dlq": 1, "thopter.events": 3}

TIMEOUT_MULTIPLIER = float(os.environ.get("THOPTER_TIMEOUT_MULTIPLIER", "1"))


def kafka_home():
    """The folder fetch-kafka.sh filled, or an error that says how to fill it."""
    home = os.environ.get("THOPTER_KAFKA_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "thopter", "kafka-" + KAFKA_VERSION)
    if not os.path.exists(os.path.join(home, "libs", "kafka_2.13-%s.jar" % KAFKA_VERSION)):
        raise RuntimeError("Apache Kafka %s is not in %s: run deploy/kafka/fetch-kafka.sh "
                           "(deploy/setup.sh does)" % (KAFKA_VERSION, home))
    return home


def free_ports(n):
    """@n distinct free TCP ports on 127.0.0.1 (held open together while chosen)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def random_cluster_id():
    """A cluster id as kafka-storage.sh random-uuid makes one: 16 random bytes, URL-safe base64."""
    return base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")


class KafkaNode:
    """One combined broker + controller process."""

    def __init__(self, node_id, folder, port, controller_port, sasl_port=None):
        self.id = node_id
        self.folder = folder
        self.port = port
        self.controller_port = controller_port
        self.sasl_port = sasl_port
        self.proc = None
        self.props_path = os.path.join(folder, "server.properties")
        self.log_path = os.path.join(folder, "server.log")
        self.out_path = os.path.join(folder, "stdout.log")

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def running(self):
        return self.proc is not None and self.proc.poll() is None


class KafkaCluster:
    def __init__(self, nodes=1, props=None, sasl_users=None, heap="-Xmx512m -Xms128m"):
        """@nodes: 1 or 3 (any number works; 3 gives replication factor 3 and
        min.insync.replicas 2). @props: broker properties added to every node's.
        @sasl_users: {user: password} adds a SASL_PLAINTEXT listener per node
        accepting PLAIN and SCRAM-SHA-256/512 for these users."""
        self.home = kafka_home()
        self.n = nodes
        self.extra_props = dict(props or {})
        self.sasl_users = dict(sasl_users or {})
        self.heap = heap
        self.folder = tempfile.mkdtemp(prefix="thopter-kafka-")
        self.cluster_id = random_cluster_id()
        self.nodes = []
        self.failed = False
        ports = free_ports(nodes * (3 if self.sasl_users else 2))
        for i in range(nodes):
            p = ports[i * (3 if self.sasl_users else 2):]
            folder = os.path.join(self.folder, "node-%d" % (i + 1))
            os.makedirs(folder)
            self.nodes.append(KafkaNode(i + 1, folder, p[0], p[1], p[2] if self.sasl_users else None))

    # ---- addresses -------------------------------------------------------------------

    @property
    def bootstrap(self):
        return ",".join(n.address for n in self.nodes)

    @property
    def sasl_bootstrap(self):
        return ",".join("127.0.0.1:%d" % n.sasl_port for n in self.nodes)

    def node(self, node_id):
        return self.nodes[node_id - 1]

    # ---- configuration ---------------------------------------------------------------

    def _props(self, node):
        voters = ",".join("%d@127.0.0.1:%d" % (n.id, n.controller_port) for n in self.nodes)
        rf = min(3, self.n)
        isr = 2 if rf >= 3 else 1
        listeners = ["PLAINTEXT://127.0.0.1:%d" % node.port, "CONTROLLER://127.0.0.1:%d" % node.controller_port]
        advertised = ["PLAINTEXT://127.0.0.1:%d" % node.port]
        props = {
            "process.roles": "broker,controller",
            "node.id": node.id,
            "controller.quorum.voters": voters,
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
            "log.dirs": os.path.join(node.folder, "data"),
            "num.partitions": 1,
            "default.replication.factor": rf,
            "min.insync.replicas": isr,
            "offsets.topic.replication.factor": rf,
            "transaction.state.log.replication.factor": rf,
            "transaction.state.log.min.isr": isr,
            "share.coordinator.state.topic.replication.factor": rf,
            "share.coordinator.state.topic.min.isr": isr,
            "group.initial.rebalance.delay.ms": 0,
        }
        if self.sasl_users:
            listeners.append("SASL_PLAINTEXT://127.0.0.1:%d" % node.sasl_port)
            advertised.append("SASL_PLAINTEXT://127.0.0.1:%d" % node.sasl_port)
            plain_users = " ".join('user_%s="%s"' % (u, p) for u, p in sorted(self.sasl_users.items()))
            props.update({
                "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
                "listener.name.sasl_plaintext.plain.sasl.jaas.config":
                    "org.apache.kafka.common.security.plain.PlainLoginModule required %s;" % plain_users,
                "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config":
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;",
                "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config":
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            })
        props["listeners"] = ",".join(listeners)
        props["advertised.listeners"] = ",".join(advertised)
        props.update(self.extra_props)
        return props

    def _write_config(self, node):
        with open(node.props_path, "w") as f:
            for k, v in self._props(node).items():
                f.write("%s=%s\n" % (k, v))
        with open(os.path.join(node.folder, "log4j2.properties"), "w") as f:
            f.write("status = warn\n"
                    "appender.file.type = File\n"
                    "appender.file.name = FILE\n"
                    "appender.file.fileName = %s\n"
                    "appender.file.layout.type = PatternLayout\n"
                    "appender.file.layout.pattern = [%%d] %%p %%m (%%c)%%n\n"
                    "rootLogger.level = INFO\n"
                    "rootLogger.appenderRef.file.ref = FILE\n"
                    "logger.state.name = state.change.logger\n"
                    "logger.state.level = WARN\n" % node.log_path)

    def _env(self, node=None):
        env = dict(os.environ)
        env["KAFKA_HEAP_OPTS"] = self.heap
        if node is not None:
            env["KAFKA_LOG4J_CONFIG"] = os.path.join(node.folder, "log4j2.properties")
        return env

    # ---- life cycle ------------------------------------------------------------------

    def format(self):
        """kafka-storage.sh format on every node (in parallel: each is a JVM)."""
        procs = []
        for node in self.nodes:
            self._write_config(node)
            argv = [self.tool_path("kafka-storage.sh"), "format", "--cluster-id=" + self.cluster_id, "--config", node.props_path]
            procs.append((node, subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                 text=True, env=self._env())))
        for node, p in procs:
            out, _ = p.communicate(timeout=120)
            if p.returncode != 0:
                self.failed = True
                raise RuntimeError("kafka-storage format of node %d failed:\n%s" % (node.id, out))

    def start(self, timeout=90.0):
        """Formats, starts every node, waits until every broker is in the metadata."""
        self.format()
        for node in self.nodes:
            self.start_node(node.id, wait=False)
        self.wait_ready(timeout)
        self._add_scram_users()
        return self

    def _add_scram_users(self):
        """SCRAM credentials for @sasl_users, set as an operator would (kafka-configs.sh)."""
        for user, password in sorted(self.sasl_users.items()):
            for mech in ("SCRAM-SHA-256", "SCRAM-SHA-512"):  # one credential per request
                r = self.tool("kafka-configs.sh", "--alter", "--entity-type", "users", "--entity-name", user,
                              "--add-config", "%s=[password=%s]" % (mech, password))
                if r.returncode == 0:
                    continue
                self.failed = True
                raise RuntimeError("kafka-configs.sh could not add %s user %s: %s" % (mech, user, r.stderr))

    def start_node(self, node_id, wait=True, timeout=90.0):
        """Starts (or restarts, keeping its data) one node."""
        node = self.node(node_id)
        if node.running():
            return
        out = open(node.out_path, "a")
        node.proc = subprocess.Popen([self.tool_path("kafka-server-start.sh"), node.props_path],
                                     stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=self._env(node), start_new_session=True)
        out.close()
        if wait:
            self.wait_ready(timeout)

    def kill(self, node_id, sig=signal.SIGKILL):
        """Sends @sig to one node (SIGKILL: a crash) and waits for it to exit."""
        node = self.node(node_id)
        if node.running():
            node.proc.send_signal(sig)
            try:
                node.proc.wait(60)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait()

    def stop_node(self, node_id, timeout=60.0):
        """A clean stop (SIGTERM: Kafka's controlled shutdown moves its leaderships first)."""
        node = self.node(node_id)
        if node.running():
            node.proc.terminate()
            try:
                node.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait()

    def alive(self):
        return [n.id for n in self.nodes if n.running()]

    def wait_ready(self, timeout=90.0):
        """Every running node is a broker in the cluster's metadata and answers."""
        from confluent_kafka.admin import AdminClient
        want = set(self.alive())
        deadline = time.monotonic() + timeout * TIMEOUT_MULTIPLIER
        last = None
        while time.monotonic() < deadline:
            for node in self.nodes:
                if node.proc is not None and node.proc.poll() is not None and node.id in want:
                    self.failed = True
                    raise RuntimeError("Kafka node %d exited with %s; log: %s\n%s" % (
                        node.id, node.proc.returncode, node.log_path, self.log_tail(node.id)))
            try:
                a = AdminClient({"bootstrap.servers": ",".join(self.node(i).address for i in want),
                                 "log_level": 0})
                md = a.list_topics(timeout=2)
                if want <= set(md.brokers) and md.controller_id in self.alive():
                    return
                last = "brokers %s, controller %s" % (sorted(md.brokers), md.controller_id)
            except Exception as e:  # the broker is still starting
                last = str(e)
            time.sleep(0.2)
        self.failed = True
        raise RuntimeError("Kafka cluster not ready in %.0fs (%s); logs in %s" % (timeout, last, self.folder))

    def stop(self, keep_logs=None):
        """Stops every node (SIGTERM, then SIGKILL after 30 s) and removes the
        folder, unless a test failed (or @keep_logs): then it stays and its path is printed."""
        for node in self.nodes:
            if node.running():
                node.proc.terminate()
        for node in self.nodes:
            if node.proc is not None:
                try:
                    node.proc.wait(30)
                except subprocess.TimeoutExpired:
                    node.proc.kill()
                    node.proc.wait()
        keep = self.failed if keep_logs is None else keep_logs
        if keep:
            sys.stderr.write("kafka_cluster: logs kept in %s\n" % self.folder)
        else:
            shutil.rmtree(self.folder, ignore_errors=True)

    def log_tail(self, node_id, lines=40):
        node = self.node(node_id)
        out = []
        for path in (node.log_path, node.out_path):
            try:
                with open(path, errors="replace") as f:
                    out.append("--- %s\n%s" % (path, "".join(f.readlines()[-lines:])))
            except OSError:
                pass
        return "\n".join(out)

    # ---- topics, leaders, coordinators -----------------------------------------------

    def admin(self):
        from confluent_kafka.admin import AdminClient
        return AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})

    def create_topics(self, topics=None, configs=None, timeout=60.0):
        """Creates {name: partitions} (default: the four thopter topics) at the
        cluster's replication factor and waits until every partition has a leader."""
        from confluent_kafka.admin import NewTopic
        topics = THOPTER_TOPICS if topics is None else topics
        a = self.admin()
        futures = a.create_topics([NewTopic(t, p, -1, config=dict(configs or {}))
                                   for t, p in topics.items()], request_timeout=30)
        for t, f in futures.items():
            try:
                f.result()
            except Exception as e:
                if "TOPIC_ALREADY_EXISTS" not in str(e):
                    raise
        deadline = time.monotonic() + timeout * TIMEOUT_MULTIPLIER
        while time.monotonic() < deadline:
            md = a.list_topics(timeout=5)
            if all(t in md.topics and len(md.topics[t].partitions) == p and
                   all(pm.leader >= 0 for pm in md.topics[t].partitions.values())
                   for t, p in topics.items()):
                return
            time.sleep(0.2)
        raise RuntimeError("topics %s have no leaders after %.0fs" % (sorted(topics), timeout))

    def leader(self, topic, partition):
        md = self.admin().list_topics(topic, timeout=10)
        return md.topics[topic].partitions[partition].leader

    def isr(self, topic, partition):
        md = self.admin().list_topics(topic, timeout=10)
        return list(md.topics[topic].partitions[partition].isrs)

    def coordinator(self, group):
        """The node id of @group's coordinator, as kafka-consumer-groups.sh --describe
        --state reports it (None when the group has none yet)."""
        import re
        r = self.tool("kafka-consumer-groups.sh", "--describe", "--state", "--group", group)
        for line in r.stdout.splitlines():
            m = re.match(r"\s*%s\s+\S+\s+\((\d+)\)" % re.escape(group), line)
            if m:
                return int(m.group(1))
        return None

    # ---- Kafka's own command-line tools ----------------------------------------------

    def tool_path(self, name):
        return os.path.join(self.home, "bin", name)

    def tool(self, name, *args, timeout=120):
        """Runs one of Kafka's tools (bin/kafka-topics.sh, ...) against this cluster's
        first live node; returns the CompletedProcess (text, stdout and stderr)."""
        alive = [n for n in self.nodes if n.running()] or self.nodes
        argv = [self.tool_path(name), "--bootstrap-server", alive[0].address] + list(args)
        env = dict(os.environ)
        env.pop("KAFKA_LOG4J_CONFIG", None)
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout * TIMEOUT_MULTIPLIER, env=env)

    def group_offsets(self, group):
        """{(topic, partition): (committed, end, lag)} as kafka-consumer-groups.sh
        --describe reports them (committed None where it prints "-")."""
        r = self.tool("kafka-consumer-groups.sh", "--describe", "--group", group)
        if r.returncode != 0:
            raise RuntimeError("kafka-consumer-groups.sh --describe %s failed: %s" % (group, r.stderr))
        return parse_group_describe(r.stdout)


def parse_group_describe(text):
    """Parses kafka-consumer-groups.sh --describe's table by its column names."""
    out = {}
    header = None
    for line in text.splitlines():
        cols = line.split()
        if not cols:
            continue
        if "CURRENT-OFFSET" in cols:
            header = cols
            continue
        if header is None or len(cols) < len(header):
            continue
        row = dict(zip(header, cols))

        def num(v):
            return None if v == "-" else int(v)
        out[(row["TOPIC"], int(row["PARTITION"]))] = (num(row["CURRENT-OFFSET"]), num(row["LOG-END-OFFSET"]),
                                                      num(row["LAG"]))
    return out


def main():
    ap = argparse.ArgumentParser(description="Run a real Apache Kafka cluster on loopback until stdin closes.")
    ap.add_argument("--nodes", type=int, default=1, help="number of nodes (default 1; 3 for replication)")
    ap.add_argument("--sasl", metavar="USER:PASSWORD", action="append", default=[],
                    help="add a SASL_PLAINTEXT listener (PLAIN, SCRAM-SHA-256/512) with this user")
    ap.add_argument("--no-topics", action="store_true", help="do not create the four thopter topics")
    ap.add_argument("--keep-logs", action="store_true", help="keep the cluster's folder after it stops")
    args = ap.parse_args()
    if args.nodes < 1:
        ap.error("--nodes must be at least 1")
    users = {}
    for s in args.sasl:
        if ":" not in s:
            ap.error("--sasl takes USER:PASSWORD")
        u, p = s.split(":", 1)
        users[u] = p
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    cluster = KafkaCluster(nodes=args.nodes, sasl_users=users)
    try:
        cluster.start()
        if not args.no_topics:
            cluster.create_topics()
        print("bootstrap.servers=%s" % cluster.bootstrap, flush=True)
        if users:
            print("sasl.bootstrap.servers=%s" % cluster.sasl_bootstrap, flush=True)
        sys.stderr.write("kafka_cluster: %d node(s), Kafka %s, folder %s; %s\n" % (
            args.nodes, KAFKA_VERSION, cluster.folder,
            "Ctrl-C stops it" if sys.stdin.isatty() else "closing stdin stops it"))
        if sys.stdin.isatty():
            while not stop.wait(1):
                pass
        else:
            t = threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True)
            t.start()
            while not stop.wait(1):
                if not all(n.running() for n in cluster.nodes):
                    sys.stderr.write("kafka_cluster: a node exited\n")
                    cluster.failed = True
                    break
    except Exception as e:
        cluster.failed = True
        sys.stderr.write("kafka_cluster: %s\n" % e)
        cluster.stop()
        return 1
    cluster.stop(keep_logs=args.keep_logs or cluster.failed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
