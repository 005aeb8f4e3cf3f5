"""The compatibility core (src/django/) against a real Django, in both directions.

No database: Django runs in this process (settings.configure when nothing else
configured it; every test pins the settings it depends on with
override_settings), the Rust side is `examples/compat_probe` (see probe.py).

Every expectation comes from Django at run time: what Django writes, the Rust
side must read; what the Rust side writes, Django must read; where both judge
the same input (a password, a tampered signature, a foreign CSRF token), both
must give Django's answer.
"""
import json
import random
import string
import types
import unicodedata
import zlib
from unittest import mock

import django
from django.conf import global_settings, settings

if not settings.configured:
    settings.configure(
        SECRET_KEY="interop-settings-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.sessions",
        ],
        DATABASES={},
        USE_TZ=True,
        ALLOWED_HOSTS=["testserver"],
    )
django.setup()

import pytest  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth import hashers as dj_hashers  # noqa: E402
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402
from django.core import signing  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.middleware import csrf as dj_csrf  # noqa: E402
from django.test import RequestFactory  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from django.utils.crypto import salted_hmac  # noqa: E402

from probe import probe  # noqa: E402,F401  (the fixture)

KEY = "interop-current-key-R7fQ9zLm2Xc4Vb8Nw1Ht6Jy3Kp5Sd0Ga-ключ"
OLD_KEY = "interop-old-key-gH3jK8lP2qW9eR4tY7uI1oA6sD5fG0zX"
OTHER_KEY = "interop-unrelated-key-mN4bV7cX1zL8kJ5hG2fD9sA3pO6iU0yT"

HASHERS_PREFIX = "django.contrib.auth.hashers."
# Django's default list, read from Django itself (the project keeps it).
DEFAULT_HASHERS = list(global_settings.PASSWORD_HASHERS)
MD5 = HASHERS_PREFIX + "MD5PasswordHasher"
BCRYPT = HASHERS_PREFIX + "BCryptPasswordHasher"

SEED = 20250519


@pytest.fixture(autouse=True)
def pinned_settings():
    with override_settings(
        SECRET_KEY=KEY,
        SECRET_KEY_FALLBACKS=[],
        PASSWORD_HASHERS=DEFAULT_HASHERS,
        CSRF_USE_SESSIONS=False,
    ):
        yield


# ---------------------------------------------------------------- inputs

_ALPHABETS = [
    string.ascii_letters + string.digits,
    string.punctuation + " ",
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ",
    "äöüßéèçñøåÆŒ",
    "日本語中文한국어",
    "😀🔑🦀𝄞",
    "\u0301\u200d\u00a0\t",
]


def random_text(rng, lo=1, hi=40):
    return "".join(
        rng.choice(rng.choice(_ALPHABETS)) for _ in range(rng.randint(lo, hi))
    )


def passwords(rng, n):
    fixed = [
        "пароль",
        "p@ss:word$with$dollars",
        "café" + "\u0301",
        "🦀" * 20,  # 80 UTF-8 bytes: over bcrypt's 72
    ]
    out = fixed[:n]
    while len(out) < n:
        out.append(random_text(rng))
    return out


def wrong_variants(password):
    """Near misses Django rejects (checked against Django, not assumed)."""
    variants = [
        password + "x",
        password[:-1],
        password.upper() if password.upper() != password else password + "A",
        " " + password,
    ]
    nfd = unicodedata.normalize("NFD", password)
    nfc = unicodedata.normalize("NFC", password)
    variants += [v for v in (nfd, nfc) if v != password]
    return [v for v in dict.fromkeys(variants) if v != password]


def django_verify(password, encoded, hasher_names=None):
    """(valid, must_update) as Django's verify_password; None when Django
    itself raises on the value (some malformed hashes make it crash: the
    login page would fail, so the only acceptable Rust answer is "invalid")."""
    with override_settings(PASSWORD_HASHERS=hasher_names or DEFAULT_HASHERS):
        try:
            return dj_hashers.verify_password(password, encoded)
        except ValueError:
            return None


def assert_rust_agrees(probe, password, encoded, hasher_names=None, context=""):
    """Django's verify_password and the probe must agree on validity and,
    when the password is right, on whether the hash must be upgraded (Django
    only acts on must_update for a correct password)."""
    want = django_verify(password, encoded, hasher_names)
    got = probe("check_password", password=password, encoded=encoded, hashers=hasher_names)
    assert "valid" in got, f"{context}: probe answered {got}"
    detail = f"{context}: password={password!r} encoded={encoded!r} hashers={hasher_names}"
    if want is None:
        assert got["valid"] is False, f"{detail}: Django raises, Rust valid={got['valid']}"
        return False, False
    want_valid, want_update = want
    assert got["valid"] == want_valid, (
        f"{detail}: Django valid={want_valid}, Rust valid={got['valid']}"
    )
    if want_valid:
        assert got["must_update"] == want_update, (
            f"{detail}: Django must_update={want_update}, Rust must_update={got['must_update']}"
        )
    return want_valid, want_update


# ---------------------------------------------------------------- passwords


def test_rust_hashes_verify_in_django(probe):
    rng = random.Random(SEED)
    preferred = dj_hashers.get_hasher("default")
    seen = set()
    for password in passwords(rng, 6) + [""]:
        encoded = probe.expect("make_password", "encoded", password=password)
        assert encoded not in seen, "two hashes with the same salt"
        seen.add(encoded)
        hasher = dj_hashers.identify_hasher(encoded)
        assert hasher.algorithm == preferred.algorithm == "pbkdf2_sha256", encoded
        decoded = hasher.decode(encoded)
        assert decoded["iterations"] == preferred.iterations == 1_000_000, encoded
        assert not dj_hashers.must_update_salt(decoded["salt"], hasher.salt_entropy), encoded
        assert not hasher.must_update(encoded), encoded
        assert dj_hashers.check_password(password, encoded), (password, encoded)
        # Exactly what Django computes for this salt.
        assert hasher.encode(password, decoded["salt"], decoded["iterations"]) == encoded
        for wrong in wrong_variants(password)[:2]:
            assert not dj_hashers.check_password(wrong, encoded), (wrong, encoded)
        assert_rust_agrees(probe, password, encoded, context="rust hash")
        assert_rust_agrees(probe, password + "!", encoded, context="rust hash, wrong")


DEFAULT_ALGORITHMS = ["pbkdf2_sha256", "pbkdf2_sha1", "argon2", "bcrypt_sha256", "scrypt"]


@pytest.mark.parametrize("algorithm", DEFAULT_ALGORITHMS)
def test_django_default_hashers_verify_in_rust(probe, algorithm):
    rng = random.Random(f"{SEED}-{algorithm}")
    for i, password in enumerate(passwords(rng, 5)):
        encoded = dj_hashers.make_password(password, hasher=algorithm)
        assert encoded.startswith(algorithm + "$")
        valid, must_update = assert_rust_agrees(probe, password, encoded, context=algorithm)
        assert valid
        # Not the preferred algorithm: Django upgrades it on login.
        assert must_update == (algorithm != "pbkdf2_sha256")
        for wrong in wrong_variants(password)[: 3 if i == 0 else 1]:
            assert_rust_agrees(probe, wrong, encoded, context=f"{algorithm}, wrong password")


@pytest.mark.parametrize("listed", [MD5, BCRYPT], ids=["md5", "bcrypt"])
def test_listed_extra_hashers_verify_in_rust(probe, listed):
    names = DEFAULT_HASHERS + [listed]
    algorithm = {MD5: "md5", BCRYPT: "bcrypt"}[listed]
    rng = random.Random(f"{SEED}-{algorithm}")
    with override_settings(PASSWORD_HASHERS=names):
        made = [(p, dj_hashers.make_password(p, hasher=algorithm)) for p in passwords(rng, 6)]
    for password, encoded in made:
        valid, must_update = assert_rust_agrees(probe, password, encoded, names, context=algorithm)
        assert valid and must_update
        for wrong in wrong_variants(password)[:2]:
            assert_rust_agrees(probe, wrong, encoded, names, context=f"{algorithm}, wrong")
        # Not listed: neither side accepts it.
        assert_rust_agrees(probe, password, encoded, DEFAULT_HASHERS, context=f"{algorithm} unlisted")
    # bcrypt (without sha256) only looks at the first 72 bytes: whatever Django
    # says about a password differing after that, Rust must say too.
    long_password = "ж" * 40  # 80 bytes
    with override_settings(PASSWORD_HASHERS=names):
        encoded = dj_hashers.make_password(long_password, hasher=algorithm)
    assert_rust_agrees(probe, long_password[:36] + "zz" + long_password[37:], encoded, names,
                       context=f"{algorithm} past 72 bytes")


def _weaker(algorithm, password):
    """A hash by Django's own hasher class with a weaker work factor (or, for
    MD5, a short salt): what a database from an older Django holds."""
    # Called with `algorithm` listed in PASSWORD_HASHERS.
    cls = type(dj_hashers.get_hashers_by_algorithm()[algorithm])
    h = cls()
    if algorithm.startswith("pbkdf2"):
        return h.encode(password, h.salt(), iterations=h.iterations // 2)
    if algorithm == "argon2":
        h.time_cost = 1
        h.memory_cost = 8 * 1024
        return h.encode(password, h.salt())
    if algorithm in ("bcrypt_sha256", "bcrypt"):
        h.rounds = 5
        return h.encode(password, h.salt())
    if algorithm == "scrypt":
        return h.encode(password, h.salt(), n=2**12, r=4, p=1)
    if algorithm == "md5":
        return h.encode(password, "shortsalt")
    raise AssertionError(algorithm)


ALL_ALGORITHMS = {
    "pbkdf2_sha256": HASHERS_PREFIX + "PBKDF2PasswordHasher",
    "pbkdf2_sha1": HASHERS_PREFIX + "PBKDF2SHA1PasswordHasher",
    "argon2": HASHERS_PREFIX + "Argon2PasswordHasher",
    "bcrypt_sha256": HASHERS_PREFIX + "BCryptSHA256PasswordHasher",
    "bcrypt": BCRYPT,
    "scrypt": HASHERS_PREFIX + "ScryptPasswordHasher",
    "md5": MD5,
}


@pytest.mark.parametrize("algorithm", list(ALL_ALGORITHMS))
def test_must_update_follows_the_preferred_hasher(probe, algorithm):
    """With `algorithm` preferred (first in the list): a hash with Django's
    current parameters needs no update, a weaker one does; the hash of another
    listed algorithm does; all as Django's verify_password decides."""
    preferred_name = ALL_ALGORITHMS[algorithm]
    names = [preferred_name] + [n for n in ALL_ALGORITHMS.values() if n != preferred_name]
    rng = random.Random(f"{SEED}-update-{algorithm}")
    password = random_text(rng)
    with override_settings(PASSWORD_HASHERS=names):
        current = dj_hashers.make_password(password)
        weaker = _weaker(algorithm, password)
        other_alg = "pbkdf2_sha256" if algorithm != "pbkdf2_sha256" else "pbkdf2_sha1"
        other = dj_hashers.make_password(password, hasher=other_alg)
    assert current.startswith(algorithm + "$")
    results = {}
    for label, encoded in (("current", current), ("weaker", weaker), ("other algorithm", other)):
        results[label] = assert_rust_agrees(probe, password, encoded, names, context=f"{algorithm} {label}")
        assert_rust_agrees(probe, password + "1", encoded, names, context=f"{algorithm} {label}, wrong")
    # The cases are meaningful only if Django tells them apart.
    assert results["current"] == (True, False)
    assert results["weaker"] == (True, True)
    assert results["other algorithm"] == (True, True)


def test_old_pbkdf2_iterations_must_update(probe):
    rng = random.Random(f"{SEED}-iterations")
    hasher = dj_hashers.get_hasher("pbkdf2_sha256")
    for iterations in (600_000, 870_000, 20_000, hasher.iterations + 1):
        password = random_text(rng)
        encoded = hasher.encode(password, hasher.salt(), iterations=iterations)
        assert assert_rust_agrees(probe, password, encoded, context=f"{iterations} iterations") == (True, True)
        assert_rust_agrees(probe, random_text(rng), encoded, context=f"{iterations} iterations, wrong")


def test_unusable_and_malformed_hashes_never_verify(probe):
    rng = random.Random(f"{SEED}-unusable")
    password = random_text(rng)
    good = dj_hashers.make_password(password)
    unusable = dj_hashers.make_password(None)
    assert unusable.startswith(dj_hashers.UNUSABLE_PASSWORD_PREFIX)
    candidates = [
        (password, unusable),
        (unusable[1:], unusable),
        (unusable, unusable),
        ("", unusable),
        (password, "!" + good),  # set_unusable on top of a real hash
        (password, "!"),
        (password, ""),
        (password, "pbkdf2_sha256$"),
        (password, "pbkdf2_sha256$1000000$$"),
        (password, good.replace("pbkdf2_sha256", "pbkdf2_sha512")),
        (password, good[:-4]),
        (password, "crypt$$abcdef"),
        (password, "sha1$$" + "0" * 40),
        (password, "plaintext"),
    ]
    for pw, encoded in candidates:
        valid, _ = assert_rust_agrees(probe, pw, encoded, context="unusable/malformed")
        assert not valid, (pw, encoded)


# ---------------------------------------------------------------- salted_hmac


def test_salted_hmac_matches(probe):
    rng = random.Random(f"{SEED}-hmac")
    # The algorithms Django itself uses (sha1 legacy, sha256 everywhere now).
    for algorithm in ("sha1", "sha256"):
        for _ in range(5):
            key_salt, value, secret = random_text(rng), random_text(rng, 0, 60), random_text(rng, 1, 60)
            want = salted_hmac(key_salt, value, secret=secret, algorithm=algorithm).hexdigest()
            got = probe.expect("salted_hmac", "hexdigest", key_salt=key_salt, value=value,
                               secret=secret, algorithm=algorithm)
            assert got == want, (algorithm, key_salt, value, secret)


# ---------------------------------------------------------------- signing


def sign_values(rng):
    return [
        "hello",
        "",
        "with:colons:inside:",
        "ключ=значение; 🦀",
        "a" * 2000,
        *(random_text(rng, 1, 80) for _ in range(6)),
    ]


SALTS = [None, "", "django.contrib.sessions.SessionStore", "myapp.tokens", "соль:with:colons"]


def django_unsign(signed, key, salt, fallback_keys=()):
    try:
        return ("ok", signing.Signer(key=key, salt=salt, fallback_keys=list(fallback_keys)).unsign(signed))
    except signing.BadSignature as e:
        return ("error", type(e).__name__)


def rust_unsign(probe, signed, key, salt, fallback_keys=()):
    got = probe("unsign", key=key, fallback_keys=list(fallback_keys), salt=salt, signed=signed)
    if "value" in got:
        return ("ok", got["value"])
    assert "error" in got, got
    return ("error", got["error"])


def test_signer_both_ways(probe):
    rng = random.Random(f"{SEED}-signer")
    for salt in SALTS:
        for value in sign_values(rng):
            django_signed = signing.Signer(key=KEY, salt=salt).sign(value)
            rust_signed = probe.expect("sign", "signed", key=KEY, salt=salt, value=value)
            # Deterministic: the same bytes as Django writes.
            assert rust_signed == django_signed, (salt, value)
            assert rust_unsign(probe, django_signed, KEY, salt) == ("ok", value)
            assert django_unsign(rust_signed, KEY, salt) == ("ok", value)


def tampered(signed, rng):
    value, sig = signed.rsplit(":", 1)
    flip = lambda s, i: s[:i] + ("A" if s[i] != "A" else "B") + s[i + 1:]  # noqa: E731
    out = [
        flip(signed, len(signed) - 1),          # last signature character
        value + ":" + sig[:-1],                  # signature one short
        value + ":",                             # no signature
        value,                                   # no separator at all
        value + "x:" + sig,                      # value changed
        value + ":" + sig + "x",
        signed.upper() if signed.upper() != signed else signed.lower(),
        ":" + sig,
    ]
    if value:
        out.append(flip(value, rng.randrange(len(value))) + ":" + sig)
    return [t for t in dict.fromkeys(out) if t != signed]


def test_signer_tampering_rejected_by_both(probe):
    rng = random.Random(f"{SEED}-tamper")
    for salt in (None, "myapp.tokens"):
        for value in sign_values(rng)[:6]:
            signed = signing.Signer(key=KEY, salt=salt).sign(value)
            for bad in tampered(signed, rng):
                want = django_unsign(bad, KEY, salt)
                got = rust_unsign(probe, bad, KEY, salt)
                assert want[0] == "error", (bad, want)
                assert got[0] == "error", f"Rust accepted tampered {bad!r} (from {signed!r}): {got}"
            # The right value under another key or salt.
            assert rust_unsign(probe, signed, OTHER_KEY, salt)[0] == "error"
            assert rust_unsign(probe, signed, KEY, "other.salt")[0] == "error"


def test_signer_fallback_keys(probe):
    rng = random.Random(f"{SEED}-fallback")
    for value in sign_values(rng)[:5]:
        for salt in (None, "myapp.tokens"):
            by_django_old = signing.Signer(key=OLD_KEY, salt=salt).sign(value)
            by_rust_old = probe.expect("sign", "signed", key=OLD_KEY, salt=salt, value=value)
            for signed in (by_django_old, by_rust_old):
                for fallbacks in ([], [OTHER_KEY], [OLD_KEY], [OTHER_KEY, OLD_KEY]):
                    want = django_unsign(signed, KEY, salt, fallbacks)
                    got = rust_unsign(probe, signed, KEY, salt, fallbacks)
                    assert want[0] == got[0], (signed, fallbacks, want, got)
                    if OLD_KEY in fallbacks:
                        assert got == ("ok", value)
                    else:
                        assert got[0] == "error"


DUMPS_OBJECTS = [
    {"user": 42, "email": "Пользователь@пример.рф", "flags": [True, False, None]},
    {"nested": {"deeper": {"list": [1, 2.5, -3, "🦀", {"k": "v"}]}, "empty": {}, "none": None},
     "big": 2**60, "neg": -(2**40), "float": 0.1, "tiny": 1e-07, "huge": 1e16, "quote": "\"\\/\n\t"},
    ["top", "level", "list", 1, 2, 3],
    "just a string with ümlauts",
    12345,
    {"compressible": "значение " * 500, "more": ["повтор"] * 200},
    {"keys in order": 1, "a": 2, "Z": 3, "ё": 4, "10": 5, "2": 6},
]


def payload_bytes(signed):
    """The JSON bytes inside a signing.dumps value (decompressed if needed)."""
    b64 = signed.split(":", 1)[0]
    compressed = b64.startswith(".")
    data = signing.b64_decode(b64.lstrip(".").encode())
    return compressed, (zlib.decompress(data) if compressed else data)


def django_loads(signed, key=KEY, salt="django.core.signing", fallback_keys=(), max_age=None):
    try:
        return ("ok", signing.loads(signed, key=key, salt=salt, fallback_keys=list(fallback_keys),
                                    max_age=max_age))
    except signing.BadSignature as e:
        return ("error", type(e).__name__)


def rust_loads(probe, signed, key=KEY, salt="django.core.signing", fallback_keys=(), max_age=None):
    got = probe("loads", key=key, fallback_keys=list(fallback_keys), salt=salt, signed=signed,
                max_age=max_age)
    if "obj" in got:
        return ("ok", got["obj"])
    assert "error" in got, got
    return ("error", got["error"])


@pytest.mark.parametrize("compress", [False, True])
def test_dumps_loads_both_ways(probe, compress):
    for salt in ("django.core.signing", "myapp.dumps"):
        for obj in DUMPS_OBJECTS:
            django_signed = signing.dumps(obj, key=KEY, salt=salt, compress=compress)
            rust_signed = probe.expect("dumps", "signed", key=KEY, salt=salt, obj=obj, compress=compress)
            assert rust_loads(probe, django_signed, salt=salt) == ("ok", obj), django_signed
            assert django_loads(rust_signed, salt=salt) == ("ok", obj), rust_signed
            # Compressed exactly when Django compresses (the unambiguous cases:
            # tiny payloads never shrink, the repetitive ones always do).
            want_compressed, want_json = payload_bytes(django_signed)
            got_compressed, got_json = payload_bytes(rust_signed)
            assert got_json == want_json, (obj, got_json[:200], want_json[:200])
            if len(want_json) < 60 or len(want_json) > 2000:
                assert got_compressed == want_compressed, (obj, compress)


def test_dumps_json_is_ascii_like_django(probe):
    obj = {"text": "Привет, мир! 🦀 ü"}
    rust_signed = probe.expect("dumps", "signed", key=KEY, obj=obj, compress=False)
    _, data = payload_bytes(rust_signed)
    assert data == json.dumps(obj, separators=(",", ":")).encode("latin-1")


def test_dumps_tampering_rejected_by_both(probe):
    rng = random.Random(f"{SEED}-dumps-tamper")
    for obj in DUMPS_OBJECTS[:3] + DUMPS_OBJECTS[5:6]:
        for compress in (False, True):
            signed = probe.expect("dumps", "signed", key=KEY, obj=obj, compress=compress)
            parts = signed.split(":")
            variants = tampered(signed, rng) + [
                # another timestamp under the same signature
                ":".join([parts[0], signing.b62_encode(signing.b62_decode(parts[1]) - 1), parts[2]]),
                # compression marker dropped or added
                signed[1:] if signed.startswith(".") else "." + signed,
            ]
            for bad in dict.fromkeys(variants):
                want = django_loads(bad)
                got = rust_loads(probe, bad)
                assert want[0] == "error", (bad, want)
                assert got[0] == "error", f"Rust accepted tampered {bad!r}: {got}"
                assert got[1] != "SignatureExpired", (bad, got)
            assert rust_loads(probe, signed, key=OTHER_KEY)[0] == "error"
            assert rust_loads(probe, signed, salt="other")[0] == "error"


def test_dumps_fallback_keys(probe):
    obj = {"id": 7, "name": "старый ключ"}
    by_django = signing.dumps(obj, key=OLD_KEY, compress=True)
    by_rust = probe.expect("dumps", "signed", key=OLD_KEY, obj=obj, compress=True)
    for signed in (by_django, by_rust):
        for fallbacks in ([], [OTHER_KEY], [OLD_KEY, OTHER_KEY]):
            want = django_loads(signed, fallback_keys=fallbacks)
            got = rust_loads(probe, signed, fallback_keys=fallbacks)
            assert want[0] == got[0], (signed, fallbacks, want, got)
            assert (got == ("ok", obj)) == (OLD_KEY in fallbacks)


def _django_clock(offset):
    import time

    return mock.patch.object(signing, "time", types.SimpleNamespace(time=lambda: time.time() + offset))


def test_max_age_expiry_both_ways(probe):
    obj = {"expires": "soon", "кто": "я"}
    # Django signs 1000 s in the past; Rust judges now.
    with _django_clock(-1000):
        old_by_django = signing.dumps(obj, key=KEY)
    # Rust signs now; Django judges 1000 s in the future.
    fresh_by_rust = probe.expect("dumps", "signed", key=KEY, obj=obj, compress=False)

    for max_age in (10, 500, 999 - 5):
        assert django_loads(old_by_django, max_age=max_age) == ("error", "SignatureExpired")
        assert rust_loads(probe, old_by_django, max_age=max_age) == ("error", "SignatureExpired")
        with _django_clock(1000):
            assert django_loads(fresh_by_rust, max_age=max_age) == ("error", "SignatureExpired")
    for max_age in (1010, 5000, None):
        assert django_loads(old_by_django, max_age=max_age) == ("ok", obj)
        assert rust_loads(probe, old_by_django, max_age=max_age) == ("ok", obj)
        with _django_clock(1000):
            assert django_loads(fresh_by_rust, max_age=max_age) == ("ok", obj)
    # Fresh values are not expired for Rust either.
    assert rust_loads(probe, fresh_by_rust, max_age=60) == ("ok", obj)
    # A bad signature is reported as such, even when old.
    bad = old_by_django[:-1] + ("A" if old_by_django[-1] != "A" else "B")
    assert django_loads(bad, max_age=10) == ("error", "BadSignature")
    assert rust_loads(probe, bad, max_age=10)[0] == "error"
    assert rust_loads(probe, bad, max_age=10)[1] != "SignatureExpired"


# ---------------------------------------------------------------- sessions


def session_dicts(rng):
    hash_ = "0f" * 32
    auth = {
        "_auth_user_id": "17",
        "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
        "_auth_user_hash": hash_,
    }
    return [
        {},
        dict(auth),
        {**auth, "cart": {"items": [1, 2, 3]}, "note": "Привет, мир! 🦀", "_session_expiry": 3600},
        {**auth, "big": "очень длинное значение " * 400, "list": list(range(300))},
        {"float": 1.5, "none": None, "bool": True, "nested": {"ключ": ["значение", {"ещё": 1}]}},
        {random_text(rng, 1, 10): random_text(rng, 0, 50) for _ in range(8)},
        {"x": "y"},
    ]


def django_session_encode(session, key=KEY):
    with override_settings(SECRET_KEY=key):
        return SessionStore().encode(session)


def django_session_decode(encoded, key=KEY, fallbacks=()):
    with override_settings(SECRET_KEY=key, SECRET_KEY_FALLBACKS=list(fallbacks)):
        return SessionStore().decode(encoded)


def rust_session_decode(probe, encoded, key=KEY, fallbacks=()):
    got = probe("session_decode", secret_key=key, fallback_keys=list(fallbacks), encoded=encoded)
    assert "session" in got, got
    return got["session"] or {}


def test_sessions_both_ways(probe):
    rng = random.Random(f"{SEED}-sessions")
    for session in session_dicts(rng):
        by_django = django_session_encode(session)
        by_rust = probe.expect("session_encode", "encoded", secret_key=KEY, session=session)
        assert rust_session_decode(probe, by_django) == session, by_django
        assert django_session_decode(by_rust) == session, by_rust
        # Same JSON bytes; compressed when Django compresses (clear-cut sizes).
        want_compressed, want_json = payload_bytes(by_django)
        got_compressed, got_json = payload_bytes(by_rust)
        assert got_json == want_json, (got_json[:300], want_json[:300])
        if len(want_json) < 60 or len(want_json) > 2000:
            assert got_compressed == want_compressed, session


def test_sessions_with_fallback_keys(probe):
    session = {
        "_auth_user_id": "3",
        "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
        "_auth_user_hash": "ab" * 32,
        "msg": "ключ сменили",
    }
    by_django_old = django_session_encode(session, key=OLD_KEY)
    by_rust_old = probe.expect("session_encode", "encoded", secret_key=OLD_KEY, session=session)
    for encoded in (by_django_old, by_rust_old):
        for fallbacks in ([], [OTHER_KEY], [OTHER_KEY, OLD_KEY]):
            want = django_session_decode(encoded, KEY, fallbacks)
            got = rust_session_decode(probe, encoded, KEY, fallbacks)
            assert got == want, (encoded, fallbacks, want, got)
            assert (want == session) == (OLD_KEY in fallbacks)


def test_tampered_sessions_decode_empty_on_both(probe):
    rng = random.Random(f"{SEED}-session-tamper")
    for session in session_dicts(rng)[1:4]:
        for encoded in (
            django_session_encode(session),
            probe.expect("session_encode", "encoded", secret_key=KEY, session=session),
        ):
            variants = tampered(encoded, rng) + [
                encoded[1:] if encoded.startswith(".") else "." + encoded,
                "garbage",
                "",
                # a valid signature under another key
                django_session_encode(session, key=OTHER_KEY),
                # a valid dumps under another salt (not a session)
                signing.dumps(session, key=KEY, compress=True),
            ]
            for bad in dict.fromkeys(variants):
                assert django_session_decode(bad) == {}, bad
                assert rust_session_decode(probe, bad) == {}, f"Rust decoded tampered session {bad!r}"


def test_session_auth_hash_matches(probe):
    rng = random.Random(f"{SEED}-auth-hash")
    User = get_user_model()
    encodeds = [
        dj_hashers.make_password(random_text(rng), hasher="pbkdf2_sha256"),
        probe.expect("make_password", "encoded", password=random_text(rng)),
        dj_hashers.make_password(None),
        "",
        "crypt$$abcdef",
        "пароль-в-открытую",
    ]
    for encoded in encodeds:
        hashes = set()
        for key in (KEY, OLD_KEY):
            with override_settings(SECRET_KEY=key):
                want = User(password=encoded).get_session_auth_hash()
            got = probe.expect("session_auth_hash", "hash", secret_key=key, password=encoded)
            assert got == want, (encoded, key)
            hashes.add(got)
        assert len(hashes) == 2


# ---------------------------------------------------------------- CSRF

rf = RequestFactory()


def django_accepts(cookie, token, via="form"):
    """Django's CsrfViewMiddleware on a POST with that cookie and token."""
    if via == "form":
        request = rf.post("/products/create/", {"csrfmiddlewaretoken": token})
    else:
        request = rf.post("/products/create/", {}, headers={"X-CSRFToken": token})
    if cookie is not None:
        request.COOKIES = {settings.CSRF_COOKIE_NAME: cookie}
    middleware = dj_csrf.CsrfViewMiddleware(lambda r: HttpResponse())
    middleware.process_request(request)
    with mock.patch("django.middleware.csrf.logger"):
        response = middleware.process_view(request, lambda r: HttpResponse(), (), {})
    return response is None


def django_token_matches(secret, token):
    """The low-level check: token format, then _does_token_match."""
    try:
        dj_csrf._check_token_format(token)
    except dj_csrf.InvalidTokenFormat:
        return False
    return dj_csrf._does_token_match(token, secret)


def rust_accepts(probe, cookie, token):
    return probe.expect("csrf_match", "ok", cookie=cookie, token=token)


def assert_csrf_agree(probe, cookie, token, expected=None):
    want = django_accepts(cookie, token)
    assert django_accepts(cookie, token, via="header") == want
    got = rust_accepts(probe, cookie, token)
    assert got == want, f"cookie={cookie!r} token={token!r}: Django {want}, Rust {got}"
    if expected is not None:
        assert want == expected, (cookie, token)


def test_rust_csrf_tokens_accepted_by_django(probe):
    for _ in range(40):
        new = probe("csrf_new")
        secret, token = new["secret"], new["token"]
        dj_csrf._check_token_format(secret)
        dj_csrf._check_token_format(token)
        assert len(secret) == dj_csrf.CSRF_SECRET_LENGTH
        assert len(token) == dj_csrf.CSRF_TOKEN_LENGTH
        assert dj_csrf._unmask_cipher_token(token) == secret
        assert django_token_matches(secret, token)
        assert_csrf_agree(probe, secret, token, expected=True)
        again = probe.expect("csrf_mask", "token", secret=secret)
        assert again != token  # a fresh mask each time, as Django's
        assert dj_csrf._unmask_cipher_token(again) == secret
        assert_csrf_agree(probe, secret, again, expected=True)


def test_django_csrf_tokens_accepted_by_rust(probe):
    for _ in range(40):
        request = rf.get("/")
        token = dj_csrf.get_token(request)
        secret = request.META["CSRF_COOKIE"]
        assert_csrf_agree(probe, secret, token, expected=True)
        other = dj_csrf._mask_cipher_secret(secret)
        assert_csrf_agree(probe, secret, other, expected=True)
        # Rust masks Django's secret, Django accepts it.
        by_rust = probe.expect("csrf_mask", "token", secret=secret)
        assert django_token_matches(secret, by_rust)
        assert_csrf_agree(probe, secret, by_rust, expected=True)


def test_csrf_foreign_and_malformed_tokens(probe):
    rng = random.Random(f"{SEED}-csrf")
    a = dj_csrf._get_new_csrf_string()
    b = probe.expect("csrf_new", "secret")
    token_a = dj_csrf._mask_cipher_secret(a)
    token_b = probe.expect("csrf_mask", "token", secret=b)
    flip = lambda s, i: s[:i] + ("a" if s[i] != "a" else "b") + s[i + 1:]  # noqa: E731
    cases = [
        (a, token_b, False),
        (b, token_a, False),
        (a, a, None),                  # the unmasked secret as the token
        (a, b, False),
        (a, flip(token_a, 3), False),  # mask changed
        (a, flip(token_a, 40), False),  # cipher changed
        (a, token_a[:-1], False),
        (a, token_a + "x", False),
        (a, token_a[:-1] + "-", False),
        (a, "", False),
        (a, "é" * 64, False),
        (a, token_a.upper() if token_a.upper() != token_a else token_a.lower(), None),
        ("", token_a, False),
        (a[:-1], token_a, False),
        (a[:-1] + "-", token_a, False),
        ("ж" * 32, token_a, False),
        (a + "x", token_a, False),
    ]
    for cookie, token, expected in cases:
        assert_csrf_agree(probe, cookie, token, expected)
    # Random pairs from different secrets.
    for _ in range(30):
        s1, s2 = dj_csrf._get_new_csrf_string(), probe.expect("csrf_new", "secret")
        assert_csrf_agree(probe, s1, probe.expect("csrf_mask", "token", secret=s2), expected=False)
        assert_csrf_agree(probe, s2, dj_csrf._mask_cipher_secret(s1), expected=False)
    # Random garbage tokens of the right length.
    for _ in range(20):
        junk = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(64))
        assert_csrf_agree(probe, a, junk)


def test_old_masked_64_char_cookie(probe):
    for _ in range(20):
        secret = dj_csrf._get_new_csrf_string()
        rust_secret = probe.expect("csrf_new", "secret")
        for s in (secret, rust_secret):
            cookie_django = dj_csrf._mask_cipher_secret(s)            # what Django < 4.0 stored
            cookie_rust = probe.expect("csrf_mask", "token", secret=s)
            for cookie in (cookie_django, cookie_rust):
                assert_csrf_agree(probe, cookie, dj_csrf._mask_cipher_secret(s), expected=True)
                assert_csrf_agree(probe, cookie, probe.expect("csrf_mask", "token", secret=s), expected=True)
                assert_csrf_agree(probe, cookie, s, expected=True)
                # and a token for another secret is still refused
                other = dj_csrf._get_new_csrf_string()
                assert_csrf_agree(probe, cookie, dj_csrf._mask_cipher_secret(other), expected=False)
