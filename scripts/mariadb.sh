#!/usr/bin/env bash
# A throw-away MariaDB server for the compat tests (the MySQL/MariaDB back end).
#
#   scripts/mariadb.sh start          start it (install/initialise first if needed); prints the base URL
#   scripts/mariadb.sh stop           stop it
#   scripts/mariadb.sh status         exit 0 when running (and answering)
#   scripts/mariadb.sh url            print the base URL
#   scripts/mariadb.sh socket         print the server's unix socket (root: mariadb --socket=... -uroot)
#   scripts/mariadb.sh createdb NAME  (re)create an empty utf8mb4 database NAME; prints its URL
#
# The server keeps everything in $MARIADB_DATA_DIR (default: <repo>/target/mariadb):
# tables, unix socket, pid file, server.log. It reads no option file (no
# /etc/mysql), listens on 127.0.0.1:${MARIADB_PORT:-33069} only, and has the
# user unchained/unchained with all privileges (it creates databases) besides
# root without a password (over the socket in the data directory only). The
# server's character set is utf8mb4 with collation utf8mb4_general_ci, the
# settings Debian's packaged configuration gives. It runs as the `mysql`
# system user when this script runs as root (as root itself when that user
# cannot write the data directory).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA_DIR="${MARIADB_DATA_DIR:-$ROOT/target/mariadb}"
PORT="${MARIADB_PORT:-33069}"
SOCKET="$DATA_DIR/mysqld.sock"
PID_FILE="$DATA_DIR/mysqld.pid"
LOG_FILE="$DATA_DIR/server.log"
USER_NAME=unchained
BASE_URL="mysql://$USER_NAME:$USER_NAME@127.0.0.1:$PORT"
CHARSET=utf8mb4
COLLATION=utf8mb4_general_ci

log() { echo "mariadb.sh: $*" >&2; }

have_server() {
  command -v mariadbd >/dev/null 2>&1 || [[ -x /usr/sbin/mariadbd ]]
}

install_mariadb() {
  log "MariaDB not found, installing mariadb-server with apt-get"
  local sudo=""
  [[ "$(id -u)" != 0 ]] && sudo="sudo"
  # The package must not start (or set up) a system server: policy-rc.d
  # usually forbids it in containers; either way ours is a separate one.
  if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q mariadb-server mariadb-client >&2; then
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q mariadb-server mariadb-client >&2
  fi
}

if ! have_server && [[ "${1:-}" != stop && "${1:-}" != url && "${1:-}" != socket ]]; then
  install_mariadb
  have_server || { log "mariadbd still not found after installing mariadb-server"; exit 1; }
fi
MARIADBD="$(command -v mariadbd 2>/dev/null || echo /usr/sbin/mariadbd)"

# As root, the server runs as the mysql user (mariadbd refuses root without
# --user=root), unless that user cannot write the data directory.
RUN_USER="$(id -un)"
pick_run_user() {
  [[ "$(id -u)" == 0 ]] || return 0
  RUN_USER=root
  if id mysql >/dev/null 2>&1 && command -v runuser >/dev/null 2>&1; then
    mkdir -p "$DATA_DIR"
    chown mysql: "$DATA_DIR"
    if runuser -u mysql -- test -w "$DATA_DIR" -a -x "$DATA_DIR"; then
      RUN_USER=mysql
    else
      chown root: "$DATA_DIR"
    fi
  fi
}

# The root account, over the private socket (nothing else listens there).
admin() { mariadb-admin --no-defaults --protocol=socket --socket="$SOCKET" -uroot "$@"; }
sql_root() { mariadb --no-defaults --protocol=socket --socket="$SOCKET" -uroot --batch --skip-column-names "$@"; }

server_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(cat "$PID_FILE" 2>/dev/null)"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

is_running() {
  server_pid >/dev/null && admin --connect-timeout=2 ping >/dev/null 2>&1
}

init_datadir() {
  mkdir -p "$DATA_DIR"
  chmod 700 "$DATA_DIR"
  [[ "$RUN_USER" == mysql ]] && chown -R mysql: "$DATA_DIR"
  log "mariadb-install-db in $DATA_DIR (as $RUN_USER)"
  mariadb-install-db --no-defaults --datadir="$DATA_DIR" --user="$RUN_USER" \
    --auth-root-authentication-method=normal --skip-test-db \
    --skip-name-resolve >"$DATA_DIR/install-db.log" 2>&1 \
    || { log "mariadb-install-db failed; log follows"; tail -n 30 "$DATA_DIR/install-db.log" >&2; exit 1; }
  touch "$DATA_DIR/.initialised"
}

start_server() {
  rm -f "$SOCKET" "$SOCKET.lock"
  # Test server: speed over durability (no doublewrite, lazy log flushes).
  setsid "$MARIADBD" --no-defaults \
    --user="$RUN_USER" \
    --datadir="$DATA_DIR" \
    --socket="$SOCKET" \
    --pid-file="$PID_FILE" \
    --log-error="$LOG_FILE" \
    --bind-address=127.0.0.1 \
    --port="$PORT" \
    --skip-name-resolve \
    --character-set-server="$CHARSET" \
    --collation-server="$COLLATION" \
    --max-connections=200 \
    --innodb-flush-log-at-trx-commit=0 \
    --innodb-doublewrite=0 \
    --innodb-buffer-pool-size=128M \
    --skip-log-bin \
    </dev/null >>"$LOG_FILE" 2>&1 9>&- &
  local pid=$! i
  for ((i = 0; i < 600; i++)); do
    if admin --connect-timeout=2 ping >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  log "server did not start; log follows"
  tail -n 30 "$LOG_FILE" >&2
  exit 1
}

setup_accounts() {
  # root only over the socket (install-db also makes passwordless
  # root@127.0.0.1, ::1 and @hostname); anonymous accounts would shadow
  # unchained@localhost (--skip-test-db should make none). Time zone tables:
  # Django's date lookups with USE_TZ need CONVERT_TZ with named zones.
  if ! [[ -f "$DATA_DIR/.accounts" ]]; then
    sql_root mysql <<EOF
DELETE FROM mysql.global_priv WHERE User = '' OR (User = 'root' AND Host <> 'localhost');
DELETE FROM mysql.proxies_priv WHERE Host <> 'localhost';
FLUSH PRIVILEGES;
CREATE USER IF NOT EXISTS '$USER_NAME'@'%' IDENTIFIED BY '$USER_NAME';
CREATE USER IF NOT EXISTS '$USER_NAME'@'localhost' IDENTIFIED BY '$USER_NAME';
GRANT ALL PRIVILEGES ON *.* TO '$USER_NAME'@'%' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO '$USER_NAME'@'localhost' WITH GRANT OPTION;
EOF
    if [[ -d /usr/share/zoneinfo ]] && command -v mariadb-tzinfo-to-sql >/dev/null 2>&1; then
      mariadb-tzinfo-to-sql /usr/share/zoneinfo 2>/dev/null | sql_root mysql
    fi
    touch "$DATA_DIR/.accounts"
  fi
}

start() {
  if ! is_running; then
    if server_pid >/dev/null; then
      log "a server (pid $(server_pid)) owns $DATA_DIR but does not answer; see $LOG_FILE"
      exit 1
    fi
    if [[ ! -f "$DATA_DIR/.initialised" ]]; then rm -rf "$DATA_DIR"; pick_run_user; init_datadir; else pick_run_user; fi
    [[ "$RUN_USER" == mysql ]] && chown -R mysql: "$DATA_DIR"
    start_server
  fi
  setup_accounts
}

stop() {
  local pid i
  pid="$(server_pid)" || return 0
  admin shutdown >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
  for ((i = 0; i < 600; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  log "server (pid $pid) did not stop within 60 s"
  exit 1
}

with_lock() {
  mkdir -p "$(dirname "$DATA_DIR")"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$DATA_DIR.lock"
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
    with_lock stop
    ;;
  status)
    is_running
    ;;
  url)
    echo "$BASE_URL"
    ;;
  socket)
    echo "$SOCKET"
    ;;
  createdb)
    name="${2:-}"
    [[ "$name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || { log "usage: $0 createdb NAME (letters, digits, _)"; exit 2; }
    with_lock start
    sql_root -e "DROP DATABASE IF EXISTS \`$name\`; CREATE DATABASE \`$name\` CHARACTER SET $CHARSET COLLATE $COLLATION"
    echo "$BASE_URL/$name"
    ;;
  *)
    echo "usage: $0 start|stop|status|url|socket|createdb NAME" >&2
    exit 2
    ;;
esac
