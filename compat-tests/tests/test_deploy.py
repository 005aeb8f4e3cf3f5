"""Deployment settings, compared with a real Django:

- `unchained check --deploy` writes what `manage.py check --deploy` of the
  reference project writes (the same warnings, ids, texts and format, on
  the same stream) and ends with the same exit status, under several
  combinations of settings;
- with HSTS, the SSL redirect and the other `SECURE_*` / `X_FRAME_OPTIONS`
  settings set, both servers on one database answer the same requests with
  the same status, `Location` and security headers, over plain HTTP and
  over HTTPS (a proxy's `X-Forwarded-Proto`, `SECURE_PROXY_SSL_HEADER`).
"""
import re

import pytest

from live import Gunicorn, LiveServer

SECRET_KEY = "Xq3vTb9LmZ0pR7kW2yH5sD8fJ1nC4gE6uA0oI9tB3cQ="  # conftest.TEST_SECRET_KEY (W009: 44 characters)
STRONG_KEY = "v7#Qm2!pX9@zL4$wK8%nR3^tB6&yH1*cJ5(dF0)gS-aE_uW=iO+"

SECURE = {
    "SECRET_KEY": STRONG_KEY,
    "ALLOWED_HOSTS": "shop.example,www.shop.example",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "True",
    "SECURE_HSTS_PRELOAD": "True",
    "SECURE_SSL_REDIRECT": "True",
    "SESSION_COOKIE_SECURE": "True",
    "CSRF_COOKIE_SECURE": "True",
}

# (name, extra environment, extra arguments)
COMBINATIONS = [
    ("defaults", {}, []),
    ("debug", {"DEBUG": "True"}, []),
    ("everything secure", SECURE, []),
    ("weak keys, no hosts", {
        "SECRET_KEY": "django-insecure-" + "x1y2z3" * 10,
        "SECRET_KEY_FALLBACKS": f"{STRONG_KEY},short",
        "ALLOWED_HOSTS": "",
    }, []),
    ("HSTS alone, headers off", {
        **SECURE,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": "False",
        "SECURE_HSTS_PRELOAD": "False",
        "SECURE_CONTENT_TYPE_NOSNIFF": "False",
        "SECURE_REFERRER_POLICY": "None",
        "X_FRAME_OPTIONS": "SAMEORIGIN",
        "SESSION_COOKIE_HTTPONLY": "False",
    }, []),
    ("CSRF in the session, X-Frame-Options off", {
        **SECURE,
        "CSRF_COOKIE_SECURE": "False",
        "CSRF_USE_SESSIONS": "True",
        "X_FRAME_OPTIONS": "None",
    }, []),
    ("lower-case deny", {**SECURE, "X_FRAME_OPTIONS": "deny"}, []),
    ("silenced", {"SILENCED_SYSTEM_CHECKS": "security.W004,security.W008,security.W009"}, []),
    ("everything silenced", {
        **SECURE, "SILENCED_SYSTEM_CHECKS": "security.W004",
    }, []),
    ("warnings fail at --fail-level WARNING", {}, ["--fail-level", "WARNING"]),
    ("no warning fails at --fail-level WARNING", SECURE, ["--fail-level", "WARNING"]),
]

WARNING_LINE = re.compile(r"^\?: \((security\.[WE]\d{3})\) ", re.M)


@pytest.mark.matrix("check --deploy (ids, texts, format, exit status)", "same on both")
@pytest.mark.parametrize("name,env,args", COMBINATIONS, ids=[c[0] for c in COMBINATIONS])
def test_check_deploy_says_what_django_says(name, env, args, tmp_path, run_manage, run_unchained):
    # Neither command opens the database.
    url = f"sqlite:///{tmp_path / 'never-made.sqlite3'}"
    django = run_manage(url, "check", "--deploy", *args, env=env, check=False)
    ours = run_unchained(url, "check", "--deploy", *args, env=env, check=False)
    django_ids = sorted(WARNING_LINE.findall(django.stderr))
    our_ids = sorted(WARNING_LINE.findall(ours.stderr))
    assert our_ids == django_ids, f"{name}: unchained {our_ids}, Django {django_ids}\n{django.stderr}"
    assert (ours.returncode, ours.stdout, ours.stderr) == (django.returncode, django.stdout, django.stderr), (
        f"{name}:\n--- Django (exit {django.returncode}) ---\n{django.stdout}{django.stderr}"
        f"\n--- unchained (exit {ours.returncode}) ---\n{ours.stdout}{ours.stderr}"
    )
    assert not (tmp_path / "never-made.sqlite3").exists()


def test_the_combinations_cover_each_warning(tmp_path, run_manage):
    """The combinations above make Django say every warning unchained can
    say (else a wrong rule could pass unnoticed)."""
    url = f"sqlite:///{tmp_path / 'never-made.sqlite3'}"
    seen = set()
    for _, env, _args in COMBINATIONS:
        env = {**env, "SILENCED_SYSTEM_CHECKS": ""}
        seen |= set(WARNING_LINE.findall(run_manage(url, "check", "--deploy", env=env, check=False).stderr))
    expected = {f"security.W{n:03d}" for n in (2, 4, 5, 6, 8, 9, 12, 15, 16, 18, 19, 20, 21, 22, 25)}
    assert seen == expected


def test_a_bad_policy_is_refused_where_django_reports_an_error(tmp_path, run_manage, run_unchained):
    """Django serves an unknown Referrer-Policy and says E023 in `check
    --deploy`; unchained refuses the setting (one line naming it, with
    Django's text). Both fail."""
    url = f"sqlite:///{tmp_path / 'never-made.sqlite3'}"
    env = {"SECURE_REFERRER_POLICY": "sameorigin"}
    django = run_manage(url, "check", "--deploy", env=env, check=False)
    ours = run_unchained(url, "check", "--deploy", env=env, check=False)
    assert django.returncode == 1 and "(security.E023) You have set the SECURE_REFERRER_POLICY setting to an invalid value." in django.stderr
    assert ours.returncode != 0
    line = ours.stderr.strip()
    assert "\n" not in line and line.startswith("unchained: configuration error: SECURE_REFERRER_POLICY: "), line
    assert "You have set the SECURE_REFERRER_POLICY setting to an invalid value." in line


# ---------------------------------------------------------------- both servers, one database

LIVE_ENV = {
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "DEBUG": "0",
    "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
    "SECURE_HSTS_SECONDS": "3600",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "True",
    "SECURE_HSTS_PRELOAD": "True",
    "SECURE_SSL_REDIRECT": "True",
    # The servers' readiness probe asks for the login page over plain HTTP.
    "SECURE_REDIRECT_EXEMPT": r"^users/login/$,^contacts/",
    "SECURE_REFERRER_POLICY": "no-referrer, strict-origin-when-cross-origin",
    "SECURE_CROSS_ORIGIN_OPENER_POLICY": "same-origin-allow-popups",
    "X_FRAME_OPTIONS": "SAMEORIGIN",
}
HEADERS = (
    "Location",
    "Content-Type",
    "Strict-Transport-Security",
    "X-Frame-Options",
    "X-Content-Type-Options",
    "Referrer-Policy",
    "Cross-Origin-Opener-Policy",
    "Vary",
)
HTTPS = {"X-Forwarded-Proto": "https"}
REQUESTS = [
    # (method, path, headers)
    ("GET", "/users/login/", {}),  # exempt: served over HTTP, no HSTS
    ("GET", "/users/login/", HTTPS),
    ("GET", "/contacts/?from=ad", {}),  # exempt by a prefix
    ("GET", "/", HTTPS),  # the list sends a visitor to the login page
    ("GET", "/", {}),  # redirected
    ("GET", "/products/?page=2&q=%D0%B6%20x", {}),
    ("GET", "/users/%D0%BA%D1%82%D0%BE/a;b=c/", {}),  # decoded, escaped again
    ("GET", "//users/login/", {}),  # every leading slash is stripped before matching
    ("POST", "/users/register/", {}),  # any method
    ("GET", "/users/profile/", HTTPS),  # a redirect to the login page, over HTTPS
]


@pytest.mark.matrix("SECURE_* / X_FRAME_OPTIONS headers and SSL redirect", "same on both")
def test_security_settings_answer_alike_on_both_servers(db_backend, fresh_db, run_manage, unchained_bin,
                                                         venv_python, refproject_dir, tmp_path):
    url = fresh_db("deploy")
    run_manage(url, "migrate", "--noinput")
    with LiveServer(unchained_bin, url, SECRET_KEY, env=LIVE_ENV, log_path=tmp_path / "serve.log") as ours, \
            Gunicorn(venv_python, refproject_dir, url, SECRET_KEY, env=LIVE_ENV,
                     log_path=tmp_path / "gunicorn.log") as django:
        ours.start()
        django.start()
        for method, path, headers in REQUESTS:
            answers = {}
            for side, server in (("unchained", ours), ("Django", django)):
                r = server.browser().request(method, path, headers=headers)
                seen = {h: r.header(h) for h in HEADERS}
                if r.status != 301:
                    # The SSL redirect's type is compared; the site's own
                    # redirects have none here (a difference of their own).
                    del seen["Content-Type"]
                # Each server redirects to its own host and port.
                if seen["Location"]:
                    seen["Location"] = seen["Location"].replace(f"127.0.0.1:{server.port}", "HOST")
                answers[side] = (r.status, seen)
            where = f"{method} {path} {headers}"
            assert answers["unchained"] == answers["Django"], (
                f"{where}: unchained {answers['unchained']}\n but Django {answers['Django']}")
        # And the answers are what the settings ask for (not merely alike).
        r = ours.browser().get("/users/login/", headers=HTTPS)
        assert r.status == 200
        assert r.header("Strict-Transport-Security") == "max-age=3600; includeSubDomains; preload"
        assert r.header("Referrer-Policy") == "no-referrer,strict-origin-when-cross-origin"
        assert r.header("X-Frame-Options") == "SAMEORIGIN"
        r = ours.browser().get("/products/?page=2")
        assert (r.status, r.location) == (301, f"https://127.0.0.1:{ours.port}/products/?page=2")
        assert r.header("Strict-Transport-Security") is None
        r = ours.browser().get("/contacts/")
        assert r.status == 200 and r.header("Strict-Transport-Security") is None
