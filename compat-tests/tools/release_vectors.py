"""Writes compat-tests/vectors/release-<x.y>.json: what one Django release
does, at its own defaults, with the data that Django releases share (password
hashes in the database, signed cookies, session rows, reset tokens), so the
Rust side can check its DJANGO_VERSION setting (issue 11) against each release
and prove there is no downgrade/upgrade loop between releases.

Run it with the python of a throwaway venv holding the release, made outside
the repository, e.g.:

    python3.11 -m venv /tmp/venv-dj42
    /tmp/venv-dj42/bin/pip install 'django~=4.2.0' argon2-cffi bcrypt
    /tmp/venv-dj42/bin/python compat-tests/tools/release_vectors.py

or with the venvs compat-tests/setup-releases.sh makes (.venv-4.2, .venv-6.1).
An optional argument is the file to write instead.

(Django 6.x needs Python >= 3.12.) The output name comes from the running
Django's major.minor. Everything random (salts, time) is fixed, so a file only
changes when the release's behaviour does. Django's DEFAULT settings are used
(PASSWORD_HASHERS, SIGNING_BACKEND, SESSION_SERIALIZER, ...) except where a
test needs a named value (SECRET_KEY, USE_TZ, LANGUAGE_CODE, validators).

It takes a little while: every PBKDF2 hash of the cross-release set is
computed twice (once to make it, once to check it), up to 1,500,000
iterations each.
"""

import base64
import datetime
import hashlib
import inspect
import json
import sys
from pathlib import Path
from unittest import mock

import django
from django.conf import settings

HERE = Path(__file__).resolve().parent
RELEASE = "%d.%d" % django.VERSION[:2]
# An argument writes elsewhere (tests/test_releases.py compares a fresh run
# with the committed file).
OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parent / "vectors" / ("release-%s.json" % RELEASE)

SECRET = "django-insecure-vectors-0123456789-abcdefghijklmnopqrstuvwxyz-!@#$%"
PASSWORD = "correct horse battery staple"
WRONG = "Tr0ub4dor&3"
SALT = "fixedSaltForReleaseVectors22"  # 28 chars: >= 128 bits over 62 symbols
SHORT_SALT = "seasalt12345"  # 12 chars (~71 bits): old Django salts
NOW = 1_700_000_000  # the fixed clock of every timestamped value

settings.configure(
    DEBUG=False,
    SECRET_KEY=SECRET,
    ALLOWED_HOSTS=["*"],
    INSTALLED_APPS=[
        "django.contrib.admin",
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.sessions",
        "django.contrib.messages",
    ],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    USE_TZ=True,
    TIME_ZONE="UTC",
    USE_I18N=True,
    LANGUAGE_CODE="ru-ru",
    AUTH_PASSWORD_VALIDATORS=[
        {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
        {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
        {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
        {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    ],
    MIDDLEWARE=[],
    ROOT_URLCONF=__name__,
)
urlpatterns = []
django.setup()

from django.contrib.auth import hashers  # noqa: E402
from django.core import signing  # noqa: E402

OUTPUT = {
    "release": RELEASE,
    "django_version": django.get_version(),
    "python": "%d.%d" % sys.version_info[:2],
}


def lib_version(name):
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return None


OUTPUT["libraries"] = {"argon2-cffi": lib_version("argon2-cffi"), "bcrypt": lib_version("bcrypt")}


# --------------------------------------------------------------------------
# Hashers: which exist, the defaults, their work factors.
# --------------------------------------------------------------------------

def hasher_classes():
    out = {}
    for name, obj in vars(hashers).items():
        if (
            inspect.isclass(obj)
            and issubclass(obj, hashers.BasePasswordHasher)
            and obj is not hashers.BasePasswordHasher
            and obj.__module__ == hashers.__name__
        ):
            out[name] = obj.algorithm
    return dict(sorted(out.items()))


def work_factors(h):
    keys = (
        "iterations", "time_cost", "memory_cost", "parallelism", "rounds",
        "work_factor", "block_size", "maxmem", "salt_entropy",
    )
    out = {"class": type(h).__name__, "algorithm": h.algorithm}
    for k in keys:
        if hasattr(h, k):
            out[k] = getattr(h, k)
    digest = getattr(h, "digest", None)
    if digest is not None or hasattr(type(h), "digest"):
        out["digest"] = digest().name if digest else None
    return out


OUTPUT["hasher_classes"] = hasher_classes()
OUTPUT["default_password_hashers"] = list(settings.PASSWORD_HASHERS)
OUTPUT["default_hashers"] = [work_factors(h) for h in hashers.get_hashers()]
OUTPUT["has_verify_password"] = hasattr(hashers, "verify_password")
OUTPUT["has_acheck_password"] = hasattr(hashers, "acheck_password")


# --------------------------------------------------------------------------
# Stored hashes made under each release's defaults, computed without Django
# so that every release checks exactly the same strings.
# --------------------------------------------------------------------------

PBKDF2_BY_RELEASE = {
    "4.2": 600_000,
    "5.0": 720_000,
    "5.1": 870_000,
    "5.2": 1_000_000,
    "6.0": 1_200_000,
    "6.1": 1_500_000,
}


def pbkdf2(password, salt, iterations, digest="sha256"):
    dk = hashlib.pbkdf2_hmac(digest, password.encode(), salt.encode(), iterations)
    algo = "pbkdf2_sha256" if digest == "sha256" else "pbkdf2_sha1"
    return "%s$%d$%s$%s" % (algo, iterations, salt, base64.b64encode(dk).decode().strip())


def scrypt(password, salt, n, r, p):
    dk = hashlib.scrypt(password.encode(), salt=salt.encode(), n=n, r=r, p=p, maxmem=0, dklen=64)
    return "scrypt$%d$%s$%d$%d$%s" % (n, salt, r, p, base64.b64encode(dk).decode().strip())


def argon2_hash(password, salt, t, m, p):
    import argon2

    data = argon2.low_level.hash_secret(
        password.encode(), salt.encode(), time_cost=t, memory_cost=m, parallelism=p,
        hash_len=argon2.DEFAULT_HASH_LENGTH, type=argon2.low_level.Type.ID,
    )
    return "argon2" + data.decode("ascii")


def bcrypt_sha256(password, salt):
    import bcrypt

    pw = hashlib.sha256(password.encode()).hexdigest().encode()
    return "bcrypt_sha256$" + bcrypt.hashpw(pw, salt.encode()).decode("ascii")


def bcrypt_plain(password, salt):
    import bcrypt

    return "bcrypt$" + bcrypt.hashpw(password.encode(), salt.encode()).decode("ascii")


BCRYPT_SALT_12 = "$2b$12$abcdefghijklmnopqrstuu"
BCRYPT_SALT_10 = "$2b$10$abcdefghijklmnopqrstuu"

STORED = []  # (name, made_under, encoded)
for rel, it in PBKDF2_BY_RELEASE.items():
    STORED.append(("pbkdf2_sha256 %d" % it, rel, pbkdf2(PASSWORD, SALT, it)))
STORED += [
    # At 600,000 iterations for every release (so the file of each release
    # checks the same string): must_update for the salt alone shows on 4.2.
    ("pbkdf2_sha256 600000 short salt", None, pbkdf2(PASSWORD, SHORT_SALT, 600_000)),
    ("pbkdf2_sha1 600000", None, pbkdf2(PASSWORD, SALT, 600_000, "sha1")),
    ("scrypt n=16384 r=8 p=1", "4.2 5.0", scrypt(PASSWORD, SALT, 2**14, 8, 1)),
    ("scrypt n=16384 r=8 p=5", "5.1 5.2 6.0 6.1", scrypt(PASSWORD, SALT, 2**14, 8, 5)),
    ("argon2id t=2 m=102400 p=8", "4.2 5.0 5.1 5.2 6.0 6.1", argon2_hash(PASSWORD, SALT, 2, 102400, 8)),
    ("argon2id t=2 m=512 p=2 (Django < 3.2 defaults)", None, argon2_hash(PASSWORD, SALT, 2, 512, 2)),
    ("argon2id t=2 m=102400 p=8 short salt", None, argon2_hash(PASSWORD, SHORT_SALT, 2, 102400, 8)),
    ("bcrypt_sha256 rounds=12", "4.2 5.0 5.1 5.2 6.0 6.1", bcrypt_sha256(PASSWORD, BCRYPT_SALT_12)),
    ("bcrypt_sha256 rounds=10", None, bcrypt_sha256(PASSWORD, BCRYPT_SALT_10)),
    ("bcrypt rounds=12", None, bcrypt_plain(PASSWORD, BCRYPT_SALT_12)),
    ("md5 salted", None, "md5$%s$%s" % (SALT, hashlib.md5((SALT + PASSWORD).encode()).hexdigest())),
    ("sha1 salted", None, "sha1$%s$%s" % (SALT, hashlib.sha1((SALT + PASSWORD).encode()).hexdigest())),
    ("unsalted md5", None, hashlib.md5(PASSWORD.encode()).hexdigest()),
    ("unsalted sha1", None, "sha1$$" + hashlib.sha1(PASSWORD.encode()).hexdigest()),
    ("unusable", None, "!" + "x" * 40),
    ("empty", None, ""),
    ("garbage", None, "not$a$hash"),
]


def check(password, encoded):
    """check_password() and its must_update, with the release's defaults."""
    updated = []
    out = {}
    try:
        out["check_password"] = hashers.check_password(
            password, encoded, setter=lambda raw: updated.append(True)
        )
        out["setter_called"] = bool(updated)
    except Exception as e:  # noqa: BLE001
        out["check_password_error"] = type(e).__name__
    try:
        h = hashers.identify_hasher(encoded)
        out["identified_as"] = h.algorithm
        preferred = hashers.get_hasher("default")
        out["must_update"] = h.algorithm != preferred.algorithm or preferred.must_update(encoded)
        # As if the identified hasher were first in PASSWORD_HASHERS: its own
        # work-factor rule (a site preferring argon2/scrypt/bcrypt).
        out["own_hasher_must_update"] = h.must_update(encoded)
    except Exception as e:  # noqa: BLE001
        out["identify_error"] = type(e).__name__
    if hasattr(hashers, "verify_password"):
        try:
            out["verify_password"] = list(hashers.verify_password(password, encoded))
        except Exception as e:  # noqa: BLE001
            out["verify_password_error"] = type(e).__name__
    return out


stored = []
for name, made_under, encoded in STORED:
    row = {"name": name, "encoded": encoded, "made_under": made_under}
    row["right"] = check(PASSWORD, encoded)
    stored.append(row)
    print("checked", name, file=sys.stderr)
# Wrong passwords run harden_runtime() on hashers that have one; only the
# cheap ones here, plus the release's own PBKDF2 (no extra iterations).
for name, _, encoded in STORED:
    if name.startswith(("scrypt", "argon2", "bcrypt_sha256 rounds=12", "md5", "unsalted")):
        for row in stored:
            if row["name"] == name:
                row["wrong"] = check(WRONG, encoded)
OUTPUT["stored"] = stored

# The same cheap hashes with every hasher class of the release installed
# after the defaults (the legacy ones were removed in 5.0 / 5.1).
from django.test import override_settings  # noqa: E402

ALL_HASHERS = list(settings.PASSWORD_HASHERS) + [
    "django.contrib.auth.hashers." + name
    for name in OUTPUT["hasher_classes"]
    if "django.contrib.auth.hashers." + name not in settings.PASSWORD_HASHERS
    and name != "CryptPasswordHasher"  # needs the crypt module (gone in 3.13)
]
stored_all = []
with override_settings(PASSWORD_HASHERS=ALL_HASHERS):
    for name, made_under, encoded in STORED:
        if name.startswith("pbkdf2_sha256"):
            continue
        stored_all.append({"name": name, "encoded": encoded, "right": check(PASSWORD, encoded)})
OUTPUT["stored_with_all_hashers"] = {"PASSWORD_HASHERS": ALL_HASHERS, "rows": stored_all}


# --------------------------------------------------------------------------
# Encodes at the release's DEFAULT work factors, fixed salts.
# --------------------------------------------------------------------------

enc = {}
for h in hashers.get_hashers():
    try:
        if h.algorithm.startswith("bcrypt"):
            e = h.encode(PASSWORD, BCRYPT_SALT_12.encode())
        else:
            e = h.encode(PASSWORD, SALT)
    except Exception as ex:  # noqa: BLE001
        enc[h.algorithm] = {"error": type(ex).__name__}
        continue
    enc[h.algorithm] = {"salt": SALT if not h.algorithm.startswith("bcrypt") else BCRYPT_SALT_12,
                        "encoded": e, "must_update_self": h.must_update(e)}
    print("encoded", h.algorithm, file=sys.stderr)
OUTPUT["encode_defaults"] = enc
OUTPUT["make_password_prefix"] = hashers.make_password(PASSWORD, SALT).split("$")[:2]


# --------------------------------------------------------------------------
# Signing, sessions, cookies, tokens (fixed clock).
# --------------------------------------------------------------------------

def fixed_time():
    return mock.patch("time.time", return_value=float(NOW))


sig = {"NOW": NOW}
sig["Signer.sign"] = signing.Signer(key=SECRET, salt="vectors").sign("hello")
sig["Signer.sign default salt"] = signing.Signer(key=SECRET).sign("hello")
sig["Signer.algorithm"] = signing.Signer(key=SECRET).algorithm
sig["Signer.legacy_algorithm"] = getattr(signing.Signer(key=SECRET), "legacy_algorithm", None)
sha1_signed = "hello:" + signing.base64_hmac("vectorssigner", "hello", SECRET, algorithm="sha1")
try:
    sig["Signer.unsign sha1 signature"] = signing.Signer(key=SECRET, salt="vectors").unsign(sha1_signed)
except signing.BadSignature:
    sig["Signer.unsign sha1 signature"] = "BadSignature"
try:
    signing.Signer(SECRET)
    sig["Signer positional key"] = "accepted"
except TypeError:
    sig["Signer positional key"] = "TypeError"
except Exception as e:  # noqa: BLE001
    sig["Signer positional key"] = type(e).__name__
with fixed_time():
    sig["TimestampSigner.sign"] = signing.TimestampSigner(key=SECRET, salt="vectors").sign("hello")
    sig["dumps"] = signing.dumps({"a": 1, "b": [1, 2]}, key=SECRET, salt="vectors")
    sig["dumps compress"] = signing.dumps({"a": "x" * 200}, key=SECRET, salt="vectors", compress=True)
OUTPUT["signing"] = sig

# Signed cookies: set_signed_cookie / get_signed_cookie salts.
from django.http import HttpRequest, HttpResponse  # noqa: E402

ck = {}
with fixed_time():
    resp = HttpResponse()
    resp.set_signed_cookie("name", "value", salt="s")
    ck["set_signed_cookie name/value salt=s"] = resp.cookies["name"].value
    legacy = signing.get_cookie_signer(salt="name" + "s").sign("value")
    ck["legacy-salt value (salt=cookie_name+salt)"] = legacy
    v2_salt = "django.http.cookies.v2:1:sname"
    v2 = signing.get_cookie_signer(salt=v2_salt).sign("value")
    ck["v2-salt value (django.http.cookies.v2:<len>:<salt><name>)"] = v2
    for label, value in (("legacy", legacy), ("v2", v2)):
        req = HttpRequest()
        req.COOKIES["name"] = value
        try:
            ck["get_signed_cookie accepts " + label] = req.get_signed_cookie("name", salt="s") == "value"
        except signing.BadSignature:
            ck["get_signed_cookie accepts " + label] = False
ck["SIGNED_COOKIE_LEGACY_SALT_FALLBACK"] = getattr(settings, "SIGNED_COOKIE_LEGACY_SALT_FALLBACK", None)
OUTPUT["signed_cookies"] = ck

# contrib.messages cookie (its serializer was rewritten in 5.0).
from django.contrib.messages import constants as msg_constants  # noqa: E402
from django.contrib.messages.storage.base import Message  # noqa: E402
from django.contrib.messages.storage.cookie import CookieStorage  # noqa: E402

with fixed_time():
    storage = CookieStorage(HttpRequest())
    OUTPUT["messages_cookie"] = {
        "key_salt": storage.key_salt,
        "encoded": storage._encode([
            Message(msg_constants.INFO, "Привет"),
            Message(msg_constants.ERROR, "x" * 50, extra_tags="danger"),
        ]),
    }

# Sessions.
from django.contrib.sessions.backends.db import SessionStore as DbStore  # noqa: E402
from django.contrib.sessions.backends.signed_cookies import (  # noqa: E402
    SessionStore as CookieStore,
)

sess = {"SESSION_SERIALIZER": settings.SESSION_SERIALIZER, "SESSION_ENGINE": settings.SESSION_ENGINE}
data = {"_auth_user_id": "1", "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
        "_auth_user_hash": "0" * 64, "_session_expiry": "2030-01-01T00:00:00+00:00"}
with fixed_time():
    s = DbStore()
    encoded_session = s.encode(data)
    sess["db encode"] = encoded_session
    sess["db decode own"] = DbStore().decode(encoded_session) == data
    cs = CookieStore()
    cs._session_cache = dict(data)
    sess["signed_cookies session_key"] = cs._get_session_key()
    dt = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
    s2 = DbStore()
    s2.set_expiry(dt)
    sess["set_expiry(datetime) stores"] = s2["_session_expiry"]
    s3 = DbStore()
    s3.set_expiry(3600)
    sess["set_expiry(int) stores"] = s3["_session_expiry"]
    s4 = DbStore()
    s4.set_expiry(0)
    sess["set_expiry(0) stores"] = s4["_session_expiry"]
sess["VALID_KEY_CHARS"] = __import__(
    "django.contrib.sessions.backends.base", fromlist=["VALID_KEY_CHARS"]
).VALID_KEY_CHARS
OUTPUT["sessions"] = sess

# Auth: session auth hash, password reset token.
from django.contrib.auth.models import User  # noqa: E402
from django.contrib.auth.tokens import PasswordResetTokenGenerator  # noqa: E402

user = User(pk=7, username="ivan", email="ivan@example.com", first_name="Иван",
            last_name="Петров", password=pbkdf2(PASSWORD, SALT, 600_000),
            last_login=datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc))
gen = PasswordResetTokenGenerator()
tok = {"algorithm": gen.algorithm, "key_salt": gen.key_salt}
ts = gen._num_seconds(datetime.datetime(2024, 6, 1))  # naive, as _now() returns
tok["timestamp"] = ts
tok["token"] = gen._make_token_with_timestamp(user, ts, SECRET) if "secret" in inspect.signature(
    gen._make_token_with_timestamp).parameters else gen._make_token_with_timestamp(user, ts)
tok["session_auth_hash"] = user.get_session_auth_hash()
OUTPUT["auth_tokens"] = tok

# CSRF.
from django.middleware import csrf  # noqa: E402

OUTPUT["csrf"] = {
    "CSRF_SECRET_LENGTH": csrf.CSRF_SECRET_LENGTH,
    "CSRF_TOKEN_LENGTH": csrf.CSRF_TOKEN_LENGTH,
    "CSRF_ALLOWED_CHARS": csrf.CSRF_ALLOWED_CHARS,
    "CSRF_COOKIE_MASKED": getattr(settings, "CSRF_COOKIE_MASKED", None),
    "unmask fixed token": csrf._unmask_cipher_token("A" * 32 + "b" * 32),
}

# Password validators, ru messages.
from django.contrib.auth import password_validation  # noqa: E402
from django.core.exceptions import ValidationError  # noqa: E402
from django.utils import translation  # noqa: E402

val = {}
with translation.override("ru"):
    for pw in ("short", "12345678901", "password", "asdfghjkl:", "ivanpetrov1", "ivan@example.com",
               "Zx9!kQ2#vL7$", "иван-петров"):
        try:
            password_validation.validate_password(pw, user)
            val[pw] = []
        except ValidationError as e:
            val[pw] = [str(m) for m in e.messages]
    val["help_texts"] = [str(t) for t in password_validation.password_validators_help_texts()]
OUTPUT["password_validation_ru"] = val

# Forms' messages that this app shows (ru).
from django.contrib.auth import forms as auth_forms  # noqa: E402

with translation.override("ru"):
    OUTPUT["auth_form_messages_ru"] = {
        "UserCreationForm.password_mismatch": str(auth_forms.BaseUserCreationForm.error_messages["password_mismatch"]),
        "AuthenticationForm.invalid_login": str(auth_forms.AuthenticationForm.error_messages["invalid_login"]),
        "AuthenticationForm.inactive": str(auth_forms.AuthenticationForm.error_messages["inactive"]),
    }


# --------------------------------------------------------------------------
# Schema and permission rows of the contrib apps after migrate (SQLite).
# --------------------------------------------------------------------------

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

call_command("migrate", verbosity=0, interactive=False)
with connection.cursor() as cur:
    cur.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL "
        "AND name NOT LIKE 'sqlite_%' ORDER BY type, name"
    )
    schema = [list(r) for r in cur.fetchall()]
    cur.execute(
        "SELECT ct.app_label, ct.model, p.codename, p.name FROM auth_permission p "
        "JOIN django_content_type ct ON ct.id = p.content_type_id ORDER BY p.id"
    )
    perms = [list(r) for r in cur.fetchall()]
    cur.execute("SELECT app, name FROM django_migrations ORDER BY id")
    migs = [list(r) for r in cur.fetchall()]
OUTPUT["schema_sqlite"] = schema
OUTPUT["permissions"] = perms
OUTPUT["migrations"] = migs

OUT.parent.mkdir(parents=True, exist_ok=True)
OUT.write_text(json.dumps(OUTPUT, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
print("wrote", OUT, file=sys.stderr)
