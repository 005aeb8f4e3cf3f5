#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for the compat tests.
#
#   scripts/postgres.sh start          start it (install/initdb first if needed); prints the base URL
#   scripts/postgres.sh stop           stop it
#   scripts/postgres.sh status         exit 0 when running
#   scripts/postgres.sh url            print the base URL
#   scripts/postgres.sh bindir         print the PostgreSQL bin directory (pg_dump, psql, ...)
#   scripts/postgres.sh createdb NAME  (re)create an empty database NAME; prints its URL
#
# The cluster lives in $PGDATA_DIR (default: <repo>/target/pgdata), listens on
# 127.0.0.1:${PGPORT:-54329} only, keeps its unix socket in that directory,
# trusts local connections and has a superuser role unchained/unchained.
# It runs as the `postgres` system user when this script runs as root.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PGDATA_DIR="${PGDATA_DIR:-$ROOT/target/pgdata}"
PGPORT="${PGPORT:-54329}"
ROLE=unchained
BASE_URL="postgres://$ROLE:$ROLE@127.0.0.1:$PGPORT"

log() { echo "postgres.sh: $*" >&2; }

find_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [[ -x "$d/initdb" && -x "$d/pg_ctl" ]]; then echo "$d"; return 0; fi
  done
  d="$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/x)")"
  if [[ -x "$d/initdb" && -x "$d/pg_ctl" ]]; then echo "$d"; return 0; fi
  return 1
}

install_postgres() {
  log "PostgreSQL not found, installing it with apt-get"
  local sudo=""
  [[ "$(id -u)" != 0 ]] && sudo="sudo"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2
}

BIN="$(find_bindir || true)"
if [[ -z "$BIN" && "${1:-}" != stop && "${1:-}" != url ]]; then
  install_postgres
  BIN="$(find_bindir)" || { log "initdb still not found after installing postgresql"; exit 1; }
fi

# Run server-side commands as a non-root user (postgres refuses to run as root).
RUN_USER="$(id -un)"
as_pg() { "$@"; }
if [[ "$(id -u)" == 0 ]]; then
  RUN_USER=postgres
  if ! id postgres >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  fi
  if command -v runuser >/dev/null 2>&1; then
    as_pg() { runuser -u postgres -- "$@"; }
  else
    as_pg() { su -s /bin/sh postgres -c "$(printf '%q ' "$@")"; }
  fi
fi

psql_admin() {
  PGOPTIONS="-c client_min_messages=warning" "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U "$1" -d postgres "${@:2}"
}

is_running() {
  [[ -n "$BIN" && -f "$PGDATA_DIR/PG_VERSION" ]] && as_pg "$BIN/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1
}

init_cluster() {
  mkdir -p "$PGDATA_DIR"
  [[ "$(id -u)" == 0 ]] && chown -R postgres: "$PGDATA_DIR"
  if ! as_pg test -w "$PGDATA_DIR"; then
    log "$PGDATA_DIR is not writable by user $RUN_USER (is a parent directory closed?); set PGDATA_DIR"
    exit 1
  fi
  chmod 700 "$PGDATA_DIR"
  log "initdb in $PGDATA_DIR"
  as_pg "$BIN/initdb" -D "$PGDATA_DIR" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
  cat >>"$PGDATA_DIR/postgresql.conf" <<EOF
# added by scripts/postgres.sh (test cluster: speed over durability)
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$PGDATA_DIR'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF
}

start() {
  if ! is_running; then
    [[ -f "$PGDATA_DIR/PG_VERSION" ]] || init_cluster
    [[ "$(id -u)" == 0 ]] && chown -R postgres: "$PGDATA_DIR"
    as_pg "$BIN/pg_ctl" -D "$PGDATA_DIR" -l "$PGDATA_DIR/server.log" \
      -o "-p $PGPORT" -w -t 60 start >/dev/null 9>&- \
      || { log "server did not start; log follows"; tail -n 30 "$PGDATA_DIR/server.log" >&2; exit 1; }
  fi
  if ! psql_admin "$ROLE" -c "select 1" >/dev/null 2>&1; then
    psql_admin postgres -c "CREATE ROLE $ROLE WITH LOGIN SUPERUSER PASSWORD '$ROLE'"
  fi
}

with_lock() {
  mkdir -p "$(dirname "$PGDATA_DIR")"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$PGDATA_DIR.lock"
    flock 9
  fi
  "$@"
}

case "${1:-}" in
  start)
    with_lock start
    echo "$BASE_URL"
    ;;
  stop)
    if is_running; then as_pg "$BIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w stop >/dev/null; fi
    ;;
  status)
    is_running
    ;;
  url)
    echo "$BASE_URL"
    ;;
  bindir)
    echo "$BIN"
    ;;
  createdb)
    name="${2:-}"
    [[ "$name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || { log "usage: $0 createdb NAME (letters, digits, _)"; exit 2; }
    with_lock start
    psql_admin "$ROLE" -c "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" -c "CREATE DATABASE \"$name\""
    echo "$BASE_URL/$name"
    ;;
  *)
    echo "usage: $0 start|stop|status|url|bindir|createdb NAME" >&2
    exit 2
    ;;
esac
