"""deploy/thopter-image/ agrees with itself, with the original thopter image and with the
simulation the integration tests boot; build.sh and gc-run.sh do what their help says
(run against stub `fly`, `docker` and `redis-cli`; the real ssh-keygen and jq).
Label unit: no namespaces, no network."""
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import unittest

SOURCE_DIR = os.path.abspath(os.environ.get("THOPTER_SOURCE_DIR")
                             or os.path.join(os.path.dirname(__file__), "..", ".."))
IMAGE_DIR = os.path.join(SOURCE_DIR, "deploy", "thopter-image")
HOOK_PATH = "/usr/local/bin/thopter-start"
INIT_PATH = "/usr/local/bin/thopter-init.sh"  # dd6852b thopter/Dockerfile: CMD
HOST_KEY = "/etc/thopter/ssh/ssh_host_ed25519_key"
AUTH_KEYS = "/etc/thopter/ssh/authorized_keys"


def read(*parts):
    with open(os.path.join(*parts), encoding="utf-8") as f:
        return f.read()


def directives(text):
    """(keyword, value) of an sshd_config, comments and blank lines left out."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            k, _, v = line.partition(" ")
            out.append((k.lower(), v.strip()))
    return out


class TestImageFiles(unittest.TestCase):
    def test_dockerfile_extends_a_base_replaces_cmd_and_bakes_no_host_key(self):
        text = read(IMAGE_DIR, "Dockerfile")
        lines = [l for l in text.splitlines() if l.strip() and not l.startswith("#")]
        self.assertEqual(lines[0], "ARG BASE_IMAGE")
        self.assertEqual(lines[1], "FROM ${BASE_IMAGE}")
        self.assertIn("apt-get install -y --no-install-recommends openssh-server", text)
        self.assertIn("rm -f /etc/ssh/ssh_host_*", text)
        self.assertIn("COPY sshd_config /etc/ssh/sshd_config", text)
        self.assertIn("COPY thopter-start %s" % HOOK_PATH, text)
        self.assertEqual([l for l in lines if l.startswith(("CMD", "ENTRYPOINT"))],
                         ['CMD ["%s"]' % HOOK_PATH])
        self.assertIn("test -x %s" % INIT_PATH, text)
        self.assertEqual([l for l in lines if l.startswith("EXPOSE")], ["EXPOSE 2222"])

    def test_sshd_config_takes_only_the_per_machine_files(self):
        d = dict(directives(read(IMAGE_DIR, "sshd_config")))
        conf = directives(read(IMAGE_DIR, "sshd_config"))
        self.assertEqual([v for k, v in conf if k == "hostkey"], [HOST_KEY])
        self.assertEqual([v for k, v in conf if k == "authorizedkeysfile"], [AUTH_KEYS])
        for key, value in (("passwordauthentication", "no"), ("kbdinteractiveauthentication", "no"),
                           ("permitrootlogin", "prohibit-password"), ("authenticationmethods", "publickey"),
                           ("addressfamily", "any"), ("allowusers", "root")):
            self.assertEqual(d.get(key), value, key)
        # Port 2222 (22 is fly's hallpass on the 6PN address), once; no ListenAddress,
        # Include or Match: every address, and a command-line -o ListenAddress replaces
        # rather than adds.
        self.assertEqual([v for k, v in conf if k == "port"], ["2222"])
        for key in ("listenaddress", "include", "match"):
            self.assertNotIn(key, d)

    def test_sshd_accepts_the_config(self):
        with tempfile.TemporaryDirectory() as tmp:
            key = os.path.join(tmp, "hostkey")
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
            cfg = os.path.join(tmp, "sshd_config")
            with open(cfg, "w") as f:
                f.write(read(IMAGE_DIR, "sshd_config").replace(HOST_KEY, key))
            os.makedirs("/run/sshd", exist_ok=True)
            r = subprocess.run(["/usr/sbin/sshd", "-T", "-f", cfg], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("listenaddress [::]:2222", r.stdout.splitlines())
            self.assertIn("listenaddress 0.0.0.0:2222", r.stdout.splitlines())
            self.assertNotIn("port 22", r.stdout.splitlines())

    def test_the_hook_and_the_simulation_use_the_image_paths(self):
        hook = read(IMAGE_DIR, "thopter-start")
        for name, value in (("INIT", INIT_PATH), ("HOST_KEY", "$SSH_DIR/ssh_host_ed25519_key"),
                            ("AUTH_KEYS", "$SSH_DIR/authorized_keys"), ("SSH_DIR", "/etc/thopter/ssh"),
                            ("SSHD_CONFIG", "/etc/ssh/sshd_config"), ("LOG", "/thopter/log")):
            self.assertRegex(hook, r"(?m)^%s=%s$" % (name, re.escape(value)))
        boot = read(SOURCE_DIR, "tests", "harness", "thopter-sim-boot.sh")
        self.assertIn('"$r/usr/local/bin/thopter-start"', boot)
        self.assertIn('"$r/usr/local/bin/thopter-init.sh"', boot)
        self.assertIn('"$r/etc/ssh/sshd_config"', boot)
        self.assertIn('rm -f "$r"/etc/ssh/ssh_host_*', boot)
        self.assertIn("exec chroot \"$r\" /usr/local/bin/thopter-start", boot)

    def test_scripts_are_executable(self):
        for name in ("thopter-start", "build.sh", "gc-run.sh"):
            self.assertTrue(os.stat(os.path.join(IMAGE_DIR, name)).st_mode & stat.S_IXUSR, name)


STUB_FLY = r"""#!/bin/bash
# Stub flyctl: logs its arguments; machines/volumes state in $STUB_STATE.
printf '%s\n' "$*" >>"$STUB_STATE/calls"
case "$1 $2" in
"machines list") cat "$STUB_STATE/machines.json" 2>/dev/null || echo '[]' ;;
"volumes list") cat "$STUB_STATE/volumes.json" 2>/dev/null || echo '[]' ;;
"machine run")
    name=""
    while [ "$#" -gt 0 ]; do
        if [ "$1" = --name ]; then name=$2; fi
        if [ "$1" = --file-local ]; then cp "${2#*=}" "$STUB_STATE/file-$(basename "${2%%=*}")"; fi
        shift
    done
    printf '[{"id":"148e21a3c96989","name":"%s","state":"started","private_ip":"fdaa:0:1:a7b:9:2b3c:4d5e:2"}]\n' "$name" >"$STUB_STATE/machines.json"
    ;;
esac
"""


class ScriptCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="thopter-image-scripts.")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.bin = os.path.join(self.tmp, "bin")
        self.state = os.path.join(self.tmp, "state")
        os.makedirs(self.bin)
        os.makedirs(self.state)
        for name, text in (("fly", STUB_FLY), ("docker", "#!/bin/sh\necho \"docker $*\" >>\"$STUB_STATE/calls\"\n"),
                           ("redis-cli", "#!/bin/sh\necho \"redis-cli $*\" >>\"$STUB_STATE/calls\"\n")):
            path = os.path.join(self.bin, name)
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o755)

    def run_script(self, name, *args):
        env = {"PATH": self.bin + ":/usr/bin:/bin", "HOME": os.path.join(self.tmp, "home"),
               "STUB_STATE": self.state}
        return subprocess.run([os.path.join(IMAGE_DIR, name)] + list(args), capture_output=True, text=True,
                              env=env, timeout=60)

    def calls(self):
        try:
            with open(os.path.join(self.state, "calls")) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []


class TestBuildScript(ScriptCase):
    BASE = "registry.fly.io/thopters:thopter-ab12cd34-1765000000"

    def test_builds_on_the_base_pushes_and_sets_the_metadata(self):
        r = self.run_script("build.sh", "--app", "thopters", "--base", self.BASE, "--set-metadata")
        self.assertEqual(r.returncode, 0, r.stderr)
        image = self.BASE + "-ssh"
        self.assertEqual(r.stdout.splitlines()[-1], "THOPTER_IMAGE=" + image)
        # Authenticated to fly's registry before the build pulls the (private) base.
        self.assertEqual(self.calls(), [
            "auth docker",
            "docker build --platform linux/amd64 --build-arg BASE_IMAGE=%s --build-arg CURRENT_IMAGE=%s -t %s %s"
            % (self.BASE, image, image, IMAGE_DIR),
            "docker push " + image,
            "redis-cli -h 1.redis.kv._metadata.thopters.internal HSET metadata THOPTER_IMAGE " + image])

    def test_dry_run_no_push_tag_and_bad_arguments(self):
        r = self.run_script("build.sh", "--app", "thopters", "--base", self.BASE, "--tag", "v2-ssh",
                            "--no-push", "--dry-run")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.calls(), [])
        self.assertEqual(len(r.stdout.splitlines()), 3)
        self.assertEqual(r.stdout.splitlines()[0].strip(), "fly auth docker",
                         "a base on registry.fly.io is pulled after logging in, even with --no-push")
        self.assertIn("-t registry.fly.io/thopters:v2-ssh", r.stdout)
        # A public base with --no-push needs no fly login at all.
        r = self.run_script("build.sh", "--app", "thopters", "--base", "ubuntu:22.04", "--no-push")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([c.split()[0] for c in self.calls()], ["docker"])
        for args in ([], ["--app", "a"], ["--app", "a", "--base", "registry.fly.io/a"],
                     ["--app", "a", "--base", self.BASE, "--tag", "bad tag"], ["--nope"]):
            with self.subTest(args=args):
                self.assertEqual(self.run_script("build.sh", *args).returncode, 2)


class TestGoldenClaudeScript(ScriptCase):
    def setUp(self):
        super().setUp()
        self.consumer = os.path.join(self.tmp, "consumer")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", self.consumer], check=True)
        self.key_dir = os.path.join(self.tmp, "gc-keys")

    def gc_run(self, *extra):
        return self.run_script("gc-run.sh", "--app", "thopters", "--region", "ord", "--image",
                               "registry.fly.io/thopters:thopter-x-ssh", "--consumer-key", self.consumer + ".pub",
                               "--name", "josh", "--key-dir", self.key_dir, *extra)

    def public_half(self):
        return subprocess.run(["ssh-keygen", "-y", "-f", os.path.join(self.key_dir, "ssh_host_ed25519_key")],
                              capture_output=True, text=True, check=True).stdout.split()[:2]

    def test_runs_the_gc_with_a_fixed_key_and_prints_its_known_hosts_lines(self):
        r = self.gc_run("--", "--env", "WEB_TERMINAL_PORT=7681")
        self.assertEqual(r.returncode, 0, r.stderr)
        pub = " ".join(self.public_half())
        lines = [l for l in r.stdout.splitlines() if not l.startswith("#")]
        # Port 2222, the image's sshd (22 is fly's own SSH server): [host]:port.
        self.assertEqual(lines, ["[148e21a3c96989.vm.thopters.internal]:2222 " + pub,
                                 "[fdaa:0:1:a7b:9:2b3c:4d5e:2]:2222 " + pub])
        run = [c for c in self.calls() if c.startswith("machine run")][0]
        self.assertIn("--name gc-josh", run)
        self.assertIn("--volume gc_volume_josh:/data", run)
        self.assertIn("--file-local /etc/thopter/ssh/ssh_host_ed25519_key=%s/ssh_host_ed25519_key" % self.key_dir, run)
        self.assertIn("--file-local /etc/thopter/ssh/authorized_keys=%s/authorized_keys" % self.key_dir, run)
        self.assertIn("--env DANGEROUSLY_SKIP_FIREWALL=I_UNDERSTAND", run)
        self.assertTrue(run.endswith("--env WEB_TERMINAL_PORT=7681"), run)
        self.assertIn("volumes create gc_volume_josh", "\n".join(self.calls()))
        # What fly received is the key pair's private half and the consumer's public key.
        with open(os.path.join(self.state, "file-authorized_keys")) as f, open(self.consumer + ".pub") as g:
            self.assertEqual(f.read(), g.read())
        with open(os.path.join(self.state, "file-ssh_host_ed25519_key")) as f:
            self.assertIn("BEGIN OPENSSH PRIVATE KEY", f.read())
        self.assertEqual(stat.S_IMODE(os.stat(self.key_dir).st_mode), 0o700)

        # gc-josh exists now: refused; its lines can be printed again.
        again = self.gc_run()
        self.assertEqual(again.returncode, 2)
        self.assertIn("already exists", again.stderr)
        only = self.gc_run("--known-hosts-only")
        self.assertEqual([l for l in only.stdout.splitlines() if not l.startswith("#")], lines)

        # Re-created (after a destroy), the GC keeps its host key.
        os.unlink(os.path.join(self.state, "machines.json"))
        self.assertEqual(self.gc_run().returncode, 0)
        self.assertEqual(" ".join(self.public_half()), pub)

    def test_another_ssh_port_is_named_in_the_lines_and_22_is_refused(self):
        r = self.gc_run("--ssh-port", "2022")
        self.assertEqual(r.returncode, 0, r.stderr)
        pub = " ".join(self.public_half())
        self.assertIn("[148e21a3c96989.vm.thopters.internal]:2022 " + pub, r.stdout.splitlines())
        r = self.gc_run("--ssh-port", "22", "--known-hosts-only")
        self.assertEqual(r.returncode, 2)
        self.assertIn("hallpass", r.stderr)

    def test_refuses_a_private_key_as_the_consumer_key_and_bad_names(self):
        r = self.run_script("gc-run.sh", "--app", "a", "--region", "ord", "--image", "i",
                            "--consumer-key", self.consumer, "--key-dir", self.key_dir)
        self.assertEqual(r.returncode, 2)
        self.assertIn("private key", r.stderr)
        r = self.gc_run("--name", "Bad_Name")
        self.assertEqual(r.returncode, 2)
        self.assertEqual(self.calls(), [])
        self.assertFalse(os.path.exists(self.key_dir))


if __name__ == "__main__":
    unittest.main()
