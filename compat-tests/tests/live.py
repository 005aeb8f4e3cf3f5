"""A running `unchained serve` for tests, and a small cookie-keeping HTTP client.

    server = LiveServer(unchained_bin, database_url, secret_key, env={...}, log_path=...)
    server.start()            # free port on 127.0.0.1, waits until it answers HTTP
    browser = server.browser()
    r = browser.get("/users/login/")
    token = form_token(r.text)
    r = browser.post("/users/login/", {"csrfmiddlewaretoken": token, ...})
    server.stop()

    django = Gunicorn(venv_python, refproject_dir, env, log_path).start()   # the reference app
    browser = django.browser()

    form = parse_form(page.text, id="product-form")   # what a browser would submit
    form.set("price", "0.10")
    r = browser.submit(form, files={"image": ("a.png", "image/png", png)})

Only the standard library: http.client, http.cookies, html.parser, urllib.parse.
"""
import http.client
import html
import uuid
import os
import re
import signal
import socket
import subprocess
import time
import urllib.parse
from html.parser import HTMLParser
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

    def request(self, method, path, data=None, headers=None, body=None, content_type=None):
        """`data` (a dict or a list of (name, value) pairs) is sent urlencoded;
        or `body` as given with `content_type`."""
        hdrs = {"Host": f"{self.host}:{self.port}"}
        if data is not None:
            body = urllib.parse.urlencode(data).encode("ascii")
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            hdrs["Content-Type"] = content_type
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
            self._form.options[name] = [((v if v is not None else t), t.strip()) for v, t, _ in options]
            chosen = [o for o in options if o[2]]
            if not multiple and not chosen and options:
                chosen = options[:1]  # a single select submits its first option
            if not multiple:
                chosen = chosen[-1:]
            if not skip:
                for v, t, _ in chosen:
                    self._form.fields.append((name, v if v is not None else t))
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


# ---------------------------------------------------------------- the reference app


class Gunicorn:
    """The reference project under gunicorn on a free 127.0.0.1 port."""

    def __init__(self, venv_python, refproject_dir, env, log_path):
        self.venv_python = venv_python
        self.refproject_dir = refproject_dir
        self.env = env
        self.log_path = log_path
        self.proc = None
        self.port = None
        self._log = None

    def log_text(self):
        if self.log_path.exists():
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-6000:]
        return ""

    def start(self, timeout=60):
        for _ in range(3):
            self.port = free_port()
            self._log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(
                [str(self.venv_python), "-m", "gunicorn", "config.wsgi", "--workers", "1",
                 "--bind", f"127.0.0.1:{self.port}", "--timeout", "120"],
                env=self.env, cwd=str(self.refproject_dir), stdin=subprocess.DEVNULL,
                stdout=self._log, stderr=subprocess.STDOUT,
            )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    r = Browser("127.0.0.1", self.port, timeout=10).get("/users/login/")
                except OSError:
                    time.sleep(0.2)
                    continue
                if r.status == 200:
                    return self
                raise AssertionError(f"Django's /users/login/ answered {r!r}:\n{r.text[:3000]}\n{self.log_text()}")
            self.stop()
        raise AssertionError(f"gunicorn did not come up:\n{self.log_text()}")

    def stop(self):
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self._log:
            self._log.close()
            self._log = None

    def browser(self):
        return Browser("127.0.0.1", self.port)
