#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the test suite: `source .ci/pg.sh start` creates it in a
# temporary directory owned by the unprivileged `postgres` user (the server refuses to run as
# root), starts it on 127.0.0.1 and a Unix socket, and exports ORCH_TEST_PG_URL; `.ci/pg.sh stop`
# (or the trap `start` sets) stops it and removes the directory. Installs Debian's server
# package when it is missing.
set -euo pipefail

pg_bin() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
  done
  return 1
}

start() {
  if ! pg_bin >/dev/null; then
    echo "== installing PostgreSQL (Debian's postgresql package)"
    # A new machine's package lists may be missing or old: refresh them when the install fails.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null 2>&1 || {
      apt-get update -q >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null
    }
  fi
  local bin user dir port
  bin=$(pg_bin)
  user=postgres
  id "$user" >/dev/null 2>&1 || useradd --system --no-create-home "$user"
  dir=$(mktemp -d /tmp/orch-pg.XXXXXX)
  chown "$user" "$dir"
  chmod 700 "$dir"
  # A free port above the usual one.
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  runuser -u "$user" -- "$bin/initdb" -D "$dir/data" -U orch --auth=trust -E UTF8 >"$dir/initdb.log"
  # TLS: a certificate for localhost and 127.0.0.1 signed by a CA of its own, which the tests
  # of sslmode trust through ORCH_TEST_PG_CA.
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=orch test CA" \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" >/dev/null 2>&1
  openssl req -newkey rsa:2048 -nodes -subj /CN=localhost \
    -keyout "$dir/server.key" -out "$dir/server.csr" >/dev/null 2>&1
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$dir/server.ext"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 2 -extfile "$dir/server.ext" -out "$dir/server.crt" >/dev/null 2>&1
  chown "$user" "$dir/server.key" "$dir/server.crt"
  chmod 600 "$dir/server.key"
  runuser -u "$user" -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o \
    "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c fsync=off \
     -c ssl=on -c ssl_cert_file=$dir/server.crt -c ssl_key_file=$dir/server.key" start >/dev/null
  runuser -u "$user" -- "$bin/createdb" -h "$dir" -p "$port" -U orch orch_test
  pooler "$dir" "$port"
  export ORCH_PG_DIR="$dir" ORCH_PG_BIN="$bin"
  export ORCH_TEST_PG_URL="postgres://orch@127.0.0.1:$port/orch_test"
  export ORCH_TEST_PG_CA="$dir/ca.crt"
  echo "== PostgreSQL on $ORCH_TEST_PG_URL (socket $dir), PgBouncer on $ORCH_TEST_PGBOUNCER_URL"
}

# pooler DIR PORT: PgBouncer in session pooling in front of the cluster (any database name
# passes through to the server's), for the tests that run orch through a pooler; exports
# ORCH_TEST_PGBOUNCER_URL without a database name. Installs Debian's package when missing.
pooler() {
  local dir=$1 port=$2 bport
  if ! command -v pgbouncer >/dev/null; then
    echo "== installing PgBouncer (Debian's pgbouncer package)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q pgbouncer >/dev/null 2>&1 || {
      apt-get update -q >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q pgbouncer >/dev/null
    }
  fi
  bport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  printf '"orch" ""\n' >"$dir/pgbouncer.users"
  cat >"$dir/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=$port
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bport
unix_socket_dir =
auth_type = trust
auth_file = $dir/pgbouncer.users
pool_mode = session
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
  chown postgres "$dir/pgbouncer.ini" "$dir/pgbouncer.users"
  runuser -u postgres -- pgbouncer -d "$dir/pgbouncer.ini"
  export ORCH_TEST_PGBOUNCER_URL="postgres://orch@127.0.0.1:$bport"
}

stop() {
  local dir=${ORCH_PG_DIR:-} bin=${ORCH_PG_BIN:-}
  [ -n "$dir" ] || return 0
  [ -f "$dir/pgbouncer.pid" ] && kill "$(cat "$dir/pgbouncer.pid")" 2>/dev/null || true
  runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}

case "${1:-}" in
  start) start; trap stop EXIT ;;
  stop) stop ;;
  *) echo "usage: source .ci/pg.sh start | .ci/pg.sh stop" >&2; return 2 2>/dev/null || exit 2 ;;
esac
