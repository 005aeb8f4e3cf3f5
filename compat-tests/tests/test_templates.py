"""The same Jinja templates (`templates/`) render to the same HTML under
MiniJinja in `unchained serve` and under Django's Jinja2 back end in the
reference project.

Per back end: one database migrated by `manage.py migrate` and filled through
the Django ORM (users, categories, products with and without images, an
escaping-hostile description, prices such as 13119.00 and 0.10, versions
with one current); the reference project under gunicorn and `unchained
serve` both on it, with one SECRET_KEY. One login (made on unchained) gives a
session cookie valid on both. Each page is fetched from both servers with the
same cookies, and the account forms are posted to both with values they
refuse; only the CSRF form tokens (masked afresh on every render) are
normalised, everything else must match byte for byte. Both renders of every
page are left in <repo>/target/render-compare/<backend>/; a mismatch shows a
unified diff.
"""
import difflib
import json
import re

import pytest

from live import REPO_ROOT, Gunicorn, LiveServer, ModuleDatabase, form_token

SECRET_KEY = "Xq3vTb9LmZ0pR7kW2yH5sD8fJ1nC4gE6uA0oI9tB3cQ="  # conftest.TEST_SECRET_KEY
ALLOWED_HOSTS = "127.0.0.1,localhost"
VIEWER_EMAIL = "viewer@example.com"
VIEWER_PASSWORD = "Correct-Horse-42"

# Runs in `manage.py shell -c`; prints one JSON line with what the tests need.
SEED = r'''
import datetime, json
from decimal import Decimal
from catalog.models import Category, Product, Version
from users.models import User

viewer = User.objects.create_user(email=%(viewer)r, password=%(password)r, first_name="Вера",
                                  phone="+7 (900) 000-00-00", avatar="users/avatars/вера.png")
other = User.objects.create_user(email="other@example.com", password=%(password)r)
coffee = Category.objects.create(name="Кофе", description="Зёрна & молотый")
tea = Category.objects.create(name='Чай <"зелёный">', description=None)

HOSTILE = 'Описание с <b>&"\'</b> и <script>alert(1)</script>\nвторая строка'
# name, description, image, category, price, published, owner
SPECS = [
    ("Арабика", HOSTILE, "products/x.png", coffee, "13119.00", True, other),
    ("Робуста", None, "", coffee, "0.10", True, other),
    ("Улун «Молочный»", "Мягкий\n\nс молочными нотами", "products/фото чая.png", tea, "450.50", True, other),
    ("Пуэр", "Выдержанный & прессованный", "products/x.png", tea, "1234567.89", True, viewer),
    ("Черновик владельца", "ещё не проверен", "products/draft.png", None, "99.99", False, viewer),
    ("Чужой черновик", "не виден зрителю", "", coffee, "1.00", False, other),
    ("Сенча", "", None, tea, "0.00", True, other),
    ("Без категории", "Просто товар", "products/x.png", None, "100.00", True, viewer),
    ("Ещё черновик", "<i>курсив</i>", "", tea, "7.05", False, viewer),
    ("Кения АА", "Ягодная кислотность, " * 8 + "и долгое послевкусие", "products/kenya.png", coffee, "2500.00", True, other),
    ("Эфиопия", "Цветочный", "", coffee, "2400.10", True, other),
    ("Ройбуш", "Без кофеина", "products/x.png", tea, "320.00", True, other),
    ("Матча", "Порошок", "", tea, "999.90", True, viewer),
    ("Скрытый", "другого владельца", "products/x.png", tea, "5.00", False, other),
]
base = datetime.datetime(2024, 3, 10, 20, 45, 12, 345678, tzinfo=datetime.timezone.utc)
pks = []
for i, (name, description, image, category, price, published, owner) in enumerate(SPECS):
    p = Product.objects.create(
        name=name, description=description, image=image, category=category,
        price=Decimal(price), is_moderated=published, owner=owner,
    )
    # Distinct times around midnight in Moscow, but 6 and 7 share one (ordered by -pk).
    j = 6 if i == 7 else i
    created = base + datetime.timedelta(hours=j, minutes=7 * j)
    Product.objects.filter(pk=p.pk).update(created_at=created, updated_at=created + datetime.timedelta(days=1))
    pks.append(p.pk)

# Moscow was UTC+4 in 2012 (and the date rolls over): the zone's history counts.
Product.objects.filter(pk=pks[1]).update(
    updated_at=datetime.datetime(2012, 1, 15, 21, 30, 0, 5, tzinfo=datetime.timezone.utc))

puer = Product.objects.get(pk=pks[3])
Version.objects.create(product=puer, version_number=1, version_name="Первая", is_current=False)
Version.objects.create(product=puer, version_number=2, version_name="Вторая <i>&</i>", is_current=True)
Version.objects.create(product=puer, version_number=3, version_name="Третья", is_current=False)
robusta = Product.objects.get(pk=pks[1])
Version.objects.create(product=robusta, version_number=1, version_name="Старая", is_current=False)

print(json.dumps({"pks": pks, "names": [s[0] for s in SPECS]}))
''' % {"viewer": VIEWER_EMAIL, "password": VIEWER_PASSWORD}

# SPECS rows the viewer sees (published or their own): 12, so 9 + 3 over two pages.
VISIBLE_TO_VIEWER = 12
CSRF_INPUT_RE = re.compile(r'name="csrfmiddlewaretoken"\s+value="([A-Za-z0-9]{64})"'
                           r'|value="([A-Za-z0-9]{64})"\s+name="csrfmiddlewaretoken"')


# ---------------------------------------------------------------- the two servers


class Site:
    def __init__(self, backend, database_url, django, unchained, data, cookies, run_manage):
        self.run_manage = run_manage
        self.backend = backend
        self.database_url = database_url
        self.django = django
        self.unchained = unchained
        self.data = data
        self.cookies = cookies  # the viewer's sessionid and csrftoken, valid on both


@pytest.fixture
def site(db_backend, _sites, request, run_manage, unchained_bin, venv_python, refproject_dir,
         tmp_path_factory):
    """The back end's database filled by Django, with both servers on it; once per module."""

    def build(cleanup):
        workdir = tmp_path_factory.mktemp(f"templates-{db_backend}")
        database = ModuleDatabase(request, db_backend, workdir, "tpl")
        cleanup.callback(database.drop)
        url = database.url
        media_root = workdir / "media"
        media_root.mkdir()
        common = {"ALLOWED_HOSTS": ALLOWED_HOSTS, "DEBUG": "0", "MEDIA_ROOT": str(media_root),
                  "EMAIL_BACKEND": "file", "EMAIL_FILE_PATH": str(workdir / "mail")}
        run_manage(url, "migrate", "--no-input")
        out = run_manage(url, "shell", "-c", SEED).stdout.strip().splitlines()
        data = json.loads(out[-1])

        django = Gunicorn(venv_python, refproject_dir, url, SECRET_KEY, env=common,
                          log_path=workdir / "gunicorn.log").start()
        cleanup.callback(django.stop)
        unchained = LiveServer(unchained_bin, url, SECRET_KEY, env=common, log_path=workdir / "serve.log").start()
        cleanup.callback(unchained.stop)

        # One login, on unchained; its cookies serve both.
        browser = unchained.browser()
        page = browser.get("/users/login/")
        r = browser.post("/users/login/", {"csrfmiddlewaretoken": form_token(page.text),
                                           "username": VIEWER_EMAIL, "password": VIEWER_PASSWORD})
        assert r.status == 302 and r.location == "/", f"login on unchained: {r!r}\n{r.text[:2000]}"
        cookies = dict(browser.cookies)
        assert set(cookies) >= {"sessionid", "csrftoken"}, cookies
        check = django.browser()
        check.cookies = dict(cookies)
        r = check.get("/users/profile/")
        assert r.status == 200 and VIEWER_EMAIL in r.text, (
            f"Django does not honour unchained's session: {r!r}\n{django.log_text()}"
        )
        return Site(db_backend, url, django, unchained, data, cookies, run_manage)

    return _sites.get(db_backend, build)


# ---------------------------------------------------------------- comparison


def normalise(page_html):
    """Only the CSRF form tokens vary between two renders of one page."""
    tokens = {a or b for a, b in CSRF_INPUT_RE.findall(page_html)}
    for token in tokens:
        page_html = page_html.replace(token, "<csrf-token>")
    return page_html


def fetch_both(site, path, logged_in, post=None):
    """GETs `path` from both servers; or, with `post` (a list of field
    pairs), GETs it for a form token and POSTs `post` with that token."""
    out = {}
    for side, server in (("django", site.django), ("unchained", site.unchained)):
        browser = server.browser()
        if logged_in:
            browser.cookies = dict(site.cookies)
        out[side] = browser.get(path)
        if post is not None:
            token = form_token(out[side].text)
            out[side] = browser.post(path, [("csrfmiddlewaretoken", token), *post])
    return out["django"], out["unchained"]


TRACEBACK = r'''
import sys, traceback
from django.test import Client
c = Client(raise_request_exception=True)
for k, v in %(cookies)r.items():
    c.cookies[k] = v
try:
    r = c.get(%(path)r)
    print("status", r.status_code)
except Exception:
    traceback.print_exc(file=sys.stdout)
'''


def django_traceback(site, path, logged_in):
    """Django under gunicorn (DEBUG off) logs no traceback: ask its test Client."""
    cookies = dict(site.cookies) if logged_in else {}
    proc = site.run_manage(site.database_url, "shell", "-c", TRACEBACK % {"cookies": cookies, "path": path},
                           env={"ALLOWED_HOSTS": ALLOWED_HOSTS + ",testserver", "DEBUG": "0"},
                           check=False)
    return (proc.stdout + proc.stderr)[-6000:]


def assert_same_html(site, label, path, logged_in, post=None):
    dj, uc = fetch_both(site, path, logged_in, post)
    if dj.status != 200:
        traceback = django_traceback(site, path, logged_in) if post is None else ""
        pytest.fail(f"Django answered {dj!r} for {path}:\n{dj.text[:2000]}\n{traceback}", pytrace=False)
    assert uc.status == 200, (
        f"unchained answered {uc!r} for {path} (Django: 200):\n{uc.text[:3000]}\n{site.unchained.log_text()}"
    )
    if logged_in:
        assert VIEWER_EMAIL in dj.text, f"Django's {path} is not the viewer's page"
    django_html, unchained_html = normalise(dj.text), normalise(uc.text)
    out_dir = site_artifacts(site)
    (out_dir / f"{label}.django.html").write_text(django_html, encoding="utf-8")
    (out_dir / f"{label}.unchained.html").write_text(unchained_html, encoding="utf-8")
    if django_html == unchained_html:
        return dj.text
    diff = list(difflib.unified_diff(
        django_html.splitlines(keepends=True), unchained_html.splitlines(keepends=True),
        fromfile=f"django {path}", tofile=f"unchained {path}", n=2,
    ))
    shown = "".join(diff[:400]) + (f"\n... {len(diff) - 400} more diff lines" if len(diff) > 400 else "")
    pytest.fail(
        f"{path} ({'logged in' if logged_in else 'anonymous'}, {site.backend}) renders differently; "
        f"both pages are in {out_dir}:\n{shown}",
        pytrace=False,
    )


def site_artifacts(site):
    path = REPO_ROOT / "target" / "render-compare" / site.backend
    path.mkdir(parents=True, exist_ok=True)
    return path


def count_cards(page_html):
    return len(re.findall(r'<article[^>]*class="[^"]*\bproduct-card\b', page_html))


# ---------------------------------------------------------------- the pages


def test_home_page(site):
    html = assert_same_html(site, "home", "/", logged_in=True)
    assert count_cards(html) == 9, f"the first page shows {count_cards(html)} products, not 9"
    assert 'rel="next"' in html


def test_home_page_2(site):
    html = assert_same_html(site, "home-page-2", "/?page=2", logged_in=True)
    assert count_cards(html) == VISIBLE_TO_VIEWER - 9, count_cards(html)
    assert 'rel="prev"' in html


@pytest.mark.parametrize("index", [3, 0, 1], ids=["own-image-current-version", "others-image", "no-image"])
def test_product_detail(site, index):
    pk = site.data["pks"][index]
    html = assert_same_html(site, f"detail-{index}", f"/products/{pk}/", logged_in=True)
    assert "product-name" in html
    if index == 3:
        assert "product-image" in html and "current-version" in html, "not the page under test"


def test_contacts_anonymous(site):
    html = assert_same_html(site, "contacts-anonymous", "/contacts/", logged_in=False)
    assert VIEWER_EMAIL not in html


def test_contacts_logged_in(site):
    assert_same_html(site, "contacts-logged-in", "/contacts/", logged_in=True)


# ---------------------------------------------------------------- beyond the list pages


def test_product_create_form(site):
    html = assert_same_html(site, "create", "/products/create/", logged_in=True)
    assert 'id="product-form"' in html


def test_product_update_form(site):
    pk = site.data["pks"][3]  # the viewer's, three versions
    html = assert_same_html(site, "update-3", f"/products/{pk}/update/", logged_in=True)
    assert 'name="versions-TOTAL_FORMS"' in html and 'value="4"' in html


def test_product_delete_confirmation(site):
    pk = site.data["pks"][3]
    assert_same_html(site, "delete-3", f"/products/{pk}/delete/", logged_in=True)


@pytest.mark.parametrize("path", ["/users/login/", "/users/login/?next=/products/1/",
                                  "/users/register/", "/users/password-reset/"])
def test_account_pages_anonymous(site, path):
    label = "anon" + re.sub(r"[^a-z0-9]+", "-", path).rstrip("-")
    assert_same_html(site, label, path, logged_in=False)


def test_profile_page(site):
    assert_same_html(site, "profile", "/users/profile/", logged_in=True)


# ---------------------------------------------------------------- forms sent back with errors
# Each form is posted to both servers with values it refuses: the page that
# comes back (Django's form errors, the entered values, never a password)
# must match too. Nothing here is valid, so nothing is stored. (An unknown
# address is no error on unchained's reset form, as it is on the reference
# project's: unchained answers as for a known one, telling nobody which
# addresses have an account.)

HOSTILE_INPUT = '<b>"x" & \'y\'</b>'
FORMS_WITH_ERRORS = {
    "login-empty": ("/users/login/", [("username", ""), ("password", "")]),
    "login-wrong": ("/users/login/?next=/products/1/",
                    [("username", " nobody@example.com "), ("password", "Correct-Horse-43")]),
    "login-hostile": ("/users/login/", [("username", HOSTILE_INPUT), ("password", HOSTILE_INPUT)]),
    "register-missing": ("/users/register/", []),
    "register-mismatch": ("/users/register/",
                          [("email", HOSTILE_INPUT), ("password1", "Correct-Horse-42"),
                           ("password2", "Correct-Horse-43")]),
    "register-taken": ("/users/register/",
                       [("email", "other@EXAMPLE.com"), ("password1", "password"), ("password2", "password")]),
    "register-too-long": ("/users/register/",
                          [("email", "a" * 250 + "@example.com"), ("password1", "12345678"),
                           ("password2", "12345678")]),
    "reset-empty": ("/users/password-reset/", [("email", "  ")]),
    "reset-invalid": ("/users/password-reset/", [("email", HOSTILE_INPUT)]),
}


@pytest.mark.parametrize("label", list(FORMS_WITH_ERRORS))
def test_account_forms_with_errors(site, label):
    path, fields = FORMS_WITH_ERRORS[label]
    html = assert_same_html(site, label, path, logged_in=False, post=fields)
    assert 'class="errors"' in html, f"{label}: no errors shown"
    assert not re.search(r'<input[^>]*type="password"[^>]*value=', html), f"{label}: a password is shown"


def test_profile_with_errors(site):
    fields = [("first_name", "  Вера  "), ("last_name", "Я" * 151), ("phone", "1" * 36),
              ("country", "a\0b"), ("avatar", "")]
    html = assert_same_html(site, "profile-errors", "/users/profile/", logged_in=True, post=fields)
    assert "не более 150 символов (сейчас 151)" in html
