"""The provision consumer end to end: the real thopter-consumer binary,
thopter-devbroker, the fake fly Machines API, real sshd processes standing in
for the thopter and the Golden Claude, a real tmux session, a local git repo."""
import glob
import json
import os
import signal
import subprocess
import time
import unittest

from flyfake import FlyFake
from provision_harness import PAT, ThopterHosts
from thopter_harness import Devbroker, Kafka, ThopterConsumer, TOKEN, headers_dict, tmo, wait_until

PROVISION = "thopter.provision"
STEPS = ["capacity", "volume", "create", "wait", "golden_claude", "git", "context_files", "launch"]


def hub_request(request_id, issue="42", **over):
    """What the hub's JSON.stringify(ProvisionRequest) looks like."""
    req = {
        "requestId": request_id,
        "source": "github",
        "createdAt": "2026-11-27T10:00:00.000Z",
        "status": "pending",
        "repository": "acme/widgets",
        "gc": "default",
        "prompt": "default",
        "github": {
            "repository": "acme/widgets",
            "issueNumber": issue,
            "issueTitle": "Make the widgets spin",
            "issueBody": "They should spin clockwise.\n\n/thopter",
            "issueUrl": "https://github.com/acme/widgets/issues/" + issue,
            "issueAuthor": "alice",
            "mentionAuthor": "alice",
            "mentionLocation": "body",
            "comments": [{"id": 1, "author": "bob", "body": "Counter-clockwise, surely?",
                          "createdAt": "2026-11-27T10:01:00Z", "updatedAt": "2026-11-27T10:01:00Z",
                          "url": "https://github.com/acme/widgets/issues/42#issuecomment-1"}],
            "labels": ["enhancement"],
        },
    }
    req.update(over)
    return req


class ProvisionTestCase(unittest.TestCase):
    def setUp(self):
        self.hosts = ThopterHosts()
        self.addCleanup(self.hosts.close)
        self.broker = Devbroker()
        self.addCleanup(self.broker.stop)
        self.fly = FlyFake()
        self.fly.start(token=TOKEN, **self.hosts.fly_config())
        self.addCleanup(self.fly.stop)
        self.kafka = Kafka(self.broker.bootstrap)
        self.addCleanup(self.kafka.close)
        self.consumers = []
        self.gc = self.fly.seed_machine(name="gc-default", state="started")

    def tearDown(self):
        for c in self.consumers:
            c.close()

    def start_consumer(self, role="provision", env=None):
        e = self.hosts.env()
        e.update(env or {})
        c = ThopterConsumer(self.broker.bootstrap, self.fly.base_url, role=role, env=e)
        self.consumers.append(c)
        return c

    def provision(self, req):
        self.kafka.produce(PROVISION, req, key=req["requestId"])
        self.kafka.flush()

    def events(self, request_id):
        return [e for e in self.kafka.read_json("thopter.events") if e["requestId"] == request_id]

    def final(self, request_id, timeout=60):
        return wait_until(lambda: [e for e in self.events(request_id) if e["state"] in ("completed", "failed")],
                          timeout=timeout, interval=0.3, what="request %s to finish" % request_id)

    def thopters(self, include_gone=True):
        return [m for m in self.fly.machines() if m["name"].startswith("thopter-")
                and (include_gone or m["state"] not in ("destroyed", "destroying"))]

    def home(self, *parts):
        return os.path.join(self.hosts.home, *parts)

    def read(self, *parts):
        with open(self.home(*parts)) as f:
            return f.read()


class TestProvisionFlow(ProvisionTestCase):
    def test_hub_request_makes_one_set_up_machine_and_a_redelivery_is_a_no_op(self):
        self.start_consumer()
        req = hub_request("prov-1")
        self.provision(req)
        final = self.final("prov-1")
        self.assertEqual(final[-1]["state"], "completed", final)

        # One machine with the right config and metadata.
        machines = self.thopters()
        self.assertEqual(len(machines), 1)
        m = machines[0]
        self.assertRegex(m["name"], r"^thopter-42-[a-z0-9]{6}$")
        cfg = m["config"]
        self.assertEqual(cfg["metadata"]["thopter_request_id"], "prov-1")
        self.assertEqual(cfg["metadata"]["thopter_role"], "agent")
        self.assertEqual(cfg["image"], "registry.fly.io/thopters:thopter-test")
        self.assertEqual(cfg["guest"], {"cpu_kind": "shared", "cpus": 1, "memory_mb": 256})
        self.assertEqual(cfg["mounts"][0]["path"], "/data")
        self.assertEqual(cfg["env"]["REPOSITORY"], "acme/widgets")
        self.assertEqual(cfg["env"]["ISSUE_NUMBER"], "42")
        self.assertEqual(m["region"], "ord")
        vols = self.fly.volumes()
        self.assertEqual([v["name"] for v in vols], ["thopter_data"])
        creates = self.fly.calls(route="machines.create")
        self.assertEqual(len(creates), 1)
        self.assertEqual(creates[0]["auth"], "FlyV1 " + TOKEN)

        # The three context files.
        issue_md = self.read("workspace", "issue.md")
        self.assertIn("Make the widgets spin", issue_md)
        self.assertIn("They should spin clockwise.", issue_md)
        self.assertIn("Counter-clockwise, surely?", issue_md)
        branch = "thopter/42--" + m["id"]
        prompt = self.read("workspace", "prompt.md")
        self.assertIn(branch, prompt)
        self.assertIn("acme/widgets", prompt)
        self.assertNotIn("{{", prompt)
        issue = json.loads(self.read("workspace", "issue.json"))
        self.assertEqual(issue["repository"], "acme/widgets")
        self.assertEqual(issue["workBranch"], branch)
        self.assertEqual(issue["github"]["issueNumber"], "42")

        # Cloned, with no token anywhere on the machine or in .git/config.
        self.assertTrue(os.path.isdir(self.home("workspace", "widgets", ".git")))
        self.assertNotIn(PAT, self.read("workspace", "widgets", ".git", "config"))
        for path in glob.glob(self.home("**"), recursive=True):
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    self.assertNotIn(PAT.encode(), f.read(), path)
        self.assertIn("Thopter Bot", self.read(".gitconfig"))

        # The Golden Claude copy, minus .bashrc and session logs.
        self.assertEqual(self.read(".claude", "credentials.json"), '{"token":"claude-login"}\n')
        self.assertTrue(os.path.exists(self.home(".claude.json")))
        self.assertFalse(os.path.exists(self.home(".bashrc")))
        self.assertFalse(os.path.exists(self.home(".claude", "projects")))

        # The agent was typed into tmux once; the provisioner logged on the machine.
        wait_until(lambda: self.hosts.agent_runs() == 1, timeout=10, what="the agent command to run in tmux")
        with open(self.hosts.log) as f:
            self.assertIn("[PROVISIONER]", f.read())

        # Events in order, offset committed, one SSH login per machine.
        states = [(e["state"], e.get("step")) for e in self.events("prov-1")]
        self.assertEqual(states[0], ("started", None))
        self.assertEqual([s for st, s in states if st == "step"], STEPS)
        self.assertEqual(states[-1][0], "completed")
        self.assertEqual(final[-1]["thopterId"], m["id"])
        wait_until(lambda: self.kafka.committed("thopter-provisioner", PROVISION)[0] == 1, timeout=10,
                   what="the offset commit")
        self.assertEqual(self.hosts.accepted_logins("thopter"), 1)
        self.assertEqual(self.hosts.accepted_logins("gc"), 1)

        # Redelivered: started + completed again, same machine, nothing typed again.
        creates_before = len(self.fly.calls(route="machines.create"))
        self.provision(req)
        wait_until(lambda: len([e for e in self.events("prov-1") if e["state"] == "completed"]) == 2,
                   timeout=30, what="the redelivery to complete")
        again = [e for e in self.events("prov-1") if e["state"] == "completed"][-1]
        self.assertEqual(again["thopterId"], m["id"])
        self.assertEqual(len(self.fly.calls(route="machines.create")), creates_before)
        self.assertEqual(len(self.thopters()), 1)
        time.sleep(0.5)
        self.assertEqual(self.hosts.agent_runs(), 1)


class TestRedeliveryMarker(ProvisionTestCase):
    def test_another_requests_done_marker_is_not_taken_for_ours(self):
        self.start_consumer()
        self.provision(hub_request("prov-10"))
        self.assertEqual(self.final("prov-10")[-1]["state"], "completed")
        self.assertEqual(self.read(".thopter-provisioned"), "prov-10\n")
        # A machine made for prov-1 by an attempt that died before launch,
        # on a reused volume that still has prov-10's marker.
        self.fly.seed_machine(name="thopter-43-abcdef", state="started",
                              metadata={"thopter_request_id": "prov-1", "thopter_role": "agent"})
        self.provision(hub_request("prov-1", issue="43"))
        self.assertEqual(self.final("prov-1")[-1]["state"], "completed")
        wait_until(lambda: self.hosts.agent_runs() == 2, timeout=10, what="prov-1's agent launched")
        self.assertEqual(self.read(".thopter-provisioned"), "prov-1\n")


class TestProvisionFailures(ProvisionTestCase):
    def dead_letter(self, request_id):
        return wait_until(lambda: [m for m in self.kafka.read_all("thopter.dlq")
                                   if json.loads(m.value()).get("requestId") == request_id],
                          timeout=60, interval=0.3, what="dead letter of " + request_id)[0]

    def test_unknown_repository_creates_nothing(self):
        self.start_consumer()
        self.provision(hub_request("prov-unknown", repository="acme/secret"))
        h = headers_dict(self.dead_letter("prov-unknown"))
        self.assertEqual(h["thopter.dlq.error.class"], "unknown_repository")
        self.assertEqual(self.fly.calls(route="machines.create"), [])

    def test_clone_failure_destroys_the_machine(self):
        self.start_consumer(env={"THOPTER_GIT_URL": "file:///nonexistent/{repository}.git"})
        self.provision(hub_request("prov-noclone"))
        h = headers_dict(self.dead_letter("prov-noclone"))
        self.assertEqual(h["thopter.dlq.error.class"], "ssh")
        self.assertEqual(h["thopter.dlq.error.step"], "git")
        self.assertNotIn(PAT, h["thopter.dlq.error.message"])
        wait_until(lambda: all(m["state"] in ("destroying", "destroyed") or m.get("gone")
                               for m in self.thopters()), timeout=10, what="the failed machine destroyed")
        self.assertEqual(len(self.thopters()), 1)
        self.assertEqual(self.hosts.agent_runs(), 0)

    def test_create_rejected_is_fly_rejected(self):
        self.fly.push_fault(method="POST", route="machines.create", status=422, count=-1,
                            body={"error": "invalid config: image not found"})
        self.start_consumer()
        self.provision(hub_request("prov-422"))
        h = headers_dict(self.dead_letter("prov-422"))
        self.assertEqual(h["thopter.dlq.error.class"], "fly_rejected")
        self.assertEqual(h["thopter.dlq.error.step"], "create")
        self.assertEqual(self.thopters(), [])

    def test_sshd_down_times_out_and_destroys_the_machine(self):
        self.hosts.thopter.stop()
        self.start_consumer(env={"THOPTER_READY_TIMEOUT": "3"})
        self.provision(hub_request("prov-nossh"))
        h = headers_dict(self.dead_letter("prov-nossh"))
        self.assertEqual(h["thopter.dlq.error.class"], "timeout")
        self.assertEqual(h["thopter.dlq.error.step"], "wait")
        wait_until(lambda: all(m["state"] in ("destroying", "destroyed") or m.get("gone")
                               for m in self.thopters()), timeout=10, what="the failed machine destroyed")

    def test_capacity_full_waits_then_proceeds_after_a_destroy(self):
        busy = self.fly.seed_machine(id="00000000000bb1", name="thopter-1-busy000", state="started")
        c = self.start_consumer(role="all", env={"MAX_THOPTERS": "1"})
        self.provision(hub_request("prov-cap"))
        wait_until(lambda: any(e["state"] == "waiting_capacity" for e in self.events("prov-cap")), timeout=30,
                   what="waiting_capacity")
        time.sleep(2)
        self.assertEqual(self.fly.calls(route="machines.create"), [])
        self.assertEqual(len([e for e in self.events("prov-cap") if e["state"] == "waiting_capacity"]), 1)
        c.wait_log(r'"msg":"at capacity')
        self.kafka.produce("thopter.destroy", {"thopterId": busy["id"]}, key=busy["id"])
        self.kafka.flush()
        final = self.final("prov-cap", timeout=90)
        self.assertEqual(final[-1]["state"], "completed")


class TestSshDrop(ProvisionTestCase):
    def test_a_dropped_connection_is_reopened_and_the_step_retried(self):
        c = self.start_consumer()
        self.provision(hub_request("prov-drop"))
        c.wait_log(r'"requestId":"prov-drop","msg":"step golden_claude"', timeout=60)
        # sshd restarts under the provisioner's feet and its session process
        # dies: the connection drops.
        listener = self.hosts.thopter.proc.pid
        sessions = subprocess.run(["pgrep", "-P", str(listener)], capture_output=True, text=True).stdout.split()
        self.assertTrue(sessions, "the provisioner's ssh session")
        for pid in sessions:
            os.kill(int(pid), signal.SIGKILL)
        self.hosts.thopter.stop(remove_dir=False)
        self.hosts.thopter.proc = None
        self.hosts.thopter.start_fixed()
        final = self.final("prov-drop")
        self.assertEqual(final[-1]["state"], "completed", final)
        self.assertEqual(self.hosts.agent_runs(), 1)
        self.assertTrue(os.path.isdir(self.home("workspace", "widgets", ".git")))
        self.assertGreaterEqual(self.hosts.accepted_logins("thopter"), 2, "a second connection was made")


class TestHostileInput(ProvisionTestCase):
    def test_shell_metacharacters_are_rejected_or_carried_harmlessly(self):
        pwned = os.path.join(self.hosts.dir, "pwned")
        evil = "$(touch %s) `touch %s` '; touch %s; ' \"\n../../etc" % (pwned, pwned, pwned)
        self.start_consumer()
        self.provision(hub_request("bad-repo", repository="acme/../etc"))
        self.provision(hub_request("bad-gc", gc="$(touch %s)" % pwned))
        req = hub_request("evil-ok")
        req["github"]["issueTitle"] = evil
        req["github"]["issueBody"] = evil
        req["github"]["issueAuthor"] = evil
        self.provision(req)
        final = self.final("evil-ok")
        self.assertEqual(final[-1]["state"], "completed")
        dls = {json.loads(m.value()).get("requestId"): headers_dict(m) for m in self.kafka.read_all("thopter.dlq")}
        self.assertEqual(dls["bad-repo"]["thopter.dlq.error.class"], "invalid_request")
        self.assertEqual(dls["bad-gc"]["thopter.dlq.error.class"], "invalid_request")
        self.assertIn(evil, self.read("workspace", "issue.md"))
        self.assertEqual(json.loads(self.read("workspace", "issue.json"))["github"]["issueTitle"], evil)
        time.sleep(0.5)
        self.assertFalse(os.path.exists(pwned), "a request field ran as a command")


class TestCrashRecovery(ProvisionTestCase):
    def test_sigkill_at_each_step_then_restart_makes_one_machine_provisioned_once(self):
        for n, step in enumerate(["create", "wait", "git", "context_files", "launch"]):
            rid = "crash-%d" % n
            c = self.start_consumer(env={"THOPTER_REMOTE_HOME": self.hosts.home})
            self.provision(hub_request(rid, issue=str(100 + n)))
            c.wait_log(r'"requestId":"%s","msg":"step %s"' % (rid, step), timeout=60)
            c.kill()
            c2 = self.start_consumer()
            final = self.final(rid, timeout=90)
            self.assertEqual(final[-1]["state"], "completed", (step, final))
            mine = [m for m in self.thopters() if m["config"]["metadata"]["thopter_request_id"] == rid]
            self.assertEqual(len(mine), 1, "killed at %s: %r" % (step, mine))
            self.assertEqual(c2.stop(), 0)
            # Each round launches the agent once more on the shared home.
            self.assertEqual(self.hosts.agent_runs(), n + 1, "killed at " + step)


if __name__ == "__main__":
    unittest.main()
