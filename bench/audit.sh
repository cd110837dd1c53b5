#!/usr/bin/env bash
# What an audit entry adds to a change, on SQLite and PostgreSQL:
# crates/tenantry-store/benches/audit_append.rs against a throw-away
# PostgreSQL cluster (fsync=off, as in the tests) started here and removed on
# exit. Ratios are against baselines measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_BIN=$(pg_config --bindir 2>/dev/null || true)
[ -x "$PG_BIN/initdb" ] || PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | tail -1)
DIR=$(mktemp -d /tmp/tenantry-bench-pg.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
as_pg=()
if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$DIR"; as_pg=(runuser -u postgres --); fi
cleanup() {
  "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT
"${as_pg[@]}" "$PG_BIN/initdb" -D "$DIR/data" -U postgres -A trust --no-sync -E UTF8 >"$DIR/initdb.log" 2>&1
"${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
  -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
  start >/dev/null
TEST_PG_URL="postgres://postgres@127.0.0.1:$PORT/postgres" cargo bench -p tenantry-store --bench audit_append
