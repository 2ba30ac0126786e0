#!/usr/bin/python3
"""fake_fly.py - a local fake of the fly.io Machines API ("flaps") for tests and benchmarks.

Python 3 standard library only. Run:

    /usr/bin/python3 tests/fakes/fake_fly.py [--port 0] [--token TOKEN] [--app APP]
        [--latency-ms N] [--rate-limit] [--config JSON] [--stdin-eof] [--verbose]

The first stdout line is ``PORT=<n>`` (flushed); the fake then serves on 127.0.0.1
until SIGTERM/SIGINT, or until stdin reaches EOF when ``--stdin-eof`` is given.
The token may also come from the environment variable FAKE_FLY_TOKEN (keeps it
out of ``ps``). What it models is listed under "Model" below; the consumer's
use of the API is in docs/CONTRACT.md.

Model
-----
* One app (``--app``, default ``thopters``); other apps answer 404 ``app not found``.
* Machines follow a state machine in real time. Every timed transition is an
  entry in one heap of (due time, machine, generation); it is applied lazily by
  whichever request next looks at the state, so no timer threads exist.  A
  request that changes a machine's course (stop, delete, ...) bumps the
  machine's generation, which cancels its pending transitions.
    create            -> created -(create_ms)-> starting -(start_ms)-> started
    create skip_launch-> created (rests)
    start             -> starting -(start_ms)-> started
    stop              -> stopping -(stop_ms)-> stopped
    suspend           -> suspending -(stop_ms)-> suspended
    delete            -> destroying -(destroy_ms)-> destroyed
                         -(destroyed_visible_ms)-> gone (404 everywhere)
                         and the mounted volume is unbound volume_unbind_ms
                         after ``destroyed``.
* ``wait`` blocks on one Condition (no polling) until the state matches, the
  machine is gone, or the timeout passes.
* One lock guards all state. It is never held while sleeping for latency or
  fault delays; ``wait`` releases it while blocked (Condition.wait).

Choices where real fly is unknown or where the fake simplifies (documented so
that tests do not mistake them for facts about fly):
* Duplicate ``name`` among machines that are not destroying/destroyed/gone:
  409 ``already_exists: machine name taken`` (real fly: unconfirmed).
  Config ``unique_names`` (default true) turns the check off.
* List hides destroying/destroyed machines unless ``include_deleted=true``
  (which also shows gone ones) or config ``list_includes_destroyed`` is true
  (real fly may return them; fly-go filters them client side).
* No eventual consistency by default: a machine is visible to get/list as soon
  as create returns. Model lag with fault rules (e.g. a 404 for ``machines.get``).
* Delete on a machine already destroying: 200 ``{"ok":true}``, nothing changes.
  Delete/stop/start on a destroyed or gone machine: 404 ``machine not found``.
  Start/stop on a destroying machine: 412 ``failed_precondition: ...``.
* Delete without force from a state other than stopped/suspended/failed/created:
  412 ``failed_precondition: machine still active, refusing to delete``.
* Start from ``created`` while the launch is still pending (not skip_launch):
  412 ``failed_precondition: unable to start machine from current state: 'created'``.
* ``wait``: ``timeout`` must be plain digits in [1, 60] (default 60) else 400;
  ``state`` repeated or comma separated, default ``started``; ``settled`` means
  any resting state. ``instance_id`` is recorded but only enforced when config
  ``wait_requires_instance_id`` is true (then 400 for a ``stopped`` wait
  without it). 408 exactly at the timeout (real fly: a few seconds earlier).
* Mounts: at most one; the volume must exist (404 ``volume not found``), be in
  the machine's region (412; a create without ``region`` takes the volume's)
  and be unbound (412 ``volume already claimed by machine``).
* Region: the first entry of a comma list; meta-regions are not resolved.
  Default region: config ``default_region`` (``ord``).
* Auth: ``Authorization: Bearer <t>`` or ``FlyV1 <t>``; with a configured token
  ``<t>`` must equal it (a configured token that itself starts with a scheme must
  equal the whole header). With ``strict_scheme`` (default true) a macaroon-like
  token (``fm1``/``fm2``/``m2.``) under ``Bearer`` gets 401
  ``verify: invalid token: no tokens found in header``, as real fly does.
* Rate limits (off by default): token bucket per (route, machine id or app);
  ``machines.get`` 5/s burst 10, everything else 1/s burst 3.
* ``config.files`` (what flyctl's ``--file-local`` sends; contract 5.13 delivers the
  per-machine SSH keys this way): on create and on seed, each entry must be an object
  with an absolute ``guest_path`` (no ``..`` segment, not ending in ``/``) and exactly
  one of ``raw_value`` (strict base64, padding included, as Go's StdEncoding) or
  ``secret_name``; ``mode`` (integer 0..0o7777) is optional; other keys are ignored,
  as Go's JSON decoding does. Anything else is a 400 ``invalid_argument:
  config.files[i]...`` (the fake's wording; real fly's text is unknown) and nothing is
  created. The entries come back unchanged in the machine's ``config``, as fly returns
  them. Secrets are not resolved (the fake has none). With config ``files_dir`` set,
  each ``raw_value`` file is also written, decoded, to
  ``<files_dir>/<machine id>/<guest_path>`` (mode ``mode``, else 0644; directories
  0755) when the machine is created or seeded, before create returns, so a harness can
  boot a simulated machine from them (tests/harness/thopter_machine.py).
* Not modelled: leases, update, metadata endpoints, cordon, apps API, volume
  extend/update (501 ``not implemented in fake``), events beyond a short list.

Control API (no auth, JSON in and out) under /_fake; tests/harness/flyfake.py wraps it:
  POST   /_fake/reset            {"config": bool}: clear machines, volumes, calls, faults,
                                 stats, rate buckets; with config=true also restore the
                                 startup config. Calls still in flight keep running but no
                                 longer count in stats.
  GET    /_fake/config           the config; POST merges keys (unknown keys: 400):
      app, token, latency_ms, latency_by_route {route: ms} (replaces latency_ms for that
      route), rate_limit (bool), rate_limits {"default"|route: {"rate": r/s, "burst": n}},
      retry_after (bool: 429 carries "Retry-After: 1"), outage (null | {"status": 503,
      "error"?, "retry_after"?} | {"mode": "drop", "reset"?: bool}), timings {create_ms,
      start_ms, stop_ms, destroy_ms}, destroyed_visible_ms, volume_unbind_ms,
      private_ip_by_prefix {prefix: ip}, private_ip_pool_by_prefix {prefix: [ip, ...]}
      (each machine named with the prefix takes the next address of the pool that no live
      machine has, going round the list from the address after the last one handed out; an
      address is free again once its machine is destroyed; a pool wins over
      private_ip_by_prefix; an exhausted pool answers the create or seed 503),
      list_includes_destroyed, capacity_error
      {region|"*": {"status", "error"?, "count"?}}, default_region, unique_names,
      strict_scheme, wait_requires_instance_id, max_calls (call log cap, default 100000),
      files_dir (null | directory: write each machine's config.files under
      <files_dir>/<machine id>/<guest path> at create/seed).
  POST   /_fake/faults           push a rule; GET lists them (with id, remaining, hits);
                                 DELETE clears. Rule keys: method, route (glob over route
                                 names; must match one), path_regex, machine, skip (let N
                                 matches pass first), count (default 1, -1 = forever),
                                 status, body (object, or a string sent as text/plain),
                                 headers, retry_after, delay_ms (alone: only slows the
                                 call), drop (true = close, "reset" = RST), after_commit
                                 (do the operation, then answer with the fault).
                                 Order per call: latency, outage, auth, faults, app, route,
                                 rate limit, operation.
  GET    /_fake/machines         every machine ever made (gone ones too), internal view:
                                 public fields + gone, internal_state, deleted_at, gone_at,
                                 destroy_requested_at, launch_pending, volume, seeded, metadata,
                                 files [{guest_path, content_b64 (the decoded content,
                                 base64 again) | secret_name, mode (when given)}]
  POST   /_fake/machines         seed {name, state (default started), region, metadata, id,
                                 image, private_ip, config (config.files checked and written
                                 as on create), volume, created_at, updated_at (RFC 3339,
                                 default now)}; seeded machines rest in
                                 that state (a transient one stays stuck; destroyed -> gone
                                 after destroyed_visible_ms)
  GET    /_fake/machines/ID      one machine (same view, with files); POST /_fake/machines/ID/state {"state": S}
                                 forces a state now ("gone" = vanished, volume unbound)
  GET    /_fake/volumes          all volumes (+ "deleted"); POST seeds {name, region,
                                 size_gb, id, attached_machine_id}
  GET    /_fake/calls[?since=SEQ&route=R]  /v1 calls: seq, method, path, query (dict of
                                 lists), route, app, machine, volume, auth, body, raw_body
                                 (only when not JSON), status (0 = dropped, null while in
                                 flight), started, ended (epoch seconds; ended = response
                                 about to be written), fault (rule id, when one fired),
                                 response (the answer's JSON body, null for none; only with
                                 config record_responses, which the spec contract test
                                 tests/fakes/test_fly_contract.py sets).
                                 DELETE clears the log.
  GET    /_fake/stats            max_in_flight, max_in_flight_by_route,
                                 max_in_flight_by_machine, in_flight, calls, by_route_status
                                 {"<route> <status>": n}. In flight = from the request's
                                 headers being read until its answer is ready to write
                                 (latency and fault delays included).

Route names: machines.{create,list,get,update,delete,start,stop,suspend,wait,lease,metadata,
metadata_get,other},
volumes.{list,create,get,delete,update}, unknown.
"""

import argparse
import base64
import binascii
import datetime
import fnmatch
import heapq
import json
import os
import random
import re
import signal
import socket
import struct
import sys
import threading
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RESTING = {"created", "started", "stopped", "suspended", "failed", "destroyed"}
WAITABLE = {"started", "stopped", "suspended", "destroyed", "failed", "settled", "created"}
DELETABLE = {"stopped", "suspended", "failed", "created"}
DEAD = {"destroying", "destroyed"}

DEFAULT_CONFIG = {
    "app": "thopters",
    "token": None,
    "latency_ms": 0,
    "latency_by_route": {},
    "rate_limit": False,
    "rate_limits": {"default": {"rate": 1.0, "burst": 3}, "machines.get": {"rate": 5.0, "burst": 10}},
    "retry_after": True,
    "outage": None,
    "timings": {"create_ms": 50, "start_ms": 100, "stop_ms": 100, "destroy_ms": 100},
    "destroyed_visible_ms": 200,
    "volume_unbind_ms": 0,
    "private_ip_by_prefix": {},
    "private_ip_pool_by_prefix": {},
    "list_includes_destroyed": False,
    "capacity_error": {},
    "default_region": "ord",
    "unique_names": True,
    "strict_scheme": True,
    "wait_requires_instance_id": False,
    "max_calls": 100000,
    "files_dir": None,
    "record_responses": False,
}
MERGED_KEYS = {"timings", "rate_limits"}  # dict-valued keys merged, not replaced

DEFAULT_FAULT_TEXT = {
    400: "invalid_argument: injected fault",
    404: "machine not found",
    408: "deadline_exceeded: request timed out",
    409: "aborted: injected conflict",
    412: "failed_precondition: injected fault",
    422: "unprocessable: injected fault",
    429: "rate limit exceeded",
    500: "internal: injected fault",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
}

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

# (method, regex, route name); groups: app, then machine/volume id.
ROUTES = [
    ("GET", r"^/v1/apps/([^/]+)/machines$", "machines.list"),
    ("POST", r"^/v1/apps/([^/]+)/machines$", "machines.create"),
    ("GET", r"^/v1/apps/([^/]+)/machines/([^/]+)$", "machines.get"),
    ("POST", r"^/v1/apps/([^/]+)/machines/([^/]+)$", "machines.update"),
    ("DELETE", r"^/v1/apps/([^/]+)/machines/([^/]+)$", "machines.delete"),
    ("POST", r"^/v1/apps/([^/]+)/machines/([^/]+)/start$", "machines.start"),
    ("POST", r"^/v1/apps/([^/]+)/machines/([^/]+)/stop$", "machines.stop"),
    ("POST", r"^/v1/apps/([^/]+)/machines/([^/]+)/suspend$", "machines.suspend"),
    ("GET", r"^/v1/apps/([^/]+)/machines/([^/]+)/wait$", "machines.wait"),
    (None, r"^/v1/apps/([^/]+)/machines/([^/]+)/lease$", "machines.lease"),
    ("POST", r"^/v1/apps/([^/]+)/machines/([^/]+)/metadata/([^/]+)$", "machines.metadata"),
    ("GET", r"^/v1/apps/([^/]+)/machines/([^/]+)/metadata$", "machines.metadata_get"),
    (None, r"^/v1/apps/([^/]+)/machines/([^/]+)/(?:metadata|cordon|uncordon|restart|signal)(?:/.*)?$",
     "machines.other"),
    ("GET", r"^/v1/apps/([^/]+)/volumes$", "volumes.list"),
    ("POST", r"^/v1/apps/([^/]+)/volumes$", "volumes.create"),
    ("GET", r"^/v1/apps/([^/]+)/volumes/([^/]+)$", "volumes.get"),
    ("DELETE", r"^/v1/apps/([^/]+)/volumes/([^/]+)$", "volumes.delete"),
    (None, r"^/v1/apps/([^/]+)/volumes/([^/]+)(?:/extend)?$", "volumes.update"),
]
ROUTES = [(m, re.compile(rx), name) for m, rx, name in ROUTES]
ROUTE_NAMES = {name for _, _, name in ROUTES} | {"unknown"}
NOT_IMPLEMENTED = {"machines.update", "machines.lease", "machines.other", "volumes.update"}


def match_route(method, path):
    """Returns (route, app, object_id). route is "unknown" when nothing matches."""
    for m, rx, name in ROUTES:
        mo = rx.match(path)
        if mo and (m is None or m == method):
            groups = mo.groups()
            return name, urllib.parse.unquote(groups[0]), (
                urllib.parse.unquote(groups[1]) if len(groups) > 1 else None)
    mo = re.match(r"^/v1/apps/([^/]+)", path)
    return "unknown", (urllib.parse.unquote(mo.group(1)) if mo else None), None


def rfc3339(wall):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall))


def parse_rfc3339(text):
    """Seconds since the epoch of an RFC 3339 string with a zone ("...Z", "...+01:00")."""
    try:
        dt = datetime.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        dt = None
    if dt is None or dt.tzinfo is None:
        raise ApiError(400, "not an RFC 3339 time with a zone: %r" % (text,))
    return dt.timestamp()


def ulid(wall):
    ms = int(wall * 1000)
    out = []
    for _ in range(10):
        out.append(CROCKFORD[ms & 31])
        ms >>= 5
    rnd = random.getrandbits(80)
    tail = []
    for _ in range(16):
        tail.append(CROCKFORD[rnd & 31])
        rnd >>= 5
    return "".join(reversed(out)) + "".join(tail)


def default_private_ip():
    r = random.getrandbits(48)
    return "fdaa:0:1:a7b:%x:%x:%x:2" % ((r >> 32) & 0xFFFF, (r >> 16) & 0xFFFF, r & 0xFFFF)


def image_ref(image):
    ref, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "latest")
    parts = ref.split("/", 1)
    if len(parts) == 2 and ("." in parts[0] or ":" in parts[0]):
        registry, repo = parts
    else:
        registry, repo = "docker-hub-mirror.fly.io", ref
    return {"registry": registry, "repository": repo, "tag": tag or "latest",
            "digest": "sha256:" + "0" * 64, "labels": {}}


def file_view(f):
    """A stored config.files entry as the control API shows it (content decoded, re-encoded)."""
    out = {"guest_path": f["guest_path"]}
    if "content" in f:
        out["content_b64"] = base64.b64encode(f["content"]).decode("ascii")
    else:
        out["secret_name"] = f["secret_name"]
    if "mode" in f:
        out["mode"] = f["mode"]
    return out


def check_files(files):
    """Validates config.files; returns [{"guest_path", "content" | "secret_name", "mode"?}].

    fly-go's File is {guest_path, raw_value (base64), secret_name} (newer API versions
    add mode); as Go's JSON decoder does, other keys are ignored.
    """
    if files is None:
        return []
    if not isinstance(files, list):
        raise ApiError(400, "invalid_argument: config.files must be an array")
    out = []
    for i, f in enumerate(files):
        where = "config.files[%d]" % i
        if not isinstance(f, dict):
            raise ApiError(400, "invalid_argument: %s must be an object" % where)
        path = f.get("guest_path")
        if not isinstance(path, str) or not path.startswith("/") or path.endswith("/") \
                or "\0" in path or ".." in path.split("/"):
            raise ApiError(400, "invalid_argument: %s.guest_path must be an absolute file path "
                                "(got %s)" % (where, json.dumps(path)))
        raw, secret = f.get("raw_value"), f.get("secret_name")
        if raw is not None and secret is not None:
            raise ApiError(400, "invalid_argument: %s: set raw_value or secret_name, not both" % where)
        entry = {"guest_path": path}
        if raw is not None:
            if not isinstance(raw, str):
                raise ApiError(400, "invalid_argument: %s.raw_value must be a base64 string" % where)
            try:
                entry["content"] = base64.b64decode(raw.encode("ascii"), validate=True)
            except (binascii.Error, UnicodeEncodeError, ValueError):
                raise ApiError(400, "invalid_argument: %s.raw_value is not valid base64" % where)
        elif secret is not None:
            if not isinstance(secret, str) or not secret:
                raise ApiError(400, "invalid_argument: %s.secret_name must be a non-empty string"
                               % where)
            entry["secret_name"] = secret
        else:
            raise ApiError(400, "invalid_argument: %s needs raw_value or secret_name" % where)
        mode = f.get("mode")
        if mode is not None:
            if not isinstance(mode, int) or isinstance(mode, bool) or not 0 <= mode <= 0o7777:
                raise ApiError(400, "invalid_argument: %s.mode must be an integer from 0 to 4095"
                               % where)
            entry["mode"] = mode
        out.append(entry)
    return out


class Response:
    __slots__ = ("status", "body", "headers", "drop")

    def __init__(self, status=200, body=None, headers=None, drop=None):
        self.status = status
        self.body = body          # JSON-able value, or str for a raw text body
        self.headers = headers or {}
        self.drop = drop          # None | "close" | "reset"


def err(status, text, code=None):
    body = {"error": text}
    if code:
        body["status"] = code
    return Response(status, body)


class ApiError(Exception):
    def __init__(self, status, text, code=None):
        super().__init__(text)
        self.response = err(status, text, code)


class CallCtx:
    __slots__ = ("call", "route", "machine", "latency_ms", "body", "raw", "epoch")

    def __init__(self, call, route, machine, latency_ms, body, raw, epoch):
        self.call, self.route, self.machine = call, route, machine
        self.latency_ms, self.body, self.raw, self.epoch = latency_ms, body, raw, epoch


class Machine:
    def __init__(self, mid, name, region, config, private_ip, now, wall):
        self.id = mid
        self.name = name
        self.region = region
        self.config = config
        self.private_ip = private_ip
        self.instance_id = ulid(wall)
        self.created_wall = wall
        self.updated_wall = wall
        self.state = "created"
        self.gen = 0
        self.launch_pending = False
        self.events = []
        self.gone = False
        self.gone_wall = None
        self.destroyed_wall = None
        self.destroy_requested_wall = None
        self.volume_id = None
        self.seeded = False
        self.files = []  # [{"guest_path", "content" (bytes) | "secret_name", "mode"?}]

    def event(self, etype, status, wall, source="user"):
        self.events.append({"type": etype, "status": status, "source": source,
                            "timestamp": int(wall * 1000)})
        del self.events[:-20]

    def public(self, summary=False):
        d = {
            "id": self.id, "name": self.name,
            "state": "destroyed" if self.gone else self.state,
            "region": self.region, "instance_id": self.instance_id, "version": self.instance_id,
            "private_ip": self.private_ip,
            "created_at": rfc3339(self.created_wall), "updated_at": rfc3339(self.updated_wall),
            "image_ref": image_ref(str(self.config.get("image", ""))),
        }
        if not summary:
            d["config"] = self.config
            d["events"] = list(reversed(self.events))
            d["checks"] = []
            d["host_status"] = "ok"
        return d

    def internal(self):
        d = self.public()
        d.update({"gone": self.gone, "internal_state": self.state,
                  "deleted_at": rfc3339(self.destroyed_wall) if self.destroyed_wall else None,
                  "gone_at": rfc3339(self.gone_wall) if self.gone_wall else None,
                  "destroy_requested_at": (rfc3339(self.destroy_requested_wall)
                                           if self.destroy_requested_wall else None),
                  "launch_pending": self.launch_pending, "volume": self.volume_id,
                  "seeded": self.seeded, "metadata": self.config.get("metadata") or {},
                  "files": [file_view(f) for f in self.files]})
        return d


class Volume:
    def __init__(self, vid, name, region, size_gb, wall):
        self.id = vid
        self.name = name
        self.region = region
        self.size_gb = size_gb
        self.created_wall = wall
        self.state = "created"
        self.attached_machine_id = None
        self.deleted = False

    def public(self):
        return {"id": self.id, "name": self.name, "state": self.state, "region": self.region,
                "zone": "f1a2", "size_gb": self.size_gb, "encrypted": True, "fstype": "ext4",
                "attached_machine_id": self.attached_machine_id, "attached_alloc_id": None,
                "created_at": rfc3339(self.created_wall), "host_status": "ok"}


class FakeFly:
    """All state of the fake, behind one Condition (self.cond)."""

    def __init__(self, base_config):
        self.base_config = self._merge(json.loads(json.dumps(DEFAULT_CONFIG)), base_config)
        self.cfg = json.loads(json.dumps(self.base_config))
        self.cond = threading.Condition(threading.Lock())
        self.wall_offset = time.time() - time.monotonic()
        self.in_flight = 0
        self.in_flight_by_route = {}
        self.in_flight_by_machine = {}
        self.epoch = 0  # bumped by reset: calls begun earlier no longer count in stats
        self._clear_state()

    # ---- helpers (call with the lock held) ----------------------------------------------

    def _clear_state(self):
        self.machines = {}
        self.volumes = {}
        self.heap = []
        self.heap_seq = 0
        self.calls = []
        self.seq = 0
        self.faults = []
        self.buckets = {}
        self.stats_calls = 0
        self.by_route_status = {}
        self.max_in_flight = 0
        self.max_by_route = {}
        self.max_by_machine = {}
        self.pool_next = {}  # private_ip_pool_by_prefix: prefix -> index of the next address to try
        self.epoch += 1

    @staticmethod
    def _merge(cfg, updates):
        for k, v in (updates or {}).items():
            if k not in DEFAULT_CONFIG:
                raise ApiError(400, "unknown config key: %s" % k)
            if k == "private_ip_pool_by_prefix" and not (
                    isinstance(v, dict) and all(isinstance(ips, list) and ips and all(
                        isinstance(ip, str) and ip for ip in ips) for ips in v.values())):
                raise ApiError(400, "config private_ip_pool_by_prefix must map prefixes to "
                                    "non-empty lists of addresses")
            if k in MERGED_KEYS:
                if not isinstance(v, dict):
                    raise ApiError(400, "config %s must be an object" % k)
                if k == "timings":
                    bad = set(v) - set(DEFAULT_CONFIG["timings"])
                    if bad:
                        raise ApiError(400, "unknown timings key(s): %s" % ", ".join(sorted(bad)))
                cfg[k] = dict(cfg[k], **v)
            else:
                cfg[k] = v
        return cfg

    def wall(self, mono):
        return mono + self.wall_offset

    def _schedule(self, m, delay_ms, kind, arg=None, base=None):
        t = (base if base is not None else time.monotonic()) + delay_ms / 1000.0
        self.heap_seq += 1
        heapq.heappush(self.heap, (t, self.heap_seq, m.id, m.gen, kind, arg))
        self.cond.notify_all()
        return t

    def _set_state(self, m, state, mono, event=None):
        m.state = state
        m.updated_wall = self.wall(mono)
        if event:
            m.event(event[0], event[1], m.updated_wall)
        self.cond.notify_all()

    def _advance(self, now=None):
        now = time.monotonic() if now is None else now
        while self.heap and self.heap[0][0] <= now:
            t, _, mid, gen, kind, arg = heapq.heappop(self.heap)
            m = self.machines.get(mid)
            if m is None or m.gen != gen:
                continue
            if kind == "state":
                if arg == "started":
                    m.launch_pending = False
                self._set_state(m, arg, t, event=self._event_for(arg))
                if arg == "destroyed":
                    m.destroyed_wall = self.wall(t)
            elif kind == "gone":
                m.gone = True
                m.gone_wall = self.wall(t)
                self.cond.notify_all()
            elif kind == "unbind":
                v = self.volumes.get(arg)
                if v is not None and v.attached_machine_id == m.id:
                    v.attached_machine_id = None
                    self.cond.notify_all()

    @staticmethod
    def _event_for(state):
        return {"starting": ("start", "starting"), "started": ("start", "started"),
                "stopping": ("stop", "stopping"), "stopped": ("exit", "stopped"),
                "suspending": ("suspend", "suspending"), "suspended": ("suspend", "suspended"),
                "destroying": ("destroy", "destroying"), "destroyed": ("destroy", "destroyed"),
                "failed": ("exit", "failed")}.get(state)

    def _schedule_destroyed_tail(self, m, t_destroyed):
        """Given the time m reaches destroyed, schedules gone and the volume unbind."""
        self._schedule(m, self.cfg["destroyed_visible_ms"], "gone", base=t_destroyed)
        if m.volume_id:
            self._schedule(m, self.cfg["volume_unbind_ms"], "unbind", m.volume_id, base=t_destroyed)

    def _new_machine_id(self):
        while True:
            mid = "%014x" % random.getrandbits(56)
            if mid not in self.machines:
                return mid

    def _new_volume_id(self):
        alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
        while True:
            vid = "vol_" + "".join(random.choice(alphabet) for _ in range(16))
            if vid not in self.volumes:
                return vid

    def _private_ip_for(self, name):
        pools = [(p, ips) for p, ips in self.cfg["private_ip_pool_by_prefix"].items()
                 if name.startswith(p)]
        if pools:
            prefix, ips = max(pools, key=lambda x: len(x[0]))
            taken = {m.private_ip for m in self.machines.values()
                     if not m.gone and m.state != "destroyed"}
            start = self.pool_next.get(prefix, 0)
            for k in range(len(ips)):
                i = (start + k) % len(ips)
                if ips[i] not in taken:
                    self.pool_next[prefix] = i + 1
                    return ips[i]
            raise ApiError(503, "fake: private_ip_pool_by_prefix[%r] is exhausted (%d addresses, "
                                "each on a live machine)" % (prefix, len(ips)))
        best = None
        for prefix, ip in self.cfg["private_ip_by_prefix"].items():
            if name.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
                best = (prefix, ip)
        return best[1] if best else default_private_ip()

    def _write_files(self, m):
        """With config files_dir set: writes m's files to <files_dir>/<id>/<guest_path>."""
        root = self.cfg["files_dir"]
        if not root:
            return
        base = os.path.join(os.path.abspath(root), m.id)
        try:
            for f in m.files:
                if "content" not in f:
                    continue  # a secret: the fake has no secrets to resolve
                path = os.path.normpath(os.path.join(base, f["guest_path"].lstrip("/")))
                if not path.startswith(base + os.sep):
                    raise ApiError(400, "invalid_argument: bad guest_path %s" % f["guest_path"])
                os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
                with open(path, "wb") as out:
                    out.write(f["content"])
                os.chmod(path, f.get("mode", 0o644))
        except OSError as e:
            raise ApiError(500, "fake: cannot write config.files under files_dir: %s" % e)

    def _live(self, mid):
        """The machine for a mutating call: 404 when unknown, gone or destroyed."""
        m = self.machines.get(mid)
        if m is None or m.gone or m.state == "destroyed":
            raise ApiError(404, "machine not found")
        return m

    # ---- the /v1 API -------------------------------------------------------------------

    def begin_call(self, method, path, query, headers, body_bytes):
        """Records a /v1 call and counts it in flight; returns a CallCtx for handle/end."""
        route, app, obj = match_route(method, path)
        machine = obj if route.startswith("machines.") else None
        body, raw = None, None
        if body_bytes:
            try:
                body = json.loads(body_bytes.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                raw = body_bytes.decode("utf-8", "replace")[:4096]
        with self.cond:
            self.seq += 1
            call = {"seq": self.seq, "method": method, "path": path, "query": query,
                    "route": route, "app": app, "machine": machine,
                    "volume": obj if route.startswith("volumes.") else None,
                    "auth": headers.get("Authorization"), "body": body,
                    "status": None, "started": time.time(), "ended": None}
            if raw is not None:
                call["raw_body"] = raw
            self.calls.append(call)
            if len(self.calls) > self.cfg["max_calls"] * 5 // 4:
                del self.calls[:len(self.calls) - self.cfg["max_calls"]]
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            n = self.in_flight_by_route.get(route, 0) + 1
            self.in_flight_by_route[route] = n
            self.max_by_route[route] = max(self.max_by_route.get(route, 0), n)
            if machine:
                n = self.in_flight_by_machine.get(machine, 0) + 1
                self.in_flight_by_machine[machine] = n
                self.max_by_machine[machine] = max(self.max_by_machine.get(machine, 0), n)
            latency = self.cfg["latency_by_route"].get(route, self.cfg["latency_ms"])
        return CallCtx(call, route, machine, latency, body, raw, self.epoch)

    def record_status(self, ctx, status, body=None):
        """Called just before the response is written (0 = dropped connection)."""
        with self.cond:
            ctx.call["status"] = status
            if self.cfg["record_responses"]:
                ctx.call["response"] = json.loads(json.dumps(body)) if status != 204 else None
            ctx.call["ended"] = time.time()
            if ctx.epoch == self.epoch:
                self.stats_calls += 1
                key = "%s %s" % (ctx.route, status)
                self.by_route_status[key] = self.by_route_status.get(key, 0) + 1

    def end_call(self, ctx):
        """Called once the response is written: the call is no longer in flight."""
        with self.cond:
            self.in_flight -= 1
            self.in_flight_by_route[ctx.route] -= 1
            if ctx.machine:
                self.in_flight_by_machine[ctx.machine] -= 1
                if not self.in_flight_by_machine[ctx.machine]:
                    del self.in_flight_by_machine[ctx.machine]

    def handle_api(self, ctx, headers):
        """Runs one /v1 call after begin_call(). Never holds the lock while sleeping."""
        call, body, raw = ctx.call, ctx.body, ctx.raw
        if ctx.latency_ms:
            time.sleep(ctx.latency_ms / 1000.0)
        with self.cond:
            outage = self.cfg["outage"]
        if outage:
            if outage.get("mode") == "drop":
                return Response(drop="reset" if outage.get("reset") else "close")
            r = err(int(outage.get("status", 503)), outage.get("error", "service unavailable"))
            if outage.get("retry_after") is not None:
                r.headers["Retry-After"] = str(outage["retry_after"])
            return r
        denied = self._check_auth(headers.get("Authorization"))
        if denied:
            return denied
        rule = self._take_fault(call)
        if rule and rule.get("delay_ms"):
            time.sleep(rule["delay_ms"] / 1000.0)
        is_fault = rule is not None and (rule.get("status") or rule.get("drop"))
        if is_fault and not rule.get("after_commit"):
            return self._fault_response(rule)
        try:
            resp = self._route(call, body, raw)
        except ApiError as e:
            resp = e.response
        if is_fault:
            return self._fault_response(rule)
        return resp

    def _check_auth(self, header):
        with self.cond:
            token = self.cfg["token"]
            strict = self.cfg["strict_scheme"]
        unauthorized = err(401, "Authenticate: token validation error")
        if not header:
            return unauthorized
        scheme, _, value = header.partition(" ")
        if scheme not in ("Bearer", "FlyV1") or not value.strip():
            return unauthorized
        if token:
            if token.startswith(("Bearer ", "FlyV1 ")):
                if header != token:
                    return unauthorized
            elif value != token:
                return unauthorized
        if strict and scheme == "Bearer" and value.startswith(("fm1", "fm2", "m2.")):
            return err(401, "verify: invalid token: no tokens found in header")
        return None

    def _take_fault(self, call):
        with self.cond:
            for rule in self.faults:
                if rule["remaining"] == 0:
                    continue
                if rule.get("method") and rule["method"].upper() != call["method"]:
                    continue
                if rule.get("route") and not fnmatch.fnmatchcase(call["route"], rule["route"]):
                    continue
                if rule.get("path_regex") and not re.search(rule["path_regex"], call["path"]):
                    continue
                if rule.get("machine") and rule["machine"] != call["machine"]:
                    continue
                if rule["skipped"] < rule.get("skip", 0):
                    rule["skipped"] += 1
                    continue
                if rule["remaining"] > 0:
                    rule["remaining"] -= 1
                rule["hits"] += 1
                call["fault"] = rule["id"]
                return dict(rule)
        return None

    @staticmethod
    def _fault_response(rule):
        if rule.get("drop"):
            return Response(drop="reset" if rule["drop"] == "reset" else "close")
        status = int(rule["status"])
        body = rule.get("body")
        if body is None:
            body = {"error": DEFAULT_FAULT_TEXT.get(status, "injected fault")}
        r = Response(status, body, dict(rule.get("headers") or {}))
        if rule.get("retry_after") is not None:
            r.headers["Retry-After"] = str(rule["retry_after"])
        return r

    def _rate_limited(self, route, key):
        """Token bucket per (route, key); returns a 429 Response or None. Lock held."""
        if not self.cfg["rate_limit"]:
            return None
        limits = self.cfg["rate_limits"]
        lim = limits.get(route, limits["default"])
        rate, burst = float(lim["rate"]), float(lim["burst"])
        now = time.monotonic()
        tokens, last = self.buckets.get((route, key), (burst, now))
        tokens = min(burst, tokens + (now - last) * rate)
        if tokens < 1.0:
            self.buckets[(route, key)] = (tokens, now)
            r = err(429, "rate limit exceeded")
            if self.cfg["retry_after"]:
                r.headers["Retry-After"] = "1"
            return r
        self.buckets[(route, key)] = (tokens - 1.0, now)
        return None

    def _route(self, call, body, raw):
        route = call["route"]
        with self.cond:
            app_ok = call["app"] == self.cfg["app"]
            if call["app"] is not None and not app_ok:
                return err(404, "app not found")
            if route == "unknown":
                return err(404, "not found")
            limited = self._rate_limited(route, call["machine"] or call["app"])
            if limited:
                return limited
            if route in NOT_IMPLEMENTED:
                return err(501, "not implemented in fake: %s" % route)
            if raw is not None:
                return err(400, "invalid_argument: request body is not valid JSON")
            self._advance()
            handler = getattr(self, "_api_" + route.replace(".", "_"))
            return handler(call, body)

    # Each _api_* runs with the lock held and the clock advanced.

    def _api_machines_create(self, call, body):
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_argument: request body must be a JSON object")
        config = body.get("config")
        if not isinstance(config, dict) or not isinstance(config.get("image"), str) \
                or not config["image"]:
            raise ApiError(400, "invalid_argument: config.image is required")
        for key in ("env", "metadata"):
            val = config.get(key)
            if val is not None and (not isinstance(val, dict)
                                    or not all(isinstance(x, str) for x in val.values())):
                raise ApiError(400, "invalid_argument: config.%s must map strings to strings" % key)
        files = check_files(config.get("files"))
        mounts = config.get("mounts") or []
        if not isinstance(mounts, list) or len(mounts) > 1:
            raise ApiError(400, "invalid_argument: at most one mount is supported")
        name = body.get("name")
        if name is not None and (not isinstance(name, str) or not name):
            raise ApiError(400, "invalid_argument: name must be a non-empty string")
        region = body.get("region")
        if region is not None and not isinstance(region, str):
            raise ApiError(400, "invalid_argument: region must be a string")
        region = (region or "").split(",")[0].strip()
        vol = None
        if mounts:
            mount = mounts[0]
            if not isinstance(mount, dict) or not mount.get("volume") or not mount.get("path"):
                raise ApiError(400, "invalid_argument: mounts[0] needs volume and path")
            vol = self.volumes.get(mount["volume"])
            if vol is None or vol.deleted:
                raise ApiError(404, "volume not found")
            if not region:
                region = vol.region
            if vol.region != region:
                raise ApiError(412, "failed_precondition: volume %s is in region %s, not %s"
                               % (vol.id, vol.region, region))
        region = region or self.cfg["default_region"]
        cap = self.cfg["capacity_error"].get(region) or self.cfg["capacity_error"].get("*")
        if cap and cap.get("count", -1) != 0:
            if cap.get("count", -1) > 0:
                cap["count"] -= 1
            raise ApiError(int(cap.get("status", 412)), cap.get(
                "error", "could not reserve resource for machine: insufficient memory "
                         "available to fulfill request"), "insufficient_capacity")
        if name and self.cfg["unique_names"]:
            for other in self.machines.values():
                if other.name == name and not other.gone and other.state not in DEAD:
                    raise ApiError(409, "already_exists: machine name taken")
        if vol is not None and vol.attached_machine_id:
            raise ApiError(412, "volume already claimed by machine")
        mid = self._new_machine_id()
        name = name or "fake-%s" % mid[:8]
        now = time.monotonic()
        m = Machine(mid, name, region, config, self._private_ip_for(name), now, self.wall(now))
        m.files = files
        self._write_files(m)
        m.event("launch", "created", m.created_wall)
        if vol is not None:
            vol.attached_machine_id = mid
            m.volume_id = vol.id
        self.machines[mid] = m
        if not body.get("skip_launch"):
            m.launch_pending = True
            t = self._schedule(m, self.cfg["timings"]["create_ms"], "state", "starting", base=now)
            self._schedule(m, self.cfg["timings"]["start_ms"], "state", "started", base=t)
        call["machine"] = mid
        return Response(200, m.public())

    def _api_machines_get(self, call, body):
        m = self.machines.get(call["machine"])
        if m is None or m.gone:
            raise ApiError(404, "machine not found")
        return Response(200, m.public())

    def _api_machines_metadata(self, call, body):
        """POST .../metadata/{key} {"value": v}: 204 (reference 4.11)."""
        m = self._live(call["machine"])
        key = urllib.parse.unquote(call["path"].rsplit("/", 1)[-1])
        if not isinstance(body, dict) or not isinstance(body.get("value"), str):
            raise ApiError(400, "invalid_argument: value must be a string")
        m.config.setdefault("metadata", {})[key] = body["value"]
        return Response(204)

    def _api_machines_metadata_get(self, call, body):
        m = self._live(call["machine"])
        return Response(200, dict(m.config.get("metadata") or {}))

    def _api_machines_list(self, call, body):
        q = call["query"]
        include_deleted = q.get("include_deleted", ["false"])[-1].lower() in ("true", "1")
        summary = q.get("summary", ["false"])[-1].lower() in ("true", "1")
        region = q.get("region", [None])[-1]
        states = {s for v in q.get("state", []) for s in v.split(",") if s}
        meta = {k[len("metadata."):]: v[-1] for k, v in q.items() if k.startswith("metadata.")}
        out = []
        for m in sorted(self.machines.values(), key=lambda x: (x.created_wall, x.id)):
            shown_state = "destroyed" if m.gone else m.state
            if not include_deleted:
                if m.gone or (shown_state in DEAD and not self.cfg["list_includes_destroyed"]):
                    continue
            if region and m.region != region:
                continue
            if states and shown_state not in states:
                continue
            md = m.config.get("metadata") or {}
            if any(md.get(k) != v for k, v in meta.items()):
                continue
            out.append(m.public(summary=summary))
        return Response(200, out)

    def _api_machines_start(self, call, body):
        m = self._live(call["machine"])
        prev = m.state
        if m.state == "destroying":
            raise ApiError(412, "failed_precondition: unable to start machine from current "
                                "state: 'destroying'")
        if m.state in ("started", "starting"):
            pass
        elif m.state in ("stopped", "suspended", "failed") or (
                m.state == "created" and not m.launch_pending):
            m.gen += 1
            now = time.monotonic()
            self._set_state(m, "starting", now, event=("start", "requested"))
            self._schedule(m, self.cfg["timings"]["start_ms"], "state", "started", base=now)
        else:
            raise ApiError(412, "failed_precondition: unable to start machine from current "
                                "state: '%s'" % m.state)
        return Response(200, {"previous_state": prev, "migrated": False, "new_host": ""})

    def _stop_like(self, call, body, target, transient, event):
        if body is not None and not isinstance(body, dict):
            raise ApiError(400, "json: cannot unmarshal %s into Go value of type main.stopRequest"
                           % type(body).__name__.replace("list", "array"))
        m = self._live(call["machine"])
        if m.state == "destroying":
            raise ApiError(412, "failed_precondition: machine is being destroyed")
        if m.state in (target, transient) or (m.state == "created" and not m.launch_pending):
            return Response(200, {"ok": True})
        if m.state in ("stopped", "suspended", "failed"):
            return Response(200, {"ok": True})
        m.gen += 1
        m.launch_pending = False
        now = time.monotonic()
        self._set_state(m, transient, now, event=(event, "requested"))
        self._schedule(m, self.cfg["timings"]["stop_ms"], "state", target, base=now)
        return Response(200, {"ok": True})

    def _api_machines_stop(self, call, body):
        return self._stop_like(call, body, "stopped", "stopping", "stop")

    def _api_machines_suspend(self, call, body):
        return self._stop_like(call, body, "suspended", "suspending", "suspend")

    def _api_machines_delete(self, call, body):
        m = self._live(call["machine"])
        q = call["query"]
        force = any(q.get(k, ["false"])[-1].lower() in ("true", "1") for k in ("force", "kill"))
        if m.state == "destroying":
            return Response(200, {"ok": True})
        if not force and m.state not in DELETABLE:
            raise ApiError(412, "failed_precondition: machine still active, refusing to delete")
        m.gen += 1
        m.launch_pending = False
        now = time.monotonic()
        m.destroy_requested_wall = self.wall(now)
        self._set_state(m, "destroying", now, event=("destroy", "requested"))
        t = self._schedule(m, self.cfg["timings"]["destroy_ms"], "state", "destroyed", base=now)
        self._schedule_destroyed_tail(m, t)
        return Response(200, {"ok": True})

    def _api_machines_wait(self, call, body):
        q = call["query"]
        states = [s for v in q.get("state", ["started"]) for s in v.split(",") if s] or ["started"]
        bad = [s for s in states if s not in WAITABLE]
        if bad:
            raise ApiError(400, "invalid_argument: invalid state %r" % bad[0])
        timeout_s = q.get("timeout", ["60"])[-1]
        if not re.fullmatch(r"[0-9]{1,4}", timeout_s) or not 1 <= int(timeout_s) <= 60:
            raise ApiError(400, "invalid_argument: timeout must be between 1 and 60 seconds")
        if self.cfg["wait_requires_instance_id"] and "stopped" in states and not (
                q.get("instance_id") or q.get("version")):
            raise ApiError(400, "instance_id required when waiting for stopped machine")
        mid = call["machine"]
        m = self.machines.get(mid)
        if m is None or (m.gone and "destroyed" not in states):
            raise ApiError(404, "machine not found")
        deadline = time.monotonic() + int(timeout_s)
        while True:
            now = time.monotonic()
            self._advance(now)
            if self.machines.get(mid) is not m:  # reset while waiting
                raise ApiError(404, "machine not found")
            if m.gone:
                if "destroyed" in states:
                    return Response(200, {"ok": True, "state": "destroyed"})
                raise ApiError(404, "machine not found")
            if m.state in states or ("settled" in states and m.state in RESTING
                                     and not m.launch_pending):
                return Response(200, {"ok": True, "state": m.state})
            if now >= deadline:
                raise ApiError(408, "machine failed to reach desired state, %s, currently %s"
                               % (",".join(states), m.state))
            wake = min(deadline, self.heap[0][0] if self.heap else deadline)
            self.cond.wait(max(0.001, wake - now))

    def _api_volumes_list(self, call, body):
        vols = sorted((v for v in self.volumes.values() if not v.deleted),
                      key=lambda v: (v.created_wall, v.id))
        return Response(200, [v.public() for v in vols])

    def _api_volumes_create(self, call, body):
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"]:
            raise ApiError(400, "invalid_argument: name is required")
        size = body.get("size_gb", 3)
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ApiError(400, "invalid_argument: size_gb must be a positive integer")
        region = body.get("region") or self.cfg["default_region"]
        v = Volume(self._new_volume_id(), body["name"], region, size, time.time())
        self.volumes[v.id] = v
        return Response(200, v.public())

    def _volume(self, vid):
        v = self.volumes.get(vid)
        if v is None or v.deleted:
            raise ApiError(404, "volume not found")
        return v

    def _api_volumes_get(self, call, body):
        return Response(200, self._volume(call["volume"]).public())

    def _api_volumes_delete(self, call, body):
        v = self._volume(call["volume"])
        if v.attached_machine_id:
            raise ApiError(412, "failed_precondition: volume is currently bound to machine: %s"
                           % v.attached_machine_id)
        v.deleted = True
        v.state = "destroyed"
        return Response(200, v.public())

    # ---- the /_fake control API ------------------------------------------------------------

    def control(self, method, path, query, body):
        try:
            return self._control(method, path, query, body)
        except ApiError as e:
            return e.response

    def _control(self, method, path, query, body):
        body = body if body is not None else {}
        if not isinstance(body, dict):
            raise ApiError(400, "body must be a JSON object")
        with self.cond:
            self._advance()
            if (method, path) == ("POST", "/_fake/reset"):
                self._clear_state()
                if body.get("config"):
                    self.cfg = json.loads(json.dumps(self.base_config))
                self.cond.notify_all()
                return Response(200, {"ok": True})
            if path == "/_fake/config":
                if method == "POST":
                    self.cfg = self._merge(json.loads(json.dumps(self.cfg)), body)
                    self.cond.notify_all()
                return Response(200, self.cfg) if method in ("GET", "POST") else None
            if path == "/_fake/faults":
                if method == "GET":
                    return Response(200, self.faults)
                if method == "DELETE":
                    self.faults = []
                    return Response(200, {"ok": True})
                if method == "POST":
                    return Response(200, self._add_fault(body))
            if path == "/_fake/machines":
                if method == "GET":
                    return Response(200, [m.internal() for m in sorted(
                        self.machines.values(), key=lambda x: (x.created_wall, x.id))])
                if method == "POST":
                    return Response(200, self._seed_machine(body).internal())
            mo = re.match(r"^/_fake/machines/([^/]+)(/state)?$", path)
            if mo:
                m = self.machines.get(mo.group(1))
                if m is None:
                    raise ApiError(404, "machine not found")
                if method == "POST" and mo.group(2):
                    self._force_state(m, body.get("state"))
                return Response(200, m.internal())
            if path == "/_fake/volumes":
                if method == "GET":
                    return Response(200, [dict(v.public(), deleted=v.deleted) for v in sorted(
                        self.volumes.values(), key=lambda v: (v.created_wall, v.id))])
                if method == "POST":
                    return Response(200, self._seed_volume(body).public())
            if path == "/_fake/calls":
                if method == "DELETE":
                    self.calls = []
                    return Response(200, {"ok": True})
                since = int(query.get("since", ["0"])[-1])
                route = query.get("route", [None])[-1]
                return Response(200, [c for c in self.calls if c["seq"] > since
                                      and (route is None or c["route"] == route)])
            if path == "/_fake/stats":
                return Response(200, {
                    "max_in_flight": self.max_in_flight,
                    "max_in_flight_by_route": self.max_by_route,
                    "max_in_flight_by_machine": self.max_by_machine,
                    "in_flight": self.in_flight, "calls": self.stats_calls,
                    "by_route_status": self.by_route_status})
        raise ApiError(404, "no such control route: %s %s" % (method, path))

    def _add_fault(self, rule):
        rule = dict(rule)
        allowed = {"method", "route", "path_regex", "machine", "status", "count", "retry_after",
                   "body", "headers", "delay_ms", "drop", "after_commit", "skip"}
        unknown = set(rule) - allowed
        if unknown:
            raise ApiError(400, "unknown fault key(s): %s" % ", ".join(sorted(unknown)))
        if not (rule.get("status") or rule.get("drop") or rule.get("delay_ms")):
            raise ApiError(400, "a fault needs status, drop or delay_ms")
        if rule.get("route") and not any(fnmatch.fnmatchcase(name, rule["route"])
                                         for name in ROUTE_NAMES):
            raise ApiError(400, "route %r matches no route; routes: %s"
                           % (rule["route"], ", ".join(sorted(ROUTE_NAMES))))
        if rule.get("drop") not in (None, False, True, "close", "reset"):
            raise ApiError(400, "drop must be true, \"close\" or \"reset\"")
        if rule.get("path_regex"):
            try:
                re.compile(rule["path_regex"])
            except re.error as e:
                raise ApiError(400, "bad path_regex: %s" % e)
        self.heap_seq += 1
        rule.update(id=self.heap_seq, remaining=int(rule.pop("count", 1)), hits=0, skipped=0)
        self.faults.append(rule)
        return rule

    def _seed_machine(self, body):
        state = body.get("state", "started")
        walls = {k: parse_rfc3339(body[k]) for k in ("created_at", "updated_at") if k in body}
        if state == "gone":
            raise ApiError(400, "cannot seed a gone machine")
        mid = body.get("id") or self._new_machine_id()
        if mid in self.machines:
            raise ApiError(409, "machine id exists: %s" % mid)
        name = body.get("name") or "fake-%s" % mid[:8]
        config = dict(body.get("config") or {})
        config.setdefault("image", body.get("image", "registry.fly.io/thopter:latest"))
        if "metadata" in body:
            config["metadata"] = body["metadata"]
        now = time.monotonic()
        files = check_files(config.get("files"))
        m = Machine(mid, name, body.get("region") or self.cfg["default_region"], config,
                    body.get("private_ip") or self._private_ip_for(name), now, self.wall(now))
        m.seeded = True
        m.files = files
        self._write_files(m)
        m.event("launch", "created", m.created_wall)
        if body.get("volume"):
            v = self.volumes.get(body["volume"])
            if v is None:
                raise ApiError(404, "volume not found")
            v.attached_machine_id = mid
            m.volume_id = v.id
            config.setdefault("mounts", [{"volume": v.id, "path": "/data"}])
        self.machines[mid] = m
        self._force_state(m, state)
        m.created_wall = walls.get("created_at", m.created_wall)
        m.updated_wall = walls.get("updated_at", m.updated_wall)
        return m

    def _force_state(self, m, state):
        """Puts m in state at once (tests: crashes, auto_destroy, stuck machines)."""
        if not isinstance(state, str) or not state:
            raise ApiError(400, "state required")
        m.gen += 1
        m.launch_pending = False
        now = time.monotonic()
        if state == "gone":
            m.gone, m.gone_wall = True, self.wall(now)
            m.destroyed_wall = m.destroyed_wall or m.gone_wall
            self._set_state(m, "destroyed", now)
            v = self.volumes.get(m.volume_id)
            if v is not None and v.attached_machine_id == m.id:
                v.attached_machine_id = None
            return
        m.gone = False
        self._set_state(m, state, now, event=self._event_for(state))
        if state == "destroyed":
            m.destroyed_wall = self.wall(now)
            self._schedule_destroyed_tail(m, now)

    def _seed_volume(self, body):
        vid = body.get("id") or self._new_volume_id()
        if vid in self.volumes:
            raise ApiError(409, "volume id exists: %s" % vid)
        v = Volume(vid, body.get("name", "data"), body.get("region") or self.cfg["default_region"],
                   int(body.get("size_gb", 3)), time.time())
        if body.get("attached_machine_id"):
            v.attached_machine_id = body["attached_machine_id"]
        self.volumes[vid] = v
        return v


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else +40 ms per keep-alive request (environment.md 7)
    server_version = "fake-fly/1"
    fake = None       # set by make_server
    verbose = False

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):
        if self.verbose:
            sys.stderr.write("fake_fly: %s\n" % (fmt % args))

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _dispatch(self, method):
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        body_bytes = self._read_body()
        if path.startswith("/_fake/"):
            try:
                body = json.loads(body_bytes) if body_bytes else None
            except ValueError:
                self._send(err(400, "control body is not valid JSON"))
                return
            resp = self.fake.control(method, path, query, body)
            self._send(resp or err(404, "no such control route"))
            return
        if not path.startswith("/v1/"):
            self._send(err(404, "not found"))
            return
        ctx = self.fake.begin_call(method, path, query, self.headers, body_bytes)
        try:
            try:
                resp = self.fake.handle_api(ctx, self.headers)
            except Exception as e:  # keep serving, but make the bug visible
                sys.stderr.write("fake_fly: internal error on %s %s:\n%s"
                                 % (method, path, traceback.format_exc()))
                resp = err(500, "fake internal error: %r" % e)
            self.fake.record_status(ctx, 0 if resp.drop else resp.status, resp.body)
        finally:
            # The call leaves the in-flight counts before its answer is
            # written: a client that reads the answer and at once sends its
            # next request must not be seen with two calls in flight.
            self.fake.end_call(ctx)
        self._send(resp)

    def _send(self, resp):
        """Writes resp, or drops the connection when resp.drop is set."""
        if resp.drop:
            self.close_connection = True
            try:
                if resp.drop == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
                    self.connection.close()
                else:
                    self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if resp.status == 204:
            data, ctype = b"", None  # No Content: no body (RFC 9110 15.3.5)
        elif isinstance(resp.body, str):
            data, ctype = resp.body.encode("utf-8"), "text/plain; charset=utf-8"
        else:
            data, ctype = json.dumps(resp.body).encode("utf-8"), "application/json"
        self.send_response(resp.status)
        if ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("fly-request-id", "01FAKE%020x" % random.getrandbits(80))
        for k, v in resp.headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        # A client that hangs up mid-answer (a consumer killed by a test) is
        # normal here; anything else is still reported.
        exc = sys.exc_info()[1]
        if isinstance(exc, (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


def make_server(port, config, verbose=False):
    """Builds the server on 127.0.0.1:port; returns (server, fake)."""
    fake = FakeFly(config)
    handler = type("BoundHandler", (Handler,), {"fake": fake, "verbose": verbose})
    return Server(("127.0.0.1", port), handler), fake


def main(argv=None):
    ap = argparse.ArgumentParser(description="Fake fly.io Machines API (see module docstring).")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--token", default=os.environ.get("FAKE_FLY_TOKEN") or None,
                    help="required token (default: env FAKE_FLY_TOKEN; unset: any token)")
    ap.add_argument("--app", default="thopters")
    ap.add_argument("--latency-ms", type=int, default=0)
    ap.add_argument("--rate-limit", action="store_true")
    ap.add_argument("--config", default=None, help="JSON object of config keys (as /_fake/config)")
    ap.add_argument("--stdin-eof", action="store_true", help="exit when stdin reaches EOF")
    ap.add_argument("--verbose", action="store_true", help="log each request to stderr")
    args = ap.parse_args(argv)
    config = {"app": args.app, "token": args.token, "latency_ms": args.latency_ms,
              "rate_limit": args.rate_limit}
    try:
        if args.config:
            config.update(json.loads(args.config))
        server, _ = make_server(args.port, config, args.verbose)
    except (ValueError, ApiError) as e:
        sys.stderr.write("fake_fly: bad configuration: %s\n" % e)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if args.stdin_eof:
        def watch_stdin():
            while sys.stdin.buffer.read(4096):
                pass
            stop.set()
        threading.Thread(target=watch_stdin, daemon=True).start()
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    t.start()
    sys.stdout.write("PORT=%d\n" % server.server_address[1])
    sys.stdout.flush()
    while not stop.wait(0.5):
        pass
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
