"""Django admin on a database this project migrated and filled, and
`unchained check` on a database Django migrated and filled (issue 5).

A. Per back end: `unchained migrate`, `unchained createsuperuser --noinput`,
   then real data written by this project: users registered and confirmed
   through `unchained serve` (a profile with an avatar), products created
   (one with an image) and given versions through its forms, a moderator
   publishing them, groups and permissions through `unchained
   setup-moderators` / `unchained group`; only the categories and one user
   permission (the site has no page for them) come from Django's ORM. Then
   the reference project, with Django's test Client in a subprocess, logs in
   at /admin/login/ as that superuser and, for every model in
   `admin.site._registry` (a model registered later is covered without
   touching this file), GETs the change list (searched, sorted, and with
   every choice of its filter sidebar), the add page, the change page of
   every object, the history and delete-confirmation pages, and POSTs every
   change form back as shown: each must redirect (302) to the change list
   and leave the row as it was. Beside that: the blank optional fields
   unchained stored are compared with what Django's own forms store, and
   `unchained check` must still call the database safe after the admin saved.

B. Per back end: `manage.py migrate`, a superuser, then real data in every
   table Django made (pbkdf2 users made by Django, groups and their
   permissions, user permissions and groups, sessions from logins, admin log
   entries from changes made through the admin, categories, products with an
   image, versions), proven by counting the rows of every table the database
   has. `unchained check` must call it safe and change nothing (rows, and on
   SQLite the file itself; on PostgreSQL pg_dump; on MariaDB mariadb-dump);
   then broken copies (a dropped column, the catalog.0001_initial row
   deleted from django_migrations, a password hashed with an algorithm
   Django 5.2's default PASSWORD_HASHERS cannot verify) must each be called
   not safe, naming the problem.

Each back end's databases are built once per module; the broken cases work
on copies (a copied SQLite file; CREATE DATABASE ... TEMPLATE on
PostgreSQL; on MariaDB a new database the original's mariadb-dump is
replayed into), dropped afterwards.
"""
import json
import re
import shutil
import subprocess
import sys
import urllib.parse
import uuid
from pathlib import Path

import pytest

from django_side import last_json
from live import (Database, LiveServer, ModuleDatabase, confirmation_link, form_token, mysql_dump,
                  parse_form, png_bytes, reference_env)
from test_check import run_check, says_safe

TESTS_DIR = Path(__file__).resolve().parent
COMPAT_DIR = TESTS_DIR.parent
REFPROJECT_DIR = COMPAT_DIR / "refproject"

SECRET_KEY = "Xq3vTb9LmZ0pR7kW2yH5sD8fJ1nC4gE6uA0oI9tB3cQ="  # conftest.TEST_SECRET_KEY: 44 characters, as `openssl rand -base64 32`
ALLOWED_HOSTS = "127.0.0.1,localhost,testserver"
ADMIN_EMAIL = "root@example.com"
ADMIN_PASSWORD = "Adm1n-пароль-2025"
USER_PASSWORD = "Correct-Horse-42"

ADMIN_DIRECTION = "on an unchained-migrated DB"
CHECK_DIRECTION = "on a Django-migrated DB"


# ---------------------------------------------------------------- helpers


def client_settings(extra=None):
    """What the reference project needs to run Django's test Client and send no mail."""
    env = {"ALLOWED_HOSTS": ALLOWED_HOSTS, "DEBUG": "0", "EMAIL_BACKEND": "locmem"}
    env.update(extra or {})
    return env


# ---------------------------------------------------------------- the registry, at collection


def _venv_python():
    candidate = COMPAT_DIR / ".venv" / "bin" / "python"
    return candidate if candidate.exists() else Path(sys.executable)


# Used only when the reference project cannot be loaded at collection time;
# test_every_registered_model_was_checked then compares with the real registry.
_FALLBACK_ADMIN_MODELS = ["auth.group", "users.user", "catalog.category", "catalog.product", "catalog.version"]


def _registered_admin_models():
    code = (
        "import json, os, sys; sys.path.insert(0, os.getcwd());"
        "os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings';"
        "import django; django.setup();"
        "from django.contrib import admin;"
        "print('RESULT ' + json.dumps([m._meta.label_lower for m in admin.site._registry]))"
    )
    try:
        proc = subprocess.run([str(_venv_python()), "-c", code], cwd=REFPROJECT_DIR,
                              env=reference_env("sqlite:///:memory:", SECRET_KEY),
                              capture_output=True, text=True, timeout=120)
        return last_json(proc.stdout, "admin registry")
    except Exception:  # noqa: BLE001 - reported by test_every_registered_model_was_checked
        return list(_FALLBACK_ADMIN_MODELS)


ADMIN_MODELS = _registered_admin_models()


# ================================================================ A. Django admin


ADMIN_SCRIPT = r'''
import datetime
import decimal
import html
import json
import os
import re
import sys
import traceback

admin_email, admin_password, out_path, tests_dir = sys.argv[1:5]
sys.path.insert(0, os.getcwd())
# live.py (standard library only): the admin's change forms are read as a
# browser submits them, with the form reader the tests use on unchained's pages.
sys.path.append(tests_dir)
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
import django
django.setup()

from django.contrib import admin
from django.forms.models import _get_foreign_key
from django.test import Client
from django.urls import reverse
from live import parse_forms


def plain(value):
    if isinstance(value, datetime.datetime):
        # The admin's time inputs show seconds, so a saved form drops the
        # microseconds (Django does this to its own rows too).
        return value.replace(microsecond=0).isoformat()
    if isinstance(value, (datetime.date, datetime.time, decimal.Decimal)):
        return str(value)
    if hasattr(value, "name") and hasattr(value, "storage"):  # FieldFile
        return value.name or None
    return value


def stored(field, obj):
    """The field's value, with NULL read as "" where the field's form field
    saves an empty input as "" (a TextField(null=True): Django's admin turns
    NULL into "" on rows Django's ORM wrote too, so here that is no sign of a
    difference; test_blank_fields_are_stored_as_django_forms_store_them
    compares what unchained stores with what Django's forms store)."""
    value = plain(field.value_from_object(obj))
    if value is None and field.null:
        formfield = field.formfield() if field.editable else None
        if formfield is not None and getattr(formfield, "empty_value", None) == "":
            return ""
    return value


def row_of(model, obj):
    return {f.attname: stored(f, obj) for f in model._meta.concrete_fields if not getattr(f, "auto_now", False)}


def snapshot(model, ma, pk):
    obj = model._default_manager.get(pk=pk)
    row = row_of(model, obj)
    for m2m in model._meta.many_to_many:
        row[m2m.name] = sorted(getattr(obj, m2m.name).values_list("pk", flat=True))
    for inline in ma.inlines:
        fk = _get_foreign_key(model, inline.model, inline.fk_name)
        related = inline.model._default_manager.filter(**{fk.name: obj}).order_by("pk")
        row[f"inline {inline.model._meta.label_lower}"] = [row_of(inline.model, r) for r in related]
    return row


def errors_in(page):
    """The admin's error notes and error lists, for a failure message."""
    notes = re.findall(r'<p class="errornote">(.*?)</p>', page, re.S)
    lists = re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', page, re.S)
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", x)).strip() for x in notes + lists]


result = {"login": None, "index": None, "registry": [], "models": {}}
client = Client()
r = client.get("/admin/login/?next=/admin/")
result["login_page"] = r.status_code
r = client.post("/admin/login/?next=/admin/",
                {"username": admin_email, "password": admin_password, "next": "/admin/"})
result["login"] = {"status": r.status_code, "location": r.get("Location"),
                   "errors": errors_in(r.content.decode()) if r.status_code != 302 else []}
r = client.get("/admin/")
index_html = r.content.decode("utf-8", "replace")
result["index"] = {"status": r.status_code}

for model, ma in admin.site._registry.items():
    label = model._meta.label_lower
    result["registry"].append(label)
    info = (model._meta.app_label, model._meta.model_name)
    res = {"objects": 0, "pages": [], "posts": [], "in_index": None}
    result["models"][label] = res
    try:
        changelist = reverse("admin:%s_%s_changelist" % info)
        res["in_index"] = f'href="{changelist}"' in index_html

        def page(what, url):
            resp = client.get(url)
            entry = {"what": what, "url": url, "status": resp.status_code}
            if resp.status_code != 200:
                entry["body"] = resp.content.decode("utf-8", "replace")[:1500]
            res["pages"].append(entry)
            return resp

        listing = page("change list", changelist).content.decode("utf-8", "replace")
        if ma.search_fields:
            page("change list search", changelist + "?q=e")
        page("change list sorted", changelist + "?o=-1")
        # Every choice of the filter sidebar, as rendered.
        sidebar = re.search(r'<nav id="changelist-filter".*?</nav>', listing, re.S)
        for query in sorted({html.unescape(q) for q in re.findall(r'href="(\?[^"]+)"', sidebar.group(0) if sidebar else "")}):
            page(f"change list filter {query}", changelist + query)
        page("add", reverse("admin:%s_%s_add" % info))
        pks = list(model._default_manager.order_by("pk").values_list("pk", flat=True))
        res["objects"] = len(pks)
        for pk in pks:
            page(f"change {pk}", reverse("admin:%s_%s_change" % info, args=[pk]))
        if pks:
            page(f"history {pks[0]}", reverse("admin:%s_%s_history" % info, args=[pks[0]]))
            page(f"delete {pks[0]}", reverse("admin:%s_%s_delete" % info, args=[pks[0]]))
        # Every change form posted back as the page shows it.
        for pk in pks:
            url = reverse("admin:%s_%s_change" % info, args=[pk])
            entry = {"pk": pk, "status": None}
            res["posts"].append(entry)
            form_page = client.get(url).content.decode("utf-8", "replace")
            forms = [f for f in parse_forms(form_page) if f.id == f"{info[1]}_form"]
            if not forms:
                entry["error"] = f"no form #{info[1]}_form on the change page"
                continue
            data = {}
            for name, value in forms[0].fields:
                data.setdefault(name, []).append(value)
            before = snapshot(model, ma, pk)
            resp = client.post(url, data)
            entry["status"] = resp.status_code
            entry["location"] = resp.get("Location")
            entry["expected_location"] = changelist
            if resp.status_code != 302:
                entry["errors"] = errors_in(resp.content.decode("utf-8", "replace"))
                entry["posted"] = data
            after = snapshot(model, ma, pk)
            entry["changed"] = {k: [before.get(k), after.get(k)] for k in sorted(set(before) | set(after))
                                if before.get(k) != after.get(k)}
    except Exception:
        res["exception"] = traceback.format_exc()

with open(out_path, "w", encoding="utf-8") as f:
    json.dump(result, f, default=str, ensure_ascii=False, indent=1)
print("RESULT " + json.dumps({"done": True}))
'''

ORM_CATEGORIES = r"""
from catalog.models import Category
for name, description in [("Кофемашины", "Для дома и офиса"), ("Кофе", None), ("Аксессуары & <прочее>", "")]:
    Category.objects.create(name=name, description=description)
print("RESULT " + __import__("json").dumps(dict(Category.objects.values_list("name", "id"))))
"""

ORM_USER_PERMISSION = r"""
import json, sys
from django.contrib.auth.models import Permission
from users.models import User
u = User.objects.get(email=%r)
u.user_permissions.add(Permission.objects.get(content_type__app_label="catalog", codename="delete_product"))
print("RESULT " + json.dumps(list(u.user_permissions.values_list("codename", flat=True))))
"""


class SiteUser:
    """One visitor of `unchained serve`, driving its forms over HTTP."""

    def __init__(self, server, mail_dir, db, address):
        self.server, self.mail_dir, self.db, self.address = server, mail_dir, db, address
        self.browser = server.browser()

    def register_and_confirm(self):
        page = self.browser.get("/users/register/")
        assert page.status == 200, page
        r = self.browser.post("/users/register/", {
            "csrfmiddlewaretoken": form_token(page.text),
            "email": self.address, "password1": USER_PASSWORD, "password2": USER_PASSWORD,
        })
        assert r.status in (200, 302), f"register {self.address}: {r!r}\n{r.text[:2000]}"
        link = confirmation_link(self.mail_dir, self.address, logs=self.server.log_text)
        r = self.browser.get(urllib.parse.urlsplit(link).path)
        assert r.status == 302 and r.location == "/users/login/", f"confirm {self.address}: {r!r}"
        return self

    def login(self):
        page = self.browser.get("/users/login/")
        r = self.browser.post("/users/login/", {"csrfmiddlewaretoken": form_token(page.text),
                                                "username": self.address, "password": USER_PASSWORD})
        assert r.status == 302 and r.location == "/", f"login of {self.address}: {r!r}\n{r.text[:2000]}"
        return self

    def submit(self, path, form_attrs, files=None, expect_location=None, **values):
        """The page's form (parse_form's id= or action=) posted with these
        values set; `files` maps a file input to (filename, content type, bytes)."""
        page = self.browser.get(path)
        assert page.status == 200, f"GET {path} as {self.address}: {page!r}"
        form = parse_form(page.text, **form_attrs)
        for name, value in values.items():
            form.set(name, value)
        r = self.browser.submit(form, files=files, page_path=path)
        assert r.status == 302, f"POST {path} as {self.address}: {r!r}\n{r.text[:4000]}"
        if expect_location is not None:
            assert r.location == expect_location, f"POST {path}: redirected to {r.location!r}"
        return r


def fill_through_the_site(url, workdir, run_unchained, run_manage, unchained_bin):
    """Real data written by unchained (plus categories from Django's ORM)."""
    db = Database(url)
    categories = last_json(run_manage(url, "shell", "-c", ORM_CATEGORIES).stdout, "categories")
    media_root = workdir / "media"
    mail_dir = workdir / "mail"
    media_root.mkdir()
    mail_dir.mkdir()
    server = LiveServer(
        unchained_bin, url, SECRET_KEY,
        env={"ALLOWED_HOSTS": ALLOWED_HOSTS, "DEBUG": "0", "EMAIL_BACKEND": "file",
             "EMAIL_FILE_PATH": mail_dir, "MEDIA_ROOT": media_root},
        log_path=workdir / "serve.log",
    )
    with server.start():
        owner = SiteUser(server, mail_dir, db, "owner@example.com").register_and_confirm().login()
        owner.submit("/users/profile/", {"action": "/users/profile/"},
                     files={"avatar": ("me.png", "image/png", png_bytes(rgb=(10, 120, 200)))},
                     first_name="Анна", last_name="О'Нил", phone="+7 (900) 123-45-67", country="Россия")
        row = db.one("SELECT first_name, phone, avatar FROM users_user WHERE email = %s", owner.address)
        assert row[0] == "Анна" and row[1] == "+7 (900) 123-45-67" and row[2], row

        # A full product with an image, and a bare one.
        owner.submit("/products/create/", {"id": "product-form"}, expect_location="/",
                     files={"image": ("espresso cup.png", "image/png", png_bytes())},
                     name="Эспрессо-машина", description="Двойной бойлер.\nГотовит <b>крепкий</b> кофе & чай.",
                     category=str(categories["Кофемашины"]), price="13119.00")
        owner.submit("/products/create/", {"id": "product-form"}, expect_location="/",
                     name="Фильтры", description="", category="", price="0.50")
        full = db.one("SELECT id, image FROM catalog_product WHERE name = %s", "Эспрессо-машина")
        assert full[1] and full[1].startswith("products/"), full
        pk = full[0]
        owner.submit(f"/products/{pk}/update/", {"id": "product-form"},
                     expect_location=f"/products/{pk}/",
                     **{"versions-TOTAL_FORMS": "2",
                        "versions-0-version_number": "1", "versions-0-version_name": "Первая <серия>",
                        "versions-0-is_current": "on",
                        "versions-1-version_number": "2", "versions-1-version_name": "Вторая",
                        "versions-1-product": str(pk), "versions-1-id": ""})
        versions = db.rows("SELECT version_number, version_name, is_current FROM catalog_version"
                           " WHERE product_id = %s ORDER BY version_number", pk)
        assert [(v[0], v[1], bool(v[2])) for v in versions] == [
            (1, "Первая <серия>", True), (2, "Вторая", False)], versions

        # Groups and permissions through the command line; a moderator publishes.
        moderator = SiteUser(server, mail_dir, db, "moderator@example.com").register_and_confirm()
        run_unchained(url, "setup-moderators")
        run_unchained(url, "group", "add-user", "moderators", moderator.address)
        run_unchained(url, "group", "create", "редакторы")
        run_unchained(url, "group", "grant", "редакторы", "catalog.add_product", "catalog.change_product",
                      "catalog.view_category", "users.view_user")
        run_unchained(url, "group", "add-user", "редакторы", owner.address)
        run_unchained(url, "group", "add-user", "редакторы", moderator.address)
        moderator.login()
        moderator.submit(f"/products/{pk}/update/", {"id": "product-form"},
                         expect_location=f"/products/{pk}/", is_moderated="on")
        assert bool(db.one("SELECT is_moderated FROM catalog_product WHERE id = %s", pk)[0])
        bare = db.one("SELECT id FROM catalog_product WHERE name = %s", "Фильтры")[0]
        moderator.submit(f"/products/{bare}/update/", {"id": "product-form"},
                         expect_location=f"/products/{bare}/", is_moderated="on", description="")
        # A registered user who never confirmed (inactive, with a token).
        pending = SiteUser(server, mail_dir, db, "pending@example.com")
        page = pending.browser.get("/users/register/")
        r = pending.browser.post("/users/register/", {
            "csrfmiddlewaretoken": form_token(page.text), "email": pending.address,
            "password1": USER_PASSWORD, "password2": USER_PASSWORD})
        assert r.status in (200, 302), r
    perms = last_json(run_manage(url, "shell", "-c", ORM_USER_PERMISSION % "owner@example.com").stdout,
                      "user permission")
    assert perms == ["delete_product"], perms
    # What unchained stored for fields left blank, before Django's admin saves anything.
    user_columns = ("first_name", "last_name", "phone", "country", "avatar", "token", "is_staff", "is_superuser")
    moderator_row = db.one(f"SELECT {', '.join(user_columns)} FROM users_user WHERE email = %s",
                           "moderator@example.com")
    stored = {
        "catalog_product.description of a product saved with the description left empty":
            db.one("SELECT description FROM catalog_product WHERE name = %s", "Фильтры")[0],
        "users_user of a registered, confirmed user": {
            k: (bool(v) if k.startswith("is_") else v) for k, v in zip(user_columns, moderator_row)},
    }
    return media_root, stored


# What Django's own forms and views of the reference project would store for
# the same input (nothing is saved: commit=False).
DJANGO_BLANK_VALUES = r"""
import json
from catalog.forms import ProductForm, ProductModeratorForm
from users.forms import UserRegisterForm
password = %r
owner_form = ProductForm(data={"name": "Фильтры", "description": "", "category": "", "price": "0.50"})
assert owner_form.is_valid(), owner_form.errors
moderator_form = ProductModeratorForm(data={"is_moderated": "on", "description": "", "category": ""})
assert moderator_form.is_valid(), moderator_form.errors
assert owner_form.save(commit=False).description == moderator_form.save(commit=False).description
register = UserRegisterForm(data={"email": "blank-values@example.com", "password1": password, "password2": password})
assert register.is_valid(), register.errors
user = register.save(commit=False)
print("RESULT " + json.dumps({
    "catalog_product.description of a product saved with the description left empty":
        owner_form.save(commit=False).description,
    "users_user of a registered, confirmed user": {
        "first_name": user.first_name, "last_name": user.last_name, "phone": user.phone,
        "country": user.country, "avatar": user.avatar.name or None,
        "token": None,  # users/views.py email_confirm: user.token = None
        "is_staff": user.is_staff, "is_superuser": user.is_superuser,
    },
}))
"""


@pytest.fixture
def admin_site(db_backend, _sites, request, tmp_path_factory, run_unchained, run_manage,
               unchained_bin, venv_python):
    """The back end's unchained-migrated, site-filled database and what the
    Django admin answered on it; made once per module."""

    def build(cleanup):
        workdir = tmp_path_factory.mktemp(f"admin-{db_backend}")
        database = ModuleDatabase(request, db_backend, workdir, "admin")
        cleanup.callback(database.drop)
        site = {"database": database, "url": database.url, "workdir": workdir}
        url = database.url
        run_unchained(url, "migrate")
        run_unchained(url, "createsuperuser", "--noinput", "--email", ADMIN_EMAIL,
                      env={"DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD})
        media_root, site["unchained_values"] = fill_through_the_site(
            url, workdir, run_unchained, run_manage, unchained_bin)
        site["counts"] = database.db.row_counts()
        site["django_values"] = last_json(
            run_manage(url, "shell", "-c", DJANGO_BLANK_VALUES % USER_PASSWORD).stdout, "Django's blank values")

        script = workdir / "admin_walk.py"
        script.write_text(ADMIN_SCRIPT, encoding="utf-8")
        out = workdir / "admin_walk.json"
        env = reference_env(url, SECRET_KEY, client_settings({"MEDIA_ROOT": str(media_root)}))
        proc = subprocess.run([str(venv_python), str(script), ADMIN_EMAIL, ADMIN_PASSWORD, str(out),
                               str(TESTS_DIR)],
                              cwd=REFPROJECT_DIR, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0 and out.exists(), (
            f"the Django admin walk failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
        site["result"] = json.loads(out.read_text(encoding="utf-8"))
        return site

    return _sites.get(("admin", db_backend), build)


@pytest.mark.matrix("Django admin: log in", ADMIN_DIRECTION)
def test_django_admin_logs_in_on_an_unchained_database(db_backend, admin_site):
    # Every table unchained made holds rows, so the admin had something to show.
    counts = admin_site["counts"]
    for table in ("users_user", "users_user_groups", "users_user_user_permissions", "auth_group",
                  "auth_group_permissions", "catalog_category", "catalog_product", "catalog_version",
                  "django_session"):
        assert counts.get(table), f"{table} is empty after filling through the site: {counts}"
    result = admin_site["result"]
    assert result["login_page"] == 200, result
    login = result["login"]
    # Django's ModelBackend verified the pbkdf2 hash unchained's createsuperuser made.
    assert login["status"] == 302 and login["location"] == "/admin/", (
        f"the superuser unchained made cannot log in to Django admin: {login}")
    assert result["index"]["status"] == 200, result["index"]


def test_every_registered_model_was_checked(db_backend, admin_site):
    """The per-model tests were collected from the registry; the registry the
    admin walk saw must be the same list (no model left unchecked)."""
    assert admin_site["result"]["registry"] == ADMIN_MODELS


@pytest.mark.parametrize("model", [
    pytest.param(label, id=label, marks=pytest.mark.matrix(f"Django admin: {label}", ADMIN_DIRECTION))
    for label in ADMIN_MODELS
])
def test_django_admin_pages_and_saves(db_backend, admin_site, model):
    result = admin_site["result"]
    assert result["login"]["status"] == 302, f"the admin login failed: {result['login']}"
    res = result["models"].get(model)
    assert res is not None, f"{model} is not registered in the admin the walk saw: {result['registry']}"
    assert "exception" not in res, f"{model}: the admin walk raised:\n{res['exception']}"
    assert res["in_index"], f"{model}: the admin index has no link to its change list"
    assert res["objects"] > 0, f"{model}: no rows to show, the fill missed this model"

    bad_pages = [p for p in res["pages"] if p["status"] != 200]
    assert not bad_pages, f"{model}: pages that did not answer 200:\n" + "\n".join(
        f"  {p['what']} {p['url']} -> {p['status']}\n{p.get('body', '')[:800]}" for p in bad_pages)
    whats = {p["what"].split()[0] for p in res["pages"]}
    assert {"change", "add", "history", "delete"} <= whats, res["pages"]

    assert len(res["posts"]) == res["objects"], res["posts"]
    failures = []
    for post in res["posts"]:
        if post.get("error") or post["status"] != 302 or post["location"] != post["expected_location"]:
            failures.append(f"  pk {post['pk']}: {post.get('error') or post['status']} -> "
                            f"{post.get('location')} errors={post.get('errors')} posted={post.get('posted')}")
        elif post["changed"]:
            failures.append(f"  pk {post['pk']}: an unchanged form changed the row: {post['changed']}")
    assert not failures, f"{model}: saving the change form as shown:\n" + "\n".join(failures)


@pytest.mark.matrix("values: blank optional fields", "unchained→Django")
def test_blank_fields_are_stored_as_django_forms_store_them(db_backend, admin_site):
    """Fields left blank in unchained's forms hold what Django's forms would
    have stored (NULL and "" are different values to Django's ORM:
    filter(description="") finds one and not the other)."""
    expected, actual = admin_site["django_values"], admin_site["unchained_values"]
    differences = {k: {"unchained": actual[k], "Django": expected[k]} for k in expected if actual[k] != expected[k]}
    assert not differences, json.dumps(differences, ensure_ascii=False, indent=1)


@pytest.mark.matrix("check: after Django admin saves", ADMIN_DIRECTION)
def test_check_still_safe_after_the_admin_saved(db_backend, admin_site, run_unchained):
    code, output = run_check(run_unchained, admin_site["url"])
    assert code == 0 and says_safe(output), output


# ================================================================ B. check on real Django data


FILL_DJANGO = r"""
import json
from pathlib import Path
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, Permission
from django.contrib.sessions.models import Session
from django.test import Client
from catalog.models import Category, Product, Version
from users.models import User

ADMIN_EMAIL, ADMIN_PASSWORD, USER_PASSWORD = %r, %r, %r


def perm(name):
    app_label, codename = name.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


owner = User.objects.create_user(
    email="owner@example.com", password=USER_PASSWORD, first_name="Анна", last_name="О'Нил",
    phone="+7 (900) 123-45-67", country="Россия", avatar="users/avatars/anna.png")
moderator = User.objects.create_user(email="moderator@example.com", password=USER_PASSWORD, is_staff=True)
pending = User.objects.create_user(email="pending@example.com", password=USER_PASSWORD, is_active=False,
                                   token="8b1f0c0e6f7d4e0a9a3c5b2d1e4f6a7b")
User.objects.create_user(email="nopassword@example.com")  # unusable password

moderators = Group.objects.create(name="moderators")
moderators.permissions.set([perm("catalog.can_publish_product"), perm("catalog.can_change_description"),
                            perm("catalog.can_change_category")])
editors = Group.objects.create(name="редакторы")
editors.permissions.set([perm("catalog.add_product"), perm("catalog.change_product"),
                         perm("catalog.view_category")])
moderator.groups.add(moderators, editors)
owner.groups.add(editors)
moderator.user_permissions.add(perm("catalog.view_product"), perm("users.view_user"), perm("admin.view_logentry"))
owner.user_permissions.add(perm("catalog.delete_product"))

machines = Category.objects.create(name="Кофемашины", description="Для дома и офиса")
Category.objects.create(name="Кофе")
media = Path(settings.MEDIA_ROOT) / "products"
media.mkdir(parents=True, exist_ok=True)
(media / "espresso_cup.png").write_bytes(bytes.fromhex(%r))
espresso = Product.objects.create(name="Эспрессо-машина", description="Двойной бойлер.", category=machines,
                                  image="products/espresso_cup.png", price="13119.00", owner=owner,
                                  is_moderated=True)
Product.objects.create(name="Фильтры", price="0.50", owner=owner)
Product.objects.create(name="Ничей", price="1.00")
Version.objects.create(product=espresso, version_number=1, version_name="Первая", is_current=False)
Version.objects.create(product=espresso, version_number=2, version_name="Вторая", is_current=True)

# Sessions: a login through the site's form and one through the admin's.
site = Client()
r = site.post("/users/login/", {"username": owner.email, "password": USER_PASSWORD})
assert r.status_code == 302, (r.status_code, r.content[:2000])
staff = Client()
r = staff.post("/admin/login/?next=/admin/", {"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD,
                                              "next": "/admin/"})
assert r.status_code == 302 and r["Location"] == "/admin/", (r.status_code, r.content[:2000])

# Admin log entries: an addition and a change made through the admin.
r = staff.post("/admin/catalog/category/add/", {"name": "Аксессуары", "description": "Из админки"})
assert r.status_code == 302, (r.status_code, r.content[:3000])
r = staff.post(f"/admin/catalog/category/{machines.pk}/change/",
               {"name": "Кофемашины", "description": "Изменено в админке"})
assert r.status_code == 302, (r.status_code, r.content[:3000])
assert LogEntry.objects.count() >= 2

print("RESULT " + json.dumps({
    "users": User.objects.count(), "sessions": Session.objects.count(),
    "log_entries": LogEntry.objects.count(),
    "hashes": sorted({u.password.split("$")[0] for u in User.objects.all()}),
}))
"""

# Hashes of algorithms Django 5.2's default PASSWORD_HASHERS cannot verify,
# each made the way the Django that wrote it did; Django itself confirms it
# cannot identify them (identify_hasher raises, check_password is False).
UNSUPPORTED_HASHES = r"""
import hashlib, json
from django.contrib.auth.hashers import (BCryptPasswordHasher, MD5PasswordHasher, check_password,
                                         identify_hasher)
password = %r
hashes = {
    # still shipped by Django 5.2, but not in the default PASSWORD_HASHERS
    "md5": MD5PasswordHasher().encode(password, "Dm6jUp6Yy8bX2kzNmuaQ9r"),
    "bcrypt": BCryptPasswordHasher().encode(password, BCryptPasswordHasher().salt()),
    # removed from Django (SHA1PasswordHasher and UnsaltedMD5PasswordHasher in 5.1, CryptPasswordHasher in 5.0)
    "sha1": "sha1$Xq8rUvB2$" + hashlib.sha1(b"Xq8rUvB2" + password.encode()).hexdigest(),
    "unsalted_md5": hashlib.md5(password.encode()).hexdigest(),
    "crypt": "crypt$$abN0vS4Y1tT5Q",
}
for algorithm, encoded in hashes.items():
    try:
        identify_hasher(encoded)
    except ValueError:
        pass
    else:
        raise AssertionError(f"Django 5.2 identifies {algorithm} hashes; pick another")
    assert not check_password(password, encoded), algorithm
print("RESULT " + json.dumps(hashes))
"""

DJANGO_TABLES = {
    "auth_group", "auth_group_permissions", "auth_permission", "catalog_category", "catalog_product",
    "catalog_version", "django_admin_log", "django_content_type", "django_migrations", "django_session",
    "users_user", "users_user_groups", "users_user_user_permissions",
}


@pytest.fixture
def django_site(db_backend, _sites, request, tmp_path_factory, run_manage):
    """The back end's database migrated and filled by Django; made once per module."""

    def build(cleanup):
        workdir = tmp_path_factory.mktemp(f"check-{db_backend}")
        database = ModuleDatabase(request, db_backend, workdir, "check")
        cleanup.callback(database.drop)
        site = {"database": database, "url": database.url, "workdir": workdir}
        url = database.url
        run_manage(url, "migrate", "--noinput")
        run_manage(url, "createsuperuser", "--noinput",
                   env={"DJANGO_SUPERUSER_EMAIL": ADMIN_EMAIL, "DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD})
        env = client_settings({"MEDIA_ROOT": str(workdir / "media")})
        site["fill"] = last_json(run_manage(
            url, "shell", "-c", FILL_DJANGO % (ADMIN_EMAIL, ADMIN_PASSWORD, USER_PASSWORD, png_bytes().hex()),
            env=env).stdout, "filling with Django")
        site["hashes"] = last_json(run_manage(url, "shell", "-c", UNSUPPORTED_HASHES % USER_PASSWORD).stdout,
                                   "unsupported hashes")
        site["counts"] = database.db.row_counts()
        if db_backend == "sqlite":
            # The file as Django left it, before any `unchained` opened it.
            site["pristine"] = workdir / "pristine.sqlite3"
            shutil.copyfile(database.path, site["pristine"])
        return site

    return _sites.get(("check", db_backend), build)


@pytest.mark.matrix("check: real data", CHECK_DIRECTION)
def test_check_says_safe_on_a_full_django_database(db_backend, django_site, run_unchained):
    counts = django_site["counts"]
    assert DJANGO_TABLES <= set(counts), f"tables Django should have made are missing: {sorted(counts)}"
    empty = sorted(t for t, n in counts.items() if n == 0)
    assert not empty, f"tables left empty, the data is not real enough: {empty} ({counts})"
    hashes = django_site["fill"]["hashes"]  # algorithms of the users' hashes ("!..." = unusable)
    assert "pbkdf2_sha256" in hashes and all(h == "pbkdf2_sha256" or h.startswith("!") for h in hashes), hashes

    code, output = run_check(run_unchained, django_site["url"])
    assert code == 0, f"check refused a Django database full of real data:\n{output}"
    assert says_safe(output), output
    assert not re.search(r"^\s*ERROR", output, re.M), output
    # The tests' key has 44 characters, as `openssl rand -base64 32` makes
    # one: Django runs with it and `check --deploy` warns (security.W009);
    # unchained's check gives that warning and nothing else.
    warnings = re.findall(r"^\s*WARNING: (.*)$", output, re.M)
    assert [w[:16] for w in warnings] == ["(security.W009) "], output

    # Looking is all `check` does: the same tables with the same rows.
    assert django_site["database"].db.row_counts() == counts, "unchained check changed the database"


def sqlite_journal_mode(path):
    """From the file header, without opening it: bytes 18 and 19 are 1 for a
    rollback journal, 2 for WAL."""
    header = Path(path).read_bytes()[:20]
    return {(1, 1): "rollback journal", (2, 2): "WAL"}.get((header[18], header[19]), repr(header[18:20]))


def pg_dump(pg_bindir, url):
    out = subprocess.run([str(pg_bindir / "pg_dump"), "--no-owner", "--no-privileges", url],
                         check=True, capture_output=True, text=True, timeout=300).stdout
    # \restrict lines carry a random key per run (pg_dump 17.6+).
    return "\n".join(line for line in out.splitlines() if not line.startswith(("\\restrict", "\\unrestrict")))


@pytest.mark.matrix("check: changes nothing", CHECK_DIRECTION)
def test_check_changes_nothing(db_backend, django_site, run_unchained, request):
    """docs/MIGRATING.md: "`check` changes nothing" -- not a row, and not the file either."""
    problems = []
    if db_backend == "sqlite":
        target = django_site["workdir"] / f"untouched-{uuid.uuid4().hex[:6]}.sqlite3"
        shutil.copyfile(django_site["pristine"], target)
        before, mode_before = target.read_bytes(), sqlite_journal_mode(target)
        code, output = run_check(run_unchained, f"sqlite:///{target}")
        assert code == 0 and says_safe(output), output
        leftovers = sorted(p.name for p in target.parent.glob(target.name + "-*"))
        mode_after = sqlite_journal_mode(target)
        if mode_after != mode_before:
            problems.append(f"the file's journal mode went from {mode_before} to {mode_after}"
                            " (PRAGMA journal_mode is kept in the file header)")
        elif target.read_bytes() != before:
            problems.append("the file's bytes changed")
        if leftovers:
            problems.append(f"it left {leftovers} beside the file")
        # A mistyped path is an error to report, not a database to create.
        missing = django_site["workdir"] / f"no-such-{uuid.uuid4().hex[:6]}.sqlite3"
        code, output = run_check(run_unchained, f"sqlite:///{missing}")
        if code == 0:
            problems.append(f"check exited 0 on a missing file:\n{output}")
        if missing.exists():
            problems.append(f"check on a missing file created it ({missing.stat().st_size} bytes,"
                            f" journal mode {sqlite_journal_mode(missing)})")
    elif db_backend == "mysql":
        before = mysql_dump(django_site["url"])
        code, output = run_check(run_unchained, django_site["url"])
        assert code == 0 and says_safe(output), output
        if mysql_dump(django_site["url"]) != before:
            problems.append("mariadb-dump (schema, triggers and data) differs after check")
    else:
        pg_bindir = request.getfixturevalue("pg_bindir")
        before = pg_dump(pg_bindir, django_site["url"])
        code, output = run_check(run_unchained, django_site["url"])
        assert code == 0 and says_safe(output), output
        if pg_dump(pg_bindir, django_site["url"]) != before:
            problems.append("pg_dump (schema and data) differs after check")
    assert not problems, "unchained check changed things:\n- " + "\n- ".join(problems)


def _broken_copy_case(django_site, run_unchained, label, break_it, must_name):
    database = django_site["database"]
    url, drop = database.copy(django_site["workdir"], label)
    try:
        copy = Database(url)
        assert copy.row_counts() == django_site["counts"], "the copy differs from the original"
        changed = break_it(copy)
        assert changed == 1, f"breaking the copy changed {changed} rows"
        code, output = run_check(run_unchained, url)
        assert code != 0, f"check exited 0 on a broken database ({label}):\n{output}"
        assert not says_safe(output), output
        for pattern in must_name:
            assert re.search(pattern, output), f"check does not name {pattern!r} ({label}):\n{output}"
        return output
    finally:
        drop()


MISSING_COLUMNS = [("users_user", "phone"), ("catalog_product", "image"), ("catalog_version", "version_name")]


@pytest.mark.parametrize("table,column", [
    pytest.param(t, c, id=f"{t}.{c}", marks=pytest.mark.matrix("check: missing column", CHECK_DIRECTION))
    for t, c in MISSING_COLUMNS
])
def test_check_names_a_missing_column(db_backend, django_site, run_unchained, table, column):
    def break_it(db):
        db.execute(f'ALTER TABLE "{table}" DROP COLUMN "{column}"')
        return 1 if column not in [c for c in _columns(db, table)] else 0

    output = _broken_copy_case(django_site, run_unchained, f"nocol_{column}", break_it,
                               [rf"{table}\.{column}\b"])
    others = [f"{t}.{c}" for t, c in MISSING_COLUMNS if (t, c) != (table, column)]
    assert not any(o in output for o in others), output


def _columns(db, table):
    if db.sqlite:
        return [r[1] for r in db.rows(f'PRAGMA table_info("{table}")')]
    schema = "DATABASE()" if db.mysql else "current_schema()"
    return [r[0] for r in db.rows(
        f"SELECT column_name FROM information_schema.columns WHERE table_schema = {schema}"
        " AND table_name = %s", table)]


@pytest.mark.matrix("check: unapplied migration", CHECK_DIRECTION)
def test_check_names_an_unapplied_migration(db_backend, django_site, run_unchained):
    output = _broken_copy_case(
        django_site, run_unchained, "nomig",
        lambda db: db.execute("DELETE FROM django_migrations WHERE app = 'catalog' AND name = '0001_initial'"),
        [r"catalog\.0001_initial"])
    assert "users.0001_initial" not in output, output


UNSUPPORTED_ALGORITHMS = ["md5", "bcrypt", "sha1", "unsalted_md5", "crypt"]


@pytest.mark.parametrize("algorithm", [
    pytest.param(a, id=a, marks=pytest.mark.matrix("check: unsupported password hash", CHECK_DIRECTION))
    for a in UNSUPPORTED_ALGORITHMS
])
def test_check_names_an_unsupported_password_hash(db_backend, django_site, run_unchained, algorithm):
    encoded = django_site["hashes"][algorithm]
    output = _broken_copy_case(
        django_site, run_unchained, f"hash_{algorithm}",
        lambda db: db.execute("UPDATE users_user SET password = %s WHERE email = %s",
                              encoded, "moderator@example.com"),
        # the algorithm, quoted as a whole word (md5 is not unsalted_md5)
        [rf"(moderator@example\.com|(?<![\w]){re.escape(algorithm)}(?![\w]))"])
    # Only that one user's algorithm is a problem; the pbkdf2 ones are fine.
    assert "pbkdf2" not in output, output
