"""The reference Django project out of process, for tests that need its ORM
or its test Client beside the servers under test.

    worker = DjangoWorker(venv_python, refproject_dir, reference_env(url, key, {...}), workdir, OPS)
    worker.call("create_user", email="a@example.com", password="...")   # op_create_user(...) in the worker
    worker.close()

`OPS` is Python source that defines `op_<name>(**args)` functions; it runs
after django.setup(), so it may import models. Arguments and results travel
as JSON, one line each way per call.

Django runs in a subprocess because other test modules configure Django
in-process with their own settings (test_core_interop.py).
"""
import json
import subprocess

# Before the module's ops: answers go to the real stdout, and whatever Django
# prints goes to stderr (the worker's log), so nothing can garble an answer.
_WORKER_HEAD = r'''
import json, os, sys, traceback

answers = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
os.dup2(2, 1)
sys.stdout = sys.stderr

sys.path.insert(0, sys.argv[1])
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
import django
django.setup()
'''

_WORKER_LOOP = r'''
from django.db import connection

for line in sys.stdin:
    try:
        call = json.loads(line)
        result = {"result": globals()["op_" + call["op"]](**call["args"])}
    except Exception:
        result = {"error": traceback.format_exc()}
    if connection.vendor == "sqlite":
        connection.close()  # hold no lock between calls: the servers write to the same file
    answers.write(json.dumps(result) + "\n")
'''


class DjangoWorker:
    """The reference project in a long-lived subprocess with that environment;
    `call(op, **args)` runs `op_<op>(**args)` of `ops` there and returns its
    result (a Django exception fails the test with Django's traceback)."""

    def __init__(self, venv_python, refproject_dir, env, workdir, ops):
        script = workdir / "django_worker.py"
        script.write_text(_WORKER_HEAD + ops + _WORKER_LOOP, encoding="utf-8")
        self.log_path = workdir / "django_worker.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [str(venv_python), str(script), str(refproject_dir)],
            env=env, cwd=str(refproject_dir), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._log, text=True, encoding="utf-8",
        )

    def log_text(self):
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-6000:]

    def call(self, op, **args):
        assert self.proc.poll() is None, f"the Django worker exited:\n{self.log_text()}"
        self.proc.stdin.write(json.dumps({"op": op, "args": args}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"the Django worker died during {op}:\n{self.log_text()}"
        answer = json.loads(line)
        if "error" in answer:
            raise AssertionError(f"Django raised during {op}({args}):\n{answer['error']}")
        return answer["result"]

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


def last_json(stdout, where):
    """The JSON document a one-off Django script (`manage.py shell -c`)
    printed on its last `RESULT ` line; Django may print other lines."""
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, f"{where}: the script printed no RESULT line:\n{stdout[-4000:]}"
    return json.loads(lines[-1][len("RESULT "):])
