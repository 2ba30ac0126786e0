"""The deploy files agree with the code: settings, stop timeouts, shell
scripts, topics. Label unit: no network, no broker; it reads files and runs
shellcheck, the built thopter-consumer --help, and create-topics.sh with a
stub kafka-topics.sh."""
import os
import re
import shlex
import shutil
import stat
import subprocess
import tempfile
import tomllib
import unittest

SOURCE_DIR = os.path.abspath(os.environ.get("THOPTER_SOURCE_DIR")
                             or os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD_DIR = os.environ.get("THOPTER_BUILD_DIR") or os.path.join(SOURCE_DIR, "build", "dev")
DEPLOY = os.path.join(SOURCE_DIR, "deploy")
SCRIPT_DIRS = ["deploy", "producer-tools", ".ci", "bench", "tests"]
SHELL_SHEBANG = re.compile(r"^#!\s*(/usr/bin/env\s+)?(/bin/|/usr/bin/)?(ba|da|k)?sh\b")
SECRETS = {"FLY_DEPLOY_KEY", "GITHUB_INTEGRATION_JSON"}


def read(*parts):
    with open(os.path.join(SOURCE_DIR, *parts), encoding="utf-8") as f:
        return f.read()


def config_table():
    """{NAME: (default or None, required-by)} from consumer/lib/config_table.c's settings table."""
    text = read("consumer", "lib", "config_table.c")
    body = text[text.index("const struct setting config_table[]"):]
    body = body[:body.index("};")]
    out = {}
    # {"NAME", TYPE(field), "default" | NULL, min, max, need, secret, "help"}
    rx = re.compile(r'\{"([A-Z][A-Z0-9_]*)",\s*(?:STR|INT|BOOL|SECS|MSEC)\(\w+\),\s*'
                    r'(NULL|"(?:[^"\\]|\\.)*"(?:\s*"(?:[^"\\]|\\.)*")*)\s*,\s*(-?\d+),\s*(-?\d+),\s*(\w+|\(.*?\)),\s*(\d)',
                    re.S)
    for m in rx.finditer(body):
        name, default, need, secret = m.group(1), m.group(2), m.group(5), m.group(6) == "1"
        if default != "NULL":
            default = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', default)).replace('\\"', '"')
        else:
            default = None
        out[name] = (default, need, secret)
    return out


def help_names():
    exe = os.path.join(BUILD_DIR, "thopter-consumer")
    if not os.access(exe, os.X_OK):
        return None
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=10, env={})
    assert out.returncode == 0, out.stderr
    return set(re.findall(r"^  ([A-Z][A-Z0-9_]+)\s+--", out.stdout, re.M))


def env_example():
    """[(name, value, commented, comment lines before it)] of deploy/thopter.env.example."""
    rows, comment = [], []
    for line in read("deploy", "thopter.env.example").splitlines():
        m = re.match(r"^(#?)([A-Z][A-Z0-9_]*)=(.*)$", line)
        if m:
            rows.append((m.group(2), m.group(3), m.group(1) == "#", comment))
            comment = []
        elif line.startswith("# "):
            comment.append(line)
        elif not line.strip():
            comment = []
    return rows


def seconds(value):
    """fly/systemd durations: 60, "60", "60s", "1m", "1min 30s"."""
    if isinstance(value, (int, float)):
        return float(value)
    total, text = 0.0, str(value).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    units = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
    for num, unit in re.findall(r"(\d+(?:\.\d+)?)\s*(ms|sec|min|s|m|h)", text):
        total += float(num) * units[unit]
    return total


class TestSettings(unittest.TestCase):
    def test_config_table_parses(self):
        table = config_table()
        self.assertGreaterEqual(len(table), 40)
        self.assertEqual(table["THOPTER_DRAIN_TIMEOUT"][0], "30")
        self.assertIn("read ./prompt.md", table["THOPTER_AGENT_COMMAND"][0])

    def test_help_lists_every_setting_of_the_table(self):
        names = help_names()
        if names is None:
            self.skipTest("no built thopter-consumer in %s" % BUILD_DIR)
        self.assertEqual(names, set(config_table()))

    def test_env_example_names_exactly_the_settings_the_binary_reads(self):
        rows = env_example()
        names = [r[0] for r in rows]
        dupes = {n for n in names if names.count(n) > 1}
        self.assertEqual(dupes, set(), "listed twice")
        table = set(config_table())
        self.assertEqual(set(names) - table, set(), "in thopter.env.example but not read by the binary")
        self.assertEqual(table - set(names), set(), "read by the binary but missing from thopter.env.example")
        hn = help_names()
        if hn is not None:
            self.assertEqual(set(names), hn)

    def test_env_example_comments_defaults_required_and_secrets(self):
        table = config_table()
        for name, value, commented, comment in env_example():
            default, need, secret = table[name]
            with self.subTest(name=name):
                self.assertTrue(comment, "no comment above %s" % name)
                text = " ".join(comment)
                if name in SECRETS or secret:
                    self.assertEqual(value, "", "a secret must be left empty")
                    self.assertIn("SECRET", text)
                if need != "0":
                    self.assertFalse(commented, "required settings are not commented out")
                    self.assertIn("Required", text)
                    continue
                if default is not None:
                    self.assertTrue(commented, "optional settings stay commented out (built-in default)")
                    self.assertEqual(value, default, "the commented value must be the built-in default")
                    self.assertIn("Default: " + default, text)
                elif name != "THOPTER_SSH_KNOWN_HOSTS":
                    self.assertEqual(value, "")
                    self.assertIn("Default:", text)


class TestInstall(unittest.TestCase):
    def test_install_puts_every_tool_the_prompts_and_the_example_env(self):
        if not os.path.exists(os.path.join(BUILD_DIR, "cmake_install.cmake")):
            self.skipTest("no configured build in %s" % BUILD_DIR)
        with tempfile.TemporaryDirectory() as prefix:
            subprocess.run(["cmake", "--install", BUILD_DIR, "--prefix", prefix], check=True,
                           capture_output=True, timeout=60)
            tools = sorted("thopter-" + os.path.basename(p)[:-2]
                           for p in os.listdir(os.path.join(SOURCE_DIR, "producer-tools")) if p.endswith(".c"))
            self.assertIn("thopter-send", tools)
            for name in ["thopter-consumer", "bulk-destroy"] + tools:
                path = os.path.join(prefix, "bin", name)
                self.assertTrue(os.access(path, os.X_OK), "%s not installed" % name)
            share = os.path.join(prefix, "share", "thopter")
            for name in ("prompts/default.md", "thopter.env.example", "thopter-consumer.service",
                         "thopter-reaper.service"):
                self.assertTrue(os.path.isfile(os.path.join(share, name)), "%s not installed" % name)
            for name in ["thopter-consumer", "bulk-destroy"] + tools:
                self.assertTrue(os.path.isfile(os.path.join(prefix, "share", "man", "man1", name + ".1")), name)
                self.assertTrue(os.path.isfile(os.path.join(prefix, "share", "bash-completion", "completions",
                                                            name)), name)


class TestStopTimeouts(unittest.TestCase):
    def setUp(self):
        self.drain = int(config_table()["THOPTER_DRAIN_TIMEOUT"][0])

    def test_fly_toml(self):
        with open(os.path.join(DEPLOY, "fly.toml"), "rb") as f:
            fly = tomllib.load(f)
        self.assertEqual(fly["kill_signal"], "SIGTERM")
        # main.c gives up by itself at drain + 20 s; fly must wait that long.
        self.assertGreaterEqual(seconds(fly["kill_timeout"]), self.drain + 20)
        self.assertLessEqual(seconds(fly["kill_timeout"]), 300, "fly's maximum kill_timeout")
        # Private network only: nothing routes public traffic to the consumer.
        for key in ("services", "http_service", "ip"):
            self.assertNotIn(key, fly)
        env = fly["env"]
        self.assertEqual(env["FLY_API_BASE"], "http://_api.internal:4280")
        self.assertEqual(fly["metrics"]["port"], 9464)
        self.assertEqual(fly["metrics"]["path"], "/metrics")
        self.assertTrue(env["THOPTER_METRICS_ADDR"].endswith(":%d" % fly["metrics"]["port"]))
        self.assertEqual(int(env.get("THOPTER_DRAIN_TIMEOUT", self.drain)) + 20 <= seconds(fly["kill_timeout"]),
                         True)
        for secret in SECRETS:
            self.assertNotIn(secret, env, "secrets never go in fly.toml")
        for check in fly.get("checks", {}).values():
            self.assertEqual(check["path"], "/livez", "fly checks must not restart on a broker outage")
        self.assertTrue(fly["processes"]["consumer"].startswith("--role"))

    def test_systemd_unit(self):
        unit = read("deploy", "thopter-consumer.service")
        keys = dict(re.findall(r"^(\w+)=(.*)$", unit, re.M))
        self.assertEqual(keys["KillSignal"], "SIGTERM")
        self.assertGreaterEqual(seconds(keys["TimeoutStopSec"]), self.drain + 20)
        self.assertEqual(keys["Restart"], "on-failure")
        self.assertIn("2", keys["RestartPreventExitStatus"].split(), "exit 2 (bad setting) must not loop")
        self.assertTrue(keys["EnvironmentFile"])
        for k, v in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                     "PrivateTmp": "yes"}.items():
            self.assertEqual(keys.get(k), v, k)
        self.assertNotRegex(keys["ExecStart"], r"FLY_DEPLOY_KEY|sasl\.password", "no secret on argv")
        self.assertIn("thopter-consumer", keys["ExecStart"])

    def test_systemd_unit_verifies(self):
        tool = shutil.which("systemd-analyze")
        if not tool:
            self.skipTest("systemd-analyze not installed")
        out = subprocess.run([tool, "verify", os.path.join(DEPLOY, "thopter-consumer.service")],
                             capture_output=True, text=True, timeout=60)
        # The binary is not installed here; every other complaint counts.
        problems = [line for line in (out.stdout + out.stderr).splitlines()
                    if line.strip() and "is not executable" not in line and "No such file" not in line]
        self.assertEqual(problems, [])

    def test_dockerfile(self):
        text = read("deploy", "Dockerfile")
        stages = re.split(r"^FROM\s+", text, flags=re.M)[1:]
        self.assertEqual(len(stages), 2, "multi-stage: build and runtime")
        self.assertTrue(stages[0].startswith("debian:12 "), stages[0][:40])
        self.assertIn("--preset release", stages[0])
        runtime = stages[1]
        self.assertTrue(runtime.startswith("debian:12-slim"))
        install = re.search(r"apt-get install[^\n]*\\\n(.*?)\n &&", runtime, re.S).group(1)
        pkgs = set(install.replace("\\", " ").split())
        self.assertEqual(pkgs, {"librdkafka1", "libcurl4", "libcjson1", "libssh2-1", "libmicrohttpd12", "libssl3",
                                "ca-certificates"})
        self.assertFalse(any(p.endswith("-dev") for p in pkgs))
        user = re.findall(r"^USER\s+(\S+)", runtime, re.M)
        self.assertTrue(user and not user[-1].startswith(("root", "0")), "runs as a non-root user")
        self.assertRegex(runtime, r"(?m)^HEALTHCHECK\b")
        self.assertIn("livez", read("deploy", "livez-check.sh"))
        self.assertRegex(runtime, r'(?m)^ENTRYPOINT \["[^"]*thopter-consumer"\]')
        self.assertRegex(runtime, r"(?m)^STOPSIGNAL SIGTERM")

    def test_dockerignore_keeps_the_build_inputs_and_leaves_out_the_rest(self):
        # deploy/Dockerfile's `COPY . .` sends the repository root as the build context.
        patterns = [l.strip() for l in read(".dockerignore").splitlines()
                    if l.strip() and not l.startswith("#")]
        self.assertFalse([p for p in patterns if p.startswith("!")], "no exceptions: keep it simple")

        def ignored(path):
            parts = path.split("/")
            for n in range(1, len(parts) + 1):  # a directory left out takes its contents along
                prefix = "/".join(parts[:n])
                for p in patterns:
                    rx = re.escape(p).replace(r"\*\*/", "(?:.*/)?").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
                    if re.fullmatch(rx, prefix):
                        return True
            return False

        tracked = subprocess.run(["git", "-C", SOURCE_DIR, "ls-files"], capture_output=True, text=True)
        if tracked.returncode != 0:
            self.skipTest("not a git checkout")
        needed = [f for f in tracked.stdout.splitlines()
                  if f.startswith(("consumer/", "producer-tools/", "tests/", "schemas/"))
                  or f in ("CMakeLists.txt", "CMakePresets.json", "deploy/livez-check.sh")]
        self.assertGreater(len(needed), 100)
        self.assertEqual([f for f in needed if ignored(f)], [])
        for path in (".git/HEAD", "build/dev/thopter-consumer", "build/release/CMakeCache.txt",
                     "producer-tools/hub/node_modules/kafkajs/package.json",
                     "tests/tools/node_modules/ajv/package.json", "node_modules/x/index.js",
                     "bench/results/2026-12-03T155133Z.md", "tests/harness/__pycache__/x.pyc",
                     "thopter.env", "deploy/prod.env"):
            self.assertTrue(ignored(path), path)
        self.assertFalse(ignored("deploy/thopter.env.example"))

    def test_runtime_packages_cover_the_binary(self):
        """Every library the built binary needs comes from a runtime package
        (or its dependencies, which apt brings along)."""
        exe = os.path.join(BUILD_DIR, "thopter-consumer")
        if not (os.access(exe, os.X_OK) and shutil.which("readelf") and shutil.which("dpkg")):
            self.skipTest("needs the built binary, readelf and dpkg")
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]",
                            subprocess.run(["readelf", "-d", exe], capture_output=True, text=True).stdout)
        direct = {"librdkafka.so.1": "librdkafka1", "libcurl.so.4": "libcurl4", "libcjson.so.1": "libcjson1",
                  "libssh2.so.1": "libssh2-1", "libmicrohttpd.so.12": "libmicrohttpd12", "libcrypto.so.3": "libssl3"}
        for lib in needed:
            if lib.startswith(("libc.so", "libm.so", "libpthread", "ld-linux", "libdl", "librt")):
                continue  # libc6, always there
            if lib.startswith(("libasan", "libubsan")):
                continue  # sanitizer builds
            self.assertIn(lib, direct, "the binary links %s: add its package to the runtime stage" % lib)


class TestShellScripts(unittest.TestCase):
    def scripts(self):
        found = []
        for d in SCRIPT_DIRS:
            root = os.path.join(SOURCE_DIR, d)
            for dirpath, dirnames, files in os.walk(root):
                dirnames[:] = [x for x in dirnames if x not in ("node_modules", "__pycache__", ".git")]
                for name in files:
                    path = os.path.join(dirpath, name)
                    try:
                        with open(path, "rb") as f:
                            first = f.readline(200).decode("utf-8", "replace")
                    except OSError:
                        continue
                    if SHELL_SHEBANG.match(first) or (name.endswith(".sh") and not first.startswith("#!/usr/bin/python")):
                        found.append(path)
        return sorted(found)

    def test_shellcheck_passes_on_every_shell_script(self):
        tool = shutil.which("shellcheck")
        self.assertIsNotNone(tool, "shellcheck is not installed (deploy/setup.sh installs it)")
        scripts = self.scripts()
        self.assertIn(os.path.join(DEPLOY, "create-topics.sh"), scripts)
        for path in scripts:
            with self.subTest(script=os.path.relpath(path, SOURCE_DIR)):
                out = subprocess.run([tool, "-x", "--external-sources", path], capture_output=True, text=True,
                                     cwd=os.path.dirname(path), timeout=120)
                self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

    def test_scripts_are_executable(self):
        for path in self.scripts():
            with self.subTest(script=os.path.relpath(path, SOURCE_DIR)):
                self.assertTrue(os.stat(path).st_mode & stat.S_IXUSR)


class TestCreateTopics(unittest.TestCase):
    SCRIPT = os.path.join(DEPLOY, "create-topics.sh")

    def run_script(self, *args, env=None):
        e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        e.update(env or {})
        return subprocess.run([self.SCRIPT] + list(args), capture_output=True, text=True, env=e, timeout=30)

    @staticmethod
    def topics(lines):
        out = {}
        for line in lines:
            argv = shlex.split(line)  # the printed commands are for a shell
            name = argv[argv.index("--topic") + 1]
            configs = [argv[i + 1] for i, a in enumerate(argv) if a == "--config"]
            out[name] = (int(argv[argv.index("--partitions") + 1]), configs, argv)
        return out

    def test_dry_run_prints_the_four_topics_of_the_contract(self):
        out = self.run_script("--dry-run", "--bootstrap-server", "k1:9093,k2:9093",
                              "--command-config", "/etc/kafka/client.properties")
        self.assertEqual(out.returncode, 0, out.stderr)
        topics = self.topics(out.stdout.splitlines())
        self.assertEqual({n: t[0] for n, t in topics.items()},
                         {"thopter.provision": 1, "thopter.destroy": 6, "thopter.dlq": 1, "thopter.events": 3})
        retention = [c for c in topics["thopter.dlq"][1] if c.startswith("retention.ms=")]
        self.assertEqual(len(retention), 1)
        ms = int(retention[0].split("=")[1])
        self.assertTrue(ms == -1 or ms >= 7 * 24 * 3600 * 1000, "the DLQ keeps records a long time")
        for name, (_, _, argv) in topics.items():
            self.assertIn("--if-not-exists", argv)
            self.assertIn("--create", argv)
            self.assertEqual(argv[argv.index("--bootstrap-server") + 1], "k1:9093,k2:9093")
            self.assertEqual(argv[argv.index("--command-config") + 1], "/etc/kafka/client.properties")

    def test_topic_names_follow_the_settings(self):
        out = self.run_script("--dry-run", "-b", "k:9092", env={"THOPTER_DESTROY_TOPIC": "prod.destroy",
                                                                "THOPTER_DLQ_TOPIC": "prod.dlq"})
        self.assertEqual(out.returncode, 0, out.stderr)
        topics = self.topics(out.stdout.splitlines())
        self.assertEqual(topics["prod.destroy"][0], 6)
        self.assertIn("prod.dlq", topics)

    def test_runs_kafka_topics_once_per_topic_and_reports_failure(self):
        with tempfile.TemporaryDirectory() as d:
            log = os.path.join(d, "calls")
            stub = os.path.join(d, "kafka-topics.sh")
            with open(stub, "w") as f:
                f.write('#!/bin/sh\necho "$*" >> "%s"\ncase "$*" in *thopter.events*) exit "${FAIL:-0}";; esac\n' % log)
            os.chmod(stub, 0o755)
            out = self.run_script("--bootstrap-server", "k:9092", "--replication-factor", "3",
                                  env={"PATH": d + ":/usr/bin:/bin"})
            self.assertEqual(out.returncode, 0, out.stderr)
            with open(log) as f:
                calls = f.read().splitlines()
            self.assertEqual(len(calls), 4)
            self.assertTrue(all("--replication-factor 3" in c for c in calls))
            out = self.run_script("--bootstrap-server", "k:9092", "--kafka-topics", stub, env={"FAIL": "1"})
            self.assertEqual(out.returncode, 1)
            self.assertIn("thopter.events", out.stderr)

    def test_bad_usage_exits_2(self):
        for args in ([], ["--bogus"], ["-b", "k:1", "--replication-factor", "x"], ["-b", "k:1", "--dlq-retention-ms", "soon"]):
            with self.subTest(args=args):
                out = self.run_script(*args)
                self.assertEqual(out.returncode, 2)
                self.assertEqual(len(out.stderr.strip().splitlines()), 1, out.stderr)


if __name__ == "__main__":
    unittest.main()
