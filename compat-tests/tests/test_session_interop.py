"""Logged-in sessions, passwords and CSRF tokens cross between Django and
`unchained serve` running side by side on one database.

Per back end: one database migrated by `unchained migrate`, one SECRET_KEY;
`unchained serve` on a free 127.0.0.1 port (file e-mail back end), spoken to
over HTTP with a cookie-keeping client (live.py); and the reference Django
project in a long-lived subprocess (DJANGO_SETTINGS_MODULE=config.settings,
same DATABASE_URL and SECRET_KEY) that answers JSON requests: ORM changes,
`django.test.Client` requests, `get_user`, `check_password`, `get_token`.
Django runs out of process because other test modules configure Django
in-process with their own settings.

Each test uses its own users, so the back end's server and database are
shared by the module's tests.
"""
import re

import pytest

from django_side import DjangoWorker
from live import (LiveServer, ModuleDatabase, form_token, nav_email, new_email, new_password,
                  reference_env, wait_for_letter)

SECRET_KEY = "Xq3vTb9LmZ0pR7kW2yH5sD8fJ1nC4gE6uA0oI9tB3cQ="  # conftest.TEST_SECRET_KEY
ALLOWED_HOSTS = "127.0.0.1,localhost,testserver"
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
LOGIN_ERROR = "Пожалуйста, введите правильные"  # the start of AuthenticationForm's message

# ---------------------------------------------------------------- Django side

# What the tests ask of Django (django_side.DjangoWorker runs them).
DJANGO_OPS = r'''
from django.contrib.auth import authenticate, get_user
from django.contrib.auth import hashers
from django.contrib.sessions.middleware import SessionMiddleware
from django.contrib.sessions.models import Session
from django.middleware.csrf import CsrfViewMiddleware, get_token
from django.test import Client, RequestFactory
from users.models import User


def _user(u):
    if not u.is_authenticated:
        return {"authenticated": False, "id": None, "email": None}
    return {"authenticated": True, "id": u.pk, "email": u.email}


def _response(r):
    return {
        "status": r.status_code,
        "location": r.get("Location"),
        "text": r.content.decode("utf-8", "replace") if not getattr(r, "streaming", False) else "",
        "cookies": {k: m.value for k, m in r.cookies.items()},
        "deleted_cookies": [k for k, m in r.cookies.items() if m["max-age"] == 0 or m.value == ""],
    }


def _client(cookies, enforce_csrf=False):
    c = Client(enforce_csrf_checks=enforce_csrf)
    for k, v in (cookies or {}).items():
        c.cookies[k] = v
    return c


def op_create_user(email, password, is_active=True):
    u = User.objects.create_user(email=email, password=password, is_active=is_active)
    return {"id": u.pk, "password": u.password}


def op_user(email):
    u = User.objects.get(email=email)
    return {"id": u.pk, "password": u.password, "is_active": u.is_active,
            "session_auth_hash": u.get_session_auth_hash()}


def op_client_login(email, password, extra=None):
    c = Client()
    ok = c.login(email=email, password=password)
    if ok and extra:
        session = c.session
        session.update(extra)
        session.save()
    return {"ok": ok, "sessionid": c.cookies["sessionid"].value if ok else None}


def op_get_user(sessionid):
    request = RequestFactory().get("/")
    request.COOKIES["sessionid"] = sessionid
    SessionMiddleware(lambda r: None).process_request(request)
    return _user(get_user(request))


def op_session(sessionid):
    s = Session.objects.filter(session_key=sessionid).first()
    return None if s is None else {"data": s.get_decoded(), "expire_date": s.expire_date.isoformat()}


def op_get(path, cookies=None):
    return _response(_client(cookies).get(path))


def op_post(path, data, cookies=None, enforce_csrf=False, headers=None):
    return _response(_client(cookies, enforce_csrf).post(path, data, headers=headers or {}))


def op_check_password(email, password):
    u = User.objects.get(email=email)
    return {
        "check_password": hashers.check_password(password, u.password),
        "authenticate": _user(authenticate(email=email, password=password) or _Anon()),
        "hash": u.password,
    }


class _Anon:
    is_authenticated = False


def op_set_password(email, password):
    u = User.objects.get(email=email)
    u.set_password(password)
    u.save()
    return {"hash": u.password}


def op_get_token(csrf_secret):
    """A masked form token for a request whose csrftoken cookie is that secret."""
    request = RequestFactory().get("/")
    request.COOKIES["csrftoken"] = csrf_secret
    CsrfViewMiddleware(lambda r: None).process_request(request)
    return get_token(request)
'''


# ---------------------------------------------------------------- the shared site


class Site:
    def __init__(self, backend, database_url, server, django, mail_dir):
        self.backend = backend
        self.database_url = database_url
        self.server = server
        self.django = django
        self.mail_dir = mail_dir


@pytest.fixture
def site(db_backend, _sites, request, run_unchained, unchained_bin, venv_python, refproject_dir,
         tmp_path_factory):
    """The back end's database (migrated by `unchained migrate`), its running
    `unchained serve` and the Django worker on it; made once per module."""

    def build(cleanup):
        workdir = tmp_path_factory.mktemp(f"session-interop-{db_backend}")
        database = ModuleDatabase(request, db_backend, workdir, "sess")
        cleanup.callback(database.drop)
        url = database.url
        run_unchained(url, "migrate")
        mail_dir = workdir / "mail"
        mail_dir.mkdir()
        server = LiveServer(
            unchained_bin, url, SECRET_KEY,
            env={"ALLOWED_HOSTS": ALLOWED_HOSTS, "DEBUG": "0", "EMAIL_BACKEND": "file",
                 "EMAIL_FILE_PATH": mail_dir},
            log_path=workdir / "serve.log",
        ).start()
        cleanup.callback(server.stop)
        env = reference_env(url, SECRET_KEY, {"ALLOWED_HOSTS": ALLOWED_HOSTS, "DEBUG": "0", "EMAIL_BACKEND": "locmem"})
        django = DjangoWorker(venv_python, refproject_dir, env, workdir, DJANGO_OPS)
        cleanup.callback(django.close)
        django.call("get_user", sessionid="warm-up")  # fails fast when Django cannot start
        return Site(db_backend, url, server, django, mail_dir)

    return _sites.get(db_backend, build)


# ---------------------------------------------------------------- helpers


def assert_logged_in_page(r, email, where):
    assert r.status == 200, f"{where}: /users/profile/ answered {r!r}"
    assert nav_email(r.text) == email, (
        f"{where}: the navigation shows {nav_email(r.text)!r}, not {email!r}\n{r.text[:2000]}"
    )


def assert_login_redirect(r, where):
    assert r.status == 302 and r.location == "/users/login/?next=/users/profile/", (
        f"{where}: expected a redirect to the login page, got {r!r}"
    )


def unchained_login(site, email, password, next_url=None):
    """Logs in over HTTP as a browser does; returns (browser, final POST response)."""
    browser = site.server.browser()
    page = browser.get("/users/login/")
    assert page.status == 200, page
    assert "csrftoken" in browser.cookies, f"login page set no csrftoken cookie: {page.headers}"
    data = {"csrfmiddlewaretoken": form_token(page.text), "username": email, "password": password}
    if next_url:
        data["next"] = next_url
    r = browser.post("/users/login/", data)
    return browser, r


def logged_in_browser(site, email, password):
    browser, r = unchained_login(site, email, password)
    assert r.status == 302 and r.location == "/", (
        f"login of {email} to unchained failed: {r!r}\n{r.text[:2000]}"
    )
    assert "sessionid" in browser.cookies, f"no sessionid after login: {r.headers}"
    return browser


# ---------------------------------------------------------------- 1. Django -> unchained


def test_django_session_is_honoured_by_unchained(site):
    dj = site.django
    email, password = new_email("djsess"), new_password()
    user = dj.call("create_user", email=email, password=password)

    extra = {"note": "ключ — 🦀 ü", "visits": [1, 2.5, None, True]}
    login = dj.call("client_login", email=email, password=password, extra=extra)
    assert login["ok"], "Django's Client.login refused the user Django just created"
    sid = login["sessionid"]
    assert dj.call("get_user", sessionid=sid)["id"] == user["id"]

    # Control: without the cookie, and with a tampered one, unchained sends to login.
    assert_login_redirect(site.server.browser().get("/users/profile/"), "no cookie")
    tampered = site.server.browser()
    tampered.cookies["sessionid"] = sid[:-1] + ("a" if sid[-1] != "a" else "b")
    assert_login_redirect(tampered.get("/users/profile/"), "unknown session key")

    browser = site.server.browser()
    browser.cookies["sessionid"] = sid
    for attempt in ("first", "second"):
        r = browser.get("/users/profile/")
        assert_logged_in_page(r, email, f"Django's session, {attempt} request to unchained")
    assert browser.cookies.get("sessionid") == sid, "unchained replaced the session key of a plain GET"

    # Whatever unchained saved back, Django still reads the same session.
    assert dj.call("get_user", sessionid=sid)["id"] == user["id"]
    stored = dj.call("session", sessionid=sid)
    assert stored is not None and stored["data"]["_auth_user_id"] == str(user["id"]), stored
    assert stored["data"]["note"] == extra["note"], stored

    # Logging in again here on that session (same user: Django keeps the
    # session and its data) makes unchained write it; Django must still read
    # it, non-ASCII data included.
    page = browser.get("/users/login/")
    r = browser.post("/users/login/", {"csrfmiddlewaretoken": form_token(page.text),
                                       "username": email, "password": password})
    assert r.status == 302 and r.location == "/", f"second login on Django's session: {r!r}"
    sid2 = browser.cookies.get("sessionid")
    assert sid2, "the session cookie vanished at the second login"
    stored = dj.call("session", sessionid=sid2)
    assert stored is not None, f"Django cannot find session {sid2!r} after unchained's login"
    assert {k: stored["data"].get(k) for k in extra} == extra, (
        f"the session data Django wrote did not survive unchained's save: {stored['data']}"
    )
    assert dj.call("get_user", sessionid=sid2)["id"] == user["id"]
    assert_logged_in_page(browser.get("/users/profile/"), email, "after the second login")


# ---------------------------------------------------------------- 2. unchained -> Django


def test_unchained_session_is_honoured_by_django(site):
    dj = site.django
    email, password = new_email("uchsess"), new_password()
    user = dj.call("create_user", email=email, password=password)

    browser = logged_in_browser(site, email, password)
    sid = browser.cookies["sessionid"]
    assert_logged_in_page(browser.get("/users/profile/"), email, "unchained's own session")

    stored = dj.call("session", sessionid=sid)
    assert stored is not None, f"no django_session row {sid!r} readable by Django"
    expected_hash = dj.call("user", email=email)["session_auth_hash"]
    assert stored["data"].get("_auth_user_id") == str(user["id"]), stored
    assert stored["data"].get("_auth_user_backend") == MODEL_BACKEND, stored
    assert stored["data"].get("_auth_user_hash") == expected_hash, stored

    got = dj.call("get_user", sessionid=sid)
    assert got == {"authenticated": True, "id": user["id"], "email": email}, got

    # The reference app's own login-required page, through Django's test Client.
    anon = dj.call("get", path="/users/profile/")
    assert anon["status"] == 302 and anon["location"].startswith("/users/login/"), anon["status"]
    r = dj.call("get", path="/users/profile/", cookies={"sessionid": sid})
    assert r["status"] == 200, f"Django's /users/profile/ with unchained's session: {r['status']} {r['location']}"
    assert nav_email(r["text"]) == email, r["text"][:2000]

    # And unchained still honours it after Django used it.
    assert_logged_in_page(browser.get("/users/profile/"), email, "after Django served the session")


# ---------------------------------------------------------------- 3. passwords


def test_passwords_set_on_either_side_verify_on_the_other(site, run_unchained):
    dj = site.django
    email, first = new_email("pw"), new_password()
    dj.call("create_user", email=email, password=first)

    # a) `unchained changepassword`, password twice on stdin.
    second = new_password()
    proc = run_unchained(site.database_url, "changepassword", email, input=f"{second}\n{second}\n")
    assert "Password changed successfully" in proc.stdout, proc.stdout
    got = dj.call("check_password", email=email, password=second)
    assert got["hash"].startswith("pbkdf2_sha256$1000000$"), got["hash"]
    assert got["check_password"], f"Django rejects the password unchained changepassword set: {got['hash']}"
    assert got["authenticate"]["authenticated"], "Django's authenticate() refuses it"
    assert not dj.call("check_password", email=email, password=first)["check_password"]

    # b) The password-reset page: the new password arrives in a letter.
    browser = site.server.browser()
    page = browser.get("/users/password-reset/")
    assert page.status == 200, page
    r = browser.post("/users/password-reset/", {"csrfmiddlewaretoken": form_token(page.text), "email": email})
    assert r.status in (200, 302), f"password reset POST: {r!r}\n{r.text[:2000]}"
    letter = wait_for_letter(site.mail_dir, email, "Восстановление пароля", logs=site.server.log_text)
    m = re.search(r"Ваш новый пароль: (\S+)", letter.get_content())
    assert m, letter.get_content()
    third = m.group(1)
    got = dj.call("check_password", email=email, password=third)
    assert got["check_password"] and got["authenticate"]["authenticated"], (
        f"Django rejects the password from the reset letter {third!r}: {got}"
    )
    assert not dj.call("check_password", email=email, password=second)["check_password"]

    # c) A password Django set logs in here; the previous one no longer does.
    fourth = new_password()
    dj.call("set_password", email=email, password=fourth)
    browser, r = unchained_login(site, email, third)
    assert r.status == 200 and LOGIN_ERROR in r.text and "sessionid" not in browser.cookies, (
        f"the replaced password still logs in: {r!r}"
    )
    browser = logged_in_browser(site, email, fourth)
    assert_logged_in_page(browser.get("/users/profile/"), email, "login with Django's password")


# ---------------------------------------------------------------- 4. ending sessions


def test_logout_and_password_change_end_sessions_across(site):
    dj = site.django
    email, password = new_email("end"), new_password()
    user = dj.call("create_user", email=email, password=password)

    # a) Logout here: the row is gone and Django sees nobody.
    browser = logged_in_browser(site, email, password)
    sid = browser.cookies["sessionid"]
    assert dj.call("get_user", sessionid=sid)["id"] == user["id"]
    page = browser.get("/users/profile/")
    assert_logged_in_page(page, email, "before logout")
    r = browser.post("/users/logout/", {"csrfmiddlewaretoken": form_token(page.text)})
    assert r.status == 302, f"logout: {r!r}"
    assert "sessionid" not in browser.cookies, "logout did not delete the sessionid cookie"
    assert dj.call("session", sessionid=sid) is None, "the session row outlived the logout"
    assert dj.call("get_user", sessionid=sid) == {"authenticated": False, "id": None, "email": None}
    replay = site.server.browser()
    replay.cookies["sessionid"] = sid
    assert_login_redirect(replay.get("/users/profile/"), "the logged-out session key replayed")

    # b) Logout through Django ends the session unchained had started.
    browser = logged_in_browser(site, email, password)
    sid = browser.cookies["sessionid"]
    r = dj.call("post", path="/users/logout/", data={}, cookies={"sessionid": sid})
    assert r["status"] == 302, r["status"]
    assert dj.call("session", sessionid=sid) is None
    assert_login_redirect(browser.get("/users/profile/"), "after Django's logout")

    # c) A password change through Django ends the unchained session (and the
    # Django-started one as well), through the session auth hash.
    browser = logged_in_browser(site, email, password)
    dj_sid = dj.call("client_login", email=email, password=password)["sessionid"]
    other = site.server.browser()
    other.cookies["sessionid"] = dj_sid
    assert_logged_in_page(browser.get("/users/profile/"), email, "before the password change")
    assert_logged_in_page(other.get("/users/profile/"), email, "Django's session before the change")
    dj.call("set_password", email=email, password=new_password())
    assert_login_redirect(browser.get("/users/profile/"), "unchained's session after Django's set_password")
    assert_login_redirect(other.get("/users/profile/"), "Django's session after Django's set_password")


# ---------------------------------------------------------------- 5. CSRF


def test_csrf_tokens_cross_both_ways(site):
    dj = site.django
    email, password = new_email("csrf"), new_password()
    dj.call("create_user", email=email, password=password)

    # a) Django's rendered login form: its csrftoken cookie and form token,
    # posted to unchained.
    page = dj.call("get", path="/users/login/")
    assert page["status"] == 200, page["status"]
    dj_secret = page["cookies"].get("csrftoken")
    assert dj_secret and len(dj_secret) == 32, page["cookies"]
    dj_token = form_token(page["text"])
    assert len(dj_token) == 64, dj_token

    def post_to_unchained(secret, token=None, header=None):
        browser = site.server.browser()
        browser.cookies["csrftoken"] = secret
        data = {"username": email, "password": password}
        if token is not None:
            data["csrfmiddlewaretoken"] = token
        headers = {"X-CSRFToken": header} if header else None
        return browser, browser.post("/users/login/", data, headers=headers)

    # Controls: no token, and a token of another secret, are refused.
    _, r = post_to_unchained(dj_secret)
    assert r.status == 403, f"unchained accepted a POST without a CSRF token: {r!r}"
    foreign = dj.call("get_token", csrf_secret="A" * 32)
    _, r = post_to_unchained(dj_secret, foreign)
    assert r.status == 403, f"unchained accepted a token of another secret: {r!r}"

    browser, r = post_to_unchained(dj_secret, dj_token)
    assert r.status == 302 and r.location == "/" and "sessionid" in browser.cookies, (
        f"unchained refused Django's form token {dj_token!r} with cookie {dj_secret!r}: {r!r}\n{r.text[:1500]}"
    )
    # get_token for the same secret, sent as the X-CSRFToken header.
    token2 = dj.call("get_token", csrf_secret=dj_secret)
    assert token2 != dj_token  # masked afresh each time
    browser, r = post_to_unchained(dj_secret, header=token2)
    assert r.status == 302 and "sessionid" in browser.cookies, (
        f"unchained refused Django's get_token() value in X-CSRFToken: {r!r}"
    )

    # b) unchained's login page: its cookie and form token, posted to Django
    # with CSRF checks enforced.
    browser = site.server.browser()
    page = browser.get("/users/login/")
    uc_secret = browser.cookies.get("csrftoken")
    assert uc_secret and len(uc_secret) == 32, browser.cookies
    uc_token = form_token(page.text)
    assert len(uc_token) == 64, uc_token
    creds = {"username": email, "password": password}

    r = dj.call("post", path="/users/login/", data=creds, cookies={"csrftoken": uc_secret}, enforce_csrf=True)
    assert r["status"] == 403, f"control: Django accepted a POST without a token: {r['status']}"
    r = dj.call("post", path="/users/login/", data={**creds, "csrfmiddlewaretoken": uc_token},
                cookies={"csrftoken": uc_secret}, enforce_csrf=True)
    assert r["status"] == 302 and "sessionid" in r["cookies"], (
        f"Django's CsrfViewMiddleware refused unchained's token {uc_token!r} with cookie {uc_secret!r}: "
        f"{r['status']}\n{r['text'][:1500]}"
    )
    # The Django session made here works on unchained too.
    other = site.server.browser()
    other.cookies["sessionid"] = r["cookies"]["sessionid"]
    assert_logged_in_page(other.get("/users/profile/"), email, "Django login with unchained's CSRF token")
