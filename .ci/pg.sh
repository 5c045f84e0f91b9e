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
  runuser -u "$user" -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o \
    "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c fsync=off" start >/dev/null
  runuser -u "$user" -- "$bin/createdb" -h "$dir" -p "$port" -U orch orch_test
  export ORCH_PG_DIR="$dir" ORCH_PG_BIN="$bin"
  export ORCH_TEST_PG_URL="postgres://orch@127.0.0.1:$port/orch_test"
  echo "== PostgreSQL on $ORCH_TEST_PG_URL (socket $dir)"
}

stop() {
  local dir=${ORCH_PG_DIR:-} bin=${ORCH_PG_BIN:-}
  [ -n "$dir" ] || return 0
  runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}

case "${1:-}" in
  start) start; trap stop EXIT ;;
  stop) stop ;;
  *) echo "usage: source .ci/pg.sh start | .ci/pg.sh stop" >&2; return 2 2>/dev/null || exit 2 ;;
esac
