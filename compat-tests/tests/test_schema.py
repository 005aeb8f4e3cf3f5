"""`unchained migrate` leaves a database exactly as `manage.py migrate` does.

For each backend: one fresh database migrated by Django, another by
`unchained migrate`; tables, columns, indexes, constraints, sequences and the
rows Django's migrate writes (django_migrations, content types, permissions)
must match, and Django must then find nothing to migrate.

This project's own tables (`unchained_*`, such as the mail outbox) are not
Django's: Django ignores them, and so do these snapshots. Its own indexes,
triggers and functions on Django's tables (the product list's, from
schema/unchained/product_list_*.sql) are left out of the comparison too, and
checked apart: exactly these, and only after `unchained migrate`.
"""
import re
import sqlite3
import subprocess

OWN = "unchained\\_%"  # LIKE pattern of this project's own tables and objects

# This project's objects on Django's tables, as (kind, name).
PRODUCT_LIST = [("index", "unchained_product_newest"), ("index", "unchained_product_published_newest"),
                ("index", "unchained_product_unpublished_by_owner"), ("trigger", "unchained_product_deleted"),
                ("trigger", "unchained_product_inserted"), ("trigger", "unchained_product_moved")]
OWN_OBJECTS = {
    "sqlite": sorted(PRODUCT_LIST),
    "postgres": sorted(PRODUCT_LIST + [
        ("trigger", "unchained_product_truncated"), ("function", "unchained_count_products"),
        ("function", "unchained_count_no_products")]),
    "mysql": sorted(PRODUCT_LIST),
}


# ------------------------------------------------------------ introspection


def _sqlite_path(url):
    assert url.startswith("sqlite:///"), url
    return url[len("sqlite:///"):]


def _normalize_sql(sql):
    return re.sub(r"\s+", " ", sql).strip() if sql else sql


def sqlite_snapshot(url):
    con = sqlite3.connect(_sqlite_path(url))
    try:
        q = lambda sql, *args: [tuple(r) for r in con.execute(sql, args)]  # noqa: E731
        tables = [r[0] for r in q(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " AND name NOT LIKE ? ESCAPE '\\' ORDER BY name", OWN
        )]
        snap = {"tables": tables, "columns": {}, "indexes": {}, "foreign_keys": {}}
        for t in tables:
            # (name, declared type, notnull, default, pk position), in column order
            snap["columns"][t] = [r[1:] for r in q(f'PRAGMA table_info("{t}")')]
            snap["indexes"][t] = sorted(
                (name, unique, origin, partial, tuple(c[2] for c in q(f'PRAGMA index_info("{name}")')))
                for _seq, name, unique, origin, partial in q(f'PRAGMA index_list("{t}")')
                if not name.startswith("unchained_")
            )
            # (referenced table, from, to, on update, on delete, match)
            snap["foreign_keys"][t] = sorted(r[2:] for r in q(f'PRAGMA foreign_key_list("{t}")'))
        # Deferrability and CHECKs only show in the DDL text itself.
        snap["ddl"] = sorted(
            (type_, name, tbl, _normalize_sql(sql))
            for type_, name, tbl, sql in q(
                "SELECT type, name, tbl_name, sql FROM sqlite_master"
                " WHERE tbl_name NOT LIKE ? ESCAPE '\\' AND name NOT LIKE ? ESCAPE '\\'", OWN, OWN
            )
        )
        snap["own"] = sorted(q(
            "SELECT type, name FROM sqlite_master WHERE tbl_name NOT LIKE ? ESCAPE '\\'"
            " AND name LIKE ? ESCAPE '\\'", OWN, OWN
        ))
        # AUTOINCREMENT counters. Django's table rebuilds (the "new__" copies)
        # leave rows with seq 0 behind, which mean the same as no row at all.
        has_seq = q("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'")
        snap["sequences"] = sorted(q(
            "SELECT name, seq FROM sqlite_sequence WHERE seq > 0 AND name NOT LIKE ? ESCAPE '\\'", OWN
        )) if has_seq else []
        snap.update(_rows(q))
        return snap
    finally:
        con.close()


def postgres_snapshot(url):
    import psycopg

    with psycopg.connect(url) as con:
        q = lambda sql, *args: [tuple(r) for r in con.execute(sql, args)]  # noqa: E731
        (schema,) = q("SELECT current_schema()")[0]
        strip = lambda s: s.replace(f"{schema}.", "") if s else s  # noqa: E731
        tables = [r[0] for r in q(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = %s AND table_type = 'BASE TABLE' AND table_name NOT LIKE %s"
            " ORDER BY table_name", schema, OWN
        )]
        snap = {"tables": tables, "columns": {}, "indexes": {}, "constraints": {}}
        for t in tables:
            snap["columns"][t] = q(
                "SELECT column_name, data_type, character_maximum_length, numeric_precision,"
                " numeric_scale, is_nullable, column_default, is_identity, identity_generation"
                " FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
                " ORDER BY ordinal_position", schema, t
            )
            snap["indexes"][t] = sorted(
                (name, strip(indexdef)) for name, indexdef in q(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = %s"
                    " AND indexname NOT LIKE %s", schema, t, OWN,
                )
            )
            # name, type (p primary, u unique, f foreign, c check), definition incl. DEFERRABLE
            snap["constraints"][t] = sorted(
                (name, contype, strip(definition)) for name, contype, definition in q(
                    "SELECT c.conname, c.contype::text, pg_get_constraintdef(c.oid)"
                    " FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid"
                    " JOIN pg_namespace n ON n.oid = r.relnamespace"
                    " WHERE n.nspname = %s AND r.relname = %s", schema, t,
                )
            )
        snap["sequences"] = q(
            "SELECT sequencename, data_type::text, start_value, min_value, max_value, increment_by,"
            " cycle, cache_size, last_value FROM pg_sequences WHERE schemaname = %s"
            " AND sequencename NOT LIKE %s ORDER BY sequencename", schema, OWN
        )
        snap["own"] = sorted(q(
            "SELECT 'index', indexname::text FROM pg_indexes WHERE schemaname = %s AND indexname LIKE %s"
            " AND tablename NOT LIKE %s"
            " UNION ALL SELECT 'trigger', t.tgname::text FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND NOT t.tgisinternal"
            " UNION ALL SELECT 'function', p.proname::text FROM pg_proc p"
            " JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %s",
            schema, OWN, OWN, schema, schema,
        ))
        snap.update(_rows(q))
        return snap


def mysql_snapshot(url):
    """information_schema of the database (columns with their types,
    collations and defaults, indexes, constraints with their rules, CHECK
    clauses, table options and AUTO_INCREMENT counters) and SHOW CREATE
    TABLE of each table, the MariaDB counterpart of pg_dump."""
    from live import mysql_connect

    con = mysql_connect(url)
    try:
        cur = con.cursor()

        def q(sql, *args):
            cur.execute(sql, args or None)
            return [tuple(r) for r in cur.fetchall()]

        tables = [r[0] for r in q(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' AND table_name NOT LIKE %s"
            " ORDER BY table_name", OWN
        )]
        snap = {"tables": tables, "table_options": {}, "columns": {}, "indexes": {}, "constraints": {},
                "checks": {}, "create_table": {}}
        for t in tables:
            snap["table_options"][t] = q(
                "SELECT engine, table_collation, row_format, create_options, auto_increment"
                " FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = %s", t
            )
            # COLUMN_KEY is left out: it says whether an index starts with the
            # column, which this project's own indexes change (compared apart).
            snap["columns"][t] = q(
                "SELECT column_name, column_type, is_nullable, column_default, extra,"
                " character_set_name, collation_name, generation_expression"
                " FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = %s"
                " ORDER BY ordinal_position", t
            )
            snap["indexes"][t] = q(
                "SELECT index_name, non_unique, seq_in_index, column_name, sub_part, index_type"
                " FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = %s"
                " AND index_name NOT LIKE %s ORDER BY index_name, seq_in_index", t, OWN
            )
            snap["constraints"][t] = q(
                "SELECT tc.constraint_name, tc.constraint_type, k.ordinal_position, k.column_name,"
                " k.referenced_table_name, k.referenced_column_name, r.update_rule, r.delete_rule"
                " FROM information_schema.table_constraints tc"
                " LEFT JOIN information_schema.key_column_usage k ON k.constraint_schema = tc.constraint_schema"
                " AND k.table_name = tc.table_name AND k.constraint_name = tc.constraint_name"
                " LEFT JOIN information_schema.referential_constraints r"
                " ON r.constraint_schema = tc.constraint_schema AND r.table_name = tc.table_name"
                " AND r.constraint_name = tc.constraint_name"
                " WHERE tc.table_schema = DATABASE() AND tc.table_name = %s"
                " ORDER BY tc.constraint_name, tc.constraint_type, k.ordinal_position", t
            )
            snap["checks"][t] = q(
                "SELECT constraint_name, check_clause FROM information_schema.check_constraints"
                " WHERE constraint_schema = DATABASE() AND table_name = %s ORDER BY constraint_name", t
            )
            (_name, ddl), = q(f"SHOW CREATE TABLE `{t}`")
            # This project's indexes are compared apart (a KEY line each).
            snap["create_table"][t] = [line for line in ddl.splitlines() if "`unchained_" not in line]
        snap["own"] = sorted(q(
            "SELECT 'index', index_name FROM information_schema.statistics WHERE table_schema = DATABASE()"
            " AND index_name LIKE %s AND table_name NOT LIKE %s AND seq_in_index = 1"
            " UNION ALL SELECT 'trigger', trigger_name FROM information_schema.triggers"
            " WHERE trigger_schema = DATABASE()"
            " UNION ALL SELECT 'function', routine_name FROM information_schema.routines"
            " WHERE routine_schema = DATABASE()",
            OWN, OWN,
        ))
        snap.update(_rows(q))
        return snap
    finally:
        con.close()


def _rows(q):
    return {
        "migrations": sorted(q("SELECT app, name FROM django_migrations")),
        "content_types": q("SELECT id, app_label, model FROM django_content_type ORDER BY id"),
        "permissions": q(
            "SELECT p.id, ct.app_label, ct.model, p.codename, p.name FROM auth_permission p"
            " JOIN django_content_type ct ON ct.id = p.content_type_id ORDER BY p.id"
        ),
    }


def snapshot(backend, url):
    return {"sqlite": sqlite_snapshot, "postgres": postgres_snapshot, "mysql": mysql_snapshot}[backend](url)


def pg_dump_schema(pg_bindir, url):
    out = subprocess.run(
        [str(pg_bindir / "pg_dump"), "--schema-only", "--no-owner", "--no-privileges",
         "--exclude-table=unchained_*", url],
        check=True, capture_output=True, text=True,
    ).stdout
    text = "\n".join(
        line for line in out.splitlines() if not line.startswith(("--", "\\restrict", "\\unrestrict"))
    )
    # This project's functions, triggers and indexes (compared apart).
    blocks = (block.strip() for block in text.split("\n\n"))
    return "\n\n".join(block for block in blocks if block and "unchained_" not in block)


def assert_same(expected, actual, what):
    """Compare two snapshots key by key, table by table, for readable failures."""
    assert expected.keys() == actual.keys()
    for key in expected:
        want, got = expected[key], actual[key]
        if isinstance(want, dict):
            assert sorted(want) == sorted(got), f"{what}: {key}: different tables"
            for table in want:
                assert got[table] == want[table], f"{what}: {key} of {table} differ"
        else:
            assert got == want, f"{what}: {key} differ"


# ------------------------------------------------------------------ tests


def test_unchained_migrate_matches_django(db_backend, fresh_db, run_manage, run_unchained, request):
    django_url = fresh_db("django")
    run_manage(django_url, "migrate", "--noinput")
    expected = snapshot(db_backend, django_url)

    ours_url = fresh_db("unchained")
    run_unchained(ours_url, "migrate")
    actual = snapshot(db_backend, ours_url)

    assert expected.pop("own") == []
    assert actual.pop("own") == OWN_OBJECTS[db_backend]
    assert_same(expected, actual, "unchained migrate vs manage.py migrate")
    if db_backend == "postgres":
        pg_bindir = request.getfixturevalue("pg_bindir")
        assert pg_dump_schema(pg_bindir, ours_url) == pg_dump_schema(pg_bindir, django_url)

    # Django agrees there is nothing left to do on the database we migrated.
    run_manage(ours_url, "migrate", "--check")
    run_manage(ours_url, "makemigrations", "--check", "--dry-run")


def test_unchained_migrate_is_a_no_op_on_a_django_database(db_backend, fresh_db, run_manage, run_unchained):
    url = fresh_db("django")
    run_manage(url, "migrate", "--noinput")
    before = snapshot(db_backend, url)
    run_unchained(url, "migrate")
    run_unchained(url, "migrate")
    after = snapshot(db_backend, url)
    # Django's tables as they were, with the product list's objects added.
    assert before.pop("own") == []
    assert after.pop("own") == OWN_OBJECTS[db_backend]
    assert_same(before, after, "after unchained migrate on a Django database")
