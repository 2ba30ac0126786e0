"""Issue 19, points 1-3: the agent on a thopter (user thopter, running
arbitrary code) is hostile, and so is everything in its home, the Golden
Claude's included. Each test plants what such an agent could, runs a real
provision against simulated machines, and fails on the code before the fix
(docs/hostile-inputs.md rows 19-21)."""
import os
import stat
import time

from provision_harness import PAT
from thopter_harness import wait_until

from test_provision import HOME, ProvisionTestCase, hub_request

STATE_MARKER = "/var/lib/thopter/provisioned"


class TestGoldenClaudeHome(ProvisionTestCase):
    """Point 1: the GC home was extracted by root, context files written by
    root through whatever path the user left, and `su -` ran the user's
    login dotfiles with the token on stdin."""

    def plant(self):
        gc = self.gc.sim
        as_user = ["runuser", "-u", "thopter", "--"]
        gc.run(as_user + ["mkdir", "-p", HOME + "/workspace"], check=True)
        gc.run(as_user + ["ln", "-sfn", "/etc", HOME + "/workspace/issue.md"], check=True)
        gc.run(as_user + ["ln", "-sfn", "/etc/shadow", HOME + "/.claude/shadow-link"], check=True)
        # A login shell would run this with the token line on its stdin.
        self.gc.write(HOME + "/.bash_profile", "cat > $HOME/stolen-stdin\n")
        self.gc.write(HOME + "/.profile", "cat > $HOME/stolen-stdin\n")
        # git would send the token wherever this says.
        self.gc.write(HOME + "/.gitconfig", '[url "http://127.0.0.1:9/"]\n\tinsteadOf = http://\n')
        self.gc.write(HOME + "/.ssh/authorized_keys", "ssh-ed25519 AAAAplanted attacker\n")

    def test_nothing_the_golden_claude_user_owns_is_followed_as_root(self):
        self.plant()
        self.start_consumer()
        self.provision(hub_request("gc-hostile"))
        final = self.final("gc-hostile")
        self.assertEqual(final[-1]["state"], "completed", final)
        sim = self.booter.wait_sim(self.machine_of("gc-hostile")["id"])

        # /etc stays root's, and issue.md is a file of the thopter user.
        self.assertEqual(sim.run(["stat", "-c", "%U:%G", "/etc"], check=True).stdout.strip(), "root:root")
        self.assertEqual(sim.run(["stat", "-c", "%U", "/etc/shadow"], check=True).stdout.strip(), "root")
        st = os.lstat(sim.path(HOME + "/workspace/issue.md"))
        self.assertTrue(stat.S_ISREG(st.st_mode), "issue.md is a regular file, not the planted link")
        self.assertIn("Make the widgets spin", sim.read(HOME + "/workspace/issue.md"))
        owner = sim.run(["stat", "-c", "%U", HOME + "/workspace/issue.md"], check=True).stdout.strip()
        self.assertEqual(owner, "thopter")

        # Only what a Claude home needs came over: credentials, not dotfiles.
        self.assertEqual(sim.read(HOME + "/.claude/credentials.json"), '{"token":"claude-login"}\n')
        self.assertTrue(os.path.exists(sim.path(HOME + "/.claude.json")))
        for planted in (".bash_profile", ".profile", ".ssh/authorized_keys"):
            p = sim.path(HOME + "/" + planted)
            self.assertFalse(os.path.exists(p) and "planted" in open(p).read() or
                             os.path.exists(p) and "stolen-stdin" in open(p).read(), planted)
        self.assertNotIn("insteadOf", sim.read(HOME + "/.gitconfig"))
        self.assertFalse(os.path.exists(sim.path(HOME + "/stolen-stdin")), "no login shell read the token")
        # Nothing the copy made is root's.
        out = sim.run(["find", HOME, "-xdev", "-not", "-user", "thopter"], check=True).stdout.split()
        self.assertEqual(out, [], out)


class TestProvisionedMark(ProvisionTestCase):
    """Point 2: "already provisioned" was a file in the agent's home: the agent
    deleted it and planted a symlink, and the same request sent again re-ran
    every root step and typed the agent command a second time."""

    def test_a_redelivery_after_the_agent_removed_its_marker_does_nothing(self):
        self.start_consumer()
        req = hub_request("mark-1")
        self.provision(req)
        self.assertEqual(self.final("mark-1")[-1]["state"], "completed")
        m = self.machine_of("mark-1")
        sim = self.booter.wait_sim(m["id"])
        wait_until(lambda: self.agent_runs(sim) == 1, timeout=10, what="the agent launched")
        as_user = ["runuser", "-u", "thopter", "--"]
        sim.run(as_user + ["rm", "-f", HOME + "/.thopter-provisioned"])
        sim.run(as_user + ["ln", "-sfn", "/etc/ld.so.preload", HOME + "/.thopter-provisioned"], check=True)
        logins = self.logins(sim)

        self.provision(req)  # a redelivery, a replay, a duplicate send
        wait_until(lambda: len([e for e in self.events("mark-1") if e["state"] == "completed"]) == 2,
                   timeout=30, what="the second delivery to complete")
        time.sleep(0.5)
        self.assertEqual(self.agent_runs(sim), 1, "the agent command is typed once")
        self.assertFalse(os.path.exists(sim.path("/etc/ld.so.preload")), "no root write through the link")
        self.assertEqual(self.logins(sim), logins, "fly's mark decides: no SSH at all")
        steps = [e.get("step") for e in self.events("mark-1") if e["state"] == "step"]
        self.assertEqual(steps.count("launch"), 1, steps)

    def test_without_fly_s_mark_a_root_owned_marker_decides(self):
        # The mark write fails (it is retried, then given up): only the local
        # marker can tell, and it lives where the user cannot reach.
        self.fly.push_fault(method="POST", route="machines.metadata", status=503, count=-1)
        self.start_consumer(env={"THOPTER_FLY_RETRIES": "2", "THOPTER_RETRY_BASE_MS": "50"})
        req = hub_request("mark-2")
        self.provision(req)
        self.assertEqual(self.final("mark-2")[-1]["state"], "completed")
        m = self.machine_of("mark-2")
        self.assertNotIn("thopter_provisioned", m["config"]["metadata"])
        self.assertEqual(len(self.fly.calls(route="machines.metadata")), 2,
                         "the mark write is retried like every fly write (THOPTER_FLY_RETRIES 2)")
        sim = self.booter.wait_sim(m["id"])
        wait_until(lambda: self.agent_runs(sim) == 1, timeout=10, what="the agent launched")
        self.assertEqual(sim.read(STATE_MARKER), "mark-2\n")
        self.assertEqual(sim.run(["stat", "-c", "%U %a", os.path.dirname(STATE_MARKER)],
                                 check=True).stdout.split(), ["root", "700"])
        as_user = ["runuser", "-u", "thopter", "--"]
        sim.run(as_user + ["rm", "-f", HOME + "/.thopter-provisioned"])
        self.assertNotEqual(sim.run(as_user + ["rm", "-f", STATE_MARKER]).returncode, 0,
                            "the user cannot remove the marker")
        self.provision(req)
        wait_until(lambda: len([e for e in self.events("mark-2") if e["state"] == "completed"]) == 2,
                   timeout=30, what="the second delivery to complete")
        time.sleep(0.5)
        self.assertEqual(self.agent_runs(sim), 1)


class TestSecretFileModes(ProvisionTestCase):
    """Point 3: the host private key and .env.thopters came through
    config.files with no mode (0644: readable by every user until the start
    hook fixed them), and .env.thopters stayed 0644 in the workspace."""

    def test_secrets_are_0600_from_the_first_moment(self):
        env_file = os.path.join(self.local, "env.thopters")
        with open(env_file, "w") as f:
            f.write("SECRET_API_KEY=s3cr3t\n")
        self.start_consumer(env={"THOPTER_ENV_FILE": env_file})
        self.provision(hub_request("modes"))
        self.assertEqual(self.final("modes")[-1]["state"], "completed")
        m = self.machine_of("modes")
        sent = {f["guest_path"]: f.get("mode") for f in self.fly.machine(m["id"]).get("files", [])}
        self.assertEqual(sent["/etc/thopter/ssh/ssh_host_ed25519_key"], 0o600)
        self.assertEqual(sent["/tmp/.env.thopters"], 0o600)
        self.assertEqual(sent["/etc/thopter/ssh/authorized_keys"], 0o644)
        sim = self.booter.wait_sim(m["id"])
        out = sim.run(["stat", "-c", "%a %U", HOME + "/workspace/.env.thopters"], check=True).stdout.split()
        self.assertEqual(out, ["600", "thopter"])
