"""The fly fault model end to end (issue 11, contract 5.12): a few machines
whose own calls fail (a dead fly host) are not an outage, and an outage is
not a reason to dead-letter anything. The real thopter-consumer, the
devbroker, and the fake fly API with per-machine and API-wide faults."""
import json
import re
import time
import unittest
import urllib.request

from test_destroy import DestroyTestCase
from thopter_harness import headers_dict, machine_id, wait_until

BUDGET = 5


def scrape(consumer):
    """/metrics of @consumer as {name{labels}: value}."""
    url = "http://127.0.0.1:%d/metrics" % consumer.metrics_port()
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


class TestFewBadMachinesAreNotAnOutage(DestroyTestCase):
    ENV = {"THOPTER_FLY_RETRIES": str(BUDGET), "THOPTER_BREAKER_THRESHOLD": "3",
           "THOPTER_BREAKER_PROBE_MS": "500"}

    def hopeless(self, ids):
        """DELETE answers 503 forever for these machines; the rest of the API answers."""
        for i in ids:
            self.fly.push_fault(method="DELETE", route="machines.delete", machine=i, status=503, count=-1)

    def check_dead_letters(self, hopeless):
        dls = {json.loads(d.value())["thopterId"]: headers_dict(d) for d in self.dead_letters()}
        self.assertEqual(set(dls), set(hopeless))
        for i, h in dls.items():
            self.assertEqual(h["thopter.dlq.error.class"], "fly_unavailable", i)
            self.assertEqual(h["thopter.dlq.error.step"], "delete", i)
            self.assertEqual(h["thopter.dlq.attempts"], str(BUDGET), i)
        deletes = {}
        for x in self.fly.calls(route="machines.delete"):
            deletes[x["machine"]] = deletes.get(x["machine"], 0) + 1
        for i in hopeless:
            # The message's own budget, not a budget restarted by the breaker.
            self.assertEqual(deletes.get(i), BUDGET, "DELETE calls for %s" % i)

    def test_five_hopeless_of_ten_reach_the_dlq_in_bounded_time(self):
        ids = self.seed(10, start=0x1100)
        hopeless, healthy = ids[:5], ids[5:]
        self.hopeless(hopeless)
        for i in ids:
            self.destroy(i)
        self.kafka.flush()
        t0 = time.monotonic()
        c = self.start_consumer(env=self.ENV)
        wait_until(lambda: self.gone(healthy), timeout=60, what="the healthy machines destroyed")
        wait_until(lambda: len(self.dead_letters()) == 5, timeout=60,
                   what="the five hopeless machines dead-lettered")
        took = time.monotonic() - t0
        self.wait_committed_to_end()
        self.check_dead_letters(hopeless)
        m = scrape(c)
        self.assertEqual(m.get("thopter_circuit_opened_total", 0), 0, "a few bad machines opened the circuit")
        self.assertGreaterEqual(m.get('thopter_circuit_probes_total{result="ok"}', 0), 1,
                                "the breaker asked the probe before giving up")
        self.assertNotRegex(c.log_text(), r"circuit open")
        print("\n5 hopeless + 5 healthy: all done in %.1f s (with the 3 s group join)" % took)

    def test_hopeless_before_sixty_healthy_on_the_same_partitions(self):
        ids = self.seed(65, start=0x1200)
        hopeless, healthy = ids[:5], ids[5:]
        self.hopeless(hopeless)
        for i in hopeless + healthy:  # the hopeless ones first, on every partition they hash to
            self.destroy(i)
        self.kafka.flush()
        c = self.start_consumer(env=self.ENV)
        c.wait_assigned()
        t0 = time.monotonic()
        wait_until(lambda: self.gone(healthy), timeout=90, what="the sixty healthy machines destroyed")
        healthy_done = time.monotonic() - t0
        wait_until(lambda: len(self.dead_letters()) == 5, timeout=60, what="the hopeless ones dead-lettered")
        ends = self.wait_committed_to_end()
        self.assertEqual(sum(ends.values()), 65)
        self.check_dead_letters(hopeless)
        evs = self.events()
        self.assertEqual({e["thopterId"] for e in evs if e["state"] == "completed"}, set(healthy))
        m = scrape(c)
        self.assertEqual(m.get("thopter_circuit_opened_total", 0), 0)
        print("\n5 hopeless first, then 60 healthy: healthy done %.1f s after assignment" % healthy_done)


class TestOutageIsNotDeadLettered(DestroyTestCase):
    OUTAGE_S = 20
    PROBE_MS = 1000

    def test_every_route_503_for_twenty_seconds_in_a_burst(self):
        ids = self.seed(40, start=0x1300)
        self.fly.config(latency_ms=20)
        c = self.start_consumer(env={"THOPTER_BREAKER_PROBE_MS": str(self.PROBE_MS),
                                     "THOPTER_FLY_RETRIES": str(BUDGET)})
        c.wait_assigned()
        for i in ids[:20]:
            self.destroy(i)
        self.kafka.flush()
        wait_until(lambda: self.gone(ids[:5]), timeout=30, what="the burst under way")
        self.fly.outage(status=503)
        t_out = time.time()
        for i in ids[20:]:
            self.destroy(i)
        self.kafka.flush()
        c.wait_log(r"circuit open", timeout=30)
        time.sleep(self.OUTAGE_S - (time.time() - t_out))
        t_end = time.time()
        self.assertEqual(self.dead_letters(), [], "an outage must leave requests in Kafka")
        self.fly.outage_end()
        wait_until(lambda: self.gone(ids), timeout=90, what="every machine destroyed after the outage")
        self.wait_committed_to_end()
        self.assertEqual(self.dead_letters(), [])

        evs = self.events()
        self.assertTrue(any(e["state"] == "waiting_fly" for e in evs), "waiting_fly events")
        self.assertEqual({e["thopterId"] for e in evs if e["state"] == "completed"}, set(ids))
        # Once the circuit is open only the probe reaches the API: count the
        # calls after the first two seconds of the outage.
        during = [x for x in self.fly.calls() if t_out + 2 <= x["started"] < t_end]
        probes_at_most = (t_end - t_out) / (self.PROBE_MS / 1000.0) + 2
        self.assertLessEqual(len(during), probes_at_most,
                             "calls during the outage: %r" % sorted({x["route"] for x in during}))
        self.assertTrue(all(x["route"] == "machines.list" for x in during), "only probes (list)")
        m = scrape(c)
        self.assertGreaterEqual(m.get("thopter_circuit_opened_total", 0), 1)
        self.assertEqual(m.get("thopter_circuit_open", 0), 0, "closed again after the outage")
        print("\n%d s outage in a burst of 40: %d calls during it (probes), 0 dead letters"
              % (self.OUTAGE_S, len(during)))


class TestRateLimitsAndSlowAnswers(DestroyTestCase):
    def test_429_storm_with_retry_after_and_slow_answers(self):
        ids = self.seed(30, start=0x1400)
        # A storm: the next 25 calls of any route answer 429 with
        # Retry-After: 1 (about 5 per message in flight, within each one's
        # budget of 8), and every answer is slow. A 429 is the API pacing
        # us: it spends the message's budget, never opens the circuit.
        self.fly.config(latency_ms=150)
        self.fly.push_fault(route="machines.*", status=429, retry_after=1, count=25)
        for i in ids:
            self.destroy(i)
        self.kafka.flush()
        c = self.start_consumer(env={"THOPTER_FLY_RETRIES": "8"})
        wait_until(lambda: self.gone(ids), timeout=180, interval=0.5, what="every machine destroyed")
        self.wait_committed_to_end()
        self.assertEqual(self.dead_letters(), [])
        statuses = [x["status"] for x in self.fly.calls()]
        self.assertEqual(statuses.count(429), 25, "the storm happened")
        m = scrape(c)
        self.assertEqual(m.get("thopter_circuit_opened_total", 0), 0, "429 never opens the circuit")
        print("\n429 storm: %d calls answered 429, 0 dead letters" % statuses.count(429))


if __name__ == "__main__":
    unittest.main()
