"""The thopter image's per-machine SSH layer (deploy/thopter-image/) for real.

Each test boots a simulated machine (tests/harness/thopter_machine.py SimMachine) in its own
mount, PID, UTS and network namespaces: the REAL hook deploy/thopter-image/thopter-start as
the image's CMD (PID 1), the REAL deploy/thopter-image/sshd_config as /etc/ssh/sshd_config
(no -o override at all: in its own network namespace sshd listens on port 2222 of [::] and
0.0.0.0 as on fly, while a stand-in of fly's own SSH server, hallpass, holds [::1]:22 from
before the boot, as hallpass holds port 22 of the 6PN address), the project's model of dd6852b's thopter-init.sh as the image's init (tests/data/sim-thopter-init.sh: its steps in its order; stubs only
for firewall.sh, start-observer.sh and gotty), a private /data (the machine's volume) and
/etc/thopter/ssh + /tmp files laid out as fly writes config.files. Clients are the real
OpenSSH ssh and ssh-keyscan, run inside the machine's network namespace.

Needs root. Run: cd tests/integration && PYTHONPATH=../harness python3 -m unittest -v test_thopter_image
"""
import json
import re
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import unittest

import thopter_machine
from thopter_machine import (AUTHORIZED_KEYS_PATH, HOOK, HOST_KEY_PATH, INIT, PYTHON, SSH_KEYGEN,
                             SSHD_CONFIG, SimMachine, files_tree, image_port, keygen, known_hosts_line,
                             ssh_argv)

PORT = image_port()  # the image's sshd (2222); 22 is hallpass's

# The original init's steps, in its order (dd6852b thopter/scripts/thopter-init.sh), as the
# model names them.
INIT_STEPS = ["check_data_mount", "open_data", "wipe_data", "make_workspace", "shell_aliases",
              "firewall", "move_env_thopters", "move_post_checkout", "uv_env", "log_dirs",
              "start_observer", "chown_data", "run_terminal"]

# What the first login that works sees (one line per fact).
STATE_COMMAND = (
    "if runuser -u thopter -- tmux has-session -t =thopter; then echo tmux=up; else echo tmux=down; fi; "
    "if [ -e /data/planted ]; then echo planted=yes; else echo planted=no; fi; "
    "echo \"data=$(ls -A /data | tr '\\n' ' ')\"; "
    "echo \"owner=$(stat -c %U /data/thopter/workspace 2>/dev/null)\"")


def parse_state(text):
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


class ImageTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root (namespaces, mounts, sshd)")
        cls.keys = tempfile.mkdtemp(prefix="thopter-image-keys.")
        k = cls.keys
        cls.host_key = os.path.join(k, "host")
        cls.host_pub = keygen(cls.host_key, comment="thopter-abc")
        cls.consumer_key = os.path.join(k, "consumer")
        cls.consumer_pub = keygen(cls.consumer_key, comment="thopter-consumer")
        cls.other_key = os.path.join(k, "other")
        keygen(cls.other_key, comment="someone-else")
        cls.other_host_key = os.path.join(k, "other-host")
        cls.other_host_pub = keygen(cls.other_host_key)
        cls.rsa_key = os.path.join(k, "rsa")
        keygen(cls.rsa_key, key_type="rsa")
        cls.encrypted_key = os.path.join(k, "encrypted")
        subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "a passphrase", "-f", cls.encrypted_key],
                       check=True)
        cls.known_hosts = os.path.join(k, "known_hosts")
        # On port 2222 OpenSSH looks the host up as [host]:2222.
        with open(cls.known_hosts, "w") as f:
            for host in ("127.0.0.1", "::1"):
                f.write(known_hosts_line(host, PORT, cls.host_pub) + "\n")
        cls.wrong_known_hosts = os.path.join(k, "wrong_known_hosts")
        with open(cls.wrong_known_hosts, "w") as f:
            f.write(known_hosts_line("127.0.0.1", PORT, cls.other_host_pub) + "\n")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.keys, ignore_errors=True)

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="thopter-image-test.")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.n = 0

    def key_bytes(self, path):
        with open(path, "rb") as f:
            return f.read()

    def boot(self, files=None, extra_files=None, env=None, plant=None, **kw):
        """Boots a machine in its own namespaces; files default to the per-machine host key
        (mode 0644, as fly may write it) and the consumer's key."""
        self.n += 1
        base = os.path.join(self.dir, "m%d" % self.n)
        if files is None:
            files = {HOST_KEY_PATH: (self.key_bytes(self.host_key), 0o644),
                     AUTHORIZED_KEYS_PATH: self.consumer_pub + "\n"}
        files = dict(files, **(extra_files or {}))
        files_tree(os.path.join(base, "files"), files)
        volume = os.path.join(base, "volume")
        os.makedirs(volume)
        if plant:
            plant(volume)
        sim = SimMachine("m%d" % self.n, volume=volume, files=os.path.join(base, "files"),
                         dir=os.path.join(base, "sim"), net=True, env=env, **kw)
        self.addCleanup(sim.close)
        self.addCleanup(sim.kill)  # first: a graceful stop takes 2 s (runuser's), tested once
        return sim.start()

    def ssh(self, sim, command="true", key=None, known_hosts=None, user="root", host="127.0.0.1",
            extra=(), port=PORT):
        argv = ssh_argv(host, port, key or self.consumer_key, known_hosts or self.known_hosts, user,
                        extra) + [command]
        return sim.run(argv, ns="net", stdin=subprocess.DEVNULL)

    def probe(self, sim, deadline=40):
        """Starts the readiness probe in the machine's network namespace (see
        thopter_machine.probe_main); returns the Popen."""
        return subprocess.Popen(
            ["nsenter", "--net=/proc/%d/ns/net" % sim.pid, "--", PYTHON, thopter_machine.__file__,
             "probe", "--host", "127.0.0.1", "--port", str(PORT), "--key", self.consumer_key,
             "--known-hosts", self.known_hosts, "--command", STATE_COMMAND,
             "--deadline", str(deadline)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def port_open(self, sim, host="127.0.0.1", port=PORT):
        r = sim.run(["bash", "-c", "exec 3<>/dev/tcp/%s/%d" % (host, port)], ns="net")
        return r.returncode == 0


def plant_leftovers(volume, n_dirs=150, per_dir=100):
    """A previous thopter's leftovers on a reused volume: many files make the wipe slow."""
    with open(os.path.join(volume, "planted"), "w") as f:
        f.write("from the previous machine\n")
    for d in range(n_dirs):
        path = os.path.join(volume, "thopter", "workspace", "old-repo", "d%03d" % d)
        os.makedirs(path)
        for i in range(per_dir):
            with open(os.path.join(path, "f%03d" % i), "w") as f:
                f.write("x")


class TestInitModel(ImageTestCase):
    def test_the_model_runs_the_original_inits_steps_in_its_order(self):
        def plant(volume):
            for name in ("leftover", ".dotfile"):
                with open(os.path.join(volume, name), "w") as f:
                    f.write("from the previous machine\n")
        sim = self.boot(plant=plant)
        sim.wait_ready()
        log = sim.read("/thopter/log")
        self.assertEqual(re.findall(r"\[THOPTER-INIT\] step (\w+)", log), INIT_STEPS)
        self.assertLess(log.index("[FIREWALL]"), log.index("step move_env_thopters"))
        self.assertLess(log.index("[OBSERVER]"), log.index("step chown_data"))
        # `rm -rf /data/*`: a glob, so a dot-file at the top of the volume stays.
        self.assertEqual(sorted(os.listdir(sim.volume)), [".dotfile", "thopter"])
        home = "/data/thopter"
        self.assertIn("yolo-claude", sim.read(home + "/.bash_aliases"))
        self.assertIn("source ~/.bash_aliases", sim.read(home + "/.bashrc"))
        self.assertIn("source /uv/env", sim.read(home + "/.bashrc"))
        self.assertEqual(sim.read(home + "/.bash_profile"), "source ~/.bashrc\n")
        for d in ("logs", ".claude/projects", "workspace"):
            self.assertTrue(os.path.isdir(sim.path(home + "/" + d)), d)
        uid = int(sim.run(["id", "-u", "thopter"], check=True).stdout)
        self.assertEqual({os.stat(os.path.join(r, n)).st_uid for r, ds, fs in os.walk(sim.path(home))
                          for n in ds + fs}, {uid})
        self.assertIn("[GOTTY-STUB] started as thopter: --permit-write --port 7681 --ws-origin .* "
                      "tmux attach-session -t thopter", sim.console())


class TestReadiness(ImageTestCase):
    SLOW = {"SIM_FIREWALL_DELAY": "1.5", "SIM_OBSERVER_DELAY": "1"}

    def first_login(self, hook=HOOK):
        sim = self.boot(env=self.SLOW, plant=plant_leftovers, hook=hook)
        p = self.probe(sim)
        out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, "probe: %s %s\n%s" % (out, err, sim.console()))
        return sim, json.loads(out)

    def test_sshd_accepts_nothing_before_the_wipe_is_over_and_tmux_is_up(self):
        sim, r = self.first_login()
        state = parse_state(r["stdout"])
        # At the first login that worked (the first TCP connection sshd accepted came
        # just before it), the init was done: leftovers wiped, tmux up, /data chowned.
        self.assertEqual(state["tmux"], "up", r)
        self.assertEqual(state["planted"], "no", r)
        self.assertEqual(state["data"].split(), ["thopter"], r)
        self.assertEqual(state["owner"], "thopter", r)
        self.assertEqual(r["ssh_attempts"], 1, "the first accepted connection led to a login: %s" % r)
        # The probe was knocking all along: about 2.5 s of deliberately slow init steps.
        self.assertGreater(r["refused"], 50, r)
        self.assertGreater(r["first_open"] - sim.started_at, 2.5, r)
        console = sim.console()
        self.assertLess(console.index("[THOPTER-INIT] step chown_data"),
                        console.index("[THOPTER-START] sshd started"))
        self.assertLess(console.index("[GOTTY-STUB] started"), console.index("[THOPTER-START] sshd started"))
        self.assertFalse(os.path.exists(os.path.join(sim.volume, "thopter", "workspace", "old-repo")))

    def test_the_probe_catches_a_hook_that_starts_sshd_early(self):
        # Negative control: the same boot with the readiness wait cut out of the hook must
        # be caught, or the test above proves nothing.
        with open(HOOK) as f:
            text = f.read()
        self.assertEqual(text.count("if wait_for_init_ready; then"), 1)
        broken = os.path.join(self.dir, "thopter-start-no-wait")
        with open(broken, "w") as f:
            f.write(text.replace("if wait_for_init_ready; then", "if true; then"))
        os.chmod(broken, 0o755)
        sim, r = self.first_login(hook=broken)
        state = parse_state(r["stdout"])
        self.assertTrue(state["tmux"] == "down" or state["planted"] == "yes", r)
        self.assertLess(r["first_open"] - sim.started_at, 2.0, r)


class TestKeys(ImageTestCase):
    def test_the_host_key_is_exactly_the_per_machine_key_on_ipv4_and_ipv6(self):
        sim = self.boot()
        sim.wait_ready()
        for host in ("127.0.0.1", "::1"):
            r = self.ssh(sim, "echo ok", host=host)
            self.assertEqual((r.returncode, r.stdout), (0, "ok\n"), r.stderr + sim.console())
            scan = sim.run(["ssh-keyscan", "-T", "5", "-p", str(PORT), "-t", "ed25519,ecdsa,rsa", host],
                           ns="net")
            keys = [line.split(None, 1)[1] for line in scan.stdout.splitlines()
                    if line and not line.startswith("#")]
            self.assertEqual(keys, [" ".join(self.host_pub.split()[:2])], scan.stdout + scan.stderr)
        wrong = self.ssh(sim, "echo ok", known_hosts=self.wrong_known_hosts)
        self.assertEqual(wrong.returncode, 255)
        self.assertIn("REMOTE HOST IDENTIFICATION HAS CHANGED", wrong.stderr)
        # config.files wrote the key 0644; the hook made both files root's, 0600 / 0644.
        st = os.stat(sim.path(HOST_KEY_PATH))
        self.assertEqual((stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid), (0o600, 0, 0))
        st = os.stat(sim.path(AUTHORIZED_KEYS_PATH))
        self.assertEqual((stat.S_IMODE(st.st_mode), st.st_uid), (0o644, 0))
        self.assertEqual([f for f in os.listdir(sim.path("/etc/ssh")) if f.startswith("ssh_host_")], [])
        eff = sim.run(["/usr/sbin/sshd", "-T"], check=True).stdout.splitlines()
        self.assertEqual([x for x in eff if x.startswith("hostkey ")], ["hostkey " + HOST_KEY_PATH])
        self.assertIn("listenaddress [::]:2222", eff)
        self.assertIn("listenaddress 0.0.0.0:2222", eff)

    def test_only_the_authorized_key_logs_in_and_only_as_root(self):
        sim = self.boot()
        sim.wait_ready()
        self.assertEqual(self.ssh(sim).returncode, 0, sim.console())
        other = self.ssh(sim, key=self.other_key)
        self.assertEqual(other.returncode, 255)
        self.assertIn("Permission denied (publickey).", other.stderr)
        # The server offers nothing but publickey, so no password is ever asked for.
        pw = self.ssh(sim, extra=["-o", "PubkeyAuthentication=no",
                                  "-o", "PreferredAuthentications=password,keyboard-interactive"])
        self.assertEqual(pw.returncode, 255)
        self.assertIn("Permission denied (publickey).", pw.stderr)
        as_thopter = self.ssh(sim, user="thopter")
        self.assertEqual(as_thopter.returncode, 255)
        self.assertIn("Permission denied (publickey).", as_thopter.stderr)
        console = sim.console()
        self.assertEqual(console.count("Accepted publickey for root"), 1, console)
        self.assertIn("User thopter from 127.0.0.1 not allowed because not listed in AllowUsers", console)


class TestConfigFilesInTmp(ImageTestCase):
    def test_env_thopters_and_post_checkout_end_up_in_the_workspace(self):
        env_text = "FEATURE_FLAG=on\nAPI_URL=https://example.test\n"
        script = "#!/bin/sh\necho post-checkout ran\n"
        sim = self.boot(extra_files={"/tmp/.env.thopters": env_text, "/tmp/post-checkout.sh": script})
        sim.wait_ready()
        ws = os.path.join(sim.volume, "thopter", "workspace")
        uid = int(sim.run(["id", "-u", "thopter"], check=True).stdout)
        with open(os.path.join(ws, ".env.thopters")) as f:
            self.assertEqual(f.read(), env_text)
        self.assertEqual(os.stat(os.path.join(ws, ".env.thopters")).st_uid, uid)
        st = os.stat(os.path.join(ws, "post-checkout.sh"))
        self.assertEqual(st.st_uid, uid)
        self.assertTrue(st.st_mode & stat.S_IXUSR)
        self.assertFalse(os.path.exists(sim.path("/tmp/.env.thopters")))
        self.assertFalse(os.path.exists(sim.path("/tmp/post-checkout.sh")))
        # The thopter user's login shell (what `su - thopter -c` gives the consumer) has them.
        r = self.ssh(sim, "su - thopter -c 'echo $FEATURE_FLAG; ./workspace/post-checkout.sh'")
        self.assertEqual((r.returncode, r.stdout), (0, "on\npost-checkout ran\n"), r.stderr)


class TestRefusals(ImageTestCase):
    def refused(self, files, reason):
        sim = self.boot(files=files)
        sim.wait_log(r"sshd not started")
        log = sim.read("/thopter/log")
        self.assertIn(reason, log)
        self.assertIn("sshd not started", log)
        self.assertNotIn("sshd started", sim.console())
        self.assertTrue(sim.tmux_up(), "the init keeps running")
        time.sleep(0.3)
        self.assertNotIn("sshd", sim.process_names())
        self.assertFalse(self.port_open(sim, "127.0.0.1"))
        self.assertFalse(self.port_open(sim, "::1"))

    def test_a_missing_or_unusable_host_key_means_no_sshd_and_says_why(self):
        auth = {AUTHORIZED_KEYS_PATH: self.consumer_pub + "\n"}
        cases = [
            ("missing", {}, HOST_KEY_PATH + " is missing"),
            ("garbage", {HOST_KEY_PATH: "not a key\n"}, "is not an unencrypted OpenSSH private key"),
            ("empty", {HOST_KEY_PATH: ""}, HOST_KEY_PATH + " is empty"),
            ("rsa", {HOST_KEY_PATH: self.key_bytes(self.rsa_key)}, "is a ssh-rsa key, not ssh-ed25519"),
            ("encrypted", {HOST_KEY_PATH: self.key_bytes(self.encrypted_key)},
             "is not an unencrypted OpenSSH private key"),
        ]
        for label, files, reason in cases:
            with self.subTest(label):
                self.refused(dict(auth, **files), reason)

    def test_no_authorized_key_means_no_sshd(self):
        host = {HOST_KEY_PATH: self.key_bytes(self.host_key)}
        with self.subTest("missing"):
            self.refused(host, AUTHORIZED_KEYS_PATH + " is missing")
        with self.subTest("no key in it"):
            self.refused(dict(host, **{AUTHORIZED_KEYS_PATH: "# nothing\n"}), "holds no public key")

    def test_an_option_that_adds_a_host_key_is_refused(self):
        sim = self.boot(sshd_opts=["-o", "HostKey=%s" % self.other_host_key])
        sim.wait_log(r"sshd not started")
        self.assertIn("sshd would use host keys other than", sim.read("/thopter/log"))


class TestFlySshServer(ImageTestCase):
    """fly's hallpass holds port 22 of the machine's 6PN address ([::1] here) from before
    the image's CMD runs; the image's sshd must live beside it, on 2222."""

    def keyscan(self, sim, host, port):
        scan = sim.run(["ssh-keyscan", "-T", "5", "-p", str(port), "-t", "ed25519", host], ns="net")
        return [line.split(None, 1)[1] for line in scan.stdout.splitlines()
                if line and not line.startswith("#")]

    def test_the_images_sshd_is_on_2222_beside_flys_ssh_server_on_22(self):
        self.assertEqual(PORT, 2222)
        sim = self.boot()
        sim.wait_ready()
        ours = " ".join(self.host_pub.split()[:2])
        hallpass = " ".join(sim.hallpass_public_key().split()[:2])
        self.assertNotEqual(hallpass, ours)
        self.assertEqual(self.keyscan(sim, "::1", 22), [hallpass])
        for host in ("::1", "127.0.0.1"):
            self.assertEqual(self.keyscan(sim, host, PORT), [ours], host)
        self.assertIn("Server listening on :: port 2222.", sim.console())
        self.assertNotIn("Bind to port", sim.console())
        # What a consumer on port 22 would meet: another host key, refused.
        r = self.ssh(sim, host="::1", port=22)
        self.assertEqual(r.returncode, 255)
        self.assertIn("Host key verification failed", r.stderr)
        self.assertEqual(self.ssh(sim, host="::1").returncode, 0, sim.console())

    def test_an_image_whose_sshd_wants_port_22_loses_the_6pn_address(self):
        # Negative control: the same layer with sshd on port 22 reproduces what fly does
        # to it (sshd keeps only 0.0.0.0:22) and is caught.
        with open(SSHD_CONFIG) as f:
            text = f.read()
        self.assertEqual(text.count("\nPort 2222\n"), 1)
        port22 = os.path.join(self.dir, "sshd_config-port-22")
        with open(port22, "w") as f:
            f.write(text.replace("\nPort 2222\n", "\nPort 22\n"))
        sim = self.boot(sshd_config=port22)
        sim.wait_log(r"Bind to port 22 on :: failed: Address already in use")
        sim.wait_log(r"Server listening on 0\.0\.0\.0 port 22\.")
        self.assertEqual(self.keyscan(sim, "::1", 22),
                         [" ".join(sim.hallpass_public_key().split()[:2])])
        self.assertNotEqual(self.ssh(sim, host="::1", port=22).returncode, 0)


class TestSshdSupervision(ImageTestCase):
    def test_a_killed_sshd_is_started_again_with_growing_pauses_and_logins_work(self):
        sim = self.boot()
        sim.wait_ready()
        self.assertEqual(self.ssh(sim, "echo before").stdout, "before\n")
        seen = []
        for n, pause in ((1, 1), (2, 2)):
            pids = sim.sshd_pids()
            self.assertEqual(len(pids), 1, sim.console())
            os.kill(pids[0], signal.SIGKILL)
            sim.wait_log(r"sshd \(pid \d+\) exited with status 137 after \d+s; starting it "
                         r"again in %ds \(restart %d\)" % (pause, n), timeout=20)
            sim.wait_log(r"sshd started again \(pid \d+, restart %d\)" % n, timeout=20)
            deadline = time.monotonic() + 20
            while True:
                r = self.ssh(sim, "echo after-%d" % n)
                if r.returncode == 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            self.assertEqual((r.returncode, r.stdout), (0, "after-%d\n" % n), r.stderr + sim.console())
            seen.append(sim.sshd_pids())
        self.assertNotEqual(seen[0], seen[1])
        self.assertNotIn(pids[0], sim.sshd_pids())
        log = sim.read("/thopter/log")  # the machine's log has it too
        self.assertIn("starting it again in 1s (restart 1)", log)
        self.assertIn("starting it again in 2s (restart 2)", log)
        self.assertTrue(sim.tmux_up(), "the init and the agent's tmux carried on")
        # A stop still stops the restarted sshd with everything else.
        self.assertEqual(sim.stop(signal.SIGTERM), 143, sim.console())
        self.assertEqual(sim.processes(), [])


class TestLifecycle(ImageTestCase):
    def test_sigterm_and_sigint_reach_the_init_and_sshd_and_stop_everything(self):
        for signum, status in ((signal.SIGTERM, 143), (signal.SIGINT, 143)):
            name = signal.Signals(signum).name
            with self.subTest(name):
                sim = self.boot()
                sim.wait_ready()
                self.assertIn("sshd", sim.process_names())
                t0 = time.monotonic()
                self.assertEqual(sim.stop(signum), status, sim.console())
                self.assertLess(time.monotonic() - t0, 6)
                console = sim.console()
                self.assertIn("[THOPTER-START] got %s: passing it to the init" % name, console)
                self.assertIn("Received signal 15; terminating.", console)  # sshd
                self.assertIn("[GOTTY-STUB] got SIG", console)               # the init's last process
                self.assertIn("the init exited with status %d after %s" % (status, name), console)
                if signum == signal.SIGINT:
                    # runuser blocks SIGINT; the hook follows up with SIGTERM.
                    self.assertIn("after SIGINT: sending it SIGTERM", console)
                self.assertEqual(sim.processes(), [])

    def test_an_init_that_dies_before_it_is_ready_means_no_sshd_and_its_status(self):
        sim = self.boot(create_user=False)  # no user thopter: the init's chown fails
        sim.proc.wait(30)
        self.assertEqual(sim.proc.returncode, 1, sim.console())
        console = sim.console()
        self.assertIn("the init exited before it was ready: sshd not started", console)
        self.assertNotIn("sshd started", console)
        self.assertNotIn("Server listening", console)

    def test_an_init_that_exits_after_readiness_takes_sshd_down_with_its_status(self):
        sim = self.boot(env={"SIM_GOTTY_EXIT": "3", "SIM_GOTTY_EXIT_AFTER": "2"})
        sim.wait_ready()
        self.assertEqual(self.ssh(sim).returncode, 0)
        sim.proc.wait(30)
        self.assertEqual(sim.proc.returncode, 3, sim.console())
        console = sim.console()
        self.assertIn("Received signal 15; terminating.", console)
        self.assertIn("the init exited with status 3; stopping", console)
        self.assertEqual(sim.processes(), [])


if __name__ == "__main__":
    unittest.main()
