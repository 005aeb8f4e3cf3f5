"""A running `unchained serve` for tests, and a small cookie-keeping HTTP client.

    server = LiveServer(unchained_bin, database_url, secret_key, env={...}, log_path=...)
    server.start()            # free port on 127.0.0.1, waits until it answers HTTP
    browser = server.browser()
    r = browser.get("/users/login/")
    token = form_token(r.text)
    r = browser.post("/users/login/", {"csrfmiddlewaretoken": token, ...})
    server.stop()

Only the standard library: http.client, http.cookies, urllib.parse.
"""
import http.client
import html
import os
import re
import signal
import socket
import subprocess
import time
import urllib.parse
from http.cookies import SimpleCookie
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent.parent


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # list of (name, value), as received
        self.body = body
        self.text = body.decode("utf-8", "replace")

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    @property
    def location(self):
        return self.header("Location")

    def set_cookies(self):
        """Every Set-Cookie header parsed: {name: Morsel}."""
        out = {}
        for k, v in self.headers:
            if k.lower() == "set-cookie":
                jar = SimpleCookie()
                jar.load(v)
                out.update(jar)
        return out

    def __repr__(self):
        return f"<Response {self.status} location={self.location!r} {len(self.body)} bytes>"


def _expired(morsel):
    max_age = morsel.get("max-age")
    if max_age not in (None, ""):
        try:
            if int(max_age) <= 0:
                return True
        except ValueError:
            pass
    expires = morsel.get("expires")
    if expires:
        from email.utils import parsedate_to_datetime

        try:
            return parsedate_to_datetime(expires).timestamp() <= time.time()
        except (TypeError, ValueError):
            return False
    return False


class Browser:
    """One visitor: keeps the cookies the site sets (name -> value), follows
    no redirects, sends the Host header of the base URL."""

    def __init__(self, host, port, timeout=60):
        self.host = host
        self.port = port
        self.timeout = timeout
        self.cookies = {}

    def request(self, method, path, data=None, headers=None):
        body = None
        hdrs = {"Host": f"{self.host}:{self.port}"}
        if data is not None:
            body = urllib.parse.urlencode(data).encode("ascii")
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        if self.cookies:
            hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        hdrs.update(headers or {})
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            response = Response(resp.status, resp.getheaders(), resp.read())
        finally:
            conn.close()
        for name, morsel in response.set_cookies().items():
            if _expired(morsel):
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = morsel.value
        return response

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, data, **kw):
        return self.request("POST", path, data=data, **kw)


_TOKEN_RE = re.compile(
    r'<input[^>]*name="csrfmiddlewaretoken"[^>]*value="([^"]*)"'
    r'|<input[^>]*value="([^"]*)"[^>]*name="csrfmiddlewaretoken"'
)


def form_token(page_html):
    """The first form's `csrfmiddlewaretoken` value in a page."""
    m = _TOKEN_RE.search(page_html)
    assert m, f"no csrfmiddlewaretoken in the page:\n{page_html[:3000]}"
    return html.unescape(m.group(1) or m.group(2))


class LiveServer:
    """`unchained serve` on a free 127.0.0.1 port with that DATABASE_URL and SECRET_KEY."""

    def __init__(self, unchained_bin, database_url, secret_key, env=None, log_path=None, cwd=REPO_ROOT):
        self.bin = unchained_bin
        self.database_url = database_url
        self.secret_key = secret_key
        self.extra_env = dict(env or {})
        self.log_path = log_path
        self.cwd = cwd
        self.proc = None
        self.port = None
        self._log = None

    @property
    def host(self):
        return "127.0.0.1"

    @property
    def base_url(self):
        return f"http://{self.host}:{self.port}"

    def env(self):
        env = dict(os.environ)
        env.pop("DJANGO_SETTINGS_MODULE", None)
        env.update({"DATABASE_URL": self.database_url, "SECRET_KEY": self.secret_key})
        for k, v in self.extra_env.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = str(v)
        return env

    def log_text(self):
        if self.log_path and os.path.exists(self.log_path):
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()[-6000:]
        return ""

    def start(self, timeout=60):
        for attempt in range(3):
            self.port = free_port()
            self._log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
            self.proc = subprocess.Popen(
                [str(self.bin), "serve", "--bind", f"{self.host}:{self.port}"],
                env=self.env(),
                cwd=str(self.cwd),
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
            )
            if self._wait_ready(timeout):
                return self
            self.stop()
        raise AssertionError(f"unchained serve did not come up:\n{self.log_text()}")

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False  # exited (port taken by someone else, bad config...)
            try:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=2)
                conn.request("GET", "/users/login/", headers={"Host": f"{self.host}:{self.port}"})
                conn.getresponse().read()
                conn.close()
            except OSError:
                time.sleep(0.1)
                continue
            # Something answered; make sure it is this process and not another
            # one that took the port first (this one would exit on bind).
            time.sleep(0.2)
            return self.proc.poll() is None
        return False

    def stop(self):
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
        self._log = None

    def browser(self):
        assert self.proc is not None, "server not started"
        return Browser(self.host, self.port)
