"""`unchained collectstatic` beside Django's `manage.py collectstatic`:

- the reference project keeps Django's default static-files storage
  (`StaticFilesStorage`: plain names, no manifest), so its pages link
  `/static/css/site.css`; unchained's collectstatic writes the same plain
  names (and its pages, compared in test_templates.py, link the same);
- Django's collectstatic, given the repository's `static/` folder as the
  original site had it (STATICFILES_DIRS), writes those files under the same
  names and bytes as unchained's, beside Django admin's own;
- both into one STATIC_ROOT (the admin kept on Django during a move):
  unchained's run changes none of Django's files, and finds its own already
  there, unmodified.
"""
import os
import subprocess
from pathlib import Path

import live

REPO_ROOT = Path(__file__).resolve().parents[2]
REFPROJECT_DIR = REPO_ROOT / "compat-tests" / "refproject"
SECRET_KEY = "Xq3vTb9LmZ0pR7kW2yH5sD8fJ1nC4gE6uA0oI9tB3cQ="  # conftest.TEST_SECRET_KEY

SETTINGS_WITH_STATIC = '''
from config.settings import *  # noqa: F401,F403
STATICFILES_DIRS = [{static!r}]
'''


def files_under(root):
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(Path(root).rglob("*"))
        if p.is_file()
    }


def django_collectstatic(venv_python, tmp_path, static_root, database_url):
    """Django's collectstatic of the reference project, with the repository's
    static/ folder found as the original site found it."""
    settings_dir = tmp_path / "settings"
    settings_dir.mkdir(exist_ok=True)
    (settings_dir / "with_static.py").write_text(
        SETTINGS_WITH_STATIC.format(static=str(REPO_ROOT / "static"))
    )
    env = live.process_env(database_url, SECRET_KEY, {
        "DJANGO_SETTINGS_MODULE": "with_static",
        "PYTHONPATH": os.pathsep.join([str(settings_dir), str(REFPROJECT_DIR)]),
        "PYTHONDONTWRITEBYTECODE": "1",
        "STATIC_ROOT": str(static_root),
    })
    proc = subprocess.run(
        [str(venv_python), str(REFPROJECT_DIR / "manage.py"), "collectstatic", "--noinput"],
        env=env, cwd=REFPROJECT_DIR, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_reference_links_plain_names(run_manage, tmp_path):
    """If the reference moved to ManifestStaticFilesStorage, its pages would
    link hashed names and collectstatic would have to write them too."""
    code = (
        "from django.conf import settings\n"
        "from django.templatetags.static import static\n"
        "print(settings.STORAGES['staticfiles']['BACKEND'])\n"
        "print(static('css/site.css'))\n"
    )
    out = run_manage(f"sqlite:///{tmp_path}/unused.sqlite3", "shell", "-c", code).stdout.split()
    # (Django 5.2's shell first says how many models it imported.)
    assert out[-2:] == ["django.contrib.staticfiles.storage.StaticFilesStorage", "/static/css/site.css"]


def test_same_files_as_djangos_collectstatic(venv_python, run_unchained, tmp_path):
    database_url = f"sqlite:///{tmp_path}/unused.sqlite3"
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    run_unchained(database_url, "collectstatic", "--noinput", env={"STATIC_ROOT": str(ours)})
    django_collectstatic(venv_python, tmp_path, theirs, database_url)

    mine = files_under(ours)
    django = files_under(theirs)
    site = {name: data for name, data in django.items() if not name.startswith("admin/")}
    assert mine.keys() == site.keys()
    for name in mine:
        assert mine[name] == site[name], name
    assert not (theirs / "staticfiles.json").exists()


def test_shared_static_root_keeps_djangos_files(venv_python, run_unchained, tmp_path):
    database_url = f"sqlite:///{tmp_path}/unused.sqlite3"
    shared = tmp_path / "shared"
    django_collectstatic(venv_python, tmp_path, shared, database_url)
    before = files_under(shared)
    mtimes = {p: p.stat().st_mtime_ns for p in shared.rglob("*") if p.is_file()}

    ours = {name for name in before if not name.startswith("admin/")}
    out = run_unchained(database_url, "collectstatic", "--noinput",
                        env={"STATIC_ROOT": str(shared)}).stdout
    assert out == f"\n0 static files copied to '{shared}', {len(ours)} unmodified.\n"
    assert files_under(shared) == before
    assert {p: p.stat().st_mtime_ns for p in shared.rglob("*") if p.is_file()} == mtimes
