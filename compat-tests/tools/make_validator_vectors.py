"""Writes compat-tests/vectors/validators.json: what a real Django 5.2 (and
the Python under it) answers for hostile input to its checks, which the
Rust unit tests of src/django/ assert one by one:

- email_validator: `validate_email(value)` raises or not;
- email_form_field: `forms.EmailField(max_length=254).clean(value)`, the
  field of the registration and password-reset forms: the clean value, or
  the codes of every error (and the length a `max_length` error shows);
- ip_addresses: Python's `ipaddress.IPv4Address`/`IPv6Address` and Django's
  `is_valid_ipv6_address`/`validate_ipv46_address` (EmailValidator's
  `[...]` literals, urlsplit's bracketed hosts);
- urlsplit: Python's `urllib.parse.urlsplit`, or `null` where it raises;
- url_has_allowed_host_and_scheme: for each URL, answers as
  `[i, safe, safe_with_https]`: with `allowed_hosts=set(allowed_host_sets[i])`
  and `require_https` False, then True;
- python_category_c_boundaries: where `unicodedata.category(c)[0] == "C"`
  flips, from U+0000 (the table `src/django/unicodedata.rs` holds).

Hand-picked cases (Django's own test suite's, and the odd corners of the
patterns) and seeded random ones, so the file only changes when Python's or
Django's behaviour does. Run with the compat venv's python:

    compat-tests/.venv/bin/python compat-tests/tools/make_validator_vectors.py
"""

import ipaddress
import json
import random
import sys
import unicodedata
import urllib.parse
from pathlib import Path

import django
from django.conf import settings

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "vectors" / "validators.json"

settings.configure(USE_I18N=False)
django.setup()

from django import forms  # noqa: E402
from django.core.exceptions import ValidationError  # noqa: E402
from django.core.validators import validate_email, validate_ipv46_address  # noqa: E402
from django.utils.http import url_has_allowed_host_and_scheme  # noqa: E402
from django.utils.ipv6 import is_valid_ipv6_address  # noqa: E402

rng = random.Random(5_2_19)


def unique(values):
    seen, out = set(), []
    for v in values:
        key = (type(v), v)
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


def mutate(text, alphabet, edits):
    """`edits` random insertions, deletions and replacements."""
    chars = list(text)
    for _ in range(edits):
        op = rng.randrange(3)
        pos = rng.randrange(len(chars) + 1)
        if op == 0 or not chars:
            chars.insert(pos, rng.choice(alphabet))
        elif op == 1:
            del chars[min(pos, len(chars) - 1)]
        else:
            chars[min(pos, len(chars) - 1)] = rng.choice(alphabet)
    return "".join(chars)


# Characters that stress the patterns: ASCII specials, controls, the four
# that case-fold to ASCII letters, white space Python and Rust disagree on,
# the edges of Django's U+00A1..U+FFFF range, astral, unassigned, formats.
HOSTILE = list(
    "aZz09.-_@\"\\[]:;,<>()!#$%&'*+/=?^`{|}~ \t\n\r"
) + [
    "\x00", "\x01", "\x08", "\x0b", "\x0c", "\x1c", "\x1f", "\x7f", "\x80", "\x85", "\xa0", "\xa1",
    "\u0130", "\u0131", "\u017f", "\u212a", "é", "ü", "и", "Я", "ß", "\u0660", "\u0378", "\u200b",
    "\u200d", "\u2028", "\u3000", "\ufeff", "\ue000", "\ufffd", "\uffff", "\ufdd0", "\U0001f600",
    "\U00010000", "\U000e0001", "\U0010ffff", "／", "＠", "℀", "．", "。",
]

# ---------------------------------------------------------------------------
# E-mail addresses

LONG_LABEL = "a" * 63


def email_cases():
    cases = [
        # plain and valid
        "ivan@example.com", "a@b.co", "user.name+tag@sub.example.org", "x@localhost",
        "first.middle.last@example.travel", "UPPER@EXAMPLE.COM", "digits123@123.example.com",
        "a@b.c.d.e.f.example", "!#$%&'*+/=?^_`{|}~-@example.com", "a-b@a-b.c-d",
        "test@domain.with.idn.tld.उदाहरण.परीक्षा", "email@localhost", "email@here.com",
        "weirder-email@here.and.there.com", "example@valid-----hyphens.com",
        "example@valid-with-hyphens.com", "test@domain.with.idn.tld.xn--p1ai",
        "ivan@пример.рф", "ivan@xn--e1afmkfd.xn--p1ai", "ivan@EXAMPLE.XN--P1AI",
        "ivan@example.Xn--P1ai", "ivan@example.xn--1", "ivan@example.xn--" + "a" * 59,
        "ivan@example.xn--" + "a" * 60, "ivan@example.xn--p1ai-", "ivan@example.xn-p1ai",
        "ivan@example.xn--p-1ai", "ivan@example.xn--", "ivan@example.xn--\u017f",
        "ivan@example.xn--\u212a", "ivan@example.xn--\u0130", "ivan@example.xn--é",
        # quoted local parts
        '"quoted"@example.com', '"a b"@example.com', '"a\\"b"@example.com', '""@example.com',
        '"\\\x01"@example.com', '"\x01"@example.com', '"\x00"@example.com', '"\\\x00"@example.com',
        '"\t"@example.com', '"\\\t"@example.com', '"\n"@example.com', '"\\\n"@example.com',
        '"\r"@example.com', '"\\\r"@example.com', '"\x7f"@example.com', '"\\\x7f"@example.com',
        '"\x80"@example.com', '"\\\x80"@example.com', '"a@b"@example.com', '"\\\\"@example.com',
        '"\\"@example.com', '"a"b"@example.com', '"@example.com', 'a"b"@example.com',
        '"a".b@example.com', '"ſ"@example.com', '"\\ſ"@example.com', '"и"@example.com',
        '"[]"@example.com', '"\\\\\\""@example.com', '" "@example.com', '"\x0b\x0c"@example.com',
        '"test@test"@example.com', '"\\\x0b"@example.com',
        # local parts
        "иван@example.com", "ivan.@example.com", ".ivan@example.com", "iv..an@example.com",
        "iv an@example.com", "ivan@@example.com", "@example.com", "ivan@", "ivan", "", "@", "@@",
        "a@b@example.com", "\u017f@example.com", "\u212a@example.com", "\u0130@example.com",
        "\u0131@example.com", "k\u212a@example.com", "(comment)ivan@example.com",
        "ivan(comment)@example.com", "a,b@example.com", "a;b@example.com", "a:b@example.com",
        "a<b>@example.com", "a[b]@example.com", "a\\b@example.com", "\x00@example.com",
        "a\x00@example.com", "a" * 64 + "@example.com", "a" * 65 + "@example.com",
        "a" * 200 + "@example.com",
        # domains
        "a@example", "a@example.c", "a@example.co", "a@example.123", "a@example.1a",
        "a@123.example.com", "a@1.2.3.4", "a@-example.com", "a@example-.com", "a@ex--ample.com",
        "a@example.com.", "a@.example.com", "a@example..com", "a@example.-com", "a@example.com-",
        "a@example.c-m", "a@example.-cm", "a@example.cm-", "a@ex_ample.com", "a@exa mple.com",
        "a@example.com ", " a@example.com", "a@example.com\n", "a\n@example.com",
        "a@exam\nple.com", "a@example.com\x00", "a@ü.com", "a@\u00a0.com", "a@\u00a1.com",
        "a@\uffff.com", "a@\U0001f600.com", "a@example.éé", "a@example.é1", "a@example.é",
        "a@example.\u0660\u0661", "a@example.\u00a1\u00a1", "a@example.\uffff\uffff",
        "a@example.\u00a0\u00a0", "a@localhost", "a@LOCALHOST", "a@Localhost", "a@localhost.",
        "a@localhost.localdomain", "a@" + LONG_LABEL + ".com", "a@" + LONG_LABEL + "a.com",
        "a@example." + "a" * 63, "a@example." + "a" * 64, "a@" + ".".join([LONG_LABEL] * 4) + ".com",
        "a@" + "и" * 63 + ".рф", "a@" + "и" * 64 + ".рф", "a@e.xample.c.o.m", "a@example.\u212a\u212a",
        "a@example.\u017f\u017f", "a@\u212a.com", "a@example.co\u0131", "a@example.com\u200b",
        "a@exam\u200bple.com", "a@example\uff0ecom", "a@example\u3002com", "a@example.com/",
        "a@example.com:25", "a@[example.com]",
        # literals
        "a@[127.0.0.1]", "a@[1.2.3.4]", "a@[01.2.3.4]", "a@[1.2.3]", "a@[256.1.1.1]",
        "a@[255.255.255.255]", "a@[0.0.0.0]", "a@[::1]", "a@[::]", "a@[:]", "a@[IPv6:::1]",
        "a@[::ffff:1.2.3.4]", "a@[::ffff:01.2.3.4]", "a@[1::2::3]", "a@[1:2:3:4:5:6:7:8]",
        "a@[1:2:3:4:5:6:7:8:9]", "a@[1:2:3:4:5:6:7::]", "a@[::2:3:4:5:6:7:8]",
        "a@[1::3:4:5:6:7:8]", "a@[1:2:3:4:5:6:1.2.3.4]", "a@[1:2:3:4:5:6:7:1.2.3.4]",
        "a@[1::1.2.3.4]", "a@[fe80::1%eth0]", "a@[ABCD:EF01:2345:6789:ABCD:EF01:2345:6789]",
        "a@[abcd:ef01:2345:6789:abcd:ef01:2345:6789]", "a@[0000:0000:0000:0000:0000:0000:0000:0001]",
        "a@[00000:0000:0000:0000:0000:0000:0000:0001]", "a@[0000:0000:0000:0000:0000:0000:0000:00001]",
        "a@[::ffff:255.255.255.255]", "a@[0:0:0:0:0:ffff:1.2.3.4]", "a@[1.2.3.4]x", "a@x[1.2.3.4]",
        "a@[1.2.3.4", "a@1.2.3.4]", "a@[]", "a@[.]", "a@[g::1]", "a@[\u0661.2.3.4]", "a@[1.2.3.4 ]",
        "a@[12345::]", "a@[1:2]", "a@[1.2.3.4.5]", "a@[::1.2.3.4]", "a@[1.2.3.4::]",
        # lengths around 254 and 320
        "a" * 64 + "@" + ".".join(["b" * 63] * 3) + ".com",
    ]
    for total in (253, 254, 255, 319, 320, 321, 400):
        local = "a" * (total - len("@example.com"))
        cases.append(local + "@example.com")
    for total in (254, 255, 320, 321):
        domain_len = total - 2
        labels, left = [], domain_len - 4
        while left > 0:
            take = min(63, left)
            labels.append("d" * take)
            left -= take + 1
        domain = ".".join(labels)[: domain_len - 4] + ".com"
        cases.append("a@" + domain)
    # the hostile characters in each place
    for c in HOSTILE:
        cases += [
            f"a{c}@example.com", f"{c}@example.com", f"a@ex{c}ample.com", f"a@example.c{c}m",
            f'"{c}"@example.com', f'"\\{c}"@example.com', f"a@[::{c}1]", f"a@example.com{c}",
        ]
    # literals of the IP corpus
    cases += [f"ivan@[{ip}]" for ip in ip_cases()]
    # seeded random: mutations of valid addresses...
    seeds = [c for c in cases if _valid(c)]
    for _ in range(500):
        cases.append(mutate(rng.choice(seeds), HOSTILE, rng.randint(1, 3)))
    # ...and assemblies of pieces
    local_pieces = ["ivan", "Z9", ".", "-", "+tag", "!#$%", '"', "\\", '"a b"', " ", "ſ", "K",
                    "и", "\x00", "\x7f", "@", "a" * 30]
    domain_pieces = ["example", "com", "xn--p1ai", "XN--e1afmkfd", "пример", "рф", "localhost",
                     "1", "123", "-", "a-b", "--", "", "ü", "\u00a1", "\uffff", "\u00a0",
                     "\U0001f600", "_", " ", "[", "]", "::1", "127.0.0.1", "x" * 63, "y" * 64,
                     "é", "K"]
    for _ in range(300):
        local = "".join(rng.choice(local_pieces) for _ in range(rng.randint(1, 4)))
        labels = [rng.choice(domain_pieces) for _ in range(rng.randint(1, 5))]
        cases.append(local + "@" + ".".join(labels))
    return unique(cases)


def _valid(value):
    try:
        validate_email(value)
    except ValidationError:
        return False
    return True


def build_email():
    cases = email_cases()
    out = [{"value": v, "valid": _valid(v)} for v in cases]
    # The form field: stripping, emptiness, and every error together.
    field = forms.EmailField(max_length=254)
    values = [
        "", " ", "\t\n", "\x1c", "\x1civan@example.com\x1f", "\u3000ivan@example.com\u3000",
        "\x85ivan@example.com", "\u200bivan@example.com", " ivan@example.com ", "ivan@example.com",
        "\x00", " \x00 ", "ivan@example.com\x00", "ivan\x00@example.com",
        "a" * 242 + "@example.com", "a" * 243 + "@example.com", "a" * 308 + "@example.com",
        "a" * 309 + "@example.com", "a" * 1000 + "@example.com", "a" * 300, "\x00" * 300,
        " " + "a" * 242 + "@example.com ",
    ] + [rng.choice(cases) for _ in range(150)] + [
        rng.choice(["", " ", "\t", "\x1d", "\u2003"]) + rng.choice(cases) + rng.choice(["", " ", "\n", "\x1e"])
        for _ in range(100)
    ]
    fields = []
    for value in unique(values):
        try:
            cleaned = field.clean(value)
            fields.append({"value": value, "cleaned": cleaned, "errors": []})
        except ValidationError as e:
            errors = []
            for error in e.error_list:
                entry = {"code": error.code}
                if error.code == "max_length":
                    entry["length"] = error.params["show_value"]
                errors.append(entry)
            fields.append({"value": value, "cleaned": None, "errors": errors})
    return out, fields


# ---------------------------------------------------------------------------
# IP addresses


def ip_cases():
    cases = [
        "1.2.3.4", "0.0.0.0", "255.255.255.255", "256.1.1.1", "01.2.3.4", "1.02.3.4", "0.0.0.00",
        "1.2.3", "1.2.3.4.5", "1..3.4", ".1.2.3", "1.2.3.", "", ".", "1.2.3.4/32", "1.2.3.4%x",
        "١.2.3.4", "1.2.3.٤", "+1.2.3.4", "1.2.3.-4", " 1.2.3.4", "1.2.3.4 ", "1.2.3.0x4",
        "1234.1.1.1", "999.1.1.1", "1.2.3.4\n", "::", "::1", "1::", ":1", "1:", ":::", "::::",
        "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9", "1::2::3", "::ffff:1.2.3.4", "::ffff:01.2.3.4",
        "::ffff:256.2.3.4", "1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4", "1::1.2.3.4",
        "1.2.3.4::", "1.2.3.4:1::", "::1.2.3.4:1", "fe80::1%eth0", "fe80::1%", "fe80::1%a%b",
        "fe80::1%%", "%eth0", "fe80::1%eth0/64", "12345::", "0000:0000:0000:0000:0000:0000:0000:0001",
        "00000:0000:0000:0000:0000:0000:0000:0001", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8",
        "1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8", "1:2:3:4::5:6:7:8", "1::3:4:5:6:7:8",
        "1:2:3:4:5:6::8", ":1:2:3:4:5:6:7", "1:2:3:4:5:6:7:", "g::1", "١::1", "::1/128", " ::1",
        "::1 ", "ABCD:EF01:2345:6789:ABCD:EF01:2345:6789", "abcd:ef01:2345:6789:abcd:ef01:2345:6789",
        "1:2:3:4:5:6:7:8%x", "::ffff:1.2.3.4%x", "fe80::1%x/1", "::%", "::%1", "1::%eth0",
        "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", "::ffff:0.0.0.0", "0::0",
        "0:0:0:0:0:0:0:0", "::0:0:0:0:0:0:0", "0:0:0:0:0:0:0::", "1:2:3:4:5:6:7:8:",
        ":1:2:3:4:5:6:7:8", "::1:2", "1:::2", "1::2:", ":1::2", "1:2:3:4:5::1.2.3.4",
        "1:2:3:4:5:6::1.2.3.4", "::1.2.3", "::1.2.3.4.5", "1::2:3:4:5:6:7", "1::2:3:4:5:6:7:8",
        "0001:0002:0003:0004:0005:0006:0007:0008", "00001::", "::00001", "fffff::", "v1.x",
        "[::1]", "::1]", "1.2.3.4.", "::ffff:1.2.3.4.", "a:b:c:d:e:f:a:b", "A:B:C:D:E:F:A:B",
        "::FFFF:1.2.3.4", "::ffff:1.2.3.04", "2001:db8::1", "2001:DB8::1", "2001:db8:0:0:0:0:2:1",
        "2001:0db8:0000:0000:0000:0000:0002:0001", "2001:0db8:0000:0000:0000:0000:0002:00001",
    ]
    alphabet = list("0123456789abcdefABCDEF:.%/g ") + ["١", "\x00", "x"]
    for _ in range(150):
        cases.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 45))))
    for _ in range(200):
        n = rng.randint(1, 9)
        groups = ["".join(rng.choice("0123456789abcdefABCDEF") for _ in range(rng.choice([0, 1, 2, 3, 4, 4, 4, 4, 5])))
                  for _ in range(n)]
        text = ":".join(groups)
        if rng.random() < 0.4:
            at = rng.randrange(len(text) + 1)
            text = text[:at] + "::" + text[at:]
        if rng.random() < 0.3:
            text += ":" + ".".join(str(rng.choice([0, 1, 9, 10, 99, 255, 256, 300])) for _ in range(rng.choice([3, 4, 4, 5])))
        cases.append(text)
    for _ in range(120):
        # mostly valid: eight groups, a run of them compressed, an IPv4 tail
        groups = ["%x" % rng.choice([0, 0, 1, rng.randrange(0x10000)]) for _ in range(8)]
        if rng.random() < 0.3:
            groups[-2:] = [str(ipaddress.IPv4Address(rng.randrange(2**32)))]
        if rng.random() < 0.6:
            start = rng.randrange(len(groups))
            end = rng.randint(start, len(groups))
            text = ":".join(groups[:start]) + "::" + ":".join(groups[end:])
        else:
            text = ":".join(groups)
        if rng.random() < 0.2:
            text = text.upper()
        if rng.random() < 0.2:
            text += "%" + rng.choice(["eth0", "1", "", "%", "x%y"])
        cases.append(text)
    for _ in range(100):
        octets = [str(rng.randrange(256)) if rng.random() < 0.85 else
                  rng.choice(["256", "300", "00", "01", "010", "1000", "", "-1", "0x1", "١"])
                  for _ in range(rng.choice([3, 4, 4, 4, 4, 4, 5]))]
        cases.append(".".join(octets))
    return unique(cases)


def build_ips():
    out = []
    for text in ip_cases():
        entry = {"value": text}
        try:
            entry["ipv4_int"] = int(ipaddress.IPv4Address(text))
            entry["ipv4"] = True
        except ValueError:
            entry["ipv4"] = False
        try:
            entry["ipv6_int"] = str(int(ipaddress.IPv6Address(text)))
            entry["ipv6"] = True
        except ValueError:
            entry["ipv6"] = False
        entry["django_ipv6"] = is_valid_ipv6_address(text)
        try:
            validate_ipv46_address(text)
            entry["django_ipv46"] = True
        except ValidationError:
            entry["django_ipv46"] = False
        out.append(entry)
    return out


# ---------------------------------------------------------------------------
# URLs

# Django's own tests (tests/utils_tests/test_http.py), with host
# "testserver" and "otherserver".
DJANGO_BAD_URLS = [
    "http://example.com", "http:///example.com", "https://example.com", "ftp://example.com",
    r"\\example.com", r"\\\example.com", r"/\\/example.com", r"\\\example.com", r"\\example.com",
    r"\\//example.com", r"/\/example.com", r"\/example.com", r"/\example.com",
    "http:///example.com", r"http:/\//example.com", r"http:\/example.com", r"http:/\example.com",
    'javascript:alert("XSS")', "\njavascript:alert(x)", "\x08//example.com",
    r"http://otherserver\@example.com", r"http:\\testserver\@example.com",
    r"http://testserver\me:pass@example.com", r"http://testserver\@example.com",
    r"http:\\testserver\confirm\me@example.com", "http:999999999", "ftp:9999999999", "\n",
    "http://[2001:cdba:0000:0000:0000:0000:3257:9652/", "http://2001:cdba:0000:0000:0000:0000:3257:9652]/",
]
DJANGO_GOOD_URLS = [
    "/view/?param=http://example.com", "/view/?param=https://example.com",
    "/view?param=ftp://example.com", "view/?param=//example.com", "https://testserver/",
    "HTTPS://testserver/", "//testserver/", "http://testserver/confirm?email=me@example.com",
    "/url%20with%20spaces/", "path/http:2222222222",
]

CURATED_URLS = DJANGO_BAD_URLS + DJANGO_GOOD_URLS + [
    None, "", " ", "\t\n", "/", "/products/1/?page=2", "products/", "./x", "../x", "?next=/x",
    "#top", "//testserver", "//testserver:80/", "//testserver:8000/x", "//user@testserver/",
    "//user:pass@testserver/", "//testserver@evil.com/", "//TESTSERVER/", "//TestServer/",
    "//testserver./", "https:/testserver/", "https:testserver", "http:/testserver", "mailto:a@b.com",
    "data:text/html,<script>", "javascript://testserver/%0aalert(1)", "JaVaScRiPt:alert(1)",
    "ftp://testserver/", "HTTP://testserver/", "Https://testserver/", "http+x://testserver/",
    "1http://testserver/", "+http://testserver/", "h\ttp://testserver/", "ht\ntp://evil.com/",
    "/\t/evil.com", "/\n/evil.com", "/\r/evil.com", "\t//evil.com", "\x00//evil.com",
    "\x00/x", "\x1f/x", "\x1c/x", " //evil.com", "//evil.com", "///evil.com", "////evil.com",
    "/\\evil.com", "\\/evil.com", "\\\\evil.com", "/%2F%2Fevil.com", "%2F%2Fevil.com",
    "//%65vil.com", "/%09/evil.com", "//evil.com\\@testserver/", "//testserver\\@evil.com/",
    "//[::1]/", "//[::1]:8000/", "//[v1.x]/", "//[1.2.3.4]/", "//[fe80::1%25eth0]/", "//[fe80::1%]/",
    "//[::1/", "//::1]/", "//[g::1]/", "//[::1]x/", "//x[::1]/", "//testserver\uff0fevil.com/",
    "//ex\u2100mple/", "//test\uff1aserver/", "//пример.рф/", "//xn--e1afmkfd.xn--p1ai/",
    "\u200b//evil.com", "\ufeff/x", "\u00ad/x", "\ue000/x", "\U000e0001/x", "\u0378/x",
    "\ufdd0/x", "\U0001f600/x", "\u3000//evil.com", "\x85//evil.com", "\xa0//evil.com",
    "\u2028/x", "\u202e//moc.live", "\u061c/x", "\U00031350/x", "\U0001e030/x", "я/x", "//testserver/\x00",
    "/x\x00", "/путь/?q=ü", "http://testserver/путь", "https://testserver:443/", "//testserver:/x",
    "//:80/", "//@/", "//testserver?x", "//testserver#x", "http://testserver", "https://otherserver/x",
    "http://evil.com?testserver", "http://evil.com#testserver", "http://testserver.evil.com/",
    "http://evil.com/testserver", "http:testserver", "http::testserver", ":x", ":/x", "x:", "//",
    "/" + "a" * 2046, "/" + "a" * 2047, "/" + "a" * 2048, " /" + "a" * 2047 + " ",
    "\\" + "a" * 2047, "/" + "я" * 2047, "/" + "я" * 2048,
]

HOST_SETS = [
    ["testserver"],
    ["testserver", "otherserver"],
    ["testserver:8000"],
    ["[::1]", "[::1]:8000"],
    [],
    ["TESTSERVER"],
    ["пример.рф", "xn--e1afmkfd.xn--p1ai"],
    ["evil.com"],
    ["user@testserver", "testserver:"],
    ["ex\u2100mple", "testserver\uff0fevil.com"],
]

URL_PREFIXES = [
    "", "", "", "/", "//", "///", "\\", "\\\\", "/\\", "\\/", "http:", "http:/", "http://",
    "https://", "HTTPS://", "ftp://", "javascript:", "mailto:", "http:\\\\", " ", "\t", "\n",
    "\x00", "\x08", "\x7f", "\u200b", "\ufeff", "\u00ad", "\ue000", "\u0378", "%2F%2F", "./",
    "?", "#", ":", "1http://", "http+x://", "\x1c", "\u3000",
]
URL_NETLOCS = [
    "testserver", "otherserver", "evil.com", "testserver:8000", "testserver:80", "user@testserver",
    "user:pass@testserver", "testserver@evil.com", "evil.com\\@testserver", "[::1]", "[::1",
    "::1]", "[v1.x]", "[1.2.3.4]", "[fe80::1%eth0]", "[fe80::1%]", "TESTSERVER", "testserver.",
    "пример.рф", "ex\u2100mple", "testserver\uff0fevil.com", "%74estserver", "", " testserver",
    "test server", "testserver\x00", "[::1]:8000", "@", ":",
]
URL_PATHS = [
    "", "/", "/path", "/a/b?c=d", "?next=//evil.com", "#frag", "/\\evil.com", "//evil.com",
    "/%2F%2Fevil.com", "/путь", " ", "\t", "\n", "\\", "?", "#", "/?#",
]
URL_SUFFIXES = ["", "", "", " ", "\n", "\u3000", "\x1c", "\x00"]


def url_cases():
    urls = list(CURATED_URLS)
    for _ in range(450):
        urls.append(
            rng.choice(URL_PREFIXES) + rng.choice(URL_NETLOCS) + rng.choice(URL_PATHS)
            + rng.choice(URL_SUFFIXES)
        )
    seeds = [u for u in CURATED_URLS if u and len(u) < 100]
    for _ in range(250):
        urls.append(mutate(rng.choice(seeds), HOSTILE, rng.randint(1, 3)))
    return unique(urls)


def build_urls():
    urls = url_cases()
    splits = []
    for url in urls:
        if url is None:
            continue
        try:
            parts = urllib.parse.urlsplit(url)
            splits.append({"url": url, "split": list(parts)})
        except ValueError:
            splits.append({"url": url, "split": None})
    checks = []
    curated = set(u for u in CURATED_URLS if u is not None)
    for url in urls:
        if (url is None or url in curated) and len(url or "") < 200:
            sets = list(range(4)) + [rng.randrange(4, len(HOST_SETS))]
        else:
            sets = [rng.randrange(len(HOST_SETS))]
        answers = [
            [i] + [url_has_allowed_host_and_scheme(url, set(HOST_SETS[i]), require_https=https)
                   for https in (False, True)]
            for i in sets
        ]
        checks.append({"url": url, "answers": answers})
    return splits, checks


def category_c_boundaries():
    out, previous = [], False
    for code in range(sys.maxunicode + 1):
        other = unicodedata.category(chr(code))[0] == "C"
        if other != previous:
            out.append(code)
            previous = other
    return out


emails, email_fields = build_email()
splits, url_checks = build_urls()
vectors = {
    "django_version": django.get_version(),
    "python_version": sys.version.split()[0],
    "unidata_version": unicodedata.unidata_version,
    "email_validator": emails,
    "email_form_field": email_fields,
    "ip_addresses": build_ips(),
    "urlsplit": splits,
    "allowed_host_sets": HOST_SETS,
    "url_has_allowed_host_and_scheme": url_checks,
    "python_category_c_boundaries": category_c_boundaries(),
}

def dump(value):
    """One vector a line, so a change in Django's answers is a readable diff."""
    lines = ["{"]
    items = list(value.items())
    for i, (key, entry) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        if isinstance(entry, list) and entry and isinstance(entry[0], dict):
            lines.append(f"{json.dumps(key)}: [")
            lines += [json.dumps(e, ensure_ascii=False) + ("," if j < len(entry) - 1 else "")
                      for j, e in enumerate(entry)]
            lines.append("]" + comma)
        else:
            lines.append(f"{json.dumps(key)}: {json.dumps(entry, ensure_ascii=False)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


OUT.parent.mkdir(parents=True, exist_ok=True)
OUT.write_text(dump(vectors), encoding="utf-8")
counts = {k: len(v) for k, v in vectors.items()
          if isinstance(v, list) and k not in ("python_category_c_boundaries", "allowed_host_sets")}
print(f"wrote {OUT} ({sum(counts.values())} vectors)")
for k, v in counts.items():
    note = ""
    if k == "email_validator":
        note = f" ({sum(e['valid'] for e in vectors[k])} valid)"
    if k == "url_has_allowed_host_and_scheme":
        answers = [a for e in vectors[k] for a in e["answers"]]
        note = (f" URLs, {2 * len(answers)} answers"
                f" ({sum(a[1] + a[2] for a in answers)} safe)")
    print(f"  {k}: {v}{note}")
