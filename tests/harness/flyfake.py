"""flyfake.py - start and drive the fake fly.io Machines API (tests/fakes/fake_fly.py).

    from flyfake import FlyFake

    with FlyFake() as fly:
        base = fly.start(token="test-token", latency_ms=5)   # -> "http://127.0.0.1:PORT"
        env = {"FLY_API_BASE": base, "FLY_DEPLOY_KEY": "test-token", "APP_NAME": fly.app}
        fly.seed_machine(name="thopter-abc", state="started")
        fly.push_fault(route="machines.delete", status=503, count=2)
        ...
        assert fly.stats()["max_in_flight_by_route"].get("machines.delete", 0) <= 5

The fake runs as a child process of /usr/bin/python3 with --stdin-eof, so it also exits
when the test process dies. The token reaches it through the environment
(FAKE_FLY_TOKEN), never the command line. Standard library (urllib) only.

Keyword arguments of start() and config() are the fake's config keys (see the docstring
of fake_fly.py and FlyFake.config): latency_ms, latency_by_route, rate_limit,
retry_after, outage, timings, destroyed_visible_ms, volume_unbind_ms,
private_ip_by_prefix, list_includes_destroyed, capacity_error, default_region,
unique_names, strict_scheme, wait_requires_instance_id, rate_limits, files_dir,
record_responses.

config.files: fly.machine(id)["files"] is [{guest_path, content_b64 | secret_name,
mode?}], and fly.machine_files(id) decodes it to {guest_path: bytes}. With files_dir set
the fake also writes them to <files_dir>/<machine id>/<guest path> at create (and seed);
tests/harness/thopter_machine.py boots simulated thopters from there.
"""

import base64
import json
import os
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

FAKE_FLY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes", "fake_fly.py")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"


class FlyFakeError(Exception):
    pass


class FlyFake:
    def __init__(self):
        self.proc = None
        self.port = None
        self.base_url = None
        self.app = "thopters"
        self.token = None

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self, token=None, app="thopters", port=0, verbose=False, stderr=None, **config):
        """Spawns the fake; config keys become its base config (kept across reset()).

        Returns the base URL without /v1 (what FLY_API_BASE takes).
        """
        if self.proc is not None:
            raise FlyFakeError("fake already started")
        env = dict(os.environ)
        env.pop("FAKE_FLY_TOKEN", None)
        if token:
            env["FAKE_FLY_TOKEN"] = token
        cmd = [PYTHON, FAKE_FLY, "--port", str(port), "--app", app, "--stdin-eof"]
        if config:
            cmd += ["--config", json.dumps(config)]
        if verbose:
            cmd.append("--verbose")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=stderr, env=env)
        line = self.proc.stdout.readline().decode("ascii", "replace").strip()
        if not line.startswith("PORT="):
            self.stop()
            raise FlyFakeError("fake_fly did not start (first line %r)" % line)
        self.port = int(line[len("PORT="):])
        self.base_url = "http://127.0.0.1:%d" % self.port
        self.app = app
        self.token = token
        return self.base_url

    def stop(self):
        """Stops the fake (stdin EOF, then SIGTERM, then SIGKILL)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    # ---- control API ---------------------------------------------------------------------

    def _control(self, method, path, body=None, query=None):
        if self.base_url is None:
            raise FlyFakeError("fake not started")
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            raise FlyFakeError("%s %s: HTTP %d %s" % (method, path, e.code, e.read().decode()))

    def reset(self, config=False):
        """Clears machines, volumes, calls, faults and stats; config too when config=True."""
        return self._control("POST", "/_fake/reset", {"config": bool(config)})

    def config(self, **kw):
        """Updates config keys (timings and rate_limits are merged); returns the full config."""
        return self._control("POST", "/_fake/config", kw)

    def get_config(self):
        return self._control("GET", "/_fake/config")

    def push_fault(self, **rule):
        """Adds a fault rule: method, route (glob over route names), path_regex, machine,
        status, count (default 1, -1 forever), skip, retry_after, headers, body, delay_ms,
        drop (True | "reset"), after_commit. Returns the stored rule (with id)."""
        return self._control("POST", "/_fake/faults", rule)

    def faults(self):
        return self._control("GET", "/_fake/faults")

    def clear_faults(self):
        return self._control("DELETE", "/_fake/faults")

    def outage(self, status=503, drop=False):
        """Every /v1 call fails (status, or a dropped connection) until outage_end()."""
        return self.config(outage={"mode": "drop"} if drop else {"status": status})

    def outage_end(self):
        return self.config(outage=None)

    def seed_machine(self, **kw):
        """Creates a machine directly: name, state (default started), region, metadata,
        id, image, private_ip, config, volume, created_at, updated_at (RFC 3339 strings;
        default now). Returns the fake's internal view."""
        return self._control("POST", "/_fake/machines", kw)

    def seed_volume(self, **kw):
        """Creates a volume directly: name, region, size_gb, id, attached_machine_id."""
        return self._control("POST", "/_fake/volumes", kw)

    def set_state(self, machine_id, state):
        """Forces a machine into a state now ("gone" = vanished: 404 from then on)."""
        return self._control("POST", "/_fake/machines/%s/state" % machine_id, {"state": state})

    def machines(self):
        """Every machine ever created, including destroyed and gone ones."""
        return self._control("GET", "/_fake/machines")

    def machine(self, machine_id):
        return self._control("GET", "/_fake/machines/%s" % machine_id)

    def machine_files(self, machine_id):
        """The machine's config.files as {guest_path: bytes}, decoded (None for a
        secret_name entry, which the fake cannot resolve)."""
        out = {}
        for f in self.machine(machine_id).get("files", []):
            out[f["guest_path"]] = (base64.b64decode(f["content_b64"]) if "content_b64" in f
                                    else None)
        return out

    def volumes(self):
        return self._control("GET", "/_fake/volumes")

    def calls(self, route=None, since=None):
        """The /v1 calls in arrival order; status is None while a call is in flight."""
        query = {}
        if route:
            query["route"] = route
        if since:
            query["since"] = since
        return self._control("GET", "/_fake/calls", query=query)

    def clear_calls(self):
        return self._control("DELETE", "/_fake/calls")

    def stats(self):
        return self._control("GET", "/_fake/stats")

    def wait_until(self, predicate, timeout=5.0, interval=0.02, what="condition"):
        """Polls predicate() until it returns a true value (returned) or raises on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise FlyFakeError("timed out after %.1f s waiting for %s" % (timeout, what))
            time.sleep(interval)
