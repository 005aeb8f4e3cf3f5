#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what is missing,
# starts PostgreSQL and MariaDB on loopback, runs the Rust tests on SQLite,
# PostgreSQL and MariaDB, then the compat suite beside a real Django 5.2 (and 4.2 and
# 6.1 for DJANGO_VERSION).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "PostgreSQL on 127.0.0.1"
started_pg=0
scripts/postgres.sh status 2>/dev/null || started_pg=1
UNCHAINED_TEST_POSTGRES="$(scripts/postgres.sh start)"
export UNCHAINED_TEST_POSTGRES

step "MariaDB on 127.0.0.1 (the MySQL/MariaDB back end)"
started_mariadb=0
scripts/mariadb.sh status 2>/dev/null || started_mariadb=1
UNCHAINED_TEST_MYSQL="$(scripts/mariadb.sh start)"
export UNCHAINED_TEST_MYSQL
# Stop the servers at the end only if this run started them.
trap '[[ $started_pg == 1 ]] && scripts/postgres.sh stop; [[ $started_mariadb == 1 ]] && scripts/mariadb.sh stop' EXIT

step "Python virtualenvs (reference Django 5.2, and the SMTP server the Rust mail tests use; Django 4.2 and 6.1 for test_releases.py)"
bash compat-tests/setup.sh

step "Chromium and chromedriver for the browser test (compat-tests/tests/test_browser.py), wrk for the benchmark, nginx, openssl and curl for the test of docs/nginx.conf (tests/deploy.rs) and of several instances (tests/instances.rs)"
if [[ ! -x /usr/bin/chromedriver || ! -x /usr/bin/wrk || ! -x /usr/sbin/nginx || ! -x /usr/bin/openssl || ! -x /usr/bin/curl ]]; then
  sudo=""
  [[ "$(id -u)" != 0 ]] && sudo="sudo"
  # The test runs its own nginx on loopback ports with a configuration of
  # its own; the service the package may start (on a machine run by systemd,
  # on port 80) is not used.
  apt_install() { $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver wrk nginx openssl curl; }
  # A fresh machine has no package lists yet: update only when the install needs it.
  apt_install || { $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q && apt_install; }
fi
/usr/bin/chromedriver --version

step "Rust: build (release, shared by the tests and the compat suite)"
cargo build --release --bins --examples

step "Rust: unit and integration tests (SQLite, PostgreSQL and MariaDB)"
cargo test --release --all-targets

step "Benchmark smoke run (bench/bench.py --quick: 1,000 products on SQLite, 1 s a request; proves the benchmark runs, its figures are not judged)"
compat-tests/.venv/bin/python bench/bench.py --quick --unchained target/release/unchained

step "Memory under 100 uploads of 10 MB at once (bench/uploads.py: fails past 250 MB)"
compat-tests/.venv/bin/python bench/uploads.py --unchained target/release/unchained

step "Compat suite: reference Django 5.2 in a virtualenv (and 4.2, 6.1: tests/test_releases.py)"
compat-tests/.venv/bin/python -m pytest compat-tests -q -p no:cacheprovider

step "Container image (Dockerfile, scripts/container.sh): built and run only where a container engine answers"
engine=""
why=""
for candidate in docker podman; do
  if ! command -v "$candidate" >/dev/null 2>&1; then
    why="${why:+$why; }$candidate is not installed"
  elif ! timeout 30 "$candidate" info >/dev/null 2>&1; then
    why="${why:+$why; }$candidate is installed but '$candidate info' fails (no daemon or service answers)"
  else
    engine="$candidate"
    break
  fi
done
if [[ -n $engine ]]; then
  bash scripts/container.sh "$engine"
else
  echo "SKIPPED: the container image was NOT built or run: $why"
fi
