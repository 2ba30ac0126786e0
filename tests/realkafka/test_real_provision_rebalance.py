"""A second provision consumer joins the group while a provision runs, on a real
Apache Kafka cluster: the real group coordinator waits for the running member to
rejoin for up to the member's max.poll.interval.ms (librdkafka's default, 300 s,
is also its rebalance timeout); the consumer holds the revocation until the
running provision is finished (at most 4 minutes, below that), commits it, and
only then lets the partition go. So the provision completes once, on the
instance that started it, one machine is created, and the other instance never
starts it. The same test runs on thopter-devbroker with THOPTER_TEST_KAFKA unset
(where a rejoin waits session.timeout.ms - 1 s instead).

The provision world (fake fly API writing config.files, simulated thopter
machines booting the real start hook, a Golden Claude, git over HTTP) is
tests/integration/test_provision.py's ProvisionTestCase."""
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

from test_provision import PROVISION, ProvisionTestCase, hub_request  # noqa: E402
from thopter_harness import KAFKA_KIND, wait_until  # noqa: E402


class TestSecondInstanceMidProvision(ProvisionTestCase):
    def test_a_second_instance_joining_mid_provision_lets_it_finish_once(self):
        # A boot of 5 s keeps the provision in its wait step while the group rebalances.
        self.fly.config(timings={"create_ms": 50, "start_ms": 5000, "stop_ms": 100, "destroy_ms": 100})
        a = self.start_consumer()
        a.wait_assigned(timeout=60)
        self.provision(hub_request("rebalance-1"))
        wait_until(lambda: any(e["state"] == "step" and e.get("step") == "wait" for e in self.events("rebalance-1")),
                   timeout=60, interval=0.2, what="the provision to reach its wait step")
        t_join = time.monotonic()
        b = self.start_consumer()
        final = self.final("rebalance-1", timeout=120)
        self.assertEqual([e["state"] for e in final], ["completed"])
        wait_until(lambda: re.search(r'"msg":"assigned', b.log_text()), timeout=90,
                   what="the second instance to finish joining")
        rebalance_s = time.monotonic() - t_join
        creates = self.fly.calls(route="machines.create")
        self.assertEqual(len(creates), 1, "one machine created: %r" % creates)
        self.machine_of("rebalance-1")
        self.assertIn("revoked", a.log_text(), "the first instance saw its partition revoked")
        self.assertNotIn("rebalance-1", b.log_text(), "the second instance never ran the request")
        ends = self.kafka.end_offsets(PROVISION)
        wait_until(lambda: self.kafka.committed("thopter-provisioner", PROVISION) == ends, timeout=60,
                   interval=1.0, what="the provision committed")
        started = [e for e in self.events("rebalance-1") if e["state"] == "started"]
        self.assertEqual(len(started), 1, "started once: %r" % started)
        print("FIGURE provision across a rebalance (%s): completed once on the first instance, "
              "1 machine, committed; second instance assigned %.1f s after it joined" % (KAFKA_KIND, rebalance_s),
              flush=True)


if __name__ == "__main__":
    import unittest
    unittest.main()
