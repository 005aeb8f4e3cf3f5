"""Speed of unchained beside the reference Django app, on one database.

    compat-tests/.venv/bin/python bench/bench.py [--seconds 5] [--logins 10]

Needs `wrk` (Debian package wrk). Migrates a fresh SQLite database with
`unchained migrate`, creates a user and a catalog (3 categories, 40 products,
half of them published, 3 versions each, all owned by that user) with
Django's ORM, then serves the same
database with `unchained serve` and with the reference project under
gunicorn (2 workers, one per core), both on 127.0.0.1, and measures the
same pages on each with wrk (4 keep-alive connections for --seconds:
median latency and requests per second), and whole logins (password
hashing included) one after another, --logins times. Prints one table.
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "compat-tests" / "tests"))
from live import Browser, LiveServer, form_token, free_port  # noqa: E402

PYTHON = REPO / "compat-tests" / ".venv" / "bin" / "python"
REFPROJECT = REPO / "compat-tests" / "refproject"
SECRET_KEY = "bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz-ABCD"
EMAIL, PASSWORD = "bench@example.com", "Bench-pass-2026!"


# The bench user and their catalog, made by Django's ORM.
SEED = f"""
from decimal import Decimal
from users.models import User
from catalog.models import Category, Product, Version
user = User.objects.create_user(email={EMAIL!r}, password={PASSWORD!r})
categories = [Category.objects.create(name=f"Категория {{i}}") for i in range(3)]
for i in range(40):
    product = Product.objects.create(name=f"Товар {{i}}", description="Описание товара " * 10,
        category=categories[i % 3], price=Decimal("1000.50") + i, is_moderated=i % 2 == 0, owner=user)
    for n in range(3):
        Version.objects.create(product=product, version_number=n, version_name=f"v{{n}}", is_current=n == 2)
"""
PRODUCT_PK = 7


def start_gunicorn(env, port):
    cmd = [str(PYTHON), "-m", "gunicorn", "config.wsgi", "--workers", "2", "--bind", f"127.0.0.1:{port}",
           "--log-level", "warning"]
    proc = subprocess.Popen(cmd, cwd=REFPROJECT, env=env)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if Browser("127.0.0.1", port).get("/users/login/").status == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise SystemExit("gunicorn did not answer")


def logged_in(port):
    browser = Browser("127.0.0.1", port)
    token = form_token(browser.get("/users/login/").text)
    r = browser.post("/users/login/", {"csrfmiddlewaretoken": token, "username": EMAIL, "password": PASSWORD})
    if r.status != 302:
        raise SystemExit(f"login failed on port {port}: {r.status}")
    return browser


def timed(fn, n):
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def wrk(port, path, seconds, cookie=None):
    """(median latency in seconds, requests per second) under 4 connections."""
    cmd = ["wrk", "-t1", "-c4", f"-d{seconds}s", "--latency", f"http://127.0.0.1:{port}{path}"]
    if cookie:
        cmd[1:1] = ["-H", f"Cookie: {cookie}"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"{path} on port {port} did not answer 200:\n{out}")
    median = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0}[median.group(2)]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return float(median.group(1)) * scale, rps


def measure(port, seconds, logins):
    user = logged_in(port)
    cookie = "; ".join(f"{k}={v}" for k, v in user.cookies.items())
    results = {
        "GET /users/login/ (anonymous)": wrk(port, "/users/login/", seconds),
        "GET /users/profile/ (logged in)": wrk(port, "/users/profile/", seconds, cookie),
        "GET / (product list, page 2)": wrk(port, "/?page=2", seconds, cookie),
        "GET /products/<pk>/ (detail)": wrk(port, f"/products/{PRODUCT_PK}/", seconds, cookie),
        "GET /products/<pk>/update/ (form)": wrk(port, f"/products/{PRODUCT_PK}/update/", seconds, cookie),
        "GET /contacts/ (anonymous)": wrk(port, "/contacts/", seconds),
    }
    lat = timed(lambda: logged_in(port), logins)
    results["POST /users/login/ (whole login)"] = (statistics.median(lat), None)
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--logins", type=int, default=10)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("bench needs wrk: apt-get install wrk")
    unchained = REPO / "target" / "release" / "unchained"
    subprocess.run(["cargo", "build", "--release", "--bin", "unchained"], cwd=REPO, check=True)
    with tempfile.TemporaryDirectory() as tmp:
        db_url = f"sqlite:///{tmp}/bench.sqlite3"
        env = {**os.environ, "DATABASE_URL": db_url, "SECRET_KEY": SECRET_KEY, "DEBUG": "False",
               "ALLOWED_HOSTS": "127.0.0.1,localhost", "EMAIL_BACKEND": "console", "MEDIA_ROOT": f"{tmp}/media"}
        subprocess.run([str(unchained), "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([str(PYTHON), "manage.py", "shell", "-c", SEED], cwd=REFPROJECT, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        server = LiveServer(str(unchained), db_url, SECRET_KEY, env={"EMAIL_BACKEND": "console", "MEDIA_ROOT": f"{tmp}/media"},
                            log_path=f"{tmp}/unchained.log")
        server.start()
        django_port = free_port()
        gunicorn = start_gunicorn(env, django_port)
        try:
            ours = measure(server.port, args.seconds, args.logins)
            theirs = measure(django_port, args.seconds, args.logins)
        finally:
            server.stop()
            gunicorn.terminate()
            gunicorn.wait(10)
    print(f"\n{'request':34} {'Django median':>14} {'unchained':>10} {'speed-up':>9}   "
          f"{'Django req/s':>12} {'unchained':>10} {'ratio':>6}")
    for name in ours:
        (d_lat, d_rps), (u_lat, u_rps) = theirs[name], ours[name]
        rps = f"{d_rps:12.0f} {u_rps:10.0f} {u_rps / d_rps:5.1f}x" if d_rps else f"{'-':>12} {'-':>10} {'-':>6}"
        print(f"{name:34} {d_lat * 1000:11.2f} ms {u_lat * 1000:7.2f} ms {d_lat / u_lat:8.1f}x   {rps}")


if __name__ == "__main__":
    main()
