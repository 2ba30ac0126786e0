"""SASL on a real Apache Kafka 4.1.1 listener (SASL_PLAINTEXT), with the project's
C programs on Debian 12's librdkafka 2.0.2:

- PLAIN works end to end: thopter-send publishes, the consumer destroys, both
  with the secret in a properties file (THOPTER_KAFKA_CONFIG_FILE / -F), never
  on a command line, and no password in the consumer's log.
- SCRAM does not, on this librdkafka: before 2.6.1 it builds a proof that Kafka
  3.8.1 and newer refuse as invalid credentials (librdkafka #4895; the hub
  package's librdkafka 2.15 authenticates with SCRAM on this same listener, in
  its own tests). This test pins that limit down, so that it shows when the
  librdkafka under the project changes, and checks the consumer says so at start
  (consumer/lib/kafka_compat.h).
"""
import os
import subprocess
import tempfile
import unittest

from flyfake import FlyFake
from kafka_cluster import KafkaCluster
from thopter_harness import TOKEN, ThopterConsumer, binary, machine_id, tmo, wait_until

USER, PASSWORD = "thopter", "sasl-secret-4b1d0c9e"


class TestSasl(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = KafkaCluster(nodes=1, sasl_users={USER: PASSWORD})
        try:
            cls.cluster.start()
            cls.cluster.create_topics()
        except Exception:
            cls.cluster.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    def props(self, mechanism):
        f = tempfile.NamedTemporaryFile("w", prefix="kafka-", suffix=".properties", delete=False)
        self.addCleanup(os.unlink, f.name)
        f.write("security.protocol=SASL_PLAINTEXT\nsasl.mechanisms=%s\nsasl.username=%s\nsasl.password=%s\n" % (
            mechanism, USER, PASSWORD))
        f.close()
        os.chmod(f.name, 0o600)
        return f.name

    def send_destroy(self, mid, props):
        return subprocess.run([binary("thopter-send"), "destroy", mid, "-b", self.cluster.sasl_bootstrap,
                               "-F", props], capture_output=True, text=True, timeout=tmo(60))

    def test_plain_publishes_and_consumes_with_the_secret_in_a_file(self):
        fly = FlyFake()
        fly.start(token=TOKEN)
        self.addCleanup(fly.stop)
        mid = fly.seed_machine(id=machine_id(0x5a51), name="thopter-sasl", state="started")["id"]
        props = self.props("PLAIN")
        c = ThopterConsumer(self.cluster.sasl_bootstrap, fly.base_url, role="destroy",
                            env={"THOPTER_KAFKA_CONFIG_FILE": props})
        self.addCleanup(c.close)
        c.wait_assigned(timeout=60)
        r = self.send_destroy(mid, props)
        self.assertEqual(r.returncode, 0, r.stderr)
        wait_until(lambda: fly.machine(mid)["state"] == "destroyed", timeout=30, what="the machine destroyed")
        self.assertNotIn(PASSWORD, c.log_text())
        self.assertNotIn("SCRAM", c.log_text())

    def test_scram_fails_on_this_librdkafka_and_the_consumer_says_why(self):
        props = self.props("SCRAM-SHA-512")
        r = self.send_destroy(machine_id(0x5a52), props)
        self.assertEqual(r.returncode, 1, "SCRAM worked: the librdkafka under the project has the fix (2.6.1+); "
                                          "update docs/real-kafka.md and kafka_compat.h\n" + r.stderr)
        self.assertIn("invalid credentials", r.stderr)
        self.assertNotIn(PASSWORD, r.stderr)
        fly = FlyFake()
        fly.start(token=TOKEN)
        self.addCleanup(fly.stop)
        c = ThopterConsumer(self.cluster.sasl_bootstrap, fly.base_url, role="destroy",
                            env={"THOPTER_KAFKA_CONFIG_FILE": props})
        self.addCleanup(c.close)
        c.wait_log(r"librdkafka #4895", timeout=30)


if __name__ == "__main__":
    unittest.main()
