"""Hostile input end to end (issue 12): records, headers and peers that try
to block a partition, corrupt a dead letter, overflow a counter or leak a
secret, against the real thopter-consumer and tools over thopter-devbroker
and the fake fly API. Each test names the point of the issue it guards."""
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from confluent_kafka import Producer
from flyfake import FlyFake
from thopter_harness import (TOKEN, Devbroker, Kafka, ThopterConsumer, binary, headers_dict, machine_id, tmo,
                             wait_until)
from tools_harness import run_tool, tool_env

from test_provision import ProvisionTestCase, hub_request

DESTROY = "thopter.destroy"
DLQ = "thopter.dlq"
GROUP = "thopter-destroyer"


class HostileTestCase(unittest.TestCase):
    def setUp(self):
        self.broker = Devbroker()
        self.addCleanup(self.broker.stop)
        self.b = self.broker.bootstrap
        self.kafka = Kafka(self.b)
        self.addCleanup(self.kafka.close)
        self.fly = FlyFake()
        self.fly.start(token=TOKEN)
        self.addCleanup(self.fly.stop)
        self.consumer = None

    def tearDown(self):
        if self.consumer:
            self.consumer.close()

    def start_consumer(self, **kw):
        self.consumer = ThopterConsumer(self.b, self.fly.base_url, role="destroy", **kw)
        self.consumer.wait_assigned()
        return self.consumer

    def tool(self, *args):
        return run_tool(args[0], list(args[1:]))

    def dead_letters(self, n, timeout=30):
        return wait_until(lambda: (lambda d: d if len(d) >= n else None)(self.kafka.read_all(DLQ)),
                          timeout=timeout, interval=0.3, what="%d dead letter(s)" % n)


class TestDeadLetterShapes(HostileTestCase):
    def test_huge_key_is_reduced_and_the_partition_moves_on(self):
        """Point 1: a 1,010,000-byte key (under Kafka's default topic limit,
        over librdkafka's message.max.bytes) with a non-JSON value. Before
        the fix the reduced dead letter kept the whole key, every send
        failed, and the partition never committed again: this test then
        times out waiting for the dead letter."""
        key = b"k" * 1010000
        big = Producer({"bootstrap.servers": self.b, "message.max.bytes": 2000000, "log_level": 3})
        big.produce(DESTROY, value=b"not json", key=key, partition=0)
        big.produce(DESTROY, value=b"also not json", key=b"small", partition=0)
        self.assertEqual(big.flush(tmo(10)), 0)
        self.start_consumer()

        dls = self.dead_letters(2)
        by_key = {m.key()[:5]: m for m in dls}
        reduced, whole = by_key[b"kkkkk"], by_key[b"small"]
        h = headers_dict(reduced)
        self.assertEqual(reduced.key(), key[:1024], "the key is cut to DLQ_REDUCED_KEY_MAX")
        self.assertEqual(reduced.value(), b"not json", "a small value is kept whole")
        self.assertEqual(h["thopter.dlq.truncated"], "8")
        self.assertEqual(h["thopter.dlq.truncated.key_size"], "1010000")
        self.assertEqual(h["thopter.dlq.truncated.key_sha256"], hashlib.sha256(key).hexdigest())
        self.assertNotIn("thopter.dlq.truncated.value_size", h)
        self.assertEqual(h["thopter.dlq.error.class"], "invalid_request")
        self.assertNotIn("thopter.dlq.truncated", headers_dict(whole))
        wait_until(lambda: self.kafka.committed(GROUP, DESTROY).get(0) == 2, timeout=20,
                   what="partition 0 committed past both records")

        # The tools say it is reduced, and replay refuses it unless forced.
        rows = self.tool("thopter-dlq", "-b", self.b, "list").stdout.splitlines()
        [row] = [r for r in rows if "REDUCED" in r]
        self.assertIn("REDUCED (original value 8 bytes, key 1010000 bytes sha256 %s)"
                      % hashlib.sha256(key).hexdigest(), row)
        js = [json.loads(line) for line in self.tool("thopter-dlq", "-b", self.b, "list", "--json").stdout.splitlines()]
        reduced_js = [j for j in js if j["reduced"]]
        self.assertEqual(len(reduced_js), 1)
        self.assertEqual(reduced_js[0]["reduced"]["keySize"], 1010000)
        self.assertEqual(reduced_js[0]["reduced"]["valueSize"], 8)
        shown = self.tool("thopter-dlq", "-b", self.b, "show", "0:%d" % reduced.offset()).stdout
        self.assertIn("reduced:     REDUCED (original value 8 bytes, key 1010000 bytes", shown)
        self.assertIn("NOT the original record, which is at %s [0] @0" % DESTROY, shown)

        ends = self.kafka.end_offsets(DESTROY)
        r = self.tool("thopter-dlq", "-b", self.b, "replay", "--group", "g1")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        # Neither goes back to thopter.destroy: one is reduced, and neither
        # value is a destroy request the consumer would accept (issue 19).
        self.assertIn("replayed 0, skipped 0 (filters), failed 2", r.stdout)
        self.assertIn("not the original record, not replayed", r.stderr)
        self.assertIn("--force", r.stderr)
        self.assertIn("not a valid destroy request", r.stderr)
        self.assertEqual(self.kafka.end_offsets(DESTROY), ends)
        self.assertEqual(self.kafka.committed("g1", DLQ)[0], 2, "committed past the refused ones")
        r = self.tool("thopter-dlq", "-b", self.b, "replay", "--group", "g2", "--force",
                      "--to-topic", "thopter.quarantine",
                      "--from", str(reduced.offset()), "--to", str(reduced.offset()))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("replayed 1, skipped 0", r.stdout)
        self.assertEqual(self.consumer.stop(), 0)

    def test_tombstone_stays_null_through_dead_letter_and_replay(self):
        """Point 2: a tombstone (null value) is dead-lettered with a null
        value, not an empty one, and thopter-dlq replay sends it back null.
        Before the fix the dead letter's value was b"" (this test's first
        assertIsNone fails)."""
        self.kafka.produce(DESTROY, None, key=b"tomb")
        self.kafka.produce(DESTROY, b"", key=b"empty")
        self.kafka.flush()
        self.start_consumer()
        dls = {m.key(): m for m in self.dead_letters(2)}
        self.assertIsNone(dls[b"tomb"].value(), "a tombstone's dead letter is a tombstone")
        self.assertEqual(dls[b"empty"].value(), b"", "an empty value stays empty, not null")
        self.assertEqual(self.consumer.stop(), 0)

        # Not destroy requests: only an explicit --to-topic moves them (issue 19).
        r = self.tool("thopter-dlq", "-b", self.b, "replay", "--to-topic", "thopter.quarantine")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        replayed = {m.key(): m for m in self.kafka.read_all("thopter.quarantine")
                    if "thopter.replay.count" in headers_dict(m)}
        self.assertEqual(set(replayed), {b"tomb", b"empty"})
        self.assertIsNone(replayed[b"tomb"].value(), "replayed as a tombstone")
        self.assertEqual(replayed[b"empty"].value(), b"")
        shown = self.tool("thopter-dlq", "-b", self.b, "show",
                          "%d:%d" % (dls[b"tomb"].partition(), dls[b"tomb"].offset())).stdout
        self.assertIn("value: (null)", shown)


class TestHostileHeaders(HostileTestCase):
    def dead_letter(self, key, count):
        h = [("thopter.dlq.topic", DESTROY.encode()), ("thopter.dlq.partition", b"0"),
             ("thopter.dlq.offset", b"7"), ("thopter.dlq.error.class", b"capacity"),
             ("thopter.dlq.attempts", b"99999999999999999999999"),
             ("thopter.dlq.failed_at", b"2026-01-01T00:00:00.000Z"),
             ("thopter.replay.count", count)]
        self.kafka.produce(DLQ, b'{"thopterId":"148e21a3c96989"}', key=key.encode(), headers=h)

    def test_replay_count_is_parsed_with_range_checks(self):
        """Point 8: thopter.replay.count is the record's, so hostile. Before
        the fix atoi() + 1 overflowed on 2147483647 (UBSan: "runtime error",
        caught under the asan preset) and turned 99999999999 into
        1215752192."""
        cases = {"intmax": (b"2147483647", 1), "intmax-1": (b"2147483646", 2147483647),
                 "huge": (b"99999999999", 1), "negative": (b"-5", 1), "blank": (b" 7", 1),
                 "plus": (b"+7", 1), "letters": (b"7abc", 1), "empty": (b"", 1), "seven": (b"7", 8)}
        for name, (count, _) in cases.items():
            self.dead_letter(name, count)
        self.kafka.flush()
        r = self.tool("thopter-dlq", "-b", self.b, "replay", "--dry-run")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        got = dict(re.findall(r"key (\S+)  replay\.count (-?\d+)", r.stdout))
        self.assertEqual(got, {name: str(want) for name, (_, want) in cases.items()}, r.stdout)
        self.assertIn("is not a count from 0 to 2147483646", r.stderr)

        js = [json.loads(line) for line in self.tool("thopter-dlq", "-b", self.b, "list", "--json").stdout.splitlines()]
        self.assertEqual({j["key"]: j["replayCount"] for j in js}["huge"], 99999999999)
        self.assertEqual({j["key"]: j["replayCount"] for j in js}["negative"], None)
        self.assertTrue(all(j["attempts"] is None for j in js), "a 23-digit attempts is no number")

        r = self.tool("thopter-dlq", "-b", self.b, "replay", "--key", "intmax")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        [m] = self.kafka.read_all(DESTROY)
        self.assertEqual(headers_dict(m)["thopter.replay.count"], "1")

    def test_offsets_past_int64_are_refused(self):
        """The same pattern on the command line: strtoll() saturated
        --to 99999999999999999999 at INT64_MAX and "--to + 1" overflowed."""
        for cmd in (["list", "--to"], ["list", "--from"], ["replay", "--to"]):
            r = self.tool("thopter-dlq", "-b", self.b, *cmd, "99999999999999999999")
            self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
            self.assertIn("expected an offset", r.stderr)
        r = self.tool("thopter-dlq", "-b", self.b, "show", "0:9223372036854775807")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)

    def test_show_escapes_control_bytes_in_header_names(self):
        """A header name is the record's too: show prints it escaped."""
        self.kafka.produce(DLQ, b"{}", key=b"k", headers=[("evil\x1b[2Jname", b"v\x07")])
        self.kafka.flush()
        shown = self.tool("thopter-dlq", "-b", self.b, "show", "0").stdout
        self.assertIn("  evil\\x1b[2Jname: v\\x07\n", shown)
        self.assertNotIn("\x1b", shown)


class TestHealthServer(HostileTestCase):
    """Point 3: slow clients must not lock out /livez, /readyz and
    /metrics. Before the fix (a thread per connection, 16 connections in
    all, a 10 s timeout per idle gap) 16 clients trickling one header line
    a second held every slot, and these probes got no answer."""

    def slow_clients(self, port, sources, per_source):
        socks = []
        for src in sources:
            for _ in range(per_source):
                s = socket.socket()
                s.bind((src, 0))
                s.settimeout(2)
                try:
                    s.connect(("127.0.0.1", port))
                    s.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n")
                except OSError:
                    s.close()
                    continue
                socks.append(s)
        return socks

    def trickle(self, socks):
        alive = 0
        for s in socks:
            try:
                s.sendall(b"X-Slow: a\r\n")
                alive += 1
            except OSError:
                pass
        return alive

    def probe(self, port, path):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=tmo(3))
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read().decode(errors="replace")
        finally:
            c.close()

    def test_slow_clients_do_not_lock_out_the_endpoints(self):
        port = self.start_consumer().metrics_port()
        # 48 slow clients from three other addresses: three times the old
        # global limit, each address within the per-address limit.
        socks = self.slow_clients(port, ["127.0.0.2", "127.0.0.3", "127.0.0.4"], 16)
        self.addCleanup(lambda: [s.close() for s in socks])
        self.assertEqual(len(socks), 48)
        for second in range(4):
            time.sleep(0.5)
            started = time.monotonic()
            self.assertEqual(self.probe(port, "/livez"), (200, "ok\n"))
            self.assertLess(time.monotonic() - started, 1.0, "/livez answers at once")
            status, body = self.probe(port, "/readyz")
            self.assertEqual(status, 200, body)
            status, body = self.probe(port, "/metrics")
            self.assertEqual(status, 200, body)
            self.assertIn("thopter_build_info", body)
            self.assertEqual(self.trickle(socks), 48, "the slow clients are still being served")

        # One address past its limit is turned away; others still get in.
        more = self.slow_clients(port, ["127.0.0.2"], 4)
        self.addCleanup(lambda: [s.close() for s in more])
        time.sleep(0.3)
        refused = 0
        for s in more:
            try:
                s.sendall(b"X-Slow: a\r\n")
                s.settimeout(1)
                if s.recv(1) == b"":
                    refused += 1
            except OSError:
                refused += 1
        self.assertEqual(refused, 4, "the 17th to 20th connection of one address are closed")
        self.assertEqual(self.probe(port, "/livez"), (200, "ok\n"))
        for s in socks:
            s.close()
        self.assertEqual(self.consumer.stop(), 0)


def everything_sent(kafka):
    """Every byte the consumer put on Kafka: dead letters (key, value,
    headers) and status events."""
    out = []
    for topic in (DLQ, "thopter.events"):
        for m in kafka.read_all(topic):
            out.append(repr(m.key()) + repr(m.value()) + repr(m.headers()))
    return "\n".join(out)


class TestSecrets(HostileTestCase):
    def write_file(self, text, mode=0o600):
        f = tempfile.NamedTemporaryFile("w", prefix="thopter-secret-", delete=False)
        f.write(text)
        f.close()
        os.chmod(f.name, mode)
        self.addCleanup(os.unlink, f.name)
        return f.name

    def echo_token_on_delete(self, machine):
        """The fake API echoes the token back in an error body and header,
        in every form a careless or hostile server might."""
        self.fly.push_fault(method="DELETE", route="machines.delete", machine=machine, status=422, count=-1,
                            headers={"fly-request-id": TOKEN},
                            body={"error": "token %s (FlyV1 %s, Bearer %s) not allowed" % (TOKEN, TOKEN, TOKEN)})

    def destroy_and_collect(self, mid):
        self.kafka.produce(DESTROY, json.dumps({"thopterId": mid}), key=mid.encode())
        self.kafka.flush()
        [dl] = self.dead_letters(1)
        wait_until(lambda: any('"failed"' in json.dumps(e) for e in self.kafka.read_json("thopter.events")),
                   timeout=20, what="the failed event")
        self.assertEqual(self.consumer.stop(), 0)
        return dl

    def test_token_with_outer_whitespace_is_redacted(self):
        """Point 4: FLY_DEPLOY_KEY with whitespace and a newline around it.
        The Authorization header uses the trimmed token; before the fix the
        redaction registered only the untrimmed one, so an echo of the token
        reached the logs, the failed event and the dead letter."""
        mid = machine_id(0x4401)
        self.fly.seed_machine(id=mid, name="thopter-4401", state="started")
        self.echo_token_on_delete(mid)
        self.start_consumer(token=" \t" + TOKEN + "\n")
        dl = self.destroy_and_collect(mid)
        h = headers_dict(dl)
        self.assertEqual(h["thopter.dlq.error.class"], "fly_rejected")
        self.assertIn("[REDACTED]", h["thopter.dlq.error.message"], "the echo reached the message")
        self.assertNotIn(TOKEN, everything_sent(self.kafka))
        self.assertNotIn(TOKEN, self.consumer.log_text())
        self.assertNotIn(TOKEN[4:], self.consumer.log_text(), "not even without its prefix")
        calls = [c for c in self.fly.calls() if c["method"] == "DELETE"]
        self.assertTrue(calls and calls[0]["auth"] == "FlyV1 " + TOKEN, "the trimmed token was sent")

    def test_secrets_from_files_never_in_argv(self):
        """Point 9: the token from FLY_DEPLOY_KEY_FILE and a Kafka password
        from THOPTER_KAFKA_CONFIG_FILE; neither is in /proc/PID/cmdline,
        the logs or anything sent, and the consumer works with them."""
        password = "kafka-pass-" + TOKEN[-12:][::-1]
        token_file = self.write_file(TOKEN + "\n")
        props = self.write_file("# librdkafka properties\nsasl.password=%s\nclient.id=hostile-test\n" % password)
        mid = machine_id(0x4402)
        self.fly.seed_machine(id=mid, name="thopter-4402", state="started")
        self.echo_token_on_delete(mid)
        self.start_consumer(token="", env={"FLY_DEPLOY_KEY_FILE": token_file,
                                           "THOPTER_KAFKA_CONFIG_FILE": props})
        with open("/proc/%d/cmdline" % self.consumer.proc.pid, "rb") as f:
            cmdline = f.read().decode(errors="replace")
        self.assertIn("thopter-consumer", cmdline)
        self.assertNotIn(TOKEN, cmdline)
        self.assertNotIn(password, cmdline)
        dl = self.destroy_and_collect(mid)
        self.assertIn("[REDACTED]", headers_dict(dl)["thopter.dlq.error.message"])
        for text in (everything_sent(self.kafka), self.consumer.log_text()):
            self.assertNotIn(TOKEN, text)
            self.assertNotIn(password, text)

    def run_consumer(self, args, env=None):
        e = {k: v for k, v in os.environ.items() if not k.startswith(("THOPTER_", "KAFKA_", "FLY_"))}
        e.update({"KAFKA_BROKERS": self.b, "APP_NAME": "thopters", "FLY_API_BASE": self.fly.base_url,
                  "THOPTER_METRICS_ADDR": "off"})
        e.update(env or {})
        return subprocess.run([binary("thopter-consumer"), "--role", "destroy"] + args, env=e,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=tmo(30))

    def test_secret_flags_are_refused(self):
        """Point 9: a secret given as a flag or -X is refused with exit 2 and
        a line naming the environment/file form (before the fix the consumer
        took --fly-deploy-key and -X sasl.password and ran with them in its
        argv), and the message does not repeat the secret."""
        for args, env, want in (
                (["--fly-deploy-key", TOKEN], {}, "FLY_DEPLOY_KEY_FILE"),
                (["--fly-deploy-key=" + TOKEN], {}, "FLY_DEPLOY_KEY_FILE"),
                (["--github-integration-json", '{"repositories":{}}'], {"FLY_DEPLOY_KEY": TOKEN},
                 "GITHUB_INTEGRATION_JSON_FILE"),
                (["-X", "sasl.password=" + TOKEN], {"FLY_DEPLOY_KEY": TOKEN}, "THOPTER_KAFKA_CONFIG_FILE"),
                (["-X", "ssl.key.password=" + TOKEN], {"FLY_DEPLOY_KEY": TOKEN}, "THOPTER_KAFKA_CONFIG_FILE"),
                (["-X", "sasl.oauthbearer.client.secret=" + TOKEN], {"FLY_DEPLOY_KEY": TOKEN},
                 "THOPTER_KAFKA_CONFIG_FILE")):
            r = self.run_consumer(args, env)
            self.assertEqual(r.returncode, 2, "%s: %s" % (args, r.stderr))
            self.assertIn("a secret is never taken on the command line", r.stderr)
            self.assertIn(want, r.stderr)
            self.assertNotIn(TOKEN, r.stderr)
        both = self.run_consumer([], {"FLY_DEPLOY_KEY": TOKEN, "FLY_DEPLOY_KEY_FILE": "/dev/null"})
        self.assertEqual(both.returncode, 2)
        self.assertIn("FLY_DEPLOY_KEY and FLY_DEPLOY_KEY_FILE are both set", both.stderr)
        missing = self.run_consumer([], {"FLY_DEPLOY_KEY_FILE": "/nonexistent/token"})
        self.assertEqual(missing.returncode, 2)
        self.assertIn("FLY_DEPLOY_KEY_FILE: cannot read /nonexistent/token", missing.stderr)

    def test_tools_refuse_secret_properties_and_read_them_from_files(self):
        """Point 9 for the producer tools: -X sasl.password=… is refused
        (exit 2); -F FILE and THOPTER_KAFKA_CONFIG_FILE carry it, and a
        running tool's /proc/PID/cmdline does not show it."""
        secret = "tool-pass-" + TOKEN[-10:]
        for tool, args in (("thopter-send", ["destroy", machine_id(1)]), ("thopter-dlq", ["list"])):
            r = run_tool(tool, ["-b", self.b, "-X", "sasl.password=" + secret] + args)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("-F FILE or THOPTER_KAFKA_CONFIG_FILE", r.stderr)
            self.assertNotIn(secret, r.stderr)
        props = self.write_file("sasl.password=%s\n" % secret)
        ok = run_tool("thopter-dlq", ["-b", self.b, "-F", props, "list"])
        self.assertEqual(ok.returncode, 0, ok.stderr)
        ok = run_tool("thopter-dlq", ["-b", self.b, "list"], env={"THOPTER_KAFKA_CONFIG_FILE": props})
        self.assertEqual(ok.returncode, 0, ok.stderr)
        # A tool that keeps running (no broker answers): its argv.
        dead = socket.socket()
        dead.bind(("127.0.0.1", 0))
        port = dead.getsockname()[1]
        dead.close()
        p = subprocess.Popen([binary("thopter-dlq"), "-b", "127.0.0.1:%d" % port, "-F", props, "list"],
                             env=tool_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            self.assertIsNone(p.poll(), "still running")
            with open("/proc/%d/cmdline" % p.pid, "rb") as f:
                cmdline = f.read().decode(errors="replace")
            self.assertIn("-F", cmdline)
            self.assertNotIn(secret, cmdline)
        finally:
            p.send_signal(signal.SIGKILL)
            p.wait()


class TestBrokerProperties(HostileTestCase):
    """Point 10 (contract 5.14): every -X wins over the project's defaults,
    and each client gets only the properties that apply to it."""

    def test_idempotence_can_be_turned_off(self):
        """Before the fix the producer forced enable.idempotence=true after
        the user's -X, so with -X acks=1 librdkafka refused the producer
        ("acks must be all when enable.idempotence is true") and the
        consumer exited at start."""
        mid = machine_id(0x1001)
        self.fly.seed_machine(id=mid, name="thopter-1001", state="started")
        self.start_consumer(args=["-X", "enable.idempotence=false", "-X", "acks=1"])
        self.kafka.produce(DESTROY, json.dumps({"thopterId": mid}), key=mid.encode())
        self.kafka.flush()
        wait_until(lambda: any(e.get("state") == "completed" for e in self.kafka.read_json("thopter.events")),
                   timeout=30, what="the destroy completed with -X acks=1")
        self.assertEqual(self.consumer.stop(), 0)

    def test_defaults_still_apply_when_not_overridden(self):
        """-X acks=1 alone: the project's enable.idempotence=true default
        still applies, and librdkafka refuses the pair at start."""
        c = ThopterConsumer(self.b, self.fly.base_url, role="destroy", args=["-X", "acks=1"])
        self.consumer = c
        self.assertNotEqual(c.wait(timeout=30), 0)
        self.assertIn("idempotence", c.log_text())

    def test_consumer_and_producer_properties_draw_no_warning(self):
        """Before the fix every -X went to both clients: librdkafka warned
        at every start that the producer ignores fetch.wait.max.ms and the
        consumers ignore linger.ms."""
        c = self.start_consumer(args=["-X", "fetch.wait.max.ms=50", "-X", "linger.ms=2",
                                      "-X", "auto.offset.reset=earliest"])
        time.sleep(1)
        self.assertEqual(c.stop(), 0)
        log = c.log_text()
        self.assertNotRegex(log, r"(consumer|producer) property and will be ignored", log[-3000:])
        self.assertNotIn("CONFWARN", log)


class TestRemoteStderr(ProvisionTestCase):
    """Point 5: what a remote command prints reaches the step's message
    redacted first and cut after. A hostile thopter image whose git echoes
    the token the git step hands it (GITHUB_REPO_PAT, read from stdin), with
    the token longer than the kept tail: before the fix the tail was cut
    first, so the token's end survived in the dead letter, the failed event
    and the log."""

    def machine_binds(self):
        d = tempfile.mkdtemp(prefix="thopter-hostile-git.")
        self.addCleanup(shutil.rmtree, d, True)
        self.fake_git = os.path.join(d, "git")
        with open(self.fake_git, "w") as f:
            f.write("#!/bin/sh\nprintf 'fatal: token %s rejected' \"$GITHUB_REPO_PAT\" >&2\nexit 128\n")
        os.chmod(self.fake_git, 0o755)
        return [(self.fake_git, "/usr/local/bin/git")]

    def test_step_message_holds_no_fragment_of_an_echoed_token(self):
        pat = "ghp_" + "".join("abcdefghijklmnopqrstuvwxyz0123456789"[(i * 11) % 36] for i in range(220))
        gij = json.dumps({"repositories": {"acme/widgets": {"agentCoderPAT": pat, "userName": "Thopter Bot",
                                                            "userEmail": "bot@example.com"}}})
        c = self.start_consumer(env={"GITHUB_INTEGRATION_JSON": gij})
        self.provision(hub_request("prov-echo"))
        dl = self.dead_letter("prov-echo")
        h = headers_dict(dl)
        self.assertEqual((h["thopter.dlq.error.class"], h["thopter.dlq.error.step"]), ("ssh", "git"))
        msg = h["thopter.dlq.error.message"]
        self.assertIn("exited 128", msg)
        self.assertIn("fatal: token [REDACTED] rejected", msg, "the echo reached the message")
        texts = {"dead letter": repr(dl.headers()), "events": json.dumps(self.events("prov-echo")),
                 "log": c.log_text()}
        for where, text in texts.items():
            for i in range(len(pat) - 8):
                self.assertNotIn(pat[i:i + 8], text, "a fragment of the token in the %s" % where)


if __name__ == "__main__":
    unittest.main()
