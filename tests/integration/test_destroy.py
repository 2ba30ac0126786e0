"""The destroy consumer end to end: the real thopter-consumer binary,
thopter-devbroker (Kafka over TCP), and the fake fly Machines API."""
import json
import signal
import time
import unittest

from thopter_harness import TOKEN, ConsumerTestCase, headers_dict, machine_id, tmo, wait_until

DESTROY = "thopter.destroy"
DLQ = "thopter.dlq"
EVENTS = "thopter.events"
GROUP = "thopter-destroyer"
DLQ_HEADERS = ["thopter.dlq.topic", "thopter.dlq.partition", "thopter.dlq.offset", "thopter.dlq.timestamp",
               "thopter.dlq.group", "thopter.dlq.error.class", "thopter.dlq.error.message",
               "thopter.dlq.error.step", "thopter.dlq.attempts", "thopter.dlq.failed_at"]


class DestroyTestCase(ConsumerTestCase):
    def destroy(self, thopter_id, **fields):
        req = {"thopterId": thopter_id}
        req.update(fields)
        self.kafka.produce(DESTROY, req, key=thopter_id)

    def wait_committed_to_end(self, group=GROUP, topic=DESTROY, timeout=30):
        ends = self.kafka.end_offsets(topic)
        wait_until(lambda: all(self.kafka.committed(group, topic).get(p, -1) >= e
                               for p, e in ends.items() if e > 0),
                   timeout=timeout, interval=0.3, what="committed offsets to reach %r" % ends)
        return ends

    def events(self):
        return self.kafka.read_json(EVENTS)

    def dead_letters(self):
        return self.kafka.read_all(DLQ)


class TestBulkDestroy(DestroyTestCase):
    def test_hundred_destroys_five_in_flight_committed_and_not_repeated(self):
        self.fly.config(latency_ms=30)
        ids = self.seed(100)
        for i in ids:
            self.destroy(i, reason="bulk test")
        self.kafka.flush()

        c = self.start_consumer()
        t0 = time.monotonic()
        wait_until(lambda: self.gone(ids), timeout=90, interval=0.2, what="all 100 machines destroyed")
        elapsed = time.monotonic() - t0
        ends = self.wait_committed_to_end()
        self.assertEqual(sum(ends.values()), 100)

        stats = self.fly.stats()
        deletes = [x for x in self.fly.calls(route="machines.delete")]
        self.assertEqual(len({x["machine"] for x in deletes}), 100)
        self.assertLessEqual(stats["max_in_flight_by_route"]["machines.delete"], 5)
        self.assertEqual(stats["max_in_flight"], 5, "five destroys should run at once: %r" % stats)
        self.assertLessEqual(max(stats["max_in_flight_by_machine"].values()), 1)
        for x in deletes:
            self.assertEqual(x["auth"], "FlyV1 " + TOKEN)
            self.assertIn("force", x["query"])

        evs = [e for e in self.events() if e["kind"] == "destroy"]
        completed = {e["thopterId"] for e in evs if e["state"] == "completed"}
        self.assertEqual(completed, set(ids))
        self.assertEqual(self.dead_letters(), [])
        print("\n100 destroys: %.2f s, max in flight %d" % (elapsed, stats["max_in_flight"]))

        self.assertEqual(c.stop(), 0)
        calls_before = len(self.fly.calls())
        # A restarted consumer resumes from the committed offsets: no work twice.
        c2 = self.start_consumer()
        c2.wait_assigned(timeout=30)
        time.sleep(1.0)
        self.assertEqual(len(self.fly.calls()), calls_before, "restart repeated work")
        self.assertEqual(c2.stop(), 0)

    def test_two_requests_for_one_machine_never_run_at_once(self):
        self.fly.config(latency_ms=80)
        ids = self.seed(3)
        for _ in range(4):
            for i in ids:
                self.destroy(i)
        self.kafka.flush()
        self.start_consumer()
        wait_until(lambda: self.gone(ids), timeout=40, what="machines destroyed")
        self.wait_committed_to_end()
        self.assertLessEqual(max(self.fly.stats()["max_in_flight_by_machine"].values()), 1)


class TestDeadLetters(DestroyTestCase):
    def test_invalid_and_forbidden_requests_are_dead_lettered_and_the_partition_moves_on(self):
        hub = self.fly.seed_machine(id=machine_id(0xabc), name="hub-1", state="started")
        ok = self.seed(1, start=7)[0]
        key = b"k-fixed"  # one key: everything lands on one partition, in order
        bad = [
            (b"this is not json {", "invalid_request", "parse"),
            (json.dumps({"requestId": "r-no-id", "reason": "x"}).encode(), "invalid_request", "validate"),
            (json.dumps({"thopterId": "NOT-A-MACHINE"}).encode(), "invalid_request", "validate"),
            (json.dumps({"thopterId": hub["id"], "requestId": "kill-hub"}).encode(), "forbidden_target",
             "guard"),
        ]
        self.kafka.produce(DESTROY, bad[0][0], key=key, headers=[("origin", b"test")])
        for value, _, _ in bad[1:]:
            self.kafka.produce(DESTROY, value, key=key)
        self.kafka.produce(DESTROY, {"thopterId": ok}, key=key)
        self.kafka.flush()

        self.start_consumer()
        wait_until(lambda: self.gone([ok]), timeout=40, what="the valid request after the bad ones")
        self.wait_committed_to_end()
        dls = self.dead_letters()
        self.assertEqual(len(dls), 4)
        for m, (value, cls, step) in zip(sorted(dls, key=lambda m: int(headers_dict(m)["thopter.dlq.offset"])),
                                         bad):
            h = headers_dict(m)
            self.assertEqual(m.key(), key)
            self.assertEqual(m.value(), value, "the original bytes")
            for name in DLQ_HEADERS:
                self.assertIn(name, h)
            self.assertEqual(h["thopter.dlq.topic"], DESTROY)
            self.assertEqual(h["thopter.dlq.group"], GROUP)
            self.assertEqual(h["thopter.dlq.error.class"], cls)
            self.assertEqual(h["thopter.dlq.error.step"], step)
            self.assertEqual(h["thopter.dlq.attempts"], "1")
            self.assertRegex(h["thopter.dlq.failed_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertTrue(int(h["thopter.dlq.timestamp"]) > 0)
            self.assertNotIn(TOKEN, h["thopter.dlq.error.message"])
        first = [m for m in dls if m.value() == bad[0][0]][0]
        self.assertEqual(headers_dict(first)["origin"], "test", "original headers are kept")
        # The hub machine was looked at, never stopped or deleted.
        touched = [x["route"] for x in self.fly.calls() if x["machine"] == hub["id"]]
        self.assertEqual(touched, ["machines.get"])
        # One failed event per invalid record, named as the contract says.
        failed = [e for e in self.events() if e["state"] == "failed"]
        self.assertEqual(len(failed), 4)
        self.assertIn("kill-hub", {e["requestId"] for e in failed})
        self.assertTrue(any(e["requestId"].startswith(DESTROY + "-") for e in failed))


class TestDeadLetterEdgeCases(DestroyTestCase):
    def test_a_record_too_big_for_the_dead_letter_topic_is_sent_reduced(self):
        ids = self.seed(3, start=0xa00)
        key = ids[0].encode()
        # Not JSON -> invalid_request; with its dead-letter headers it is over
        # the producer's message.max.bytes (1,000,000).
        self.kafka.produce(DESTROY, b"x" * 999850, key=key)
        for i in ids:
            self.kafka.produce(DESTROY, {"thopterId": i}, key=key)
        self.kafka.flush()
        self.start_consumer()
        wait_until(lambda: self.gone(ids), timeout=30, what="the destroys behind the big record")
        self.wait_committed_to_end(timeout=30)
        dls = self.dead_letters()
        self.assertEqual(len(dls), 1)
        h = headers_dict(dls[0])
        self.assertEqual(h["thopter.dlq.truncated"], "999850")
        self.assertEqual(h["thopter.dlq.error.class"], "invalid_request")
        self.assertEqual(dls[0].value(), b"x" * 65536)
        self.assertEqual(dls[0].key(), key)


class TestFlyFaults(DestroyTestCase):
    def test_gone_machine_retries_and_a_machine_that_never_deletes(self):
        gone = machine_id(0x404)  # never existed: GET answers 404
        flaky, stuck, later = self.seed(3, start=0x500)
        self.fly.push_fault(method="DELETE", route="machines.delete", machine=flaky, status=503, count=2)
        self.fly.push_fault(method="DELETE", route="machines.delete", machine=stuck, status=503, count=-1)
        for i in (gone, flaky, stuck):
            self.destroy(i)
        self.kafka.flush()
        self.start_consumer(env={"THOPTER_FLY_RETRIES": "4"})
        wait_until(lambda: self.gone([flaky]), timeout=30, what="flaky machine destroyed after retries")
        wait_until(lambda: len(self.dead_letters()) == 1, timeout=30, what="the stuck machine's dead letter")
        self.destroy(later)
        self.kafka.flush()
        wait_until(lambda: self.gone([later]), timeout=30, what="a later request still completes")
        self.wait_committed_to_end()

        dl = self.dead_letters()[0]
        h = headers_dict(dl)
        self.assertEqual(json.loads(dl.value())["thopterId"], stuck)
        self.assertEqual(h["thopter.dlq.error.class"], "fly_unavailable")
        self.assertEqual(h["thopter.dlq.error.step"], "delete")
        self.assertEqual(h["thopter.dlq.attempts"], "4")
        evs = self.events()
        done = {e["thopterId"]: e for e in evs if e["state"] == "completed"}
        self.assertIn(gone, done)
        self.assertIn(flaky, done)
        self.assertTrue(any(e["state"] == "retrying" and e.get("thopterId") == flaky for e in evs))
        flaky_deletes = [x["status"] for x in self.fly.calls(route="machines.delete") if x["machine"] == flaky]
        self.assertEqual(flaky_deletes, [503, 503, 200])

    def test_fly_outage_waits_in_kafka_not_in_the_dead_letter_topic(self):
        ids = self.seed(20, start=0x600)
        self.fly.config(latency_ms=20)
        c = self.start_consumer()
        c.wait_assigned()
        self.fly.outage(status=503)
        for i in ids:
            self.destroy(i)
        self.kafka.flush()
        c.wait_log(r"circuit open", timeout=30)
        time.sleep(2.0)  # the outage lasts: several probes fail
        self.assertEqual(self.dead_letters(), [])
        self.fly.outage_end()
        wait_until(lambda: self.gone(ids), timeout=60, what="every machine destroyed after the outage")
        self.wait_committed_to_end()
        self.assertEqual(self.dead_letters(), [])
        evs = self.events()
        self.assertTrue(any(e["state"] == "waiting_fly" for e in evs), "a waiting_fly event")
        self.assertEqual({e["thopterId"] for e in evs if e["state"] == "completed"}, set(ids))


class TestGracefulStop(DestroyTestCase):
    def test_a_call_that_outlives_the_drain_deadline_ends_the_process_cleanly(self):
        ids = self.seed(1, start=0x900)
        self.fly.push_fault(method="DELETE", route="machines.delete", delay_ms=12000, count=1)
        self.destroy(ids[0])
        self.kafka.flush()
        c = self.start_consumer(env={"THOPTER_DRAIN_TIMEOUT": "1", "THOPTER_FLY_TIMEOUT": "30"})
        wait_until(lambda: self.fly.calls(route="machines.delete"), timeout=40, what="the delete under way")
        t0 = time.monotonic()
        c.signal(signal.SIGTERM)
        rc = c.wait()
        self.assertEqual(rc, 1, "the drain deadline passed: not a graceful stop")
        self.assertLess(time.monotonic() - t0, tmo(10), "it did not wait for the hung call")
        c.check_clean()
        self.assertEqual(sum(max(o, 0) for o in self.kafka.committed(GROUP, DESTROY).values()), 0,
                         "the unfinished destroy must not be committed")
        # Not committed, so the next consumer destroys it.
        self.fly.clear_faults()
        self.start_consumer()
        wait_until(lambda: self.gone(ids), timeout=40, what="the destroy redone after restart")

    def test_sigterm_finishes_in_flight_work_commits_and_exits_zero(self):
        self.fly.config(latency_ms=150)
        ids = self.seed(40, start=0x700)
        for i in ids:
            self.destroy(i)
        self.kafka.flush()
        c = self.start_consumer()
        wait_until(lambda: len(self.fly.calls(route="machines.delete")) >= 8, timeout=40,
                   what="the burst under way")
        t0 = time.monotonic()
        c.signal(signal.SIGTERM)
        self.assertEqual(c.wait(), 0)
        stop_secs = time.monotonic() - t0
        self.assertLess(stop_secs, tmo(20) + 5, "exit within the drain deadline")
        deleted = {x["machine"] for x in self.fly.calls(route="machines.delete") if x["status"] == 200}
        committed = sum(max(o, 0) for o in self.kafka.committed(GROUP, DESTROY).values())
        # Every started delete finished (no machine left half-done) and was committed.
        self.assertEqual(self.fly.stats()["in_flight"], 0)
        self.assertGreaterEqual(committed, 1)
        self.assertLessEqual(committed, len(deleted))
        # The rest is done by the next consumer, nothing lost.
        self.start_consumer()
        wait_until(lambda: self.gone(ids), timeout=60, what="the rest destroyed after restart")
        self.wait_committed_to_end()
        print("\nSIGTERM drain: exit 0 after %.2f s" % stop_secs)


if __name__ == "__main__":
    unittest.main()
