"""A local stand-in for a thopter and a Golden Claude, for provision tests.

- a throwaway Unix user (the "thopter" user) whose home is a temp dir, with a
  real tmux session named "thopter";
- sshd on 127.0.0.2 (the thopter) and sshd on 127.0.0.3 (the Golden Claude),
  on the same port, accepting one client key; the GC's sshd runs in its own
  mount namespace where the GC's data is bind-mounted over the home path, so
  the two "machines" have different files at the same path, as on fly;
- with neutral_shell (the default; bench/run.py --host-shell turns it off), both
  sshds run in mount namespaces where the login user's shell dotfiles (root's
  ~/.bashrc) read as empty, as on a thopter whose sshd does not run this host's
  shell set-up (here `pyenv init`, ~80 ms per command and a rehash lock shared by
  every shell on the host that waits up to 60 s);
- a bare git repository to clone (THOPTER_GIT_URL=file://...);
- an agent command that appends a line to a marker file.
The fake fly API maps machine names to these addresses (private_ip_by_prefix)
and the consumer reaches them through THOPTER_SSH_HOST={private_ip}.

Several machines at once (parallel provisioning), ThopterHosts(thopters=k, gcs=[...]):
- k thopter hosts, each an NsSshd on its own loopback address 127.A.B.(10+i) (A, B random
  per instance, A in 200..254, away from thopter_machine.py's 127.100-199 and from the
  k=1 addresses), all on one port, one client key, every host key in known_hosts. In its
  mount namespace each host has its own home bind-mounted over the shared home path, and
  its own remote log directory, /var/lib/thopter (the consumer's done marker) and tmux
  socket directory (/tmp/tmux-UID), so each has its own tmux server and session: the
  agent typed into host i's tmux writes host i's marker. fly_config() gives the fake a
  private_ip_pool_by_prefix for "thopter-": each new machine gets a free host, and a host
  is free again once its machine is destroyed (its home is then NOT wiped: give a test
  as many hosts as it makes machines);
- one Golden Claude per name of @gcs (machine gc-<name>, 127.A.B.(100+j)), each with its
  own data; with observe_copies=True each GC's tar is a wrapper that records every run
  (CopyObserver: the most copies from one GC running at once, seen from outside the
  consumer) and, with copy_delay_s, starts late (a slow Golden Claude, so that copies
  last long enough to overlap if the consumer let them).
thopters=1 without gcs is the layout above, unchanged.
Needs root (useradd, mount namespaces), as CI has.
"""
import json
import os
import pwd
import random
import shutil
import socket
import subprocess
import tempfile
import threading
import time

from sshd_harness import Sshd, _free_port

PAT = "ghp_test-agent-coder-PAT-0123456789abcdef"


def _q(s):
    return "'%s'" % s.replace("'", "'\\''")


# The login user's shell start-up files that bash reads for a command run by sshd (bash -c under
# sshd reads ~/.bashrc). A host's own (root's ~/.bashrc here runs `pyenv init`, ~80 ms per exec
# channel) is not what a thopter's sshd would run, so neutral_shell hides them.
SHELL_DOTFILES = (".bashrc", ".bash_profile", ".bash_login", ".profile", ".bash_logout")


def ssh_user_dotfiles():
    home = pwd.getpwuid(os.getuid()).pw_dir
    return [os.path.join(home, f) for f in SHELL_DOTFILES if os.path.isfile(os.path.join(home, f))]


class NsSshd(Sshd):
    """sshd in a private mount namespace with each (src, dst) of @binds bind-mounted; with
    @neutral_shell, the login user's shell dotfiles are masked by /dev/null in that namespace only
    (the host keeps its own)."""

    def __init__(self, binds=(), neutral_shell=False, **kw):
        super().__init__(**kw)
        self.binds = list(binds)
        if neutral_shell:
            self.binds += [("/dev/null", f) for f in ssh_user_dotfiles()]

    def command(self):
        if not self.binds:
            return super().command()
        inner = " ".join(_q(a) for a in super().command())
        mounts = " && ".join("mount --bind %s %s" % (_q(s), _q(d)) for s, d in self.binds)
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                "%s && exec %s" % (mounts, inner)]


class GcSshd(NsSshd):
    """sshd in a private mount namespace with @src bind-mounted on @dst."""

    def __init__(self, bind_src, bind_dst, **kw):
        super().__init__(binds=[(bind_src, bind_dst)], **kw)


def run(*argv, **kw):
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kw)


# The consumer's done marker's directory on a thopter (consumer/lib/provision_int.h).
STATE_DIR = "/var/lib/thopter"


def _port_free_on_all(addrs):
    """A TCP port free on every address of @addrs."""
    for _ in range(50):
        port = _free_port(addrs[0])
        ok = True
        for a in addrs[1:]:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sk:
                try:
                    sk.bind((a, port))
                except OSError:
                    ok = False
        if ok:
            return port
    raise RuntimeError("no port free on all of %s" % (addrs,))


def _address_block():
    """127.A.B. with A in 200..254: the prefix of one ThopterHosts' addresses."""
    rnd = random.SystemRandom()
    return "127.%d.%d." % (rnd.randrange(200, 255), rnd.randrange(0, 256))


# The Golden Claude's tar as the observer sees it: one "start" line when a tar begins, one
# "end" line when it has exited, appended (O_APPEND, one write each) to the GC's copy log.
# The end line is written before the wrapper exits, so before the pack's channel closes and
# before the consumer can know the copy is over: a copy that the consumer starts only after
# another ended is never seen overlapping it, and two that overlap always are.
TAR_WRAPPER = """#!/bin/sh
printf 'start %%s %%s %%s\\n' "$$" "$(date +%%s.%%N)" "$1" >> %(log)s
sleep %(delay)s
%(tar)s "$@"
rc=$?
printf 'end %%s %%s %%s\\n' "$$" "$(date +%%s.%%N)" "$rc" >> %(log)s
exit $rc
"""


class CopyObserver:
    """Reads one Golden Claude's copy log (see TAR_WRAPPER): the pack commands run there."""

    def __init__(self, path):
        self.path = path

    def mark(self):
        """A position: runs() and max_concurrent() count from there on."""
        try:
            return os.path.getsize(self.path)
        except FileNotFoundError:
            return 0

    def lines(self, since=0):
        try:
            with open(self.path) as f:
                f.seek(since)
                text = f.read()
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] in ("start", "end"):
                out.append((parts[0], parts[1], float(parts[2])))
        return out

    def runs(self, since=0):
        """[(start, end or None)] wall times of each tar run, in start order."""
        open_, out = {}, []
        for kind, pid, t in self.lines(since):
            if kind == "start":
                open_[pid] = len(out)
                out.append([t, None])
            elif pid in open_:
                out[open_.pop(pid)][1] = t
        return [tuple(r) for r in out]

    def max_concurrent(self, since=0):
        """The most tar runs at once, in the order the GC wrote the lines."""
        now = best = 0
        for kind, _, _ in self.lines(since):
            now += 1 if kind == "start" else -1
            best = max(best, now)
        return best

    def running(self, since=0):
        return sum(1 if kind == "start" else -1 for kind, _, _ in self.lines(since))


class ThopterHosts:
    def __init__(self, repository="acme/widgets", neutral_shell=True, thopters=1, gcs=None,
                 observe_copies=False, copy_delay_s=0):
        """@thopters hosts and one Golden Claude per name of @gcs (see the module docstring);
        the defaults are the one thopter and one GC (gc-default) of 127.0.0.2/3."""
        if thopters < 1 or thopters > 80:
            raise ValueError("thopters: 1 to 80")
        self.multi = thopters > 1 or gcs is not None
        if self.multi:
            self._init_multi(repository, neutral_shell, thopters, list(gcs or ["default"]),
                             observe_copies, copy_delay_s)
            return
        if observe_copies:
            raise ValueError("observe_copies needs the several-hosts layout (thopters > 1 or gcs)")
        self.dir = tempfile.mkdtemp(prefix="thopter-hosts.")
        os.chmod(self.dir, 0o755)
        self.user = "thopt%06d" % random.randrange(10 ** 6)
        self.home = os.path.join(self.dir, "home")
        self.gc_home = os.path.join(self.dir, "gc-home")
        self.log = os.path.join(self.dir, "log", "thopter.log")
        self.agent_marker = os.path.join(self.home, "agent-ran")
        self.repository = repository
        os.makedirs(self.home)
        os.makedirs(os.path.dirname(self.log))
        open(self.log, "w").close()
        os.chmod(self.log, 0o666)
        run("useradd", "-M", "-d", self.home, "-s", "/bin/bash", self.user)
        run("chown", self.user + ":", self.home)
        self._golden_claude_data()
        self._git_repo()
        port = _free_port("127.0.0.2")
        self.neutral_shell = neutral_shell
        self.thopter = NsSshd(addr="127.0.0.2", port=port, dir=os.path.join(self.dir, "sshd-thopter"),
                              neutral_shell=neutral_shell).prepare()
        self.gc = GcSshd(self.gc_home, self.home, addr="127.0.0.3", port=port,
                         dir=os.path.join(self.dir, "sshd-gc"), neutral_shell=neutral_shell).prepare()
        shutil.copyfile(self.thopter.client_key + ".pub", self.gc.authorized_keys)
        self.known_hosts = os.path.join(self.dir, "known_hosts")
        with open(self.known_hosts, "w") as out:
            for s in (self.thopter, self.gc):
                with open(s.known_hosts) as f:
                    out.write(f.read())
        self.port = port
        self.thopter.start_fixed()
        self.gc.start_fixed()
        self.su("tmux new-session -d -s thopter -c %s" % self.home)
        self.thopters = [self.thopter]
        self.thopter_homes = [self.home]
        self.gcs = {"default": self.gc}
        self.gc_homes = {"default": self.gc_home}
        self.observers = {}

    # -- several hosts -------------------------------------------------------------------

    def _init_multi(self, repository, neutral_shell, k, gc_names, observe_copies, copy_delay_s):
        if len(set(gc_names)) != len(gc_names) or not 1 <= len(gc_names) <= 50:
            raise ValueError("gcs: 1 to 50 distinct names")
        for a in gc_names:
            for b in gc_names:
                if a != b and b.startswith(a):
                    raise ValueError("gcs: %r is a prefix of %r (the fake maps names by prefix)" % (a, b))
        self.dir = tempfile.mkdtemp(prefix="thopter-hosts.")
        os.chmod(self.dir, 0o755)
        self.user = "thopt%06d" % random.randrange(10 ** 6)
        self.home = os.path.join(self.dir, "home")   # the path every host has its own home at
        self.log = os.path.join(self.dir, "log", "thopter.log")
        self.agent_marker = os.path.join(self.home, "agent-ran")
        self.repository = repository
        self.neutral_shell = neutral_shell
        os.makedirs(self.home)
        os.makedirs(os.path.dirname(self.log))
        run("useradd", "-M", "-d", self.home, "-s", "/bin/bash", self.user)
        uid = pwd.getpwnam(self.user).pw_uid
        # Mount points the hosts' own directories go over (the host's own stay empty).
        self.tmux_dir = "/tmp/tmux-%d" % uid
        os.makedirs(self.tmux_dir, mode=0o700, exist_ok=True)
        os.chown(self.tmux_dir, uid, -1)
        os.makedirs(STATE_DIR, exist_ok=True)
        self._git_repo()
        block = _address_block()
        thopter_addrs = [block + str(10 + i) for i in range(k)]
        gc_addrs = [block + str(100 + j) for j in range(len(gc_names))]
        port = _port_free_on_all(thopter_addrs + gc_addrs)
        self.port = port
        self.thopters, self.thopter_homes = [], []
        for i, addr in enumerate(thopter_addrs):
            d = os.path.join(self.dir, "thopter-%d" % i)
            home, logd, state, tmux = (os.path.join(d, x) for x in ("home", "log", "state", "tmux"))
            for x in (home, logd, state, tmux):
                os.makedirs(x)
            open(os.path.join(logd, os.path.basename(self.log)), "w").close()
            os.chmod(os.path.join(logd, os.path.basename(self.log)), 0o666)
            os.chmod(logd, 0o777)
            run("chown", self.user + ":", home, tmux)
            os.chmod(tmux, 0o700)
            binds = [(home, self.home), (logd, os.path.dirname(self.log)), (state, STATE_DIR),
                     (tmux, self.tmux_dir)]
            s = NsSshd(binds=binds, addr=addr, port=port, dir=os.path.join(d, "sshd"),
                       neutral_shell=neutral_shell).prepare()
            self.thopters.append(s)
            self.thopter_homes.append(home)
        self.thopter = self.thopters[0]
        self.gcs, self.gc_homes, self.observers = {}, {}, {}
        real_tar = shutil.which("tar", path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        if observe_copies:
            bindir = os.path.join(self.dir, "bin")
            os.makedirs(bindir)
            shutil.copy2(os.path.realpath(real_tar), os.path.join(bindir, "tar.real"))
        for j, (name, addr) in enumerate(zip(gc_names, gc_addrs)):
            d = os.path.join(self.dir, "gc-" + name)
            home = os.path.join(d, "home")
            os.makedirs(home)
            self._golden_claude_data(home)
            binds = [(home, self.home)]
            if observe_copies:
                log = os.path.join(d, "copies.log")
                open(log, "w").close()
                os.chmod(log, 0o666)
                wrapper = os.path.join(d, "tar")
                with open(wrapper, "w") as f:
                    f.write(TAR_WRAPPER % {"log": _q(log), "delay": float(copy_delay_s),
                                           "tar": _q(os.path.join(self.dir, "bin", "tar.real"))})
                os.chmod(wrapper, 0o755)
                binds.append((wrapper, os.path.realpath(real_tar)))
                self.observers[name] = CopyObserver(log)
            s = NsSshd(binds=binds, addr=addr, port=port, dir=os.path.join(d, "sshd"),
                       neutral_shell=neutral_shell).prepare()
            shutil.copyfile(self.thopter.client_key + ".pub", s.authorized_keys)
            self.gcs[name] = s
            self.gc_homes[name] = home
        for s in self.thopters[1:]:
            shutil.copyfile(self.thopter.client_key + ".pub", s.authorized_keys)
        self.gc = next(iter(self.gcs.values()))
        self.gc_home = next(iter(self.gc_homes.values()))
        self.known_hosts = os.path.join(self.dir, "known_hosts")
        with open(self.known_hosts, "w") as out:
            for s in self.thopters + list(self.gcs.values()):
                with open(s.known_hosts) as f:
                    out.write(f.read())
        started = []
        try:
            for s in self.thopters + list(self.gcs.values()):
                s.start_fixed()
                started.append(s)
            for s in self.thopters:
                # The host's own tmux server, in its namespace (its home, its socket).
                run("nsenter", "-t", str(s.pid), "-m", "su", "-", self.user, "-c",
                    "tmux new-session -d -s thopter -c %s" % _q(self.home))
        except Exception:
            self.close()
            raise

    def _golden_claude_data(self, home=None):
        home = home or self.gc_home
        os.makedirs(os.path.join(home, ".claude", "projects", "old-session"))
        with open(os.path.join(home, ".claude", "credentials.json"), "w") as f:
            f.write('{"token":"claude-login"}\n')
        with open(os.path.join(home, ".claude.json"), "w") as f:
            f.write('{"onboarded":true}\n')
        with open(os.path.join(home, ".claude", "projects", "old-session", "log.jsonl"), "w") as f:
            f.write("{}\n")
        with open(os.path.join(home, ".bashrc"), "w") as f:
            f.write("# the GC's own bashrc, not to be copied\n")

    def add_gc_blob(self, megabytes, gc=None, name="blob.bin"):
        """A file of @megabytes random MB in a GC's .claude (every GC's without @gc), so its
        copies carry real data."""
        for g, home in self.gc_homes.items():
            if gc is None or g == gc:
                with open(os.path.join(home, ".claude", name), "wb") as f:
                    f.write(os.urandom(int(megabytes * (1 << 20))))

    def _git_repo(self):
        owner, name = self.repository.split("/")
        src = os.path.join(self.dir, "src")
        self.bare = os.path.join(self.dir, "repos", owner, name + ".git")
        os.makedirs(src)
        env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@e", GIT_COMMITTER_NAME="t",
                   GIT_COMMITTER_EMAIL="t@e", HOME=self.dir)
        run("git", "init", "-q", "-b", "main", src, env=env)
        with open(os.path.join(src, "README.md"), "w") as f:
            f.write("# widgets\n")
        run("git", "-C", src, "add", ".", env=env)
        run("git", "-C", src, "commit", "-q", "-m", "init", env=env)
        run("git", "clone", "-q", "--bare", src, self.bare, env=env)
        run("chown", "-R", self.user + ":", os.path.join(self.dir, "repos"))

    def su(self, cmd):
        return run("su", "-", self.user, "-c", cmd)

    def env(self):
        """The consumer's provision settings for this host."""
        return {
            "REGION": "ord",
            "THOPTER_IMAGE": "registry.fly.io/thopters:thopter-test",
            "GITHUB_INTEGRATION_JSON": json.dumps({"repositories": {self.repository: {
                "agentCoderPAT": PAT, "issuesPAT": "ghp_issues-secret-000000", "userName": "Thopter Bot",
                "userEmail": "bot@example.com"}}}),
            "THOPTER_SSH_KEY": self.thopter.client_key,
            "THOPTER_SSH_KNOWN_HOSTS": self.known_hosts,
            "THOPTER_SSH_HOST": "{private_ip}",
            "THOPTER_SSH_PORT": str(self.port),
            "THOPTER_REMOTE_HOME": self.home,
            "THOPTER_REMOTE_USER": self.user,
            "THOPTER_REMOTE_LOG": self.log,
            "THOPTER_GIT_URL": "file://%s/repos/{repository}.git" % self.dir,
            "THOPTER_AGENT_COMMAND": "echo agent-started >> %s" % self.agent_marker,
            "THOPTER_READY_TIMEOUT": "20",
        }

    def fly_config(self):
        if not self.multi:
            return {"private_ip_by_prefix": {"gc-": "127.0.0.3", "thopter-": "127.0.0.2"}}
        return {"private_ip_by_prefix": {"gc-" + g: s.addr for g, s in self.gcs.items()},
                "private_ip_pool_by_prefix": {"thopter-": [s.addr for s in self.thopters]}}

    def seed_golden_claudes(self, fly):
        """Seeds a started gc-<name> machine in the fake for each Golden Claude."""
        return [fly.seed_machine(name="gc-" + g, state="started") for g in self.gcs]

    def host_index(self, addr):
        """The thopter host listening on @addr (a machine's private_ip)."""
        return [s.addr for s in self.thopters].index(addr)

    def thopter_path(self, i, rel):
        """@rel (relative to the home) on thopter host @i."""
        return os.path.join(self.thopter_homes[i], rel)

    def remote_log(self, i=0):
        """Host @i's THOPTER_REMOTE_LOG."""
        if not self.multi:
            return self.log
        return os.path.join(self.dir, "thopter-%d" % i, "log", os.path.basename(self.log))

    def agent_runs(self, i=None):
        """Agent launches on host @i (all hosts together without it)."""
        homes = self.thopter_homes if i is None else [self.thopter_homes[i]]
        n = 0
        for home in homes:
            try:
                with open(os.path.join(home, os.path.basename(self.agent_marker))) as f:
                    n += f.read().count("agent-started")
            except FileNotFoundError:
                pass
        return n

    def accepted_logins(self, which="thopter"):
        """SSH logins to "thopter" (host 0), "gc" (the first GC), host number @which, or
        "gc-<name>"."""
        if which == "thopter":
            s = self.thopter
        elif which == "gc":
            s = self.gc
        elif isinstance(which, int):
            s = self.thopters[which]
        else:
            s = self.gcs[which[len("gc-"):]]
        with open(s.log_path, errors="replace") as f:
            return f.read().count("Accepted publickey")

    def close(self):
        subprocess.run(["su", "-", self.user, "-c", "tmux kill-server"], capture_output=True)
        hosts = self.thopters + list(self.gcs.values()) if self.multi else [self.thopter, self.gc]
        for s in hosts:
            try:
                s.stop()
            except Exception:
                pass
        subprocess.run(["pkill", "-u", self.user], capture_output=True)
        subprocess.run(["userdel", self.user], capture_output=True)
        if self.multi:
            shutil.rmtree(self.tmux_dir, ignore_errors=True)
        shutil.rmtree(self.dir, ignore_errors=True)
