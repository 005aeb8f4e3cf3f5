"""What the compat test modules share: servers under test, a cookie-keeping
HTTP client and HTML form reader, the letters the servers write, test
databases, and the sites the modules build once per database back end.

    server = LiveServer(unchained_bin, database_url, secret_key, env={...}, log_path=...)
    server.start()            # free port on 127.0.0.1, waits until it answers HTTP
    browser = server.browser()
    r = browser.get("/users/login/")
    token = form_token(r.text)
    r = browser.post("/users/login/", {"csrfmiddlewaretoken": token, ...})
    server.stop()

    # the reference app
    django = Gunicorn(venv_python, refproject_dir, database_url, secret_key, env={...}).start()
    browser = django.browser()

    form = parse_form(page.text, id="product-form")   # what a browser would submit
    form.set("price", "0.10")
    r = browser.submit(form, files={"image": ("a.png", "image/png", png)})

    link = confirmation_link(mail_dir, "a@example.com", logs=server.log_text)

Only the standard library (psycopg is imported when a PostgreSQL database
is used, mysqlclient's MySQLdb when a MariaDB one is): the Django-side admin walk of test_admin_and_check.py imports
this module too, to read the admin's forms as the tests read unchained's.
"""
import email
import email.policy
import http.client
import html
import os
import re
import shutil
import socket
import sqlite3
import struct
import subprocess
import time
import urllib.parse
import uuid
import zlib
from collections.abc import MutableMapping
from contextlib import ExitStack
from html.parser import HTMLParser
from http.cookies import SimpleCookie
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
POSTGRES_SH = REPO_ROOT / "scripts" / "postgres.sh"
MARIADB_SH = REPO_ROOT / "scripts" / "mariadb.sh"


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

    def set_cookie_headers(self, name=None):
        """Every Set-Cookie header as written, parsed (SetCookie), in order;
        only those of that cookie name when one is given."""
        out = [SetCookie(v) for k, v in self.headers if k.lower() == "set-cookie"]
        return [c for c in out if name is None or c.name == name]

    def __repr__(self):
        return f"<Response {self.status} location={self.location!r} {len(self.body)} bytes>"


class SetCookie:
    """One Set-Cookie header as written: `name`, `value` (as sent, quotes
    kept), and `attrs`, its attributes in order as (name as written, value or
    None for a flag such as HttpOnly). `attr(name)` looks one up in any case."""

    def __init__(self, header):
        self.header = header
        pair, *rest = header.split(";")
        name, eq, value = pair.partition("=")
        self.name, self.value = (name.strip(), value.strip()) if eq else (None, None)
        self.attrs = []
        for item in rest:
            key, eq, val = item.partition("=")
            if key.strip():
                self.attrs.append((key.strip(), val.strip() if eq else None))

    def attr(self, name, default=None):
        found = default
        for key, val in self.attrs:
            if key.lower() == name.lower():
                found = "" if val is None else val  # the last one counts, as RFC 6265 says
        return found

    def has(self, name):
        return any(key.lower() == name.lower() for key, _ in self.attrs)

    def __repr__(self):
        return f"<SetCookie {self.header!r}>"


def _http_date(text):
    from email.utils import parsedate_to_datetime

    try:
        return parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _is_ip(host):
    return bool(re.fullmatch(r"[0-9.]+|\[[0-9a-fA-F:.]*\]", host))


def _domain_match(host, domain):
    return host == domain or (not _is_ip(host) and host.endswith("." + domain))


def _path_match(request_path, cookie_path):
    return request_path == cookie_path or (
        request_path.startswith(cookie_path)
        and (cookie_path.endswith("/") or request_path[len(cookie_path)] == "/"))


class Cookie:
    __slots__ = ("name", "value", "domain", "host_only", "path", "expires", "secure", "http_only",
                 "same_site", "created")

    def __repr__(self):
        return (f"<Cookie {self.name}={self.value[:20]} domain={self.domain} host_only={self.host_only} "
                f"path={self.path} expires={self.expires}>")


class CookieJar(MutableMapping):
    """A browser's cookies, kept as RFC 6265 says (section 5.3): one per
    (name, domain, path); Domain and Path decide which requests carry a
    cookie; Max-Age (or else Expires) its end, a past end deleting it; a
    cookie without either lasts until `end_session()` (the browser closed).
    Cookies do not tell ports apart: one jar may serve both servers on
    127.0.0.1, as one browser would. Every host here is a loopback one,
    which browsers treat as secure, so Secure cookies are sent; SameSite
    never withholds a cookie (every request is same-site).

    As a mapping it is name -> value, for the tests that read or plant
    cookies by name: reading gives the cookie a request for the longest
    path would carry first; `jar[name] = value` plants a host-only cookie
    for `host`, Path=/, until the session ends; `del jar[name]` removes
    every cookie of that name."""

    def __init__(self, host="127.0.0.1", clock=time.time):
        self.host = host.lower()
        self.clock = clock
        self._cookies = {}  # (name, domain, path) -> Cookie
        self._serial = 0

    # -- RFC 6265 storage and retrieval

    def _live(self):
        now = self.clock()
        for key in [k for k, c in self._cookies.items() if c.expires is not None and c.expires <= now]:
            del self._cookies[key]
        return self._cookies.values()

    def store(self, header, request_host, request_path="/"):
        """Takes one Set-Cookie header of a response to `request_host` (no
        port) for `request_path`; returns the Cookie kept, or None (ignored
        or deleted)."""
        parsed = SetCookie(header)
        if not parsed.name:
            return None  # no name=value pair, or an empty name: ignored
        host = request_host.lower()
        cookie = Cookie()
        cookie.name, cookie.value = parsed.name, parsed.value
        now = self.clock()
        expires = None
        max_age = parsed.attr("max-age")
        if max_age is not None and re.fullmatch(r"-?[0-9]+", max_age):
            expires = now + int(max_age) if int(max_age) > 0 else float("-inf")
        elif parsed.attr("expires"):
            expires = _http_date(parsed.attr("expires"))
        cookie.expires = expires
        domain = (parsed.attr("domain") or "").lstrip(".").lower()
        if domain:
            if not _domain_match(host, domain):
                return None  # a cookie for another site: a browser ignores it
            cookie.domain, cookie.host_only = domain, False
        else:
            cookie.domain, cookie.host_only = host, True
        path = parsed.attr("path")
        if not path or not path.startswith("/"):
            directory = request_path.split("?", 1)[0]
            path = directory[:directory.rindex("/")] if directory.count("/") > 1 else "/"
        cookie.path = path
        cookie.secure = parsed.has("secure")
        cookie.http_only = parsed.has("httponly")
        cookie.same_site = parsed.attr("samesite")
        key = (cookie.name, cookie.domain, cookie.path)
        old = self._cookies.pop(key, None)
        if expires is not None and expires <= now:
            return None  # an end in the past deletes it
        self._serial += 1
        cookie.created = old.created if old else self._serial
        self._cookies[key] = cookie
        return cookie

    def matching(self, host, path="/"):
        """The cookies a request to `host` for `path` carries, in the order a
        browser sends them (longer paths first, then older first)."""
        host = host.lower()
        path = path.split("?", 1)[0] or "/"
        found = [c for c in self._live()
                 if (c.domain == host if c.host_only else _domain_match(host, c.domain))
                 and _path_match(path, c.path)]
        return sorted(found, key=lambda c: (-len(c.path), c.created))

    def header(self, host, path="/"):
        """The Cookie header of such a request ("" when it carries none)."""
        return "; ".join(f"{c.name}={c.value}" for c in self.matching(host, path))

    def cookies(self, name=None):
        """The live Cookie objects (of that name)."""
        return [c for c in self._live() if name is None or c.name == name]

    def end_session(self):
        """The browser is closed and opened again: cookies without an end are gone."""
        for key in [k for k, c in self._cookies.items() if c.expires is None]:
            del self._cookies[key]

    def copy(self):
        other = CookieJar(self.host, self.clock)
        other._cookies = {k: _copy_cookie(c) for k, c in self._cookies.items()}
        other._serial = self._serial
        return other

    # -- name -> value

    def __getitem__(self, name):
        found = sorted(self.cookies(name), key=lambda c: (-len(c.path), c.created))
        if not found:
            raise KeyError(name)
        return found[0].value

    def __setitem__(self, name, value):
        cookie = Cookie()
        cookie.name, cookie.value = name, str(value)
        cookie.domain, cookie.host_only, cookie.path, cookie.expires = self.host, True, "/", None
        cookie.secure = cookie.http_only = False
        cookie.same_site = None
        old = self._cookies.pop((name, self.host, "/"), None)
        self._serial += 1
        cookie.created = old.created if old else self._serial
        self._cookies[(name, self.host, "/")] = cookie

    def __delitem__(self, name):
        keys = [k for k in self._cookies if k[0] == name]
        if not keys:
            raise KeyError(name)
        for key in keys:
            del self._cookies[key]

    def __iter__(self):
        names = []
        for cookie in sorted(self._live(), key=lambda c: c.created):
            if cookie.name not in names:
                names.append(cookie.name)
        return iter(names)

    def __len__(self):
        return len(list(iter(self)))

    def __repr__(self):
        return f"<CookieJar {list(self._live())!r}>"


def _copy_cookie(cookie):
    other = Cookie()
    for slot in Cookie.__slots__:
        setattr(other, slot, getattr(cookie, slot))
    return other


class Browser:
    """One visitor: keeps the cookies the sites set (a CookieJar, readable
    as name -> value), follows no redirects. It connects to `host`:`port`
    and names `hostname` (default: `host`) in the Host header and to its
    cookie jar. `jar` shares a jar between browsers (one browser visiting
    two servers on one host); assigning `browser.cookies` a dict plants
    those cookies in a new jar."""

    def __init__(self, host, port, timeout=60, hostname=None, jar=None):
        self.host = host
        self.port = port
        self.hostname = hostname or host
        self.timeout = timeout
        self._jar = jar if jar is not None else CookieJar(self.hostname)

    @property
    def cookies(self):
        return self._jar

    @cookies.setter
    def cookies(self, value):
        if isinstance(value, CookieJar):
            self._jar = value
        else:
            self._jar = CookieJar(self.hostname)
            for name, v in dict(value).items():
                self._jar[name] = v

    def request(self, method, path, data=None, headers=None, body=None, content_type=None):
        """`data` (a dict or a list of (name, value) pairs) is sent urlencoded;
        or `body` as given with `content_type`."""
        hdrs = {"Host": f"{self.hostname}:{self.port}"}
        if data is not None:
            body = urllib.parse.urlencode(data).encode("ascii")
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            hdrs["Content-Type"] = content_type
        cookie_header = self._jar.header(self.hostname, path)
        if cookie_header:
            hdrs["Cookie"] = cookie_header
        hdrs.update(headers or {})
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        sent_at = time.time()
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            response = Response(resp.status, resp.getheaders(), resp.read())
        finally:
            conn.close()
        # The server's clock read "now" for this response between these two.
        response.sent_at, response.received_at = sent_at, time.time()
        for k, v in response.headers:
            if k.lower() == "set-cookie":
                self._jar.store(v, self.hostname, path)
        return response

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, data, **kw):
        return self.request("POST", path, data=data, **kw)

    def post_multipart(self, path, fields, files=(), **kw):
        """A multipart/form-data POST as a browser sends it: `fields` are
        (name, value) pairs, `files` (name, filename, content_type, bytes)
        tuples; a file input left empty is ("image", "", "application/octet-stream", b"")."""
        body, content_type = encode_multipart(fields, files)
        return self.request("POST", path, body=body, content_type=content_type, **kw)

    def submit(self, form, files=None, submit=None, page_path="/", **kw):
        """Submits a parsed `Form` as a browser would: to its action (or
        `page_path`, the page it came from), urlencoded or multipart as its
        enctype says. `files` maps a file input's name to (filename,
        content_type, bytes); file inputs not in it are sent empty.
        `submit` names the submit button pressed (its value is sent)."""
        fields = form.pairs(submit)
        action = form.action or page_path
        if form.enctype == "multipart/form-data":
            parts = []
            for name in form.file_inputs:
                filename, content_type, content = (files or {}).get(name, ("", "application/octet-stream", b""))
                parts.append((name, filename, content_type, content))
            return self.post_multipart(action, fields, parts, **kw)
        assert not files, f"the form to {action} is not multipart: files cannot be sent"
        return self.post(action, fields, **kw)


_TOKEN_RE = re.compile(
    r'<input[^>]*name="csrfmiddlewaretoken"[^>]*value="([^"]*)"'
    r'|<input[^>]*value="([^"]*)"[^>]*name="csrfmiddlewaretoken"'
)


def form_token(page_html):
    """The first form's `csrfmiddlewaretoken` value in a page."""
    m = _TOKEN_RE.search(page_html)
    assert m, f"no csrfmiddlewaretoken in the page:\n{page_html[:3000]}"
    return html.unescape(m.group(1) or m.group(2))


def process_env(database_url, secret_key, extra=None):
    """The environment of a server or command under test: this process's,
    with that DATABASE_URL and SECRET_KEY and without the settings a
    developer's shell could leak in (DJANGO_SETTINGS_MODULE,
    SECRET_KEY_FALLBACKS). `extra` adds variables (as str), or removes
    them (a None value)."""
    env = dict(os.environ)
    for key in ("DJANGO_SETTINGS_MODULE", "SECRET_KEY_FALLBACKS"):
        env.pop(key, None)
    env.update({"DATABASE_URL": database_url, "SECRET_KEY": secret_key})
    for key, value in (extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env


def reference_env(database_url, secret_key, extra=None):
    """process_env for the reference Django project: its settings module,
    and no .pyc files written into its source tree."""
    return process_env(database_url, secret_key, {
        "DJANGO_SETTINGS_MODULE": "config.settings", "PYTHONDONTWRITEBYTECODE": "1", **(extra or {}),
    })


class ServerProcess:
    """A server under test in a subprocess on a free 127.0.0.1 port, with
    that DATABASE_URL and SECRET_KEY (`env` adds or removes variables, as
    process_env). `start()` returns once it answers GET /users/login/ with
    200; `stop()` ends it. Also a context manager that stops it."""

    host = "127.0.0.1"
    name = "server"

    def __init__(self, database_url, secret_key, env=None, log_path=None, cwd=REPO_ROOT):
        self.database_url = database_url
        self.secret_key = secret_key
        self.extra_env = dict(env or {})
        self.log_path = log_path
        self.cwd = cwd
        self.proc = None
        self.port = None
        self._log = None

    @property
    def base_url(self):
        return f"http://{self.host}:{self.port}"

    def command(self):
        raise NotImplementedError

    def env(self):
        return process_env(self.database_url, self.secret_key, self.extra_env)

    def log_text(self):
        if self.log_path and os.path.exists(self.log_path):
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()[-6000:]
        return ""

    def start(self, timeout=60):
        # The free port may be taken by another process before the server
        # binds it; then a new port is tried.
        for _ in range(3):
            self.port = free_port()
            self._log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
            self.proc = subprocess.Popen(
                self.command(),
                env=self.env(),
                cwd=str(self.cwd),
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
            )
            if self._wait_ready(timeout):
                return self
            self.stop()
        raise AssertionError(f"{self.name} did not come up:\n{self.log_text()}")

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False  # exited (port taken by someone else, bad config...)
            try:
                r = Browser(self.host, self.port, timeout=10).get("/users/login/")
            except OSError:
                time.sleep(0.2)
                continue
            # Something answered; make sure it is this process and not another
            # one that took the port first (this one would exit on bind).
            time.sleep(0.2)
            if self.proc.poll() is not None:
                return False
            if r.status != 200:
                raise AssertionError(
                    f"{self.name}'s /users/login/ answered {r!r}:\n{r.text[:3000]}\n{self.log_text()}")
            return True
        return False

    def stop(self):
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()  # SIGTERM: both servers shut down cleanly on it
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
        self._log = None

    def browser(self):
        assert self.proc is not None, "server not started"
        return Browser(self.host, self.port)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class LiveServer(ServerProcess):
    """`unchained serve`, run from the repository root."""

    name = "unchained serve"

    def __init__(self, unchained_bin, database_url, secret_key, env=None, log_path=None, cwd=REPO_ROOT):
        super().__init__(database_url, secret_key, env, log_path, cwd)
        self.bin = unchained_bin

    def command(self):
        return [str(self.bin), "serve", "--bind", f"{self.host}:{self.port}"]


class Gunicorn(ServerProcess):
    """The reference project under gunicorn (one worker)."""

    name = "gunicorn"

    def __init__(self, venv_python, refproject_dir, database_url, secret_key, env=None, log_path=None):
        super().__init__(database_url, secret_key, env, log_path, cwd=refproject_dir)
        self.venv_python = venv_python

    def env(self):
        return reference_env(self.database_url, self.secret_key, self.extra_env)

    def command(self):
        return [str(self.venv_python), "-m", "gunicorn", "config.wsgi", "--workers", "1",
                "--bind", f"{self.host}:{self.port}", "--timeout", "120"]


def encode_multipart(fields, files=()):
    """(body, content type) of a multipart/form-data body, as browsers write it:
    names and file names in UTF-8, a double quote as %22, CRLF line ends."""
    boundary = "----unchainedFormBoundary" + uuid.uuid4().hex

    def quote(value):
        return value.replace("\r", "%0D").replace("\n", "%0A").replace('"', "%22")

    out = []
    for name, value in fields:
        out.append(f"--{boundary}\r\n".encode())
        out.append(f'Content-Disposition: form-data; name="{quote(name)}"\r\n\r\n'.encode("utf-8"))
        out.append(str(value).encode("utf-8") + b"\r\n")
    for name, filename, content_type, content in files:
        out.append(f"--{boundary}\r\n".encode())
        out.append(
            f'Content-Disposition: form-data; name="{quote(name)}"; filename="{quote(filename)}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n".encode("utf-8")
        )
        out.append(content + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


# ---------------------------------------------------------------- HTML forms


class Form:
    """One <form> of a page, as a browser sees it: the controls that would be
    submitted (`fields`, (name, value) pairs in document order), its file
    inputs, submit buttons, the options of its selects and the names of its
    checkboxes."""

    def __init__(self, attrs):
        self.attrs = attrs
        self.id = attrs.get("id")
        self.action = attrs.get("action") or ""  # HTMLParser unescapes attribute values
        self.method = (attrs.get("method") or "get").lower()
        self.enctype = (attrs.get("enctype") or "application/x-www-form-urlencoded").lower()
        self.fields = []
        self.file_inputs = []
        self.submits = []  # (name, value)
        self.options = {}  # select name -> [(value, text)]
        self.checkboxes = []

    def names(self):
        return [n for n, _ in self.fields]

    def get(self, name, default=None):
        for n, v in self.fields:
            if n == name:
                return v
        return default

    def get_all(self, name):
        return [v for n, v in self.fields if n == name]

    def set(self, name, value):
        """Replaces every value of `name` with `value` (a list: several
        values; None or False: none, as an unchecked box)."""
        values = [] if value is None or value is False else (list(value) if isinstance(value, (list, tuple)) else [value])
        index = next((i for i, (n, _) in enumerate(self.fields) if n == name), len(self.fields))
        self.fields = [(n, v) for n, v in self.fields if n != name]
        index = min(index, len(self.fields))
        self.fields[index:index] = [(name, str(v)) for v in values]
        return self

    def remove(self, name):
        return self.set(name, None)

    def pairs(self, submit=None):
        out = list(self.fields)
        if submit is not None:
            match = [(n, v) for n, v in self.submits if n == submit]
            assert match, f"no submit button named {submit!r} in the form: {self.submits}"
            out.append(match[0])
        return out

    def __repr__(self):
        return f"<Form id={self.id!r} action={self.action!r} fields={self.fields!r}>"


class _FormParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms = []
        self._form = None
        self._select = None  # [name, multiple, [(value, text, selected)], disabled]
        self._option = None
        self._textarea = None  # [name, text]
        self._template_depth = 0

    def handle_starttag(self, tag, attrs):
        a = {k: ("" if v is None else v) for k, v in attrs}
        if tag == "template":
            self._template_depth += 1
        if self._template_depth:
            return  # a <template>'s content is inert: never submitted
        if tag == "form":
            self._form = Form(a)
            self.forms.append(self._form)
            return
        form = self._form
        if form is None:
            return
        name = a.get("name")
        disabled = "disabled" in a
        if tag == "input":
            kind = (a.get("type") or "text").lower()
            if kind in ("submit", "image"):
                if name:
                    form.submits.append((name, a.get("value", "")))
            elif kind in ("button", "reset") or not name or disabled:
                pass
            elif kind == "file":
                form.file_inputs.append(name)
            elif kind in ("checkbox", "radio"):
                if kind == "checkbox":
                    form.checkboxes.append(name)
                if "checked" in a:
                    form.fields.append((name, a.get("value", "on")))
            else:
                form.fields.append((name, a.get("value", "")))
        elif tag == "button":
            kind = (a.get("type") or "submit").lower()
            if kind == "submit" and name:
                form.submits.append((name, a.get("value", "")))
        elif tag == "select":
            self._select = [name, "multiple" in a, [], disabled or not name]
        elif tag == "option" and self._select is not None:
            self._option = [a.get("value"), "", "selected" in a]
            self._select[2].append(self._option)
        elif tag == "textarea":
            self._textarea = [name, "", disabled or not name]

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag == "template":
            self._template_depth -= 1

    def handle_data(self, data):
        if self._option is not None:
            self._option[1] += data
        elif self._textarea is not None:
            self._textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "template":
            self._template_depth = max(0, self._template_depth - 1)
            return
        if self._template_depth:
            return
        if tag == "option":
            self._option = None
        elif tag == "select" and self._select is not None:
            name, multiple, options, skip = self._select
            self._select = self._option = None
            if self._form is None or not name:
                return
            self._form.options[name] = [((v if v is not None else t.strip()), t.strip()) for v, t, _ in options]
            chosen = [o for o in options if o[2]]
            if not multiple and not chosen and options:
                chosen = options[:1]  # a single select submits its first option
            if not multiple:
                chosen = chosen[-1:]
            if not skip:
                for v, t, _ in chosen:
                    self._form.fields.append((name, v if v is not None else t.strip()))
        elif tag == "textarea" and self._textarea is not None:
            name, text, skip = self._textarea
            self._textarea = None
            if self._form is not None and not skip:
                # HTML drops one newline right after <textarea>.
                if text.startswith("\r\n"):
                    text = text[2:]
                elif text.startswith("\n"):
                    text = text[1:]
                self._form.fields.append((name, text))
        elif tag == "form":
            self._form = None


def parse_forms(page_html):
    """Every <form> of the page, in order."""
    parser = _FormParser()
    parser.feed(page_html)
    parser.close()
    return parser.forms


def parse_form(page_html, id=None, action=None):
    """The form with that id (or action); the page's first form when neither is given."""
    forms = parse_forms(page_html)
    for form in forms:
        if (id is None or form.id == id) and (action is None or form.action == action):
            return form
    raise AssertionError(
        f"no form with id={id!r} action={action!r} in the page; forms: "
        f"{[(f.id, f.action) for f in forms]}\n{page_html[:3000]}"
    )


# ---------------------------------------------------------------- letters


CONFIRM_SUBJECT = "Подтверждение почты"
CONFIRM_LINK_RE = re.compile(r"https?://[^\s/]+/users/email-confirm/[^/\s]+/")


def read_letters(mail_dir):
    """Every letter in a folder of the file e-mail back end (unchained's
    EMAIL_BACKEND=file writes Django's filebased format: each message
    followed by a line of 79 dashes), as email.message.EmailMessage."""
    out = []
    for path in sorted(Path(mail_dir).glob("*.log")):
        for chunk in path.read_bytes().split(b"-" * 79 + b"\n"):
            if chunk.strip():
                out.append(email.message_from_bytes(chunk, policy=email.policy.default))
    return out


def letter_text(msg):
    """The letter's plain text (the text/plain part of a multipart one)."""
    return msg.get_body(("plain",)).get_content() if msg.is_multipart() else msg.get_content()


def wait_for_letter(mail_dir, to, subject, logs=None, timeout=30):
    """The letter to `to` with that subject. Waits for it: unchained sends
    from its outbox in the background, after the page has answered. `logs`
    (a callable) adds the servers' logs to a failure."""
    deadline = time.monotonic() + timeout
    while True:
        for msg in read_letters(mail_dir):
            if str(msg["To"]).strip() == to and str(msg["Subject"]).strip() == subject:
                return msg
        if time.monotonic() > deadline:
            raise AssertionError(
                f"no letter {subject!r} to {to} in {mail_dir} after {timeout}s: "
                f"{[(str(m['To']), str(m['Subject'])) for m in read_letters(mail_dir)]}\n"
                f"{logs() if logs else ''}"
            )
        time.sleep(0.2)


def confirmation_link(mail_dir, to, logs=None):
    """The e-mail-confirmation link of the letter sent to `to`."""
    body = letter_text(wait_for_letter(mail_dir, to, CONFIRM_SUBJECT, logs))
    m = CONFIRM_LINK_RE.search(body)
    assert m, f"no confirmation link in the letter to {to}:\n{body}"
    return m.group(0)


# ---------------------------------------------------------------- databases


def mysql_connect(url, database=True, **kwargs):
    """A MySQLdb (mysqlclient) connection to a mysql:// URL's server, to its
    database unless `database` is False; utf8mb4, as both servers connect."""
    import MySQLdb

    parts = urllib.parse.urlsplit(url)
    options = dict(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=urllib.parse.unquote(parts.username or ""),
        password=urllib.parse.unquote(parts.password or ""),
        charset="utf8mb4",
        **kwargs,
    )
    name = urllib.parse.unquote(parts.path.lstrip("/"))
    if database and name:
        options["database"] = name
    return MySQLdb.connect(**options)


def mysql_database_name(url):
    return urllib.parse.unquote(urllib.parse.urlsplit(url).path.lstrip("/"))


def mysql_admin(base_url, *statements):
    """Runs statements on a MariaDB server (no database chosen), autocommitted."""
    con = mysql_connect(base_url, database=False)
    try:
        cur = con.cursor()
        for sql in statements:
            cur.execute(sql)
    finally:
        con.close()


def mysql_client_args(url, program="mariadb"):
    """The command line of MariaDB's client programs (mariadb, mariadb-dump)
    for that URL's server over TCP, without its database name; no option
    files read."""
    parts = urllib.parse.urlsplit(url)
    return [program, "--no-defaults", "--protocol=tcp", f"--host={parts.hostname or '127.0.0.1'}",
            f"--port={parts.port or 3306}", f"--user={urllib.parse.unquote(parts.username or '')}",
            f"--password={urllib.parse.unquote(parts.password or '')}", "--default-character-set=utf8mb4"]


def mysql_dump(url, *options):
    """mariadb-dump of the URL's database: schema (triggers included) and
    rows, without the date, comments or anything else that changes between
    two dumps of the same database."""
    out = subprocess.run(
        [*mysql_client_args(url, "mariadb-dump"), "--single-transaction", "--triggers", "--routines",
         "--skip-dump-date", "--skip-comments", *options, mysql_database_name(url)],
        check=True, capture_output=True, timeout=300,
    ).stdout
    return out.decode("utf-8")


class Database:
    """Plain SQL on a test database; queries use %s placeholders. On
    MySQL/MariaDB the session has ANSI_QUOTES, so "name" quotes an
    identifier there too, as on SQLite and PostgreSQL."""

    def __init__(self, url):
        self.url = url
        self.sqlite = url.startswith("sqlite:///")
        self.mysql = url.startswith(("mysql://", "mariadb://"))

    def _connect(self):
        if self.sqlite:
            return sqlite3.connect(urllib.parse.unquote(self.url[len("sqlite:///"):]), timeout=30)
        if self.mysql:
            con = mysql_connect(self.url)
            con.cursor().execute("SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',ANSI_QUOTES')")
            return con
        import psycopg

        return psycopg.connect(self.url)

    def rows(self, query, *params):
        con = self._connect()
        try:
            cur = con.cursor()
            cur.execute(query.replace("%s", "?") if self.sqlite else query, params)
            return [tuple(r) for r in cur.fetchall()]
        finally:
            con.close()

    def one(self, query, *params):
        rows = self.rows(query, *params)
        assert len(rows) == 1, f"expected one row from {query!r} {params}, got {rows}"
        return rows[0]

    def execute(self, query, *params):
        con = self._connect()
        try:
            cur = con.cursor()
            cur.execute(query.replace("%s", "?") if self.sqlite else query, params)
            con.commit()
            return cur.rowcount
        finally:
            con.close()

    def tables(self):
        if self.sqlite:
            return [r[0] for r in self.rows(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
                " ORDER BY name")]
        schema = "DATABASE()" if self.mysql else "current_schema()"
        return [r[0] for r in self.rows(
            f"SELECT table_name FROM information_schema.tables WHERE table_schema = {schema}"
            " AND table_type = 'BASE TABLE' ORDER BY table_name")]

    def row_counts(self):
        return {t: self.one(f'SELECT COUNT(*) FROM "{t}"')[0] for t in self.tables()}


_mariadb_base_url = None


def mariadb_base_url():
    """Starts the test MariaDB server (scripts/mariadb.sh, which reads
    MARIADB_PORT and MARIADB_DATA_DIR) once per process; its base URL."""
    global _mariadb_base_url
    if _mariadb_base_url is None:
        _mariadb_base_url = subprocess.run(
            ["bash", str(MARIADB_SH), "start"], check=True, capture_output=True, text=True, timeout=900,
        ).stdout.strip()
    return _mariadb_base_url


def mariadb_createdb(name):
    """A new empty utf8mb4 database on the test MariaDB server: its URL."""
    mariadb_base_url()
    return subprocess.run(
        ["bash", str(MARIADB_SH), "createdb", name], check=True, capture_output=True, text=True, timeout=300,
    ).stdout.strip()


class ModuleDatabase:
    """A database that lives as long as a module's tests: a file in `workdir`
    (made by the first migrate), or a new PostgreSQL or MariaDB database,
    dropped by `drop()` unless COMPAT_KEEP_DBS is set. `request` (the
    test's) starts the PostgreSQL test cluster only when the back end is
    PostgreSQL (and the MariaDB server only for MariaDB)."""

    def __init__(self, request, backend, workdir, label):
        self.backend = backend
        self.pg_base_url = request.getfixturevalue("pg_base_url") if backend == "postgres" else None
        self.my_base_url = request.getfixturevalue("my_base_url") if backend == "mysql" else None
        if backend == "sqlite":
            self.path = workdir / f"{label}.sqlite3"
            self.url = f"sqlite:///{self.path}"
            self.name = None
        elif backend == "mysql":
            self.name = f"compat_{label}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
            self.url = mariadb_createdb(self.name)
        else:
            self.name = f"compat_{label}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
            self.url = subprocess.run(
                ["bash", str(POSTGRES_SH), "createdb", self.name],
                check=True, capture_output=True, text=True, timeout=300,
            ).stdout.strip()
        self.db = Database(self.url)

    def _pg_admin(self, sql):
        import psycopg

        with psycopg.connect(f"{self.pg_base_url}/postgres", autocommit=True) as con:
            con.execute(sql)

    def copy(self, workdir, label):
        """A copy of the database as it is now: (url, drop)."""
        if self.backend == "sqlite":
            target = workdir / f"{label}-{uuid.uuid4().hex[:6]}.sqlite3"
            shutil.copyfile(self.path, target)

            def drop_file():
                for path in [target, *target.parent.glob(target.name + "-*")]:  # -wal, -shm
                    path.unlink(missing_ok=True)

            return f"sqlite:///{target}", drop_file
        name = f"{self.name}_{label}"[:60]
        if self.backend == "mysql":
            # MariaDB has no CREATE DATABASE ... TEMPLATE: its dump (tables,
            # triggers, rows, AUTO_INCREMENT counters) replayed into a new one.
            url = mariadb_createdb(name)
            dump = mysql_dump(self.url)
            subprocess.run([*mysql_client_args(url), name], input=dump.encode("utf-8"), check=True,
                           capture_output=True, timeout=300)

            def drop_mysql():
                if not os.environ.get("COMPAT_KEEP_DBS"):
                    mysql_admin(self.my_base_url, f"DROP DATABASE IF EXISTS `{name}`")

            return url, drop_mysql
        self._pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.name}"')
        url = f"{self.pg_base_url}/{name}"

        def drop():
            if not os.environ.get("COMPAT_KEEP_DBS"):
                self._pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        return url, drop

    def drop(self):
        if os.environ.get("COMPAT_KEEP_DBS"):
            return
        if self.backend == "postgres":
            self._pg_admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        elif self.backend == "mysql":
            mysql_admin(self.my_base_url, f"DROP DATABASE IF EXISTS `{self.name}`")


# ---------------------------------------------------------------- sites shared by a module's tests


class BackendSites:
    """A module's shared sites, one per database back end (or other key),
    for tests too slow to build their servers and data each time: built by
    the first test that asks, reused by the rest, torn down when the `with`
    block ends (conftest.py's module-scoped `_sites` fixture):

        @pytest.fixture
        def site(db_backend, _sites, ...):
            def build(cleanup):      # cleanup: an ExitStack
                database = ModuleDatabase(request, db_backend, workdir, "label")
                cleanup.callback(database.drop)
                server = LiveServer(...).start()
                cleanup.callback(server.stop)
                return Site(...)
            return _sites.get(db_backend, build)

    What `build` registers on `cleanup` is undone in reverse order, at once
    when the build fails; a failed build is not tried again by the next test
    (it would fail the same way, slowly)."""

    def __init__(self):
        self._sites = {}
        self._failed = {}
        self._teardown = ExitStack()

    def get(self, key, build):
        if key in self._failed:
            raise AssertionError(f"building the {key} site failed earlier:\n{self._failed[key]}")
        if key not in self._sites:
            cleanup = ExitStack()
            try:
                self._sites[key] = build(cleanup)
            except BaseException as e:
                self._failed[key] = repr(e)[:6000]
                cleanup.close()
                raise
            self._teardown.enter_context(cleanup)
        return self._sites[key]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._teardown.close()


# ---------------------------------------------------------------- test data


def new_email(tag):
    """A fresh address: tests that share a site never meet each other's users."""
    return f"{tag}-{uuid.uuid4().hex[:10]}@example.com"


def new_password():
    # Passes Django's validators; letters, digits, a few symbols and a non-ASCII one.
    return f"Pw-{uuid.uuid4().hex[:12]}!ё"


def nav_email(page_html):
    """The e-mail in the navigation's user link (base.html: <a class="who" ...>)."""
    m = re.search(r'<a class="who"[^>]*>([^<]*)</a>', page_html)
    return html.unescape(m.group(1)).strip() if m else None


def png_bytes(width=4, height=3, rgb=None):
    """A small real PNG; of a random colour (different every call) unless `rgb` is given."""
    color = bytes(rgb) if rgb else uuid.uuid4().bytes[:3]
    raw = b"".join(b"\x00" + color * width for _ in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
