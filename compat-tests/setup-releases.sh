#!/usr/bin/env bash
# Creates compat-tests/.venv-4.2 and compat-tests/.venv-6.1: the reference
# project under the oldest and the newest Django release DJANGO_VERSION
# names, for tests/test_releases.py. Safe to run again: pip only installs
# what is missing.
#
# Django 4.2 runs on the default python3 (3.8 to 3.12); Django 6.x needs
# Python 3.12 or newer: python3.12 on PATH, else pyenv's 3.12.
# PYTHON_4_2 / PYTHON_6_1 name another interpreter. Without one the script
# fails: the suite requires both releases.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

find_python() {  # find_python MIN_MINOR CANDIDATE...: the first that is Python 3.MIN or newer
  local minor="$1"; shift
  local candidate
  for candidate in "$@"; do
    [[ -n "$candidate" ]] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c "import sys, venv; sys.exit(sys.version_info < (3, $minor))" 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

pyenv_python() {  # pyenv_python 3.12: the newest installed pyenv 3.12.x
  local root="${PYENV_ROOT:-$HOME/.pyenv}"
  ls -d "$root"/versions/"$1".*/bin/python"$1" 2>/dev/null | sort -V | tail -n 1
}

make_venv() {  # make_venv RELEASE PYTHON
  local release="$1" python="$2" venv="$here/.venv-$1"
  if [[ -x "$venv/bin/python" ]] && ! "$venv/bin/python" -c "" 2>/dev/null; then
    rm -rf "$venv"  # its interpreter is gone
  fi
  if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
  fi
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements-$release.txt"
  echo "Django $("$venv/bin/python" -c 'import django; print(django.get_version())') venv ready: $venv ($("$venv/bin/python" --version))"
}

py42="$(find_python 8 "${PYTHON_4_2:-}" python3 python3.12 python3.11 "$(pyenv_python 3.12)")" || {
  echo "setup-releases.sh: no Python 3.8+ with venv for Django 4.2 (set PYTHON_4_2)" >&2
  exit 1
}
py61="$(find_python 12 "${PYTHON_6_1:-}" python3.12 python3.13 "$(pyenv_python 3.12)" "$(pyenv_python 3.13)" python3)" || {
  cat >&2 <<MSG
setup-releases.sh: Django 6.1 needs Python 3.12 or newer, and none was found
(looked for PYTHON_6_1, python3.12, python3.13, pyenv's 3.12 and 3.13 under
${PYENV_ROOT:-$HOME/.pyenv}/versions, python3). Install one (pyenv install 3.12,
or apt-get install python3.12 where the distribution has it) or point
PYTHON_6_1 at it. The compat suite's Django 6.1 tests cannot run without it.
MSG
  exit 1
}
make_venv 4.2 "$py42"
make_venv 6.1 "$py61"
