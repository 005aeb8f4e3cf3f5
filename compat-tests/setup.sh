#!/usr/bin/env bash
# Creates compat-tests/.venv with the reference Django and the pytest suite's packages.
# Safe to run again: pip only installs what is missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
echo "compat venv ready: $venv"
# The reference project under Django 4.2 and 6.1 too (tests/test_releases.py).
bash "$here/setup-releases.sh"
