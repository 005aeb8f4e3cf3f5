"""
Settings of the reference Django project (the app `unchained` replaces).

Everything that differs between deployments comes from the environment, with
the same variable names the Rust binary reads (see DESIGN.md).
"""
import os
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
# compat-tests/refproject -> repository root (holds the shared `templates/`).
REPO_ROOT = BASE_DIR.parent.parent


def env_bool(name, default=False):
    """True/False, also 1/0, yes/no, on/off (any case); unset or empty: the default."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    word = value.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}: expected True or False, got {value!r}")


def env_str(name, default):
    """The variable's value; unset or empty: the default."""
    value = os.environ.get(name)
    return default if value is None or value.strip() == "" else value.strip()


def env_int(name, default, none_allowed=False):
    """A whole number (of seconds); `none_allowed`: also None, written None.
    Unset or empty: the default."""
    value = env_str(name, None)
    if value is None:
        return default
    if none_allowed and value == "None":
        return None
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}: expected a whole number of seconds, got {value!r}") from None


def env_domain(name):
    """A cookie's Domain: unset, empty or None: a host-only cookie (None)."""
    value = env_str(name, None)
    return None if value in (None, "None") else value


def env_samesite(name, default="Lax"):
    """A cookie's SameSite setting: Lax, Strict, None (the string: SameSite=None
    is sent), or False (no SameSite attribute at all)."""
    value = env_str(name, default)
    canonical = {"lax": "Lax", "strict": "Strict", "none": "None", "false": False}
    if value.lower() not in canonical:
        raise ImproperlyConfigured(f"{name}: expected Lax, Strict, None or False, got {value!r}")
    return canonical[value.lower()]


def env_list(name, default=""):
    value = os.environ.get(name, default)
    return [item.strip() for item in value.split(",") if item.strip()]


def parse_database_url(url):
    """A dependency-free subset of dj-database-url: sqlite, postgres and mysql URLs."""
    if url in ("sqlite://", "sqlite://:memory:", "sqlite:///:memory:"):
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
    if url.startswith("sqlite:///"):
        # sqlite:////abs/path -> /abs/path ; sqlite:///relative -> relative
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": unquote(url[len("sqlite:///"):].split("?", 1)[0]),
        }
    parts = urlsplit(url)
    # The server, the account and the database, as every server back end takes them.
    server = {
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": unquote(parts.hostname or ""),
        "PORT": str(parts.port or ""),
    }
    options = dict(parse_qsl(parts.query))
    if parts.scheme in ("postgres", "postgresql", "pgsql"):
        config = {"ENGINE": "django.db.backends.postgresql", **server}
        if options:
            config["OPTIONS"] = options
        return config
    if parts.scheme in ("mysql", "mariadb"):
        # Django's MySQL/MariaDB backend (the mysqlclient driver). utf8mb4:
        # the connection's character set, Django 5.2's default, explicit for
        # the older releases (4.2 connects with utf8, i.e. utf8mb3, which
        # cannot hold 4-byte characters). Tables take the database's
        # character set (scripts/mariadb.sh creates utf8mb4 databases).
        # Query parameters are further connect() options.
        return {"ENGINE": "django.db.backends.mysql", **server, "OPTIONS": {"charset": "utf8mb4", **options}}
    raise ValueError(f"unsupported DATABASE_URL: {url!r}")


SECRET_KEY = os.environ.get("SECRET_KEY", "")
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS")

DEBUG = env_bool("DEBUG", False)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "users",
    "catalog",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        # The site's pages: the shared Jinja templates of the repository.
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [REPO_ROOT / "templates"],
        "APP_DIRS": False,
        "OPTIONS": {
            "environment": "config.jinja2.environment",
        },
    },
    {
        # Django admin.
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"

DATABASES = {
    "default": parse_database_url(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
    )
}

# Django's default list unless the environment names one (as unchained reads
# it): tests/test_releases.py adds Django 4.2's legacy hashers.
if env_list("PASSWORD_HASHERS"):
    PASSWORD_HASHERS = env_list("PASSWORD_HASHERS")
# Django 4.2's transitional setting (5.0 removed it; there it would do nothing).
if os.environ.get("CSRF_COOKIE_MASKED", "").strip():
    CSRF_COOKIE_MASKED = env_bool("CSRF_COOKIE_MASKED")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "ru-ru"
TIME_ZONE = "Europe/Moscow"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = os.environ.get("STATIC_ROOT") or None

MEDIA_URL = "/media/"
MEDIA_ROOT = os.environ.get("MEDIA_ROOT") or str(BASE_DIR / "media")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "users.User"
# A path or a URL name (users:login), as django.shortcuts.resolve_url takes them.
LOGIN_URL = env_str("LOGIN_URL", "/users/login/")
LOGIN_REDIRECT_URL = env_str("LOGIN_REDIRECT_URL", "/")
LOGOUT_REDIRECT_URL = env_str("LOGOUT_REDIRECT_URL", "/")

# Sessions and CSRF: Django's settings under Django's names, with Django's
# defaults (https://docs.djangoproject.com/en/5.2/ref/settings/#sessions).
SESSION_ENGINE = env_str("SESSION_ENGINE", "django.contrib.sessions.backends.db")
SESSION_COOKIE_NAME = env_str("SESSION_COOKIE_NAME", "sessionid")
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 60 * 60 * 24 * 7 * 2)
SESSION_COOKIE_DOMAIN = env_domain("SESSION_COOKIE_DOMAIN")
SESSION_COOKIE_PATH = env_str("SESSION_COOKIE_PATH", "/")
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
SESSION_COOKIE_HTTPONLY = env_bool("SESSION_COOKIE_HTTPONLY", True)
SESSION_COOKIE_SAMESITE = env_samesite("SESSION_COOKIE_SAMESITE", "Lax")
SESSION_EXPIRE_AT_BROWSER_CLOSE = env_bool("SESSION_EXPIRE_AT_BROWSER_CLOSE", False)
SESSION_SAVE_EVERY_REQUEST = env_bool("SESSION_SAVE_EVERY_REQUEST", False)

CSRF_COOKIE_NAME = env_str("CSRF_COOKIE_NAME", "csrftoken")
CSRF_COOKIE_AGE = env_int("CSRF_COOKIE_AGE", 60 * 60 * 24 * 7 * 52, none_allowed=True)  # None: a browser-session cookie
CSRF_COOKIE_DOMAIN = env_domain("CSRF_COOKIE_DOMAIN")
CSRF_COOKIE_PATH = env_str("CSRF_COOKIE_PATH", "/")
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)
CSRF_COOKIE_HTTPONLY = env_bool("CSRF_COOKIE_HTTPONLY", False)
CSRF_COOKIE_SAMESITE = env_samesite("CSRF_COOKIE_SAMESITE", "Lax")
CSRF_HEADER_NAME = env_str("CSRF_HEADER_NAME", "HTTP_X_CSRFTOKEN")  # request.META's name of the header
CSRF_USE_SESSIONS = env_bool("CSRF_USE_SESSIONS", False)

EMAIL_BACKEND_ALIASES = {
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
    "console": "django.core.mail.backends.console.EmailBackend",
    "file": "django.core.mail.backends.filebased.EmailBackend",
    "locmem": "django.core.mail.backends.locmem.EmailBackend",
    "dummy": "django.core.mail.backends.dummy.EmailBackend",
}
_email_backend = os.environ.get("EMAIL_BACKEND") or "smtp"
EMAIL_BACKEND = EMAIL_BACKEND_ALIASES.get(_email_backend, _email_backend)
EMAIL_HOST = os.environ.get("EMAIL_HOST") or "smtp.mail.ru"
EMAIL_PORT = int(os.environ.get("EMAIL_PORT") or 465)
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", not EMAIL_USE_TLS)
EMAIL_HOST_USER = os.getenv("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = os.getenv("EMAIL_HOST_PASSWORD")
if os.environ.get("EMAIL_FILE_PATH"):
    EMAIL_FILE_PATH = os.environ["EMAIL_FILE_PATH"]
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL") or EMAIL_HOST_USER or "webmaster@localhost"
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# SecurityMiddleware's and XFrameOptionsMiddleware's settings and
# SILENCED_SYSTEM_CHECKS (`check --deploy` also reads the cookie settings
# above), from the variables unchained reads; unset, each keeps Django's
# default. "None" (or an empty value) is Python's None; X_FRAME_OPTIONS=None
# stands for a site without XFrameOptionsMiddleware (no header,
# security.W002).


def env_optional(name, default):
    value = os.environ.get(name)
    if value is None:
        return default
    value = value.strip()
    return None if value in ("", "None") else value


SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS") or 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_SSL_HOST = env_optional("SECURE_SSL_HOST", None)
SECURE_REDIRECT_EXEMPT = env_list("SECURE_REDIRECT_EXEMPT")
SECURE_CONTENT_TYPE_NOSNIFF = env_bool("SECURE_CONTENT_TYPE_NOSNIFF", True)
SECURE_REFERRER_POLICY = env_optional("SECURE_REFERRER_POLICY", "same-origin")
SECURE_CROSS_ORIGIN_OPENER_POLICY = env_optional("SECURE_CROSS_ORIGIN_OPENER_POLICY", "same-origin")
if os.environ.get("SECURE_PROXY_SSL_HEADER"):
    SECURE_PROXY_SSL_HEADER = tuple(
        part.strip() for part in os.environ["SECURE_PROXY_SSL_HEADER"].split(",", 1)
    )
_x_frame_options = env_optional("X_FRAME_OPTIONS", "DENY")
if _x_frame_options is None:
    MIDDLEWARE.remove("django.middleware.clickjacking.XFrameOptionsMiddleware")
else:
    X_FRAME_OPTIONS = _x_frame_options
SILENCED_SYSTEM_CHECKS = env_list("SILENCED_SYSTEM_CHECKS")
