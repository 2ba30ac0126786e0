#!/usr/bin/python3
"""thopter_machine.py - simulated thopter machines that run the REAL start hook.

A SimMachine is one "fly machine" of the thopter image, booted from the files the
Machines API received in config.files, on this host, as root:

- its own mount, PID and UTS namespaces (and, with net=True, its own network namespace);
- a root filesystem that is an overlay of the host's / with a private upper layer, so the
  machine has /data, /thopter/log, /etc/thopter/ssh, user thopter (home /data/thopter),
  a fresh /tmp and /run, and nothing it writes reaches the host (tests/harness/
  thopter-sim-boot.sh builds it; see there what is real and what is a stub);
- /data is a host directory, the machine's volume (volumes are reused across machines on
  fly, hence the init's wipe), so tests can plant files before boot and read results after;
- the image's init is tests/data/sim-thopter-init.sh (the project's model of dd6852b's
  thopter-init.sh: its steps, in its order), the CMD is deploy/thopter-image/thopter-start and sshd reads
  deploy/thopter-image/sshd_config (the files themselves, bind-mounted);
- the hook is PID 1 of the machine: when it exits, everything in the machine dies, as when
  a fly machine stops.

- fly's own SSH server, hallpass, runs in every machine before its boot: bound to port 22
  of the machine's address (its private_ip on the host's network, [::1] in a machine with
  its own network namespace), with a host key of its own, as fly runs it on port 22 of
  every machine's 6PN address. The image's sshd listens on the port its sshd_config says
  (2222); an image or a consumer that uses port 22 meets hallpass and fails, as on fly.

A MachineBooter watches the fake fly API (tests/fakes/fake_fly.py, with its files_dir
config) and boots a SimMachine for every `thopter-*` or `gc-*` machine that is starting or
started and has config.files, listening on the machine's private_ip (a loopback address
the fake maps by name prefix, picked at random per booter so that booters running at the
same time do not meet) and the image's port; a new machine on the same address replaces
the old one (the old sim is stopped first), and a machine that stops or is destroyed has
its sim stopped. The consumer's SSH host key check can therefore only pass with the key it
gave that machine, on the image's port: consumer_env() leaves THOPTER_SSH_PORT to the
consumer's default.

Using it from a provision test (what test_provision.py can switch to; ThopterHosts in
provision_harness.py keeps working meanwhile)::

    from flyfake import FlyFake
    from git_http_server import GitHttpServer
    from thopter_machine import MachineBooter, keygen

    class ProvisionTestCase(unittest.TestCase):
        def setUp(self):
            self.fly = FlyFake()
            self.booter = MachineBooter(self.fly)            # a work dir, two random 127.x addresses
            self.fly.start(token=TOKEN, **self.booter.fly_config())   # files_dir + private IPs
            self.addCleanup(self.fly.stop)
            self.booter.start()                              # the watcher thread
            self.addCleanup(self.booter.close)               # runs first: stops every sim
            self.git = GitHttpServer(token=PAT).start()      # clones over HTTP, no file:// binds
            self.addCleanup(self.git.stop)
            self.git.create_repo("acme/widgets", {"README.md": "# widgets\n"})
            key = os.path.join(self.booter.dir, "consumer")
            keygen(key)                                      # the consumer's THOPTER_SSH_KEY
            # A Golden Claude with a fixed host key, as deploy/thopter-image/gc-run.sh runs one:
            self.gc = self.booter.seed_golden_claude(authorized_key=key + ".pub")
            self.gc.write("/data/thopter/.claude/credentials.json", '{"token":"x"}\n')
            env = dict(self.booter.consumer_env(),           # SSH host/port, /data/thopter, ...
                       THOPTER_SSH_KEY=key,
                       THOPTER_SSH_KNOWN_HOSTS=self.booter.write_known_hosts([self.gc.known_hosts_line]),
                       THOPTER_GIT_URL=self.git.base_url + "/{repository}.git")

        def test_x(self):
            ...  # produce a provision request; the consumer creates thopter-42-xxxxxx
            mid = final[-1]["thopterId"]
            sim = self.booter.wait_sim(mid)                  # booted, sshd listening
            self.assertIn("spin", sim.read("/data/thopter/workspace/issue.md"))
            self.assertTrue(sim.tmux_up())
            self.assertEqual(self.booter.errors, [])

The thopter user's home is /data/thopter in every sim (THOPTER_REMOTE_HOME's default);
sim.path()/read() reach it on the host (/data is the machine's volume, a host directory
under booter.dir/volumes/<volume id>). Host paths are not visible inside a sim (its /tmp
is its own): bind what a test needs with MachineBooter(fly, binds=[(host, guest)]), e.g.
a file:// repository, or use GitHttpServer. The booter only boots machines whose
config.files the fake kept; a machine seeded without files (e.g. a busy thopter that only
counts for capacity) is left alone. Sim machines listen on the machine's private_ip, so
thopter_ip/gc_ip must not be ThopterHosts' addresses if both run in one test.

As a command, `thopter_machine.py probe ...` is the readiness probe the tests run inside a
machine's network namespace (see probe_main).

Needs root (namespaces, mounts, chroot), util-linux unshare/nsenter, OpenSSH, tmux.
Standard library only.
"""

import argparse
import base64
import ctypes
import json
import os
import pwd
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.abspath(os.path.join(HERE, "..", ".."))
BOOT = os.path.join(HERE, "thopter-sim-boot.sh")
HOOK = os.path.join(SOURCE_DIR, "deploy", "thopter-image", "thopter-start")
SSHD_CONFIG = os.path.join(SOURCE_DIR, "deploy", "thopter-image", "sshd_config")
INIT = os.path.join(SOURCE_DIR, "tests", "data", "sim-thopter-init.sh")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
SSH = "/usr/bin/ssh"
SSH_KEYGEN = "/usr/bin/ssh-keygen"

HOST_KEY_PATH = "/etc/thopter/ssh/ssh_host_ed25519_key"
HALLPASS_PORT = 22  # fly's SSH server on every machine's 6PN address
HALLPASS_LOG = "/run/hallpass/log"
HALLPASS_HOST_KEY = "/run/hallpass/ssh_host_ed25519_key"
AUTHORIZED_KEYS_PATH = "/etc/thopter/ssh/authorized_keys"

# The machine's environment before config.env: the image's ENV lines (dd6852b
# thopter/Dockerfile), with C.UTF-8 for en_US.UTF-8 (the host may not have that locale).
BASE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "TZ": "UTC",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "LC_CTYPE": "C.UTF-8",
    "TERM": "xterm-256color",
    "COLORTERM": "truecolor",
    "FORCE_COLOR": "1",
    "NO_UPDATE_NOTIFIER": "1",
    "DEBIAN_FRONTEND": "noninteractive",
}

_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    """preexec_fn: the child gets SIGKILL when the thread that spawned it goes away, so a
    test runner killed by a timeout leaves no machine behind (unshare --kill-child then
    takes the machine's PID 1 down with it)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:
        pass


def keygen(path, key_type="ed25519", comment="thopter-test"):
    """Makes an unencrypted key pair at path / path.pub; returns the public key line."""
    for p in (path, path + ".pub"):
        if os.path.exists(p):
            os.unlink(p)
    subprocess.run([SSH_KEYGEN, "-q", "-t", key_type, "-N", "", "-C", comment, "-f", path],
                   check=True, stdin=subprocess.DEVNULL)
    os.chmod(path, 0o600)
    with open(path + ".pub") as f:
        return f.read().strip()


def image_port(sshd_config=SSHD_CONFIG):
    """The port the image's sshd listens on: its sshd_config's Port (sshd's 22 without)."""
    with open(sshd_config) as f:
        ports = re.findall(r"(?mi)^\s*Port\s+(\d+)\s*$", f.read())
    return int(ports[0]) if ports else 22


def loopback_pair(ports):
    """Two random loopback addresses (127.100.0.0 - 127.199.255.255) on which every port
    in ports is free: each booter gets its own, so that booters of tests running at the
    same time never share an address on the fixed ports 22 and 2222."""
    rnd = random.SystemRandom()
    for _ in range(200):
        a, b = rnd.randrange(100, 200), rnd.randrange(0, 256)
        c = rnd.randrange(0, 254)
        pair = ("127.%d.%d.%d" % (a, b, c + 1), "127.%d.%d.%d" % (a, b, c + 2))
        ok = True
        for addr in pair:
            for port in ports:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                    try:
                        s.bind((addr, port))
                    except OSError:
                        ok = False
        if ok:
            return pair
    raise RuntimeError("no loopback address pair with ports %s free" % (ports,))


def known_hosts_line(host, port, public_key_line):
    """An OpenSSH known_hosts line (`[host]:port` for a port other than 22)."""
    keytype, key = public_key_line.split()[:2]
    name = host if int(port) == 22 else "[%s]:%d" % (host, int(port))
    return "%s %s %s" % (name, keytype, key)


def free_port(*addrs):
    """A TCP port free on every address given (bound and released)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((addrs[0], 0))
            port = s.getsockname()[1]
        ok = True
        for a in addrs[1:]:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind((a, port))
                except OSError:
                    ok = False
        if ok:
            return port
    raise RuntimeError("no free port on %s" % (addrs,))


def files_tree(dir, files):
    """Writes {guest_path: bytes|str} under dir as the fake's files_dir does (mode 0644);
    returns dir. A value (content, mode) sets the mode."""
    for guest, content in files.items():
        mode = 0o644
        if isinstance(content, tuple):
            content, mode = content
        path = os.path.join(dir, guest.lstrip("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content.encode() if isinstance(content, str) else content)
        os.chmod(path, mode)
    return dir


def config_files(files):
    """{guest_path: bytes|str} -> the Machines API's config.files list."""
    out = []
    for guest, content in files.items():
        data = content.encode() if isinstance(content, str) else content
        out.append({"guest_path": guest, "raw_value": base64.b64encode(data).decode("ascii")})
    return out


class SimMachine:
    """One simulated thopter machine (see the module docstring).

    volume: host directory mounted at /data (made if missing);
    files: host directory laid out as <guest path> (the fake's files_dir/<machine id>);
    net: own network namespace (sshd then listens on the image's port, 2222, of its own
         [::1] and 127.0.0.1, and hallpass on [::1]:22; reach them with run(...,
         ns="net")); else the host's network, where
    listen: an address becomes `-o ListenAddress=` of thopter-start (the port stays the
         image's: `-o Port=` would add one, not replace it), and hallpass takes port 22 of
         it;
    hallpass=False: no stand-in of fly's SSH server on port 22 (a negative control);
    sshd_opts: more `-o` options for thopter-start; env: added to the environment;
    create_user=False leaves user thopter out of the image (its init then fails);
    hook / init / sshd_config: other files than the real ones (negative controls);
    binds: [(host path, guest path)] bind-mounted into the machine.
    """

    def __init__(self, machine_id="sim", volume=None, files=None, dir=None, net=False,
                 listen=None, sshd_opts=(), env=None, create_user=True, hook=HOOK, init=INIT,
                 sshd_config=SSHD_CONFIG, binds=(), hostname=None, hallpass=True):
        self.machine_id = machine_id
        self._own_dir = dir is None
        self.dir = os.path.abspath(dir) if dir else tempfile.mkdtemp(prefix="thopter-sim.")
        os.makedirs(self.dir, exist_ok=True)
        self.volume = os.path.abspath(volume) if volume else os.path.join(self.dir, "volume")
        os.makedirs(self.volume, exist_ok=True)
        self.files = files
        self.net = net
        if isinstance(listen, (tuple, list)):
            raise ValueError("listen is an address: the port is the image's (%d)"
                             % image_port(sshd_config))
        self.listen = listen
        self.port = image_port(sshd_config)
        self.sshd_opts = list(sshd_opts)
        if listen:
            self.sshd_opts = ["-o", "ListenAddress=%s" % listen] + self.sshd_opts
        self.hallpass = (listen or ("::1" if net else None)) if hallpass else None
        self.env = dict(BASE_ENV)
        self.env.update(env or {})
        self.create_user = create_user
        self.hook, self.init, self.sshd_config = hook, init, sshd_config
        self.binds = list(binds)
        self.hostname = hostname or machine_id
        self.console_path = os.path.join(self.dir, "console.log")
        self.hallpass_dir = os.path.join(self.dir, "hallpass")  # its key and log, kept
        self.state_dir = os.path.join(self.dir, "rw")
        self.proc = None
        self.pid = None          # the hook's pid on the host (PID 1 inside)
        self.pidns = None
        self._pidns_fd = None
        self.returncode = None
        self.started_at = None
        self.start_mark = 0      # the machine's start event this boot answered (MachineBooter)

    # ---- lifecycle ---------------------------------------------------------------------

    def command(self):
        unshare = ["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--uts",
                   "--kill-child=SIGKILL"] + (["--net"] if self.net else [])
        boot = [BOOT, "--state", self.state_dir, "--volume", self.volume,
                "--hostname", self.hostname, "--hook", self.hook, "--init", self.init,
                "--sshd-config", self.sshd_config]
        if self.files:
            boot += ["--files", self.files]
        if self.net:
            boot.append("--net")
        if not self.create_user:
            boot.append("--no-user")
        for src, dst in self.binds:
            boot += ["--bind", "%s:%s" % (src, dst)]
        if self.hallpass:
            boot += ["--hallpass", self.hallpass, "--hallpass-dir", self.hallpass_dir]
        return unshare + boot + ["--"] + self.sshd_opts

    def start(self):
        """Boots the machine; returns once its PID 1 exists (not when it is ready)."""
        if self.proc is not None:
            raise RuntimeError("already started")
        os.makedirs(self.state_dir, exist_ok=True)
        if self.hallpass:
            shutil.rmtree(self.hallpass_dir, ignore_errors=True)  # a new key at each boot
            os.makedirs(self.hallpass_dir, mode=0o700)
        with open(self.console_path, "ab") as console:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=console,
                                         stderr=subprocess.STDOUT, env=self.env, close_fds=True,
                                         preexec_fn=_die_with_parent)
        self.started_at = time.time()
        children = "/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with open(children) as f:
                    pids = f.read().split()
            except OSError:
                pids = []
            if pids:
                self.pid = int(pids[0])
                try:
                    # Held open so that the namespace, and with it its inode number, is not
                    # reused by a later machine while this object may still be asked.
                    self._pidns_fd = os.open("/proc/%d/ns/pid" % self.pid, os.O_RDONLY)
                    self.pidns = "pid:[%d]" % os.fstat(self._pidns_fd).st_ino
                except OSError:
                    pass
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.005)
        raise RuntimeError("machine %s did not boot:\n%s" % (self.machine_id, self.console()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_log(self, pattern, timeout=20.0):
        """Waits for a regex in the console (hook, init and sshd output); returns the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.console())
            if m:
                return m
            if not self.alive():
                m = rx.search(self.console())
                if m:
                    return m
                raise AssertionError("machine %s exited (%s) before /%s/:\n%s" % (
                    self.machine_id, self.proc.returncode, pattern, self.console()))
            if time.monotonic() > deadline:
                raise AssertionError("timed out after %.0f s waiting for /%s/ in machine %s:\n%s"
                                     % (timeout, pattern, self.machine_id, self.console()))
            time.sleep(0.02)

    def wait_ready(self, timeout=20.0):
        """Waits until sshd listens (its "Server listening" line); raises if the hook
        refused to start it or the machine died."""
        m = self.wait_log(r"Server listening on .* port \d+\.|sshd not started", timeout)
        if "sshd not started" in m.group(0):
            raise AssertionError("machine %s refused to start sshd:\n%s"
                                 % (self.machine_id, self.console()))
        return self

    def stop(self, signum=signal.SIGTERM, timeout=10.0):
        """Sends signum to the hook and waits for the machine to end (SIGKILL after
        timeout); returns the hook's exit status. Idempotent."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.returncode = self.proc.wait()
        shutil.rmtree(self.state_dir, ignore_errors=True)
        return self.returncode

    def kill(self):
        """Ends the machine at once (SIGKILL to its PID 1: the kernel kills the rest)."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc.wait()

    def close(self):
        self.stop(timeout=5)
        if self._pidns_fd is not None:
            os.close(self._pidns_fd)
            self._pidns_fd = None
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
        return False

    # ---- looking inside ------------------------------------------------------------------

    def console(self):
        try:
            with open(self.console_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def processes(self):
        """Host pids of the processes still in the machine's PID namespace."""
        out = []
        if not self.pidns:
            return out
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    if os.readlink("/proc/%s/ns/pid" % name) == self.pidns:
                        out.append(int(name))
                except OSError:
                    pass
        return out

    def process_names(self):
        names = []
        for pid in self.processes():
            try:
                with open("/proc/%d/comm" % pid) as f:
                    names.append(f.read().strip())
            except OSError:
                pass
        return names

    def path(self, guest):
        """The host path of a guest path: the volume for /data, else through
        /proc/PID/root (only while the machine runs)."""
        guest = os.path.normpath("/" + guest.lstrip("/"))
        if guest == "/data" or guest.startswith("/data/"):
            return os.path.join(self.volume, guest[len("/data"):].lstrip("/"))
        return "/proc/%d/root%s" % (self.pid, guest)

    def read(self, guest, binary=False):
        with open(self.path(guest), "rb" if binary else "r") as f:
            return f.read()

    def write(self, guest, content, owner=None, mode=0o644):
        """Writes a file in the machine (after readiness, as an operator or the consumer
        would); owner is a user name of the machine."""
        path = self.path(guest)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content.encode() if isinstance(content, str) else content)
        os.chmod(path, mode)
        if owner:
            self.run(["chown", "%s:%s" % (owner, owner), guest], check=True)

    def run(self, argv, ns="all", check=False, timeout=30, **kw):
        """Runs argv in the machine: ns="all" inside it (its root, users, /tmp, network),
        ns="net" only in its network namespace (host files, e.g. test keys)."""
        if ns == "net":
            cmd = ["nsenter", "--net=/proc/%d/ns/net" % self.pid, "--"] + list(argv)
        else:
            cmd = ["nsenter", "-t", str(self.pid), "-m", "-u", "-n", "-p", "-r", "-w",
                   "--"] + list(argv)
        env = kw.pop("env", None)
        if ns != "net" and env is None:
            env = self.env
        return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=timeout,
                              env=env, **kw)

    def tmux_up(self, session="thopter", user="thopter"):
        return self.run(["runuser", "-u", user, "--", "tmux", "has-session",
                         "-t", "=" + session]).returncode == 0

    def hallpass_log(self):
        """What fly's SSH server stand-in logged (sshd LogLevel VERBOSE: one
        "Connection from" line per client), also once the machine has stopped; "" when
        it has none."""
        try:
            with open(os.path.join(self.hallpass_dir, "log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def hallpass_public_key(self):
        with open(os.path.join(self.hallpass_dir, os.path.basename(HALLPASS_HOST_KEY) + ".pub")) as f:
            return f.read().strip()

    def sshd_pids(self):
        """Host pids of the image's sshd listener(s): processes named sshd whose parent is
        the hook (PID 1 of the machine); its sessions and hallpass are not among them."""
        out = []
        for pid in self.processes():
            try:
                with open("/proc/%d/stat" % pid) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                with open("/proc/%d/comm" % pid) as f:
                    comm = f.read().strip()
            except OSError:
                continue
            if comm == "sshd" and int(fields[1]) == self.pid:
                out.append(pid)
        return out

    def host_public_key(self):
        """The public half of the host key file the machine got (from its files). The
        file is read through a private copy: fly writes config.files 0644, and
        ssh-keygen refuses an unprotected private key."""
        key = os.path.join(self.files or "", HOST_KEY_PATH.lstrip("/"))
        with tempfile.NamedTemporaryFile(prefix="hostkey.") as tmp:
            with open(key, "rb") as f:
                tmp.write(f.read())
            tmp.flush()
            os.chmod(tmp.name, 0o600)
            out = subprocess.run([SSH_KEYGEN, "-y", "-P", "", "-f", tmp.name], capture_output=True,
                                 text=True, check=True)
        return out.stdout.strip()


def ssh_argv(host, port, key, known_hosts, user="root", extra=()):
    """An OpenSSH client command line that trusts only known_hosts and offers only key."""
    return [SSH, "-p", str(port), "-i", key, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=%s" % known_hosts,
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5",
            "-o", "LogLevel=ERROR", "-F", "/dev/null"] + list(extra) + ["%s@%s" % (user, host)]


class GoldenClaude:
    """A seeded gc-* machine booted by a MachineBooter (seed_golden_claude)."""

    def __init__(self, machine, sim, host_key, known_hosts_line):
        self.machine, self.sim = machine, sim
        self.host_key = host_key
        self.known_hosts_line = known_hosts_line

    def write(self, guest, content, owner="thopter", mode=0o644):
        self.sim.write(guest, content, owner=owner, mode=mode)


class MachineBooter:
    """Boots a SimMachine for each thopter-*/gc-* machine of the fake fly API (see the
    module docstring). All sims listen on one port, each on its machine's private_ip."""

    STOP_STATES = {"stopping", "stopped", "suspending", "suspended", "destroying", "destroyed",
                   "failed"}
    RUN_STATES = {"starting", "started"}

    def __init__(self, fly, dir=None, thopter_ip=None, gc_ip=None,
                 prefixes=("thopter-", "gc-"), env=None, binds=(), sshd_opts=(), poll=0.05,
                 boot_without_files=False, stop_timeout=6.0):
        self.fly = fly
        self._own_dir = dir is None
        self.dir = os.path.abspath(dir) if dir else tempfile.mkdtemp(prefix="thopter-booter.")
        os.chmod(self.dir, 0o755)
        self.files_dir = os.path.join(self.dir, "files")
        self.volumes_dir = os.path.join(self.dir, "volumes")
        os.makedirs(self.files_dir, exist_ok=True)
        os.makedirs(self.volumes_dir, exist_ok=True)
        # Every sim listens on the image's port (sshd_config's 2222), hallpass on 22.
        self.port = image_port()
        if not (thopter_ip and gc_ip):
            thopter_ip, gc_ip = loopback_pair((HALLPASS_PORT, self.port))
        self.thopter_ip, self.gc_ip = thopter_ip, gc_ip
        self.prefixes = tuple(prefixes)
        self.env = dict(env or {})
        self.binds = list(binds)
        self.sshd_opts = list(sshd_opts)
        self.poll = poll
        self.boot_without_files = boot_without_files
        self.stop_timeout = stop_timeout
        self.lock = threading.Condition()
        self.sims = {}          # machine id -> running SimMachine
        self.finished = {}      # machine id -> last stopped SimMachine
        self.dead = set()       # destroyed machine ids: never booted again
        self.events = []        # (time, machine id, "booted" | "stopped" | "replaced")
        self.errors = []
        self._stop = threading.Event()
        self._thread = None

    # ---- configuration -----------------------------------------------------------------

    def fly_config(self):
        """Config keys for FlyFake.start()/config(): files_dir and the private IPs."""
        return {"files_dir": self.files_dir,
                "private_ip_by_prefix": {"thopter-": self.thopter_ip, "gc-": self.gc_ip}}

    def consumer_env(self):
        """The consumer's SSH and remote settings for these sims (add THOPTER_SSH_KEY and
        THOPTER_SSH_KNOWN_HOSTS). No THOPTER_SSH_PORT: the consumer's default must be the
        image's port, or it meets hallpass on port 22."""
        return {"THOPTER_SSH_HOST": "{private_ip}",
                "THOPTER_SSH_USER": "root", "THOPTER_REMOTE_HOME": "/data/thopter",
                "THOPTER_REMOTE_USER": "thopter", "THOPTER_REMOTE_LOG": "/thopter/log"}

    def write_known_hosts(self, lines, name="known_hosts"):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write("".join(line + "\n" for line in lines))
        return path

    def volume_dir(self, volume_id):
        """The host directory of a fly volume (plant leftovers there before a boot)."""
        path = os.path.join(self.volumes_dir, volume_id)
        os.makedirs(path, exist_ok=True)
        return path

    # ---- lifecycle ---------------------------------------------------------------------

    def start(self):
        cfg = self.fly.get_config()
        if cfg.get("files_dir") != self.files_dir:
            self.fly.config(**self.fly_config())
        self._thread = threading.Thread(target=self._watch, name="machine-booter", daemon=True)
        self._thread.start()
        return self

    def close(self):
        """Stops the watcher, which stops every sim (they die with the thread that
        spawned them, so that thread stops them gracefully first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)
        self._stop_all()
        with self.lock:
            done = list(self.finished.values())
        for sim in done:
            sim.close()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
        return False

    # ---- queries -----------------------------------------------------------------------

    def sim(self, machine_id):
        with self.lock:
            return self.sims.get(machine_id) or self.finished.get(machine_id)

    def running(self):
        with self.lock:
            return dict(self.sims)

    def wait_sim(self, machine_id, timeout=30.0, ready=True):
        """The sim of machine_id once booted (and, with ready, once sshd listens)."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while machine_id not in self.sims and machine_id not in self.finished:
                if self.errors:
                    raise AssertionError("booter errors: %s" % self.errors)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("machine %s was not booted within %.0f s"
                                         % (machine_id, timeout))
                self.lock.wait(min(left, 0.2))
            sim = self.sims.get(machine_id) or self.finished[machine_id]
        if ready:
            sim.wait_ready(max(1.0, deadline - time.monotonic()))
        return sim

    def wait_stopped(self, machine_id, timeout=30.0):
        deadline = time.monotonic() + timeout
        with self.lock:
            while machine_id in self.sims:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("sim of %s still running after %.0f s" % (machine_id, timeout))
                self.lock.wait(min(left, 0.2))
            return self.finished.get(machine_id)

    # ---- Golden Claude -----------------------------------------------------------------

    def seed_golden_claude(self, authorized_key, name="gc-default", host_key=None,
                           timeout=30.0):
        """Seeds a started gc-* machine with a fixed host key and the consumer's public key
        in config.files (what `fly machine run --file-local` sends), waits until its sim is
        ready and returns a GoldenClaude with the known_hosts line for the consumer.

        authorized_key: a public key line or a .pub file; host_key: a private key file
        (default: a new ed25519 key in the booter's directory)."""
        if os.path.exists(authorized_key):
            with open(authorized_key) as f:
                authorized_key = f.read().strip()
        if host_key is None:
            host_key = os.path.join(self.dir, name + "-host-key")
            keygen(host_key, comment=name)
        with open(host_key, "rb") as f:
            private = f.read()
        pub = subprocess.run([SSH_KEYGEN, "-y", "-P", "", "-f", host_key], capture_output=True,
                             text=True, check=True).stdout.strip()
        machine = self.fly.seed_machine(name=name, state="started", config={
            "image": "registry.fly.io/thopters:thopter-test",
            "files": config_files({HOST_KEY_PATH: private,
                                   AUTHORIZED_KEYS_PATH: authorized_key + "\n"})})
        sim = self.wait_sim(machine["id"], timeout=timeout)
        return GoldenClaude(machine, sim, host_key,
                            known_hosts_line(machine["private_ip"], self.port, pub))

    # ---- the watcher -------------------------------------------------------------------

    def _watch(self):
        try:
            while not self._stop.is_set():
                try:
                    machines = self.fly.machines()
                except Exception as e:  # the fake went away: stop watching
                    if not self._stop.is_set():
                        self._error("cannot list machines: %s" % e)
                    return
                for m in machines:
                    if self._stop.is_set():
                        return
                    try:
                        self._consider(m)
                    except Exception as e:
                        self._error("machine %s: %s" % (m.get("id"), e))
                self._stop.wait(self.poll)
        finally:
            self._stop_all()

    def _stop_all(self):
        with self.lock:
            ids = list(self.sims)
        for mid in ids:
            self._stop_sim(mid, "stopped")

    def _error(self, text):
        sys.stderr.write("thopter_machine: %s\n" % text)
        with self.lock:
            self.errors.append(text)
            self.lock.notify_all()

    def _consider(self, m):
        mid, name = m["id"], m.get("name", "")
        if not name.startswith(self.prefixes):
            return
        state = "destroyed" if m.get("gone") else m.get("state")
        with self.lock:
            sim = self.sims.get(mid)
        if sim is not None:
            if state in self.STOP_STATES or not sim.alive():
                self._stop_sim(mid, "stopped")
                if state in ("destroying", "destroyed"):
                    self.dead.add(mid)
            return
        if mid in self.dead or state not in self.RUN_STATES:
            if state in ("destroying", "destroyed"):
                self.dead.add(mid)
            return
        with self.lock:
            last = self.finished.get(mid)
        if last is not None and _start_mark(m) <= last.start_mark:
            # Already booted for this start: the sim ended on its own or was
            # replaced by a newer machine on its address. Only a new start
            # request boots it again (updated_at, in whole seconds, could not
            # tell: a sim booted while "starting" saw "started" stamped later).
            return
        if not m.get("files") and not self.boot_without_files:
            return
        self._boot(m)

    def _boot(self, m):
        mid = m["id"]
        addr = m.get("private_ip") or ""
        if not addr.startswith("127."):
            raise RuntimeError("private_ip %r is not a loopback IPv4 address; configure "
                               "private_ip_by_prefix (fly_config())" % addr)
        with self.lock:
            others = [oid for oid, s in self.sims.items() if s.listen == addr]
        for oid in others:
            self._stop_sim(oid, "replaced")
        mounts = (m.get("config") or {}).get("mounts") or []
        vol = self.volume_dir(mounts[0]["volume"] if mounts and mounts[0].get("volume") else mid)
        env = dict((m.get("config") or {}).get("env") or {})
        env.update({"FLY_MACHINE_ID": mid, "FLY_APP_NAME": self.fly.app,
                    "FLY_REGION": m.get("region") or "", "FLY_PRIVATE_IP": addr,
                    "FLY_IMAGE_REF": (m.get("config") or {}).get("image", "")})
        env.update(self.env)
        sim = SimMachine(mid, volume=vol, files=os.path.join(self.files_dir, mid),
                         dir=os.path.join(self.dir, "machines", mid), listen=addr,
                         sshd_opts=self.sshd_opts, env=env, binds=self.binds)
        sim.start_mark = _start_mark(m)
        sim.start()
        with self.lock:
            self.sims[mid] = sim
            self.events.append((time.time(), mid, "booted"))
            self.lock.notify_all()

    def _stop_sim(self, mid, why):
        with self.lock:
            sim = self.sims.get(mid)
        if sim is None:
            return
        sim.stop(timeout=self.stop_timeout)
        with self.lock:
            self.sims.pop(mid, None)
            self.finished[mid] = sim
            self.events.append((time.time(), mid, why))
            self.lock.notify_all()


def _start_mark(m):
    """The time (ms) of the machine's latest start request or launch, from its events
    ("start" events other than "started"); 0 when it has none."""
    return max([e.get("timestamp", 0) for e in m.get("events") or []
                if e.get("type") == "start" and e.get("status") != "started"] or [0])



# ---- the probe -------------------------------------------------------------------------------


def probe_main(argv):
    """thopter_machine.py probe --host H --port P --key K --known-hosts F --command CMD
    [--user U] [--deadline S] [--interval S]

    Tries a TCP connection to H:P every --interval seconds until one is accepted, then
    logs in with ssh (known_hosts F only, key K only) and runs CMD, retrying the login
    until it works; prints one JSON line: first_open (epoch seconds of the first accepted
    connection), refused (connections refused before it), ssh_attempts, ssh_ok, rc,
    stdout, stderr (of the login that worked), failures (stderr of logins that did not);
    exit 1 with "timeout": true when nothing worked by the deadline. Run it in a machine's
    network namespace with SimMachine.run([...], ns="net")."""
    ap = argparse.ArgumentParser(prog="thopter_machine.py probe")
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, default=image_port())
    ap.add_argument("--key", required=True)
    ap.add_argument("--known-hosts", required=True)
    ap.add_argument("--user", default="root")
    ap.add_argument("--command", required=True)
    ap.add_argument("--deadline", type=float, default=30.0)
    ap.add_argument("--interval", type=float, default=0.01)
    args = ap.parse_args(argv)
    out = {"first_open": None, "refused": 0, "ssh_attempts": 0, "failures": []}
    end = time.monotonic() + args.deadline
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    while time.monotonic() < end and out["first_open"] is None:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            try:
                s.connect((args.host, args.port))
                out["first_open"] = time.time()
            except OSError:
                out["refused"] += 1
        if out["first_open"] is None:
            time.sleep(args.interval)
    while out["first_open"] is not None and time.monotonic() < end:
        out["ssh_attempts"] += 1
        r = subprocess.run(ssh_argv(args.host, args.port, args.key, args.known_hosts, args.user)
                           + [args.command], capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if r.returncode != 255:
            out.update(ssh_ok=time.time(), rc=r.returncode, stdout=r.stdout, stderr=r.stderr)
            print(json.dumps(out), flush=True)
            return 0
        out["failures"].append(r.stderr.strip()[-300:])
        time.sleep(args.interval)
    out["timeout"] = True
    print(json.dumps(out), flush=True)
    return 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "probe":
        sys.exit(probe_main(sys.argv[2:]))
    sys.stderr.write("usage: thopter_machine.py probe --help\n")
    sys.exit(2)
