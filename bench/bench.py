"""The benchmark of issue 9: unchained beside the reference Django project,
on one database, at two catalog sizes, on SQLite, PostgreSQL and MariaDB.

    compat-tests/.venv/bin/python bench/bench.py              # the full run, writes BENCHMARKS.md
    compat-tests/.venv/bin/python bench/bench.py --quick      # smoke run (~1 min), writes target/bench-quick.md

Options: --seconds N (each measured wrk run, default 8, after a 2 s
warm-up run: --warmup), --only sqlite|postgres|mysql, --sizes 1000,100000,
--output FILE, --unchained BIN (a built binary; otherwise
`cargo build --release --bin unchained` runs first and
target/release/unchained is used). --quick is 1,000 products on SQLite
only, 1 s runs, 32 connections, logins in the background at 4/s only.

For each database (a SQLite file in a temporary folder; a new database on
the PostgreSQL test server of scripts/postgres.sh, or on the MariaDB test
server of scripts/mariadb.sh, which honours MARIADB_PORT and
MARIADB_DATA_DIR to use a server already running; dropped afterwards unless
COMPAT_KEEP_DBS is set) and each catalog size:

1. `unchained migrate` on the empty database, then plain SQL from this
   script in one transaction (executemany on SQLite, COPY on PostgreSQL,
   multi-row INSERTs on MariaDB: all fire row triggers), the values as
   Django writes them (on MariaDB naive UTC datetimes, 0/1): 10 owners with one password (hashed once with
   Django's make_password), 3 categories, the products spread over the
   owners, half of each owner's published, created_at spread over time in
   an order unlike the ids, 1 to 3 versions each (2 on average, the last
   current). Then the sequences are set (PostgreSQL) and ANALYZE runs
   (ANALYZE TABLE on MariaDB).
2. The database is served by `unchained serve` and by the reference project
   (compat-tests/refproject) under gunicorn with 2 sync workers, both on
   127.0.0.1, with the same SECRET_KEY and MEDIA_ROOT (live.py's LiveServer
   and Gunicorn).
3. On each server, side by side, `wrk -t2 -cC --latency --timeout 30s` for
   --seconds after a warm-up run, C = 32 and 64: GET / (the list, page 1)
   and GET /products/<pk>/ (one of the owner's products) with the cookies of
   a real login of owner 1, GET /users/login/ anonymous: requests/s, p50,
   p99. A non-2xx answer (or a page that does not answer 200 before and
   after the run) stops the bench with wrk's output. After each run the
   bench waits until the server has answered what the run left queued.
   Then the median of 5 whole logins one after another (GET the login
   page, POST, expect 302).
   On PostgreSQL and MariaDB at 1,000 products, the queries each of the
   two logged-in pages runs (queries_per_page: PostgreSQL's own count of
   committed transactions, MariaDB's count of statements sent by clients,
   `Questions`, over 200 requests one after another, less an idle window).
4. At 1,000 products, logins under load (unchained, then Django for
   reference): GET / at 32 connections for --seconds while a background
   thread offers whole logins at a fixed open-loop schedule (4/s, 20/s;
   at most 64 in flight, 30 s socket timeout each): the list's p99 without
   (the run of step 3) and with the logins, and the logins offered,
   answered 302, answered 503 (a server may refuse when its hashing queue
   is full), failed otherwise, and the slowest answer, timed from the
   moment the schedule offered it.
5. Resident memory after the load: unchained's VmRSS and VmHWM, and
   Django's summed over the gunicorn master and its workers (found by
   their parent pid in /proc); the proportional set sizes beside them.

Prints the report (Markdown) and writes it to BENCHMARKS.md (--quick:
target/bench-quick.md): the machine, the command, the git commit, the
figures, and the targets of issue 9, each met or NOT met with its numbers.
Progress goes to stderr.

Needs: the compat-tests virtualenv (Django 5.2, gunicorn, psycopg,
mysqlclient: compat-tests/requirements.txt), `wrk` (apt-get install wrk),
and for PostgreSQL and MariaDB the test servers of scripts/postgres.sh and
scripts/mariadb.sh (started when needed).
"""
import argparse
import concurrent.futures
import datetime
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "compat-tests" / "tests"))
from live import POSTGRES_SH, Browser, Database, Gunicorn, LiveServer, ModuleDatabase, form_token, process_env  # noqa: E402

MARIADB_SH = REPO / "scripts" / "mariadb.sh"
BACKENDS = ("sqlite", "postgres", "mysql")

PYTHON = REPO / "compat-tests" / ".venv" / "bin" / "python"
REFPROJECT = REPO / "compat-tests" / "refproject"
SECRET_KEY = "bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz-ABCD"
PASSWORD = "Bench-pass-2026!"
OWNERS = [f"owner{n}@example.com" for n in range(1, 11)]  # users 1..10; the bench user is owner 1
CATEGORIES = 3
DJANGO_WORKERS = 2
LOGIN_PATH = "/users/login/"
LOGIN_SAMPLES = 5
LOGIN_THREADS = 64  # logins in flight at most in the login-load mode
LOGIN_TIMEOUT = 30  # seconds, each request of a background login
WRK_TIMEOUT = "30s"
LIST, DETAIL, LOGIN_PAGE = "`GET /` (list, page 1)", "`GET /products/<pk>/` (detail)", "`GET /users/login/` (anonymous)"
SIDES = ("django", "unchained")


def log(message):
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the catalog


def password_hash():
    """PASSWORD hashed by Django's make_password with its default hashers."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure()
        django.setup()
    from django.contrib.auth.hashers import make_password

    return make_password(PASSWORD)


def catalog(size, hashed):
    """The rows to seed, as tables of tuples (plain Python values; datetimes
    aware UTC): {table: (columns, rows)}, in insertion order."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    users = [(n, hashed, None, False, "", "", False, True, now, email, None, None, None, None)
             for n, email in enumerate(OWNERS, 1)]
    categories = [(n, f"Категория {n}", f"Описание категории {n}") for n in range(1, CATEGORIES + 1)]
    products, versions = [], []
    for i in range(1, size + 1):
        # A prime step over the size: every product a different minute, in an order unlike the ids.
        created = now - datetime.timedelta(minutes=(i * 7919) % size, seconds=i % 60)
        owner = (i - 1) % len(OWNERS) + 1
        published = (i - 1) // len(OWNERS) % 2 == 0  # half of each owner's products
        price = Decimal(100 + i % 5000) + Decimal("0.50")
        products.append((i, f"Товар {i}", f"Описание товара {i}. " * 8, None, price, created, created,
                         published, (i - 1) % CATEGORIES + 1, owner))
        count = 1 + i % 3
        versions.extend((len(versions) + 1, n, f"v{n}", n == count, i) for n in range(1, count + 1))
    return {
        "users_user": ("id, password, last_login, is_superuser, first_name, last_name, is_staff, is_active, "
                       "date_joined, email, avatar, phone, country, token", users),
        "catalog_category": ("id, name, description", categories),
        "catalog_product": ("id, name, description, image, price, created_at, updated_at, is_moderated, "
                            "category_id, owner_id", products),
        "catalog_version": ("id, version_number, version_name, is_current, product_id", versions),
    }


def sqlite_value(value):
    """As Django stores it on SQLite: naive UTC text datetimes, 0/1, decimals as text."""
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.timezone.utc).replace(tzinfo=None).isoformat(" ")
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return value


def seed_sqlite(path, tables):
    import sqlite3

    con = sqlite3.connect(path, timeout=30)
    try:
        with con:  # one transaction
            for table, (columns, rows) in tables.items():
                marks = ", ".join("?" * len(columns.split(",")))
                con.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})",
                                ([sqlite_value(v) for v in row] for row in rows))
        con.execute("ANALYZE")
        con.commit()
    finally:
        con.close()


def seed_postgres(url, tables):
    import psycopg

    with psycopg.connect(url) as con:  # one transaction, committed on leaving
        with con.cursor() as cur:
            for table, (columns, rows) in tables.items():
                with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            for table in tables:
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("ANALYZE")


def mysql_connect(url, database=True):
    """A mysqlclient connection to a mysql:// URL (its database, or none),
    utf8mb4 as Django connects."""
    import MySQLdb

    parts = urllib.parse.urlsplit(url)
    kwargs = {"host": parts.hostname or "127.0.0.1", "port": parts.port or 3306,
              "user": urllib.parse.unquote(parts.username or ""),
              "password": urllib.parse.unquote(parts.password or ""), "charset": "utf8mb4"}
    if database:
        kwargs["database"] = urllib.parse.unquote(parts.path.lstrip("/"))
    return MySQLdb.connect(**kwargs)


def mysql_value(value):
    """As Django stores it on MySQL/MariaDB with USE_TZ: naive UTC datetimes, 0/1."""
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    if isinstance(value, bool):
        return int(value)
    return value


def seed_mysql(url, tables):
    con = mysql_connect(url)
    try:
        cur = con.cursor()
        # One transaction. mysqlclient's executemany sends an INSERT of
        # this form as multi-row INSERTs of up to 64 KiB each.
        for table, (columns, rows) in tables.items():
            marks = ", ".join(["%s"] * len(columns.split(",")))
            cur.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})",
                            [tuple(mysql_value(v) for v in row) for row in rows])
        con.commit()
        cur.execute(f"ANALYZE TABLE {', '.join(tables)}")
        cur.fetchall()
    finally:
        con.close()


def seed(database, size, hashed):
    start = time.monotonic()
    log(f"seeding {size} products on {database.backend} ...")
    tables = catalog(size, hashed)
    if database.backend == "sqlite":
        seed_sqlite(database.path, tables)
    elif database.backend == "mysql":
        seed_mysql(database.url, tables)
    else:
        seed_postgres(database.url, tables)
    counts = ", ".join(f"{len(rows)} {table}" for table, (_, rows) in tables.items())
    log(f"seeded {size} products on {database.backend} ({counts}) in {time.monotonic() - start:.1f} s")


class _Fixtures:
    """What live.ModuleDatabase asks of a pytest request: the test cluster's URL."""

    def __init__(self, pg_base_url):
        self.pg_base_url = pg_base_url

    def getfixturevalue(self, name):
        assert name == "pg_base_url", name
        return self.pg_base_url


class SqlDatabase(Database):
    """live.Database, and on a mysql:// URL through mysqlclient (%s placeholders too)."""

    def _connect(self):
        if self.url.startswith("mysql://"):
            return mysql_connect(self.url)
        return super()._connect()


class MySqlDatabase:
    """A new empty utf8mb4 database on the MariaDB test server of
    scripts/mariadb.sh (started unless running; MARIADB_PORT and
    MARIADB_DATA_DIR name another), dropped by `drop()` unless
    COMPAT_KEEP_DBS is set: what live.ModuleDatabase is for the others."""

    backend = "mysql"

    def __init__(self, label):
        self.name = f"bench_{label}_{os.getpid()}"
        self.url = subprocess.run(["bash", str(MARIADB_SH), "createdb", self.name], check=True,
                                  capture_output=True, text=True, timeout=900).stdout.strip()
        self.db = SqlDatabase(self.url)

    def drop(self):
        if not os.environ.get("COMPAT_KEEP_DBS"):
            con = mysql_connect(self.url, database=False)
            try:
                con.cursor().execute(f"DROP DATABASE IF EXISTS `{self.name}`")
            finally:
                con.close()


def new_database(backend, size, workdir, cleanup):
    """A new empty database: live.ModuleDatabase, or MySqlDatabase (a
    PostgreSQL or MariaDB one is dropped on cleanup)."""
    if backend == "mysql":
        database = MySqlDatabase(size)
        cleanup.callback(database.drop)
        return database
    pg_base_url = None
    if backend == "postgres":
        pg_base_url = subprocess.run(["bash", str(POSTGRES_SH), "start"], check=True, capture_output=True,
                                     text=True, timeout=900).stdout.strip()
    database = ModuleDatabase(_Fixtures(pg_base_url), backend, workdir, f"bench_{size}")
    cleanup.callback(database.drop)
    return database


# ---------------------------------------------------------------- servers


class DjangoServer(Gunicorn):
    """live.Gunicorn with DJANGO_WORKERS sync workers."""

    def command(self):
        cmd = super().command()
        cmd[cmd.index("--workers") + 1] = str(DJANGO_WORKERS)
        return cmd


def start_servers(unchained_bin, database, workdir, cleanup):
    """{side: server}, both serving `database`, stopped on cleanup."""
    extra = {"EMAIL_BACKEND": "console", "MEDIA_ROOT": str(workdir / "media"), "DEBUG": "False"}
    # Neither side writes a line per request: gunicorn keeps no access log
    # unless told to, and unchained's (on by default) is turned off to match.
    # Its cost on the cheapest page is in the README (ACCESS_LOG).
    servers = {
        "unchained": LiveServer(unchained_bin, database.url, SECRET_KEY, env={**extra, "ACCESS_LOG": "False"},
                                log_path=str(workdir / "unchained.log")),
        "django": DjangoServer(PYTHON, REFPROJECT, database.url, SECRET_KEY, env=extra,
                               log_path=str(workdir / "gunicorn.log")),
    }
    for server in servers.values():
        server.start()
        cleanup.callback(server.stop)
    return servers


def migrate(unchained_bin, database):
    env = process_env(database.url, SECRET_KEY)
    subprocess.run([str(unchained_bin), "migrate"], env=env, cwd=REPO, check=True, stdout=subprocess.DEVNULL,
                   timeout=300)


# ---------------------------------------------------------------- logins


def log_in(port, email, timeout=60):
    """A whole login as a browser makes it: the login page for its CSRF
    token, then the POST. (browser, the last response)."""
    browser = Browser("127.0.0.1", port, timeout=timeout)
    page = browser.get(LOGIN_PATH)
    if page.status != 200:
        return browser, page
    answer = browser.post(LOGIN_PATH, {"csrfmiddlewaretoken": form_token(page.text), "username": email,
                                       "password": PASSWORD})
    return browser, answer


def session_cookie(server, email=OWNERS[0]):
    """The Cookie header of a logged-in browser."""
    browser, answer = log_in(server.port, email)
    if answer.status != 302 or "sessionid" not in browser.cookies:
        raise SystemExit(f"login of {email} on {server.name} failed: {answer!r}\n{answer.text[:2000]}\n"
                         f"{server.log_text()}")
    return "; ".join(f"{k}={v}" for k, v in browser.cookies.items())


def login_median(server):
    """Median seconds of LOGIN_SAMPLES whole logins one after another."""
    times = []
    for n in range(LOGIN_SAMPLES):
        start = time.perf_counter()
        session_cookie(server, OWNERS[n % len(OWNERS)])
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@dataclass
class LoginLoad:
    rate: int
    listing: "Wrk"
    offered: int = 0
    found: int = 0  # answered 302
    refused: int = 0  # answered 503
    failures: Counter = field(default_factory=Counter)  # anything else: status or exception name
    slowest: float = 0.0  # seconds from the offer to the answer

    @property
    def failed(self):
        return sum(self.failures.values())


def timed_login(port, email, offered_at):
    """(outcome: the status of the answer or the exception's name, seconds since offered_at)."""
    try:
        outcome = log_in(port, email, timeout=LOGIN_TIMEOUT)[1].status
    except Exception as e:  # noqa: BLE001 (any failure is counted, none stops the run)
        outcome = type(e).__name__
    return outcome, time.monotonic() - offered_at


def with_background_logins(port, rate, seconds, run):
    """Calls run() while a thread offers `rate` whole logins a second for
    `seconds`, each at its own time on a fixed schedule whatever became of
    the ones before (at most LOGIN_THREADS in flight; the rest wait for a
    thread, their wait counted). Returns (run's result, the logins'
    outcomes: [(outcome, seconds)], how many got no answer in time)."""
    pool = concurrent.futures.ThreadPoolExecutor(LOGIN_THREADS, thread_name_prefix="login")
    futures, stop = [], threading.Event()

    def offer():
        start = time.monotonic()
        for k in range(round(rate * seconds)):
            at = start + k / rate
            if stop.wait(max(0.0, at - time.monotonic())):
                return
            futures.append(pool.submit(timed_login, port, OWNERS[k % len(OWNERS)], at))

    scheduler = threading.Thread(target=offer, name="login-schedule")
    scheduler.start()
    try:
        result = run()
    except BaseException:  # stop offering, leave the logins in flight to their timeouts
        stop.set()
        scheduler.join()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    scheduler.join()
    done, pending = concurrent.futures.wait(futures, timeout=2 * LOGIN_TIMEOUT + 10)
    pool.shutdown(wait=False, cancel_futures=True)
    return result, [f.result() for f in done], len(pending)


def login_load(server, rate, seconds, cookie):
    listing, outcomes, unanswered = with_background_logins(
        server.port, rate, seconds, lambda: wrk(server, "/", 32, seconds, cookie))
    load = LoginLoad(rate, listing, offered=len(outcomes) + unanswered)
    for outcome, took in outcomes:
        if outcome == 302:
            load.found += 1
        elif outcome == 503:
            load.refused += 1
        else:
            load.failures[str(outcome)] += 1
        load.slowest = max(load.slowest, took)
    if unanswered:
        load.failures["no answer in time"] += unanswered
    settle(server)
    return load


# ---------------------------------------------------------------- wrk


@dataclass
class Wrk:
    rps: float
    p50: float  # seconds
    p99: float
    requests: int
    socket_errors: str = ""  # wrk's "Socket errors" line, when it printed one


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_wrk(out):
    def latency(percent):
        m = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s|m|h)\s*$", out, re.M)
        return float(m.group(1)) * _UNITS[m.group(2)]

    errors = re.search(r"Socket errors: (.*)", out)
    return Wrk(rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), p50=latency(50), p99=latency(99),
               requests=int(re.search(r"(\d+) requests in", out).group(1)),
               socket_errors=errors.group(1) if errors else "")


def expect_200(server, path, cookie):
    headers = {"Cookie": cookie} if cookie else {}
    answer = Browser("127.0.0.1", server.port).get(path, headers=headers)
    if answer.status != 200:
        raise SystemExit(f"{server.name} answered {answer!r} to GET {path}:\n{answer.text[:2000]}\n"
                         f"{server.log_text()}")


def settle(server, limit=60):
    """Waits until the server has worked off what a finished run left queued
    (gunicorn's sync workers still answer the connections wrk closed at its
    end): until a GET of the login page answers within 0.5 s, at most
    `limit` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        start = time.monotonic()
        try:
            Browser("127.0.0.1", server.port, timeout=limit).get(LOGIN_PATH)
        except OSError:
            pass
        if time.monotonic() - start < 0.5:
            return
    log(f"  {server.name} still busy {limit} s after the run")


def wrk_once(server, path, conns, seconds, cookie):
    cmd = ["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--latency", "--timeout", WRK_TIMEOUT,
           f"http://127.0.0.1:{server.port}{path}"]
    if cookie:
        cmd[1:1] = ["-H", f"Cookie: {cookie}"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=seconds + 120).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"GET {path} on {server.name} did not always answer 2xx:\n{out}\n{server.log_text()}")
    settle(server)
    return out


def wrk(server, path, conns, seconds, cookie=None, warmup=0):
    """GET path under `conns` connections for `seconds`, after a warm-up run.
    The page must answer 200 before and after (wrk alone counts a redirect
    to the login page as a success)."""
    expect_200(server, path, cookie)
    if warmup:
        wrk_once(server, path, conns, warmup, cookie)
    out = wrk_once(server, path, conns, seconds, cookie)
    expect_200(server, path, cookie)
    result = parse_wrk(out)
    if result.socket_errors:
        log(f"  wrk socket errors on {server.name} GET {path}: {result.socket_errors}")
    if not result.requests:
        log(f"  no request to {server.name} GET {path} completed in {seconds} s:\n{out}")
    return result


# ---------------------------------------------------------------- queries per page

# PostgreSQL counts every committed transaction of a database
# (pg_stat_database.xact_commit); each statement run outside a transaction
# is one, so on a page that writes nothing the count is its queries. A
# backend reports its counts within 10 s of going idle
# (PGSTAT_IDLE_INTERVAL), or when it exits. MariaDB counts the statements
# clients send (the status variable Questions: not those its triggers run,
# nor pings or prepares), at once but for the whole server, every database
# and client on it.
STATS_SETTLE = {"postgres": 11, "mysql": 1}
QUERY_COUNT_REQUESTS = 200
QUERY_COUNT_SOURCE = {
    "postgres": "PostgreSQL's count of committed transactions in the database",
    "mysql": "MariaDB's count of statements sent by clients, Questions, for the whole server",
}


def statements(database):
    """The counter queries_per_page reads: committed transactions of the
    database (PostgreSQL), statements clients sent to the server (MariaDB)."""
    if database.backend == "mysql":
        (_, count) = SqlDatabase(database.url).one("SHOW GLOBAL STATUS LIKE 'Questions'")
        return int(count)
    (count,) = Database(database.url).one(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
    return count


def queries_per_page(database, server, path, cookie):
    """The statements one GET of `path` runs: the counter of statements()
    over QUERY_COUNT_REQUESTS requests one after another, less its count
    over a window as long with no request (the reads of the counter
    themselves, unchained's mail worker polling the outbox; on MariaDB
    whatever else the server ran meanwhile), divided by the requests."""
    browser = Browser("127.0.0.1", server.port)
    headers = {"Cookie": cookie} if cookie else {}
    browser.get(path, headers=headers)
    settle_seconds = STATS_SETTLE[database.backend]

    def window(requests, seconds=0.0):
        time.sleep(settle_seconds)
        start, started = statements(database), time.monotonic()
        for _ in range(requests):
            answer = browser.get(path, headers=headers)
            if answer.status != 200:
                raise SystemExit(f"{server.name} answered {answer!r} to GET {path} while counting queries")
        time.sleep(max(0.0, started + seconds - time.monotonic()))
        took = time.monotonic() - started
        time.sleep(settle_seconds)
        return statements(database) - start, took

    busy, took = window(QUERY_COUNT_REQUESTS)
    idle, _ = window(0, took)
    log(f"  {server.name} GET {path}: {busy} statements counted over {QUERY_COUNT_REQUESTS} requests "
        f"({took:.1f} s), {idle} over as long without")
    return (busy - idle) / QUERY_COUNT_REQUESTS


# ---------------------------------------------------------------- memory


def proc_memory(pid):
    """{field: kB} of VmRSS and VmHWM (/proc/<pid>/status), and Pss
    (/proc/<pid>/smaps_rollup: pages shared between processes counted once
    over all of them; 0 when the kernel does not offer it)."""
    out = {"Pss": 0}
    for name in ("status", "smaps_rollup"):
        try:
            text = Path(f"/proc/{pid}/{name}").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Pss"):
                out[key] = int(value.split()[0])
    return out


def process_tree(pid):
    """pid and its descendants, by the parent pid in /proc/*/stat (the
    kernel may not offer /proc/<pid>/task/*/children)."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid ...: comm may hold spaces and parentheses.
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        children.setdefault(ppid, []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo.extend(children.get(tree[-1], []))
    return tree


def memory(server):
    """{'rss', 'hwm', 'pss': kB, 'processes': n} summed over the server's process tree."""
    pids = process_tree(server.proc.pid)
    figures = [proc_memory(pid) for pid in pids]
    return {"rss": sum(f["VmRSS"] for f in figures), "hwm": sum(f["VmHWM"] for f in figures),
            "pss": sum(f["Pss"] for f in figures), "processes": len(pids)}


# ---------------------------------------------------------------- one database at one size


@dataclass
class Run:
    backend: str
    size: int
    pages: dict = field(default_factory=dict)  # (page, conns, side) -> Wrk
    login: dict = field(default_factory=dict)  # side -> median seconds
    loads: dict = field(default_factory=dict)  # (rate, side) -> LoginLoad
    memory: dict = field(default_factory=dict)  # side -> memory()
    queries: dict = field(default_factory=dict)  # (page, side) -> statements a page (PostgreSQL, MariaDB)
    server: str = ""  # the database server's name and version, when there is one


def server_version(database):
    if database.backend == "postgres":
        return "PostgreSQL " + SqlDatabase(database.url).one("SHOW server_version")[0].split()[0]  # 15.18 (Debian ...)
    if database.backend == "mysql":
        version = SqlDatabase(database.url).one("SELECT VERSION()")[0]  # 10.11.6-MariaDB-0+deb12u1
        return ("MariaDB " if "mariadb" in version.lower() else "MySQL ") + version.split("-")[0]
    return ""


def bench_database(opts, backend, size, hashed, workdir):
    run = Run(backend, size)
    with ExitStack() as cleanup:
        database = new_database(backend, size, workdir, cleanup)
        migrate(opts.unchained, database)
        seed(database, size, hashed)
        run.server = server_version(database)
        (pk,) = SqlDatabase(database.url).one(
            "SELECT id FROM catalog_product WHERE owner_id = 1 ORDER BY created_at DESC, id DESC LIMIT 1")
        servers = start_servers(opts.unchained, database, workdir, cleanup)
        cookies = {side: session_cookie(server) for side, server in servers.items()}
        paths = {LIST: ("/", True), DETAIL: (f"/products/{pk}/", True), LOGIN_PAGE: (LOGIN_PATH, False)}
        for page, (path, logged_in) in paths.items():
            for conns in opts.conns:
                for side in SIDES:
                    result = wrk(servers[side], path, conns, opts.seconds, cookies[side] if logged_in else None,
                                 opts.warmup)
                    run.pages[page, conns, side] = result
                    log(f"{backend} {size} {side:9} {page} c{conns}: {result.rps:,.0f} req/s, "
                        f"p50 {ms(result.p50)}, p99 {ms(result.p99)}")
        for side in SIDES:
            run.login[side] = login_median(servers[side])
            log(f"{backend} {size} {side:9} whole login: median {ms(run.login[side])}")
        if backend in QUERY_COUNT_SOURCE and size == 1000:
            for page in (LIST, DETAIL):
                path, _ = paths[page]
                for side in SIDES:
                    run.queries[page, side] = queries_per_page(database, servers[side], path, cookies[side])
                    log(f"{backend} {size} {side:9} {page}: {run.queries[page, side]:.1f} queries a page")
        if size == 1000:
            for rate in opts.rates:
                for side in ("unchained", "django"):  # Django last: its backlog of logins drains slowly
                    load = login_load(servers[side], rate, opts.seconds, cookies[side])
                    run.loads[rate, side] = load
                    log(f"{backend} {size} {side:9} list with {rate} logins/s: p99 {ms(load.listing.p99)}; "
                        f"logins offered {load.offered}, 302 {load.found}, 503 {load.refused}, "
                        f"failed {load.failed} {dict(load.failures) or ''}, slowest {load.slowest:.2f} s")
        for side in SIDES:
            run.memory[side] = memory(servers[side])
        log(f"{backend} {size} memory: unchained {run.memory['unchained']['rss'] / 1024:.1f} MiB, "
            f"Django {run.memory['django']['rss'] / 1024:.1f} MiB")
    return run


# ---------------------------------------------------------------- the report


def ms(seconds):
    return f"{seconds * 1000:.2f} ms"


def mib(kb):
    return f"{kb / 1024:.1f} MiB"


def ratio(a, b):
    return a / b if b else float("inf")


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU")
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    return f"{len(os.sched_getaffinity(0))} CPUs (nproc), {cpu}, {mem_kb / 1024 / 1024:.1f} GiB memory"


def git_commit():
    def git(*args):
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def command_line():
    python = Path(sys.executable)
    try:
        python = python.relative_to(REPO)
    except ValueError:
        pass
    script = Path(sys.argv[0]).resolve()
    try:
        script = script.relative_to(REPO)
    except ValueError:
        pass
    return shlex.join([str(python), str(script), *sys.argv[1:]])


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def pages_table(run, conns_list):
    rows = []
    for page in (LIST, DETAIL, LOGIN_PAGE):
        for conns in conns_list:
            d, u = run.pages[page, conns, "django"], run.pages[page, conns, "unchained"]
            errors = "; ".join(f"{side}: {r.socket_errors}" for side, r in (("Django", d), ("unchained", u))
                               if r.socket_errors)
            rows.append([page, conns, f"{d.rps:,.0f}", f"{u.rps:,.0f}",
                         f"{ratio(u.rps, d.rps):.1f}×" if d.requests and u.requests else "no request completed",
                         f"{ms(d.p50)} / {ms(d.p99)}", f"{ms(u.p50)} / {ms(u.p99)}", errors or ""])
    text = table(["request", "conns", "Django req/s", "unchained req/s", "ratio", "Django p50 / p99",
                  "unchained p50 / p99", "socket errors"], rows)
    few = [f"{page} c{conns} {side}: {r.requests}" for (page, conns, side), r in run.pages.items()
           if r.requests < 4 * conns]
    if few:
        text += ("\n\nFew requests completed in these runs, so their percentiles leave out the requests "
                 "still waiting when wrk stopped (longer --seconds helps): " + "; ".join(few) + ".")
    return text


def loads_table(run):
    rows = []
    for (rate, side), load in sorted(run.loads.items(), key=lambda kv: (kv[0][0], kv[0][1] == "django")):
        quiet = run.pages[LIST, 32, side]
        failures = ", ".join(f"{n}× {what}" for what, n in load.failures.items())
        rows.append([side, f"{rate}/s", ms(quiet.p99), ms(load.listing.p99), f"{load.listing.rps:,.0f}",
                     load.offered, load.found, load.refused, f"{load.failed}{' (' + failures + ')' if failures else ''}",
                     f"{load.slowest:.2f} s"])
    return table(["server", "logins/s", "list p99 without", "list p99 with", "list req/s with",
                  "offered", "302", "503", "failed", "slowest login"], rows)


def report(opts, runs, targets):
    out = [
        "# Benchmarks",
        "",
        "Written by `bench/bench.py` (issue 9): unchained beside the reference Django project "
        f"(gunicorn, {DJANGO_WORKERS} sync workers) on one database, both on 127.0.0.1; "
        f"`wrk -t2 -cN --latency --timeout {WRK_TIMEOUT}` for {opts.seconds} s after a {opts.warmup} s warm-up; "
        "GET / and the detail page logged in as one of the 10 owners.",
        "",
        f"- date: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}",
        f"- machine: {machine()}",
        f"- command: `{command_line()}`",
        f"- commit: {git_commit()}",
        "",
    ]
    for run in runs:
        server = f" ({run.server})" if run.server else ""
        out += [f"## {run.backend}{server}, {run.size:,} products", "", pages_table(run, opts.conns), ""]
        d, u = run.login["django"], run.login["unchained"]
        out += [f"Whole login (GET the page, POST, 302), median of {LOGIN_SAMPLES}: Django {ms(d)}, "
                f"unchained {ms(u)}, unchained / Django {ratio(u, d):.2f}.", ""]
        if run.queries:
            out += [f"Queries a page, logged in ({QUERY_COUNT_SOURCE[run.backend]}, over "
                    f"{QUERY_COUNT_REQUESTS} requests one after another, less as long idle): "
                    + "; ".join(f"{page} Django {run.queries[page, 'django']:.1f}, "
                                f"unchained {run.queries[page, 'unchained']:.1f}"
                                for page in (LIST, DETAIL)) + ".", ""]
        if run.loads:
            out += ["Logins in the background (open loop) during GET / at 32 connections:", "", loads_table(run), ""]
        dm, um = run.memory["django"], run.memory["unchained"]
        out += [f"Memory after the load: unchained VmRSS {mib(um['rss'])} (VmHWM {mib(um['hwm'])}); "
                f"Django VmRSS {mib(dm['rss'])} summed over {dm['processes']} processes (VmHWM {mib(dm['hwm'])}); "
                f"unchained / Django {ratio(um['rss'], dm['rss']):.2f}. "
                f"(Proportional set size, which counts the pages gunicorn's workers share with their master once: "
                f"unchained {mib(um['pss'])}, Django {mib(dm['pss'])}, {ratio(um['pss'], dm['pss']):.2f}.)", ""]
    out += ["## Targets (issue 9)", "", table(["target", "result", "figures"],
                                              [[name, verdict(met), figures] for name, met, figures in targets]), ""]
    return "\n".join(out)


# ---------------------------------------------------------------- targets


def verdict(met):
    return "not measured" if met is None else ("met" if met else "**NOT met**")


def check(checks):
    """checks: [(label, ok, text)] -> (met or None, figures)."""
    if not checks:
        return None, "no run measured it"
    return all(ok for _, ok, _ in checks), "; ".join(f"{label}: {text}" for label, _, text in checks)


def page_ratio_checks(runs, page, minimum, sizes=None):
    checks = []
    for run in runs:
        if sizes and run.size not in sizes:
            continue
        for conns in sorted({c for (p, c, _) in run.pages if p == page}):
            u, d = run.pages[page, conns, "unchained"], run.pages[page, conns, "django"]
            label = f"{run.backend} {run.size} c{conns}"
            if not (u.requests and d.requests):
                checks.append((label, False, "a run completed no request"))
                continue
            r = ratio(u.rps, d.rps)
            checks.append((label, r >= minimum, f"{r:.1f}×"))
    return check(checks)


def scaling_checks(runs):
    checks = []
    by_key = {(run.backend, run.size): run for run in runs}
    for run in runs:
        small = by_key.get((run.backend, 1000))
        if run.size == 1000 or small is None:
            continue
        for conns in sorted({c for (p, c, _) in run.pages if p == LIST}):
            big, base = run.pages[LIST, conns, "unchained"], small.pages[LIST, conns, "unchained"]
            slower, faster = ratio(big.p50, base.p50), ratio(big.rps, base.rps)
            checks.append((f"{run.backend} {run.size} c{conns}", slower <= 1.5 and faster >= 1 / 1.5,
                           f"p50 {ms(big.p50)} vs {ms(base.p50)} at 1,000 (×{slower:.2f}), "
                           f"{big.rps:,.0f} vs {base.rps:,.0f} req/s (×{faster:.2f})"))
    return check(checks)


def login_checks(runs):
    checks = []
    for run in runs:
        r = ratio(run.login["unchained"], run.login["django"])
        checks.append((f"{run.backend} {run.size}", r <= 0.5,
                       f"{ms(run.login['unchained'])} vs {ms(run.login['django'])} ({r:.2f}×)"))
    return check(checks)


def load_checks(runs, rate, max_p99, answer_within=None):
    checks = []
    for run in runs:
        load = run.loads.get((rate, "unchained"))
        if load is None:
            continue
        ok = load.listing.p99 <= max_p99
        text = f"list p99 {ms(load.listing.p99)}"
        if answer_within is not None:
            answered = load.found + load.refused
            ok = ok and answered == load.offered and load.slowest <= answer_within
            text += (f", {answered}/{load.offered} logins answered (302 {load.found}, 503 {load.refused}), "
                     f"slowest {load.slowest:.2f} s")
        checks.append((run.backend, ok, text))
    return check(checks)


def memory_checks(runs):
    checks = []
    for run in runs:
        u, d = run.memory["unchained"]["rss"], run.memory["django"]["rss"]
        r = ratio(u, d)
        checks.append((f"{run.backend} {run.size}", r <= 0.25, f"{u / 1024:.1f} vs {d / 1024:.1f} MiB ({r:.2f}×)"))
    return check(checks)


def targets(runs):
    """[(target, met or None, figures)] for every target of issue 9."""
    rows = [
        ("list ≥ 30× Django's req/s at 1,000 products", *page_ratio_checks(runs, LIST, 30, sizes={1000})),
        ("list at 100,000 within 1.5× of its p50 and req/s at 1,000", *scaling_checks(runs)),
        ("detail ≥ 20× Django's req/s", *page_ratio_checks(runs, DETAIL, 20)),
        ("login page ≥ 15× Django's req/s", *page_ratio_checks(runs, LOGIN_PAGE, 15)),
        ("whole login ≤ 0.5× Django's time", *login_checks(runs)),
        ("4 logins/s: list p99 ≤ 50 ms at 32 conns", *load_checks(runs, 4, 0.050)),
        ("20 logins/s: list p99 ≤ 100 ms, every login answered (302 or 503) within 5 s",
         *load_checks(runs, 20, 0.100, answer_within=5.0)),
        ("memory ≤ 0.25× Django's", *memory_checks(runs)),
    ]
    measured = {run.backend for run in runs}
    missing = set(BACKENDS) - measured
    if missing:
        rows = [(name, met, f"{figures} ({', '.join(sorted(missing))} not measured)") for name, met, figures in rows]
    return rows


# ---------------------------------------------------------------- main


def options():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=None, help="each measured wrk run (default 8; --quick 1)")
    parser.add_argument("--warmup", type=int, default=None, help="the warm-up run before each (default 2)")
    parser.add_argument("--only", choices=BACKENDS, help="one database only")
    parser.add_argument("--sizes", default=None, help="catalog sizes, comma-separated (default 1000,100000)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1,000 products, SQLite, 1 s runs, 32 conns, logins at 4/s only")
    parser.add_argument("--output", type=Path, help="the report (default BENCHMARKS.md; --quick target/bench-quick.md)")
    parser.add_argument("--unchained", type=Path, help="the unchained binary (default: build target/release/unchained)")
    opts = parser.parse_args()
    opts.seconds = opts.seconds or (1 if opts.quick else 8)
    opts.warmup = opts.warmup if opts.warmup is not None else (1 if opts.quick else 2)
    opts.backends = [opts.only] if opts.only else (["sqlite"] if opts.quick else list(BACKENDS))
    opts.sizes = [int(s) for s in opts.sizes.split(",")] if opts.sizes else ([1000] if opts.quick else [1000, 100000])
    opts.conns = [32] if opts.quick else [32, 64]
    opts.rates = [4] if opts.quick else [4, 20]
    opts.output = opts.output or (REPO / "target" / "bench-quick.md" if opts.quick else REPO / "BENCHMARKS.md")
    return opts


def unchained_binary(opts):
    if opts.unchained:
        return opts.unchained.resolve()
    log("cargo build --release --bin unchained ...")
    subprocess.run(["cargo", "build", "--release", "--bin", "unchained"], cwd=REPO, check=True,
                   stdout=sys.stderr)
    return REPO / "target" / "release" / "unchained"


def main():
    opts = options()
    if not shutil.which("wrk"):
        raise SystemExit("the bench needs wrk: apt-get install wrk")
    opts.unchained = unchained_binary(opts)
    hashed = password_hash()
    runs = []
    started = time.monotonic()
    for backend in opts.backends:
        for size in opts.sizes:
            with tempfile.TemporaryDirectory(prefix="unchained-bench-") as tmp:
                runs.append(bench_database(opts, backend, size, hashed, Path(tmp)))
    text = report(opts, runs, targets(runs))
    opts.output.parent.mkdir(parents=True, exist_ok=True)
    opts.output.write_text(text + "\n")
    print(text)
    log(f"wrote {opts.output} after {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
