"""Memory under large uploads (row 3 of the reliability issue): many posts
of about 10 MB at once against `unchained serve`, and the server's peak
resident memory (VmHWM), which must stay under 250 MB.

    compat-tests/.venv/bin/python bench/uploads.py [--unchained BIN] [--only sqlite|postgres] [--posts 100]

For each database (a SQLite file in a temporary folder; a new database on
the PostgreSQL test server of scripts/postgres.sh), `unchained serve` with
FILE_UPLOAD_TEMP_DIR in a folder of the run's own, and one user logged in.
Then, each case as --posts requests at once, every one from its own thread
and connection:

1. logged in, with the CSRF cookie and token, to /products/create/: a
   product form whose image is 10,000,000 bytes of noise named `a.png`
   (the body is spooled to a temporary file, then refused as no image:
   200 with the form's error);
2. anonymous, the same body (refused before the body is kept: 403);
3. logged in, 11 MB (past the 10 MB cap: 413);
4. logged in, 10 MB under a Content-Type naming another boundary (the
   parser must not keep looking for it in memory: 400).

Prints a Markdown table (statuses, seconds, the server's VmHWM after the
case, temporary files left) and exits 1 when the peak reaches 250 MB, an
answer is not the expected one, or a temporary file is left behind.
"""

import argparse
import concurrent.futures
import http.client
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import OWNERS, PASSWORD, SECRET_KEY, log, log_in, migrate, new_database, proc_memory  # noqa: E402
from live import LiveServer, encode_multipart, form_token, process_env  # noqa: E402

LIMIT_MB = 250
FILE_BYTES = 10_000_000
CREATE = "/products/create/"


def post_all(port, body, content_type, cookie, posts):
    """Sends `posts` copies of one body at once; Counter of statuses (or
    exception names)."""

    def post(_):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        headers = {"Host": f"127.0.0.1:{port}", "Content-Type": content_type}
        if cookie:
            headers["Cookie"] = cookie
        try:
            conn.request("POST", CREATE, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            return response.status
        except OSError as e:
            return type(e).__name__
        finally:
            conn.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=posts) as pool:
        return Counter(pool.map(post, range(posts)))


def measure(unchained, backend, posts, workdir):
    rows, problems = [], []
    with ExitStack() as cleanup:
        database = new_database(backend, "uploads", workdir, cleanup)
        migrate(unchained, database)
        env = process_env(database.url, SECRET_KEY, {"DJANGO_SUPERUSER_PASSWORD": PASSWORD})
        subprocess.run([str(unchained), "createsuperuser", "--noinput", "--email", OWNERS[0]], env=env,
                       check=True, stdout=subprocess.DEVNULL, timeout=120)
        spool = workdir / "spool"
        spool.mkdir()
        server = LiveServer(unchained, database.url, SECRET_KEY,
                            env={"EMAIL_BACKEND": "console", "MEDIA_ROOT": str(workdir / "media"),
                                 "FILE_UPLOAD_TEMP_DIR": str(spool)},
                            log_path=str(workdir / "unchained.log"))
        server.start()
        cleanup.callback(server.stop)
        browser, answer = log_in(server.port, OWNERS[0])
        if answer.status != 302:
            raise SystemExit(f"{backend}: login failed: {answer!r}\n{server.log_text()}")
        token = form_token(browser.get(CREATE).text)
        cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
        fields = [("csrfmiddlewaretoken", token), ("name", "Большой файл"), ("description", "x"),
                  ("price", "1")]
        noise = os.urandom(FILE_BYTES)
        body, content_type = encode_multipart(fields, [("image", "a.png", "image/png", noise)])
        too_big, too_big_type = encode_multipart(fields, [("image", "a.png", "image/png", noise + noise[:1_100_000])])
        cases = [
            ("logged in, 10 MB image spooled, then refused", body, content_type, cookie, 200),
            ("anonymous, 10 MB (refused before the body is kept)", body, content_type, None, 403),
            ("logged in, 11 MB (past the 10 MB cap)", too_big, too_big_type, cookie, 413),
            ("logged in, 10 MB whose boundary never comes", body, too_big_type, cookie, 400),
        ]
        for name, payload, payload_type, with_cookie, expected in cases:
            started = time.monotonic()
            statuses = post_all(server.port, payload, payload_type, with_cookie, posts)
            seconds = time.monotonic() - started
            peak_kb = proc_memory(server.proc.pid)["VmHWM"]
            left = len(list(spool.iterdir()))
            log(f"{backend}: {name}: {dict(statuses)} in {seconds:.1f} s, peak {peak_kb / 1024:.0f} MiB, "
                f"{left} temporary files left")
            rows.append((backend, name, len(payload), statuses, seconds, peak_kb, left))
            if statuses != Counter({expected: posts}):
                problems.append(f"{backend}: {name}: expected {posts} × {expected}, got {dict(statuses)}")
            if left:
                problems.append(f"{backend}: {name}: {left} temporary files left in {spool}")
        if peak_kb >= LIMIT_MB * 1024:
            problems.append(f"{backend}: peak resident memory {peak_kb / 1024:.0f} MiB ≥ {LIMIT_MB} MB")
    return rows, problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--unchained", type=Path, default=Path("target/release/unchained"))
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument("--posts", type=int, default=100, help="requests at once in each case (default 100)")
    opts = parser.parse_args()
    backends = [opts.only] if opts.only else ["sqlite", "postgres"]
    rows, problems = [], []
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix="unchained-uploads-") as tmp:
            more_rows, more_problems = measure(opts.unchained.resolve(), backend, opts.posts, Path(tmp))
            rows += more_rows
            problems += more_problems
    print(f"{opts.posts} posts at once in each case; peak = the server's VmHWM after the case.\n")
    print("| database | case | body | answers | seconds | peak resident | temporary files left |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for backend, name, size, statuses, seconds, peak_kb, left in rows:
        answers = ", ".join(f"{n} × {status}" for status, n in sorted(statuses.items(), key=str))
        print(f"| {backend} | {name} | {size / 1e6:.1f} MB | {answers} | {seconds:.1f} | "
              f"{peak_kb / 1024:.0f} MiB | {left} |")
    if problems:
        print("\nNOT met:\n" + "\n".join(f"- {p}" for p in problems))
        sys.exit(1)
    print(f"\nMet: the peak stayed under {LIMIT_MB} MB, every answer as expected, no temporary file left.")


if __name__ == "__main__":
    main()
