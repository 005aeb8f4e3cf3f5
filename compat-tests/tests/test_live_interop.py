"""The two servers side by side, driven like a browser: the reference Django
project under gunicorn and `unchained serve`, on one database, one
SECRET_KEY and one MEDIA_ROOT (issue 5).

Per back end (SQLite, PostgreSQL, MariaDB): one database migrated by `unchained
migrate`; both servers on free 127.0.0.1 ports, each writing its letters to
its own folder (unchained: EMAIL_BACKEND=file; Django: the filebased back
end), shared by the module's tests; every test makes its own users. The
servers are spoken to only over HTTP with live.py's Browser (cookie jar,
CSRF tokens read from the pages, forms posted as a browser posts them,
multipart for uploads); a long-lived Django shell (the reference project's
ORM on the same database) makes users and reads rows where HTML is not
enough.

Django runs with DEBUG=1 so that it serves /media/ (its config/urls.py adds
the media route only under DEBUG); unchained always serves it.

Each test is one cell of the matrix printed at the end of the run
(conftest.py: `@pytest.mark.matrix`); "unchained→Django" means done on
unchained, checked on Django:

 1. register, confirm by the letter's link on the other server, log in there;
    the address typed in capitals logs in on both or on neither (the
    database's collation decides, for Django too)
 2. a session made on one is honoured by the other; logout on one ends it on
    the other; a password changed on one (reset page, changepassword) ends
    the sessions on the other
 3. one server's csrftoken cookie + form token accepted by the other's forms
 4. groups and permissions: made in Django admin's pages (unchained obeys on
    the next request, and after removal answers 403); made with `unchained
    group` (Django obeys)
 5. products created, edited (versions formset) and deleted on one, seen the
    same on the other: price, times, owner, image bytes, versions
 6. SECRET_KEY rotation: restarted with SECRET_KEY=B, SECRET_KEY_FALLBACKS=A
    (last: it restarts the servers)
"""
import hashlib
import html
import re
import subprocess
import time
import urllib.parse
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from django_side import DjangoWorker, last_json
from live import (Gunicorn, LiveServer, ModuleDatabase, confirmation_link, letter_text, nav_email,
                  new_email, new_password, parse_form, png_bytes, reference_env, wait_for_letter)

KEY_A = "Xq3vTb9LmZ0pR7kW2yH5sD8fJ1nC4gE6uA0oI9tB3cQ="  # conftest.TEST_SECRET_KEY
KEY_B = "compat-tests-rotated-secret-key-B-not-for-production-9876543210"
ALLOWED_HOSTS = "127.0.0.1,localhost"

UNCHAINED, DJANGO = "unchained", "django"
U2D, D2U = "unchained→Django", "Django→unchained"
DIRECTIONS = pytest.mark.parametrize(
    "direction", [U2D, D2U], ids=["unchained-to-django", "django-to-unchained"]
)
LOGIN_PATH = "/users/login/"
PROFILE = "/users/profile/"
RESET_SUBJECT = "Восстановление пароля"
MODERATOR_PERMISSIONS = ("can_publish_product", "can_change_description", "can_change_category")


def sides(direction):
    """(where it is done, where it is checked)."""
    return (UNCHAINED, DJANGO) if direction == U2D else (DJANGO, UNCHAINED)


# ---------------------------------------------------------------- Django's ORM, out of process

# What the tests ask of Django's ORM (django_side.DjangoWorker runs them).
ORM_OPS = r'''
import hashlib

from django.contrib.auth.models import Group, Permission
from django.core.files.storage import default_storage
from django.utils import timezone
from catalog.models import Category, Product, Version
from users.models import User


def local(value):
    # What the templates' `localtime` filter shows (config/jinja2.py).
    return timezone.localtime(value).strftime("%d.%m.%Y %H:%M") if value else ""


def op_create_user(email, password, is_active=True):
    return User.objects.create_user(email=email, password=password, is_active=is_active).pk


def op_user(email):
    u = User.objects.filter(email=email).first()
    if u is None:
        return None
    return {
        "id": u.pk, "email": u.email, "password": u.password, "is_active": u.is_active,
        "is_staff": u.is_staff, "is_superuser": u.is_superuser, "token": u.token,
        "first_name": u.first_name, "last_name": u.last_name, "phone": u.phone, "country": u.country,
        "date_joined": u.date_joined.isoformat(),
        "groups": sorted(u.groups.values_list("name", flat=True)),
        "user_permissions": sorted(u.user_permissions.values_list("codename", flat=True)),
    }


def op_category(name):
    return Category.objects.create(name=name).pk


def op_create_product(owner, name, price):
    return Product.objects.create(name=name, price=price, owner=User.objects.get(email=owner)).pk


def op_product_pks(name):
    return list(Product.objects.filter(name=name).order_by("pk").values_list("pk", flat=True))


def op_product(pk):
    p = Product.objects.select_related("owner").filter(pk=pk).first()
    if p is None:
        return None
    image = p.image.name or ""
    sha = None
    if image and default_storage.exists(image):
        with default_storage.open(image, "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()
    return {
        "name": p.name, "description": p.description, "price": str(p.price),
        "category_id": p.category_id, "is_moderated": p.is_moderated,
        "owner": p.owner.email if p.owner else None, "owner_id": p.owner_id,
        "created_at": p.created_at.isoformat(), "updated_at": p.updated_at.isoformat(),
        "created_local": local(p.created_at), "updated_local": local(p.updated_at),
        "image": image, "image_url": p.image.url if image else None, "image_sha256": sha,
        "versions": [[v.pk, v.version_number, v.version_name, v.is_current]
                     for v in p.versions.order_by("pk")],
    }


def op_version_count(pk):
    return Version.objects.filter(product_id=pk).count()


def op_perm_ids(codenames):
    return [Permission.objects.get(content_type__app_label="catalog", codename=c).pk for c in codenames]


def op_group(name):
    g = Group.objects.filter(name=name).first()
    if g is None:
        return None
    return {"id": g.pk, "permissions": sorted(g.permissions.values_list("codename", flat=True)),
            "users": sorted(g.user_set.values_list("email", flat=True))}
'''

# Runs in `manage.py shell -c`, under the SECRET_KEY (and fallbacks) of its
# environment: what such a Django makes of each session.
SESSION_CHECK = r'''
import json
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from users.models import User

out = {}
for sid in %(sids)r:
    row = Session.objects.filter(session_key=sid).first()
    if row is None:
        out[sid] = {"row": False, "decoded": False, "user": None, "hash_ok": False}
        continue
    data = SessionStore().decode(row.session_data)  # {} when no key verifies the signature
    uid = data.get("_auth_user_id")
    user = User.objects.filter(pk=uid).first() if uid else None
    out[sid] = {"row": True, "decoded": bool(data), "user": user.email if user else None,
                "hash_ok": bool(user) and data.get("_auth_user_hash") == user.get_session_auth_hash()}
print("RESULT " + json.dumps(out))
'''


# ---------------------------------------------------------------- the site: both servers on one database


class Site:
    def __init__(self, backend, url, workdir, unchained_bin, venv_python, refproject_dir, run_unchained):
        self.backend = backend
        self.url = url
        self.workdir = workdir
        self.unchained_bin = unchained_bin
        self.venv_python = venv_python
        self.refproject_dir = refproject_dir
        self.run_unchained = run_unchained
        self.media_root = workdir / "media"
        self.media_root.mkdir()
        self.mail = {UNCHAINED: workdir / "mail-unchained", DJANGO: workdir / "mail-django"}
        for folder in self.mail.values():
            folder.mkdir()
        self.servers = {}
        self.shell = None
        self.rotation = None
        self.generation = 0

    # -- environments (added to the servers' own: live.process_env)

    def django_env(self, fallbacks=(), extra=None):
        return {"ALLOWED_HOSTS": ALLOWED_HOSTS, "DEBUG": "1", "MEDIA_ROOT": str(self.media_root),
                "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
                "EMAIL_FILE_PATH": str(self.mail[DJANGO]),
                "SECRET_KEY_FALLBACKS": ",".join(fallbacks) if fallbacks else None, **(extra or {})}

    def unchained_env(self, fallbacks=()):
        return {"ALLOWED_HOSTS": ALLOWED_HOSTS, "DEBUG": "0", "MEDIA_ROOT": str(self.media_root),
                "EMAIL_BACKEND": "file", "EMAIL_FILE_PATH": str(self.mail[UNCHAINED]),
                "SECRET_KEY_FALLBACKS": ",".join(fallbacks) if fallbacks else None}

    # -- servers

    def start(self, secret_key=KEY_A, fallbacks=()):
        self.generation += 1
        n = self.generation
        self.servers[DJANGO] = Gunicorn(self.venv_python, self.refproject_dir, self.url, secret_key,
                                        env=self.django_env(fallbacks),
                                        log_path=self.workdir / f"gunicorn-{n}.log").start()
        self.servers[UNCHAINED] = LiveServer(self.unchained_bin, self.url, secret_key,
                                             env=self.unchained_env(fallbacks),
                                             log_path=self.workdir / f"serve-{n}.log").start()

    def stop_servers(self):
        for side in (UNCHAINED, DJANGO):
            server = self.servers.pop(side, None)
            if server:
                server.stop()

    def restart(self, secret_key, fallbacks=()):
        self.stop_servers()
        self.start(secret_key, fallbacks)

    def browser(self, side, cookies=None):
        b = self.servers[side].browser()
        if cookies:
            b.cookies = dict(cookies)
        return b

    def logs(self):
        return "\n".join(f"--- {side} log ---\n{server.log_text()}" for side, server in self.servers.items())


@pytest.fixture
def site(db_backend, _sites, request, run_unchained, unchained_bin, venv_python, refproject_dir,
         tmp_path_factory):
    """The back end's database (migrated by `unchained migrate`) with both
    servers and the Django shell on it; made once per module."""

    def build(cleanup):
        workdir = tmp_path_factory.mktemp(f"live-interop-{db_backend}")
        database = ModuleDatabase(request, db_backend, workdir, "live")
        cleanup.callback(database.drop)
        site = Site(db_backend, database.url, workdir, unchained_bin, venv_python, refproject_dir, run_unchained)
        run_unchained(site.url, "migrate")
        cleanup.callback(site.stop_servers)  # whichever servers run then (the rotation restarts them)
        site.start()
        env = reference_env(site.url, KEY_A, site.django_env(extra={"EMAIL_BACKEND": "locmem"}))
        site.shell = DjangoWorker(venv_python, refproject_dir, env, workdir, ORM_OPS)
        cleanup.callback(site.shell.close)
        site.shell.call("perm_ids", codenames=list(MODERATOR_PERMISSIONS))  # fails fast
        return site

    return _sites.get(db_backend, build)


# ---------------------------------------------------------------- helpers


def assert_logged_in(browser, email, where, path=PROFILE):
    r = browser.get(path)
    assert r.status == 200 and nav_email(r.text) == email, (
        f"{where}: GET {path} answered {r!r}, the navigation shows {nav_email(r.text)!r} "
        f"instead of {email!r}\n{r.text[:1500]}"
    )
    return r


def assert_anonymous(browser, where):
    r = browser.get(PROFILE)
    assert r.status == 302 and r.location == f"{LOGIN_PATH}?next={PROFILE}", (
        f"{where}: expected the redirect to the login page for GET {PROFILE}, got {r!r}\n{r.text[:1000]}"
    )


def try_login(site, side, email, password, browser=None):
    browser = browser or site.browser(side)
    page = browser.get(LOGIN_PATH)
    assert page.status == 200, f"{side} {LOGIN_PATH}: {page!r}"
    form = parse_form(page.text, action=LOGIN_PATH)
    form.set("username", email).set("password", password)
    return browser, browser.submit(form, page_path=LOGIN_PATH)


def login(site, side, email, password, browser=None):
    browser, r = try_login(site, side, email, password, browser)
    assert r.status == 302 and r.location == "/" and "sessionid" in browser.cookies, (
        f"login of {email} on {side} failed: {r!r}\n{r.text[:2000]}\n{site.logs()}"
    )
    return browser


def assert_login_refused(site, side, email, password, where):
    browser, r = try_login(site, side, email, password)
    assert r.status == 200 and "sessionid" not in browser.cookies, (
        f"{where}: {side} let {email} log in: {r!r}"
    )


def new_user(site, tag):
    address, password = new_email(tag), new_password()
    site.shell.call("create_user", email=address, password=password)
    return address, password


# -- products


def django_file_name(name):
    """django.utils.text.get_valid_filename, which FileField applies to uploads."""
    return re.sub(r"(?u)[^-\w.]", "", str(name).strip().replace(" ", "_"))


def detail(page_html):
    """What the detail page says about the product."""
    def one(pattern):
        m = re.search(pattern, page_html, re.S)
        return html.unescape(m.group(1)) if m else None

    article = re.search(r'<article class="card product-detail">.*?</article>', page_html, re.S)
    return {
        "name": one(r'<h1 class="product-name">([^<]*)</h1>'),
        "price": one(r'<p class="product-price">([^<]*)</p>'),
        "owner": one(r"<dt>Продавец</dt><dd>([^<]*)</dd>"),
        "created": one(r"<dt>Добавлен</dt><dd>([^<]*)</dd>"),
        "updated": one(r"<dt>Изменён</dt><dd>([^<]*)</dd>"),
        "image": one(r'<img class="product-image" src="([^"]*)"'),
        "current_version": one(r'<p class="current-version">([^<]*)</p>'),
        "unpublished": "badge-unpublished" in page_html,
        "article": article.group(0) if article else None,
    }


def version_rows(page_html):
    """The versions formset of an update page: (id, number, name, is_current) per row."""
    form = parse_form(page_html, id="product-form")
    total = int(form.get("versions-TOTAL_FORMS"))
    return {
        "TOTAL_FORMS": total,
        "INITIAL_FORMS": int(form.get("versions-INITIAL_FORMS")),
        "rows": [(form.get(f"versions-{i}-id"), form.get(f"versions-{i}-version_number"),
                  form.get(f"versions-{i}-version_name"), form.get(f"versions-{i}-is_current") is not None)
                 for i in range(total)],
    }


def add_version_row(page_html, form):
    """What the page's "add a version" button does (static/js/formset.js):
    the empty row of the <template>, numbered, counted in TOTAL_FORMS."""
    m = re.search(r'<template id="version-empty-row">(.*?)</template>', page_html, re.S)
    assert m, "the update page has no empty version row"
    index = int(form.get("versions-TOTAL_FORMS"))
    row = parse_form("<form>" + m.group(1).replace("__prefix__", str(index)) + "</form>")
    form.fields.extend(row.fields)
    form.set("versions-TOTAL_FORMS", index + 1)
    return index


def set_version(form, i, number=None, name=None, current=None, delete=None):
    if number is not None:
        form.set(f"versions-{i}-version_number", number)
    if name is not None:
        form.set(f"versions-{i}-version_name", name)
    if current is not None:
        form.set(f"versions-{i}-is_current", "on" if current else None)
    if delete is not None:
        form.set(f"versions-{i}-DELETE", "on" if delete else None)


def create_product(site, side, browser, name, price, description="", category=None, image=None):
    """Through the create page; returns the new product's pk."""
    page = browser.get("/products/create/")
    assert page.status == 200, f"{side} /products/create/: {page!r}"
    form = parse_form(page.text, id="product-form")
    form.set("name", name).set("description", description).set("price", price)
    if category is not None:
        form.set("category", category)
    files = {"image": image} if image else None
    r = browser.submit(form, files=files, page_path="/products/create/")
    assert r.status == 302 and r.location == "/", (
        f"creating {name!r} on {side}: {r!r}\n{r.text[:3000]}\n{site.logs()}"
    )
    pks = site.shell.call("product_pks", name=name)
    assert len(pks) == 1, f"{len(pks)} products named {name!r} after one create on {side}"
    return pks[0]


def submit_update(site, side, browser, pk, form):
    r = browser.submit(form, page_path=f"/products/{pk}/update/")
    assert r.status == 302 and r.location == f"/products/{pk}/", (
        f"update of product {pk} on {side}: {r!r}\n{r.text[:4000]}\n{site.logs()}"
    )


def assert_same_detail(site, src, dst, browsers, pk, row):
    """Both servers' detail pages show the product as the database holds it."""
    pages = {}
    for side in (src, dst):
        r = browsers[side].get(f"/products/{pk}/")
        assert r.status == 200, f"{side} /products/{pk}/: {r!r}\n{r.text[:2000]}"
        pages[side] = detail(r.text)
    seen = pages[dst]
    expected = {
        "name": row["name"],
        "price": row["price"].replace(".", ",") + " ₽",
        "owner": row["owner"],
        "created": row["created_local"],
        "updated": row["updated_local"],
        "image": row["image_url"],
        "unpublished": not row["is_moderated"],
    }
    current = [v for v in row["versions"] if v[3]]
    expected["current_version"] = (
        f"Текущая версия: {current[0][2]} (№ {current[0][1]})" if current else None
    )
    got = {k: seen[k] for k in expected}
    assert got == expected, f"{dst}'s detail page of product {pk} differs from the database:\n{got}\n{expected}"
    assert pages[src]["article"] == seen["article"], (
        f"product {pk}'s detail differs between the servers:\n{src}: {pages[src]['article']}\n"
        f"{dst}: {seen['article']}"
    )


def utc(iso):
    return datetime.fromisoformat(iso).astimezone(timezone.utc)


# ================================================================ 1. registration


@pytest.mark.matrix("register, confirm e-mail, log in")
@DIRECTIONS
def test_registration_confirmed_on_the_other_server(site, direction):
    src, dst = sides(direction)
    address, password = new_email("reg"), new_password()
    browser = site.browser(src)
    page = browser.get("/users/register/")
    assert page.status == 200, page
    form = parse_form(page.text, action="/users/register/")
    form.set("email", address).set("password1", password).set("password2", password)
    r = browser.submit(form, page_path="/users/register/")
    assert r.status == 302 and r.location == "/users/login/", f"register on {src}: {r!r}\n{r.text[:2000]}"
    user = site.shell.call("user", email=address)
    assert user and not user["is_active"] and user["token"], f"after registering on {src}: {user}"

    link = confirmation_link(site.mail[src], address, logs=site.logs)
    path = urllib.parse.urlsplit(link).path
    assert path == f"/users/email-confirm/{user['token']}/", f"the confirmation link {link} lacks the stored token"
    assert_login_refused(site, dst, address, password, "before confirming")

    r = site.browser(dst).get(path)
    assert r.status == 302 and r.location == LOGIN_PATH, f"{dst} GET {path}: {r!r}\n{r.text[:1500]}"
    user = site.shell.call("user", email=address)
    assert user["is_active"] and user["token"] is None, f"after confirming on {dst}: {user}"

    browser = login(site, dst, address, password)
    assert_logged_in(browser, address, f"registered on {src}, logged in on {dst}", path="/")
    # The link is used up, on either server.
    for side in (src, dst):
        r = site.browser(side).get(path)
        assert r.status == 404, f"{side}: the used confirmation link answered {r!r}"


@pytest.mark.matrix("log in with the address in capitals", "same on both")
def test_login_with_the_address_in_another_case_does_what_django_does(site):
    """Django finds the user with an exact lookup on the e-mail column
    (ModelBackend, USERNAME_FIELD), so the database's collation decides:
    the address in capitals is another address on SQLite and PostgreSQL,
    and the same one under MariaDB's utf8mb4_general_ci. unchained must
    answer as Django does on each, whichever that is."""
    address, password = new_user(site, "case")
    shouted = address.upper()
    assert shouted != address
    outcome = {}
    for side in (DJANGO, UNCHAINED):
        browser, r = try_login(site, side, shouted, password)
        logged_in = r.status == 302 and "sessionid" in browser.cookies
        shown = nav_email(browser.get(PROFILE).text) if logged_in else None
        outcome[side] = (logged_in, shown)
    assert outcome[UNCHAINED] == outcome[DJANGO], (
        f"{site.backend}: logging in as {shouted} (stored as {address}): Django {outcome[DJANGO]},"
        f" unchained {outcome[UNCHAINED]}\n{site.logs()}"
    )
    # Whoever let it in shows the address as stored.
    assert outcome[DJANGO] in ((False, None), (True, address)), outcome


# ================================================================ 2. sessions


@pytest.mark.matrix("session honoured")
@DIRECTIONS
def test_session_is_honoured_by_the_other_server(site, direction):
    src, dst = sides(direction)
    address, password = new_user(site, "sess")
    made = login(site, src, address, password)
    sid = made.cookies["sessionid"]
    other = site.browser(dst, made.cookies)
    assert_logged_in(other, address, f"{src}'s session on {dst}")
    assert_logged_in(other, address, f"{src}'s session on {dst}, home page", path="/")
    assert other.cookies.get("sessionid") == sid, f"{dst} replaced the session key on plain GETs"
    assert_logged_in(made, address, f"{src}'s session back on {src}")
    # Control: a session key that does not exist is nobody's.
    assert_anonymous(site.browser(dst, {"sessionid": sid[:-2] + "zz"}), "a forged session key")


@pytest.mark.matrix("logout ends session")
@DIRECTIONS
def test_logout_ends_the_session_on_the_other_server(site, direction):
    src, dst = sides(direction)
    address, password = new_user(site, "logout")
    made = login(site, src, address, password)
    keep = login(site, dst, address, password)  # another session of the same user
    copy = site.browser(dst, made.cookies)
    assert_logged_in(copy, address, f"{src}'s session on {dst} before logout")

    page = made.get(PROFILE)
    r = made.submit(parse_form(page.text, action="/users/logout/"), page_path=PROFILE)
    assert r.status == 302 and "sessionid" not in made.cookies, f"logout on {src}: {r!r}"
    assert_anonymous(copy, f"{src}'s logged-out session replayed on {dst}")
    assert_anonymous(site.browser(src, copy.cookies), f"the logged-out session replayed on {src}")
    assert_logged_in(keep, address, f"the user's other session, made on {dst}")


def _sessions_everywhere(site, src, dst, address, password):
    """The user logged in on both servers: [(label, browser on dst)], every
    session checked on dst, plus src's own browser."""
    on_dst = login(site, dst, address, password)
    on_src = login(site, src, address, password)
    crossed = site.browser(dst, on_src.cookies)
    for label, b in ((f"made on {dst}", on_dst), (f"made on {src}", crossed)):
        assert_logged_in(b, address, f"session {label}, used on {dst}")
    return [(f"made on {dst}", on_dst), (f"made on {src}", crossed)], on_src


@pytest.mark.matrix("password reset page ends sessions")
@DIRECTIONS
def test_password_reset_ends_sessions_on_the_other_server(site, direction):
    src, dst = sides(direction)
    address, password = new_user(site, "reset")
    sessions, on_src = _sessions_everywhere(site, src, dst, address, password)
    before = site.shell.call("user", email=address)["password"]

    anon = site.browser(src)
    page = anon.get("/users/password-reset/")
    form = parse_form(page.text, action="/users/password-reset/").set("email", address)
    r = anon.submit(form, page_path="/users/password-reset/")
    assert r.status == 302 and r.location == "/users/login/", f"password reset on {src}: {r!r}\n{r.text[:2000]}"
    letter = wait_for_letter(site.mail[src], address, RESET_SUBJECT, logs=site.logs)
    m = re.search(r"Ваш новый пароль: (\S+)", letter_text(letter))
    assert m, "no new password in the letter"
    assert site.shell.call("user", email=address)["password"] != before

    for label, b in sessions:
        assert_anonymous(b, f"session {label}, on {dst} after the reset on {src}")
    assert_anonymous(on_src, f"{src}'s own session after its reset")
    assert_login_refused(site, dst, address, password, "the old password after the reset")
    assert_logged_in(login(site, dst, address, m.group(1)), address, f"the e-mailed password on {dst}")


@pytest.mark.matrix("changepassword ends sessions")
@DIRECTIONS
def test_changepassword_ends_sessions_on_the_other_server(site, direction, run_manage):
    src, dst = sides(direction)
    address, password = new_user(site, "chpw")
    sessions, _ = _sessions_everywhere(site, src, dst, address, password)
    new = new_password()
    if src == UNCHAINED:
        proc = site.run_unchained(site.url, "changepassword", address, input=f"{new}\n{new}\n")
    else:
        # getpass reads the piped stdin when there is no terminal.
        proc = run_manage(site.url, "changepassword", address, input=f"{new}\n{new}\n",
                          env={"MEDIA_ROOT": str(site.media_root)})
    assert "Password changed successfully" in proc.stdout, f"{src} changepassword:\n{proc.stdout}\n{proc.stderr}"
    for label, b in sessions:
        assert_anonymous(b, f"session {label}, on {dst} after {src}'s changepassword")
    assert_login_refused(site, dst, address, password, "the old password after changepassword")
    assert_logged_in(login(site, dst, address, new), address, f"the new password on {dst}")


# ================================================================ 3. CSRF


@pytest.mark.matrix("CSRF token accepted")
@DIRECTIONS
def test_csrf_token_of_one_server_is_accepted_by_the_other(site, direction):
    src, dst = sides(direction)
    address, password = new_user(site, "csrf")

    # The login form of src, posted to dst with src's csrftoken cookie.
    on_src = site.browser(src)
    page = on_src.get(LOGIN_PATH)
    secret = on_src.cookies.get("csrftoken")
    assert secret and len(secret) == 32, f"{src}'s csrftoken cookie: {on_src.cookies}"
    form = parse_form(page.text, action=LOGIN_PATH).set("username", address).set("password", password)
    assert len(form.get("csrfmiddlewaretoken")) == 64

    on_dst = site.browser(dst, {"csrftoken": secret})
    r = on_dst.post(LOGIN_PATH, [(n, v) for n, v in form.pairs() if n != "csrfmiddlewaretoken"])
    assert r.status == 403, f"control: {dst} accepted a login POST without a token: {r!r}"
    r = on_dst.submit(form, page_path=LOGIN_PATH)
    assert r.status == 302 and r.location == "/" and "sessionid" in on_dst.cookies, (
        f"{dst} refused {src}'s login form token with {src}'s cookie: {r!r}\n{r.text[:1500]}"
    )

    # Logged in: src's profile form (one browser: cookies are per host, not
    # per port), posted to dst.
    on_src.cookies = dict(on_dst.cookies)
    page = assert_logged_in(on_src, address, f"{dst}'s session on {src}")
    form = parse_form(page.text, action=PROFILE)
    first_name = f"Имя-{uuid.uuid4().hex[:6]}"
    form.set("first_name", first_name).set("country", "Россия")
    r = on_dst.submit(form, page_path=PROFILE)
    assert r.status == 302 and r.location == PROFILE, (
        f"{dst} refused {src}'s profile form: {r!r}\n{r.text[:2000]}"
    )
    user = site.shell.call("user", email=address)
    assert (user["first_name"], user["country"]) == (first_name, "Россия"), user


# The headers Django's middleware puts on pages (security, caching, Vary).
PAGE_HEADERS = (
    "X-Frame-Options",
    "X-Content-Type-Options",
    "Referrer-Policy",
    "Cross-Origin-Opener-Policy",
    "Vary",
    "Cache-Control",
)


# Not a 404: Django runs here with DEBUG on (to serve /media/), and its
# technical 404 page does not touch the session, so it lacks `Vary: Cookie`.
HEADER_PAGES = (LOGIN_PATH, "/contacts/", "/", PROFILE)


@pytest.mark.matrix("page headers (security, caching)", "same on both")
def test_pages_carry_the_same_headers_on_both_servers(site):
    address, password = new_user(site, "headers")
    for logged_in in (False, True):
        answers = {}
        for side in (UNCHAINED, DJANGO):
            browser = site.browser(side)
            if logged_in:
                page = browser.get(LOGIN_PATH)
                form = parse_form(page.text, action=LOGIN_PATH)
                form.set("username", address).set("password", password)
                r = browser.submit(form, page_path=LOGIN_PATH)
                assert r.status == 302, f"login on {side}: {r!r}"
            for path in HEADER_PAGES:
                r = browser.get(path)
                answers[(side, path)] = (r.status, {h: r.header(h) for h in PAGE_HEADERS})
        for path in HEADER_PAGES:
            assert answers[(UNCHAINED, path)] == answers[(DJANGO, path)], (
                f"{path} (logged in: {logged_in}): unchained {answers[(UNCHAINED, path)]}"
                f" but Django {answers[(DJANGO, path)]}"
            )


# ================================================================ 4. groups and permissions


def _moderation_target(site):
    owner, _ = new_user(site, "owner")
    name = f"Чужой товар {uuid.uuid4().hex[:8]}"
    return site.shell.call("create_product", owner=owner, name=name, price="10.00")


def _assert_moderator_form(site, side, browser, pk, where):
    r = browser.get(f"/products/{pk}/update/")
    assert r.status == 200 and 'name="is_moderated"' in r.text and 'name="price"' not in r.text, (
        f"{where}: {side} /products/{pk}/update/ answered {r!r}, not the moderator form\n{r.text[:2000]}"
    )
    # And the form works: publishing.
    form = parse_form(r.text, id="product-form").set("is_moderated", "on")
    r = browser.submit(form, page_path=f"/products/{pk}/update/")
    assert r.status == 302 and r.location == f"/products/{pk}/", f"{where}: publishing on {side}: {r!r}\n{r.text[:2000]}"
    assert site.shell.call("product", pk=pk)["is_moderated"], f"{where}: not published"


def _admin_post(admin, path, form, where):
    r = admin.submit(form, submit="_save", page_path=path)
    assert r.status == 302, f"{where}: Django admin answered {r!r}\n{r.text[:4000]}"
    return r


@pytest.mark.matrix("groups & permissions", U2D)
def test_group_made_with_unchained_takes_effect_on_django(site):
    moderator, password = new_user(site, "moder")
    pk = _moderation_target(site)
    mod = login(site, DJANGO, moderator, password)
    r = mod.get(f"/products/{pk}/update/")
    assert r.status == 403, f"control: a plain user on Django got {r!r} for another's product"

    group_name = f"moderators-{uuid.uuid4().hex[:6]}"
    site.run_unchained(site.url, "group", "create", group_name)
    site.run_unchained(site.url, "group", "grant", group_name,
                       *(f"catalog.{c}" for c in MODERATOR_PERMISSIONS))
    site.run_unchained(site.url, "group", "add-user", group_name, moderator)
    group = site.shell.call("group", name=group_name)
    assert group == {"id": group["id"], "permissions": sorted(MODERATOR_PERMISSIONS), "users": [moderator]}, group
    _assert_moderator_form(site, DJANGO, mod, pk, "in the group made by `unchained group`")


@pytest.mark.matrix("groups & permissions", D2U)
def test_group_made_in_django_admin_takes_effect_on_unchained(site):
    admin_email, admin_password = new_email("admin"), new_password()
    site.run_unchained(site.url, "createsuperuser", "--noinput", "--email", admin_email,
                       env={"DJANGO_SUPERUSER_PASSWORD": admin_password})
    moderator, password = new_user(site, "moder")
    pk = _moderation_target(site)
    mod = login(site, UNCHAINED, moderator, password)
    r = mod.get(f"/products/{pk}/update/")
    assert r.status == 403, f"control: a plain user on unchained got {r!r} for another's product"

    admin = site.browser(DJANGO)
    page = admin.get("/admin/login/?next=/admin/")
    form = parse_form(page.text, id="login-form").set("username", admin_email).set("password", admin_password)
    r = admin.submit(form, page_path="/admin/login/?next=/admin/")
    assert r.status == 302 and r.location == "/admin/", f"admin login of the unchained superuser: {r!r}\n{r.text[:2000]}"

    group_name = f"Модераторы {uuid.uuid4().hex[:6]}"
    perm_ids = site.shell.call("perm_ids", codenames=list(MODERATOR_PERMISSIONS))
    page = admin.get("/admin/auth/group/add/")
    form = parse_form(page.text, id="group_form").set("name", group_name).set("permissions", perm_ids)
    _admin_post(admin, "/admin/auth/group/add/", form, "group add")
    group = site.shell.call("group", name=group_name)
    assert group and group["permissions"] == sorted(MODERATOR_PERMISSIONS), group

    user = site.shell.call("user", email=moderator)
    change = f"/admin/users/user/{user['id']}/change/"

    def set_groups(ids):
        page = admin.get(change)
        assert page.status == 200, f"{change}: {page!r}"
        form = parse_form(page.text, id="user_form").set("groups", ids)
        _admin_post(admin, change, form, f"user change, groups={ids}")

    set_groups([group["id"]])
    after = site.shell.call("user", email=moderator)
    assert after["groups"] == [group_name], after
    same = ("email", "password", "is_active", "is_staff", "is_superuser", "token", "first_name", "phone")
    assert {k: after[k] for k in same} == {k: user[k] for k in same}, (
        f"posting the admin change form back changed the user:\n{user}\n{after}"
    )
    # The admin's time inputs show whole seconds: a saved form drops the microseconds.
    assert utc(after["date_joined"]) == utc(user["date_joined"]).replace(microsecond=0), (user, after)
    _assert_moderator_form(site, UNCHAINED, mod, pk, "in the group made in Django admin")

    set_groups([])
    assert site.shell.call("user", email=moderator)["groups"] == []
    r = mod.get(f"/products/{pk}/update/")
    assert r.status == 403, f"removed from the group in Django admin, unchained still answers {r!r}"


# ================================================================ 5. products


@pytest.fixture
def owner_browsers(site):
    """A user logged in on both servers (each its own login)."""
    address, password = new_user(site, "seller")
    return address, {side: login(site, side, address, password) for side in (UNCHAINED, DJANGO)}


@pytest.mark.matrix("product create (price, times, owner, image)")
@DIRECTIONS
def test_product_created_on_one_shows_the_same_on_the_other(site, direction, owner_browsers):
    src, dst = sides(direction)
    owner, browsers = owner_browsers
    category = site.shell.call("category", name=f"Категория {uuid.uuid4().hex[:6]}")
    name = f"Арабика {uuid.uuid4().hex[:8]}"
    description = "Первая строка\r\nвторая & <b>жирная</b>"
    image = png_bytes()
    filename = f"фото товара {uuid.uuid4().hex[:6]}.png"

    started = datetime.now(timezone.utc)
    pk = create_product(site, src, browsers[src], name, "13119.00", description, category,
                        (filename, "image/png", image))
    finished = datetime.now(timezone.utc)

    row = site.shell.call("product", pk=pk)
    stored = {k: row[k] for k in ("name", "description", "price", "category_id", "is_moderated", "owner", "image")}
    assert stored == {
        "name": name, "description": description, "price": "13119.00", "category_id": category,
        "is_moderated": False, "owner": owner, "image": "products/" + django_file_name(filename),
    }, f"the row {src} stored: {stored}"
    slack = timedelta(seconds=2)
    for field in ("created_at", "updated_at"):
        assert started - slack <= utc(row[field]) <= finished + slack, (
            f"{field} {row[field]} is not the UTC time of the request ({started} .. {finished})"
        )
    assert row["image_sha256"] == hashlib.sha256(image).hexdigest(), "the file in MEDIA_ROOT is not the upload"

    assert_same_detail(site, src, dst, browsers, pk, row)
    for side in (dst, src):
        r = browsers[side].get(row["image_url"])
        assert r.status == 200 and r.body == image, f"{side} GET {row['image_url']}: {r!r}"
    home = browsers[dst].get("/")
    assert home.status == 200 and html.escape(name) in home.text, f"{dst}'s home page does not list {name!r}"

    # The same file name uploaded on the other server: a new name as Django's
    # storage picks it (`<stem>_<7 letters or digits><ext>`), the first file untouched.
    other_image = png_bytes()
    pk2 = create_product(site, dst, browsers[dst], name + " 2", "1.00", "", None,
                         (filename, "image/png", other_image))
    row2 = site.shell.call("product", pk=pk2)
    stem = row["image"][: -len(".png")]
    assert re.fullmatch(re.escape(stem) + r"_[A-Za-z0-9]{7}\.png", row2["image"]), (
        f"{dst} stored the second upload of {filename!r} as {row2['image']!r} (the first is {row['image']!r})"
    )
    assert row2["image_sha256"] == hashlib.sha256(other_image).hexdigest()
    for side in (src, dst):
        r = browsers[side].get(row["image_url"])
        assert r.status == 200 and r.body == image, f"{side}: the first upload changed: {r!r}"


@pytest.mark.matrix("product edit (versions formset)")
@DIRECTIONS
def test_product_edited_on_one_shows_the_same_on_the_other(site, direction, owner_browsers):
    src, dst = sides(direction)
    owner, browsers = owner_browsers
    name = f"Пуэр {uuid.uuid4().hex[:8]}"
    pk = create_product(site, src, browsers[src], name, "1.00", "", None,
                        (f"p{uuid.uuid4().hex[:6]}.png", "image/png", png_bytes()))
    created = site.shell.call("product", pk=pk)
    path = f"/products/{pk}/update/"

    # Edit 1: the price, and two versions (the second current) through the formset.
    page = browsers[src].get(path)
    assert page.status == 200, f"{src} {path}: {page!r}"
    form = parse_form(page.text, id="product-form").set("price", "0.10").set("description", "Выдержанный")
    assert (form.get("versions-TOTAL_FORMS"), form.get("versions-INITIAL_FORMS")) == ("1", "0")
    set_version(form, 0, number=1, name="Первая")
    i = add_version_row(page.text, form)
    set_version(form, i, number=2, name="Вторая <i>&</i>", current=True)
    time.sleep(1.1)  # updated_at must move
    submit_update(site, src, browsers[src], pk, form)

    row = site.shell.call("product", pk=pk)
    assert (row["price"], row["description"], row["image"]) == ("0.10", "Выдержанный", created["image"]), row
    assert [v[1:] for v in row["versions"]] == [[1, "Первая", False], [2, "Вторая <i>&</i>", True]], row["versions"]
    assert row["created_at"] == created["created_at"], "editing changed created_at"
    assert utc(row["updated_at"]) > utc(created["updated_at"]), "editing did not move updated_at"
    assert_same_detail(site, src, dst, browsers, pk, row)
    _assert_same_formset(src, dst, browsers, path, row)

    # Edit 2: the largest price; the first version current, the second
    # deleted, a third added.
    page = browsers[src].get(path)
    form = parse_form(page.text, id="product-form").set("price", "99999999.99")
    set_version(form, 0, current=True)
    set_version(form, 1, current=False, delete=True)
    i = add_version_row(page.text, form)
    set_version(form, i, number=3, name="Третья")
    submit_update(site, src, browsers[src], pk, form)

    row = site.shell.call("product", pk=pk)
    assert row["price"] == "99999999.99", row
    assert [v[1:] for v in row["versions"]] == [[1, "Первая", True], [3, "Третья", False]], row["versions"]
    assert_same_detail(site, src, dst, browsers, pk, row)
    _assert_same_formset(src, dst, browsers, path, row)


def _assert_same_formset(src, dst, browsers, path, row):
    seen = {}
    for side in (src, dst):
        r = browsers[side].get(path)
        assert r.status == 200, f"{side} {path}: {r!r}"
        seen[side] = version_rows(r.text)
    expected = {
        "TOTAL_FORMS": len(row["versions"]) + 1,
        "INITIAL_FORMS": len(row["versions"]),
        "rows": [(str(v[0]), str(v[1]), v[2], v[3]) for v in row["versions"]] + [("", "", "", False)],
    }
    assert seen[dst] == expected, f"{dst}'s formset on {path}:\n{seen[dst]}\nexpected (the database):\n{expected}"
    assert seen[src] == seen[dst], f"the formsets differ:\n{src}: {seen[src]}\n{dst}: {seen[dst]}"


@pytest.mark.matrix("product delete")
@DIRECTIONS
def test_product_deleted_on_one_is_gone_on_the_other(site, direction, owner_browsers):
    src, dst = sides(direction)
    owner, browsers = owner_browsers
    name = f"Удаляемый {uuid.uuid4().hex[:8]}"
    image = png_bytes()
    pk = create_product(site, src, browsers[src], name, "5.00", "", None,
                        (f"d{uuid.uuid4().hex[:6]}.png", "image/png", image))
    page = browsers[src].get(f"/products/{pk}/update/")
    form = parse_form(page.text, id="product-form")
    set_version(form, 0, number=1, name="Единственная", current=True)
    submit_update(site, src, browsers[src], pk, form)
    row = site.shell.call("product", pk=pk)
    assert_same_detail(site, src, dst, browsers, pk, row)

    page = browsers[src].get(f"/products/{pk}/delete/")
    assert page.status == 200, f"{src} delete page: {page!r}"
    r = browsers[src].submit(parse_form(page.text, id="delete-form"), page_path=f"/products/{pk}/delete/")
    assert r.status == 302 and r.location == "/", f"delete on {src}: {r!r}\n{r.text[:2000]}"

    assert site.shell.call("product", pk=pk) is None
    assert site.shell.call("version_count", pk=pk) == 0, "the versions outlived their product"
    for suffix in ("", "update/", "delete/"):
        r = browsers[dst].get(f"/products/{pk}/{suffix}")
        assert r.status == 404, f"{dst} /products/{pk}/{suffix} after the delete on {src}: {r!r}"
    home = browsers[dst].get("/")
    assert home.status == 200 and html.escape(name) not in home.text, f"{dst}'s home page still lists it"
    # As Django: deleting the row leaves the uploaded file.
    r = browsers[dst].get(row["image_url"])
    assert r.status == 200 and r.body == image, f"{dst} GET {row['image_url']} after the delete: {r!r}"


# ================================================================ 6. SECRET_KEY rotation (restarts the servers: last)


def django_session_check(site, sids, secret_key, fallbacks=()):
    """What a Django with these keys makes of each session (signature and auth hash)."""
    env = reference_env(site.url, secret_key, site.django_env(fallbacks, extra={"EMAIL_BACKEND": "locmem"}))
    proc = subprocess.run(
        [str(site.venv_python), str(site.refproject_dir / "manage.py"), "shell", "-c",
         SESSION_CHECK % {"sids": list(sids)}],
        env=env, cwd=str(site.refproject_dir), capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, f"session check failed:\n{proc.stdout}\n{proc.stderr}"
    return last_json(proc.stdout, "session check")


@pytest.fixture
def rotated(site):
    """Sessions made on both servers under key A; then both restarted with
    SECRET_KEY=B, SECRET_KEY_FALLBACKS=A. Once per back end."""
    if site.rotation is None:
        made = {}
        for side in (UNCHAINED, DJANGO):
            address, password = new_user(site, f"rot-{side}")
            sessions = {}
            for use in ("self", "cross", "control"):
                sessions[use] = dict(login(site, side, address, password).cookies)
            made[side] = {"email": address, "password": password, "sessions": sessions}
        checked = django_session_check(
            site, [s["sessions"]["control"]["sessionid"] for s in made.values()], KEY_A)
        assert all(c["hash_ok"] for c in checked.values()), f"sessions under key A: {checked}"
        site.rotation = made
        site.restart(KEY_B, (KEY_A,))
    return site.rotation


@pytest.mark.matrix("SECRET_KEY rotation")
@DIRECTIONS
def test_secret_key_rotation(site, direction, rotated, unchained_bin):
    src, dst = sides(direction)
    user = rotated[src]
    address, sessions = user["email"], user["sessions"]

    # Sessions src made under A stay valid under B with fallback A, on both servers.
    crossed = site.browser(dst, sessions["cross"])
    assert_logged_in(crossed, address, f"{src}'s session from key A, on {dst} under B+A")
    assert_logged_in(site.browser(src, crossed.cookies), address,
                     f"that session after {dst} used it, back on {src}")
    own = site.browser(src, sessions["self"])
    assert_logged_in(own, address, f"{src}'s session from key A, on {src} under B+A")
    # Used once, such a session is re-signed with B (Django: get_user() meets
    # a hash from a fallback key, cycles the key and stores B's hash), so it
    # survives the day A leaves the fallbacks.
    used = {f"{src}'s session from key A after {dst} used it": crossed.cookies["sessionid"],
            f"{src}'s session from key A after {src} used it": own.cookies["sessionid"]}
    checked = django_session_check(site, used.values(), KEY_B)
    for label, sid in used.items():
        assert checked[sid] == {"row": True, "decoded": True, "user": address, "hash_ok": True}, (
            f"{label}: Django with B alone sees {checked[sid]}"
        )

    # A new login on src is signed with B alone...
    fresh = login(site, src, address, user["password"])
    new_sid, old_sid = fresh.cookies["sessionid"], sessions["control"]["sessionid"]
    checked = django_session_check(site, [new_sid, old_sid], KEY_B)
    assert checked[new_sid] == {"row": True, "decoded": True, "user": address, "hash_ok": True}, (
        f"Django with SECRET_KEY=B and no fallbacks, on the session {src} made after the rotation: "
        f"{checked[new_sid]}"
    )
    assert checked[old_sid]["row"] and not checked[old_sid]["hash_ok"], (
        f"control: Django with B alone verifies the untouched session made under A: {checked[old_sid]}"
    )
    # ...so a server started with B alone accepts it, and not the old one.
    with LiveServer(unchained_bin, site.url, KEY_B, env=site.unchained_env(),
                    log_path=site.workdir / f"serve-only-b-{src}.log").start() as only_b:
        assert_logged_in(_with_cookies(only_b.browser(), fresh.cookies), address,
                         f"unchained with B alone, {src}'s new session")
        assert_anonymous(_with_cookies(only_b.browser(), sessions["control"]),
                         f"unchained with B alone, {src}'s untouched session from key A")


def _with_cookies(browser, cookies):
    browser.cookies = dict(cookies)
    return browser
