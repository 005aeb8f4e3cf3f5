"""Django's session, CSRF and login-URL settings changed on both servers
(issue 11, point 3): a session, CSRF token or link made by Django under the
changed setting works on `unchained serve`, and the reverse; and both
servers write the same Set-Cookie attributes for the same action.

Per back end (SQLite, PostgreSQL, MariaDB): one database migrated by `unchained
migrate`. The settings are grouped into pairs of servers that run together
(the reference Django project under gunicorn and `unchained serve`, both
with the pair's environment): settings that do not get in each other's way
share a pair, and every cell asserts its own setting. Only one pair per back
end runs at a time; a test asks for its pair and the previous one stops.

The servers are spoken to over HTTP with live.py's Browser. One visitor is
one cookie jar (live.CookieJar, RFC 6265: Domain, Path, Max-Age/Expires)
shared by the browsers that visit both servers, as one real browser would:
cookies do not tell ports apart. In the "cookies" pair the two servers are
also reached under two host names below one domain (www.shop.localhost for
Django, api.shop.localhost for unchained, both on 127.0.0.1), so a cookie
crosses from one to the other only through the Domain attribute its server
wrote. A long-lived Django shell (the reference project's ORM, default
settings, same database and SECRET_KEY) makes users, reads and decodes
sessions, sets a session's own expiry (`set_expiry`), and says what
Django's `resolve_url` and `redirect_to_login` make of a setting.

"unchained→Django" means made on unchained, used on Django.
"""
import re
import subprocess
import time
from datetime import datetime, timezone

import pytest

from django_side import DjangoWorker
from live import (Browser, CookieJar, Gunicorn, LiveServer, ModuleDatabase, nav_email, new_email,
                  new_password, parse_form, process_env, reference_env)

SECRET_KEY = "Xq3vTb9LmZ0pR7kW2yH5sD8fJ1nC4gE6uA0oI9tB3cQ="  # conftest.TEST_SECRET_KEY
UNCHAINED, DJANGO = "unchained", "django"
U2D, D2U = "unchained→Django", "Django→unchained"
DIRECTIONS = pytest.mark.parametrize(
    "direction", [U2D, D2U], ids=["unchained-to-django", "django-to-unchained"]
)
LOGIN_PATH = "/users/login/"
LOGOUT_PATH = "/users/logout/"
PROFILE = "/users/profile/"
SIGNED_COOKIES = "django.contrib.sessions.backends.signed_cookies"
SECONDS = 5  # how far apart two clocks' "now" may be in one assertion

# Django's defaults of the settings under test (django/conf/global_settings.py)
# and the reference project's own (LOGIN_URL...).
DEFAULTS = {
    "SESSION_ENGINE": "django.contrib.sessions.backends.db",
    "SESSION_COOKIE_NAME": "sessionid",
    "SESSION_COOKIE_AGE": "1209600",
    "SESSION_COOKIE_DOMAIN": None,
    "SESSION_COOKIE_PATH": "/",
    "SESSION_COOKIE_SECURE": "False",
    "SESSION_COOKIE_HTTPONLY": "True",
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_EXPIRE_AT_BROWSER_CLOSE": "False",
    "SESSION_SAVE_EVERY_REQUEST": "False",
    "CSRF_COOKIE_NAME": "csrftoken",
    "CSRF_COOKIE_AGE": "31449600",
    "CSRF_COOKIE_DOMAIN": None,
    "CSRF_COOKIE_PATH": "/",
    "CSRF_COOKIE_SECURE": "False",
    "CSRF_COOKIE_HTTPONLY": "False",
    "CSRF_COOKIE_SAMESITE": "Lax",
    "CSRF_HEADER_NAME": "HTTP_X_CSRFTOKEN",
    "CSRF_USE_SESSIONS": "False",
    "LOGIN_URL": "/users/login/",
    "LOGIN_REDIRECT_URL": "/",
    "LOGOUT_REDIRECT_URL": "/",
}

# The pairs: each one's changed settings (the rest are the defaults).
PAIRS = {
    # Every attribute of both cookies changed at once, the CSRF header, and
    # links given as a path with a query and as URL names.
    "cookies": {
        "SESSION_COOKIE_NAME": "shopsession",
        "SESSION_COOKIE_AGE": "3600",
        "SESSION_COOKIE_DOMAIN": ".shop.localhost",
        "SESSION_COOKIE_PATH": "/users/",
        "SESSION_COOKIE_HTTPONLY": "False",
        "SESSION_COOKIE_SAMESITE": "Strict",
        "CSRF_COOKIE_NAME": "shopcsrf",
        "CSRF_COOKIE_AGE": "7200",
        "CSRF_COOKIE_DOMAIN": ".shop.localhost",
        "CSRF_COOKIE_PATH": "/users/",
        "CSRF_COOKIE_HTTPONLY": "True",
        "CSRF_COOKIE_SAMESITE": "Strict",
        "CSRF_HEADER_NAME": "HTTP_X_MY_CSRF",
        "LOGIN_URL": "/users/login/?from=shop",
        "LOGIN_REDIRECT_URL": "users:profile",
        "LOGOUT_REDIRECT_URL": "catalog:contacts",
    },
    # Cookies for the browser session, SameSite=None (with Secure, as
    # browsers want it) and no SameSite at all; links as in Django's docs.
    "browser-close": {
        "SESSION_EXPIRE_AT_BROWSER_CLOSE": "True",
        "SESSION_COOKIE_SAMESITE": "None",
        "SESSION_COOKIE_SECURE": "True",
        "CSRF_COOKIE_AGE": "None",
        "CSRF_COOKIE_SAMESITE": "False",
        "LOGIN_URL": "users:login",
        "LOGIN_REDIRECT_URL": "/users/profile/",
        "LOGOUT_REDIRECT_URL": "/users/login/",
    },
    # Also a LOGIN_URL on another site (a single sign-on page): `next` is
    # then this site's absolute URL.
    "save-every-request": {
        "SESSION_SAVE_EVERY_REQUEST": "True",
        "LOGIN_URL": "https://accounts.shop.test/login/?app=shop",
    },
    "csrf-sessions": {
        "CSRF_USE_SESSIONS": "True",
    },
    "signed-cookies": {
        "SESSION_ENGINE": SIGNED_COOKIES,
        "SESSION_COOKIE_AGE": "3600",
    },
}

# The "cookies" pair is reached by host names under the cookies' domain.
SHOP_HOSTS = {DJANGO: "www.shop.localhost", UNCHAINED: "api.shop.localhost"}
ALLOWED_HOSTS = "127.0.0.1,localhost," + ",".join(SHOP_HOSTS.values())


def sides(direction):
    """(where it is made, where it is used)."""
    return (UNCHAINED, DJANGO) if direction == U2D else (DJANGO, UNCHAINED)


# ---------------------------------------------------------------- Django's ORM, out of process

DJANGO_OPS = r'''
import time
from unittest import mock

from django.contrib.auth.views import redirect_to_login
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.backends.signed_cookies import SessionStore as SignedSessionStore
from django.contrib.sessions.models import Session
from django.core import signing
from django.contrib.sessions.serializers import JSONSerializer
from django.shortcuts import resolve_url
from django.utils import timezone
from datetime import timedelta
from users.models import User

SIGNED_SALT = "django.contrib.sessions.backends.signed_cookies"


def op_create_user(email, password):
    return User.objects.create_user(email=email, password=password, is_active=True).pk


def op_set_password(email, password):
    u = User.objects.get(email=email)
    u.set_password(password)
    u.save()


def op_session(key):
    """The django_session row of that key, decoded; None without one."""
    row = Session.objects.filter(session_key=key).first()
    if row is None:
        return None
    return {"data": SessionStore().decode(row.session_data), "expire_date": row.expire_date.isoformat()}


def op_session_count():
    return Session.objects.count()


def op_set_expiry(key, seconds=None, in_seconds_as_datetime=None):
    """request.session.set_expiry(...) on a stored session: an int of
    seconds, or a datetime that many seconds from now."""
    s = SessionStore(session_key=key)
    assert s.exists(key), key
    s.load()
    if in_seconds_as_datetime is not None:
        s.set_expiry(timezone.now() + timedelta(seconds=in_seconds_as_datetime))
    else:
        s.set_expiry(seconds)
    s.save()
    return s["_session_expiry"]


def op_resolve_url(to):
    return resolve_url(to)


def op_login_redirect(login_url, next):
    """Where LoginRequiredMixin sends an anonymous visitor of `next` (a path
    on this site) when LOGIN_URL is `login_url`."""
    return redirect_to_login(next, resolve_url(login_url))["Location"]


def op_signed_loads(value, max_age):
    try:
        return signing.loads(value, salt=SIGNED_SALT, serializer=JSONSerializer, max_age=max_age)
    except signing.BadSignature as e:
        return {"bad signature": str(e)}


def op_signed_session(email, age):
    """A signed-cookie session of the logged-in user, signed `age` seconds ago."""
    user = User.objects.get(email=email)
    store = SignedSessionStore()
    store.update({"_auth_user_id": str(user.pk),
                  "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
                  "_auth_user_hash": user.get_session_auth_hash()})
    with mock.patch("time.time", return_value=time.time() - age):
        store.save()
    return store.session_key
'''


# ---------------------------------------------------------------- the servers


class Pair:
    """Django and unchained with one pair's settings on the back end's database."""

    def __init__(self, site, name):
        self.site = site
        self.name = name
        self.env = PAIRS[name]
        self.hostnames = SHOP_HOSTS if name == "cookies" else {DJANGO: "127.0.0.1", UNCHAINED: "127.0.0.1"}
        self.servers = {}

    def setting(self, name):
        return self.env.get(name, DEFAULTS[name])

    @property
    def session_cookie(self):
        return self.setting("SESSION_COOKIE_NAME")

    @property
    def csrf_cookie(self):
        return self.setting("CSRF_COOKIE_NAME")

    def start(self):
        site, common = self.site, {"ALLOWED_HOSTS": ALLOWED_HOSTS, "DEBUG": "0", **self.env}
        self.servers[DJANGO] = Gunicorn(
            site.venv_python, site.refproject_dir, site.url, SECRET_KEY,
            env={**common, "EMAIL_BACKEND": "locmem"},
            log_path=site.workdir / f"gunicorn-{self.name}.log").start()
        self.servers[UNCHAINED] = LiveServer(
            site.unchained_bin, site.url, SECRET_KEY, env={**common, "EMAIL_BACKEND": "console"},
            log_path=site.workdir / f"serve-{self.name}.log").start()
        return self

    def stop(self):
        for side in (UNCHAINED, DJANGO):
            server = self.servers.pop(side, None)
            if server:
                server.stop()

    def visitor(self):
        return Visitor(self)

    def logs(self):
        return "\n".join(f"--- {side} log ---\n{server.log_text()}" for side, server in self.servers.items())


class Visitor:
    """One browser (one cookie jar) visiting both servers of a pair."""

    def __init__(self, pair, jar=None):
        self.pair = pair
        self.jar = jar if jar is not None else CookieJar()

    def on(self, side):
        server = self.pair.servers[side]
        return Browser(server.host, server.port, hostname=self.pair.hostnames[side], jar=self.jar)

    def get(self, side, path, **kw):
        return self.on(side).get(path, **kw)

    def post(self, side, path, data, **kw):
        return self.on(side).post(path, data, **kw)

    def copy(self):
        """Another browser holding a copy of this one's cookies (a cookie stolen, or kept)."""
        return Visitor(self.pair, self.jar.copy())


class Site:
    def __init__(self, backend, url, workdir, unchained_bin, venv_python, refproject_dir, db):
        self.backend = backend
        self.url = url
        self.workdir = workdir
        self.unchained_bin = unchained_bin
        self.venv_python = venv_python
        self.refproject_dir = refproject_dir
        self.db = db
        self.shell = None
        self.current = None

    def pair(self, name):
        """The pair `name`, running; the pair running before stops first."""
        if self.current is not None and self.current.name != name:
            self.current.stop()
            self.current = None
        if self.current is None:
            pair = Pair(self, name)
            try:
                pair.start()
            except BaseException:
                pair.stop()  # the server that did start
                raise
            self.current = pair
        return self.current

    def stop(self):
        if self.current is not None:
            self.current.stop()
            self.current = None


@pytest.fixture
def site(db_backend, _sites, request, run_unchained, unchained_bin, venv_python, refproject_dir,
         tmp_path_factory):
    """The back end's database (migrated by `unchained migrate`) and the Django shell on it;
    made once per module. The pairs of servers start on demand (Site.pair)."""

    def build(cleanup):
        workdir = tmp_path_factory.mktemp(f"settings-interop-{db_backend}")
        database = ModuleDatabase(request, db_backend, workdir, "settings")
        cleanup.callback(database.drop)
        run_unchained(database.url, "migrate")
        site = Site(db_backend, database.url, workdir, unchained_bin, venv_python, refproject_dir, database.db)
        cleanup.callback(site.stop)
        env = reference_env(database.url, SECRET_KEY, {"ALLOWED_HOSTS": ALLOWED_HOSTS, "DEBUG": "0",
                                                       "EMAIL_BACKEND": "locmem"})
        site.shell = DjangoWorker(venv_python, refproject_dir, env, workdir, DJANGO_OPS)
        cleanup.callback(site.shell.close)
        site.shell.call("session_count")  # fails fast when Django cannot start
        return site

    return _sites.get(db_backend, build)


def pair_fixture(name):
    @pytest.fixture
    def fixture(site):
        return site.pair(name)

    return fixture


cookies_pair = pair_fixture("cookies")
browser_close_pair = pair_fixture("browser-close")
save_every_request_pair = pair_fixture("save-every-request")
csrf_sessions_pair = pair_fixture("csrf-sessions")
signed_pair = pair_fixture("signed-cookies")


# ---------------------------------------------------------------- helpers


def new_user(site, tag):
    address, password = new_email(tag), new_password()
    site.shell.call("create_user", email=address, password=password)
    return address, password


def login_page(visitor, side, query=""):
    page = visitor.get(side, LOGIN_PATH + query)
    assert page.status == 200, f"{side} GET {LOGIN_PATH}{query}: {page!r}\n{page.text[:1500]}"
    return page


def login(visitor, side, email, password, page_side=None, query="", expect_location=None):
    """Logs in as a browser does: the login page of `page_side` (default:
    `side`), its form posted to `side`. Returns (page, POST response)."""
    page = login_page(visitor, page_side or side, query)
    form = parse_form(page.text, action=LOGIN_PATH)
    form.set("username", email).set("password", password)
    r = visitor.on(side).submit(form, page_path=LOGIN_PATH)
    assert r.status == 302, (
        f"login of {email} on {side} (form of {page_side or side}) answered {r!r}\n{r.text[:2000]}\n"
        f"{visitor.pair.logs()}")
    if expect_location is not None:
        assert r.location == expect_location, f"login on {side} went to {r.location!r}, not {expect_location!r}"
    return page, r


def logged_in_as(visitor, side, path=PROFILE):
    """The e-mail the page shows as logged in, or None (redirected to log in)."""
    r = visitor.get(side, path)
    if r.status == 302:
        return None
    assert r.status == 200, f"{side} GET {path}: {r!r}\n{r.text[:1500]}"
    return nav_email(r.text)


def assert_logged_in(visitor, side, email, where):
    seen = logged_in_as(visitor, side)
    assert seen == email, f"{where}: {side}'s {PROFILE} shows {seen!r}, not {email!r}\n{visitor.pair.logs()}"


def assert_anonymous(visitor, side, where):
    seen = logged_in_as(visitor, side)
    assert seen is None, f"{where}: {side} still shows {seen!r} logged in"


def the_cookie(response, name, where):
    """The one Set-Cookie of that cookie name in a response."""
    found = response.set_cookie_headers(name)
    assert len(found) == 1, (
        f"{where}: expected one Set-Cookie for {name}, got {[c.header for c in response.set_cookie_headers()]}")
    return found[0]


def no_cookie(response, name, where):
    found = response.set_cookie_headers(name)
    assert not found, f"{where}: unexpected Set-Cookie {[c.header for c in found]}"


def http_time(value):
    from email.utils import parsedate_to_datetime

    return parsedate_to_datetime(value).timestamp()


def attributes(cookie):
    """A Set-Cookie's attributes as written, for comparing two servers': the
    expires date (the one part that depends on the clock) is kept apart."""
    listed = sorted((k, v) for k, v in cookie.attrs if k.lower() != "expires")
    expires = [(k, v) for k, v in cookie.attrs if k.lower() == "expires"]
    return listed, expires


def assert_same_attributes(a, b, where, only=None):
    """Two servers' Set-Cookie for the same action carry the same attributes,
    byte for byte (the expires date within SECONDS); `only`: just these
    attributes (lowercase names)."""
    (la, ea), (lb, eb) = attributes(a), attributes(b)
    if only is not None:
        la = [(k, v) for k, v in la if k.lower() in only]
        lb = [(k, v) for k, v in lb if k.lower() in only]
    assert la == lb, f"{where}: the attributes differ:\n  {a.header}\n  {b.header}"
    if only is None or "expires" in only:
        assert [k for k, _ in ea] == [k for k, _ in eb], f"{where}: expires differs:\n  {a.header}\n  {b.header}"
        if ea and eb and ea[0][1] != eb[0][1]:
            if "1970" in ea[0][1] or "1970" in eb[0][1]:
                assert ea[0][1] == eb[0][1], f"{where}: the deletion dates differ:\n  {a.header}\n  {b.header}"
            gap = abs(http_time(ea[0][1]) - http_time(eb[0][1]))
            assert gap <= SECONDS, f"{where}: the expires dates are {gap}s apart:\n  {a.header}\n  {b.header}"


def utc(value):
    """A django_session.expire_date as read by live.Database (text on SQLite) or the shell (ISO)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace(" ", "T"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def expire_date(site, key):
    rows = site.db.rows("SELECT expire_date FROM django_session WHERE session_key = %s", key)
    assert len(rows) == 1, f"no django_session row for the session key {key!r}"
    return utc(rows[0][0]).timestamp()


def assert_made_during(value, response, offset, where):
    """`value` (a time) is the server's "now" plus `offset` seconds, the
    server's now being read while it made `response` (whole seconds in a
    cookie's expires: a second of slack each way)."""
    low, high = response.sent_at + offset - 1, response.received_at + offset + 1
    assert low <= value <= high, (
        f"{where}: {value:.1f} is not now + {offset}s for the response ({low:.1f} to {high:.1f})")


def assert_near(value, expected, where, seconds=SECONDS):
    assert abs(value - expected) <= seconds, f"{where}: {value} is {value - expected:+.1f}s from {expected}"


def both_logins(pair, tag):
    """A user logged in on each server by a visitor of its own: {side: (visitor, login response)}."""
    address, password = new_user(pair.site, tag)
    out = {}
    for side in (DJANGO, UNCHAINED):
        visitor = pair.visitor()
        _, r = login(visitor, side, address, password)
        out[side] = (visitor, r)
    return address, password, out


# ================================================================ links (LOGIN_URL...), checked in two pairs


def check_login_url(pair, direction):
    """An anonymous visit of closed pages redirects to LOGIN_URL (resolved
    and with `next` merged into its query, as Django's redirect_to_login
    does) alike on both; src's redirect followed on dst shows the login
    form, which logs in and goes back to `next`."""
    site = pair.site
    src, dst = sides(direction)
    address, password = new_user(site, "loginurl")
    for closed in (PROFILE, "/products/create/", "/"):
        expected = site.shell.call("login_redirect", login_url=pair.setting("LOGIN_URL"), next=closed)
        for side in (src, dst):
            r = pair.visitor().get(side, closed)
            assert r.status == 302 and r.location == expected, (
                f"{side}: the anonymous GET {closed} answered {r!r}, Django's redirect_to_login makes {expected!r}")
    visitor = pair.visitor()
    location = visitor.get(src, PROFILE).location
    page = visitor.get(dst, location)
    assert page.status == 200, f"{dst} GET {location} (from {src}): {page!r}"
    form = parse_form(page.text, action=LOGIN_PATH)
    assert form.get("next") == PROFILE, f"{dst}'s login form from {location} has next={form.get('next')!r}"
    form.set("username", address).set("password", password)
    r = visitor.on(dst).submit(form, page_path=LOGIN_PATH)
    assert r.status == 302 and r.location == PROFILE, f"{dst}: the login with next answered {r!r}"


def check_redirect_urls(pair, direction):
    """The login without `next` goes to LOGIN_REDIRECT_URL, the logout to
    LOGOUT_REDIRECT_URL (each as Django's resolve_url makes it), alike on
    both; the session made on src is used on dst through that link."""
    site = pair.site
    src, dst = sides(direction)
    address, password = new_user(site, "redirect")
    after_login = site.shell.call("resolve_url", to=pair.setting("LOGIN_REDIRECT_URL"))
    after_logout = site.shell.call("resolve_url", to=pair.setting("LOGOUT_REDIRECT_URL"))
    assert after_login != "/" and after_logout != "/", "the pair does not change the redirects"
    visitor = pair.visitor()
    _, r = login(visitor, src, address, password, expect_location=after_login)
    r = visitor.get(dst, r.location)
    assert r.status == 200 and nav_email(r.text) == address, (
        f"{dst} GET {after_login} after logging in on {src}: {r!r}, shows {nav_email(r.text)!r}")
    page = visitor.get(dst, PROFILE)
    r = visitor.on(dst).submit(parse_form(page.text, action=LOGOUT_PATH), page_path=PROFILE)
    assert r.status == 302 and r.location == after_logout, f"{dst}: the logout answered {r!r}, not {after_logout}"
    r = visitor.get(src, r.location)
    assert r.status == 200, f"{src} GET {after_logout} after the logout on {dst}: {r!r}"
    # And the same login and logout on dst alone go to the same places.
    other = pair.visitor()
    login(other, dst, address, password, expect_location=after_login)
    page = other.get(dst, PROFILE)
    r = other.on(dst).submit(parse_form(page.text, action=LOGOUT_PATH), page_path=PROFILE)
    assert r.location == after_logout, f"{dst}: the logout answered {r!r}"


# ================================================================ the "cookies" pair: the session cookie


def _session_name(pair, cookies, responses):
    for side, cookie in cookies.items():
        assert cookie.name == pair.setting("SESSION_COOKIE_NAME") != "sessionid", f"{side}: {cookie.header}"


def _session_age(pair, cookies, responses):
    age = int(pair.setting("SESSION_COOKIE_AGE"))
    for side, cookie in cookies.items():
        assert cookie.attr("max-age") == str(age), f"{side}: {cookie.header}"
        assert_made_during(http_time(cookie.attr("expires")), responses[side], age, f"{side}'s expires")
        assert_made_during(expire_date(pair.site, cookie.value), responses[side], age,
                           f"django_session.expire_date of the session {side} made")


def _session_domain(pair, cookies, responses):
    for side, cookie in cookies.items():
        assert cookie.attr("domain") == pair.setting("SESSION_COOKIE_DOMAIN"), f"{side}: {cookie.header}"


def _session_path(pair, cookies, responses):
    for side, cookie in cookies.items():
        assert cookie.attr("path") == pair.setting("SESSION_COOKIE_PATH"), f"{side}: {cookie.header}"


def _session_httponly(pair, cookies, responses):
    for side, cookie in cookies.items():
        assert not cookie.has("httponly"), f"{side} sent HttpOnly under SESSION_COOKIE_HTTPONLY=False: {cookie.header}"


def _session_samesite(pair, cookies, responses):
    for side, cookie in cookies.items():
        assert cookie.attr("samesite") == pair.setting("SESSION_COOKIE_SAMESITE"), f"{side}: {cookie.header}"


SESSION_COOKIE_CASES = [
    pytest.param(_session_name, None, marks=pytest.mark.matrix("SESSION_COOKIE_NAME=shopsession"), id="name"),
    pytest.param(_session_age, {"max-age"}, marks=pytest.mark.matrix("SESSION_COOKIE_AGE=3600"), id="age"),
    pytest.param(_session_domain, {"domain"},
                 marks=pytest.mark.matrix("SESSION_COOKIE_DOMAIN=.shop.localhost"), id="domain"),
    pytest.param(_session_path, {"path"}, marks=pytest.mark.matrix("SESSION_COOKIE_PATH=/users/"), id="path"),
    pytest.param(_session_httponly, {"httponly"},
                 marks=pytest.mark.matrix("SESSION_COOKIE_HTTPONLY=False"), id="httponly"),
    pytest.param(_session_samesite, {"samesite"},
                 marks=pytest.mark.matrix("SESSION_COOKIE_SAMESITE=Strict"), id="samesite"),
]


@pytest.mark.parametrize("check, compared", SESSION_COOKIE_CASES)
@DIRECTIONS
def test_session_cookie_setting(cookies_pair, direction, check, compared):
    """The login's session cookie carries the setting on both servers (the
    setting's attributes byte for byte alike), and the session made on one
    is honoured by the other, reached under another host name."""
    pair = cookies_pair
    src, dst = sides(direction)
    address, password = new_user(pair.site, "cookie")
    made = pair.visitor()
    _, r_src = login(made, src, address, password)
    other = pair.visitor()
    _, r_dst = login(other, dst, address, password)
    cookies = {src: the_cookie(r_src, pair.session_cookie, f"login on {src}"),
               dst: the_cookie(r_dst, pair.session_cookie, f"login on {dst}")}
    key = cookies[src].value
    for side, r in ((src, r_src), (dst, r_dst)):
        no_cookie(r, "sessionid", f"login on {side} under SESSION_COOKIE_NAME=shopsession")
    # Made on src (www.shop.localhost), used on dst (api.shop.localhost).
    r = made.get(dst, PROFILE)
    assert r.status == 200 and nav_email(r.text) == address, (
        f"the session made on {src}, used on {dst}: {r!r}, shows {nav_email(r.text)!r}\n{pair.logs()}")
    if compared:
        assert_same_attributes(cookies[src], cookies[dst], f"the login's session cookie, {src} vs {dst}",
                               only=compared)
    check(pair, cookies, {src: r_src, dst: r_dst})
    if check is _session_age:
        # Not re-saved by a plain GET (SESSION_SAVE_EVERY_REQUEST is False):
        # no cookie, the row's end unchanged.
        no_cookie(r, pair.session_cookie, f"{dst}'s plain GET of {src}'s session")
        assert_near(expire_date(pair.site, key), http_time(cookies[src].attr("expires")),
                    f"expire_date of {src}'s session after {dst}'s GET")
    if check is _session_name:
        # Control: the same key under Django's default name is nobody's.
        stray = Visitor(pair)
        stray.on(dst).cookies["sessionid"] = cookies[src].value
        assert_anonymous(stray, dst, f"{src}'s session key sent as sessionid")


@pytest.mark.matrix("session cookie deleted on logout (Domain, Path)")
@DIRECTIONS
def test_logout_deletes_the_session_cookie_with_its_domain_and_path(cookies_pair, direction):
    """Logout on dst of a session made on src: both servers' deleting
    Set-Cookie alike (with the cookie's Domain and Path, or a browser would
    keep it), the visitor anonymous on both, a kept copy dead on both."""
    pair = cookies_pair
    src, dst = sides(direction)
    address, password, logins = both_logins(pair, "logout")
    deletions = {}
    for side in (DJANGO, UNCHAINED):
        visitor = logins[side][0]
        page = visitor.get(side, PROFILE)
        assert page.status == 200, f"{side} {PROFILE}: {page!r}"
        r = visitor.on(side).submit(parse_form(page.text, action=LOGOUT_PATH), page_path=PROFILE)
        assert r.status == 302, f"logout on {side}: {r!r}\n{r.text[:1500]}"
        deletions[side] = the_cookie(r, pair.session_cookie, f"logout on {side}")
        assert pair.session_cookie not in visitor.jar, (
            f"the jar kept the session cookie after {side}'s deletion {deletions[side].header}: {visitor.jar}")

    made = pair.visitor()
    login(made, src, address, password)
    kept = made.copy()
    page = made.get(dst, PROFILE)
    r = made.on(dst).submit(parse_form(page.text, action=LOGOUT_PATH), page_path=PROFILE)
    assert r.status == 302, f"logout on {dst}: {r!r}"
    for side in (src, dst):
        assert_anonymous(made, side, f"after logout on {dst}")
        assert_anonymous(kept, side, f"a copy of {src}'s session kept from before the logout on {dst}")

    assert_same_attributes(deletions[src], deletions[dst], f"logout's deleting Set-Cookie, {src} vs {dst}")
    assert (deletions[dst].attr("path"), deletions[dst].attr("domain")) == (
        pair.setting("SESSION_COOKIE_PATH"), pair.setting("SESSION_COOKIE_DOMAIN")), deletions[dst].header


# ================================================================ the "cookies" pair: the CSRF cookie


def _csrf_name(pair, cookies, responses):
    for side, cookie in cookies.items():
        assert cookie.name == pair.setting("CSRF_COOKIE_NAME") != "csrftoken", f"{side}: {cookie.header}"


def _csrf_age(pair, cookies, responses):
    age = int(pair.setting("CSRF_COOKIE_AGE"))
    for side, cookie in cookies.items():
        assert cookie.attr("max-age") == str(age), f"{side}: {cookie.header}"
        assert_made_during(http_time(cookie.attr("expires")), responses[side], age, f"{side}'s expires")


def _csrf_domain(pair, cookies, responses):
    for side, cookie in cookies.items():
        assert cookie.attr("domain") == pair.setting("CSRF_COOKIE_DOMAIN"), f"{side}: {cookie.header}"


def _csrf_path(pair, cookies, responses):
    for side, cookie in cookies.items():
        assert cookie.attr("path") == pair.setting("CSRF_COOKIE_PATH"), f"{side}: {cookie.header}"


def _csrf_httponly(pair, cookies, responses):
    for side, cookie in cookies.items():
        assert cookie.has("httponly"), f"{side}: no HttpOnly under CSRF_COOKIE_HTTPONLY=True: {cookie.header}"


def _csrf_samesite(pair, cookies, responses):
    for side, cookie in cookies.items():
        assert cookie.attr("samesite") == pair.setting("CSRF_COOKIE_SAMESITE"), f"{side}: {cookie.header}"


CSRF_COOKIE_CASES = [
    pytest.param(_csrf_name, None, marks=pytest.mark.matrix("CSRF_COOKIE_NAME=shopcsrf"), id="name"),
    pytest.param(_csrf_age, {"max-age"}, marks=pytest.mark.matrix("CSRF_COOKIE_AGE=7200"), id="age"),
    pytest.param(_csrf_domain, {"domain"}, marks=pytest.mark.matrix("CSRF_COOKIE_DOMAIN=.shop.localhost"),
                 id="domain"),
    pytest.param(_csrf_path, {"path"}, marks=pytest.mark.matrix("CSRF_COOKIE_PATH=/users/"), id="path"),
    pytest.param(_csrf_httponly, {"httponly"}, marks=pytest.mark.matrix("CSRF_COOKIE_HTTPONLY=True"),
                 id="httponly"),
    pytest.param(_csrf_samesite, {"samesite"}, marks=pytest.mark.matrix("CSRF_COOKIE_SAMESITE=Strict"),
                 id="samesite"),
]


@pytest.mark.parametrize("check, compared", CSRF_COOKIE_CASES)
@DIRECTIONS
def test_csrf_cookie_setting(cookies_pair, direction, check, compared):
    """The login page's CSRF cookie carries the setting on both servers
    (alike), and the form token of src's page, with src's cookie, logs in
    on dst."""
    pair = cookies_pair
    src, dst = sides(direction)
    address, password = new_user(pair.site, "csrf")
    visitor = pair.visitor()
    pages = {side: login_page(pair.visitor(), side) for side in (src, dst)}
    cookies = {side: the_cookie(pages[side], pair.csrf_cookie, f"{side}'s login page") for side in (src, dst)}
    for side in (src, dst):
        no_cookie(pages[side], "csrftoken", f"{side}'s login page under CSRF_COOKIE_NAME=shopcsrf")
    # src's page and cookie, dst's check.
    page, r = login(visitor, dst, address, password, page_side=src)
    assert pair.session_cookie in visitor.jar, f"the login on {dst} with {src}'s token set no session cookie"
    if compared:
        assert_same_attributes(cookies[src], cookies[dst], f"the login page's CSRF cookie, {src} vs {dst}",
                               only=compared)
    check(pair, cookies, pages)
    if check is _csrf_name:
        # Control: the same secret under Django's default name does not pass.
        stray = Visitor(pair)
        stray.on(dst).cookies["csrftoken"] = cookies[src].value
        form = parse_form(page.text, action=LOGIN_PATH)
        form.set("username", address).set("password", password)
        r = stray.on(dst).submit(form, page_path=LOGIN_PATH)
        assert r.status == 403, f"{dst} accepted {src}'s token with its secret in a cookie named csrftoken: {r!r}"


@pytest.mark.matrix("CSRF_HEADER_NAME=HTTP_X_MY_CSRF")
@DIRECTIONS
def test_csrf_header_name(cookies_pair, direction):
    """A POST with its token only in the X-My-Csrf header (src's page and
    cookie) is accepted by dst, for the login form and the logout; the
    default X-CSRFToken header is refused (403), and the token is the one
    that decides (another visitor's is refused)."""
    pair = cookies_pair
    src, dst = sides(direction)
    address, password = new_user(pair.site, "header")
    visitor = pair.visitor()
    page = login_page(visitor, src)
    form = parse_form(page.text, action=LOGIN_PATH)
    token = form.get("csrfmiddlewaretoken")
    form.set("username", address).set("password", password).remove("csrfmiddlewaretoken")
    foreign = parse_form(login_page(pair.visitor(), src).text, action=LOGIN_PATH).get("csrfmiddlewaretoken")

    for header, value in (("X-CSRFToken", token), ("X-My-Csrf", foreign)):
        r = visitor.on(dst).submit(form, page_path=LOGIN_PATH, headers={header: value})
        assert r.status == 403, f"{dst} accepted a login with {header}: {value}: {r!r}"
        assert pair.session_cookie not in visitor.jar
    r = visitor.on(dst).submit(form, page_path=LOGIN_PATH, headers={"X-My-Csrf": token})
    assert r.status == 302, f"{dst} refused the login with the token in X-My-Csrf: {r!r}\n{r.text[:1500]}"
    assert_logged_in(visitor, src, address, f"logged in on {dst} with a header token")

    # The logout: a POST with no body but the header, the token from dst's page.
    page = visitor.get(dst, PROFILE)
    token = parse_form(page.text, action=LOGOUT_PATH).get("csrfmiddlewaretoken")
    r = visitor.post(src, LOGOUT_PATH, {}, headers={"X-CSRFToken": token})
    assert r.status == 403, f"{src} accepted a logout with the token in X-CSRFToken: {r!r}"
    r = visitor.post(src, LOGOUT_PATH, {}, headers={"X-My-Csrf": token})
    assert r.status == 302, f"{src} refused the logout with the token in X-My-Csrf: {r!r}\n{r.text[:1500]}"
    assert_anonymous(visitor, dst, f"after the header-token logout on {src}")


# ---------------------------------------------------------------- the "cookies" pair: every attribute, the links


def _actions(pair, side, address, password):
    """The Set-Cookie headers of a visit: the login page, the login, the
    profile page, the logout. {(action, cookie name): SetCookie}."""
    visitor = pair.visitor()
    out = {}

    def keep(action, r):
        for cookie in r.set_cookie_headers():
            if cookie.name in (pair.session_cookie, pair.csrf_cookie):
                assert (action, cookie.name) not in out, f"{side} set {cookie.name} twice on {action}"
                out[(action, cookie.name)] = cookie

    page, r = login(visitor, side, address, password)
    keep("login page", page)
    keep("login", r)
    page = visitor.get(side, PROFILE)
    keep("profile", page)
    r = visitor.on(side).submit(parse_form(page.text, action=LOGOUT_PATH), page_path=PROFILE)
    assert r.status == 302, f"logout on {side}: {r!r}"
    keep("logout", r)
    return out


def check_every_set_cookie_alike(pair):
    """The same visit on each server (login page, login, profile, logout)
    sets the same cookies with the same attributes, byte for byte."""
    address, password = new_user(pair.site, "attrs")
    seen = {side: _actions(pair, side, address, password) for side in (DJANGO, UNCHAINED)}
    assert sorted(seen[DJANGO]) == sorted(seen[UNCHAINED]), (
        f"the cookies set differ: Django {sorted(seen[DJANGO])}, unchained {sorted(seen[UNCHAINED])}")
    differences = []
    for key, cookie in seen[DJANGO].items():
        theirs = seen[UNCHAINED][key]
        try:
            assert_same_attributes(cookie, theirs, f"{key[1]} on {key[0]}, Django vs unchained")
        except AssertionError as e:
            differences.append(str(e).split("\nassert")[0])
        if cookie.attr("max-age") == "0" and cookie.value != theirs.value:
            differences.append(f"{key[1]} on {key[0]}: the deleting cookie's value differs:\n"
                               f"  {cookie.header}\n  {theirs.header}")
    assert not differences, "\n".join(differences)


@pytest.mark.matrix("every Set-Cookie attribute alike (cookies pair)", "-")
def test_every_set_cookie_alike_cookies_pair(cookies_pair):
    check_every_set_cookie_alike(cookies_pair)


@pytest.mark.matrix(f"LOGIN_URL={PAIRS['cookies']['LOGIN_URL']}")
@DIRECTIONS
def test_login_url_cookies_pair(cookies_pair, direction):
    check_login_url(cookies_pair, direction)


@pytest.mark.matrix(f"LOGIN_REDIRECT_URL={PAIRS['cookies']['LOGIN_REDIRECT_URL']}, "
                    f"LOGOUT_REDIRECT_URL={PAIRS['cookies']['LOGOUT_REDIRECT_URL']}")
@DIRECTIONS
def test_redirect_urls_cookies_pair(cookies_pair, direction):
    check_redirect_urls(cookies_pair, direction)


# ================================================================ the "browser-close" pair


@pytest.mark.matrix("SESSION_EXPIRE_AT_BROWSER_CLOSE=True")
@DIRECTIONS
def test_expire_at_browser_close(browser_close_pair, direction):
    pair = browser_close_pair
    src, dst = sides(direction)
    address, password, logins = both_logins(pair, "close")
    for side, (_, r) in logins.items():
        cookie = the_cookie(r, pair.session_cookie, f"login on {side}")
        assert not cookie.has("max-age") and not cookie.has("expires"), (
            f"{side}'s session cookie outlives the browser: {cookie.header}")
        # The row still ends SESSION_COOKIE_AGE from now (get_expiry_date).
        assert_made_during(expire_date(pair.site, cookie.value), r, int(pair.setting("SESSION_COOKIE_AGE")),
                           f"the expire_date of the session {side} made")
    made = logins[src][0]
    assert_logged_in(made, dst, address, f"the session made on {src}, used on {dst}")
    made.jar.end_session()
    for side in (src, dst):
        assert_anonymous(made, side, "after the browser closed")


@pytest.mark.matrix("SESSION_COOKIE_SAMESITE=None (Secure)")
@DIRECTIONS
def test_session_samesite_none(browser_close_pair, direction):
    pair = browser_close_pair
    src, dst = sides(direction)
    address, _, logins = both_logins(pair, "samesite")
    cookies = {side: the_cookie(r, pair.session_cookie, f"login on {side}") for side, (_, r) in logins.items()}
    assert_same_attributes(cookies[src], cookies[dst], "the session cookie", only={"samesite", "secure"})
    assert cookies[src].attr("samesite") == "None" and cookies[src].has("secure"), cookies[src].header
    assert_logged_in(logins[src][0], dst, address, f"the session made on {src}, used on {dst}")


def _csrf_crosses(pair, src, dst, tag):
    """The CSRF cookies of both servers' login pages, and src's page and
    cookie logging in on dst."""
    address, password = new_user(pair.site, tag)
    pages = {side: login_page(pair.visitor(), side) for side in (src, dst)}
    cookies = {side: the_cookie(pages[side], pair.csrf_cookie, f"{side}'s login page") for side in (src, dst)}
    visitor = pair.visitor()
    login(visitor, dst, address, password, page_side=src)
    return cookies


@pytest.mark.matrix("CSRF_COOKIE_AGE=None")
@DIRECTIONS
def test_csrf_cookie_for_the_browser_session(browser_close_pair, direction):
    pair = browser_close_pair
    src, dst = sides(direction)
    cookies = _csrf_crosses(pair, src, dst, "csrfage")
    for side, cookie in cookies.items():
        assert not cookie.has("max-age") and not cookie.has("expires"), f"{side}: {cookie.header}"


@pytest.mark.matrix("CSRF_COOKIE_SAMESITE=False")
@DIRECTIONS
def test_csrf_cookie_without_samesite(browser_close_pair, direction):
    pair = browser_close_pair
    src, dst = sides(direction)
    cookies = _csrf_crosses(pair, src, dst, "csrfsite")
    for side, cookie in cookies.items():
        assert not cookie.has("samesite"), f"{side} wrote SameSite under CSRF_COOKIE_SAMESITE=False: {cookie.header}"


# ---------------------------------------------------------------- the "browser-close" pair: every attribute, the links


@pytest.mark.matrix("every Set-Cookie attribute alike (browser-close pair)", "-")
def test_every_set_cookie_alike_browser_close_pair(browser_close_pair):
    check_every_set_cookie_alike(browser_close_pair)


@pytest.mark.matrix(f"LOGIN_URL={PAIRS['browser-close']['LOGIN_URL']}")
@DIRECTIONS
def test_login_url_browser_close_pair(browser_close_pair, direction):
    check_login_url(browser_close_pair, direction)


@pytest.mark.matrix(f"LOGIN_REDIRECT_URL={PAIRS['browser-close']['LOGIN_REDIRECT_URL']}, "
                    f"LOGOUT_REDIRECT_URL={PAIRS['browser-close']['LOGOUT_REDIRECT_URL']}")
@DIRECTIONS
def test_redirect_urls_browser_close_pair(browser_close_pair, direction):
    check_redirect_urls(browser_close_pair, direction)


# ================================================================ the "save-every-request" pair


def session_key(visitor, pair, where):
    key = visitor.jar.get(pair.session_cookie)
    assert key, f"{where}: no {pair.session_cookie} cookie in {visitor.jar}"
    return key


@pytest.mark.matrix("SESSION_SAVE_EVERY_REQUEST=True")
@DIRECTIONS
def test_save_every_request(save_every_request_pair, direction):
    """An ordinary GET re-sends the session cookie (same key, a full
    SESSION_COOKIE_AGE again) and moves expire_date on, on both; an
    anonymous visit saves nothing."""
    pair = save_every_request_pair
    src, dst = sides(direction)
    address, password = new_user(pair.site, "every")
    visitor = pair.visitor()
    login(visitor, src, address, password)
    key = session_key(visitor, pair, f"login on {src}")
    before = expire_date(pair.site, key)
    for side in (dst, src):
        time.sleep(1.2)
        r = visitor.get(side, PROFILE)
        assert r.status == 200 and nav_email(r.text) == address, f"{side} GET {PROFILE}: {r!r}"
        cookie = the_cookie(r, pair.session_cookie, f"{side}'s plain GET under SESSION_SAVE_EVERY_REQUEST")
        assert cookie.value == key, f"{side} changed the session key on a plain GET"
        age = int(pair.setting("SESSION_COOKIE_AGE"))
        assert cookie.attr("max-age") == str(age), f"{side}: {cookie.header}"
        assert_made_during(http_time(cookie.attr("expires")), r, age, f"{side}'s expires")
        after = expire_date(pair.site, key)
        assert after >= before + 1, f"{side}'s GET did not move expire_date on: {before} -> {after}"
        assert_made_during(after, r, age, f"expire_date after {side}'s GET")
        before = after
    for side in (src, dst):
        r = pair.visitor().get(side, LOGIN_PATH)
        assert r.status == 200
        no_cookie(r, pair.session_cookie, f"{side}'s anonymous GET {LOGIN_PATH}")


@pytest.mark.matrix(f"LOGIN_URL={PAIRS['save-every-request']['LOGIN_URL']}", "-")
def test_login_url_on_another_site(save_every_request_pair):
    """LOGIN_URL on another host: an anonymous visit is sent there with
    `next` the absolute URL of the page (LoginRequiredMixin's rule), the
    same on both servers."""
    pair = save_every_request_pair
    for side in (DJANGO, UNCHAINED):
        server = pair.servers[side]
        for closed in (PROFILE, "/products/create/"):
            absolute = f"http://{pair.hostnames[side]}:{server.port}{closed}"
            expected = pair.site.shell.call("login_redirect", login_url=pair.setting("LOGIN_URL"), next=absolute)
            r = pair.visitor().get(side, closed)
            assert r.status == 302 and r.location == expected, (
                f"{side}: the anonymous GET {closed} answered {r!r}, Django's redirect_to_login makes {expected!r}")


EXPIRY_CASES = [
    pytest.param({"seconds": 600}, marks=pytest.mark.matrix("_session_expiry=600 (set_expiry(600))",
                                                            "Django→unchained"), id="seconds"),
    pytest.param({"seconds": 0}, marks=pytest.mark.matrix("_session_expiry=0 (set_expiry(0))",
                                                          "Django→unchained"), id="browser-close"),
    pytest.param({"in_seconds_as_datetime": 7200},
                 marks=pytest.mark.matrix("_session_expiry=ISO datetime (set_expiry(datetime))",
                                          "Django→unchained"), id="datetime"),
]


@pytest.mark.parametrize("expiry", EXPIRY_CASES)
def test_session_expiry_set_by_django(save_every_request_pair, expiry):
    """A session's own expiry, set by Django's set_expiry, decides the
    cookie and expire_date when unchained re-saves the session (every
    request here), as when Django does (get_expiry_age,
    get_expire_at_browser_close), and unchained keeps it in the session."""
    pair = save_every_request_pair
    site = pair.site
    address, password = new_user(site, "expiry")
    visitor = pair.visitor()
    login(visitor, DJANGO, address, password)
    key = session_key(visitor, pair, "login on Django")
    stored = site.shell.call("set_expiry", key=key, **expiry)
    if "seconds" in expiry:
        assert stored == expiry["seconds"], stored
    else:
        assert isinstance(stored, str), stored
        at = datetime.fromisoformat(stored).timestamp()
    seen = {}
    for side in (UNCHAINED, DJANGO):
        r = visitor.get(side, PROFILE)
        assert r.status == 200 and nav_email(r.text) == address, f"{side} GET {PROFILE}: {r!r}"
        cookie = seen[side] = the_cookie(r, pair.session_cookie, f"{side}'s GET")
        row = expire_date(site, key)
        if expiry.get("seconds") == 0:
            assert not cookie.has("max-age") and not cookie.has("expires"), f"{side}: {cookie.header}"
            assert_made_during(row, r, int(pair.setting("SESSION_COOKIE_AGE")), f"expire_date after {side}'s GET")
        elif "seconds" in expiry:
            assert cookie.attr("max-age") == str(expiry["seconds"]), f"{side}: {cookie.header}"
            assert_made_during(http_time(cookie.attr("expires")), r, expiry["seconds"], f"{side}'s expires")
            assert_made_during(row, r, expiry["seconds"], f"expire_date after {side}'s GET")
        else:
            # get_expiry_age: the seconds from the server's now to the date.
            assert r.sent_at - 1 <= at - int(cookie.attr("max-age")) <= r.received_at + 1, (
                f"{side}'s Max-Age is not the time left until {stored}: {cookie.header}")
            assert_near(http_time(cookie.attr("expires")), at, f"{side}'s expires")
            assert_near(row, at, f"expire_date after {side}'s GET", seconds=1)
        data = site.shell.call("session", key=key)["data"]
        assert data.get("_session_expiry") == stored, (
            f"after {side} re-saved the session, _session_expiry is {data.get('_session_expiry')!r}, not {stored!r}")
    assert_same_attributes(seen[UNCHAINED], seen[DJANGO], "the re-saved session cookie",
                           only={"path", "httponly", "samesite", "domain", "secure"})


# ================================================================ the "csrf-sessions" pair


@pytest.mark.matrix("CSRF_USE_SESSIONS=True")
@DIRECTIONS
def test_csrf_secret_in_the_session(csrf_sessions_pair, direction):
    """No csrftoken cookie on either server: the secret is the session's
    `_csrftoken` (an anonymous session is saved for it); the form token of
    src's page is accepted by dst in the same session, and not in another;
    the login rotates the secret; the logout on src takes dst's token."""
    pair = csrf_sessions_pair
    site = pair.site
    src, dst = sides(direction)
    address, password = new_user(site, "csrfsess")
    responses = []
    visitor = pair.visitor()
    page = login_page(visitor, src)
    responses.append(page)
    key = session_key(visitor, pair, f"{src}'s login page")
    secret = site.shell.call("session", key=key)["data"].get("_csrftoken")
    assert isinstance(secret, str) and re.fullmatch(r"[A-Za-z0-9]{32}", secret), (
        f"the anonymous session {src} saved for the CSRF secret holds _csrftoken={secret!r}")

    def login_form(token=None):
        form = parse_form(page.text, action=LOGIN_PATH)
        form.set("username", address).set("password", password)
        return form.set("csrfmiddlewaretoken", token) if token else form

    # Another visitor's token (from its own session) in this session: refused.
    foreign = parse_form(login_page(pair.visitor(), src).text, action=LOGIN_PATH).get("csrfmiddlewaretoken")
    r = visitor.on(dst).submit(login_form(foreign), page_path=LOGIN_PATH)
    assert r.status == 403, f"{dst} accepted another session's token: {r!r}"
    r = visitor.on(dst).submit(login_form(), page_path=LOGIN_PATH)
    responses.append(r)
    assert r.status == 302, f"{dst} refused the token of {src}'s page in the same session: {r!r}\n{r.text[:1500]}"
    new_key = session_key(visitor, pair, f"login on {dst}")
    data = site.shell.call("session", key=new_key)["data"]
    assert data.get("_auth_user_id") and data.get("_csrftoken") and data["_csrftoken"] != secret, (
        f"after the login on {dst} the session holds {data}")

    page = visitor.get(dst, PROFILE)
    responses.append(page)
    assert page.status == 200 and nav_email(page.text) == address, f"{dst} {PROFILE}: {page!r}"
    r = visitor.on(src).submit(parse_form(page.text, action=LOGOUT_PATH), page_path=PROFILE)
    responses.append(r)
    assert r.status == 302, f"{src} refused the logout with {dst}'s token: {r!r}\n{r.text[:1500]}"
    assert_anonymous(visitor, dst, f"after the logout on {src}")
    for r in responses:
        no_cookie(r, "csrftoken", "under CSRF_USE_SESSIONS=True")


# ================================================================ the "signed-cookies" pair


@pytest.mark.matrix("SESSION_ENGINE=signed_cookies")
@DIRECTIONS
def test_signed_cookie_sessions(signed_pair, direction):
    """The login on src puts the whole session, signed (Django's salt), in
    the cookie; dst honours it; no django_session row is written; the
    logout on dst deletes the cookie; a copy kept from before still logs
    in on both, as Django's engine cannot revoke it; a password change
    (the session's auth hash) ends it on both."""
    pair = signed_pair
    site = pair.site
    src, dst = sides(direction)
    rows = site.shell.call("session_count")
    address, password, logins = both_logins(pair, "signed")
    decoded = {}
    for side, (_, r) in logins.items():
        cookie = the_cookie(r, pair.session_cookie, f"login on {side}")
        assert cookie.attr("max-age") == "3600", f"{side}: {cookie.header}"
        decoded[side] = site.shell.call("signed_loads", value=cookie.value, max_age=3600)
        assert decoded[side].get("_auth_user_id") and "bad signature" not in decoded[side], (
            f"Django's signing.loads of {side}'s session cookie: {decoded[side]}")
    assert decoded[src] == decoded[dst], f"the sessions differ: {decoded}"
    made = logins[src][0]
    assert_logged_in(made, dst, address, f"the signed session made on {src}, used on {dst}")
    kept = made.copy()
    page = made.get(dst, PROFILE)
    r = made.on(dst).submit(parse_form(page.text, action=LOGOUT_PATH), page_path=PROFILE)
    assert r.status == 302, f"logout on {dst}: {r!r}"
    assert pair.session_cookie not in made.jar, f"the logout on {dst} did not delete the cookie: {r.headers}"
    for side in (src, dst):
        assert_anonymous(made, side, f"after the logout on {dst}")
    # What Django does with a copy kept from before the logout: the engine
    # has nowhere to record the logout, so the copy still logs in.
    assert logged_in_as(kept, DJANGO) == address, "Django no longer honours a kept signed cookie"
    assert logged_in_as(kept, UNCHAINED) == address, (
        "unchained refuses a signed cookie kept from before the logout, which Django honours")
    assert site.shell.call("session_count") == rows, "a django_session row was written under signed_cookies"
    site.shell.call("set_password", email=address, password=new_password())
    for side in (src, dst):
        assert_anonymous(kept, side, "the kept cookie after a password change")
        assert_anonymous(logins[dst][0], side, "the other session after a password change")


@pytest.mark.matrix("signed_cookies: SESSION_COOKIE_AGE=3600 ends the signature", "Django→unchained")
def test_signed_cookie_older_than_the_age(signed_pair):
    """Signed by Django an hour and two minutes ago: refused by both (the
    signature's max_age is SESSION_COOKIE_AGE); 58 minutes ago: honoured."""
    pair = signed_pair
    address, _ = new_user(pair.site, "signedage")
    for age, fresh in ((3600 - 120, True), (3600 + 120, False)):
        value = pair.site.shell.call("signed_session", email=address, age=age)
        for side in (DJANGO, UNCHAINED):
            visitor = pair.visitor()
            visitor.on(side).cookies[pair.session_cookie] = value
            seen = logged_in_as(visitor, side)
            assert seen == (address if fresh else None), (
                f"{side}: a session signed {age}s ago shows {seen!r} (SESSION_COOKIE_AGE=3600)")


# ================================================================ a session engine unchained cannot share


@pytest.mark.matrix("SESSION_ENGINE=cache refused", "-")
def test_cache_session_engine_is_refused(unchained_bin, tmp_path):
    """unchained refuses to start with a session engine it does not offer,
    in one line naming the ones it does; it touches no database."""
    url = f"sqlite:///{tmp_path / 'never.sqlite3'}"
    proc = subprocess.run(
        [str(unchained_bin), "serve", "--bind", "127.0.0.1:0"],
        env=process_env(url, SECRET_KEY, {"SESSION_ENGINE": "django.contrib.sessions.backends.cache"}),
        capture_output=True, text=True, timeout=60, cwd=tmp_path)
    output = (proc.stdout + proc.stderr).strip()
    assert proc.returncode != 0, f"unchained started with the cache engine:\n{output}"
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got:\n{output}"
    for name in ("SESSION_ENGINE", "django.contrib.sessions.backends.db", SIGNED_COOKIES):
        assert name in lines[0], f"the refusal does not name {name}: {lines[0]}"
    assert not (tmp_path / "never.sqlite3").exists(), "unchained made the database before refusing"
