#!/usr/bin/env bash
# Creates compat-tests/.venv with the reference Django and the pytest suite's packages.
# Safe to run again: pip only installs what is missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
fi
# mysqlclient (Django's MySQL/MariaDB driver, in the Django 4.2 and 6.1
# virtualenvs of setup-releases.sh too) builds from source: it needs
# pkg-config, a C compiler and the MariaDB client library's headers.
if ! "$venv/bin/python" -c "import MySQLdb" 2>/dev/null &&
   ! { command -v pkg-config >/dev/null 2>&1 && pkg-config --exists libmariadb 2>/dev/null && command -v cc >/dev/null 2>&1; }; then
  echo "installing mysqlclient's build dependencies with apt-get" >&2
  sudo=""
  [[ "$(id -u)" != 0 ]] && sudo="sudo"
  deps=(libmariadb-dev pkg-config gcc python3-dev)
  if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${deps[@]}" >&2; then
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${deps[@]}" >&2
  fi
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
echo "compat venv ready: $venv"
# The reference project under Django 4.2 and 6.1 too (tests/test_releases.py).
bash "$here/setup-releases.sh"
