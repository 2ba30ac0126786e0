"""Tests of the machine booter (thopter_machine.MachineBooter) against the fake fly API:
machines created through /v1 with config.files, as the consumer creates them, boot as
simulated thopters that run the real hook; the host key they show is the one in their
files; a new machine replaces the old one; a destroyed machine's sim stops.

Needs root. Run: cd tests/harness && python3 -m unittest -v test_thopter_machine
"""
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.request

from flyfake import FlyFake
from git_http_server import GitHttpServer
from thopter_machine import (AUTHORIZED_KEYS_PATH, HOST_KEY_PATH, MachineBooter, config_files,
                             keygen, known_hosts_line, ssh_argv)

TOKEN = "test-token"


class BooterTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root (namespaces, mounts, sshd)")
        cls.keys = tempfile.mkdtemp(prefix="booter-keys.")
        cls.consumer_key = os.path.join(cls.keys, "consumer")
        cls.consumer_pub = keygen(cls.consumer_key, comment="thopter-consumer")
        cls.other_key = os.path.join(cls.keys, "other")
        keygen(cls.other_key)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.keys, ignore_errors=True)

    def setUp(self):
        self.fly = FlyFake()
        self.booter = MachineBooter(self.fly)
        self.fly.start(token=TOKEN, **self.booter.fly_config())
        self.addCleanup(self.fly.stop)
        self.booter.start()
        self.addCleanup(self.booter.close)
        self.n = 0

    def api(self, method, path, body=None, query=""):
        req = urllib.request.Request(self.fly.base_url + "/v1/apps/thopters" + path + query,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     method=method)
        req.add_header("Authorization", "Bearer " + TOKEN)
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"null")

    def host_key(self):
        self.n += 1
        path = os.path.join(self.keys, "host-%s-%d" % (self.id().rsplit(".", 1)[-1], self.n))
        return path, keygen(path, comment="machine-%d" % self.n)

    def create(self, name, host_key, mounts=None, env=None):
        """POST /machines the way the consumer does: the per-machine host key and its own
        public key in config.files."""
        with open(host_key, "rb") as f:
            files = config_files({HOST_KEY_PATH: f.read(), AUTHORIZED_KEYS_PATH: self.consumer_pub + "\n"})
        config = {"image": "registry.fly.io/thopters:thopter-test", "files": files,
                  "env": env or {}, "metadata": {"thopter_request_id": name}}
        if mounts:
            config["mounts"] = mounts
        return self.api("POST", "/machines", {"name": name, "region": "ord", "config": config})

    def known_hosts(self, machine, public_key):
        path = os.path.join(self.booter.dir, "kh-%s" % machine["id"])
        with open(path, "w") as f:
            f.write(known_hosts_line(machine["private_ip"], self.booter.port, public_key) + "\n")
        return path

    def ssh(self, machine, known_hosts, command="true", key=None):
        return subprocess.run(ssh_argv(machine["private_ip"], self.booter.port, key or self.consumer_key,
                                       known_hosts) + [command],
                              capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30)

    def test_a_created_machine_boots_from_its_files_with_exactly_its_host_key(self):
        vol = self.api("POST", "/volumes", {"name": "thopter_data", "size_gb": 10, "region": "ord"})
        leftovers = os.path.join(self.booter.volume_dir(vol["id"]), "thopter", "workspace", "old")
        os.makedirs(leftovers)
        key, pub = self.host_key()
        m = self.create("thopter-42-abcdef", key, mounts=[{"volume": vol["id"], "path": "/data"}],
                        env={"REPOSITORY": "acme/widgets"})
        self.assertEqual(m["private_ip"], self.booter.thopter_ip)
        sim = self.booter.wait_sim(m["id"])
        kh = self.known_hosts(m, pub)
        r = self.ssh(m, kh, "hostname; runuser -u thopter -- tmux has-session -t =thopter && echo tmux-up;"
                            " ls -A /data/thopter/workspace; getent passwd thopter | cut -d: -f6")
        self.assertEqual(r.returncode, 0, r.stderr + sim.console())
        self.assertEqual(r.stdout.split(), [m["id"], "tmux-up", "/data/thopter"])
        self.assertFalse(os.path.exists(leftovers), "the init wiped the reused volume")
        self.assertTrue(os.path.isdir(sim.path("/data/thopter/workspace")))
        scan = subprocess.run(["ssh-keyscan", "-p", str(self.booter.port), "-t", "ed25519,ecdsa,rsa",
                               m["private_ip"]], capture_output=True, text=True, timeout=30)
        self.assertEqual([line.split(None, 1)[1] for line in scan.stdout.splitlines()],
                         [" ".join(pub.split()[:2])])
        # Port 22 of the same address is fly's SSH server (hallpass's stand-in), up before
        # the boot, with a host key of its own; the image's sshd is on its own port, 2222.
        self.assertEqual(self.booter.port, 2222)
        scan22 = subprocess.run(["ssh-keyscan", "-p", "22", "-t", "ed25519", m["private_ip"]],
                                capture_output=True, text=True, timeout=30)
        keys22 = [line.split(None, 1)[1] for line in scan22.stdout.splitlines()]
        self.assertEqual(keys22, [" ".join(sim.hallpass_public_key().split()[:2])], scan22.stderr)
        self.assertNotEqual(keys22, [" ".join(pub.split()[:2])])
        self.assertLess(sim.console().index("[HALLPASS]"), sim.console().index("[THOPTER-START]"))
        self.assertIn("Connection from", sim.hallpass_log())
        # Only that key passes the check, and only the consumer's key logs in.
        other_key, other_pub = self.host_key()
        bad = self.ssh(m, self.known_hosts(dict(m, id="x"), other_pub))
        self.assertEqual(bad.returncode, 255)
        self.assertIn("REMOTE HOST IDENTIFICATION HAS CHANGED", bad.stderr)
        self.assertEqual(self.ssh(m, kh, key=self.other_key).returncode, 255)
        # config.env reached the machine's init.
        environ = sim.run(["cat", "/proc/1/environ"], check=True).stdout.split("\0")
        self.assertIn("REPOSITORY=acme/widgets", environ)
        self.assertIn("FLY_MACHINE_ID=" + m["id"], environ)
        self.assertEqual(self.booter.errors, [])

    def test_a_new_machine_replaces_the_old_one_and_a_destroyed_one_stops(self):
        key_a, pub_a = self.host_key()
        a = self.create("thopter-1-aaaaaa", key_a)
        sim_a = self.booter.wait_sim(a["id"])
        kh_a = self.known_hosts(a, pub_a)
        self.assertEqual(self.ssh(a, kh_a).returncode, 0)
        key_b, pub_b = self.host_key()
        b = self.create("thopter-2-bbbbbb", key_b)
        sim_b = self.booter.wait_sim(b["id"])
        self.assertFalse(sim_a.alive())
        self.assertEqual(sim_a.processes(), [])
        self.assertEqual([(mid, why) for _, mid, why in self.booter.events],
                         [(a["id"], "booted"), (a["id"], "replaced"), (b["id"], "booted")])
        self.assertEqual(list(self.booter.running()), [b["id"]])
        # Same address and port, B's key now: A's pin fails, B's passes.
        self.assertEqual(self.ssh(a, kh_a).returncode, 255)
        self.assertEqual(self.ssh(b, self.known_hosts(b, pub_b)).returncode, 0)
        self.api("DELETE", "/machines/" + b["id"], query="?force=true")
        self.booter.wait_stopped(b["id"], timeout=15)
        self.assertEqual(sim_b.processes(), [])
        self.assertEqual(self.booter.running(), {})
        r = self.ssh(b, self.known_hosts(b, pub_b))
        self.assertEqual(r.returncode, 255)
        self.assertIn("Connection refused", r.stderr)
        time.sleep(0.3)
        self.assertEqual(self.booter.running(), {}, "a destroyed machine is not booted again")
        self.assertEqual(self.booter.errors, [])

    def test_a_golden_claude_with_a_fixed_key_runs_beside_a_thopter(self):
        gc = self.booter.seed_golden_claude(authorized_key=self.consumer_key + ".pub")
        self.assertEqual(gc.machine["private_ip"], self.booter.gc_ip)
        gc.write("/data/thopter/.claude/credentials.json", '{"token":"claude-login"}\n')
        key, pub = self.host_key()
        t = self.create("thopter-7-cccccc", key)
        self.booter.wait_sim(t["id"])
        kh = self.booter.write_known_hosts([gc.known_hosts_line, known_hosts_line(
            t["private_ip"], self.booter.port, pub)])
        r = self.ssh(gc.machine, kh, "stat -c %U /data/thopter/.claude/credentials.json; hostname")
        self.assertEqual((r.returncode, r.stdout.split()), (0, ["thopter", gc.machine["id"]]), r.stderr)
        self.assertEqual(self.ssh(t, kh, "hostname").stdout.strip(), t["id"])
        self.assertEqual(sorted(self.booter.running()), sorted([gc.machine["id"], t["id"]]))
        # A machine seeded without files (e.g. one that only counts for capacity) is not booted.
        plain = self.fly.seed_machine(name="thopter-9-plain0", state="started")
        time.sleep(0.3)
        self.assertNotIn(plain["id"], self.booter.running())
        self.assertEqual(self.booter.errors, [])

    def test_a_thopter_clones_from_the_git_server_on_the_hosts_loopback(self):
        pat = "ghp_booter-test-token-0123456789"
        git = GitHttpServer(pat).start()
        self.addCleanup(git.stop)
        git.create_repo("acme/widgets", {"README.md": "# widgets\n"})
        key, pub = self.host_key()
        m = self.create("thopter-8-dddddd", key)
        self.booter.wait_sim(m["id"])
        # As the consumer does it: the token on stdin, a helper that reads it from the env.
        helper = '!f() { echo username=x-access-token; echo "password=$GITHUB_REPO_PAT"; }; f'
        cmd = ("read -r GITHUB_REPO_PAT; export GITHUB_REPO_PAT; cd /data/thopter/workspace && "
               "runuser -u thopter -- git -c credential.helper='%s' clone -q %s && "
               "cat widgets/README.md && stat -c %%U widgets" % (helper, git.url("acme/widgets")))
        r = subprocess.run(ssh_argv(m["private_ip"], self.booter.port, self.consumer_key,
                                    self.known_hosts(m, pub)) + [cmd],
                           input=pat + "\n", capture_output=True, text=True, timeout=60)
        self.assertEqual((r.returncode, r.stdout), (0, "# widgets\nthopter\n"), r.stderr + "\n".join(git.lines()))
        self.assertEqual([x["auth"] for x in git.requests][:2], ["missing", "ok"])
        with open(self.booter.sim(m["id"]).path("/data/thopter/workspace/widgets/.git/config")) as f:
            self.assertNotIn(pat, f.read())


if __name__ == "__main__":
    unittest.main()
