#!/usr/bin/env bash
# Builds the image of the Dockerfile with a container engine (docker or
# podman, the first argument), then checks it: `--version`; `serve` with the
# image's defaults (SQLite in the /data volume) answers a page on loopback;
# `stop` ends it with status 0 within the grace period. The container, its
# volumes and the image are removed afterwards, also on a failure.
# scripts/test.sh runs this when an engine answers.
set -euo pipefail
cd "$(dirname "$0")/.."

engine="${1:-docker}"
tag="localhost/unchained-test:$$"
cid=""
cleanup() {
  if [[ -n $cid ]]; then "$engine" rm -f -v "$cid" >/dev/null 2>&1 || true; fi
  "$engine" rmi -f "$tag" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# A release build of the server takes minutes; give it at most 40.
timeout 2400 "$engine" build -t "$tag" .

version="$("$engine" run --rm "$tag" --version)"
if [[ $version != "unchained "* ]]; then
  echo "FAIL: --version in the image printed: $version" >&2
  exit 1
fi

cid="$("$engine" run -d -p 127.0.0.1::8000 \
  -e SECRET_KEY=container-test-key-with-enough-entropy-0123456789-abcdefgh \
  "$tag")"
port="$("$engine" port "$cid" 8000/tcp | head -n 1 | sed 's/.*://')"
status=""
for _ in $(seq 1 60); do
  status="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/users/login/" || true)"
  [[ $status == 200 ]] && break
  sleep 1
done
if [[ $status != 200 ]]; then
  "$engine" logs "$cid" >&2 || true
  echo "FAIL: the container did not answer /users/login/ with 200 (last: '$status')" >&2
  exit 1
fi

timeout 90 "$engine" stop -t 40 "$cid" >/dev/null
code="$("$engine" inspect -f '{{.State.ExitCode}}' "$cid")"
if [[ $code != 0 ]]; then
  "$engine" logs "$cid" >&2 || true
  echo "FAIL: serve in the container exited with status $code after SIGTERM" >&2
  exit 1
fi
echo "container image: built with $engine; '$version'; served /users/login/ (200) on 127.0.0.1:$port; stopped with status 0"
