"""Tests of the fake fly.io Machines API (fake_fly.py), through plain urllib requests.

Run: cd tests/fakes && PYTHONPATH=../harness /usr/bin/python3 -m unittest -v test_fake_fly
"""

import base64
import http.client
import json
import os
import stat
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

from flyfake import FlyFake

TOKEN = "test-token"
AUTH = "Bearer " + TOKEN
IMAGE = "registry.fly.io/thopter:v1"


class FakeFlyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fly = FlyFake()
        cls.base = cls.fly.start(token=TOKEN)

    @classmethod
    def tearDownClass(cls):
        cls.fly.stop()

    def setUp(self):
        self.fly.reset(config=True)

    # ---- helpers -------------------------------------------------------------------------

    def api(self, method, path, body=None, auth=AUTH, query=None, timeout=10):
        """One /v1 call; returns (status, headers, parsed JSON body or None)."""
        url = self.base + "/v1/apps/thopters" + path
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        if auth is not None:
            req.add_header("Authorization", auth)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw, status, headers = resp.read(), resp.status, resp.headers
        except urllib.error.HTTPError as e:
            raw, status, headers = e.read(), e.code, e.headers
        return status, headers, (json.loads(raw) if raw else None)

    def create(self, name=None, region=None, metadata=None, mounts=None, skip_launch=False,
               expect=200):
        config = {"image": IMAGE, "metadata": metadata or {}}
        if mounts:
            config["mounts"] = mounts
        body = {"config": config}
        if name:
            body["name"] = name
        if region:
            body["region"] = region
        if skip_launch:
            body["skip_launch"] = True
        status, _, m = self.api("POST", "/machines", body)
        self.assertEqual(status, expect, m)
        return m

    def state(self, mid):
        status, _, m = self.api("GET", "/machines/" + mid)
        return m["state"] if status == 200 else status

    # ---- auth ----------------------------------------------------------------------------

    def test_auth_rejects_missing_wrong_token_and_scheme(self):
        for auth in (None, "Bearer wrong", "Basic " + TOKEN, "Bearer ", TOKEN):
            status, _, body = self.api("GET", "/machines", auth=auth)
            self.assertEqual(status, 401, auth)
            self.assertEqual(body, {"error": "Authenticate: token validation error"})
        for auth in (AUTH, "FlyV1 " + TOKEN):
            self.assertEqual(self.api("GET", "/machines", auth=auth)[0], 200, auth)

    def test_macaroon_under_bearer_is_rejected(self):
        self.fly.config(token="fm2_abc")
        status, _, body = self.api("GET", "/machines", auth="Bearer fm2_abc")
        self.assertEqual((status, body["error"]),
                         (401, "verify: invalid token: no tokens found in header"))
        self.assertEqual(self.api("GET", "/machines", auth="FlyV1 fm2_abc")[0], 200)

    def test_unknown_app_and_route_are_404(self):
        req = urllib.request.Request(self.base + "/v1/apps/other/machines",
                                     headers={"Authorization": AUTH})
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(req, timeout=5)
        self.assertEqual(cm.exception.code, 404)
        self.assertEqual(json.loads(cm.exception.read()), {"error": "app not found"})
        self.assertEqual(self.api("GET", "/nothing")[0], 404)

    # ---- machines ------------------------------------------------------------------------

    def test_create_get_list_with_metadata_filter(self):
        a = self.create(name="thopter-a", region="iad", metadata={"req": "1", "role": "thopter"})
        b = self.create(name="thopter-b", region="ord", metadata={"req": "2", "role": "thopter"})
        self.assertRegex(a["id"], r"^[0-9a-f]{14}$")
        self.assertRegex(a["instance_id"], r"^[0-9A-Z]{26}$")
        self.assertRegex(a["created_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertTrue(a["private_ip"].startswith("fdaa:"), a["private_ip"])
        self.assertEqual((a["state"], a["region"], a["config"]["metadata"]["req"]),
                         ("created", "iad", "1"))
        status, _, got = self.api("GET", "/machines/" + a["id"])
        self.assertEqual((status, got["id"], got["name"]), (200, a["id"], "thopter-a"))

        def ids(query):
            status, _, lst = self.api("GET", "/machines", query=query)
            self.assertEqual(status, 200)
            return sorted(m["id"] for m in lst)

        self.assertEqual(ids({"metadata.req": "1"}), [a["id"]])
        self.assertEqual(ids({"metadata.role": "thopter"}), sorted([a["id"], b["id"]]))
        self.assertEqual(ids({"metadata.role": "thopter", "metadata.req": "2"}), [b["id"]])
        self.assertEqual(ids({"metadata.req": "3"}), [])
        self.assertEqual(ids({"region": "ord"}), [b["id"]])
        status, _, lst = self.api("GET", "/machines", query={"summary": "true"})
        self.assertNotIn("config", lst[0])

        status, _, body = self.api("GET", "/machines/0123456789abcd")
        self.assertEqual((status, body), (404, {"error": "machine not found"}))

    def test_create_validation_and_duplicate_name(self):
        status, _, body = self.api("POST", "/machines", {"config": {}})
        self.assertEqual(status, 400)
        self.assertIn("image", body["error"])
        self.assertEqual(self.api("POST", "/machines", [1])[0], 400)
        self.create(name="thopter-x")
        dup = self.create(name="thopter-x", expect=409)
        self.assertEqual(dup, {"error": "already_exists: machine name taken"})

    def test_state_transitions_follow_timings(self):
        self.fly.config(timings={"create_ms": 150, "start_ms": 300})
        t0 = time.monotonic()
        m = self.create()
        self.assertEqual(m["state"], "created")
        time.sleep(0.25)
        self.assertEqual(self.state(m["id"]), "starting")
        status, _, body = self.api("GET", "/machines/%s/wait" % m["id"],
                                   query={"state": "started", "timeout": "5"})
        elapsed = time.monotonic() - t0
        self.assertEqual((status, body), (200, {"ok": True, "state": "started"}))
        self.assertGreaterEqual(elapsed, 0.44)
        self.assertLess(elapsed, 1.5)

        # stop -> stopping -> stopped; stopping again is a harmless 200
        self.assertEqual(self.api("POST", "/machines/%s/stop" % m["id"], {})[2], {"ok": True})
        self.assertEqual(self.state(m["id"]), "stopping")
        status, _, body = self.api("GET", "/machines/%s/wait" % m["id"],
                                   query={"state": "stopped", "timeout": "5",
                                          "instance_id": m["instance_id"]})
        self.assertEqual((status, body["state"]), (200, "stopped"))
        self.assertEqual(self.api("POST", "/machines/%s/stop" % m["id"])[0], 200)
        self.assertEqual(self.state(m["id"]), "stopped")
        self.assertEqual(self.api("POST", "/machines/%s/stop" % m["id"], [1])[0], 400)

        # start again
        status, _, body = self.api("POST", "/machines/%s/start" % m["id"])
        self.assertEqual((status, body["previous_state"]), (200, "stopped"))
        self.assertEqual(self.state(m["id"]), "starting")

    def test_start_refused_while_launch_pending_allowed_after_skip_launch(self):
        self.fly.config(timings={"create_ms": 5000})
        m = self.create()
        status, _, body = self.api("POST", "/machines/%s/start" % m["id"])
        self.assertEqual(status, 412)
        self.assertIn("'created'", body["error"])
        s = self.create(skip_launch=True)
        time.sleep(0.1)
        self.assertEqual(self.state(s["id"]), "created")
        self.assertEqual(self.api("POST", "/machines/%s/start" % s["id"])[0], 200)
        self.assertEqual(self.state(s["id"]), "starting")

    def test_delete_precondition_force_and_kill(self):
        a = self.fly.seed_machine(name="thopter-a", state="started")
        b = self.fly.seed_machine(name="thopter-b", state="started")
        c = self.fly.seed_machine(name="thopter-c", state="stopped")
        status, _, body = self.api("DELETE", "/machines/" + a["id"])
        self.assertEqual((status, body), (412, {
            "error": "failed_precondition: machine still active, refusing to delete"}))
        self.assertEqual(self.state(a["id"]), "started")
        self.assertEqual(self.api("DELETE", "/machines/" + a["id"], query={"force": "true"})[0], 200)
        self.assertEqual(self.api("DELETE", "/machines/" + b["id"], query={"kill": "true"})[0], 200)
        self.assertEqual(self.api("DELETE", "/machines/" + c["id"])[2], {"ok": True})
        for m in (a, b, c):
            self.assertEqual(self.state(m["id"]), "destroying")
        self.assertEqual(self.api("DELETE", "/machines/ffffffffffffff")[0], 404)

    def test_destroy_becomes_destroyed_then_404(self):
        self.fly.config(timings={"destroy_ms": 100}, destroyed_visible_ms=300)
        m = self.fly.seed_machine(name="thopter-d", state="started")
        self.assertEqual(self.api("DELETE", "/machines/" + m["id"], query={"force": "true"})[0], 200)
        status, _, body = self.api("GET", "/machines/%s/wait" % m["id"],
                                   query={"state": "destroyed", "timeout": "5"})
        self.assertEqual((status, body["state"]), (200, "destroyed"))
        self.assertEqual(self.state(m["id"]), "destroyed")
        self.assertEqual(self.api("GET", "/machines")[2], [])  # hidden from list by default
        lst = self.api("GET", "/machines", query={"include_deleted": "true"})[2]
        self.assertEqual([x["id"] for x in lst], [m["id"]])
        self.assertEqual(self.api("DELETE", "/machines/" + m["id"])[0], 404)
        time.sleep(0.4)
        self.assertEqual(self.state(m["id"]), 404)
        # waiting for destroyed on a gone machine succeeds; waiting for started is a 404
        self.assertEqual(self.api("GET", "/machines/%s/wait" % m["id"],
                                  query={"state": "destroyed", "timeout": "1"})[0], 200)
        self.assertEqual(self.api("GET", "/machines/%s/wait" % m["id"],
                                  query={"state": "started", "timeout": "1"})[0], 404)
        internal = self.fly.machine(m["id"])
        self.assertTrue(internal["gone"])
        self.assertIsNotNone(internal["deleted_at"])

    def test_list_includes_destroyed_when_configured(self):
        self.fly.config(list_includes_destroyed=True, timings={"destroy_ms": 5000})
        m = self.fly.seed_machine(name="thopter-l", state="stopped")
        self.api("DELETE", "/machines/" + m["id"])
        lst = self.api("GET", "/machines")[2]
        self.assertEqual([(x["id"], x["state"]) for x in lst], [(m["id"], "destroying")])

    # ---- wait ----------------------------------------------------------------------------

    def test_wait_timeout_bounds_408_and_state_lists(self):
        m = self.create(skip_launch=True)
        path = "/machines/%s/wait" % m["id"]
        for bad in ("0", "61", "abc", "1.5", "-1"):
            status, _, body = self.api("GET", path, query={"state": "started", "timeout": bad})
            self.assertEqual((status, body), (400, {
                "error": "invalid_argument: timeout must be between 1 and 60 seconds"}), bad)
        self.assertEqual(self.api("GET", path, query={"state": "bogus", "timeout": "1"})[0], 400)
        t0 = time.monotonic()
        status, _, body = self.api("GET", path, query={"state": "started", "timeout": "1"})
        elapsed = time.monotonic() - t0
        self.assertEqual((status, body), (408, {
            "error": "machine failed to reach desired state, started, currently created"}))
        self.assertGreaterEqual(elapsed, 0.95)
        self.assertLess(elapsed, 1.5)
        # comma-separated and repeated states: any one satisfies the wait
        self.assertEqual(self.api("GET", path, query={"state": "started,created",
                                                      "timeout": "1"})[2]["state"], "created")
        self.assertEqual(self.api("GET", path, query={"state": ["stopped", "created"],
                                                      "timeout": "1"})[2]["state"], "created")
        self.assertEqual(self.api("GET", "/machines/ffffffffffffff/wait",
                                  query={"timeout": "1"})[0], 404)

    def test_wait_wakes_on_transition_not_by_polling(self):
        self.fly.config(timings={"stop_ms": 200})
        m = self.fly.seed_machine(name="thopter-w", state="started")
        self.api("POST", "/machines/%s/stop" % m["id"])
        t0 = time.monotonic()
        status, _, _ = self.api("GET", "/machines/%s/wait" % m["id"],
                                query={"state": "stopped", "timeout": "10"})
        elapsed = time.monotonic() - t0
        self.assertEqual(status, 200)
        self.assertGreater(elapsed, 0.12)
        self.assertLess(elapsed, 0.5)

    def test_wait_requires_instance_id_when_configured(self):
        self.fly.config(wait_requires_instance_id=True)
        m = self.fly.seed_machine(state="stopped")
        path = "/machines/%s/wait" % m["id"]
        status, _, body = self.api("GET", path, query={"state": "stopped", "timeout": "1"})
        self.assertEqual((status, body["error"]),
                         (400, "instance_id required when waiting for stopped machine"))
        self.assertEqual(self.api("GET", path, query={"state": "stopped", "timeout": "1",
                                                      "instance_id": m["instance_id"]})[0], 200)

    # ---- faults --------------------------------------------------------------------------

    def test_fault_with_count_and_machine_filter(self):
        a = self.fly.seed_machine(name="thopter-a", state="stopped")
        b = self.fly.seed_machine(name="thopter-b", state="stopped")
        self.fly.push_fault(method="DELETE", route="machines.delete", machine=a["id"],
                            status=503, count=2, retry_after="2")
        self.assertEqual(self.api("DELETE", "/machines/" + b["id"])[0], 200)  # other machine
        for _ in range(2):
            status, headers, body = self.api("DELETE", "/machines/" + a["id"])
            self.assertEqual((status, headers.get("Retry-After"), body),
                             (503, "2", {"error": "service unavailable"}))
            self.assertEqual(self.state(a["id"]), "stopped")  # the fault came before the op
        self.assertEqual(self.api("DELETE", "/machines/" + a["id"])[0], 200)
        rules = self.fly.faults()
        self.assertEqual((rules[0]["remaining"], rules[0]["hits"]), (0, 2))
        self.fly.clear_faults()
        self.assertEqual(self.fly.faults(), [])
        with self.assertRaisesRegex(Exception, "matches no route"):
            self.fly.push_fault(route="machine", status=503)  # a typo must not pass silently

    def test_fault_forever_skip_path_regex_and_raw_body(self):
        self.fly.push_fault(path_regex=r"/machines$", method="GET", status=502, count=-1, skip=1,
                            body="<html>bad gateway</html>")
        self.assertEqual(self.api("GET", "/machines")[0], 200)  # skipped once
        for _ in range(3):
            url = self.base + "/v1/apps/thopters/machines"
            req = urllib.request.Request(url, headers={"Authorization": AUTH})
            with self.assertRaises(urllib.error.HTTPError) as cm:
                urllib.request.urlopen(req, timeout=5)
            self.assertEqual((cm.exception.code, cm.exception.read()),
                             (502, b"<html>bad gateway</html>"))

    def test_fault_drop_closes_connection_without_answer(self):
        self.fly.push_fault(route="machines.list", drop=True)
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError,
                                urllib.error.URLError)):
            self.api("GET", "/machines")
        self.fly.push_fault(route="machines.list", drop="reset")
        with self.assertRaises((ConnectionError, urllib.error.URLError)):
            self.api("GET", "/machines")
        self.assertEqual(self.api("GET", "/machines")[0], 200)
        self.assertEqual([c["status"] for c in self.fly.calls(route="machines.list")], [0, 0, 200])

    def test_fault_after_commit_creates_then_fails(self):
        self.fly.push_fault(route="machines.create", status=408, after_commit=True)
        status, _, _ = self.api("POST", "/machines", {
            "name": "thopter-amb", "config": {"image": IMAGE, "metadata": {"req": "amb"}}})
        self.assertEqual(status, 408)
        lst = self.api("GET", "/machines", query={"metadata.req": "amb"})[2]
        self.assertEqual([m["name"] for m in lst], ["thopter-amb"])
        # and without after_commit nothing is created
        self.fly.push_fault(route="machines.create", status=500)
        status, _, _ = self.api("POST", "/machines", {
            "name": "thopter-no", "config": {"image": IMAGE, "metadata": {"req": "no"}}})
        self.assertEqual(status, 500)
        self.assertEqual(self.api("GET", "/machines", query={"metadata.req": "no"})[2], [])

    def test_fault_delay_only_slows_the_call(self):
        self.fly.push_fault(route="machines.list", delay_ms=200)
        t0 = time.monotonic()
        self.assertEqual(self.api("GET", "/machines")[0], 200)
        self.assertGreaterEqual(time.monotonic() - t0, 0.19)

    def test_outage_status_and_drop(self):
        self.fly.outage(503)
        self.assertEqual(self.api("GET", "/machines")[0], 503)
        self.fly.outage(drop=True)
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError,
                                urllib.error.URLError)):
            self.api("GET", "/machines")
        self.fly.outage_end()
        self.assertEqual(self.api("GET", "/machines")[0], 200)

    def test_capacity_error_per_region(self):
        self.fly.config(capacity_error={"iad": {"status": 412}})
        status, _, body = self.api("POST", "/machines", {"region": "iad",
                                                         "config": {"image": IMAGE}})
        self.assertEqual((status, body["status"]), (412, "insufficient_capacity"))
        self.assertIn("insufficient", body["error"])
        self.assertEqual(self.create(region="ord")["region"], "ord")
        self.assertEqual(self.fly.machines()[0]["region"], "ord")

    # ---- rate limit ----------------------------------------------------------------------

    def test_rate_limit_with_and_without_retry_after(self):
        self.fly.config(rate_limit=True)
        a = self.fly.seed_machine(name="thopter-a", state="stopped")
        b = self.fly.seed_machine(name="thopter-b", state="stopped")
        codes = [self.api("POST", "/machines/%s/stop" % a["id"])[0] for _ in range(4)]
        self.assertEqual(codes, [200, 200, 200, 429])
        status, headers, body = self.api("POST", "/machines/%s/stop" % a["id"])
        self.assertEqual((status, headers.get("Retry-After"), body),
                         (429, "1", {"error": "rate limit exceeded"}))
        self.assertEqual(self.api("POST", "/machines/%s/stop" % b["id"])[0], 200)  # own bucket
        gets = [self.api("GET", "/machines/" + a["id"])[0] for _ in range(11)]
        self.assertEqual(gets.count(200), 10)
        self.assertEqual(gets[-1], 429)
        self.fly.config(retry_after=False)
        status, headers, _ = self.api("POST", "/machines/%s/stop" % a["id"])
        self.assertEqual((status, headers.get("Retry-After")), (429, None))
        time.sleep(1.05)  # refills one token per second
        self.assertEqual(self.api("POST", "/machines/%s/stop" % a["id"])[0], 200)

    # ---- latency, keep-alive, stats ------------------------------------------------------

    def test_latency_global_and_per_route(self):
        self.fly.config(latency_ms=150, latency_by_route={"machines.list": 0})
        t0 = time.monotonic()
        self.assertEqual(self.api("GET", "/machines/ffffffffffffff")[0], 404)
        self.assertGreaterEqual(time.monotonic() - t0, 0.15)
        t0 = time.monotonic()
        self.assertEqual(self.api("GET", "/machines")[0], 200)
        self.assertLess(time.monotonic() - t0, 0.1)

    def test_keep_alive_has_no_nagle_delay(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.fly.port, timeout=5)
        try:
            t0 = time.monotonic()
            for _ in range(10):
                conn.request("GET", "/v1/apps/thopters/machines", headers={"Authorization": AUTH})
                resp = conn.getresponse()
                self.assertEqual(resp.status, 200)
                resp.read()
                self.assertEqual(resp.getheader("Content-Length"), "2")
            elapsed = time.monotonic() - t0
        finally:
            conn.close()
        self.assertLess(elapsed, 0.25)  # ~40 ms per request if Nagle were on

    def test_stats_max_in_flight_under_concurrency(self):
        self.fly.config(latency_ms=300)
        m = self.fly.seed_machine(name="thopter-s", state="started")
        results = []

        def get():
            results.append(self.api("GET", "/machines/" + m["id"])[0])

        threads = [threading.Thread(target=get) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(results, [200] * 5)
        stats = self.fly.stats()
        self.assertEqual(stats["max_in_flight"], 5)
        self.assertEqual(stats["max_in_flight_by_route"], {"machines.get": 5})
        self.assertEqual(stats["max_in_flight_by_machine"], {m["id"]: 5})
        self.assertEqual((stats["in_flight"], stats["calls"]), (0, 5))
        self.assertEqual(stats["by_route_status"], {"machines.get 200": 5})

    def test_calls_record_auth_body_query_and_since(self):
        m = self.create(name="thopter-c", metadata={"req": "c1"})
        self.api("DELETE", "/machines/" + m["id"], query={"force": "true"}, auth="FlyV1 " + TOKEN)
        calls = self.fly.calls()
        self.assertEqual([c["route"] for c in calls], ["machines.create", "machines.delete"])
        self.assertEqual(calls[0]["auth"], AUTH)
        self.assertEqual(calls[0]["body"]["config"]["metadata"], {"req": "c1"})
        self.assertEqual(calls[0]["machine"], m["id"])
        self.assertEqual((calls[1]["auth"], calls[1]["query"], calls[1]["status"]),
                         ("FlyV1 " + TOKEN, {"force": ["true"]}, 200))
        self.assertLessEqual(calls[1]["started"], calls[1]["ended"])
        self.assertEqual([c["seq"] for c in self.fly.calls(since=calls[0]["seq"])],
                         [calls[1]["seq"]])
        self.fly.reset()
        self.assertEqual((self.fly.calls(), self.fly.machines()), ([], []))

    def test_private_ip_by_prefix_and_seed(self):
        self.fly.config(private_ip_by_prefix={"thopter-": "127.0.0.2", "gc-": "127.0.0.3"})
        self.assertEqual(self.create(name="thopter-1")["private_ip"], "127.0.0.2")
        self.assertEqual(self.fly.seed_machine(name="gc-main")["private_ip"], "127.0.0.3")
        self.assertTrue(self.create(name="other")["private_ip"].startswith("fdaa:"))

    def test_private_ip_pool_gives_each_live_machine_its_own_address(self):
        pool = ["127.9.0.10", "127.9.0.11", "127.9.0.12"]
        self.fly.config(private_ip_by_prefix={"thopter-": "127.0.0.2", "gc-": "127.0.0.3"},
                        private_ip_pool_by_prefix={"thopter-": pool})
        a, b = self.create(name="thopter-a"), self.create(name="thopter-b")
        self.assertEqual((a["private_ip"], b["private_ip"]), (pool[0], pool[1]))
        self.assertEqual(self.fly.seed_machine(name="gc-x")["private_ip"], "127.0.0.3", "no pool for gc-")
        c = self.fly.seed_machine(name="thopter-c")
        self.assertEqual(c["private_ip"], pool[2], "seeds take from the pool too")
        # All three addresses are on live machines: the next create is refused, nothing made.
        status, _, body = self.api("POST", "/machines", {"name": "thopter-d", "config": {"image": IMAGE}})
        self.assertEqual(status, 503, body)
        self.assertIn("private_ip_pool_by_prefix", body["error"])
        self.assertEqual(len([m for m in self.fly.machines() if m["name"].startswith("thopter-")]), 3)
        # Destroying is not enough: the address is free once the machine is destroyed.
        self.api("DELETE", "/machines/" + b["id"], query={"force": "true"})
        self.assertEqual(self.api("POST", "/machines", {"name": "thopter-d", "config": {"image": IMAGE}})[0],
                         503, "still destroying")
        self.fly.wait_until(lambda: self.fly.machine(b["id"])["state"] == "destroyed", what="b destroyed")
        d = self.create(name="thopter-d")
        self.assertEqual(d["private_ip"], pool[1])
        # Round the list from the one after the last handed out: a freed address is not the
        # next one's at once when another is free.
        self.fly.set_state(a["id"], "destroyed")
        self.fly.set_state(c["id"], "gone")
        self.assertEqual(self.create(name="thopter-e")["private_ip"], pool[2])
        self.assertEqual(self.create(name="thopter-f")["private_ip"], pool[0])
        with self.assertRaisesRegex(Exception, "HTTP 400"):
            self.fly.config(private_ip_pool_by_prefix={"thopter-": []})

    def test_metadata_set_is_204_and_shows_in_config_also_with_include_deleted(self):
        m = self.create(name="thopter-md", metadata={"thopter_request_id": "r-1"})
        status, headers, body = self.api("POST", "/machines/%s/metadata/thopter_provisioned" % m["id"],
                                         {"value": "r-1"})
        self.assertEqual((status, body), (204, None))
        status, _, md = self.api("GET", "/machines/%s/metadata" % m["id"])
        self.assertEqual(md, {"thopter_request_id": "r-1", "thopter_provisioned": "r-1"})
        self.assertEqual(self.api("POST", "/machines/%s/metadata/k" % m["id"], {"value": 3})[0], 400)
        self.assertEqual(self.api("POST", "/machines/00000000000000/metadata/k", {"value": "v"})[0], 404)
        self.api("DELETE", "/machines/%s" % m["id"], query={"force": "true"})
        _, _, listed = self.api("GET", "/machines", query={"metadata.thopter_request_id": "r-1",
                                                           "include_deleted": "true"})
        self.assertEqual([x["config"]["metadata"]["thopter_provisioned"] for x in listed], ["r-1"])
        _, _, live = self.api("GET", "/machines", query={"metadata.thopter_request_id": "r-1"})
        self.assertEqual(live, [])

    def test_seed_with_chosen_created_and_updated_times(self):
        m = self.fly.seed_machine(name="thopter-old", state="stopped",
                                  created_at="2025-01-02T03:04:05Z",
                                  updated_at="2025-01-02T05:04:05+01:00",
                                  metadata={"thopter_provisioned": "r1"})
        self.assertEqual((m["created_at"], m["updated_at"]),
                         ("2025-01-02T03:04:05Z", "2025-01-02T04:04:05Z"))
        status, _, listed = self.api("GET", "/machines")
        self.assertEqual(status, 200)
        self.assertEqual([(x["id"], x["created_at"], x["updated_at"], x["state"]) for x in listed],
                         [(m["id"], "2025-01-02T03:04:05Z", "2025-01-02T04:04:05Z", "stopped")])
        self.assertEqual(self.api("GET", "/machines/" + m["id"])[2]["updated_at"], "2025-01-02T04:04:05Z")
        # Without them: now; a later state change moves updated_at, not created_at.
        n = self.fly.seed_machine(name="thopter-new", state="started")
        self.assertLess(abs(time.mktime(time.strptime(n["created_at"], "%Y-%m-%dT%H:%M:%SZ"))
                            - time.mktime(time.gmtime())), 120)
        self.api("POST", "/machines/%s/start" % m["id"])
        after = self.api("GET", "/machines/" + m["id"])[2]
        self.assertEqual(after["created_at"], "2025-01-02T03:04:05Z")
        self.assertNotEqual(after["updated_at"], "2025-01-02T04:04:05Z")
        for bad in ("2025-01-02T03:04:05", "yesterday", 5):
            with self.assertRaises(Exception):
                self.fly.seed_machine(name="thopter-bad", created_at=bad)
        self.assertEqual(len(self.fly.machines()), 2, "a refused seed leaves no machine")

    def test_set_state_models_a_vanished_machine(self):
        m = self.fly.seed_machine(name="thopter-v", state="started")
        self.fly.set_state(m["id"], "gone")
        self.assertEqual(self.state(m["id"]), 404)

    # ---- config.files --------------------------------------------------------------------

    def create_with_files(self, files, name="thopter-f", expect=200):
        status, _, m = self.api("POST", "/machines", {"name": name, "config": {
            "image": IMAGE, "files": files}})
        self.assertEqual(status, expect, m)
        return m

    def test_files_are_kept_returned_in_config_and_decoded_by_the_control_api(self):
        key = b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEA\n-----END OPENSSH PRIVATE KEY-----\n"
        files = [{"guest_path": "/etc/thopter/ssh/ssh_host_ed25519_key",
                  "raw_value": base64.b64encode(key).decode()},
                 {"guest_path": "/tmp/.env.thopters", "raw_value": "", "mode": 0o600},
                 {"guest_path": "/etc/secret", "secret_name": "APP_SECRET"}]
        m = self.create_with_files(files)
        self.assertEqual(m["config"]["files"], files)
        status, _, got = self.api("GET", "/machines/" + m["id"])
        self.assertEqual(got["config"]["files"], files)
        view = self.fly.machine(m["id"])["files"]
        self.assertEqual(view, [
            {"guest_path": "/etc/thopter/ssh/ssh_host_ed25519_key",
             "content_b64": base64.b64encode(key).decode()},
            {"guest_path": "/tmp/.env.thopters", "content_b64": "", "mode": 0o600},
            {"guest_path": "/etc/secret", "secret_name": "APP_SECRET"}])
        self.assertEqual(self.fly.machine_files(m["id"]), {
            "/etc/thopter/ssh/ssh_host_ed25519_key": key, "/tmp/.env.thopters": b"",
            "/etc/secret": None})
        self.assertEqual([x["files"] for x in self.fly.machines()], [view])
        # A machine created without files has none.
        self.assertEqual(self.fly.machine(self.create(name="plain")["id"])["files"], [])

    def test_bad_files_are_400_and_create_nothing(self):
        good = base64.b64encode(b"x").decode()
        cases = [
            ("not-a-list", {"guest_path": "/a", "raw_value": good}, "config.files must be an array"),
            ("relative", [{"guest_path": "etc/x", "raw_value": good}], "config.files[0].guest_path"),
            ("dotdot", [{"guest_path": "/etc/../x", "raw_value": good}], "config.files[0].guest_path"),
            ("dir", [{"guest_path": "/etc/", "raw_value": good}], "config.files[0].guest_path"),
            ("no-path", [{"raw_value": good}], "config.files[0].guest_path"),
            ("bad-base64", [{"guest_path": "/a", "raw_value": good},
                            {"guest_path": "/b", "raw_value": "not base64!"}],
             "config.files[1].raw_value is not valid base64"),
            ("bad-padding", [{"guest_path": "/a", "raw_value": "eA"}], "not valid base64"),
            ("number", [{"guest_path": "/a", "raw_value": 12}], "raw_value must be a base64 string"),
            ("neither", [{"guest_path": "/a"}], "needs raw_value or secret_name"),
            ("both", [{"guest_path": "/a", "raw_value": good, "secret_name": "S"}], "not both"),
            ("empty-secret", [{"guest_path": "/a", "secret_name": ""}], "secret_name"),
            ("bad-mode", [{"guest_path": "/a", "raw_value": good, "mode": "0600"}], "mode"),
            ("not-object", ["/a"], "config.files[0] must be an object"),
        ]
        for label, files, text in cases:
            with self.subTest(label):
                body = self.create_with_files(files, name="thopter-" + label, expect=400)
                self.assertTrue(body["error"].startswith("invalid_argument: "), body)
                self.assertIn(text, body["error"])
        self.assertEqual(self.fly.machines(), [])
        with self.assertRaises(Exception):
            self.fly.seed_machine(name="gc-x", config={"files": [{"guest_path": "rel", "raw_value": good}]})

    def test_files_dir_gets_each_machines_files_at_create_and_seed(self):
        with tempfile.TemporaryDirectory() as d:
            self.fly.config(files_dir=d)
            m = self.create_with_files([
                {"guest_path": "/etc/thopter/ssh/authorized_keys",
                 "raw_value": base64.b64encode(b"ssh-ed25519 AAAA consumer\n").decode()},
                {"guest_path": "/tmp/post-checkout.sh", "raw_value": base64.b64encode(b"#!/bin/sh\n").decode(),
                 "mode": 0o700},
                {"guest_path": "/etc/from-secret", "secret_name": "S"}])
            path = os.path.join(d, m["id"], "etc/thopter/ssh/authorized_keys")
            with open(path, "rb") as f:
                self.assertEqual(f.read(), b"ssh-ed25519 AAAA consumer\n")
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o644)
            script = os.path.join(d, m["id"], "tmp/post-checkout.sh")
            self.assertEqual(stat.S_IMODE(os.stat(script).st_mode), 0o700)
            self.assertFalse(os.path.exists(os.path.join(d, m["id"], "etc/from-secret")))
            gc = self.fly.seed_machine(name="gc-default", config={"files": [
                {"guest_path": "/etc/thopter/ssh/ssh_host_ed25519_key", "raw_value": "a2V5"}]})
            with open(os.path.join(d, gc["id"], "etc/thopter/ssh/ssh_host_ed25519_key"), "rb") as f:
                self.assertEqual(f.read(), b"key")
            self.assertEqual(sorted(os.listdir(d)), sorted([m["id"], gc["id"]]))
            # Without files_dir nothing is written.
            self.fly.config(files_dir=None)
            other = self.create_with_files([{"guest_path": "/x", "raw_value": "eA=="}], name="thopter-g")
            self.assertFalse(os.path.exists(os.path.join(d, other["id"])))

    # ---- volumes -------------------------------------------------------------------------

    def test_volumes_attach_claim_and_bound_delete(self):
        status, _, vol = self.api("POST", "/volumes", {"name": "data", "size_gb": 10,
                                                       "region": "iad"})
        self.assertEqual(status, 200)
        self.assertRegex(vol["id"], r"^vol_[0-9a-z]{16}$")
        self.assertEqual((vol["state"], vol["size_gb"], vol["attached_machine_id"]),
                         ("created", 10, None))
        mount = [{"volume": vol["id"], "path": "/data"}]
        self.create(name="wrong-region", region="ord", mounts=mount, expect=412)
        m = self.create(name="thopter-v1", region="iad", mounts=mount)
        vols = self.api("GET", "/volumes")[2]
        self.assertEqual([(v["id"], v["attached_machine_id"]) for v in vols], [(vol["id"], m["id"])])
        self.assertEqual(self.create(name="thopter-v2", region="iad", mounts=mount, expect=412),
                         {"error": "volume already claimed by machine"})
        self.create(name="thopter-v3", mounts=[{"volume": "vol_nope", "path": "/d"}], expect=404)
        status, _, body = self.api("DELETE", "/volumes/" + vol["id"])
        self.assertEqual((status, body["error"]), (
            412, "failed_precondition: volume is currently bound to machine: " + m["id"]))
        self.api("DELETE", "/machines/" + m["id"], query={"force": "true"})
        self.api("GET", "/machines/%s/wait" % m["id"], query={"state": "destroyed", "timeout": "5"})
        self.assertIsNone(self.api("GET", "/volumes/" + vol["id"])[2]["attached_machine_id"])
        status, _, body = self.api("DELETE", "/volumes/" + vol["id"])
        self.assertEqual((status, body["state"]), (200, "destroyed"))
        self.assertEqual(self.api("GET", "/volumes/" + vol["id"])[0], 404)
        self.assertEqual(self.api("GET", "/volumes")[2], [])

    def test_volume_unbind_delay(self):
        self.fly.config(volume_unbind_ms=400, timings={"destroy_ms": 10})
        vol = self.fly.seed_volume(name="data", region="ord")
        m = self.fly.seed_machine(name="thopter-u", state="stopped", volume=vol["id"])
        self.api("DELETE", "/machines/" + m["id"])
        time.sleep(0.15)
        self.assertEqual(self.state(m["id"]), "destroyed")
        self.assertEqual(self.api("DELETE", "/volumes/" + vol["id"])[0], 412)
        time.sleep(0.35)
        self.assertEqual(self.api("DELETE", "/volumes/" + vol["id"])[0], 200)


class LifecycleTest(unittest.TestCase):
    def test_exits_on_stdin_eof_and_rejects_bad_config(self):
        fly = FlyFake()
        base = fly.start(token="t", destroyed_visible_ms=5)
        self.assertEqual(fly.get_config()["destroyed_visible_ms"], 5)
        with self.assertRaises(Exception):
            fly.config(no_such_key=1)
        proc = fly.proc
        t0 = time.monotonic()
        fly.stop()
        self.assertEqual(proc.returncode, 0)
        self.assertLess(time.monotonic() - t0, 2.0)
        with self.assertRaises(urllib.error.URLError):
            urllib.request.urlopen(base + "/_fake/stats", timeout=2)


if __name__ == "__main__":
    unittest.main()
