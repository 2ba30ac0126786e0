"""Tests of git_http_server.GitHttpServer with the real git client: clone and push with a
credential helper that reads the token from the environment (what the consumer does on a
thopter), a wrong or missing token refused with 401, and the token written nowhere.

Run: cd tests/harness && python3 -m unittest -v test_git_http_server
"""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from git_http_server import GitHttpServer

TOKEN = "ghp_test-agent-coder-PAT-0123456789abcdef"
# The helper names no secret: it prints the token from the environment when git asks.
HELPER = '!f() { echo username=x-access-token; echo "password=$GITHUB_REPO_PAT"; }; f'


class GitHttpServerTest(unittest.TestCase):
    def setUp(self):
        self.server = GitHttpServer(TOKEN).start()
        self.addCleanup(self.server.stop)
        self.server.create_repo("acme/widgets", {"README.md": "# widgets\n"})
        self.dir = tempfile.mkdtemp(prefix="git-http-test.")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def git(self, *argv, token=TOKEN, helper=HELPER, cwd=None, extra_config=()):
        env = {"PATH": "/usr/bin:/bin", "HOME": self.dir, "GIT_CONFIG_NOSYSTEM": "1",
               "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": "",
               "GIT_AUTHOR_NAME": "Thopter Bot", "GIT_AUTHOR_EMAIL": "bot@example.com",
               "GIT_COMMITTER_NAME": "Thopter Bot", "GIT_COMMITTER_EMAIL": "bot@example.com"}
        if token is not None:
            env["GITHUB_REPO_PAT"] = token
        cmd = ["git"]
        if helper is not None:
            cmd += ["-c", "credential.helper=" + helper]
        for c in extra_config:
            cmd += ["-c", c]
        return subprocess.run(cmd + list(argv), cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=60)

    def assert_token_nowhere(self, *trees):
        for tree in trees:
            for dirpath, _, files in os.walk(tree):
                for name in files:
                    path = os.path.join(dirpath, name)
                    with open(path, "rb") as f:
                        self.assertNotIn(TOKEN.encode(), f.read(), path)
        self.assertNotIn(TOKEN, json.dumps(self.server.requests))
        self.assertNotIn(TOKEN, "\n".join(self.server.lines()))

    def test_clone_and_push_with_a_token_from_the_environment(self):
        clone = os.path.join(self.dir, "widgets")
        r = self.git("clone", "-q", self.server.url("acme/widgets"), clone)
        self.assertEqual(r.returncode, 0, r.stderr + "\n".join(self.server.lines()))
        with open(os.path.join(clone, "README.md")) as f:
            self.assertEqual(f.read(), "# widgets\n")
        # git asked without credentials first, got 401, then asked its helper.
        first, second = self.server.requests[:2]
        self.assertEqual((first["auth"], first["status"], first["service"]), ("missing", 401, "git-upload-pack"))
        self.assertEqual((second["auth"], second["user"], second["status"]), ("ok", "x-access-token", 200))

        # A push of a branch, big enough to be sent chunked (http.postBuffer is small).
        self.assertEqual(self.git("checkout", "-q", "-b", "thopter/42--abc", cwd=clone).returncode, 0)
        with open(os.path.join(clone, "blob.bin"), "wb") as f:
            f.write(os.urandom(300 * 1024))
        self.git("add", "blob.bin", cwd=clone)
        self.assertEqual(self.git("commit", "-q", "-m", "spin the widgets", cwd=clone).returncode, 0)
        r = self.git("push", "-q", "origin", "thopter/42--abc", cwd=clone, extra_config=["http.postBuffer=65536"])
        self.assertEqual(r.returncode, 0, r.stderr + "\n".join(self.server.lines()))
        self.assertEqual(self.server.log("acme/widgets", "thopter/42--abc"), ["spin the widgets", "initial commit"])
        self.assertEqual(sorted(self.server.branches("acme/widgets")), ["main", "thopter/42--abc"])
        pushes = [x for x in self.server.requests if x["service"] == "git-receive-pack" and x["method"] == "POST"]
        self.assertTrue(pushes and all(x["auth"] == "ok" and x["status"] == 200 for x in pushes), pushes)
        self.assertTrue(any(x["chunked"] for x in pushes), "the chunked request path was exercised")

        # The token is in no file of the clone (remote URL, config, credentials) nor the records.
        with open(os.path.join(clone, ".git", "config")) as f:
            config = f.read()
        self.assertIn("url = %s" % self.server.url("acme/widgets"), config)
        self.assertNotIn("helper", config)
        self.assert_token_nowhere(clone, self.dir)

    def test_a_wrong_token_is_refused(self):
        r = self.git("clone", "-q", self.server.url("acme/widgets"), os.path.join(self.dir, "w"),
                     token="ghp_wrong")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Authentication failed", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "w")))
        self.assertEqual([x["auth"] for x in self.server.requests], ["missing", "wrong"])
        self.assertTrue(all(x["status"] == 401 for x in self.server.requests))

    def test_no_credentials_and_an_unexpected_username(self):
        r = self.git("clone", "-q", self.server.url("acme/widgets"), os.path.join(self.dir, "n"), helper=None)
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual([(x["auth"], x["status"]) for x in self.server.requests], [("missing", 401)])
        # A server that takes only x-access-token refuses the right token under another name.
        strict = GitHttpServer(TOKEN, username="x-access-token").start()
        self.addCleanup(strict.stop)
        strict.create_repo("acme/widgets")
        other = '!f() { echo username=someone; echo "password=$GITHUB_REPO_PAT"; }; f'
        r = self.git("clone", "-q", strict.url("acme/widgets"), os.path.join(self.dir, "s"), helper=other)
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual([x["auth"] for x in strict.requests], ["missing", "wrong"])
        r = self.git("clone", "-q", strict.url("acme/widgets"), os.path.join(self.dir, "s"))
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_the_command_line_server_takes_its_token_from_the_environment(self):
        root = os.path.join(self.dir, "root")
        os.makedirs(root)
        shutil.copytree(self.server.repo_path("acme/widgets"), os.path.join(root, "acme", "widgets.git"))
        proc = subprocess.Popen(["/usr/bin/python3", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                                 "git_http_server.py"), "--root", root],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                env={"PATH": "/usr/bin:/bin", "GIT_HTTP_TOKEN": TOKEN})
        try:
            line = proc.stdout.readline().strip()
            self.assertTrue(line.startswith("URL=http://127.0.0.1:"), line)
            with open("/proc/%d/cmdline" % proc.pid, "rb") as f:
                self.assertNotIn(TOKEN.encode(), f.read())
            r = self.git("clone", "-q", line[4:] + "/acme/widgets.git", os.path.join(self.dir, "c"))
            self.assertEqual(r.returncode, 0, r.stderr)
        finally:
            proc.stdin.close()
            self.assertEqual(proc.wait(10), 0)
            proc.stdout.close()


if __name__ == "__main__":
    unittest.main()
