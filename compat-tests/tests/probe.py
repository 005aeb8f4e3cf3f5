"""The Rust side of the compat tests: `examples/compat_probe`, started once.

The probe reads one JSON request per line on stdin and answers one JSON line
on stdout. Test modules import the fixture:

    from probe import probe  # noqa: F401  (pytest finds the fixture by name)

    def test_x(probe):
        assert probe("make_password", password="x")["encoded"].startswith("pbkdf2_sha256$")

`probe(op, **fields)` returns the decoded answer. An answer holding only an
`error` for a request the probe did not understand is returned as is (tests
decide what an error means); a dead or silent probe fails the test with its
stderr.

Environment: COMPAT_PROBE_BIN=/path/compat_probe uses that binary instead of
building examples/compat_probe.
"""
import json
import os
import queue
import subprocess
import threading

import pytest

# Generous: a scrypt or 1,000,000-iteration PBKDF2 hash on a busy 2-core box,
# or a has_perm batch over a database, can take a while.
ANSWER_TIMEOUT = 300


class ProbeError(AssertionError):
    pass


class Probe:
    def __init__(self, path):
        self.path = str(path)
        self.proc = subprocess.Popen(
            [self.path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        self._lines = queue.Queue()
        self._stderr = []
        threading.Thread(target=self._pump, args=(self.proc.stdout, self._lines), daemon=True).start()
        threading.Thread(target=self._drain, daemon=True).start()
        self.requests = 0

    @staticmethod
    def _pump(stream, q):
        for line in stream:
            q.put(line)
        q.put(None)  # end of output: the probe exited

    def _drain(self):
        for line in self.proc.stderr:
            self._stderr.append(line)
            del self._stderr[:-200]

    def _fail(self, what, request):
        shown = request if len(request) < 2000 else request[:2000] + "..."
        raise ProbeError(
            f"compat_probe {what}\nrequest: {shown}\nexit code: {self.proc.poll()}\n"
            f"stderr (tail):\n{''.join(self._stderr)[-4000:]}"
        )

    def __call__(self, op, /, **fields):
        request = json.dumps({"op": op, **fields}, ensure_ascii=False)
        if self.proc.poll() is not None:
            self._fail("is not running", request)
        try:
            self.proc.stdin.write(request + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self._fail("closed its input", request)
        self.requests += 1
        try:
            line = self._lines.get(timeout=ANSWER_TIMEOUT)
        except queue.Empty:
            self._fail(f"gave no answer within {ANSWER_TIMEOUT}s", request)
        if line is None:
            self._fail("exited without answering", request)
        try:
            answer = json.loads(line)
        except ValueError:
            self._fail(f"answered a line that is not JSON: {line!r}", request)
        if not isinstance(answer, dict):
            self._fail(f"answered a non-object: {line!r}", request)
        return answer

    def expect(self, op, answer_key, /, **fields):
        """Call `op` and return answer[answer_key]; an answer without it fails the test."""
        answer = self(op, **fields)
        if answer_key not in answer:
            shown = json.dumps(fields, ensure_ascii=False)
            raise ProbeError(
                f"compat_probe op {op!r} answered {answer!r} (no {answer_key!r}); fields: {shown[:2000]}"
            )
        return answer[answer_key]

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="session")
def probe(request):
    # COMPAT_PROBE_BIN=/path/compat_probe uses that binary instead of building
    # one (as UNCHAINED_BIN does for the main binary).
    path = os.environ.get("COMPAT_PROBE_BIN") or request.getfixturevalue("probe_bin")
    p = Probe(path)
    yield p
    p.close()
