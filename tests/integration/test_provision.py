"""The provision consumer end to end, against the real thing wherever it runs here:
the real thopter-consumer binary and thopter-devbroker; the fake fly Machines API,
which writes each machine's config.files; simulated thopter machines
(tests/harness/thopter_machine.py) that boot the REAL start hook of
deploy/thopter-image with a copy of the original image's init, so sshd answers
only with the host key the consumer gave that machine (contract 5.13) and only
once the init's /data wipe is over and tmux is up; a Golden Claude machine with a
fixed key from THOPTER_SSH_KNOWN_HOSTS; and git's own smart-HTTP server with
basic auth for the clone and the agent's push."""
import base64
import collections
import json
import os
import re
import shutil
import tempfile
import time
import unittest

from flyfake import FlyFake
from git_http_server import GitHttpServer
from provision_harness import PAT
from thopter_harness import start_broker, Kafka, ThopterConsumer, TOKEN, headers_dict, wait_until
from thopter_machine import MachineBooter, SimMachine, keygen

PROVISION = "thopter.provision"
STEPS = ["capacity", "volume", "create", "wait", "golden_claude", "git", "context_files", "launch"]
HOME = "/data/thopter"
AGENT_MARK = HOME + "/agent-ran"
# What is typed into tmux for most tests: leaves a mark, as an agent would run.
AGENT = "echo agent-started >> " + AGENT_MARK
# An agent that does what the prompt asks: commit on its work branch and push it,
# with nothing but what the machine gives it (the credential helper and the
# environment).
PUSHING_AGENT = (
    "echo agent-started >> {mark}; cd widgets && "
    "b=$(python3 -c 'import json; print(json.load(open(\"../issue.json\"))[\"workBranch\"])') && "
    "git checkout -q -b \"$b\" && echo spinning > SPIN.md && git add SPIN.md && "
    "git commit -q -m 'Make the widgets spin' && git push -q origin \"$b\" > {home}/push.log 2>&1; "
    "echo pushed:$? >> {mark}").format(mark=AGENT_MARK, home=HOME)


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
    def machine_binds(self):
        """[(host path, guest path)] bind-mounted into every machine (a subclass's hostile tools)."""
        return []

    def setUp(self):
        self.broker = start_broker()
        self.addCleanup(self.broker.stop)
        self.fly = FlyFake()
        self.booter = MachineBooter(self.fly, binds=self.machine_binds())
        self.fly.start(token=TOKEN, **self.booter.fly_config())
        self.addCleanup(self.fly.stop)
        self.booter.start()
        self.addCleanup(self.booter.close)
        self.git = GitHttpServer(token=PAT).start()
        self.addCleanup(self.git.stop)
        self.git.create_repo("acme/widgets", {"README.md": "# widgets\n"})
        self.kafka = Kafka(self.broker.bootstrap)
        self.addCleanup(self.kafka.close)
        self.consumers = []
        # The consumer's own files live apart from the booter's, which a test
        # may close to stop every machine.
        self.tmp = tempfile.mkdtemp(prefix="thopter-provision-test.")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.key = os.path.join(self.tmp, "consumer")
        keygen(self.key, comment="thopter-consumer")
        # The Golden Claude: a fixed host key the operator put in known_hosts.
        self.gc = self.booter.seed_golden_claude(authorized_key=self.key + ".pub")
        self.gc.write(HOME + "/.claude/credentials.json", '{"token":"claude-login"}\n')
        self.gc.write(HOME + "/.claude.json", '{"onboarded":true}\n')
        self.gc.write(HOME + "/.claude/projects/old-session/log.jsonl", "{}\n")
        self.gc.write(HOME + "/.bashrc", "# the GC's own bashrc, not to be copied\n")
        self.known_hosts = os.path.join(self.tmp, "known_hosts")
        with open(self.known_hosts, "w") as f:
            f.write(self.gc.known_hosts_line + "\n")
        self.local = os.path.join(self.tmp, "local")
        os.makedirs(self.local)

    def tearDown(self):
        if self._failed():
            for c in self.consumers:  # the consumer's own account, before its log is removed
                print("\n--- thopter-consumer log (last 60 lines) of the failed %s:\n%s" % (
                    self.id(), "\n".join(c.log_text().splitlines()[-60:])), flush=True)
        for c in self.consumers:
            c.close()
        self.assertEqual(self.booter.errors, [])

    def _failed(self):
        result = getattr(self, "_outcome", None) and self._outcome.result
        return bool(result) and any(t is self for t, _ in result.failures + result.errors)

    def env(self, **over):
        e = dict(self.booter.consumer_env())
        e.update({
            "REGION": "ord",
            "THOPTER_IMAGE": "registry.fly.io/thopters:thopter-test",
            "GITHUB_INTEGRATION_JSON": json.dumps({"repositories": {"acme/widgets": {
                "agentCoderPAT": PAT, "issuesPAT": "ghp_issues-secret-000000", "userName": "Thopter Bot",
                "userEmail": "bot@example.com"}}}),
            "THOPTER_SSH_KEY": self.key,
            "THOPTER_SSH_KNOWN_HOSTS": self.known_hosts,
            "THOPTER_GIT_URL": self.git.base_url + "/{repository}.git",
            "THOPTER_AGENT_COMMAND": AGENT,
            "THOPTER_READY_TIMEOUT": "30",
        })
        e.update(over)
        return e

    def start_consumer(self, role="provision", env=None):
        c = ThopterConsumer(self.broker.bootstrap, self.fly.base_url, role=role, env=self.env(**(env or {})))
        self.consumers.append(c)
        return c

    def provision(self, req):
        self.kafka.produce(PROVISION, req, key=req["requestId"])
        self.kafka.flush()

    def events(self, request_id):
        return [e for e in self.kafka.read_json("thopter.events") if e["requestId"] == request_id]

    def final(self, request_id, timeout=90):
        return wait_until(lambda: [e for e in self.events(request_id) if e["state"] in ("completed", "failed")],
                          timeout=timeout, interval=0.3, what="request %s to finish" % request_id)

    def thopters(self):
        return [m for m in self.fly.machines() if m["name"].startswith("thopter-")]

    def machine_of(self, request_id):
        mine = [m for m in self.thopters() if m["config"].get("metadata", {}).get("thopter_request_id") == request_id]
        self.assertEqual(len(mine), 1, mine)
        return mine[0]

    def agent_runs(self, sim):
        try:
            return sim.read(AGENT_MARK).count("agent-started")
        except FileNotFoundError:
            return 0

    def logins(self, sim):
        return sim.console().count("Accepted publickey")

    def dead_letter(self, request_id):
        return wait_until(lambda: [m for m in self.kafka.read_all("thopter.dlq")
                                   if json.loads(m.value()).get("requestId") == request_id],
                          timeout=90, interval=0.3, what="dead letter of " + request_id)[0]

    def wait_gone(self, machine_id):
        wait_until(lambda: any(m["id"] == machine_id and (m["state"] in ("destroying", "destroyed") or m.get("gone"))
                               for m in self.fly.machines()), timeout=30, what="machine %s destroyed" % machine_id)


class TestProvisionFlow(ProvisionTestCase):
    def test_hub_request_makes_one_set_up_thopter_that_pushes_and_a_redelivery_is_a_no_op(self):
        env_file = os.path.join(self.local, "env.thopters")
        with open(env_file, "w") as f:
            f.write("WIDGET_MODE=spin\n")
        post = os.path.join(self.local, "post-checkout.sh")
        with open(post, "w") as f:
            f.write("#!/bin/sh\necho post-checkout ran in $(pwd)\n")
        self.start_consumer(env={"THOPTER_AGENT_COMMAND": PUSHING_AGENT, "THOPTER_ENV_FILE": env_file,
                                 "THOPTER_POST_CHECKOUT_FILE": post})
        req = hub_request("prov-1")
        self.provision(req)
        final = self.final("prov-1")
        self.assertEqual(final[-1]["state"], "completed", final)

        # One machine with the right config, metadata and files.
        m = self.machine_of("prov-1")
        self.assertRegex(m["name"], r"^thopter-42-[a-z0-9]{6}$")
        cfg = m["config"]
        self.assertEqual(cfg["metadata"]["thopter_role"], "agent")
        self.assertEqual(cfg["metadata"]["thopter_provisioned"], "prov-1", "marked done")
        self.assertEqual(cfg["image"], "registry.fly.io/thopters:thopter-test")
        self.assertEqual(cfg["guest"], {"cpu_kind": "shared", "cpus": 1, "memory_mb": 256})
        self.assertEqual(cfg["mounts"][0]["path"], "/data")
        self.assertEqual(cfg["env"]["REPOSITORY"], "acme/widgets")
        self.assertEqual(m["region"], "ord")
        files = set(self.fly.machine_files(m["id"]))
        self.assertEqual(files, {"/etc/thopter/ssh/ssh_host_ed25519_key", "/etc/thopter/ssh/authorized_keys",
                                 "/tmp/.env.thopters", "/tmp/post-checkout.sh"})
        self.assertEqual(len(self.fly.calls(route="machines.create")), 1)

        sim = self.booter.wait_sim(m["id"])
        # The host key the machine got is its own (not in known_hosts: the
        # consumer accepted it because it made it), and the consumer's key is
        # the one machine's sshd allows.
        with open(self.known_hosts) as f:
            self.assertNotIn(sim.host_public_key().split()[1], f.read())
        with open(self.key + ".pub") as f:
            self.assertEqual(sim.read("/etc/thopter/ssh/authorized_keys").split()[:2], f.read().split()[:2])

        # The three context files.
        issue_md = sim.read(HOME + "/workspace/issue.md")
        self.assertIn("Make the widgets spin", issue_md)
        self.assertIn("Counter-clockwise, surely?", issue_md)
        branch = "thopter/42--" + m["id"]
        prompt = sim.read(HOME + "/workspace/prompt.md")
        self.assertIn(branch, prompt)
        self.assertNotIn("{{", prompt)
        issue = json.loads(sim.read(HOME + "/workspace/issue.json"))
        self.assertEqual((issue["repository"], issue["workBranch"]), ("acme/widgets", branch))

        # The developer files where the original's init put them.
        self.assertEqual(sim.read(HOME + "/workspace/.env.thopters"), "WIDGET_MODE=spin\n")
        self.assertIn("post-checkout ran in /data/thopter/workspace/widgets", sim.read("/thopter/log"))

        # The agent ran once, pushed its branch with the token from its
        # environment through the credential helper: the server saw the push
        # authenticated, and has the branch with the agent's commit.
        wait_until(lambda: "pushed:" in (sim.read(AGENT_MARK) if os.path.exists(sim.path(AGENT_MARK)) else ""),
                   timeout=30, what="the agent to push")
        self.assertIn("pushed:0", sim.read(AGENT_MARK), sim.read(HOME + "/push.log"))
        self.assertEqual(self.agent_runs(sim), 1)
        self.assertIn(branch, self.git.branches("acme/widgets"))
        self.assertEqual(self.git.log("acme/widgets", ref=branch)[0], "Make the widgets spin")
        pushes = [r for r in self.git.requests if r["service"] == "git-receive-pack" and r["method"] == "POST"]
        self.assertTrue(pushes and all(r["auth"] == "ok" for r in pushes), pushes)
        self.assertTrue(any(r["service"] == "git-upload-pack" and r["auth"] == "ok" for r in self.git.requests))

        # The token is nowhere on the machine's disk: not in .git/config, not in
        # ~/.gitconfig (which has the helper and the identity), not in any file.
        gitconfig = sim.read(HOME + "/.gitconfig")
        self.assertIn("Thopter Bot", gitconfig)
        self.assertIn("credential", gitconfig)
        self.assertNotIn(PAT, sim.read(HOME + "/workspace/widgets/.git/config"))
        for root, _, names in os.walk(sim.path("/data")):
            for n in names:
                p = os.path.join(root, n)
                if os.path.isfile(p) and not os.path.islink(p):
                    with open(p, "rb") as f:
                        self.assertNotIn(PAT.encode(), f.read(), p)

        # The Golden Claude copy, minus .bashrc and session logs.
        self.assertEqual(sim.read(HOME + "/.claude/credentials.json"), '{"token":"claude-login"}\n')
        self.assertTrue(os.path.exists(sim.path(HOME + "/.claude.json")))
        self.assertNotIn("GC's own bashrc", sim.read(HOME + "/.bashrc") if os.path.exists(
            sim.path(HOME + "/.bashrc")) else "")
        self.assertFalse(os.path.exists(sim.path(HOME + "/.claude/projects/old-session")))

        # The provisioner's lines in /thopter/log, first and last as the original.
        log = sim.read("/thopter/log")
        self.assertIn("[PROVISIONER] Starting provisioning for issue 42: Make the widgets spin", log)
        self.assertIn("[PROVISIONER] Provisioning completed successfully. Thopter %s is ready to work on "
                      "issue 42" % m["id"], log)

        # Events in order, offset committed, one SSH login per machine.
        states = [(e["state"], e.get("step")) for e in self.events("prov-1")]
        self.assertEqual(states[0], ("started", None))
        self.assertEqual([s for st, s in states if st == "step"], STEPS)
        self.assertEqual(final[-1]["thopterId"], m["id"])
        wait_until(lambda: self.kafka.committed("thopter-provisioner", PROVISION)[0] == 1, timeout=10,
                   what="the offset commit")
        self.assertEqual(self.logins(sim), 1)
        self.assertEqual(self.logins(self.gc.sim), 1)

        # fly calls: the lookup, the capacity list (which also names the Golden Claude), volume, create, wait
        # and the done mark; no second lookup before the first create, no get after the wait (the create's
        # answer has the private address).
        routes = collections.Counter(c["route"] for c in self.fly.calls())
        self.assertEqual(dict(routes), {"machines.list": 2, "volumes.list": 1, "volumes.create": 1,
                                        "machines.create": 1, "machines.wait": 1, "machines.metadata": 1},
                         routes)

        # Redelivered: started + completed again, same machine, nothing typed again.
        self.provision(req)
        wait_until(lambda: len([e for e in self.events("prov-1") if e["state"] == "completed"]) == 2,
                   timeout=30, what="the redelivery to complete")
        again = [e for e in self.events("prov-1") if e["state"] == "completed"][-1]
        self.assertEqual(again["thopterId"], m["id"])
        self.assertEqual(len(self.fly.calls(route="machines.create")), 1)
        time.sleep(0.5)
        self.assertEqual(self.agent_runs(sim), 1)

    def test_a_redelivery_after_the_thopter_was_destroyed_makes_nothing(self):
        self.start_consumer(role="all")
        req = hub_request("prov-gone")
        self.provision(req)
        self.assertEqual(self.final("prov-gone")[-1]["state"], "completed")
        m = self.machine_of("prov-gone")
        self.kafka.produce("thopter.destroy", {"thopterId": m["id"]}, key=m["id"])
        self.kafka.flush()
        self.wait_gone(m["id"])
        self.provision(req)  # e.g. a commit lost to a crash
        wait_until(lambda: len([e for e in self.events("prov-gone") if e["state"] == "completed"]) == 2,
                   timeout=30, what="the redelivery to complete")
        again = [e for e in self.events("prov-gone") if e["state"] == "completed"][-1]
        self.assertEqual(again["thopterId"], m["id"])
        self.assertEqual(len(self.fly.calls(route="machines.create")), 1, "nothing made again")

    def test_fallback_region_when_region_has_no_capacity(self):
        self.fly.config(capacity_error={"ord": {"status": 412}})
        self.start_consumer(env={"THOPTER_FALLBACK_REGIONS": "iad, dfw"})
        self.provision(hub_request("prov-fallback"))
        final = self.final("prov-fallback")
        self.assertEqual(final[-1]["state"], "completed", final)
        self.assertEqual(final[-1]["region"], "iad")
        m = self.machine_of("prov-fallback")
        self.assertEqual(m["region"], "iad")
        vol = [v for v in self.fly.volumes() if v["id"] == m["config"]["mounts"][0]["volume"]][0]
        self.assertEqual(vol["region"], "iad", "a volume in the region used")
        moved = [e for e in self.events("prov-fallback") if e["state"] == "retrying" and e.get("step") == "create"]
        self.assertEqual(len(moved), 1)
        self.assertEqual(moved[0]["error"]["class"], "capacity")
        self.assertIn("no capacity in ord; trying iad", moved[0]["error"]["message"])

    def test_no_capacity_anywhere_is_a_capacity_dead_letter(self):
        self.fly.config(capacity_error={"*": {"status": 412}})
        self.start_consumer(env={"THOPTER_FALLBACK_REGIONS": "iad"})
        self.provision(hub_request("prov-nocap"))
        h = headers_dict(self.dead_letter("prov-nocap"))
        self.assertEqual((h["thopter.dlq.error.class"], h["thopter.dlq.error.step"]), ("capacity", "create"))
        self.assertEqual([c["body"]["region"] for c in self.fly.calls(route="machines.create")], ["ord", "iad"])


class TestFlySshServerOnPort22(ProvisionTestCase):
    """Every simulated machine runs a stand-in of fly's own SSH server (hallpass) on port
    22 of its address, with a host key of its own, from before its boot, as fly does on
    every machine's 6PN address. Today's fly: the image's sshd is on 2222, and so is the
    consumer by default."""

    def test_the_consumer_reaches_the_images_sshd_and_never_flys(self):
        c = self.start_consumer()
        self.provision(hub_request("prov-2222"))
        final = self.final("prov-2222")
        self.assertEqual(final[-1]["state"], "completed", final)
        self.assertNotIn("warning", final[-1], "the Golden Claude copy was made")
        m = self.machine_of("prov-2222")
        sim = self.booter.wait_sim(m["id"])
        self.assertEqual(sim.port, 2222)
        self.assertNotEqual(sim.hallpass_public_key().split()[1], sim.host_public_key().split()[1])
        # hallpass was there all along, and nobody dialed it: not the consumer, not the
        # Golden Claude copy.
        self.assertIn("[HALLPASS]", sim.console())
        self.assertIn("Server listening on %s port 22." % m["private_ip"], sim.hallpass_log())
        for s in (sim, self.gc.sim):
            self.assertNotIn("Connection from", s.hallpass_log())
        self.assertEqual(self.logins(sim), 1)
        self.assertIn("[%s]:2222 " % self.gc.machine["private_ip"], self.gc.known_hosts_line)
        self.assertNotIn("THOPTER_SSH_PORT=22", c.log_text())

    def test_port_22_meets_flys_ssh_server_and_is_refused_with_a_warning_at_start(self):
        c = self.start_consumer(env={"THOPTER_SSH_PORT": "22", "THOPTER_READY_TIMEOUT": "10"})
        c.wait_log(r'"level":"warn","component":"config","msg":"THOPTER_SSH_PORT=22: on fly, port 22 '
                   r'[^\n]*hallpass[^\n]*2222')
        self.provision(hub_request("prov-22"))
        h = headers_dict(self.dead_letter("prov-22"))
        self.assertEqual((h["thopter.dlq.error.class"], h["thopter.dlq.error.step"]), ("ssh", "wait"))
        self.assertIn("host key", h["thopter.dlq.error.message"])
        m = self.machine_of("prov-22")
        self.wait_gone(m["id"])
        sim = self.booter.sim(m["id"])
        self.assertIn("Connection from", sim.hallpass_log(), "the consumer dialed hallpass")
        self.assertEqual(self.logins(sim), 0)


class TestGoldenClaudeSkipped(ProvisionTestCase):
    """A Golden Claude copy that was not made is visible: a warning on the completed event
    and a metric; THOPTER_GOLDEN_CLAUDE_REQUIRED=1 makes it a failure."""

    def gc_metric(self, c, outcome):
        import urllib.request
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % c.metrics_port(), timeout=5).read().decode()
        for line in text.splitlines():
            if line.startswith('thopter_golden_claude_copies_total{outcome="%s"}' % outcome):
                return float(line.split()[-1])
        return 0.0

    def unpinned_known_hosts(self):
        # The GC's key under its plain host name: what a known_hosts line written for
        # port 22 looks like; on 2222 OpenSSH (and the consumer) look up [host]:2222.
        path = os.path.join(self.tmp, "known_hosts-port-22-style")
        with open(path, "w") as f:
            f.write(self.gc.known_hosts_line.replace("[", "").replace("]:2222", "") + "\n")
        return path

    def test_an_unpinned_golden_claude_completes_with_a_warning_and_is_counted(self):
        c = self.start_consumer(env={"THOPTER_SSH_KNOWN_HOSTS": self.unpinned_known_hosts()})
        self.provision(hub_request("prov-gc-unpinned"))
        final = self.final("prov-gc-unpinned")[-1]
        self.assertEqual(final["state"], "completed", final)
        self.assertEqual(final["warning"]["code"], "golden_claude_host_key", final)
        self.assertIn("gc-default", final["warning"]["message"])
        self.assertEqual(self.gc_metric(c, "host_key"), 1)
        self.assertEqual(self.gc_metric(c, "copied"), 0)
        self.assertEqual(self.logins(self.gc.sim), 0)
        sim = self.booter.wait_sim(self.machine_of("prov-gc-unpinned")["id"])
        self.assertFalse(os.path.exists(sim.path(HOME + "/.claude/credentials.json")))

    def test_a_golden_claude_that_refuses_the_login_completes_with_a_warning(self):
        other = os.path.join(self.tmp, "not-the-consumer")
        keygen(other, comment="someone-else")
        gc = self.booter.seed_golden_claude(authorized_key=other + ".pub", name="gc-other")
        with open(self.known_hosts, "a") as f:
            f.write(gc.known_hosts_line + "\n")
        c = self.start_consumer()
        self.provision(hub_request("prov-gc-refused", gc="other"))
        final = self.final("prov-gc-refused")[-1]
        self.assertEqual((final["state"], final["warning"]["code"]), ("completed", "golden_claude_unreachable"),
                         final)
        self.assertIn("gc-other", final["warning"]["message"])
        self.assertEqual(self.gc_metric(c, "unreachable"), 1)

    def test_no_golden_claude_running_warns_and_required_fails_the_request(self):
        self.fly.set_state(self.gc.machine["id"], "stopped")
        self.booter.wait_stopped(self.gc.machine["id"])
        c = self.start_consumer()
        self.provision(hub_request("prov-gc-none"))
        final = self.final("prov-gc-none")[-1]
        self.assertEqual((final["state"], final["warning"]["code"]), ("completed", "golden_claude_not_running"),
                         final)
        self.assertEqual(self.gc_metric(c, "not_running"), 1)
        self.assertEqual(c.stop(), 0)
        self.start_consumer(env={"THOPTER_GOLDEN_CLAUDE_REQUIRED": "1"})
        self.provision(hub_request("prov-gc-required", issue="43"))
        h = headers_dict(self.dead_letter("prov-gc-required"))
        self.assertEqual((h["thopter.dlq.error.class"], h["thopter.dlq.error.step"]), ("ssh", "golden_claude"))
        self.assertIn("THOPTER_GOLDEN_CLAUDE_REQUIRED=1", h["thopter.dlq.error.message"])
        self.wait_gone(self.machine_of("prov-gc-required")["id"])


class TestObserverSettings(ProvisionTestCase):
    def test_the_hub_addresses_reach_the_machine_and_without_them_the_role_refuses_to_start(self):
        first = self.start_consumer()
        self.provision(hub_request("prov-obs"))
        self.assertEqual(self.final("prov-obs")[-1]["state"], "completed")
        env = self.machine_of("prov-obs")["config"]["env"]
        self.assertEqual((env["METADATA_SERVICE_HOST"], env["HUB_STATUS_PORT"]),
                         ("1.redis.kv._metadata.thopters.internal", "8081"))
        c = self.start_consumer(env={"METADATA_SERVICE_HOST": "", "HUB_STATUS_PORT": ""})
        self.assertEqual(c.wait(20), 2)
        lines = c.log_text().strip().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("METADATA_SERVICE_HOST and HUB_STATUS_PORT", lines[0])
        self.assertIn("THOPTER_OBSERVER=0", lines[0])
        self.assertEqual(first.stop(), 0)
        off = self.start_consumer(env={"METADATA_SERVICE_HOST": "", "HUB_STATUS_PORT": "",
                                       "THOPTER_OBSERVER": "0"})
        off.wait_assigned()
        self.assertEqual(off.stop(), 0)


class TestRedeliveryMarker(ProvisionTestCase):
    def test_another_requests_done_marker_is_not_taken_for_ours(self):
        c = self.start_consumer()
        self.provision(hub_request("prov-1"))
        c.wait_log(r'"requestId":"prov-1","msg":"step golden_claude"', timeout=60)
        c.kill()
        m = self.machine_of("prov-1")
        sim = self.booter.wait_sim(m["id"])
        # A marker left by another request (an image whose init does not wipe
        # the volume): "prov-10" must not be taken for "prov-1".
        sim.write("/var/lib/thopter/provisioned", "prov-10\n")
        self.start_consumer()
        self.assertEqual(self.final("prov-1")[-1]["state"], "completed")
        wait_until(lambda: self.agent_runs(sim) == 1, timeout=10, what="prov-1's agent launched")
        self.assertEqual(sim.read("/var/lib/thopter/provisioned"), "prov-1\n")


class TestProvisionFailures(ProvisionTestCase):
    def test_unknown_repository_creates_nothing(self):
        self.start_consumer()
        self.provision(hub_request("prov-unknown", repository="acme/secret"))
        h = headers_dict(self.dead_letter("prov-unknown"))
        self.assertEqual(h["thopter.dlq.error.class"], "unknown_repository")
        self.assertEqual(self.fly.calls(route="machines.create"), [])

    def test_clone_failure_destroys_the_machine(self):
        self.start_consumer(env={"THOPTER_GIT_URL": self.git.base_url + "/nowhere/{repository}.git"})
        self.provision(hub_request("prov-noclone"))
        h = headers_dict(self.dead_letter("prov-noclone"))
        self.assertEqual(h["thopter.dlq.error.class"], "ssh")
        self.assertEqual(h["thopter.dlq.error.step"], "git")
        self.assertNotIn(PAT, h["thopter.dlq.error.message"])
        self.assertNotIn("thopter.dlq.left_machine", h)
        m = self.machine_of("prov-noclone")
        self.wait_gone(m["id"])

    def test_a_clean_up_that_gives_up_names_the_machine_left_behind(self):
        self.fly.push_fault(method="DELETE", route="machines.delete", status=503, count=-1)
        self.start_consumer(env={"THOPTER_GIT_URL": self.git.base_url + "/nowhere/{repository}.git",
                                 "THOPTER_FLY_RETRIES": "2"})
        self.provision(hub_request("prov-orphan"))
        h = headers_dict(self.dead_letter("prov-orphan"))
        m = self.machine_of("prov-orphan")
        self.assertEqual(h["thopter.dlq.error.step"], "git", "the dead letter keeps the request's own failure")
        self.assertEqual(h["thopter.dlq.left_machine"], m["id"])

    def test_create_rejected_is_fly_rejected(self):
        self.fly.push_fault(method="POST", route="machines.create", status=422, count=-1,
                            body={"error": "invalid config: image not found"})
        self.start_consumer()
        self.provision(hub_request("prov-422"))
        h = headers_dict(self.dead_letter("prov-422"))
        self.assertEqual(h["thopter.dlq.error.class"], "fly_rejected")
        self.assertEqual(h["thopter.dlq.error.step"], "create")
        self.assertEqual(self.thopters(), [])

    def test_no_ssh_times_out_and_destroys_the_machine(self):
        self.booter.close()  # nothing boots: the machine never answers SSH
        c = self.start_consumer(env={"THOPTER_READY_TIMEOUT": "7"})
        self.provision(hub_request("prov-nossh"))
        h = headers_dict(self.dead_letter("prov-nossh"))
        self.assertEqual(h["thopter.dlq.error.class"], "timeout")
        self.assertEqual(h["thopter.dlq.error.step"], "wait")
        self.wait_gone(self.machine_of("prov-nossh")["id"])
        # The wait step says what it waits for (issue 22), not 7 s of silence.
        log = c.log_text()
        self.assertRegex(log, r'"msg":"waiting for machine [0-9a-f]{14} to be started \(\d+ s of '
                              r'THOPTER_READY_TIMEOUT\'s 7 s left\)"')
        self.assertRegex(log, r'"msg":"machine [0-9a-f]{14} started after \d+ s; waiting for its SSH server"')
        self.assertRegex(log, r'"component":"ssh","msg":"[^"]*:\d+ not answering yet after \d+ s')

    def test_a_machine_with_another_host_key_is_refused(self):
        # Something answers on the new machine's address with a host key other
        # than the one the consumer made for it (an impostor, or a mix-up):
        # refused before anything is sent, and the machine is cleaned up.
        self.booter.close()
        self.start_consumer(env={"THOPTER_READY_TIMEOUT": "20"})
        self.provision(hub_request("prov-mitm"))
        m = wait_until(lambda: self.thopters(), timeout=30, what="the machine")[0]
        files = os.path.join(self.tmp, "impostor-files")
        ssh_dir = os.path.join(files, "etc", "thopter", "ssh")
        os.makedirs(ssh_dir)
        keygen(os.path.join(ssh_dir, "ssh_host_ed25519_key"), comment="impostor")
        shutil.copyfile(self.key + ".pub", os.path.join(ssh_dir, "authorized_keys"))
        impostor = SimMachine(m["id"], files=files, dir=os.path.join(self.tmp, "impostor"),
                              listen=m["private_ip"])
        impostor.start()
        self.addCleanup(impostor.close)
        impostor.wait_ready()
        h = headers_dict(self.dead_letter("prov-mitm"))
        self.assertEqual((h["thopter.dlq.error.class"], h["thopter.dlq.error.step"]), ("ssh", "wait"))
        self.assertIn("host key", h["thopter.dlq.error.message"])
        self.assertEqual(self.logins(impostor), 0, "no login where the key was wrong")
        self.wait_gone(m["id"])


class TestCapacity(ProvisionTestCase):
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

    def test_a_capacity_wait_longer_than_the_ready_timeout_does_not_time_out(self):
        # THOPTER_READY_TIMEOUT counts from the create, never including the
        # capacity wait (contract section 7).
        busy = self.fly.seed_machine(id="00000000000bb2", name="thopter-2-busy000", state="started")
        # 15 s: enough for a machine to boot on a loaded CI host (with 8 the
        # boot itself timed out now and then there).
        self.start_consumer(env={"MAX_THOPTERS": "1", "THOPTER_READY_TIMEOUT": "15"})
        self.provision(hub_request("prov-longwait"))
        wait_until(lambda: any(e["state"] == "waiting_capacity" for e in self.events("prov-longwait")),
                   timeout=30, what="waiting_capacity")
        time.sleep(17)  # longer than THOPTER_READY_TIMEOUT
        self.fly.set_state(busy["id"], "stopped")
        final = self.final("prov-longwait", timeout=90)
        self.assertEqual(final[-1]["state"], "completed", final)


class TestSshDrop(ProvisionTestCase):
    def test_a_dropped_connection_is_reopened_and_the_step_retried(self):
        # A Golden Claude home of 64 MB keeps its copy running long enough to
        # act in it (the steps take a few milliseconds each otherwise).
        self.gc.write(HOME + "/.claude/big-session-cache.bin", os.urandom(64 << 20))
        c = self.start_consumer()
        self.provision(hub_request("prov-drop"))
        c.wait_log(r'"requestId":"prov-drop","msg":"step golden_claude"', timeout=60)
        m = self.machine_of("prov-drop")
        sim = self.booter.wait_sim(m["id"])
        # The provisioner's session process on the thopter dies: the connection
        # drops under the current step.
        out = sim.run(["pgrep", "-f", "sshd: root"]).stdout.split()
        self.assertTrue(out, "the provisioner's ssh session")
        sim.run(["kill", "-9"] + out)
        final = self.final("prov-drop")
        self.assertEqual(final[-1]["state"], "completed", final)
        self.assertEqual(self.agent_runs(sim), 1)
        self.assertTrue(os.path.isdir(sim.path(HOME + "/workspace/widgets/.git")))
        self.assertGreaterEqual(self.logins(sim), 2, "a second connection was made")

    def test_a_connection_dropped_during_the_clone_is_retried_into_a_fresh_directory(self):
        # A 48 MB repository keeps the clone running long enough to act in it.
        # The dropped session may leave the first clone running; when it fails,
        # git removes its target directory, which must not be the retry's.
        shutil.rmtree(self.git.repo_path("acme/widgets"))
        self.git.create_repo("acme/widgets", {"README.md": "# widgets\n",
                                              "blob.txt": base64.b64encode(os.urandom(36 << 20)).decode()})
        c = self.start_consumer()
        self.provision(hub_request("prov-drop-git"))
        c.wait_log(r'"requestId":"prov-drop-git","msg":"step git"', timeout=90)
        m = self.machine_of("prov-drop-git")
        sim = self.booter.wait_sim(m["id"])
        out = sim.run(["pgrep", "-f", "sshd: root"]).stdout.split()
        self.assertTrue(out, "the provisioner's ssh session")
        sim.run(["kill", "-9"] + out)
        final = self.final("prov-drop-git")
        self.assertEqual(final[-1]["state"], "completed", final)
        self.assertTrue(os.path.isfile(sim.path(HOME + "/workspace/widgets/blob.txt")))
        self.assertGreaterEqual(self.logins(sim), 2, "a second connection was made")
        self.assertEqual(self.agent_runs(sim), 1)


class TestHostileInput(ProvisionTestCase):
    def test_shell_metacharacters_are_rejected_or_carried_harmlessly(self):
        pwned = "/tmp/pwned"
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
        sim = self.booter.wait_sim(self.machine_of("evil-ok")["id"])
        self.assertIn(evil, sim.read(HOME + "/workspace/issue.md"))
        self.assertEqual(json.loads(sim.read(HOME + "/workspace/issue.json"))["github"]["issueTitle"], evil)
        time.sleep(0.5)
        self.assertFalse(os.path.exists(sim.path(pwned)), "a request field ran as a command on the thopter")
        self.assertFalse(os.path.exists(pwned), "a request field ran as a command here")


class TestCrashRecovery(ProvisionTestCase):
    def test_sigkill_at_each_step_then_restart_makes_one_machine_provisioned_once(self):
        for n, step in enumerate(["create", "wait", "git", "context_files", "launch"]):
            rid = "crash-%d" % n
            c = self.start_consumer()
            self.provision(hub_request(rid, issue=str(100 + n)))
            c.wait_log(r'"requestId":"%s","msg":"step %s"' % (rid, step), timeout=60)
            c.kill()
            c2 = self.start_consumer()
            final = self.final(rid, timeout=90)
            self.assertEqual(final[-1]["state"], "completed", (step, final))
            m = self.machine_of(rid)  # exactly one
            sim = self.booter.wait_sim(m["id"])
            self.assertEqual(self.agent_runs(sim), 1, "killed at " + step)
            self.assertEqual(c2.stop(), 0)


if __name__ == "__main__":
    unittest.main()
