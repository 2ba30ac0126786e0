"""Issue 19: inputs that choose too much. Each test reproduces what a hostile
writer of a topic, a request, the environment or the network could do, and
fails on the code before the fix (docs/hostile-inputs.md rows 14-)."""
import http.client
import json
import os
import re
import shutil
import socket
import tempfile
import threading
import time

from thopter_harness import TOKEN, ThopterConsumer, headers_dict, machine_id, tmo, wait_until
from tools_harness import run_tool

from test_hostile import DESTROY, DLQ, HostileTestCase
from test_provision import ProvisionTestCase, hub_request

PROVISION = "thopter.provision"
EVENTS = "thopter.events"


def dl_headers(topic, cls=b"fly_unavailable", extra=()):
    h = [("thopter.dlq.topic", topic.encode() if isinstance(topic, str) else topic),
         ("thopter.dlq.partition", b"0"), ("thopter.dlq.offset", b"1"),
         ("thopter.dlq.error.class", cls), ("thopter.dlq.error.step", b"delete"),
         ("thopter.dlq.error.message", b"m"), ("thopter.dlq.attempts", b"1"),
         ("thopter.dlq.failed_at", b"2026-01-01T00:00:00.000Z")]
    return h + list(extra)


PROVISION_OK = {"requestId": "p-1", "repository": "owner/name",
                "github": {"issueNumber": 7, "issueTitle": "Fix it", "issueBody": "an attacker's body"}}
FORGED_COMPLETED = {"requestId": "p-9", "kind": "provision", "state": "completed",
                    "thopterId": machine_id(9), "attempt": 1, "at": "2026-01-01T00:00:00.000Z", "elapsedMs": 1}


class TestReplayDestinations(HostileTestCase):
    """Point 4: thopter-dlq replay took its destination from the record's own
    thopter.dlq.topic header: a forged dead letter went to thopter.events, to
    an unrelated topic, and to a new auto-created one."""

    def seed(self):
        k = self.kafka
        k.produce(DLQ, json.dumps({"thopterId": machine_id(1)}), key=machine_id(1), headers=dl_headers(DESTROY))
        k.produce(DLQ, json.dumps(PROVISION_OK), key="p-1", headers=dl_headers(PROVISION, b"capacity"))
        k.produce(DLQ, json.dumps(FORGED_COMPLETED), key="p-9", headers=dl_headers(EVENTS))
        k.produce(DLQ, json.dumps({"thopterId": machine_id(2)}), key="other", headers=dl_headers("unrelated.topic"))
        k.produce(DLQ, json.dumps({"thopterId": machine_id(3)}), key="new", headers=dl_headers("brand.new.topic"))
        # a value the consumer would refuse: it is not replayed onto its topic
        k.produce(DLQ, json.dumps({"thopterId": "not-an-id"}), key="bad", headers=dl_headers(DESTROY))
        k.produce(DLQ, json.dumps({"requestId": "p-2"}), key="p-2", headers=dl_headers(PROVISION))
        # two thopter.dlq.topic headers: the reader would take one, a filter the other
        k.produce(DLQ, json.dumps({"thopterId": machine_id(4)}), key="dup",
                  headers=dl_headers(DESTROY, extra=[("thopter.dlq.topic", EVENTS.encode())]))
        k.flush()

    def topics(self):
        from confluent_kafka.admin import AdminClient
        return set(AdminClient({"bootstrap.servers": self.b}).list_topics(timeout=10).topics)

    def test_dry_run_shows_value_and_destination_and_refuses_forgeries(self):
        self.seed()
        r = self.tool("thopter-dlq", "-b", self.b, "replay", "--dry-run")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("would replay 2, skipped 0 (filters), failed 6", r.stdout)
        lines = [line for line in r.stdout.splitlines() if line.startswith("would replay thopter.dlq")]
        self.assertEqual(len(lines), 2, r.stdout)
        self.assertIn("-> %s  fly_unavailable  key %s  replay.count 1  value {\"thopterId\": \"%s\"}"
                      % (DESTROY, machine_id(1), machine_id(1)), lines[0])
        self.assertIn("-> %s  capacity  key p-1" % PROVISION, lines[1])
        self.assertIn("an attacker's body", lines[1])
        for what in ("thopter.dlq.topic thopter.events is not a topic the consumer reads",
                     "thopter.dlq.topic unrelated.topic is not a topic the consumer reads",
                     "thopter.dlq.topic brand.new.topic is not a topic the consumer reads",
                     "not a valid destroy request", "not a valid provision request",
                     "thopter.dlq.topic appears 2 times"):
            self.assertIn(what, r.stderr)

    def test_replay_sends_only_valid_records_to_the_consumer_topics(self):
        self.seed()
        ends = {t: self.kafka.end_offsets(t) for t in (EVENTS, DESTROY, PROVISION, DLQ)}
        r = self.tool("thopter-dlq", "-b", self.b, "replay")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("replayed 2, skipped 0 (filters), failed 6", r.stdout)
        self.assertEqual(self.kafka.end_offsets(EVENTS), ends[EVENTS], "no forged event on thopter.events")
        self.assertEqual([m.key() for m in self.kafka.read_all(DESTROY)], [machine_id(1).encode()])
        self.assertEqual([m.key() for m in self.kafka.read_all(PROVISION)], [b"p-1"])
        topics = self.topics()
        self.assertNotIn("brand.new.topic", topics, "no topic auto-created by a replay")
        self.assertNotIn("unrelated.topic", topics)
        # (the end as it was: the replay's own marks, thopter-dlq replay's note
        # to the next operator, land on the dead-letter topic after it)
        self.assertEqual(self.kafka.committed("thopter-dlq-replay", DLQ), ends[DLQ],
                         "refused records are committed past: a rerun cannot fix them")

    def test_to_topic_names_another_destination_explicitly(self):
        self.seed()
        r = self.tool("thopter-dlq", "-b", self.b, "replay", "--key", "p-9", "--to-topic", "thopter.quarantine")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("replayed 1, skipped 7 (filters), failed 0", r.stdout)
        [m] = self.kafka.read_all("thopter.quarantine")
        self.assertEqual(json.loads(m.value()), FORGED_COMPLETED)
        self.assertEqual(headers_dict(m)["thopter.replay.count"], "1")
        # --to-topic onto a consumer topic still validates with the consumer's parser.
        r = self.tool("thopter-dlq", "-b", self.b, "replay", "--group", "g2", "--key", "bad",
                      "--to-topic", DESTROY)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("not a valid destroy request", r.stderr)
        self.assertEqual(self.kafka.read_all(DESTROY), [])
        r = self.tool("thopter-dlq", "-b", self.b, "replay", "--to-topic", "")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertTrue(re.search(r"--to-topic", r.stderr), r.stderr)


class TestImageAllowList(ProvisionTestCase):
    """Point 5: a request chose the image that receives the GitHub token, the
    env file, the host key and the Golden Claude's credentials:
    docker.io/attacker/evil:latest completed."""

    def test_an_image_outside_the_allowed_prefixes_is_an_invalid_request(self):
        self.start_consumer()
        for rid, image in (("img-evil", "docker.io/attacker/evil:latest"),
                           ("img-lookalike", "registry.fly.io/thopters-evil:latest"),
                           ("img-other-app", "registry.fly.io/other:thopter-1")):
            self.provision(hub_request(rid, image=image))
            [ev] = self.final(rid)
            self.assertEqual(ev["state"], "failed", ev)
            self.assertEqual(ev["error"]["class"], "invalid_request", ev)
            h = headers_dict(self.dead_letter(rid))
            self.assertEqual((h["thopter.dlq.error.class"], h["thopter.dlq.error.step"]),
                             ("invalid_request", "validate"))
            self.assertIn("THOPTER_IMAGE_PREFIXES", h["thopter.dlq.error.message"])
        self.assertEqual(self.fly.calls(route="machines.create"), [], "no machine for a refused image")
        # The app's own registry path is allowed by default.
        self.provision(hub_request("img-ok", image="registry.fly.io/thopters:thopter-other"))
        [ev] = self.final("img-ok")
        self.assertEqual(ev["state"], "completed", ev)
        self.assertEqual(self.machine_of("img-ok")["config"]["image"], "registry.fly.io/thopters:thopter-other")


class RecordingProxy:
    """A listener on loopback that records what a client sends it as a proxy
    and answers 502: a proxy that reads everything."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.received = b""
        self.lock = threading.Lock()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            c.settimeout(2)
            try:
                data = c.recv(65536)
                with self.lock:
                    self.received += data
                c.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            except OSError:
                pass
            c.close()

    def close(self):
        self.sock.close()


class TestFlyProxy(HostileTestCase):
    """Point 6: with http_proxy set, libcurl sent Authorization: FlyV1 ... to
    the proxy in clear text."""

    def setUp(self):
        super().setUp()
        self.proxy = RecordingProxy()
        self.addCleanup(self.proxy.close)
        self.proxy_env = {name: self.proxy.url for name in
                          ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")}
        self.proxy_env.update({"no_proxy": "", "NO_PROXY": ""})

    def reaper_env(self, **extra):
        e = {"APP_NAME": "thopters", "FLY_DEPLOY_KEY": TOKEN, "FLY_API_BASE": self.fly.base_url,
             "THOPTER_FLY_RETRIES": "1"}
        e.update(self.proxy_env)
        e.update(extra)
        return e

    def test_the_proxy_environment_is_ignored_for_fly_calls(self):
        self.fly.seed_machine(id=machine_id(0x900), name="thopter-p", metadata={})
        r = run_tool("thopter-reaper", ["--once"], env=self.reaper_env())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(machine_id(0x900), r.stdout)
        self.assertEqual(self.proxy.received, b"", "nothing reached the proxy")

        # The consumer as well: a destroy goes straight to the fly API.
        self.fly.seed_machine(id=machine_id(0x901), name="thopter-q")
        self.consumer = ThopterConsumer(self.b, self.fly.base_url, role="destroy", env=self.proxy_env)
        self.consumer.wait_assigned()
        self.kafka.produce(DESTROY, {"thopterId": machine_id(0x901)}, key=machine_id(0x901))
        self.kafka.flush()
        wait_until(lambda: any(e.get("state") == "completed" for e in self.kafka.read_json("thopter.events")),
                   timeout=30, interval=0.3, what="the destroy completed")
        self.assertEqual(self.proxy.received, b"")
        self.assertNotIn(TOKEN.encode(), self.proxy.received)

    def test_a_named_proxy_is_never_given_a_plain_http_request_with_the_token(self):
        r = run_tool("thopter-reaper", ["--once"], env=self.reaper_env(THOPTER_FLY_PROXY=self.proxy.url))
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("THOPTER_FLY_PROXY", r.stderr)
        self.assertIn("FLY_API_BASE", r.stderr)
        self.assertEqual(self.proxy.received, b"")
        r = run_tool("thopter-reaper", ["--once"], env=self.reaper_env(
            THOPTER_FLY_PROXY="ftp://127.0.0.1:1", FLY_API_BASE="https://api.machines.dev"))
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("THOPTER_FLY_PROXY", r.stderr)


class TestHealthFlood(HostileTestCase):
    """Point 7: 15 keep-alive clients looping on /readyz took the 4 shared
    worker slots (each /readyz also asks the brokers for metadata), and every
    /metrics scrape failed with 503 busy."""

    def flood(self, port, stop, statuses):
        def loop():
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5, source_address=("127.0.0.2", 0))
            while not stop.is_set():
                try:
                    c.request("GET", "/readyz")
                    r = c.getresponse()
                    r.read()
                    statuses.append(r.status)
                except (OSError, http.client.HTTPException):
                    c.close()
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5,
                                                   source_address=("127.0.0.2", 0))
            c.close()
        threads = [threading.Thread(target=loop, daemon=True) for _ in range(15)]
        for t in threads:
            t.start()
        return threads

    def get(self, port, path):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=tmo(5))
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read().decode(errors="replace")
        finally:
            c.close()

    def test_readyz_floods_do_not_starve_metrics_scrapes(self):
        port = self.start_consumer().metrics_port()
        stop, statuses = threading.Event(), []
        threads = self.flood(port, stop, statuses)
        self.addCleanup(stop.set)
        time.sleep(0.5)
        scrapes = []
        for _ in range(8):
            scrapes.append(self.get(port, "/metrics"))
            time.sleep(0.25)
        ready = self.get(port, "/readyz")
        stop.set()
        for t in threads:
            t.join(10)
        for status, body in scrapes:
            self.assertEqual(status, 200, body)
            self.assertIn("thopter_build_info", body)
        self.assertEqual(ready[0], 200, ready[1])
        self.assertGreater(len(statuses), 100, "the flood ran")
        self.assertNotIn(503, statuses, "cached answers, never busy")
        self.assertIn(429, statuses, "one address is limited")
        self.assertEqual(set(statuses) - {200, 429}, set())
        self.assertEqual(self.consumer.stop(), 0)


class TestBulkDestroySecrets(HostileTestCase):
    """Point 8: bulk-destroy passed -X sasl.password=... into kcat's argv,
    readable by every user of the host in /proc/PID/cmdline."""

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix="thopter-bulk-test.")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        # A kcat that records its argv, then hands over to the real one.
        real = shutil.which("kcat")
        self.argv_log = os.path.join(self.tmp, "kcat-argv")
        bindir = os.path.join(self.tmp, "bin")
        os.makedirs(bindir)
        with open(os.path.join(bindir, "kcat"), "w") as f:
            f.write('#!/bin/sh\nprintf "%%s\\n" "$@" >> %s\nexec %s "$@"\n' % (self.argv_log, real))
        os.chmod(os.path.join(bindir, "kcat"), 0o755)
        self.path = bindir + ":" + os.environ["PATH"]
        self.secret = "bulk-pass-" + TOKEN[-8:]

    def bulk(self, *args, env=None):
        e = {"PATH": self.path}
        e.update(env or {})
        return run_tool("bulk-destroy", ["-b", self.b] + list(args), input=machine_id(0x42) + "\n", env=e)

    def test_secret_properties_are_refused_and_read_from_a_file(self):
        for form in (["-X", "sasl.password=" + self.secret], ["-Xssl.key.password=" + self.secret],
                     ["-X", "sasl.oauthbearer.client.secret=" + self.secret], ["-X", "ssl.key.pem=" + self.secret]):
            r = self.bulk(*form)
            self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
            self.assertIn("-F FILE or THOPTER_KAFKA_CONFIG_FILE", r.stderr)
            self.assertNotIn(self.secret, r.stderr)
        self.assertFalse(os.path.exists(self.argv_log), "kcat never ran")

        props = os.path.join(self.tmp, "kafka.properties")
        with open(props, "w") as f:
            f.write("# a comment\nsasl.password=%s\nclient.id=bulk-test\n" % self.secret)
        os.chmod(props, 0o600)
        r = self.bulk("-F", props)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("sent 1 destroy request(s)", r.stdout)
        r = self.bulk(env={"THOPTER_KAFKA_CONFIG_FILE": props})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(self.argv_log) as f:
            argv = f.read()
        self.assertEqual(argv.count("-F\n%s\n" % props), 2, argv)
        self.assertNotIn(self.secret, argv)
        self.assertEqual([m.key() for m in self.kafka.read_all(DESTROY)], [machine_id(0x42).encode()] * 2)
        r = self.bulk("-F", os.path.join(self.tmp, "missing"))
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
