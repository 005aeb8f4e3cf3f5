"""Fixtures shared by the compat tests: the reference Django project, the
`unchained` binary, and fresh databases on SQLite, PostgreSQL and MariaDB
(the MySQL back end, `mysql`).

Run from the repository root (or from compat-tests/):

    compat-tests/setup.sh
    compat-tests/.venv/bin/pytest compat-tests/tests

Environment knobs:
    COMPAT_DB_BACKENDS=sqlite      only these backends (comma-separated; default sqlite,postgres,mysql)
    UNCHAINED_BIN=/path/unchained  use this binary instead of building target/release/unchained
    COMPAT_KEEP_DBS=1              do not drop the PostgreSQL and MariaDB databases a test created
    PGDATA_DIR, PGPORT             the PostgreSQL test cluster's (scripts/postgres.sh)
    MARIADB_DATA_DIR, MARIADB_PORT the MariaDB test server's (scripts/mariadb.sh)

PostgreSQL and MariaDB are started once per session (scripts/postgres.sh
start, scripts/mariadb.sh start: each a no-op when already running), only
when a test of that back end runs; each test database is made with the
script's `createdb` and dropped afterwards.
"""
import itertools
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent / "tests"
# The helpers the test modules share (live.py), for the fixtures here too.
sys.path.insert(0, str(TESTS_DIR))
import live  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
COMPAT_DIR = REPO_ROOT / "compat-tests"
REFPROJECT_DIR = COMPAT_DIR / "refproject"
POSTGRES_SH = REPO_ROOT / "scripts" / "postgres.sh"
MARIADB_SH = REPO_ROOT / "scripts" / "mariadb.sh"

# The SECRET_KEY both sides share in tests.
TEST_SECRET_KEY = "Xq3vTb9LmZ0pR7kW2yH5sD8fJ1nC4gE6uA0oI9tB3cQ="

ALL_BACKENDS = ("sqlite", "postgres", "mysql")


def _enabled_backends():
    raw = os.environ.get("COMPAT_DB_BACKENDS", "")
    chosen = [b.strip() for b in raw.split(",") if b.strip()]
    return chosen or list(ALL_BACKENDS)


class CommandFailed(AssertionError):
    pass


def _run(cmd, *, env=None, cwd=None, check=True, timeout=600, input=None):
    """subprocess.run with captured text output; a failure shows that output."""
    proc = subprocess.run(
        [str(c) for c in cmd],
        env=env,
        cwd=cwd,
        input=input,
        text=True,
        capture_output=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise CommandFailed(
            f"command failed with exit code {proc.returncode}: {' '.join(map(str, cmd))}\n"
            f"--- stdout ---\n{proc.stdout[-8000:]}\n--- stderr ---\n{proc.stderr[-8000:]}"
        )
    return proc


def _env(database_url, extra=None):
    return live.process_env(database_url, TEST_SECRET_KEY, {"PYTHONDONTWRITEBYTECODE": "1", **(extra or {})})


@pytest.fixture(scope="module")
def _sites():
    """The module's sites, one per back end (and kind), built on first use
    and torn down after the module (live.BackendSites)."""
    with live.BackendSites() as sites:
        yield sites


# ------------------------------------------------------------------ paths


@pytest.fixture(scope="session")
def repo_root():
    return REPO_ROOT


@pytest.fixture(scope="session")
def refproject_dir():
    return REFPROJECT_DIR


@pytest.fixture(scope="session")
def venv_python():
    candidate = COMPAT_DIR / ".venv" / "bin" / "python"
    return candidate if candidate.exists() else Path(sys.executable)


# ------------------------------------------------------------------ binaries


def _cargo_target_dir():
    proc = _run(["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=REPO_ROOT)
    return Path(json.loads(proc.stdout)["target_directory"])


def _cargo_build(args, artifact):
    # cargo itself knows when the artifact is stale; this is quick when it is not.
    _run(["cargo", "build", "--release", *args], cwd=REPO_ROOT, timeout=3600)
    path = _cargo_target_dir() / "release" / artifact
    assert path.exists(), f"cargo build succeeded but {path} does not exist"
    return path


@pytest.fixture(scope="session")
def unchained_bin():
    override = os.environ.get("UNCHAINED_BIN")
    if override:
        return Path(override)
    return _cargo_build(["--bin", "unchained"], "unchained")


@pytest.fixture(scope="session")
def probe_bin():
    return _cargo_build(["--example", "compat_probe"], Path("examples") / "compat_probe")


# ------------------------------------------------------------------ databases


@pytest.fixture(scope="session")
def pg_base_url():
    """Starts the test cluster (scripts/postgres.sh) once; its base URL without a database."""
    return _run(["bash", POSTGRES_SH, "start"], timeout=900).stdout.strip()


@pytest.fixture(scope="session")
def pg_bindir():
    return Path(_run(["bash", POSTGRES_SH, "bindir"]).stdout.strip())


@pytest.fixture(scope="session")
def my_base_url():
    """Starts the test MariaDB server (scripts/mariadb.sh) once; its base URL without a database."""
    return live.mariadb_base_url()


@pytest.fixture(params=ALL_BACKENDS)
def db_backend(request):
    if request.param not in _enabled_backends():
        pytest.skip(f"{request.param} disabled by COMPAT_DB_BACKENDS")
    return request.param


_db_counter = itertools.count(1)


@pytest.fixture
def fresh_db(db_backend, tmp_path, request):
    """Factory: each call returns the DATABASE_URL of a new, empty database."""
    created = []

    def make(label="db"):
        n = next(_db_counter)
        if db_backend == "sqlite":
            path = tmp_path / f"{label}{n}.sqlite3"
            assert not path.exists()
            return f"sqlite:///{path}"  # tmp_path is absolute: sqlite:////tmp/...
        name = f"compat_{os.getpid()}_{n}_{uuid.uuid4().hex[:8]}"
        if db_backend == "mysql":
            request.getfixturevalue("my_base_url")
            url = live.mariadb_createdb(name)
        else:
            request.getfixturevalue("pg_base_url")
            url = _run(["bash", POSTGRES_SH, "createdb", name]).stdout.strip()
        created.append(name)
        return url

    yield make

    if created and not os.environ.get("COMPAT_KEEP_DBS"):
        if db_backend == "mysql":
            live.mysql_admin(request.getfixturevalue("my_base_url"),
                             *(f"DROP DATABASE IF EXISTS `{name}`" for name in created))
            return
        import psycopg

        base = request.getfixturevalue("pg_base_url")
        with psycopg.connect(f"{base}/postgres", autocommit=True) as con:
            for name in created:
                con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ------------------------------------------------------------------ commands


@pytest.fixture(scope="session")
def run_manage(venv_python):
    """run_manage(database_url, *args, env=None, check=True, timeout=300, input=None)

    Runs the reference project's manage.py with the venv python, that
    DATABASE_URL and the test SECRET_KEY; returns the CompletedProcess (text).
    `env` adds (or, with None values, removes) environment variables.
    """

    def run_manage(database_url, *args, env=None, check=True, timeout=300, input=None):
        return _run(
            [venv_python, REFPROJECT_DIR / "manage.py", *args],
            env=_env(database_url, env),
            cwd=REFPROJECT_DIR,
            check=check,
            timeout=timeout,
            input=input,
        )

    return run_manage


@pytest.fixture(scope="session")
def run_unchained(unchained_bin):
    """run_unchained(database_url, *args, env=None, check=True, timeout=300, input=None)

    Runs the `unchained` binary with that DATABASE_URL and the test SECRET_KEY
    (working directory: the repository root); returns the CompletedProcess.
    """

    def run_unchained(database_url, *args, env=None, check=True, timeout=300, input=None):
        return _run(
            [unchained_bin, *args],
            env=_env(database_url, env),
            cwd=REPO_ROOT,
            check=check,
            timeout=timeout,
            input=input,
        )

    return run_unchained


# ------------------------------------------------------------------ the feature matrix
#
#     @pytest.mark.matrix("session", "unchained→Django")
#     def test_x(db_backend): ...
#
# A test carrying the marker fills one cell of a table printed at the end of
# the run: feature × direction × database (the `db_backend` parameter, "-"
# without one; a `django_release` parameter is put before the feature).
# Without a direction in the marker, the test's `direction` parameter is
# used. A cell is FAIL when any phase of any test in it failed
# (a fixture error too), SKIP when all were skipped, else PASS.

_MATRIX_KEY = pytest.StashKey[dict]()
_MATRIX_RANK = {"PASS": 0, "SKIP": -1, "FAIL": 1}


def _matrix_cell(item):
    marker = item.get_closest_marker("matrix")
    if marker is None:
        return None
    params = getattr(getattr(item, "callspec", None), "params", {})
    feature = marker.args[0] if marker.args else marker.kwargs.get("feature")
    direction = marker.args[1] if len(marker.args) > 1 else marker.kwargs.get("direction")
    if direction is None:
        direction = params.get("direction", "-")
    if "django_release" in params:  # test_releases.py: a row per release
        feature = f"Django {params['django_release']}: {feature}"
    return str(feature), str(direction), str(params.get("db_backend", "-"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    cell = _matrix_cell(item)
    if cell is None:
        return
    if report.failed:
        result = "FAIL"
    elif report.skipped:
        result = "SKIP"
    elif report.when == "call":
        result = "PASS"
    else:
        return  # a passing setup or teardown says nothing on its own
    cells = item.config.stash.setdefault(_MATRIX_KEY, {})
    old = cells.get(cell)
    if old is None or old == "SKIP" or _MATRIX_RANK[result] > _MATRIX_RANK[old]:
        cells[cell] = result


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    cells = config.stash.get(_MATRIX_KEY, None)
    if not cells:
        return
    databases = [b for b in ALL_BACKENDS if any(c[2] == b for c in cells)]
    databases += sorted({c[2] for c in cells} - set(databases))
    rows = []
    for feature, direction, _ in cells:
        if (feature, direction) not in rows:
            rows.append((feature, direction))
    header = ["feature", "direction", *databases]
    table = [[f, d, *(cells.get((f, d, db), "") for db in databases)] for f, d in rows]
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]

    def line(row):
        return "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()

    terminalreporter.write_sep("=", "interop matrix")
    terminalreporter.write_line(line(header))
    terminalreporter.write_line(line(["-" * w for w in widths]))
    for row in table:
        terminalreporter.write_line(line(row))
