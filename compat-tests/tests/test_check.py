"""`unchained check` on databases Django made: safe when they are as Django
leaves them, and not safe, naming the problem, when they are not.

Per back end, each test starts from a fresh database migrated by
`manage.py migrate` with a superuser made by `manage.py createsuperuser
--noinput`, then breaks one thing.
"""
import re
import sqlite3

import pytest

from live import Database

SUPERUSER_EMAIL = "admin@example.com"
SUPERUSER_ENV = {
    "DJANGO_SUPERUSER_EMAIL": SUPERUSER_EMAIL,
    "DJANGO_SUPERUSER_PASSWORD": "S3cure-пароль-2025",
}

# Users with a hash of every default hasher, one with an unusable password
# (set_unusable_password) and one made inactive: all fine for a switch.
ADD_USERS = r"""
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
User = get_user_model()
for algorithm in ["pbkdf2_sha256", "pbkdf2_sha1", "argon2", "bcrypt_sha256", "scrypt"]:
    User.objects.create(email=f"{algorithm}@example.com",
                        password=make_password("пароль-" + algorithm, hasher=algorithm))
u = User.objects.create(email="unusable@example.com")
u.set_unusable_password()
u.save()
User.objects.create(email="inactive@example.com", is_active=False, password=make_password("x"))
print(User.objects.count())
"""


def execute(backend, url, sql):
    if backend == "sqlite":
        con = sqlite3.connect(url[len("sqlite:///"):])
        try:
            with con:
                cur = con.execute(sql)
                return cur.rowcount
        finally:
            con.close()
    if backend == "mysql":
        return Database(url).execute(sql)
    import psycopg

    with psycopg.connect(url, autocommit=True) as con:
        return con.execute(sql).rowcount


def run_check(run_unchained, url):
    proc = run_unchained(url, "check", check=False)
    return proc.returncode, proc.stdout + proc.stderr


def says_safe(output):
    return any(
        "safe to switch" in line.lower() and "not safe" not in line.lower()
        for line in output.splitlines()
    )


@pytest.fixture
def django_db(db_backend, fresh_db, run_manage):
    url = fresh_db("django")
    run_manage(url, "migrate", "--noinput")
    run_manage(url, "createsuperuser", "--noinput", env=SUPERUSER_ENV)
    return url


def assert_not_safe(run_unchained, url, must_name):
    code, output = run_check(run_unchained, url)
    assert code != 0, f"check exited 0 on a broken database:\n{output}"
    assert not says_safe(output), output
    assert re.search(must_name, output), f"check does not name {must_name!r}:\n{output}"
    return output


def test_check_says_safe_on_a_django_database(db_backend, django_db, run_unchained, run_manage):
    code, output = run_check(run_unchained, django_db)
    assert code == 0, output
    assert says_safe(output), output
    assert not re.search(r"^\s*ERROR", output, re.M), output
    # The names the broken cases look for appear only when broken.
    assert "users_user.country" not in output
    assert "0001_initial" not in output
    assert "crypt" not in output

    # Hashes of each default hasher and unusable passwords are all fine.
    assert run_manage(django_db, "shell", "-c", ADD_USERS).stdout.split()[-1] == "8"
    code, output = run_check(run_unchained, django_db)
    assert code == 0, output
    assert says_safe(output), output


def test_check_names_a_dropped_column(db_backend, django_db, run_unchained):
    execute(db_backend, django_db, "ALTER TABLE users_user DROP COLUMN country")
    assert_not_safe(run_unchained, django_db, r"users_user\.country")


def test_check_names_an_unapplied_migration(db_backend, django_db, run_unchained):
    deleted = execute(
        db_backend, django_db,
        "DELETE FROM django_migrations WHERE app = 'catalog' AND name = '0001_initial'",
    )
    assert deleted == 1
    output = assert_not_safe(run_unchained, django_db, r"catalog\.0001_initial")
    # Only that one: the other migrations are all recorded.
    assert "users.0001_initial" not in output


def test_check_names_an_unsupported_password_hash(db_backend, django_db, run_unchained):
    updated = execute(
        db_backend, django_db,
        f"UPDATE users_user SET password = 'crypt$$abcdef' WHERE email = '{SUPERUSER_EMAIL}'",
    )
    assert updated == 1
    assert_not_safe(run_unchained, django_db, r"crypt")
