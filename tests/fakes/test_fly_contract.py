"""The fly client and the fake fly API against fly's published Machines API spec.

fly publishes a Swagger 2.0 spec of the Machines API (docs.machines.dev). It is not this
project's to copy into its tree: the test reads it from THOPTER_FLY_SWAGGER (CMake passes
its cache variable of that name), by default ../shared/reference/fly-machines-swagger.json
next to the repository, and skips with one line when the file is not there.

What is checked:
- every request the fly client (consumer/lib/fly_client.c) sends: tests/helpers/
  fly_client_calls makes each of its calls once against the fake (create with config.files,
  volumes, lists plain / by metadata / with include_deleted, get, wait started, stopped and
  destroyed, metadata set, stop, delete with and without force, 404s); each method and
  path must be an operation of the spec, each query parameter one of the operation's (of
  its type and enum), each body valid for the operation's body schema, strictly: a field
  the spec does not define fails unless BEYOND_SPEC says where it comes from;
- every answer the fake gave to those calls: a 2xx status the operation lists, its body
  valid (strictly) for the response schema; any other status with a body valid for
  ErrorResponse;
- the fake's error bodies on the error paths of those routes (unknown machine, app or
  volume, no capacity, name taken, bad wait timeout, bad JSON, auth, rate limit, injected
  faults and outages, routes it does not model) against ErrorResponse;
- that the calls cover every route name the client declares (`.route = "..."`).

Where the code relies on something the spec copy lacks (newer fields), BEYOND_SPEC cites
superfly/fly-go at the commit the shared reference uses (22d6e518, 2026-08-21).

Run: cd tests/fakes && THOPTER_BUILD_DIR=../../build/dev PYTHONPATH=../harness \
     python3 -m unittest -v test_fly_contract
"""
import json
import os
import re
import subprocess
import unittest
import urllib.error
import urllib.request

from flyfake import FlyFake

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.abspath(os.environ.get("THOPTER_SOURCE_DIR") or os.path.join(HERE, "..", ".."))
BUILD_DIR = os.environ.get("THOPTER_BUILD_DIR") or os.path.join(SOURCE_DIR, "build", "dev")
SPEC_PATH = os.environ.get("THOPTER_FLY_SWAGGER") or os.path.join(
    SOURCE_DIR, "..", "shared", "reference", "fly-machines-swagger.json")
HELPER = os.path.join(BUILD_DIR, "tests", "fly_client_calls")
TOKEN = "contract-test-token"

FLY_GO = "superfly/fly-go@22d6e518"
# What the client sends or the fake answers that the spec copy does not define, and the
# source that says fly has it. Keys: (definition, field) for body fields, ("query",
# operation id, parameter prefix) for query parameters, ("body", operation id) for a body
# the spec does not declare.
BEYOND_SPEC = {
    ("Machine", "version"):
        FLY_GO + " machine_types.go:54, Machine.Version `json:\"version\"`: the newer name of "
        "instance_id; the client reads it when instance_id is absent (tests/data/fly/"
        "machine_version_only.json)",
    ("Machine", "host_status"):
        FLY_GO + " machine_types.go:63, Machine.HostStatus `json:\"host_status\"` "
        "(ok, unknown, unreachable)",
    ("Volume", "host_status"):
        FLY_GO + " volume_types.go:22, Volume.HostStatus `json:\"host_status,omitempty\"`",
    ("fly.File", "mode"):
        FLY_GO + " machine_types.go:929-930, File.Mode `json:\"mode,omitempty\"` (chmod(2) "
        "bits); the client sends none, the fake accepts it",
    ("query", "Machines_list", "metadata."):
        "fly's docs, machines-resource 'List Machines': a metadata.{key}=value filter "
        "(shared reference 4.3); the spec copy lists only include_deleted and region, and "
        "fly-go does not send it. The client looks a request's machine up by it.",
    ("body", "Machines_update_metadata"):
        FLY_GO + " flaps/flaps_machines.go:405-414, SetMetadata posts {\"value\": value}; "
        "the spec copy declares no body for this operation",
}
# Body of Machines_update_metadata as fly-go sends it (see BEYOND_SPEC).
METADATA_BODY = {"type": "object", "properties": {"value": {"type": "string"}}}
# Fields that may be null although the spec types them: Go pointers without omitempty.
NULLABLE = {
    ("Volume", "attached_machine_id"):
        FLY_GO + " volume_types.go:16, AttachedMachine *string `json:\"attached_machine_id\"`",
    ("Volume", "attached_alloc_id"):
        FLY_GO + " volume_types.go:17, AttachedAllocation *string `json:\"attached_alloc_id\"`",
}


class Spec:
    """The parts of a Swagger 2.0 document this test needs, and a strict validator."""

    def __init__(self, doc):
        self.doc = doc
        self.defs = doc["definitions"]
        self.base = doc.get("basePath", "")
        self.used = set()  # the BEYOND_SPEC and NULLABLE entries a check needed
        self.ops = []  # (method, compiled path regex, template, operation)
        for template, item in doc["paths"].items():
            rx = re.compile("^" + re.escape(self.base) + re.sub(
                r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")
            for method, op in item.items():
                self.ops.append((method.upper(), rx, template, op))

    def operation(self, method, path):
        for m, rx, template, op in self.ops:
            if m == method and rx.match(path):
                return template, op
        return None, None

    def deref(self, schema):
        """(definition name or None, schema) after $ref and a single-element allOf."""
        name = None
        while True:
            if "$ref" in schema:
                name = schema["$ref"].rsplit("/", 1)[-1]
                schema = self.defs[name]
            elif "allOf" in schema and len(schema["allOf"]) == 1 and len(schema) <= 2:
                schema = schema["allOf"][0]
            else:
                return name, schema

    def check(self, value, schema, where, errors, owner=None, field=None):
        """Appends to errors every way value breaks schema (strict about object fields)."""
        name, schema = self.deref(schema)
        if value is None:
            if (owner, field) in NULLABLE:
                self.used.add((owner, field))
            elif schema:
                errors.append("%s: null where the spec has %s" % (where, schema.get("type", name)))
            return
        typ = schema.get("type")
        if typ is None and "properties" in schema:
            typ = "object"
        if typ == "object":
            if not isinstance(value, dict):
                errors.append("%s: %s where the spec has an object" % (where, type(value).__name__))
                return
            props = schema.get("properties")
            extra = schema.get("additionalProperties")
            for k, v in value.items():
                sub = "%s.%s" % (where, k)
                if props is not None and k in props:
                    self.check(v, props[k], sub, errors, name, k)
                elif isinstance(extra, dict):
                    self.check(v, extra, sub, errors, name, k)
                elif props is not None and (name, k) in BEYOND_SPEC:
                    self.used.add((name, k))
                elif props is not None:
                    errors.append("%s: not in the spec's %s" % (sub, name or "object"))
        elif typ == "array":
            if not isinstance(value, list):
                errors.append("%s: %s where the spec has an array" % (where, type(value).__name__))
                return
            for i, v in enumerate(value):
                self.check(v, schema.get("items", {}), "%s[%d]" % (where, i), errors)
        elif typ == "string":
            if not isinstance(value, str):
                errors.append("%s: %r where the spec has a string" % (where, value))
        elif typ == "integer":
            if not isinstance(value, int) or isinstance(value, bool):
                errors.append("%s: %r where the spec has an integer" % (where, value))
        elif typ == "number":
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                errors.append("%s: %r where the spec has a number" % (where, value))
        elif typ == "boolean":
            if not isinstance(value, bool):
                errors.append("%s: %r where the spec has a boolean" % (where, value))
        if "enum" in schema and value not in schema["enum"]:
            errors.append("%s: %r is not one of %s" % (where, value, schema["enum"]))


def load_spec():
    try:
        with open(SPEC_PATH) as f:
            return Spec(json.load(f))
    except FileNotFoundError:
        raise unittest.SkipTest("needs fly's Machines API spec (Swagger 2.0) at %s; set "
                                "THOPTER_FLY_SWAGGER to its path" % os.path.abspath(SPEC_PATH))


class FlyContract(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.spec = load_spec()
        if not os.access(HELPER, os.X_OK):
            raise unittest.SkipTest("needs %s (build the dev preset)" % HELPER)

    def setUp(self):
        self.fly = FlyFake()
        self.fly.start(token=TOKEN, record_responses=True)
        self.addCleanup(self.fly.stop)

    # ---- the client's calls -------------------------------------------------------------

    def run_client(self):
        env = dict(os.environ, FLY_API_BASE=self.fly.base_url, FLY_DEPLOY_KEY=TOKEN,
                   APP_NAME=self.fly.app)
        r = subprocess.run([HELPER], env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.splitlines(), self.fly.calls()

    def check_request(self, call):
        """Problems of one recorded request against its operation; (operation, problems)."""
        errors = []
        template, op = self.spec.operation(call["method"], call["path"])
        if op is None:
            return None, ["%s %s: no such operation in the spec" % (call["method"], call["path"])]
        opid = op.get("operationId", template)
        params = op.get("parameters", [])
        query = {p["name"]: p for p in params if p["in"] == "query"}
        for k, values in (call["query"] or {}).items():
            p = query.get(k)
            if p is None:
                known = [key for key in BEYOND_SPEC
                         if key[0] == "query" and key[1] == opid and k.startswith(key[2])]
                if known:
                    self.spec.used.add(known[0])
                else:
                    errors.append("%s: query %s is not a parameter of %s" % (call["path"], k, opid))
                continue
            for v in values:
                if p.get("type") == "boolean" and v not in ("true", "false"):
                    errors.append("%s: %s=%r is not a boolean" % (opid, k, v))
                if p.get("type") == "integer" and not re.fullmatch(r"-?\d+", v):
                    errors.append("%s: %s=%r is not an integer" % (opid, k, v))
                if "enum" in p and v not in p["enum"]:
                    errors.append("%s: %s=%r is not one of %s" % (opid, k, v, p["enum"]))
        body = [p for p in params if p["in"] == "body"]
        if body:
            if call["body"] is None:
                if body[0].get("required"):
                    errors.append("%s: the body is required" % opid)
            else:
                self.spec.check(call["body"], body[0]["schema"], opid + " body", errors)
        elif call["body"] is not None:
            if ("body", opid) in BEYOND_SPEC:
                self.spec.used.add(("body", opid))
                self.spec.check(call["body"], METADATA_BODY, opid + " body", errors)
            else:
                errors.append("%s: the spec takes no body, the client sent %r" % (opid, call["body"]))
        return op, errors

    def check_response(self, op, call):
        errors = []
        status, body = call["status"], call.get("response")
        opid = op.get("operationId", "")
        if 200 <= status < 300:
            responses = op.get("responses", {})
            if str(status) not in responses:
                errors.append("%s: status %d, the spec lists %s" % (opid, status, sorted(responses)))
            schema = (responses.get(str(status)) or {}).get("schema")
            if schema is not None:
                self.spec.check(body, schema, "%s %d answer" % (opid, status), errors)
        else:
            self.spec.check(body, {"$ref": "#/definitions/ErrorResponse"},
                            "%s %d answer" % (opid, status), errors)
        return errors

    def test_every_request_the_client_sends_and_every_answer_it_gets_fit_the_spec(self):
        lines, calls = self.run_client()
        problems = []
        self.assertEqual(len(lines), 18, lines)
        self.assertEqual(len(calls), 18, [c["path"] for c in calls])
        for call in calls:
            op, errors = self.check_request(call)
            problems += errors
            if op is not None:
                problems += self.check_response(op, call)
        self.assertEqual(problems, [])
        # The calls did what they should (else the answers checked were error paths).
        failed = [l for l in lines if not l.endswith(" ok") and " gone " not in l]
        self.assertEqual(failed, [])
        self.assertEqual([l.split()[3] for l in lines if " gone " in l], ["404", "404"], lines)
        sent = {c["route"] for c in calls}
        with open(os.path.join(SOURCE_DIR, "consumer", "lib", "fly_client.c")) as f:
            declared = set(re.findall(r'\.route = "([a-z_.]+)"', f.read()))
        self.assertEqual(declared - sent, set(), "routes of the client no call covered")
        self.assertEqual(sent, declared)
        # The create carried config.files as the consumer sends them.
        create = [c for c in calls if c["route"] == "machines.create"][0]["body"]
        self.assertEqual([sorted(f) for f in create["config"]["files"]],
                         [["guest_path", "mode", "raw_value"]] * 2)
        self.assertEqual([f["mode"] for f in create["config"]["files"]], [0o600, 0o644])
        for key in ("image", "env", "guest", "metadata", "mounts", "restart", "auto_destroy"):
            self.assertIn(key, create["config"])
        queries = [c["query"] for c in calls if c["route"] == "machines.list"]
        self.assertIn({"metadata.thopter_request_id": ["thopter-1-contract"]}, queries)
        self.assertIn({"include_deleted": ["true"]}, queries)
        # config.files[].mode: the client sends it (0600 for secrets); the fake takes it and
        # gives it back with the machine's config (fly-go has it, the spec copy does not).
        status, m = self.api("POST", "/apps/%s/machines" % self.fly.app, {
            "name": "thopter-3-mode", "config": {"image": "registry.fly.io/thopters:x", "files": [
                {"guest_path": "/etc/x", "raw_value": "eA==", "mode": 0o600}]}})
        self.assertEqual(status, 200, m)
        self.spec.check(m, {"$ref": "#/definitions/Machine"}, "create with mode", problems)
        self.assertEqual(problems, [])
        # Every entry of the two tables was needed: none is there for nothing.
        self.assertEqual(set(BEYOND_SPEC) | set(NULLABLE), self.spec.used)

    def test_the_checker_refuses_what_the_spec_does_not_have(self):
        # Negative controls: a checker that lets these through proves nothing above.
        app = "/v1/apps/thopters"
        bad = [
            ({"method": "POST", "path": app + "/machines", "query": {}, "body": {
                "name": "x", "config": {"image": "i", "files": [{"guest_path": "/a", "raw": "eA=="}]}}},
             "files[0].raw: not in the spec's fly.File"),
            ({"method": "POST", "path": app + "/machines", "query": {}, "body": {
                "config": {"image": "i", "guest": {"cpus": "1"}}}}, "where the spec has an integer"),
            ({"method": "POST", "path": app + "/machines", "query": {}, "body": {
                "config": {"image": "i", "restart": {"policy": "on-fail"}}}}, "is not one of"),
            ({"method": "GET", "path": app + "/machines/m1/wait", "query": {"state": ["sleeping"]},
              "body": None}, "is not one of"),
            ({"method": "GET", "path": app + "/machines/m1/wait", "query": {"timeout": ["60s"]},
              "body": None}, "is not an integer"),
            ({"method": "DELETE", "path": app + "/machines/m1", "query": {"kill": ["true"]},
              "body": None}, "query kill is not a parameter"),
            ({"method": "POST", "path": app + "/machines/m1/stop", "query": {}, "body": {"signal": 15}},
             "where the spec has a string"),
            ({"method": "POST", "path": app + "/machines/m1/suspend", "query": {}, "body": None},
             "no such operation"),
        ]
        for call, want in bad:
            with self.subTest(want):
                _, errors = self.check_request(call)
                self.assertTrue(any(want in e for e in errors), errors)
        _, op = self.spec.operation("GET", app + "/machines/m1")
        errors = self.check_response(op, {"status": 200, "response": {"id": "m1", "state": 3,
                                                                     "nickname": "x"}})
        self.assertEqual(len(errors), 2, errors)
        _, op = self.spec.operation("POST", app + "/machines/m1/metadata/k")
        self.assertTrue(self.check_response(op, {"status": 200, "response": {"ok": True}}))
        self.assertTrue(self.check_response(op, {"status": 404, "response": {"message": "x"}}))

    # ---- the fake's error answers -------------------------------------------------------

    def api(self, method, path, body=None, token=TOKEN, raw=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.fly.base_url + "/v1" + path, data=data, method=method)
        if token:
            req.add_header("Authorization", "Bearer " + token)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=20) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def test_the_fakes_error_bodies_are_error_responses(self):
        app = "/apps/" + self.fly.app
        good = {"name": "thopter-9-errors", "region": "ord",
                "config": {"image": "registry.fly.io/thopters:x"}}
        status, m = self.api("POST", app + "/machines", good)
        self.assertEqual(status, 200, m)
        cases = [
            ("unknown machine", "GET", app + "/machines/0123456789abcd", None, {}),
            ("unknown app", "GET", "/apps/nope/machines", None, {}),
            ("no such volume", "POST", app + "/machines",
             dict(good, name="thopter-9-vol", config={"image": "i", "mounts": [
                 {"volume": "vol_0000000000000000", "path": "/data"}]}), {}),
            ("name taken", "POST", app + "/machines", good, {}),
            ("wait timeout out of range", "GET", app + "/machines/%s/wait?timeout=90" % m["id"], None, {}),
            ("bad state", "GET", app + "/machines/%s/wait?state=sleeping" % m["id"], None, {}),
            ("no token", "GET", app + "/machines", None, {"token": None}),
            ("bad JSON", "POST", app + "/machines", None, {"raw": b"{not json"}),
            ("not modelled", "POST", app + "/machines/%s/cordon" % m["id"], None, {}),
            ("bad config.files", "POST", app + "/machines",
             dict(good, name="thopter-9-files", config={"image": "i", "files": [
                 {"guest_path": "relative", "raw_value": "eA=="}]}), {}),
        ]
        problems, seen = [], []

        def check(label, status, body):
            seen.append((label, status))
            self.assertGreaterEqual(status, 400, (label, body))
            self.spec.check(body, {"$ref": "#/definitions/ErrorResponse"}, label, problems)
            self.assertIsInstance(body.get("error"), str, label)

        for label, method, path, body, kw in cases:
            check(label, *self.api(method, path, body, **kw))
        self.fly.config(capacity_error={"ord": {"status": 412}})
        status, body = self.api("POST", app + "/machines", dict(good, name="thopter-9-cap"))
        check("no capacity", status, body)
        self.assertEqual(body.get("status"), "insufficient_capacity")
        self.fly.config(capacity_error={})
        self.fly.push_fault(route="machines.get", status=503, count=1)
        check("injected fault", *self.api("GET", app + "/machines/" + m["id"]))
        self.fly.config(rate_limit=True, rate_limits={"machines.get": {"rate": 0.001, "burst": 1}})
        self.api("GET", app + "/machines/" + m["id"])
        check("rate limited", *self.api("GET", app + "/machines/" + m["id"]))
        self.fly.config(rate_limit=False, outage={"status": 503})
        check("outage", *self.api("GET", app + "/machines"))
        self.assertEqual(problems, [], seen)
        self.assertEqual(len(seen), 14)


if __name__ == "__main__":
    unittest.main()
