"""Short versions of the reliability scenarios (tests/reliability/reliability.py runs the
long ones and writes docs/RELIABILITY.md). Each scenario returns a result whose
"failures" lists every guarantee of docs/CONTRACT.md section 5 that did not hold.

Real binaries (thopter-consumer, thopter-devbroker), the fake fly API and real sshd;
needs root like the integration tests. About 4.5 minutes in all on 2 cores (dev build), 95 s of it the
parallel provision crash test.
"""
import os
import subprocess
import time
import unittest

import reliability
from thopter_harness import binary


class ReliabilityTestCase(unittest.TestCase):
    def assertHeld(self, res):
        print("\n%s: %s in %.1f s\n  outcome: %s\n  repeats: %s" % (
            res["scenario"], "pass" if not res["failures"] else "FAIL", res["seconds"], res["outcome"],
            res["repeats"]))
        self.assertEqual(res["failures"], [], res)
        self.assertEqual(res["lost"], 0, res)
        self.assertGreater(res["times"], 0, res)


class TestCrashes(ReliabilityTestCase):
    def test_destroy_consumer_sigkilled_during_bursts_loses_nothing(self):
        """Guarantee 1: every machine destroyed, 0 dead letters, offsets at the end."""
        res = reliability.scenario_crash_destroy(rounds=2, n=150, latency_ms=20)
        self.assertHeld(res)
        self.assertEqual(res["figures"]["dead_letters"], 0)

    def test_provision_consumer_sigkilled_at_capacity_volume_golden_claude(self):
        """Guarantee 3: one machine per request, provisioned (agent launched) once."""
        self.assertHeld(reliability.scenario_crash_provision(rounds=1))

    @unittest.skipUnless(os.geteuid() == 0, "needs root (sshd, useradd, mount namespaces)")
    def test_provision_consumer_sigkilled_with_three_in_flight_at_every_step(self):
        """Guarantee 3 with MAX_CONCURRENT_PROVISIONS=3: for every request in flight at a kill,
        one machine and one create, the agent launched once, no orphan machine or volume."""
        res = reliability.scenario_crash_provision_parallel(rounds=1, concurrency=3)
        self.assertHeld(res)
        f = res["figures"]
        self.assertEqual((f["orphans"], f["unattached_volumes"], f["dead_letters"]), (0, 0, 0), res)
        self.assertGreaterEqual(f["kills"], len(reliability.PARALLEL_CRASH_STEPS)
                                - len(reliability.OPTIONAL_CRASH_STEPS), res)


class TestBrokerFaults(ReliabilityTestCase):
    def test_commit_errors_coordinator_moves_and_brokers_down(self):
        """Guarantee 1: nothing lost; no committed offset ever passes unfinished work."""
        res = reliability.scenario_broker_faults(rounds=1, per_wave=40, latency_ms=60, long_outage_s=0)
        self.assertHeld(res)
        self.assertEqual(res["figures"]["violations"], 0)

    # Contract section 3: a valid request's last event is completed/failed. The
    # record is committed only once its final event is acknowledged, so a stop
    # while the events topic is unreachable leaves it uncommitted and a restart
    # sends the events again.
    def test_final_event_survives_a_stop_while_the_events_leader_is_down(self):
        res = reliability.scenario_event_lost_after_commit(wait_s=6)
        print("\n%s: %s" % (res["scenario"], res["outcome"]))
        self.assertEqual(res["failures"], [], res)

    def test_devbroker_control_protocol(self):
        p = subprocess.Popen([binary("thopter-devbroker"), "--brokers", "3"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.assertTrue(p.stdout.readline().startswith("bootstrap.servers="))
        # Two commands in one write, one split across writes.
        p.stdin.write("err 8 2 27\ncoordinator g 2\nrtt 2 ")
        p.stdin.flush()
        time.sleep(0.3)
        p.stdin.write("50\ndown 3\nup 3\ndown\nup\nbogus\ndown 7\n")
        p.stdin.close()
        self.assertEqual(p.wait(10), 0)
        err = p.stderr.read()
        p.stdout.close()
        p.stderr.close()
        for line in ["ok: err apikey 8 x2 code 27 (REBALANCE_IN_PROGRESS)", "ok: coordinator g 2",
                     "ok: rtt 2 50", "ok: broker 3 down", "ok: broker 3 up", "brokers down", "brokers up",
                     'error: unknown command "bogus"', 'error: down: no broker "7"']:
            self.assertIn(line, err)


class TestScaleOut(ReliabilityTestCase):
    def test_two_consumers_share_partitions_and_one_dies(self):
        res = reliability.scenario_scale_out(rounds=1, n=150)
        self.assertHeld(res)


class TestFlyFaults(ReliabilityTestCase):
    def test_storms_bursts_slow_answers_resets_and_hopeless_machines(self):
        """Guarantees 2 and 5: retries within budget, fly_unavailable after it, limits kept."""
        res = reliability.scenario_fly_faults(rounds=1, plain=20)
        self.assertHeld(res)
        self.assertLessEqual(res["figures"]["max_in_flight"], 5)
        self.assertLessEqual(res["figures"]["max_in_flight_per_machine"], 1)


@unittest.skipUnless(os.geteuid() == 0, "needs root (sshd, useradd)")
class TestSshFaults(ReliabilityTestCase):
    def test_host_key_mismatch_and_sshd_killed_at_git(self):
        """Guarantees 6 and 10: refused before any command; a failure destroys the machine."""
        res = reliability.scenario_ssh_faults(rounds=1, restart_variant=False)
        self.assertHeld(res)


if __name__ == "__main__":
    unittest.main()
