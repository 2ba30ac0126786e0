#!/usr/bin/python3
"""sshd_harness.py - a real OpenSSH sshd on loopback, for tests.

As a module:

    with Sshd(addr="127.0.0.2") as s:
        ... s.port, s.addr, s.user, s.client_key, s.known_hosts, s.dir ...

As a command (for C tests to spawn):

    python3 sshd_harness.py --addr 127.0.0.2 --dir D [--start-delay-ms N]

prints one line `PORT=… KEY=… KNOWN_HOSTS=… ADDR=… DIR=… USER=…` on stdout
(flushed), then keeps sshd running until stdin closes or SIGTERM/SIGINT
arrives, and stops it. With --start-delay-ms the line is printed (port and
keys are ready) and sshd itself starts only after the delay, to test
retry-until-ready.

DESIGN
------
Everything lives in one directory: an ed25519 host key and client key (made
by ssh-keygen; libssh2 1.10 cannot log in with RSA keys against OpenSSH 9.2),
authorized_keys, known_hosts (`[ADDR]:PORT ssh-ed25519 …`) and sshd.log
(sshd runs with -e, so its log goes to that file and never fills a pipe).
sshd runs with no config file (-f /dev/null), every setting on the command
line (and /run/sshd made first: without systemd nobody makes it). It must run as root (it needs
/run/sshd and setuid for the session), which the test machine is.

Addresses in 127.0.0.0/8 other than 127.0.0.1 work on Linux loopback, so
several harnesses can run side by side. The port is picked by binding port 0
and closing it; if sshd loses the race for it, another port is tried.

Standard library only.
"""

import argparse
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SSHD = "/usr/sbin/sshd"
SSH_KEYGEN = "/usr/bin/ssh-keygen"


def _keygen(path):
    """Make an unencrypted ed25519 key pair at path and path.pub."""
    for p in (path, path + ".pub"):
        if os.path.exists(p):
            os.unlink(p)
    subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C",
                    "thopter-test", "-f", path],
                   check=True, stdin=subprocess.DEVNULL)
    os.chmod(path, 0o600)


def _free_port(addr):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


class Sshd:
    """One sshd listening on addr:port, with its own keys in dir."""

    def __init__(self, addr="127.0.0.1", dir=None, port=0, start_timeout=10.0):
        self.addr = addr
        self._own_dir = dir is None
        self.dir = os.path.abspath(dir) if dir else tempfile.mkdtemp(
            prefix="sshd-harness.")
        self.port = port
        self.start_timeout = start_timeout
        self.user = pwd.getpwuid(os.getuid()).pw_name
        self.host_key = os.path.join(self.dir, "hostkey")
        self.client_key = os.path.join(self.dir, "clientkey")
        self.authorized_keys = os.path.join(self.dir, "authorized_keys")
        self.known_hosts = os.path.join(self.dir, "known_hosts")
        self.log_path = os.path.join(self.dir, "sshd.log")
        self.proc = None

    # -- setup ------------------------------------------------------------
    def prepare(self):
        """Make keys, pick a port and write known_hosts; do not start sshd."""
        os.makedirs(self.dir, exist_ok=True)
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        _keygen(self.host_key)
        _keygen(self.client_key)
        shutil.copyfile(self.client_key + ".pub", self.authorized_keys)
        if not self.port:
            self.port = _free_port(self.addr)
        self._write_known_hosts()
        return self

    def _write_known_hosts(self):
        with open(self.host_key + ".pub") as f:
            keytype, keyb64 = f.read().split()[:2]
        # OpenSSH writes non-22 ports as [host]:port; libssh2's checkp looks
        # that form up first.
        with open(self.known_hosts, "w") as f:
            f.write("[%s]:%d %s %s\n" % (self.addr, self.port, keytype, keyb64))

    def command(self):
        return [SSHD, "-D", "-e", "-f", "/dev/null",
                "-p", str(self.port), "-h", self.host_key,
                "-o", "ListenAddress=%s" % self.addr,
                "-o", "PidFile=none",
                "-o", "AuthorizedKeysFile=%s" % self.authorized_keys,
                "-o", "UsePAM=no",
                "-o", "StrictModes=no",
                "-o", "Subsystem sftp internal-sftp",
                "-o", "PasswordAuthentication=no",
                "-o", "KbdInteractiveAuthentication=no",
                "-o", "LogLevel=VERBOSE"]

    def start(self):
        """Start sshd and wait for "Server listening on"; idempotent."""
        if self.proc is not None:
            return self
        if not os.path.exists(self.known_hosts):
            self.prepare()
        fixed_port = False
        for attempt in range(5):
            if self._spawn():
                return self
            # Lost the race for the port: pick another one (only possible
            # when nobody has been told the port yet).
            if fixed_port or attempt == 4:
                break
            self.port = _free_port(self.addr)
            self._write_known_hosts()
        raise RuntimeError("sshd did not start on %s:%d; log:\n%s" %
                           (self.addr, self.port, self.log()))

    def start_fixed(self):
        """Start on the already published port (no retry on another port)."""
        if self.proc is None and not self._spawn():
            raise RuntimeError("sshd did not start on %s:%d; log:\n%s" %
                               (self.addr, self.port, self.log()))
        return self

    def _spawn(self):
        log = open(self.log_path, "ab")
        try:
            start_at = log.tell()
            # stdin/stdout are /dev/null so no session child ever holds a
            # pipe of the test runner open; the log goes to a file.
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=log,
                                         close_fds=True)
        finally:
            log.close()
        needle = b"Server listening on %s port %d" % (self.addr.encode(),
                                                      self.port)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as f:
                f.seek(start_at)
                text = f.read()
            if needle in text:
                return True
            if self.proc.poll() is not None:
                self.proc = None
                return False
            time.sleep(0.01)
        self._kill()
        return False

    # -- teardown ---------------------------------------------------------
    def _kill(self):
        if self.proc is None:
            return
        try:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        except ProcessLookupError:
            pass
        self.proc = None

    def stop(self, remove_dir=None):
        """Kill sshd by PID; remove the directory if the harness made it."""
        self._kill()
        if remove_dir is None:
            remove_dir = self._own_dir
        if remove_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


def _main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--addr", default="127.0.0.1")
    ap.add_argument("--dir", help="directory for keys and logs (kept); "
                    "default: a temporary one, removed at exit")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--start-delay-ms", type=int, default=0,
                    help="print the line first, start sshd after this delay")
    args = ap.parse_args(argv)

    stopping = []

    def on_signal(signum, frame):
        stopping.append(signum)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    s = Sshd(addr=args.addr, dir=args.dir, port=args.port)
    try:
        s.prepare()
        if args.start_delay_ms <= 0:
            s.start()
        print("PORT=%d KEY=%s KNOWN_HOSTS=%s ADDR=%s DIR=%s USER=%s" %
              (s.port, s.client_key, s.known_hosts, s.addr, s.dir, s.user),
              flush=True)
        if args.start_delay_ms > 0:
            time.sleep(args.start_delay_ms / 1000.0)
            s.start_fixed()
            print("STARTED", flush=True)
        # Run until the parent closes our stdin (it exited or is done).
        while sys.stdin.buffer.read(4096):
            pass
    except BrokenPipeError:
        pass
    except Exception as e:  # report, then still stop sshd
        print("sshd_harness: %s" % e, file=sys.stderr, flush=True)
        return 1
    finally:
        s.stop()
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
