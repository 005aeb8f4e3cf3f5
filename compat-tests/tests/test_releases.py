"""`DJANGO_VERSION` beside the Django release it names (issue 11): the
oldest (4.2) and the newest (6.1) release the setting knows, each in the
virtualenv compat-tests/setup-releases.sh makes (.venv-4.2, .venv-6.1).

Per release and back end (SQLite, PostgreSQL, MariaDB), one database
migrated by THAT release's `manage.py migrate` (with a superuser its
`createsuperuser` made), shared by the module's tests:

 * `unchained check` with DJANGO_VERSION=<release> says it is safe;
 * then that release's Django under gunicorn and `unchained serve` with
   DJANGO_VERSION=<release> side by side on it, driven like a browser:
   - password hashes: a login on either server turns a hash made at another
     PBKDF2 count (1,000,000, 5.2's) into one at the release's count
     (600,000 / 1,500,000), and a login on the other server then leaves it
     as it is: no rewrite loop between the two;
   - a session made on one is honoured by the other; logout on one ends it
     on the other;
   - one server's csrftoken cookie and form token are accepted by the
     other's forms;
   - e-mailed links and passwords: the registration letter's link of one
     confirms on the other; the password-reset letter of one (the reference
     project mails a new password, not a link) logs in on the other;
 * the release's vectors (compat-tests/vectors/release-<x.y>.json): a new
   run of tools/release_vectors.py under the release gives the committed
   file.

"unchained→Django" in the matrix means done on unchained, checked on Django.
Each matrix row names its release.
"""
import hashlib
import html
import json
import re
import subprocess
import urllib.parse
import uuid
from pathlib import Path

import pytest

import live
from django_side import DjangoWorker
from live import (Database, Gunicorn, LiveServer, ModuleDatabase, confirmation_link, letter_text,
                  nav_email, new_email, new_password, parse_form, reference_env, wait_for_letter)

COMPAT_DIR = Path(__file__).resolve().parent.parent
REFPROJECT_DIR = COMPAT_DIR / "refproject"
TEST_SECRET_KEY = "Xq3vTb9LmZ0pR7kW2yH5sD8fJ1nC4gE6uA0oI9tB3cQ="  # conftest.TEST_SECRET_KEY

# The release and the PBKDF2 iterations its hashes get (docs/DJANGO_RELEASES.md 1.1).
RELEASES = {"4.2": 600_000, "6.1": 1_500_000}
# A count neither release makes: Django 5.2's.
OTHER_ITERATIONS = 1_000_000

DEFAULT_HASHERS = [
    "django.contrib.auth.hashers." + c
    for c in ("PBKDF2PasswordHasher", "PBKDF2SHA1PasswordHasher", "Argon2PasswordHasher",
              "BCryptSHA256PasswordHasher", "ScryptPasswordHasher")
]
# Both servers list the legacy hashers the release still ships (4.2: SHA1
# and the unsalted ones; 6.1 has none of them, and refuses them).
LEGACY_HASHERS = {
    "4.2": ["django.contrib.auth.hashers." + c
            for c in ("SHA1PasswordHasher", "UnsaltedSHA1PasswordHasher", "UnsaltedMD5PasswordHasher")],
    "6.1": [],
}

ALLOWED_HOSTS = "127.0.0.1,localhost"
UNCHAINED, DJANGO = "unchained", "django"
U2D, D2U = "unchained→Django", "Django→unchained"
DIRECTIONS = pytest.mark.parametrize(
    "direction", [U2D, D2U], ids=["unchained-to-django", "django-to-unchained"]
)
LOGIN_PATH = "/users/login/"
PROFILE = "/users/profile/"
REGISTER = "/users/register/"
RESET = "/users/password-reset/"
RESET_SUBJECT = "Восстановление пароля"
SUPERUSER = {"DJANGO_SUPERUSER_EMAIL": "admin@example.com", "DJANGO_SUPERUSER_PASSWORD": "S3cure-пароль-2025"}


def sides(direction):
    """(where it is done, where it is checked)."""
    return (UNCHAINED, DJANGO) if direction == U2D else (DJANGO, UNCHAINED)


def release_python(release):
    python = COMPAT_DIR / f".venv-{release}" / "bin" / "python"
    if not python.exists():
        pytest.fail(f"{python} is missing: run compat-tests/setup-releases.sh (scripts/test.sh does)")
    return python


@pytest.fixture(params=list(RELEASES), ids=lambda r: f"django{r}")
def django_release(request):
    return request.param


def pbkdf2_iterations(encoded):
    algorithm, iterations, *_ = encoded.split("$")
    assert algorithm == "pbkdf2_sha256", f"not a PBKDF2 hash: {encoded!r}"
    return int(iterations)


# ---------------------------------------------------------------- Django's side, out of process

ORM_OPS = r'''
import django
from django.contrib.auth.hashers import PBKDF2PasswordHasher, check_password, get_hasher
from users.models import User


def op_version():
    return django.get_version()


def op_default_iterations():
    return get_hasher().iterations


def op_create_user(email, password, iterations):
    """A user whose hash has `iterations` (not the release's own)."""
    hasher = PBKDF2PasswordHasher()
    return User.objects.create(email=email, password=hasher.encode(password, hasher.salt(), iterations)).password


def op_create_active_user(email, password):
    return User.objects.create_user(email=email, password=password).password


def op_create_raw(email, encoded):
    return User.objects.create(email=email, password=encoded).pk


def op_verifies(password, encoded):
    """check_password without the setter: whether the release accepts it."""
    return check_password(password, encoded)
'''


class ReleaseSite:
    """One release's Django and unchained with DJANGO_VERSION set to it, on
    a database that release migrated."""

    def __init__(self, release, backend, url, workdir, python):
        self.release = release
        self.backend = backend
        self.url = url
        self.workdir = workdir
        self.python = python
        self.db = Database(url)
        self.mail = {UNCHAINED: workdir / "mail-unchained", DJANGO: workdir / "mail-django"}
        for folder in self.mail.values():
            folder.mkdir()
        self.servers = {}
        self.shell = None
        self.check = None  # (exit status, output) of `unchained check` right after migrate

    def hashers(self):
        return ",".join(DEFAULT_HASHERS + LEGACY_HASHERS[self.release])

    def django_env(self, extra=None):
        return {"ALLOWED_HOSTS": ALLOWED_HOSTS, "DEBUG": "0", "PASSWORD_HASHERS": self.hashers(),
                "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
                "EMAIL_FILE_PATH": str(self.mail[DJANGO]), **(extra or {})}

    def unchained_env(self, extra=None):
        return {"ALLOWED_HOSTS": ALLOWED_HOSTS, "DJANGO_VERSION": self.release, "PASSWORD_HASHERS": self.hashers(),
                **(extra or {}),
                "EMAIL_BACKEND": "file", "EMAIL_FILE_PATH": str(self.mail[UNCHAINED])}

    def browser(self, side, cookies=None):
        b = self.servers[side].browser()
        if cookies:
            b.cookies = dict(cookies)
        return b

    def logs(self):
        return "\n".join(f"--- {side} log ---\n{server.log_text()}" for side, server in self.servers.items())

    def password(self, email):
        return self.db.one("SELECT password FROM users_user WHERE email = %s", email)[0]

    def user(self, email):
        is_active, token = self.db.one("SELECT is_active, token FROM users_user WHERE email = %s", email)
        return bool(is_active), token


@pytest.fixture
def site(django_release, db_backend, _sites, request, unchained_bin, run_unchained, tmp_path_factory):
    def build(cleanup):
        python = release_python(django_release)
        workdir = tmp_path_factory.mktemp(f"release-{django_release}-{db_backend}")
        database = ModuleDatabase(request, db_backend, workdir, f"rel{django_release.replace('.', '')}")
        cleanup.callback(database.drop)
        site = ReleaseSite(django_release, db_backend, database.url, workdir, python)

        def manage(*args, env=None):
            proc = subprocess.run([str(python), str(REFPROJECT_DIR / "manage.py"), *args], cwd=REFPROJECT_DIR,
                                  env=reference_env(site.url, TEST_SECRET_KEY, site.django_env(env)),
                                  capture_output=True, text=True, timeout=600)
            assert proc.returncode == 0, f"Django {django_release}: manage.py {' '.join(args)}:\n{proc.stdout}{proc.stderr}"

        manage("migrate", "--noinput")
        manage("createsuperuser", "--noinput", env=SUPERUSER)
        proc = run_unchained(site.url, "check", env=site.unchained_env(), check=False)
        site.check = (proc.returncode, proc.stdout + proc.stderr)

        cleanup.callback(lambda: [s.stop() for s in site.servers.values()])
        site.servers[DJANGO] = Gunicorn(python, REFPROJECT_DIR, site.url, TEST_SECRET_KEY,
                                        env=site.django_env(), log_path=workdir / "gunicorn.log").start()
        site.servers[UNCHAINED] = LiveServer(unchained_bin, site.url, TEST_SECRET_KEY, env=site.unchained_env(),
                                             log_path=workdir / "serve.log").start()
        site.shell = DjangoWorker(python, REFPROJECT_DIR, reference_env(site.url, TEST_SECRET_KEY, site.django_env()),
                                  workdir, ORM_OPS)
        cleanup.callback(site.shell.close)
        version = site.shell.call("version")
        assert version.startswith(django_release + "."), f"{python} runs Django {version}, not {django_release}"
        assert site.shell.call("default_iterations") == RELEASES[django_release]
        return site

    return _sites.get((django_release, db_backend), build)


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
    form = parse_form(page.text, action=LOGIN_PATH).set("username", email).set("password", password)
    return browser, browser.submit(form, page_path=LOGIN_PATH)


def login(site, side, email, password, browser=None):
    browser, r = try_login(site, side, email, password, browser)
    assert r.status == 302 and r.location == "/" and "sessionid" in browser.cookies, (
        f"login of {email} on {side} (Django {site.release}) failed: {r!r}\n{r.text[:2000]}\n{site.logs()}"
    )
    return browser


def new_user(site, tag):
    address, password = new_email(tag), new_password()
    encoded = site.shell.call("create_active_user", email=address, password=password)
    assert pbkdf2_iterations(encoded) == RELEASES[site.release], encoded
    return address, password


def matrix(feature, direction=None):
    """A matrix cell whose row names the release (conftest.py reads the
    `django_release` parameter into the feature)."""
    return pytest.mark.matrix(feature, direction) if direction else pytest.mark.matrix(feature)


# ================================================================ check


@matrix("check: safe on the release's own database", "-")
def test_check_says_safe_on_a_database_the_release_migrated(site, run_unchained):
    code, output = site.check
    assert code == 0, f"unchained check (DJANGO_VERSION={site.release}) on Django {site.release}'s database:\n{output}"
    assert "it is safe to switch" in output and "NOT SAFE" not in output, output
    assert not re.search(r"^ERROR", output, re.M), output
    # The superuser's hash is the release's own: no warning about it.
    assert pbkdf2_iterations(site.password(SUPERUSER["DJANGO_SUPERUSER_EMAIL"])) == RELEASES[site.release]
    assert "PBKDF2 iterations" not in output, output
    if site.release == "6.1":
        # Control: the same database judged as 5.2's has hashes stronger
        # than 5.2 makes, and check says so (a warning: still safe).
        proc = run_unchained(site.url, "check", env={"DJANGO_VERSION": "5.2"}, check=False)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out
        assert re.search(r"^WARNING: .*more PBKDF2 iterations \(up to 1500000\) than Django 5\.2", out, re.M), out


# ================================================================ password hashes


@matrix("password hash: release's count, no rewrite")
@DIRECTIONS
def test_login_gives_the_release_count_and_the_other_keeps_it(site, direction):
    src, dst = sides(direction)
    want = RELEASES[site.release]
    address, password = new_email("hash"), new_password()
    made = site.shell.call("create_user", email=address, password=password, iterations=OTHER_ITERATIONS)
    assert pbkdf2_iterations(made) == OTHER_ITERATIONS and site.password(address) == made

    login(site, src, address, password)
    upgraded = site.password(address)
    assert upgraded != made and pbkdf2_iterations(upgraded) == want, (
        f"a login on {src} (Django {site.release}) left {upgraded!r}; expected a hash of {want} iterations"
    )
    assert upgraded.split("$")[2] != made.split("$")[2], "the upgraded hash kept the old salt"
    assert site.shell.call("verifies", password=password, encoded=upgraded), f"Django rejects {src}'s hash"

    login(site, dst, address, password)
    assert site.password(address) == upgraded, f"{dst} rewrote the hash {src} made at the release's count"
    login(site, src, address, password)
    assert site.password(address) == upgraded, f"{src} rewrote its own hash"


def legacy_hashes(password):
    """Django 4.2's SHA1 (salted), unsalted SHA1 and unsalted MD5 forms, made
    with hashlib as those hashers make them."""
    salt = uuid.uuid4().hex[:22]
    return {
        "sha1": f"sha1${salt}${hashlib.sha1((salt + password).encode()).hexdigest()}",
        "unsalted_sha1": "sha1$$" + hashlib.sha1(password.encode()).hexdigest(),
        "unsalted_md5": hashlib.md5(password.encode()).hexdigest(),
    }


@matrix("legacy hashes (sha1, unsalted): 4.2 upgrades, 6.1 refuses")
@DIRECTIONS
def test_legacy_hashes_follow_the_release(site, direction):
    src, dst = sides(direction)
    for kind, encoded in legacy_hashes(password := new_password()).items():
        address = new_email(kind.replace("_", "-"))
        site.shell.call("create_raw", email=address, encoded=encoded)
        if site.release == "4.2":
            login(site, src, address, password)
            upgraded = site.password(address)
            assert pbkdf2_iterations(upgraded) == RELEASES["4.2"], f"{kind} on {src}: {upgraded!r}"
            login(site, dst, address, password)
            assert site.password(address) == upgraded, f"{dst} rewrote the hash {src} upgraded from {kind}"
        else:
            for side in (src, dst):
                browser, r = try_login(site, side, address, password)
                assert r.status == 200 and "sessionid" not in browser.cookies, (
                    f"Django {site.release} has no {kind} hasher, yet {side} let its user in: {r!r}"
                )
            assert site.password(address) == encoded


def register(site, side, password):
    """Registers a new address with that password: None when the site took
    it, else the messages its page shows."""
    browser = site.browser(side)
    page = browser.get(REGISTER)
    form = parse_form(page.text, action=REGISTER)
    form.set("email", new_email("valid")).set("password1", password).set("password2", password)
    r = browser.submit(form, page_path=REGISTER)
    if r.status == 302 and r.location == LOGIN_PATH:
        return None
    assert r.status == 200, f"{side} answered {r!r} to a registration"
    return [html.unescape(m) for m in re.findall(r'<ul class="errors">(.*?)</ul>', r.text, re.S)]


# 5.2 changed the minimum-length message and the common-password list
# (docs/DJANGO_RELEASES.md section 6): "asdfghjkl:" is common only from 5.2.
TOO_SHORT = {
    "4.2": "<li>Введённый пароль слишком короткий. Он должен содержать как минимум 8 символов.</li>",
    "6.1": "<li>Введённый пароль слишком короткий. Он должен состоять из как минимум 8 символов.</li>",
}
TOO_COMMON = {"4.2": None, "6.1": ["<li>Введённый пароль слишком широко распространён.</li>"]}


@matrix("password validation messages", "same on both")
def test_password_validation_follows_the_release(site):
    short = {side: register(site, side, "Kx9#mP") for side in (DJANGO, UNCHAINED)}
    assert short[DJANGO] == short[UNCHAINED] and short[DJANGO] and TOO_SHORT[site.release] in short[DJANGO][0], short
    common = {side: register(site, side, "asdfghjkl:") for side in (DJANGO, UNCHAINED)}
    assert common[DJANGO] == common[UNCHAINED] == TOO_COMMON[site.release], common


# ================================================================ sessions


@matrix("session honoured")
@DIRECTIONS
def test_session_is_honoured_by_the_other_server(site, direction):
    src, dst = sides(direction)
    address, password = new_user(site, "sess")
    made = login(site, src, address, password)
    sid = made.cookies["sessionid"]
    other = site.browser(dst, made.cookies)
    assert_logged_in(other, address, f"{src}'s session on {dst}")
    assert other.cookies.get("sessionid") == sid, f"{dst} replaced the session key on a plain GET"
    assert_logged_in(made, address, f"{src}'s session back on {src}")
    assert_anonymous(site.browser(dst, {"sessionid": sid[:-2] + "zz"}), "control: a forged session key")


@matrix("logout ends session")
@DIRECTIONS
def test_logout_ends_the_session_on_the_other_server(site, direction):
    src, dst = sides(direction)
    address, password = new_user(site, "logout")
    made = login(site, src, address, password)
    sid = made.cookies["sessionid"]
    copy = site.browser(dst, made.cookies)
    assert_logged_in(copy, address, f"{src}'s session on {dst} before the logout")
    page = made.get(PROFILE)
    r = made.submit(parse_form(page.text, action="/users/logout/"), page_path=PROFILE)
    assert r.status == 302 and "sessionid" not in made.cookies, f"logout on {src}: {r!r}"
    assert_anonymous(copy, f"{src}'s logged-out session replayed on {dst}")
    n = site.db.one("SELECT COUNT(*) FROM django_session WHERE session_key = %s", sid)[0]
    assert n == 0, f"the session row outlived the logout on {src}"


# ================================================================ CSRF


@matrix("CSRF token accepted")
@DIRECTIONS
def test_csrf_token_of_one_server_is_accepted_by_the_other(site, direction):
    src, dst = sides(direction)
    address, password = new_user(site, "csrf")
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
    # Logged in (the secret was rotated by the login on dst): src's logout
    # form, with dst's new cookie, posted to dst.
    on_src.cookies = dict(on_dst.cookies)
    page = assert_logged_in(on_src, address, f"{dst}'s session on {src}")
    form = parse_form(page.text, action="/users/logout/")
    r = on_dst.submit(form, page_path=PROFILE)
    assert r.status == 302 and "sessionid" not in on_dst.cookies, f"{dst} refused {src}'s logout form: {r!r}"


@matrix("CSRF_COOKIE_MASKED: 4.2 masked cookie crosses, later refused")
@DIRECTIONS
def test_masked_csrf_cookie_of_one_server_is_accepted_by_the_other(site, direction, unchained_bin, request):
    """Django 4.2's CSRF_COOKIE_MASKED: a new cookie holds the masked token;
    one more server of the `src` kind runs with it for this test."""
    src, dst = sides(direction)
    if site.release != "4.2":
        proc = subprocess.run([str(unchained_bin), "check"], capture_output=True, text=True, timeout=120,
                              env=live.process_env(site.url, TEST_SECRET_KEY,
                                                   site.unchained_env({"CSRF_COOKIE_MASKED": "True"})))
        assert proc.returncode != 0 and "CSRF_COOKIE_MASKED" in proc.stderr + proc.stdout, proc
        return
    log = site.workdir / f"masked-{src}-{uuid.uuid4().hex[:6]}.log"
    if src == UNCHAINED:
        masked = LiveServer(unchained_bin, site.url, TEST_SECRET_KEY,
                            env=site.unchained_env({"CSRF_COOKIE_MASKED": "True"}), log_path=log)
    else:
        masked = Gunicorn(site.python, REFPROJECT_DIR, site.url, TEST_SECRET_KEY,
                          env=site.django_env({"CSRF_COOKIE_MASKED": "True"}), log_path=log)
    with masked.start():
        address, password = new_user(site, "masked")
        on_src = masked.browser()
        page = on_src.get(LOGIN_PATH)
        cookie = on_src.cookies.get("csrftoken")
        assert cookie and len(cookie) == 64, f"masked {src}'s new csrftoken cookie: {cookie!r}"
        form = parse_form(page.text, action=LOGIN_PATH).set("username", address).set("password", password)
        on_dst = site.browser(dst, {"csrftoken": cookie})
        r = on_dst.submit(form, page_path=LOGIN_PATH)
        assert r.status == 302 and "sessionid" in on_dst.cookies, (
            f"{dst} refused masked {src}'s cookie and token: {r!r}\n{r.text[:1500]}"
        )
        # The other way: dst's cookie and a token of the masked server's
        # page; its login rotates the secret into a new masked cookie.
        on_src = masked.browser()
        plain = site.browser(dst)
        plain.get(LOGIN_PATH)
        on_src.cookies = dict(plain.cookies)
        page = on_src.get(LOGIN_PATH)
        assert on_src.cookies["csrftoken"] == plain.cookies["csrftoken"], "an existing cookie is kept unmasked"
        form = parse_form(page.text, action=LOGIN_PATH).set("username", address).set("password", password)
        r = on_src.submit(form, page_path=LOGIN_PATH)
        assert r.status == 302, f"masked {src} refused {dst}'s cookie: {r!r}"
        rotated = on_src.cookies["csrftoken"]
        assert len(rotated) == 64, f"masked {src} rotated the secret at login into {rotated!r}"
        assert_logged_in(site.browser(dst, on_src.cookies), address, f"masked {src}'s session on {dst}")


# ================================================================ e-mailed links and passwords


@matrix("registration link confirms")
@DIRECTIONS
def test_registration_link_of_one_server_confirms_on_the_other(site, direction):
    src, dst = sides(direction)
    address, password = new_email("reg"), new_password()
    browser = site.browser(src)
    page = browser.get(REGISTER)
    assert page.status == 200, page
    form = parse_form(page.text, action=REGISTER)
    form.set("email", address).set("password1", password).set("password2", password)
    r = browser.submit(form, page_path=REGISTER)
    assert r.status == 302 and r.location == LOGIN_PATH, f"register on {src}: {r!r}\n{r.text[:2000]}"
    is_active, token = site.user(address)
    assert not is_active and token, f"after registering on {src}: active={is_active} token={token!r}"
    assert pbkdf2_iterations(site.password(address)) == RELEASES[site.release], site.password(address)

    link = confirmation_link(site.mail[src], address, logs=site.logs)
    path = urllib.parse.urlsplit(link).path
    assert path == f"/users/email-confirm/{token}/", f"the link {link} lacks the stored token"
    r = site.browser(dst).get(path)
    assert r.status == 302 and r.location == LOGIN_PATH, f"{dst} GET {path}: {r!r}\n{r.text[:1500]}"
    assert site.user(address) == (True, None), f"after confirming on {dst}: {site.user(address)}"
    assert_logged_in(login(site, dst, address, password), address, f"registered on {src}, logged in on {dst}")
    r = site.browser(src).get(path)
    assert r.status == 404, f"{src}: the used link answered {r!r}"


@matrix("password-reset letter logs in")
@DIRECTIONS
def test_password_reset_letter_of_one_server_logs_in_on_the_other(site, direction):
    src, dst = sides(direction)
    address, password = new_user(site, "reset")
    before = site.password(address)
    anon = site.browser(src)
    page = anon.get(RESET)
    r = anon.submit(parse_form(page.text, action=RESET).set("email", address), page_path=RESET)
    assert r.status == 302 and r.location == LOGIN_PATH, f"password reset on {src}: {r!r}\n{r.text[:2000]}"
    text = letter_text(wait_for_letter(site.mail[src], address, RESET_SUBJECT, logs=site.logs))
    m = re.search(r"Ваш новый пароль: (\S+)", text)
    assert m, f"no new password in {src}'s letter:\n{text}"
    after = site.password(address)
    assert after != before and pbkdf2_iterations(after) == RELEASES[site.release], after
    assert_logged_in(login(site, dst, address, m.group(1)), address, f"{src}'s e-mailed password on {dst}")
    assert site.password(address) == after, f"{dst} rewrote the hash {src}'s reset made"


# ================================================================ vectors


# What may differ between two runs of the tool: the patch release pip chose,
# and the hashing libraries' versions (their outputs are the same).
VOLATILE = ("django_version", "libraries", "python")


@matrix("vectors reproduce", "-")
def test_release_vectors_are_what_the_release_does(django_release, tmp_path):
    committed = COMPAT_DIR / "vectors" / f"release-{django_release}.json"
    fresh = tmp_path / committed.name
    proc = subprocess.run([str(release_python(django_release)), str(COMPAT_DIR / "tools" / "release_vectors.py"),
                           str(fresh)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    want, got = (json.loads(Path(p).read_text(encoding="utf-8")) for p in (committed, fresh))
    assert got["release"] == django_release
    for key in VOLATILE:
        want.pop(key, None), got.pop(key, None)
    differ = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
    assert not differ, (
        f"Django {django_release} now gives other {differ} than {committed.name}: re-run "
        f"compat-tests/tools/release_vectors.py under it and compare (docs/DJANGO_RELEASES.md)"
    )
