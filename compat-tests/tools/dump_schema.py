#!/usr/bin/env python3
"""Dump the schema and rows Django's `migrate` creates for the reference project.

Run with the compat venv's python (it needs psycopg and mysqlclient):

    compat-tests/.venv/bin/python compat-tests/tools/dump_schema.py [--check]

It migrates a fresh SQLite, a fresh PostgreSQL database (started with
scripts/postgres.sh) and a fresh MariaDB database (scripts/mariadb.sh) with
`manage.py migrate`, and writes

    schema/sqlite/schema.sql    DDL from sqlite_master: tables, then indexes
    schema/postgres/schema.sql  pg_dump --schema-only, cleaned: no SET lines, no
                                comments, no `public.`; tables, identity
                                sequences, primary keys/uniques, indexes,
                                foreign keys
    schema/mysql/schema.sql     SHOW CREATE TABLE of each table (MariaDB), without
                                AUTO_INCREMENT counters; tables in dependency
                                order (referenced tables first, else by name),
                                foreign keys inline
    schema/rows.json            django_migrations, content types, permissions

then checks that each schema.sql replays on an empty database to the same
schema Django made. With --check it writes nothing and exits 1 when the files
in schema/ differ from what it would write. The output is deterministic.
"""
import argparse
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

import MySQLdb
import psycopg

REPO = Path(__file__).resolve().parents[2]
REFPROJECT = REPO / "compat-tests" / "refproject"
POSTGRES_SH = REPO / "scripts" / "postgres.sh"
MARIADB_SH = REPO / "scripts" / "mariadb.sh"
SCHEMA_DIR = REPO / "schema"
SECRET_KEY = "dump-schema-not-secret"

PG_DB_DJANGO = "unchained_dump_schema"
PG_DB_REPLAY = "unchained_dump_schema_replay"
PG_DB_REPLAY_SCHEMA = "unchained_dump_schema_replay2"

MY_DB_DJANGO = "unchained_dump_schema"
MY_DB_REPLAY = "unchained_dump_schema_replay"


def run(cmd, **kwargs):
    kwargs.setdefault("check", True)
    kwargs.setdefault("text", True)
    kwargs.setdefault("stdout", subprocess.PIPE)
    return subprocess.run([str(c) for c in cmd], **kwargs)


def venv_python():
    candidate = REPO / "compat-tests" / ".venv" / "bin" / "python"
    return candidate if candidate.exists() else Path(sys.executable)


def django_migrate(database_url):
    env = dict(os.environ, DATABASE_URL=database_url, SECRET_KEY=SECRET_KEY)
    run([venv_python(), "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REFPROJECT, env=env)


def pg_createdb(name):
    return run(["bash", POSTGRES_SH, "createdb", name]).stdout.strip()


def pg_dropdb(name):
    base = run(["bash", POSTGRES_SH, "url"]).stdout.strip()
    with psycopg.connect(f"{base}/postgres", autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_bindir():
    return Path(run(["bash", POSTGRES_SH, "bindir"]).stdout.strip())


# ---------------------------------------------------------------- SQLite


def sqlite_master(path):
    con = sqlite3.connect(path)
    try:
        return con.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY rowid"
        ).fetchall()
    finally:
        con.close()


def sqlite_schema_sql(path):
    rows = sqlite_master(path)
    statements = []
    for kind in ("table", "index"):
        for type_, name, _tbl, sql in rows:
            if type_ != kind or sql is None or name.startswith("sqlite_"):
                continue
            assert ";" not in sql, f"unexpected ';' in DDL of {name}"
            statements.append(sql.strip() + ";")
    unknown = [r for r in rows if r[0] not in ("table", "index")]
    assert not unknown, f"unexpected sqlite_master entries: {unknown}"
    return "\n\n".join(statements) + "\n"


def check_sqlite_replay(schema_sql, django_db, tmp):
    replay = tmp / "replay.sqlite3"
    con = sqlite3.connect(replay)
    con.executescript(schema_sql)
    con.close()
    want = sorted(sqlite_master(django_db), key=lambda r: (r[0], r[1]))
    got = sorted(sqlite_master(replay), key=lambda r: (r[0], r[1]))
    if want != got:
        raise SystemExit("sqlite: replayed schema.sql differs from Django's sqlite_master")


# ------------------------------------------------------------ PostgreSQL


def pg_dump(bindir, url):
    return run([bindir / "pg_dump", "--schema-only", "--no-owner", "--no-privileges", url]).stdout


def pg_statements(dump):
    """Split a pg_dump into statements, without comments, SET lines, psql meta-commands."""
    statements, current = [], []
    for line in dump.splitlines():
        if not current:
            if line.strip() == "" or line.startswith("--") or line.startswith("\\"):
                continue
        current.append(line.rstrip())
        if line.rstrip().endswith(";"):
            statements.append("\n".join(current))
            current = []
    assert not current, f"unterminated statement: {current}"
    return statements


def unqualify(statement):
    # Only DDL here: no string literal mentions `public.`.
    return re.sub(r'(?<![\w."])public\.', "", statement)


def pg_schema_sql(dump):
    buckets = {"table": [], "sequence": [], "constraint": [], "index": [], "fk": []}
    for st in pg_statements(dump):
        if st.startswith("SET ") or st.startswith("SELECT pg_catalog.set_config("):
            continue
        if st.startswith("CREATE TABLE "):
            bucket = "table"
        elif st.startswith(("CREATE SEQUENCE ", "ALTER SEQUENCE ")) or re.match(
            r"ALTER TABLE \S+ ALTER COLUMN \S+ (ADD GENERATED|SET DEFAULT nextval)", st
        ):
            bucket = "sequence"
        elif st.startswith("ALTER TABLE ONLY ") and " ADD CONSTRAINT " in st:
            bucket = "fk" if " FOREIGN KEY " in st else "constraint"
        elif st.startswith(("CREATE INDEX ", "CREATE UNIQUE INDEX ")):
            bucket = "index"
        else:
            raise SystemExit(f"postgres: unexpected statement in pg_dump output:\n{st}")
        buckets[bucket].append(unqualify(st))
    out = [st for key in ("table", "sequence", "constraint", "index", "fk") for st in buckets[key]]
    text = "\n\n".join(out) + "\n"
    assert "public." not in text, "schema qualification left in postgres schema.sql"
    return text


def normalized_dump(dump):
    """pg_dump output without its random \\restrict key and comments, for comparisons."""
    return "\n".join(
        line for line in dump.splitlines() if not line.startswith(("\\restrict", "\\unrestrict", "--"))
    )


def check_pg_replay(bindir, schema_sql, django_url, tmp):
    schema_file = tmp / "pg_schema.sql"
    schema_file.write_text(schema_sql)
    psql = [bindir / "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1"]

    replay_url = pg_createdb(PG_DB_REPLAY)
    run(psql + ["-d", replay_url, "-f", schema_file])
    if normalized_dump(pg_dump(bindir, replay_url)) != normalized_dump(pg_dump(bindir, django_url)):
        raise SystemExit("postgres: replayed schema.sql dumps differently from Django's database")

    # The same statements, replayed inside another schema through search_path.
    other_url = pg_createdb(PG_DB_REPLAY_SCHEMA)
    run(psql + ["-d", other_url, "-c", "CREATE SCHEMA other"])
    env = dict(os.environ, PGOPTIONS="-c search_path=other")
    run(psql + ["-d", other_url, "-f", schema_file], env=env)
    with psycopg.connect(other_url) as con:
        counts = dict(
            con.execute(
                "SELECT n.nspname, count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname IN ('public', 'other') GROUP BY n.nspname"
            ).fetchall()
        )
    with psycopg.connect(django_url) as con:
        (want,) = con.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public'"
        ).fetchone()
    if counts.get("public", 0) != 0 or counts.get("other", 0) != want:
        raise SystemExit(f"postgres: replay under search_path=other put relations in {counts}")

    pg_dropdb(PG_DB_REPLAY)
    pg_dropdb(PG_DB_REPLAY_SCHEMA)


# --------------------------------------------------------------- MariaDB


def my_createdb(name):
    return run(["bash", MARIADB_SH, "createdb", name]).stdout.strip()


def my_connect(url):
    parts = urlsplit(url)
    return MySQLdb.connect(
        host=parts.hostname,
        port=parts.port,
        user=unquote(parts.username),
        password=unquote(parts.password),
        database=unquote(parts.path.lstrip("/")),
        charset="utf8mb4",
    )


def my_dropdb(url):
    con = my_connect(url)
    try:
        con.cursor().execute(f"DROP DATABASE IF EXISTS `{my_dbname(url)}`")
    finally:
        con.close()


def my_dbname(url):
    return unquote(urlsplit(url).path.lstrip("/"))


def my_create_tables(url):
    """{table: SHOW CREATE TABLE without its AUTO_INCREMENT=n counter}."""
    con = my_connect(url)
    try:
        cur = con.cursor()
        cur.execute(
            "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = DATABASE()"
        )
        tables = cur.fetchall()
        others = [t for t in tables if t[1] != "BASE TABLE"]
        assert not others, f"mysql: unexpected relations (views?): {others}"
        out = {}
        for (name, _type) in tables:
            cur.execute(f"SHOW CREATE TABLE `{name}`")
            (_name, ddl) = cur.fetchone()
            out[name] = re.sub(r" AUTO_INCREMENT=\d+(?= )", "", ddl).strip()
        return out
    finally:
        con.close()


def my_references(ddl):
    return set(re.findall(r"FOREIGN KEY \(.*?\) REFERENCES `([^`]+)`", ddl))


def my_schema_sql(tables, dbname):
    """CREATE TABLEs in dependency order: each after the tables it references
    (itself aside), otherwise by name, so the file replays with foreign key
    checks on."""
    pending = dict(sorted(tables.items()))
    statements = []
    while pending:
        ready = [n for n, ddl in pending.items() if not (my_references(ddl) - {n}) & pending.keys()]
        if not ready:
            raise SystemExit(f"mysql: foreign key cycle among {sorted(pending)}")
        name = ready[0]
        ddl = pending.pop(name)
        assert ";" not in ddl, f"unexpected ';' in DDL of {name}"
        statements.append(ddl + ";")
    text = "\n\n".join(statements) + "\n"
    assert f"`{dbname}`" not in text, "database name left in mysql schema.sql"
    assert "AUTO_INCREMENT=" not in text, "AUTO_INCREMENT counter left in mysql schema.sql"
    return text


def check_my_replay(schema_sql, django_url, tmp):
    schema_file = tmp / "mysql_schema.sql"
    schema_file.write_text(schema_sql)
    replay_url = my_createdb(MY_DB_REPLAY)
    parts = urlsplit(replay_url)
    with schema_file.open() as f:
        run(
            [
                "mariadb", "--no-defaults", "--protocol=tcp", f"--host={parts.hostname}", f"--port={parts.port}",
                f"--user={unquote(parts.username)}", f"--password={unquote(parts.password)}",
                "--default-character-set=utf8mb4", my_dbname(replay_url),
            ],
            stdin=f,
        )
    if my_create_tables(replay_url) != my_create_tables(django_url):
        raise SystemExit("mysql: replayed schema.sql shows other tables than Django's database")
    my_dropdb(replay_url)


# ------------------------------------------------------------------ rows

ROW_QUERIES = {
    "migrations": "SELECT app, name FROM django_migrations ORDER BY id",
    "content_types": "SELECT app_label, model FROM django_content_type ORDER BY id",
    "permissions": (
        "SELECT ct.app_label, ct.model, p.codename, p.name FROM auth_permission p"
        " JOIN django_content_type ct ON ct.id = p.content_type_id ORDER BY p.id"
    ),
}


def rows_sqlite(path):
    con = sqlite3.connect(path)
    try:
        return {key: [list(r) for r in con.execute(q)] for key, q in ROW_QUERIES.items()}
    finally:
        con.close()


def rows_postgres(url):
    with psycopg.connect(url) as con:
        return {key: [list(r) for r in con.execute(q)] for key, q in ROW_QUERIES.items()}


def rows_mysql(url):
    con = my_connect(url)
    try:
        cur = con.cursor()
        out = {}
        for key, q in ROW_QUERIES.items():
            cur.execute(q)
            out[key] = [list(r) for r in cur.fetchall()]
        return out
    finally:
        con.close()


# ------------------------------------------------------------------ main


def generate():
    with tempfile.TemporaryDirectory(prefix="dump_schema_") as tmpdir:
        tmp = Path(tmpdir)

        sqlite_db = tmp / "django.sqlite3"
        django_migrate(f"sqlite:///{sqlite_db}")
        sqlite_sql = sqlite_schema_sql(sqlite_db)
        check_sqlite_replay(sqlite_sql, sqlite_db, tmp)
        rows = rows_sqlite(sqlite_db)

        bindir = pg_bindir()
        pg_url = pg_createdb(PG_DB_DJANGO)
        django_migrate(pg_url)
        postgres_sql = pg_schema_sql(pg_dump(bindir, pg_url))
        check_pg_replay(bindir, postgres_sql, pg_url, tmp)
        if rows_postgres(pg_url) != rows:
            raise SystemExit("rows differ between SQLite and PostgreSQL after migrate")
        pg_dropdb(PG_DB_DJANGO)

        my_url = my_createdb(MY_DB_DJANGO)
        django_migrate(my_url)
        mysql_sql = my_schema_sql(my_create_tables(my_url), MY_DB_DJANGO)
        check_my_replay(mysql_sql, my_url, tmp)
        if rows_mysql(my_url) != rows:
            raise SystemExit("rows differ between SQLite and MariaDB after migrate")
        my_dropdb(my_url)

    rows_json = "{\n" + ",\n".join(
        f'  "{key}": [\n'
        + ",\n".join("    " + json.dumps(r, ensure_ascii=False) for r in rows[key])
        + "\n  ]"
        for key in ("migrations", "content_types", "permissions")
    ) + "\n}\n"
    json.loads(rows_json)  # stays valid JSON
    return {
        SCHEMA_DIR / "sqlite" / "schema.sql": sqlite_sql,
        SCHEMA_DIR / "postgres" / "schema.sql": postgres_sql,
        SCHEMA_DIR / "mysql" / "schema.sql": mysql_sql,
        SCHEMA_DIR / "rows.json": rows_json,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with schema/, write nothing")
    args = parser.parse_args()
    files = generate()
    stale = [p for p, text in files.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
    if args.check:
        for p in stale:
            print(f"out of date: {p.relative_to(REPO)}", file=sys.stderr)
        sys.exit(1 if stale else 0)
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
