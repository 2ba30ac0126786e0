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
Needs root (useradd, mount namespaces), as CI has.
"""
import json
import os
import pwd
import random
import shutil
import subprocess
import tempfile

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


class ThopterHosts:
    def __init__(self, repository="acme/widgets", neutral_shell=True):
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

    def _golden_claude_data(self):
        os.makedirs(os.path.join(self.gc_home, ".claude", "projects", "old-session"))
        with open(os.path.join(self.gc_home, ".claude", "credentials.json"), "w") as f:
            f.write('{"token":"claude-login"}\n')
        with open(os.path.join(self.gc_home, ".claude.json"), "w") as f:
            f.write('{"onboarded":true}\n')
        with open(os.path.join(self.gc_home, ".claude", "projects", "old-session", "log.jsonl"), "w") as f:
            f.write("{}\n")
        with open(os.path.join(self.gc_home, ".bashrc"), "w") as f:
            f.write("# the GC's own bashrc, not to be copied\n")

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
        return {"private_ip_by_prefix": {"gc-": "127.0.0.3", "thopter-": "127.0.0.2"}}

    def agent_runs(self):
        try:
            with open(self.agent_marker) as f:
                return f.read().count("agent-started")
        except FileNotFoundError:
            return 0

    def accepted_logins(self, which="thopter"):
        s = self.thopter if which == "thopter" else self.gc
        with open(s.log_path, errors="replace") as f:
            return f.read().count("Accepted publickey")

    def close(self):
        subprocess.run(["su", "-", self.user, "-c", "tmux kill-server"], capture_output=True)
        for s in (self.thopter, self.gc):
            try:
                s.stop()
            except Exception:
                pass
        subprocess.run(["pkill", "-u", self.user], capture_output=True)
        subprocess.run(["userdel", self.user], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)
