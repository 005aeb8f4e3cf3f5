"""Writes compat-tests/vectors/django.json: outputs of a real Django 5.2 that
the Rust unit tests of src/django/ check themselves against.

Run with the compat venv's python:

    compat-tests/.venv/bin/python compat-tests/tools/make_vectors.py

Everything random in Django (salts, CSRF masks, time) is fixed here, so the
file only changes when Django's behaviour does. Most password vectors use
"fast" subclasses of Django's hashers (lower work factors, as Django's own test
suite does) so the Rust tests stay quick in a debug build; a few use Django's
real defaults.
"""

import json
import sys
import types
from pathlib import Path
from unittest import mock

import django
from django.conf import settings

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "vectors" / "django.json"

SECRET = "django-insecure-vectors-0123456789-abcdefghijklmnopqrstuvwxyz-!@#$%"
OLD_SECRET = "an-older-secret-key-that-is-now-only-a-fallback-0123456789-xyz"
OTHER_SECRET = "some-unrelated-secret-key-that-signed-nothing-here-0123456789"

DEFAULT_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]

settings.configure(
    DEBUG=False,
    SECRET_KEY=SECRET,
    SECRET_KEY_FALLBACKS=[],
    ALLOWED_HOSTS=["*"],
    INSTALLED_APPS=[
        "django.contrib.contenttypes",
        "django.contrib.auth",
        "django.contrib.sessions",
    ],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    PASSWORD_HASHERS=DEFAULT_HASHERS,
    USE_TZ=True,
    MIDDLEWARE=[],
    ROOT_URLCONF=__name__,
)
urlpatterns = []
django.setup()

from django.contrib.auth import hashers  # noqa: E402
from django.core import signing  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from django.utils import crypto  # noqa: E402

# ---------------------------------------------------------------------------
# "fast" hashers: Django's classes with low work factors, importable by name.
FAST = {
    "pbkdf2_iterations": 1000,
    "argon2_time_cost": 1,
    "argon2_memory_cost": 256,
    "argon2_parallelism": 2,
    "bcrypt_rounds": 5,
    "scrypt_work_factor": 64,
    "scrypt_block_size": 4,
    "scrypt_parallelism": 2,
}

fast = types.ModuleType("vector_hashers")
fast.PBKDF2PasswordHasher = type(
    "PBKDF2PasswordHasher", (hashers.PBKDF2PasswordHasher,), {"iterations": FAST["pbkdf2_iterations"]}
)
fast.PBKDF2SHA1PasswordHasher = type(
    "PBKDF2SHA1PasswordHasher",
    (hashers.PBKDF2SHA1PasswordHasher,),
    {"iterations": FAST["pbkdf2_iterations"]},
)
fast.Argon2PasswordHasher = type(
    "Argon2PasswordHasher",
    (hashers.Argon2PasswordHasher,),
    {
        "time_cost": FAST["argon2_time_cost"],
        "memory_cost": FAST["argon2_memory_cost"],
        "parallelism": FAST["argon2_parallelism"],
    },
)
fast.BCryptSHA256PasswordHasher = type(
    "BCryptSHA256PasswordHasher", (hashers.BCryptSHA256PasswordHasher,), {"rounds": FAST["bcrypt_rounds"]}
)
fast.BCryptPasswordHasher = type(
    "BCryptPasswordHasher", (hashers.BCryptPasswordHasher,), {"rounds": FAST["bcrypt_rounds"]}
)
fast.ScryptPasswordHasher = type(
    "ScryptPasswordHasher",
    (hashers.ScryptPasswordHasher,),
    {
        "work_factor": FAST["scrypt_work_factor"],
        "block_size": FAST["scrypt_block_size"],
        "parallelism": FAST["scrypt_parallelism"],
    },
)
fast.MD5PasswordHasher = hashers.MD5PasswordHasher
for _name in list(vars(fast)):
    if _name.endswith("PasswordHasher"):
        getattr(fast, _name).__module__ = "vector_hashers"
sys.modules["vector_hashers"] = fast


def hasher_paths(names, profile):
    names = DEFAULT_HASHERS if names is None else names
    if profile == "default":
        return list(names)
    return [n.replace("django.contrib.auth.hashers.", "vector_hashers.") for n in names]


MD5 = "django.contrib.auth.hashers.MD5PasswordHasher"
PBKDF2 = "django.contrib.auth.hashers.PBKDF2PasswordHasher"
PBKDF2_SHA1 = "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher"
ARGON2 = "django.contrib.auth.hashers.Argon2PasswordHasher"
BCRYPT_SHA256 = "django.contrib.auth.hashers.BCryptSHA256PasswordHasher"
BCRYPT = "django.contrib.auth.hashers.BCryptPasswordHasher"
SCRYPT = "django.contrib.auth.hashers.ScryptPasswordHasher"
ALL_HASHERS = [PBKDF2, PBKDF2_SHA1, ARGON2, BCRYPT_SHA256, BCRYPT, SCRYPT, MD5]

SALT = "vectorsSALTvectors0022"  # 22 characters: enough entropy
SHORT_SALT = "shortsalt"  # too little entropy: must_update
BCRYPT_SALT_5 = "$2b$05$abcdefghijklmnopqrstuu"
BCRYPT_SALT_4 = "$2b$04$ABCDEFGHIJKLMNOPQRSTUu"

PASSWORDS = ["correct horse battery staple", "пароль-é-日本-😀", "", " spaces  and\ttabs "]


def encode_with(path_list, password, salt, **kw):
    """hasher.encode of the first hasher of path_list (a fixed salt)."""
    with override_settings(PASSWORD_HASHERS=path_list):
        hasher = hashers.get_hasher("default")
        if isinstance(hasher, hashers.BCryptSHA256PasswordHasher):
            return hasher.encode(password, salt.encode())
        return hasher.encode(password, salt, **kw)


def argon2_raw(password, salt, type_name, version, t, m, p, hash_len=32):
    import argon2

    kind = {"argon2id": argon2.low_level.Type.ID, "argon2i": argon2.low_level.Type.I, "argon2d": argon2.low_level.Type.D}[
        type_name
    ]
    data = argon2.low_level.hash_secret(
        password.encode(), salt.encode(), time_cost=t, memory_cost=m, parallelism=p, hash_len=hash_len, type=kind, version=version
    )
    return "argon2" + data.decode("ascii")


# ---------------------------------------------------------------------------
vectors = {"django_version": django.get_version(), "hasher_profiles": {"fast": FAST}}


def identified(encoded):
    """identify_hasher's algorithm with every hasher installed, plus stand-ins
    for the unsalted hashers Django 5.2 no longer ships."""
    stand_ins = types.ModuleType("vector_unsalted")
    stand_ins.UnsaltedMD5 = type("UnsaltedMD5", (hashers.MD5PasswordHasher,), {"algorithm": "unsalted_md5"})
    stand_ins.UnsaltedSHA1 = type("UnsaltedSHA1", (hashers.MD5PasswordHasher,), {"algorithm": "unsalted_sha1"})
    sys.modules["vector_unsalted"] = stand_ins
    with override_settings(PASSWORD_HASHERS=ALL_HASHERS + ["vector_unsalted.UnsaltedMD5", "vector_unsalted.UnsaltedSHA1"]):
        try:
            return hashers.identify_hasher(encoded).algorithm
        except ValueError:
            return None


def check_vector(profile, names, password, encoded, note):
    with override_settings(PASSWORD_HASHERS=hasher_paths(names, profile)):
        try:
            valid, must_update = hashers.verify_password(password, encoded)
            raises = False
        except Exception:  # Django crashes on these; Rust says "wrong"
            valid, must_update, raises = False, False, True
    return {
        "note": note,
        "profile": profile,
        "hashers": names,
        "password": password,
        "encoded": encoded,
        "valid": valid,
        "must_update": must_update,
        "django_raises": raises,
        "identified": identified(encoded),
    }


def build_check_password():
    out = []
    D, F = "default", "fast"
    pw = PASSWORDS[0]
    # Django's real defaults: the only vectors at a million iterations.
    # (about 8 s each in a debug build, so only these three)
    full = encode_with(hasher_paths(None, D), PASSWORDS[1], SALT)
    out.append(check_vector(D, None, PASSWORDS[1], full, "pbkdf2_sha256 1e6, right"))
    old = encode_with(hasher_paths(None, D), pw, SALT, iterations=260000)
    out.append(check_vector(D, None, pw, old, "pbkdf2_sha256 260000 (Django 3.1): must_update"))
    old = encode_with(hasher_paths(None, D), pw, SALT, iterations=870000)
    out.append(check_vector(D, None, "wrong", old, "pbkdf2_sha256 870000 (Django 5.0) wrong: hardened to 1e6"))
    # Other algorithms under the default list (cheap parameters in the hash).
    sha1 = encode_with(hasher_paths([PBKDF2_SHA1], F), pw, SALT)
    out.append(check_vector(D, None, pw, sha1, "pbkdf2_sha1 under defaults"))
    out.append(check_vector(D, None, "wrong", sha1, "pbkdf2_sha1 wrong"))
    a2 = encode_with(hasher_paths([ARGON2], F), pw, SALT)
    out.append(check_vector(D, None, pw, a2, "argon2 under defaults"))
    out.append(check_vector(D, None, "wrong", a2, "argon2 wrong"))
    b = encode_with(hasher_paths([BCRYPT_SHA256], F), pw, BCRYPT_SALT_4)
    out.append(check_vector(D, None, pw, b, "bcrypt_sha256 under defaults"))
    out.append(check_vector(D, None, "wrong", b, "bcrypt_sha256 wrong"))
    s = encode_with(hasher_paths([SCRYPT], F), pw, SALT)
    out.append(check_vector(D, None, pw, s, "scrypt under defaults"))
    out.append(check_vector(D, None, "wrong", s, "scrypt wrong"))

    # The fast profile: Django's default list with low work factors.
    for p in PASSWORDS:
        e = encode_with(hasher_paths(None, F), p, SALT)
        out.append(check_vector(F, None, p, e, "pbkdf2_sha256 current"))
        out.append(check_vector(F, None, p + "x", e, "pbkdf2_sha256 current, wrong"))
    lower = encode_with(hasher_paths(None, F), pw, SALT, iterations=400)
    out.append(check_vector(F, None, pw, lower, "fewer iterations: must_update"))
    out.append(check_vector(F, None, "nope", lower, "fewer iterations, wrong: hardened"))
    higher = encode_with(hasher_paths(None, F), pw, SALT, iterations=1500)
    out.append(check_vector(F, None, pw, higher, "more iterations: must_update too"))
    short = encode_with(hasher_paths(None, F), pw, SHORT_SALT)
    out.append(check_vector(F, None, pw, short, "short salt: must_update"))
    out.append(check_vector(F, None, "nope", short, "short salt, wrong"))
    for p in PASSWORDS[:2]:
        for names, salt in [
            ([PBKDF2_SHA1], SALT),
            ([ARGON2], SALT),
            ([BCRYPT_SHA256], BCRYPT_SALT_5),
            ([SCRYPT], SALT),
        ]:
            e = encode_with(hasher_paths(names, F), p, salt)
            out.append(check_vector(F, None, p, e, f"{names[0]} in the default list"))
            out.append(check_vector(F, names, p, e, f"{names[0]} preferred"))
            out.append(check_vector(F, names, p + "!", e, f"{names[0]} preferred, wrong"))
    # argon2 variants and older forms, preferred and not
    for type_name, version, t, m, par in [
        ("argon2id", 19, 1, 256, 2),
        ("argon2id", 19, 2, 512, 2),
        ("argon2i", 19, 1, 256, 2),
        ("argon2d", 19, 1, 256, 2),
        ("argon2i", 16, 2, 128, 1),
    ]:
        e = argon2_raw(pw, SALT, type_name, version, t, m, par)
        out.append(check_vector(F, [ARGON2], pw, e, f"{type_name} v{version} t{t} m{m} p{par}"))
        out.append(check_vector(F, [ARGON2], "wrong", e, f"{type_name} v{version} wrong"))
    legacy = argon2_raw(pw, SALT, "argon2i", 16, 2, 128, 1).replace("$v=16", "")
    out.append(check_vector(F, [ARGON2], pw, legacy, "argon2 without version field (v1.0)"))
    out.append(check_vector(F, None, "wrong", legacy, "argon2 without version field, wrong"))
    short_a2 = argon2_raw(pw, "short8chars", "argon2id", 19, 1, 256, 2)
    out.append(check_vector(F, [ARGON2], pw, short_a2, "argon2 with a short salt"))
    long_hash = argon2_raw(pw, SALT, "argon2id", 19, 1, 256, 2, hash_len=16)
    out.append(check_vector(F, [ARGON2], pw, long_hash, "argon2 with a 16-byte hash"))
    # bcrypt: fewer rounds than preferred (hardened), plain bcrypt
    b4 = encode_with(hasher_paths([BCRYPT_SHA256], F), pw, BCRYPT_SALT_4)
    out.append(check_vector(F, [BCRYPT_SHA256], pw, b4, "bcrypt_sha256 4 rounds: must_update"))
    out.append(check_vector(F, [BCRYPT_SHA256], "no", b4, "bcrypt_sha256 4 rounds, wrong: hardened"))
    long_pw = "a" * 100
    blong = encode_with(hasher_paths([BCRYPT_SHA256], F), long_pw, BCRYPT_SALT_5)
    out.append(check_vector(F, [BCRYPT_SHA256], long_pw, blong, "bcrypt_sha256 long password"))
    out.append(check_vector(F, [BCRYPT_SHA256], "a" * 99, blong, "bcrypt_sha256 long password, wrong"))
    with override_settings(PASSWORD_HASHERS=hasher_paths([BCRYPT], F)):
        plain = hashers.get_hasher("default").encode(pw, BCRYPT_SALT_5.encode())
        plain_long = hashers.get_hasher("default").encode(long_pw, BCRYPT_SALT_5.encode())
    out.append(check_vector(F, [BCRYPT, PBKDF2], pw, plain, "plain bcrypt preferred"))
    out.append(check_vector(F, [PBKDF2, BCRYPT], pw, plain, "plain bcrypt listed"))
    out.append(check_vector(F, None, pw, plain, "plain bcrypt not listed"))
    out.append(check_vector(F, [BCRYPT], "a" * 72 + "different tail", plain_long, "plain bcrypt truncates at 72"))
    y = plain.replace("$2b$", "$2a$")
    out.append(check_vector(F, [BCRYPT], pw, y, "plain bcrypt $2a$ prefix"))
    # scrypt with other parameters
    with override_settings(PASSWORD_HASHERS=hasher_paths([SCRYPT], F)):
        other = hashers.get_hasher("default").encode(pw, SALT, n=32, r=2, p=1)
    out.append(check_vector(F, [SCRYPT], pw, other, "scrypt other parameters: must_update"))
    out.append(check_vector(F, [SCRYPT], "no", other, "scrypt other parameters, wrong"))
    # MD5: only when listed
    md5 = encode_with([MD5], pw, SALT)
    out.append(check_vector(F, [PBKDF2, MD5], pw, md5, "md5 listed"))
    out.append(check_vector(F, [PBKDF2, MD5], "nope", md5, "md5 listed, wrong"))
    out.append(check_vector(F, [MD5], pw, md5, "md5 preferred"))
    md5_short = encode_with([MD5], pw, "ab")
    out.append(check_vector(F, [MD5], pw, md5_short, "md5 preferred, short salt"))
    out.append(check_vector(F, None, pw, md5, "md5 not listed"))
    # forms Django 5.2 does not know (the unsalted hashers were removed in 5.1)
    import hashlib

    unsalted_md5 = hashlib.md5(pw.encode()).hexdigest()
    unsalted_sha1 = "sha1$$" + hashlib.sha1(pw.encode()).hexdigest()
    for e, note in [
        (unsalted_md5, "unsalted md5"),
        ("md5$$" + unsalted_md5, "md5$$ unsalted"),
        (unsalted_sha1, "sha1$$ unsalted"),
        ("!" + "UnusableUnusableUnusableUnusableUnusable", "unusable"),
        ("!" + encode_with(hasher_paths(None, F), pw, SALT), "unusable prefix on a valid hash"),
        ("", "empty"),
        ("crypt$$abcdef", "removed crypt hasher"),
        ("nonsense", "no dollar"),
    ]:
        out.append(check_vector(F, [PBKDF2, MD5], pw, e, note))
    # malformed hashes of known algorithms: Django raises, Rust says wrong
    for e, note in [
        ("pbkdf2_sha256$abc$" + SALT + "$x", "non-numeric iterations"),
        ("pbkdf2_sha256$1000", "too few fields"),
        ("scrypt$16384$salt$8$5", "scrypt too few fields"),
        ("bcrypt_sha256$2b$05", "bcrypt too few fields"),
        ("argon2$argon2id$garbage", "argon2 garbage"),
    ]:
        out.append(check_vector(F, None, pw, e, note))
    # edge numbers Python reads with int()
    sp = encode_with(hasher_paths(None, F), pw, SALT).replace("$1000$", "$01000$")
    out.append(check_vector(F, None, pw, sp, "iterations with a leading zero"))
    return out


def build_encode():
    out = []
    F = "fast"

    def vec(profile, names, password, salt):
        paths = hasher_paths(names, profile)
        with override_settings(PASSWORD_HASHERS=paths):
            encoded = hashers.make_password(password, salt.encode() if salt.startswith("$2") else salt)
        return {"profile": profile, "hashers": names, "password": password, "salt": salt, "encoded": encoded}

    # (the default profile's 1e6-iteration encoding is proven by the first
    # check_password vector, which re-encodes and compares)
    for p in PASSWORDS:
        out.append(vec(F, None, p, SALT))
    for names, salt in [
        ([PBKDF2_SHA1], SALT),
        ([ARGON2], SALT),
        ([BCRYPT_SHA256], BCRYPT_SALT_5),
        ([BCRYPT], BCRYPT_SALT_5),
        ([SCRYPT], SALT),
        ([MD5], SALT),
    ]:
        for p in PASSWORDS[:2]:
            out.append(vec(F, names, p, salt))
    return out


def build_crypto():
    out = []
    for key_salt, value, secret in [
        ("django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash", "pbkdf2_sha256$1$a$b", SECRET),
        ("", "", ""),
        ("salt", "value", "secret"),
        ("sålt", "vålüe 😀", "sécret"),
        ("k", "v", "x" * 200),
    ]:
        for algorithm in ["sha1", "sha256"]:
            out.append(
                {
                    "key_salt": key_salt,
                    "value": value,
                    "secret": secret,
                    "algorithm": algorithm,
                    "hexdigest": crypto.salted_hmac(key_salt, value, secret, algorithm=algorithm).hexdigest(),
                }
            )
    return out


def build_json():
    objs = [
        "plain",
        "quote \" backslash \\ slash / newline \n return \r tab \t bs \b ff \f",
        "".join(chr(i) for i in range(0, 32)) + "\x7f\x80\xff",
        "é ü ß ж 日本 € \u2028 \ufeff",
        "astral 😀 𝄞 \U0010ffff",
        {"b": 1, "a": [1, 2, {"z": None, "y": True, "x": False}], "ключ": "значение"},
        [],
        {},
        [0, -1, 9223372036854775807, -9223372036854775808, 18446744073709551615],
        [1.0, 0.5, -2.25, 1e16, 1e15, 123456789.125, 1e-05, 0.0001, 1.5e300, -0.0],
        {"_auth_user_id": "1", "_auth_user_backend": "django.contrib.auth.backends.ModelBackend"},
    ]
    return [{"obj": o, "dumped": json.dumps(o, separators=(",", ":"))} for o in objs]


def build_float_repr():
    values = [0.0, -0.0, 1.0, 0.1, 0.5, 100.0, 1e16, 1e15, 9999999999999998.0, 1e17, 1e-4, 1e-5,
              0.00012345, 1.5e-7, 123456.789, 2.5e22, 1.7976931348623157e308, 5e-324, 3.14159, -1e100]
    return [{"value": v, "repr": repr(v)} for v in values]


def at_time(t):
    return mock.patch("time.time", return_value=t)


def build_signing():
    out = {}
    out["base62"] = [
        {"n": n, "s": signing.b62_encode(n)}
        for n in [0, 1, 9, 10, 35, 36, 61, 62, 63, 3843, 3844, -1, -62, 1700000000, 1767225600, 2**40,
                  2**63 - 1, -(2**63)]
    ]
    out["b64"] = [
        {"hex": data.hex(), "encoded": signing.b64_encode(data).decode()}
        for data in [b"", b"f", b"fo", b"foo", b"foob", b"\xff\xfe\xfd", bytes(range(256))]
    ]
    signer_cases = []
    for key, salt, value, sep, alg in [
        (SECRET, None, "hello", None, None),
        (SECRET, "", "hello", None, None),
        (SECRET, "my.salt", "hello", None, None),
        (SECRET, "my.salt", "", None, None),
        (SECRET, None, "with:colons:inside", None, None),
        (SECRET, None, "non-ascii é 😀", None, None),
        (OLD_SECRET, "x", "hello", "/", None),
        (SECRET, "x", "hello", "~~", None),
        (SECRET, "x", "hello", None, "sha1"),
        (SECRET, "x", "hello", None, "sha256"),
    ]:
        kw = {"key": key, "salt": salt}
        if sep is not None:
            kw["sep"] = sep
        if alg is not None:
            kw["algorithm"] = alg
        signed = signing.Signer(**kw).sign(value)
        signer_cases.append({"key": key, "salt": salt, "value": value, "sep": sep, "algorithm": alg, "signed": signed})
    out["signer"] = signer_cases

    good = signing.Signer(key=SECRET, salt="s").sign("payload")
    old = signing.Signer(key=OLD_SECRET, salt="s").sign("payload")
    unsign_cases = []
    for key, fallback, salt, signed in [
        (SECRET, [], "s", good),
        (SECRET, [OLD_SECRET], "s", good),
        (SECRET, [OLD_SECRET], "s", old),
        (SECRET, [OTHER_SECRET, OLD_SECRET], "s", old),
        (SECRET, [], "s", old),
        (SECRET, [OLD_SECRET], "t", good),
        (SECRET, [], "s", good[:-1] + ("A" if good[-1] != "A" else "B")),
        (SECRET, [], "s", "no separator here"),
        (SECRET, [], "s", "payload:"),
        (SECRET, [], "s", ":" + good.rsplit(":", 1)[1]),
        (SECRET, [], "s", "x" + good),
    ]:
        try:
            value = signing.Signer(key=key, fallback_keys=fallback, salt=salt).unsign(signed)
        except signing.BadSignature:
            value = None
        unsign_cases.append({"key": key, "fallback_keys": fallback, "salt": salt, "signed": signed, "value": value})
    out["signer_unsign"] = unsign_cases

    seps = []
    for sep in [":", "", "a", "-", "_", "=", "[", "\\", "^", "`", "/", "~", "é", "ab:", ":a", "a\n", "\n", "Az09-_="]:
        try:
            signing.Signer(key=SECRET, sep=sep)
            safe = True
        except ValueError:
            safe = False
        seps.append({"sep": sep, "safe": safe})
    out["separators"] = seps

    ts_cases = []
    T = 1767225600.75
    for key, salt, value in [(SECRET, None, "hello"), (SECRET, "ts.salt", "a:b"), (OLD_SECRET, "", "é")]:
        with at_time(T):
            signed = signing.TimestampSigner(key=key, salt=salt).sign(value)
        checks = []
        for max_age, now in [(None, T + 10**6), (10, T + 5), (10, int(T) + 10), (10, int(T) + 10.5), (0, int(T)),
                             (0, T), (3600.5, int(T) + 3600.5), (3600.5, int(T) + 3601)]:
            with at_time(now):
                try:
                    result = signing.TimestampSigner(key=key, salt=salt).unsign(signed, max_age=max_age)
                except signing.SignatureExpired:
                    result = "SignatureExpired"
            checks.append({"max_age": max_age, "now": now, "result": result})
        ts_cases.append({"key": key, "salt": salt, "value": value, "timestamp": int(T), "signed": signed, "checks": checks})
    out["timestamp_signer"] = ts_cases

    big = {"items": [{"id": i, "name": "product %d" % i, "tags": ["a", "b"]} for i in range(60)]}
    dumps_cases = []
    for obj, compress, salt in [
        ("hello", False, "django.core.signing"),
        ("hello", True, "django.core.signing"),
        ({"a": 1, "b": [True, None, 2.5]}, False, "django.core.signing"),
        ({"é": "ж😀", "nested": {"list": [1, "два", {"x": "y"}]}}, False, "custom.salt"),
        ({"é": "ж😀", "nested": {"list": [1, "два", {"x": "y"}]}}, True, "custom.salt"),
        (list(range(1, 20)), True, "django.core.signing"),
        (big, True, "django.core.signing"),
        (big, False, "django.core.signing"),
        ("x" * 40, True, "s"),
        ("ab" * 3, True, "s"),
        (None, False, "s"),
        (12345, True, "s"),
    ]:
        T2 = 1767225600
        with at_time(T2 + 0.5):
            signed = signing.dumps(obj, key=SECRET, salt=salt, compress=compress)
        dumps_cases.append({"key": SECRET, "salt": salt, "obj": obj, "compress": compress, "timestamp": T2, "signed": signed})
    out["dumps"] = dumps_cases

    loads_cases = []
    T3 = 1767225600
    with at_time(T3):
        by_secret = signing.dumps({"k": "v", "é": [1, 2]}, key=SECRET, salt="l")
        by_old = signing.dumps({"k": "old"}, key=OLD_SECRET, salt="l", compress=True)
        compressed = signing.dumps(big, key=SECRET, salt="l", compress=True)
    # a payload carrying raw UTF-8 (not what dumps writes): Django reads Latin-1
    raw = signing.b64_encode('{"name":"é"}'.encode("utf-8")).decode()
    with at_time(T3):
        raw_signed = signing.TimestampSigner(key=SECRET, salt="l").sign(raw)
        not_json = signing.TimestampSigner(key=SECRET, salt="l").sign(signing.b64_encode(b"{nope").decode())
    tampered = by_secret.replace(by_secret.split(":")[0], by_secret.split(":")[0][:-1] + "x", 1)
    for signed, key, fallback, salt, max_age, now in [
        (by_secret, SECRET, [], "l", None, T3 + 10**7),
        (by_secret, SECRET, [], "l", 60, T3 + 59),
        (by_secret, SECRET, [], "l", 60, T3 + 61),
        (by_secret, SECRET, [], "other", None, T3),
        (by_secret, OTHER_SECRET, [SECRET], "l", None, T3),
        (by_old, SECRET, [OLD_SECRET], "l", None, T3),
        (by_old, SECRET, [], "l", None, T3),
        (compressed, SECRET, [], "l", None, T3),
        (tampered, SECRET, [], "l", None, T3),
        (raw_signed, SECRET, [], "l", None, T3),
        ("garbage", SECRET, [], "l", None, T3),
        ("", SECRET, [], "l", None, T3),
    ]:
        entry = {"signed": signed, "key": key, "fallback_keys": fallback, "salt": salt, "max_age": max_age, "now": now}
        with at_time(now):
            try:
                entry["obj"] = signing.loads(signed, key=key, salt=salt, max_age=max_age, fallback_keys=fallback)
                entry["error"] = None
            except signing.SignatureExpired:
                entry["error"] = "SignatureExpired"
            except signing.BadSignature:
                entry["error"] = "BadSignature"
        loads_cases.append(entry)
    out["loads"] = loads_cases
    # (not_json is signed fine but is not JSON: Django raises a JSONDecodeError)
    out["loads_malformed"] = [{"signed": not_json, "key": SECRET, "salt": "l"}]
    return out


def build_sessions():
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    out = {}
    T = 1767225600
    auth = {
        SESSION_KEY: "42",
        BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
        HASH_SESSION_KEY: "0" * 64,
    }
    big = {"cart": ["item-%d" % (i % 7) for i in range(300)], **auth}
    sessions = [
        {},
        auth,
        {"message": "Привет, мир 😀", "n": 3, "f": 1.5, "flag": True, "none": None},
        {"_session_expiry": 0, "nested": {"a": [1, 2, {"b": "c"}]}},
        big,
    ]
    enc = []
    for s in sessions:
        with at_time(T + 0.25), override_settings(SECRET_KEY=SECRET):
            encoded = SessionStore().encode(s)
        enc.append({"secret_key": SECRET, "session": s, "timestamp": T, "encoded": encoded})
    out["session_encode"] = enc

    with at_time(T), override_settings(SECRET_KEY=OLD_SECRET):
        by_old = SessionStore().encode(auth)
    with at_time(T), override_settings(SECRET_KEY=SECRET):
        by_new = SessionStore().encode(auth)
        nested = SessionStore().encode({"k": "v"})
    tampered = by_new[:5] + ("A" if by_new[5] != "A" else "B") + by_new[6:]
    dec = []
    for encoded, key, fallbacks in [
        (by_new, SECRET, []),
        (by_old, SECRET, [OLD_SECRET]),
        (by_old, SECRET, []),
        (by_new, OTHER_SECRET, []),
        (tampered, SECRET, []),
        ("not a session", SECRET, []),
        ("", SECRET, []),
        (nested, SECRET, [OTHER_SECRET]),
        (enc[4]["encoded"], SECRET, []),
    ]:
        with override_settings(SECRET_KEY=key, SECRET_KEY_FALLBACKS=fallbacks):
            session = SessionStore().decode(encoded)
        dec.append({"secret_key": key, "fallback_keys": fallbacks, "encoded": encoded, "session": session})
    out["session_decode"] = dec

    from django.contrib.auth.base_user import AbstractBaseUser

    hashes = []
    for password, secret in [
        ("pbkdf2_sha256$1000000$" + SALT + "$abc=", SECRET),
        ("pbkdf2_sha256$1000000$" + SALT + "$abc=", OLD_SECRET),
        ("", SECRET),
        ("!unusable", SECRET),
        ("argon2$argon2id$v=19$m=102400,t=2,p=8$c2FsdA$aGFzaA", "é-secret"),
    ]:
        user = types.SimpleNamespace(password=password)
        h = AbstractBaseUser._get_session_auth_hash(user, secret=secret)
        hashes.append({"password": password, "secret": secret, "hash": h})
    out["session_auth_hash"] = hashes

    # The signed_cookies engine: the cookie is the signed data, loaded no
    # older than SESSION_COOKIE_AGE.
    from django.contrib.sessions.backends.signed_cookies import SessionStore as CookieStore

    def cookie_of(session, key):
        with at_time(T + 0.25), override_settings(SECRET_KEY=key):
            store = CookieStore()
            store._session_cache = dict(session)
            return store._get_session_key()

    cookies = []
    for s in sessions:
        cookies.append({"secret_key": SECRET, "session": s, "timestamp": T, "cookie": cookie_of(s, SECRET)})
    out["signed_cookie_encode"] = cookies
    by_new = cookie_of(auth, SECRET)
    by_old = cookie_of(auth, OLD_SECRET)
    loads = []
    for cookie, key, fallbacks, age, elapsed in [
        (by_new, SECRET, [], 1209600, 0),
        (by_new, SECRET, [], 1209600, 1209600),
        (by_new, SECRET, [], 1209600, 1209601),
        (by_new, SECRET, [], 60, 61),
        (by_old, SECRET, [OLD_SECRET], 1209600, 10),
        (by_old, SECRET, [], 1209600, 10),
        (by_new[:-1] + ("A" if by_new[-1] != "A" else "B"), SECRET, [], 1209600, 0),
        (by_new.replace(":", "", 1), SECRET, [], 1209600, 0),
        ("", SECRET, [], 1209600, 0),
        (cookie_of({"k": "v"}, SECRET), SECRET, [], 1209600, 5),
    ]:
        with at_time(T + elapsed), override_settings(
            SECRET_KEY=key, SECRET_KEY_FALLBACKS=fallbacks, SESSION_COOKIE_AGE=age
        ):
            session = CookieStore(cookie).load()
        loads.append({"cookie": cookie, "secret_key": key, "fallback_keys": fallbacks,
                      "cookie_age": age, "now": T + elapsed, "session": session})
    out["signed_cookie_load"] = loads

    # A session's own expiry (`set_expiry`), as the middleware and the db
    # engine read it when saving.
    import datetime as dt

    now = dt.datetime.fromtimestamp(T, dt.timezone.utc) + dt.timedelta(microseconds=250000)
    expiries = []
    for stored in [None, "absent", 0, 3600, 59.9, "2026-01-01T01:00:00+00:00",
                   "2026-01-01T01:00:00.900000+00:00", "2026-01-01T05:00:00+03:00",
                   "2025-12-31T00:00:00+00:00", "2026-01-01T00:00:00.100000+00:00",
                   False]:
        for age, at_close in [(1209600, False), (3600, True)]:
            with override_settings(SESSION_COOKIE_AGE=age, SESSION_EXPIRE_AT_BROWSER_CLOSE=at_close):
                store = SessionStore()
                store._session_cache = {} if stored == "absent" else {"_session_expiry": stored}
                expiries.append({
                    "session": store._session_cache,
                    "cookie_age": age,
                    "expire_at_browser_close_setting": at_close,
                    "now": now.isoformat(),
                    "expiry_age": store.get_expiry_age(modification=now),
                    "expiry_date": store.get_expiry_date(modification=now).isoformat(),
                    "expire_at_browser_close": store.get_expire_at_browser_close(),
                })
    out["session_expiry"] = expiries
    return out


def build_db_backed():
    """Vectors that need Django's auth models: get_user's session hash check and
    ModelBackend permissions."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user
    from django.contrib.auth.models import Group, Permission, User
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command
    from django.test import RequestFactory

    call_command("migrate", verbosity=0)
    out = {}

    user = User.objects.create_user("vector", "v@example.com", None)
    user.password = encode_with(hasher_paths(None, "fast"), "pw", SALT)
    user.save()
    password = user.password
    current = user._get_session_auth_hash(secret=SECRET)
    by_old = user._get_session_auth_hash(secret=OLD_SECRET)
    by_other = user._get_session_auth_hash(secret=OTHER_SECRET)
    stale = session_hash_of("pbkdf2_sha256$1000$x$y", SECRET)
    verify = []
    for stored, key, fallbacks in [
        (current, SECRET, []),
        (current, SECRET, [OLD_SECRET]),
        (by_old, SECRET, [OLD_SECRET]),
        (by_old, SECRET, [OTHER_SECRET, OLD_SECRET]),
        (by_old, SECRET, []),
        (by_other, SECRET, [OLD_SECRET]),
        (stale, SECRET, [OLD_SECRET]),
        ("", SECRET, [""]),
        (None, SECRET, [OLD_SECRET]),
        (current.upper(), SECRET, []),
    ]:
        request = RequestFactory().get("/")
        request.session = SessionStore()
        request.session[SESSION_KEY] = str(user.pk)
        request.session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        if stored is not None:
            request.session[HASH_SESSION_KEY] = stored
        with override_settings(SECRET_KEY=key, SECRET_KEY_FALLBACKS=fallbacks):
            got = get_user(request)
            if got.is_anonymous:
                result = "invalid"
            elif request.session.get(HASH_SESSION_KEY) != stored:
                result = "fallback"
            else:
                result = "current"
        verify.append({"stored": stored, "password": password, "secret_key": key, "fallback_keys": fallbacks,
                       "result": result})
    out["session_hash_verify"] = verify

    def perm(name):
        app, codename = name.split(".")
        return Permission.objects.get(content_type__app_label=app, codename=codename)

    editors = Group.objects.create(name="editors")
    editors.permissions.add(perm("auth.change_group"), perm("sessions.view_session"))
    specs = [
        ("plain", True, False, ["auth.view_user"], True),
        ("inactive", False, False, ["auth.view_user"], True),
        ("superuser", True, True, [], False),
        ("inactive-superuser", False, True, ["auth.view_user"], False),
        ("nobody", True, False, [], False),
        ("groups-only", True, False, [], True),
    ]
    users = []
    target = User.objects.create_user("target", "t@example.com", None)
    for name, active, superuser, own, in_group in specs:
        u = User.objects.create_user(name, name + "@example.com", None, is_active=active, is_superuser=superuser)
        for p in own:
            u.user_permissions.add(perm(p))
        if in_group:
            u.groups.add(editors)
        u = User.objects.get(pk=u.pk)
        held = sorted(
            {f"{p.content_type.app_label}.{p.codename}" for p in Permission.objects.filter(user=u)}
            | {f"{p.content_type.app_label}.{p.codename}" for p in Permission.objects.filter(group__user=u)}
        )
        checks = []
        for p in ["auth.view_user", "auth.change_group", "sessions.view_session", "auth.delete_user",
                  "catalog.can_publish_product", "nonexistent.perm", "noperiod", ""]:
            for obj in [False, True]:
                fresh = User.objects.get(pk=u.pk)
                checks.append({"perm": p, "obj": obj, "result": fresh.has_perm(p, target if obj else None)})
        lists = []
        for pl in [[], ["auth.view_user"], ["auth.view_user", "auth.change_group"], ["auth.view_user", "x.y"]]:
            for obj in [False, True]:
                fresh = User.objects.get(pk=u.pk)
                lists.append({"perms": pl, "obj": obj, "result": fresh.has_perms(pl, target if obj else None)})
        modules = []
        for label in ["auth", "sessions", "contenttypes", "catalog", "", "au"]:
            fresh = User.objects.get(pk=u.pk)
            modules.append({"app_label": label, "result": fresh.has_module_perms(label)})
        users.append({"name": name, "is_active": active, "is_superuser": superuser, "perms": held,
                      "has_perm": checks, "has_perms": lists, "has_module_perms": modules})
    out["perms"] = users
    return out


def session_hash_of(password, secret):
    from django.contrib.auth.base_user import AbstractBaseUser

    return AbstractBaseUser._get_session_auth_hash(types.SimpleNamespace(password=password), secret=secret)


def build_csrf():
    from django.middleware import csrf
    from django.test import RequestFactory

    out = {}
    secrets = ["abcdefghijklmnopqrstuvwxyzABCDEF", "0123456789" * 3 + "Zz", "a" * 32, "9" * 32]
    masks = ["ZYXWVUTSRQPONMLKJIHGFEDCBAzyxwvu", "a" * 32, "0123456789abcdefghijABCDEFGHIJ99", "9" * 32]
    masked = []
    for secret in secrets:
        for mask in masks:
            with mock.patch("django.middleware.csrf._get_new_csrf_string", return_value=mask):
                token = csrf._mask_cipher_secret(secret)
            assert csrf._unmask_cipher_token(token) == secret
            masked.append({"secret": secret, "mask": mask, "token": token})
    out["csrf_mask"] = masked

    mw = csrf.CsrfViewMiddleware(lambda r: None)
    secret = secrets[0]
    token = masked[0]["token"]
    other_token = masked[-1]["token"]
    cookies = []
    for cookie in [secret, token, "short", "x" * 33, "!" * 32, "é" * 32, "a" * 64]:
        req = RequestFactory().get("/")
        req.COOKIES["csrftoken"] = cookie
        try:
            cookies.append({"cookie": cookie, "secret": mw._get_secret(req), "reason": None})
        except csrf.InvalidTokenFormat as e:
            cookies.append({"cookie": cookie, "secret": None, "reason": e.reason})
    out["csrf_cookie"] = cookies

    checks = []
    for cookie, post, header in [
        (None, token, None),
        (secret, token, None),
        (secret, secret, None),
        (token, token, None),
        (token, secret, None),
        (secret, other_token, None),
        (secret, None, None),
        (secret, "", None),
        (secret, "", token),
        (secret, None, token),
        (secret, None, secret),
        (secret, None, other_token),
        (secret, None, "short"),
        (secret, None, "!" * 64),
        (secret, "short", token),
        (secret, "!" * 32, None),
        (secret, token, "garbage"),
        ("short", token, None),
        ("!" * 32, token, None),
        (secret, secret.lower(), None),
    ]:
        data = {} if post is None else {"csrfmiddlewaretoken": post}
        extra = {} if header is None else {"HTTP_X_CSRFTOKEN": header}
        req = RequestFactory().post("/", data=data, **extra)
        if cookie is not None:
            req.COOKIES["csrftoken"] = cookie
        try:
            mw._check_token(req)
            reason = None
        except csrf.RejectRequest as e:
            reason = e.reason
        checks.append({"cookie": cookie, "post": post, "header": header, "reason": reason})
    out["csrf_check_token"] = checks

    origin_cases = []
    H = "shop.example.com"
    for secure, host, port, origin, referer, trusted, cookie_domain in [
        (False, H, "80", None, None, [], None),
        (False, H, "80", "http://" + H, None, [], None),
        (False, H, "80", "https://" + H, None, [], None),
        (True, H, "443", "https://" + H, None, [], None),
        (True, H, "443", "null", None, [], None),
        (True, H, "443", None, None, [], None),
        (True, H, "443", None, "http://" + H + "/", [], None),
        (True, H, "443", None, "https://" + H + "/path?q=1#frag", [], None),
        (True, H, "443", None, "https://evil.example/x?y#z", [], None),
        (True, H, "443", None, "https://evil.example/x?#", [], None),
        (True, H, "443", None, "not a url", [], None),
        (True, H, "443", None, "https:///path", [], None),
        (True, H, "443", None, "https://[::1/", [], None),
        (True, H, "443", None, "https://[::1]/", [], None),
        (True, H, "443", None, "https://[nope]/", [], None),
        (True, H, "443", None, "  https://" + H + "/", [], None),
        (True, H, "443", None, "HTTPS://" + H + "/", [], None),
        (True, H, "443", None, "https://" + H.upper() + "/", [], None),
        (True, H, "443", "https://trusted.example", None, ["https://trusted.example"], None),
        (True, H, "443", "https://sub.trusted.example", None, ["https://trusted.example"], None),
        (True, H, "443", "https://a.example.org", None, ["https://*.example.org"], None),
        (True, H, "443", "http://a.example.org", None, ["https://*.example.org"], None),
        (True, H, "443", "https://example.org", None, ["https://*.example.org"], None),
        (True, H, "443", "https://a.b.example.org:8443", None, ["https://*.example.org"], None),
        (True, H, "443", None, "https://a.example.org/p", ["https://*.example.org"], None),
        (True, H, "443", None, "https://trusted.example/p", ["https://trusted.example"], None),
        (True, H, "443", None, "https://x.trusted.example/p", ["https://trusted.example"], None),
        (True, None, "443", "https://evil.example", None, [], None),
        (True, None, "443", None, "https://evil.example/", [], None),
        (True, None, "443", None, "https://trusted.example/", ["https://trusted.example"], None),
        (True, H, "8443", None, "https://www.example.com/", [], ".example.com"),
        (True, H, "8443", None, "https://www.example.com:8443/", [], ".example.com"),
        (True, H, "443", None, "https://www.example.com/", [], ".example.com"),
        (True, H, "443", None, "https://" + H + "/", [], ".example.com"),
        (False, H + ":8000", "8000", "http://" + H + ":8000", None, [], None),
        (False, H + ":8000", "8000", "http://" + H, None, [], None),
        (False, H, "80", None, "https://evil.example/", [], None),
    ]:
        allowed = ["*"] if host is not None else ["only.allowed.example"]
        req_host = host if host is not None else "evil.example"
        extra = {"HTTP_HOST": req_host, "SERVER_PORT": port}
        if origin is not None:
            extra["HTTP_ORIGIN"] = origin
        if referer is not None:
            extra["HTTP_REFERER"] = referer
        req = RequestFactory().post("/", data={"csrfmiddlewaretoken": secret}, secure=secure, **extra)
        req.COOKIES["csrftoken"] = secret
        with override_settings(CSRF_TRUSTED_ORIGINS=trusted, CSRF_COOKIE_DOMAIN=cookie_domain, ALLOWED_HOSTS=allowed):
            mw = csrf.CsrfViewMiddleware(lambda r: None)
            mw._reject = lambda request, reason: reason
            reason = mw.process_view(req, lambda r: None, (), {})
        origin_cases.append({"secure": secure, "host": host, "port": port, "origin": origin, "referer": referer,
                             "trusted_origins": trusted, "cookie_domain": cookie_domain, "reason": reason})
    out["csrf_origin"] = origin_cases
    return out


def lcg_generate(seed, length, alphabet, run):
    """Deterministic test data; src/django/zlib_deflate.rs has the same."""
    state, out = seed, bytearray()
    while len(out) < length:
        state = (state * 6364136223846793005 + 1442695040888963407) % 2**64
        pick = alphabet[(state >> 33) % len(alphabet)]
        out.extend([pick] * ((state >> 20) % run + 1))
    return bytes(out[:length])


def build_zlib():
    import hashlib
    import zlib

    out = []

    def entry(data, source):
        compressed = zlib.compress(data)
        out.append({**source, "input_sha256": hashlib.sha256(data).hexdigest(),
                    "compressed_len": len(compressed),
                    "compressed_sha256": hashlib.sha256(compressed).hexdigest()})

    for data in [b"", b"a", b"aaaaaaaaaa", b'{"_auth_user_id":"1"}',
                 json.dumps({"cart": ["item-%d" % (i % 7) for i in range(40)]}, separators=(",", ":")).encode()]:
        entry(data, {"hex": data.hex()})
    text = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJ,.:{}[]\"0123456789"
    for seed, length, alphabet, run in [
        (1, 1000, text, 1),
        (2, 5000, text, 5),
        (3, 70000, "ab", 3),
        (4, 40000, "".join(map(chr, range(256))), 1),
        (5, 200000, text[:30], 1),
        (6, 300000, "abc", 60),
        (7, 100000, "".join(map(chr, range(256))), 4),
        (8, 4400000, "a", 300),
    ]:
        spec = {"seed": seed, "len": length, "alphabet": alphabet, "run": run}
        data = lcg_generate(seed, length, alphabet.encode("latin-1"), run)
        entry(data, {"generate": spec})
    return out


def build_hosts():
    """Django's Host rule (http.request.split_domain_port and validate_host)
    on hostile and ordinary Host headers, under several ALLOWED_HOSTS."""
    import string

    from django.http.request import split_domain_port, validate_host

    hosts = [
        "shop.test", "SHOP.Test", "shop.test:8000", "shop.test:", "shop.test:80:90", ":80", "",
        "shop.test.", "shop.test..", "shop.test.:8000", ".shop.test", "..shop.test", "a.shop.test",
        "a.b.shop.test:443", "evilshop.test", "shop.test.evil", "shop_test", "-shop.test", "shop-test",
        "127.0.0.1", "127.0.0.1:8000", "127.0.0.1:8a", "127.0.0.1:-1", "127.0.0.1:+80", "127.0.0.1: 80",
        "localhost", "LOCALHOST:8000", "a.localhost", "localhost.",
        "[::1]", "[::1]:8000", "[::1]x", "[::1]:", "[::1]:8a", "[::ffff:127.0.0.1]", "[::ffff:127.0.0.1]:80",
        "[junk]", "[1:2]", "[]", "[:]", "[:1]", "[a:]", "[g::1]", "[.:1]", "[1.2:3]", "[::1", "::1]", "::1",
        "[::1]]", "[[::1]]", "[::1]:80:80", "[::1]:1]", "[ABCD::EF]", "[fe80::1%eth0]",
        "a!b", "x?y", "evil.com?.shop.test", "evil.com#.shop.test", "evil.com/.shop.test",
        "evil.com\\.shop.test", "user@shop.test", "user:pass@shop.test", "evil.com:80@shop.test",
        " shop.test", "shop.test ", "shop .test", "shop.test\t", "shop.test\n", "shop.test\r\nX-Evil: 1",
        "shop.test\x00", "%2e.shop.test", "shop.test%00", "xn--80ak6aa92e.test", "шоп.тест",
        "\u212aa.shop.test", "\u0130.shop.test", "ß.shop.test", "ＳＨＯＰ.test", "shop.test\u3002",
        "1" * 300, "a." * 100 + "shop.test", "shop.test:" + "9" * 30, "0", "0:0", ".", "..", "-",
    ]
    for c in string.punctuation + " \t":
        hosts += [f"a{c}b.shop.test", f"shop.test{c}", f"{c}shop.test", f"shop.test:80{c}", f"[::1{c}]"]
    patterns = [
        ["*"], [".shop.test"], ["shop.test"], [".SHOP.Test"], ["SHOP.TEST"], ["shop.test", "127.0.0.1", "[::1]"],
        [".localhost", "127.0.0.1", "[::1]"], ["localhost"], [], [""], ["."], [".test"], ["a.shop.test"],
        ["shop.test."], ["[::1]"], ["127.0.0.1"],
    ]
    out = []
    for host in dict.fromkeys(hosts):
        domain, port = split_domain_port(host)
        out.append({
            "host": host, "domain": domain, "port": port,
            "allowed": [bool(domain) and validate_host(domain, allowed) for allowed in patterns],
        })
    return {"host_patterns": patterns, "hosts": out}


def build_reset_tokens():
    """django.contrib.auth.tokens.PasswordResetTokenGenerator (sha256, Django
    5.2), the uidb64 of reset links and PasswordResetConfirmView.get_user's
    reading of it. Users are stored and read back as the reference project
    keeps them (USE_TZ=True: last_login comes back aware, in UTC); a few live
    only in memory (a naive last_login as under USE_TZ=False, an aware one in
    another zone)."""
    import datetime as dt
    import sys as _sys
    from zoneinfo import ZoneInfo

    from django.contrib.auth.models import User
    from django.contrib.auth.tokens import PasswordResetTokenGenerator
    from django.core.management import call_command
    from django.core.exceptions import ValidationError
    from django.db import models
    from django.utils.encoding import force_bytes
    from django.utils.http import base36_to_int, int_to_base36, urlsafe_base64_decode, urlsafe_base64_encode

    call_command("migrate", verbosity=0)
    utc = dt.timezone.utc
    msk = ZoneInfo("Europe/Moscow")
    out = {}

    def iso(value):
        return None if value is None else value.isoformat()

    def stored(pk, password, last_login, email):
        User.objects.filter(pk=pk).delete()
        User(pk=pk, username=f"reset-{pk}", password=password, last_login=last_login, email=email).save()
        return User.objects.get(pk=pk)

    def in_memory(pk, password, last_login, email):
        return User(pk=pk, username=f"reset-{pk}", password=password, last_login=last_login, email=email)

    pbkdf2 = "pbkdf2_sha256$1000000$" + SALT + "$T2i2Vh0BgyA8pzdBErIGdq7VYKTdTcmH0tHqaGUa9Ks="
    argon = "argon2$argon2id$v=19$m=102400,t=2,p=8$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA"
    users = [
        ("stored, never logged in", stored(1001, pbkdf2, None, "ivan@example.com")),
        ("stored, last_login given in Moscow with microseconds (crosses midnight in UTC)",
         stored(1002, argon, dt.datetime(2026, 3, 1, 2, 30, 15, 654321, tzinfo=msk), "Petr.Petrov@Example.COM")),
        ("stored, non-ASCII e-mail, unusable password, .999999",
         stored(1003, "!" + "x" * 40, dt.datetime(2025, 12, 31, 23, 59, 59, 999999, tzinfo=utc), "иван@пример.рф")),
        ("stored, largest pk, empty e-mail and password",
         stored(2**63 - 1, "", dt.datetime(2001, 1, 1, 0, 0, 0, tzinfo=utc), "")),
        ("in memory, naive last_login (USE_TZ=False)",
         in_memory(7, pbkdf2, dt.datetime(2026, 11, 30, 10, 0, 0, 500000), "a@b.c")),
        ("in memory, aware in Moscow: tzinfo dropped, not converted",
         in_memory(8, pbkdf2, dt.datetime(2026, 11, 30, 10, 0, 0, tzinfo=msk), "a@b.c")),
        ("in memory, e-mail None reads as empty", in_memory(9, pbkdf2, None, None)),
    ]

    def user_json(note, u):
        return {"note": note, "pk": u.pk, "password": u.password, "last_login": iso(u.last_login),
                "email": u.email}

    gen = PasswordResetTokenGenerator()
    assert gen.algorithm == "sha256"
    huge = 36**13 - 1
    timestamps = [0, 1, 35, 36, 36**6 - 1, 36**6, 820454400, 2**31, 2**63 - 1, huge]
    tokens = []
    for note, u in users:
        for ts in timestamps:
            for secret in [SECRET, OLD_SECRET] if ts in (0, 820454400, huge) else [SECRET]:
                tokens.append({"user": user_json(note, u), "timestamp": str(ts), "secret": secret,
                               "hash_value": gen._make_hash_value(u, ts),
                               "token": gen._make_token_with_timestamp(u, ts, secret)})
    out["reset_token_make"] = tokens

    out["reset_token_num_seconds"] = [
        {"datetime": d.isoformat(), "seconds": gen._num_seconds(d)}
        for d in [
            dt.datetime(2001, 1, 1), dt.datetime(2001, 1, 1, 0, 0, 0, 999999), dt.datetime(2000, 12, 31, 23, 59, 59),
            dt.datetime(2000, 12, 31, 23, 59, 59, 500000), dt.datetime(2026, 12, 1, 8, 0, 0),
            dt.datetime(2026, 12, 1, 8, 0, 0, 999999), dt.datetime(2069, 5, 25, 0, 0, 0),
            dt.datetime(2600, 1, 1, 0, 0, 0, 999999), dt.datetime(2700, 1, 1, 0, 0, 0, 999999),
            dt.datetime(5000, 6, 1, 12, 0, 0, 999998), dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
            dt.datetime(9999, 12, 31, 23, 59, 59, 999990), dt.datetime(1, 1, 1, 0, 0, 0, 1),
            dt.datetime(1400, 1, 1, 0, 0, 0, 1), dt.datetime(1999, 1, 1, 0, 0, 0, 1),
        ]
    ]

    # check_token under fixed settings and a fixed clock
    NOW = dt.datetime(2026, 12, 1, 8, 0, 0)
    T = gen._num_seconds(NOW)
    DAYS3 = 259200
    note, u = users[1]

    def with_login(user, last_login):
        return in_memory(user.pk, user.password, last_login, user.email)

    def make(user, ts, secret=SECRET):
        return gen._make_token_with_timestamp(user, ts, secret)

    good = make(u, T)
    ts_b36, hash_part = good.split("-")
    flipped = hash_part[:-1] + ("0" if hash_part[-1] != "0" else "1")

    class Sha1Generator(PasswordResetTokenGenerator):
        algorithm = "sha1"

    legacy_sha1 = Sha1Generator()._make_token_with_timestamp(u, T, SECRET)
    legacy_days = Sha1Generator()._make_token_with_timestamp(u, T // 86400, SECRET)
    other = users[0][1]
    micro_login = with_login(u, u.last_login.replace(microsecond=0))
    later_login = with_login(u, u.last_login + dt.timedelta(seconds=1))
    new_password = in_memory(u.pk, pbkdf2, u.last_login, u.email)
    new_email = in_memory(u.pk, u.password, u.last_login, "other@example.com")
    cases = [
        # (note, token, user, now, key, fallbacks, timeout)
        ("made now", good, u, NOW, SECRET, [], DAYS3),
        ("made now, clock with microseconds", good, u, NOW.replace(microsecond=999999), SECRET, [], DAYS3),
        ("last_login microseconds do not count", good, micro_login, NOW, SECRET, [], DAYS3),
        ("logged in since", good, later_login, NOW, SECRET, [], DAYS3),
        ("password changed", good, new_password, NOW, SECRET, [], DAYS3),
        ("e-mail changed", good, new_email, NOW, SECRET, [], DAYS3),
        ("another user", good, other, NOW, SECRET, [], DAYS3),
        ("signed by the fallback key", make(u, T, OLD_SECRET), u, NOW, SECRET, [OLD_SECRET], DAYS3),
        ("signed by the second fallback", make(u, T, OLD_SECRET), u, NOW, SECRET, [OTHER_SECRET, OLD_SECRET], DAYS3),
        ("signed by a key no longer listed", make(u, T, OLD_SECRET), u, NOW, SECRET, [], DAYS3),
        ("signed by a key now only a fallback", good, u, NOW, OTHER_SECRET, [SECRET], DAYS3),
        ("signed by an unknown key", make(u, T, OTHER_SECRET), u, NOW, SECRET, [OLD_SECRET], DAYS3),
        ("exactly the timeout old", make(u, T - DAYS3), u, NOW, SECRET, [], DAYS3),
        ("a second too old", make(u, T - DAYS3 - 1), u, NOW, SECRET, [], DAYS3),
        ("a second too old, clock .999999", make(u, T - DAYS3 - 1), u, NOW.replace(microsecond=999999), SECRET, [],
         DAYS3),
        ("timeout 0, made now", good, u, NOW, SECRET, [], 0),
        ("timeout 0, made a second ago", make(u, T - 1), u, NOW, SECRET, [], 0),
        ("timeout 1 day, made 2 days ago, by fallback", make(u, T - 2 * 86400, OLD_SECRET), u, NOW, SECRET,
         [OLD_SECRET], 86400),
        ("made in 2001", make(u, 0), u, NOW, SECRET, [], 10**9),
        ("made in 2001, timeout too short", make(u, 0), u, NOW, SECRET, [], T - 1),
        ("made in the future", make(u, T + 1000), u, NOW, SECRET, [], DAYS3),
        ("made at 36**13-1 (the largest 13 base36 digits)", make(u, huge), u, NOW, SECRET, [], DAYS3),
        ("made at 2**63-1", make(u, 2**63 - 1), u, NOW, SECRET, [], DAYS3),
        ("made at 2**63", make(u, 2**63), u, NOW, SECRET, [], DAYS3),
        ("made at 36**13: 14 digits", make(u, 36**13), u, NOW, SECRET, [], DAYS3),
        ("hash changed", ts_b36 + "-" + flipped, u, NOW, SECRET, [], DAYS3),
        ("hash upper-cased", ts_b36 + "-" + hash_part.upper(), u, NOW, SECRET, [], DAYS3),
        ("hash cut short", good[:-1], u, NOW, SECRET, [], DAYS3),
        ("hash longer", good + "0", u, NOW, SECRET, [], DAYS3),
        ("timestamp changed", int_to_base36(T - 1) + "-" + hash_part, u, NOW, SECRET, [], DAYS3),
        ("timestamp upper-cased", ts_b36.upper() + "-" + hash_part, u, NOW, SECRET, [], DAYS3),
        ("timestamp with a leading zero", "0" + good, u, NOW, SECRET, [], DAYS3),
        ("timestamp with a plus", "+" + good, u, NOW, SECRET, [], DAYS3),
        ("timestamp with a space", " " + good, u, NOW, SECRET, [], DAYS3),
        ("timestamp with an underscore", ts_b36[0] + "_" + ts_b36[1:] + "-" + hash_part, u, NOW, SECRET, [], DAYS3),
        ("timestamp in Arabic-Indic digits", "".join(
            chr(0x660 + int(c)) if c.isdigit() else c for c in ts_b36) + "-" + hash_part, u, NOW, SECRET, [], DAYS3),
        ("two dashes", good + "-", u, NOW, SECRET, [], DAYS3),
        ("three parts", ts_b36 + "-" + hash_part[:10] + "-" + hash_part[10:], u, NOW, SECRET, [], DAYS3),
        ("no dash", ts_b36 + hash_part, u, NOW, SECRET, [], DAYS3),
        ("empty", "", u, NOW, SECRET, [], DAYS3),
        ("a dash", "-", u, NOW, SECRET, [], DAYS3),
        ("no timestamp", "-" + hash_part, u, NOW, SECRET, [], DAYS3),
        ("no hash", ts_b36 + "-", u, NOW, SECRET, [], DAYS3),
        ("not base36", "!!-" + hash_part, u, NOW, SECRET, [], DAYS3),
        ("14-digit timestamp", "zzzzzzzzzzzzzz-" + hash_part, u, NOW, SECRET, [], DAYS3),
        ("legacy sha1 token (Django < 3.1)", legacy_sha1, u, NOW, SECRET, [], DAYS3),
        ("legacy days-based sha1 token", legacy_days, u, NOW, SECRET, [], 10**9),
        ("non-ASCII", "ж-" + hash_part, u, NOW, SECRET, [], DAYS3),
    ]
    # every user, with a token made now, with and without the right key
    for n, other_user in users:
        cases.append((f"{n}: made now", make(other_user, T), other_user, NOW, SECRET, [], DAYS3))
        cases.append((f"{n}: another key", make(other_user, T, OTHER_SECRET), other_user, NOW, SECRET, [], DAYS3))

    checks = []
    for case_note, token, user, now, key, fallbacks, timeout in cases:
        with override_settings(SECRET_KEY=key, SECRET_KEY_FALLBACKS=fallbacks, PASSWORD_RESET_TIMEOUT=timeout), \
                mock.patch.object(PasswordResetTokenGenerator, "_now", return_value=now):
            result = PasswordResetTokenGenerator().check_token(user, token)
        checks.append({"note": case_note, "token": token, "user": user_json("", user), "now": now.isoformat(),
                       "secret_key": key, "fallback_keys": fallbacks, "timeout": timeout, "result": result})
    out["reset_token_check"] = checks

    out["base36_encode"] = [{"n": str(n), "s": int_to_base36(n)}
                            for n in [0, 1, 9, 10, 35, 36, 1295, 1296, 36**6 - 1, T, 2**63 - 1, huge]]
    parsed = []
    for s in ["0", "z", "Z", "10", "00010", "zzzzzz", "zzzzzzzzzzzzz", "zzzzzzzzzzzzzz", "0000000000001",
              "00000000000001", "", " ", "+1", "-1", "--1", " 1", "1 ", "\t1\n", "1_0", "_10", "10_", "1__0",
              "\u0661\u0660", "\uff11", "\u00a01", "\x1c1\x1f", "1.0", "0x10", "!", "é", "ж1", "\u0661" * 13,
              "\u0661" * 14, "1\x00"]:
        try:
            n = str(base36_to_int(s))
        except ValueError:
            n = None
        parsed.append({"s": s, "n": n})
    out["base36_decode"] = parsed

    out["uidb64_encode"] = [{"pk": pk, "uidb64": urlsafe_base64_encode(force_bytes(pk))}
                            for pk in [0, 1, 7, 42, 99, 1001, 123456, -1, 2**31, 2**63 - 1, -(2**63)]]

    def b64(data):
        return urlsafe_base64_encode(data)

    pk_field = models.BigAutoField(primary_key=True)
    decoded = []
    for s in ["MQ", "NDI", "NDI=", "NDI==", "NDI===", "MTAwMQ", "MTAwMQ=", "MTAwMQ==", "MTAwMQ===", "", "=", "==",
              "!!", "YWJj", "M!Q", "M.Q", "MQ==NDI", "NDIx", "NDIxM", "NDIxMw", "M", "MQ=x", "M=Q", " NDI", "NDI ",
              "N-DI", "N_DI", "N+DI", "N/DI", "NDIé", "ЖNDI", "OTIyMzM3MjAzNjg1NDc3NTgwNw",
              b64(b" 42 "), b64(b"+42"), b64(b"-1"), b64(b"4_2"), b64(b"042"), b64(b"4__2"), b64(b"42_"),
              b64("\u0664\u0662".encode()), b64("\u00a042".encode()), b64(b"\x1c42\x1f"), b64(b"\xff"),
              b64(b"42\x00"), b64(b"1" * 25), b64(b"9223372036854775807"), b64(b"9223372036854775808"),
              b64(b"-9223372036854775808"), b64(b"4.2"), b64(b"0x2a"), b64(b"")]:
        try:
            raw = urlsafe_base64_decode(s)
        except ValueError:
            raw = None
        pk = None
        if raw is not None:
            try:
                pk = str(pk_field.to_python(raw.decode()))
            except (UnicodeDecodeError, ValidationError):
                pk = None
        decoded.append({"uidb64": s, "decoded_hex": None if raw is None else raw.hex(), "pk": pk})
    out["uidb64_decode"] = decoded

    # What Python's int() reads as a digit and skips as space, found by asking
    # it about every code point: the Rust port carries the same tables.
    digits, spaces = {}, []
    for c in range(_sys.maxunicode + 1):
        for text, found in [(chr(c), digits), (chr(c) + "1" + chr(c), spaces)]:
            try:
                value = int(text)
            except ValueError:
                continue
            if found is digits:
                digits[c] = value
            elif value == 1:
                spaces.append(c)
    zeros = [c for c, v in digits.items() if v == 0]
    assert all(digits.get(z + i) == i for z in zeros for i in range(10)) and len(digits) == 10 * len(zeros)
    out["python_int_digit_zeros"] = zeros
    out["python_int_spaces"] = spaces
    return out


def build_redirect_to_login():
    """LoginRequiredMixin.handle_no_permission for an anonymous request."""
    from django.contrib.auth.mixins import LoginRequiredMixin
    from django.test import RequestFactory

    out = []
    for login_url, path, secure in [
        ("/users/login/", "/products/7/", False),
        ("/users/login/", "/products/?page=2&q=a b", False),
        ("/users/login/", "/путь/?x=ü&y=%2F", False),
        ("/users/login/?next=/old/&a=1", "/products/7/", False),
        ("/users/login/?a=1&next=/x/&next=/y/", "/p/", False),
        ("/users/login/?b=2+2&c", "/p/", False),
        ("/users/login/#top", "/p/", False),
        ("http://shop.test/users/login/", "/p/?q=1", False),
        ("https://shop.test/users/login/", "/p/?q=1", False),
        ("https://shop.test/users/login/", "/p/?q=1", True),
        ("https://accounts.example/login/", "/p/", True),
        ("//accounts.example/login/", "/p/", False),
        ("./login/", "/p/", False),
        ("/users/login/", "/a;b/~c/@d/", False),
    ]:
        from django.contrib.auth.models import AnonymousUser

        request = RequestFactory().get(path, secure=secure, HTTP_HOST="shop.test")
        request.user = AnonymousUser()
        view = LoginRequiredMixin()
        view.request = request
        view.login_url = login_url
        response = view.handle_no_permission()
        out.append({
            "login_url": login_url,
            "full_path": request.get_full_path(),
            "absolute_uri": request.build_absolute_uri(),
            "location": response["Location"],
        })
    return out


vectors["zlib"] = build_zlib()
vectors["salted_hmac"] = build_crypto()
vectors["json"] = build_json()
vectors["float_repr"] = build_float_repr()
vectors.update(build_signing())
vectors["check_password"] = build_check_password()
vectors["encode"] = build_encode()
vectors.update(build_sessions())
vectors.update(build_csrf())
vectors.update(build_db_backed())
vectors.update(build_hosts())
vectors.update(build_reset_tokens())
vectors["redirect_to_login"] = build_redirect_to_login()

OUT.parent.mkdir(parents=True, exist_ok=True)
OUT.write_text(json.dumps(vectors, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
counts = {k: len(v) for k, v in vectors.items() if isinstance(v, list)}
print(f"wrote {OUT} ({sum(counts.values())} vectors)")
for k, v in counts.items():
    print(f"  {k}: {v}")
