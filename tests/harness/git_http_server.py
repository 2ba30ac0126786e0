#!/usr/bin/python3
"""git_http_server.py - a real git smart-HTTP server on loopback, for tests.

git's own CGI, `git http-backend` (/usr/lib/git-core/git-http-backend, from Debian's git
package), behind a small standard-library HTTP server that wants HTTP basic auth whose
password is the given token (as GitHub takes a PAT: any username, or only the one given,
e.g. `x-access-token`). Missing or wrong credentials get 401 with
`WWW-Authenticate: Basic realm=...`, so git asks its credential helper and retries; the
right ones reach http-backend with REMOTE_USER set and receive-pack enabled, so clone,
fetch and push all work.

    from git_http_server import GitHttpServer

    with GitHttpServer(token="ghp_test-token") as git:       # started on 127.0.0.1:<port>
        git.create_repo("acme/widgets", {"README.md": "# widgets\\n"})
        url = git.url("acme/widgets")            # http://127.0.0.1:PORT/acme/widgets.git
        # THOPTER_GIT_URL for the consumer: git.base_url + "/{repository}.git"
        ...
        [r for r in git.requests if r["auth"] == "ok" and r["service"] == "git-receive-pack"]
        git.log("acme/widgets")                  # subjects on the default branch, newest first

requests: one dict per HTTP request, in order: method, path, query, service
(git-upload-pack | git-receive-pack | None), user (the basic-auth username, or None),
auth ("ok" | "missing" | "wrong" | "malformed"), chunked (the body came chunked), status.
The password is never recorded, printed or passed to http-backend; lines() is the
server's own access log (method, path, user, status) for failure messages.

As a command: `git_http_server.py --root DIR [--port N] [--username U]`, token from the
environment variable GIT_HTTP_TOKEN (never argv); prints `URL=http://127.0.0.1:PORT` and
serves until stdin closes or SIGTERM. Standard library only.
"""

import argparse
import base64
import binascii
import hmac
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HTTP_BACKEND = "/usr/lib/git-core/git-http-backend"
GIT = shutil.which("git") or "/usr/bin/git"
SERVICE_RX = re.compile(r"/(git-upload-pack|git-receive-pack)$")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "git-http-test/1"
    owner = None  # the GitHttpServer

    def log_message(self, fmt, *args):
        pass  # the default would log the request line only; we keep our own record

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def _auth(self):
        """Returns (auth, user): auth is ok | missing | wrong | malformed."""
        header = self.headers.get("Authorization")
        if not header:
            return "missing", None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return "malformed", None
        try:
            user, sep, password = base64.b64decode(value.strip(), validate=True).decode(
                "utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return "malformed", None
        if not sep:
            return "malformed", None
        ok = hmac.compare_digest(password.encode(), self.owner.token.encode())
        if self.owner.username is not None and user != self.owner.username:
            ok = False
        return ("ok" if ok else "wrong"), user

    def _body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks), True
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return (self.rfile.read(n) if n > 0 else b""), False

    def _handle(self, method):
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        query = url.query
        body, chunked = self._body()
        auth, user = self._auth()
        service = None
        m = SERVICE_RX.search(path)
        if m:
            service = m.group(1)
        else:
            q = urllib.parse.parse_qs(query)
            service = (q.get("service") or [None])[-1]
        record = {"method": method, "path": path, "query": query, "service": service,
                  "user": user, "auth": auth, "chunked": chunked, "status": None}
        if auth != "ok":
            status, headers, data = 401, [("WWW-Authenticate", 'Basic realm="%s"' % self.owner.realm),
                                          ("Content-Type", "text/plain")], b"Authentication required\n"
        elif ".." in path.split("/"):
            status, headers, data = 403, [("Content-Type", "text/plain")], b"Forbidden\n"
        else:
            status, headers, data = self._cgi(method, path, query, body, user)
        record["status"] = status
        self.owner._record(record)
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _cgi(self, method, path, query, body, user):
        # A minimal environment: nothing of the test's (tokens may live there) reaches git.
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": self.owner.root,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.receivepack",
            "GIT_CONFIG_VALUE_0": "true",
            "GIT_PROJECT_ROOT": self.owner.root,
            "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "SERVER_SOFTWARE": self.server_version,
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": user or "",
            "REMOTE_ADDR": self.client_address[0],
        }
        for header, var in (("Content-Encoding", "HTTP_CONTENT_ENCODING"),
                            ("Git-Protocol", "GIT_PROTOCOL")):
            if self.headers.get(header):
                env[var] = self.headers[header]
        proc = subprocess.run([HTTP_BACKEND], input=body, capture_output=True, env=env, timeout=120)
        out = proc.stdout
        sep = out.find(b"\r\n\r\n")
        head, data = (out[:sep], out[sep + 4:]) if sep >= 0 else (b"", out)
        if sep < 0:
            sep = out.find(b"\n\n")
            if sep >= 0:
                head, data = out[:sep], out[sep + 2:]
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            k, _, v = line.partition(":")
            if k.lower() == "status":
                status = int(v.strip().split()[0])
            elif k:
                headers.append((k.strip(), v.strip()))
        if proc.returncode != 0 and not head:
            status, headers, data = 500, [("Content-Type", "text/plain")], b"http-backend failed\n"
        if proc.stderr:
            self.owner._note("http-backend: %s" % proc.stderr.decode("utf-8", "replace").strip())
        return status, headers, data


class GitHttpServer:
    def __init__(self, token, root=None, username=None, addr="127.0.0.1", port=0,
                 realm="thopter-test-git"):
        if not token:
            raise ValueError("a token is required")
        self.token = token
        self.username = username
        self.realm = realm
        self._own_root = root is None
        self.root = os.path.abspath(root) if root else tempfile.mkdtemp(prefix="git-http.")
        os.makedirs(self.root, exist_ok=True)
        self.addr, self.port = addr, port
        self.requests = []
        self._lines = []
        self._lock = threading.Lock()
        self._server = None
        self._thread = None
        self.base_url = None

    # ---- lifecycle ---------------------------------------------------------------------

    def start(self):
        handler = type("Handler", (_Handler,), {"owner": self})
        self._server = ThreadingHTTPServer((self.addr, self.port), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.base_url = "http://%s:%d" % (self.addr, self.port)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True, name="git-http")
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # ---- repositories ------------------------------------------------------------------

    def _git(self, *argv, cwd=None):
        env = {"PATH": "/usr/bin:/bin", "HOME": self.root, "GIT_CONFIG_NOSYSTEM": "1",
               "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_AUTHOR_NAME": "test",
               "GIT_AUTHOR_EMAIL": "test@example.com", "GIT_COMMITTER_NAME": "test",
               "GIT_COMMITTER_EMAIL": "test@example.com"}
        return subprocess.run([GIT] + list(argv), cwd=cwd, env=env, check=True,
                              capture_output=True, text=True).stdout

    def repo_path(self, name):
        return os.path.join(self.root, name + ".git")

    def url(self, name):
        return "%s/%s.git" % (self.base_url, name)

    def create_repo(self, name, files=None, branch="main", message="initial commit"):
        """Makes a bare repository NAME.git (e.g. "acme/widgets") with one commit of files
        {path: text}; returns its path."""
        bare = self.repo_path(name)
        os.makedirs(os.path.dirname(bare), exist_ok=True)
        self._git("init", "-q", "--bare", "-b", branch, bare)
        work = tempfile.mkdtemp(prefix="git-http-src.")
        try:
            self._git("init", "-q", "-b", branch, work)
            for path, text in (files or {"README.md": "# %s\n" % name}).items():
                full = os.path.join(work, path)
                os.makedirs(os.path.dirname(full), exist_ok=True)
                with open(full, "w") as f:
                    f.write(text)
            self._git("add", "-A", cwd=work)
            self._git("commit", "-q", "-m", message, cwd=work)
            self._git("push", "-q", bare, branch, cwd=work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return bare

    def log(self, name, ref="HEAD"):
        """Commit subjects of ref in the bare repository, newest first."""
        return self._git("--git-dir", self.repo_path(name), "log", "--format=%s", ref).splitlines()

    def branches(self, name):
        out = self._git("--git-dir", self.repo_path(name), "for-each-ref", "--format=%(refname:short)",
                        "refs/heads")
        return out.split()

    # ---- records -----------------------------------------------------------------------

    def _record(self, record):
        with self._lock:
            self.requests.append(record)
            self._lines.append("%s %s user=%s auth=%s -> %d" % (
                record["method"], record["path"], record["user"], record["auth"], record["status"]))

    def _note(self, line):
        with self._lock:
            self._lines.append(line)

    def lines(self):
        with self._lock:
            return list(self._lines)

    def clear(self):
        with self._lock:
            self.requests = []
            self._lines = []


def main(argv=None):
    ap = argparse.ArgumentParser(description="git smart-HTTP test server (see the docstring)")
    ap.add_argument("--root", required=True, help="directory of bare repositories NAME.git")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--username", default=None, help="the only username accepted (default: any)")
    args = ap.parse_args(argv)
    token = os.environ.get("GIT_HTTP_TOKEN")
    if not token:
        sys.stderr.write("git_http_server: set GIT_HTTP_TOKEN\n")
        return 2
    server = GitHttpServer(token, root=args.root, username=args.username, port=args.port).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def watch_stdin():
        while sys.stdin.buffer.read(4096):
            pass
        stop.set()
    threading.Thread(target=watch_stdin, daemon=True).start()
    print("URL=%s" % server.base_url, flush=True)
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
