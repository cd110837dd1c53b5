#!/usr/bin/env bash
# Provisioning throughput: N (default 1000) workflows started concurrently
# against local Meta/Genesys doubles that answer at once, beside N plain
# tenant creations in the same run, on SQLite (default) or PostgreSQL
# (BACKEND=postgres: a throw-away cluster, fsync off, started and removed
# here). Uses the debug binary (target/debug/tenantry); build it first.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000}
BACKEND=${BACKEND:-sqlite}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
DIR=$(mktemp -d /tmp/tenantry-bench-prov.XXXXXX)
ROOT=bench-root-key-0123456789abcdefghijklmnopq
PORT=$(free_port); DOUBLE=$(free_port)
as_pg=(); PG_BIN=; SERVER=
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
  if [ -n "$PG_BIN" ]; then "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$DIR/pg/data" -m immediate stop >/dev/null 2>&1 || true; fi
  rm -rf "$DIR"
}
trap cleanup EXIT
env_db=()
if [ "$BACKEND" = postgres ]; then
  PG_BIN=$(pg_config --bindir 2>/dev/null || true)
  [ -x "$PG_BIN/initdb" ] || PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | tail -1)
  PGPORT=$(free_port); mkdir -p "$DIR/pg"
  if [ "$(id -u)" = 0 ]; then chmod 755 "$DIR"; chown postgres:postgres "$DIR/pg"; as_pg=(runuser -u postgres --); fi
  "${as_pg[@]}" "$PG_BIN/initdb" -D "$DIR/pg/data" -U postgres -A trust --no-sync -E UTF8 >/dev/null
  "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$DIR/pg/data" -l "$DIR/pg/server.log" -w -t 60 \
    -o "-p $PGPORT -k $DIR/pg -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c max_connections=200" start >/dev/null
  env_db=(TENANTRY_DATABASE_URL="postgres://postgres@127.0.0.1:$PGPORT/postgres"
          TENANTRY_MASTER_KEY="$(python3 -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())')"
          TENANTRY_DATABASE_MAX_CONNECTIONS=32)
fi
env "${env_db[@]}" TENANTRY_DATA_DIR="$DIR/data" TENANTRY_ROOT_KEY="$ROOT" TENANTRY_LISTEN="127.0.0.1:$PORT" \
  TENANTRY_LOG=json TENANTRY_LOG_LEVEL=warn TENANTRY_OUTBOUND_ALLOWLIST=127.0.0.1/32 \
  TENANTRY_META_GRAPH_URL="http://127.0.0.1:$DOUBLE/meta" \
  TENANTRY_GENESYS_LOGIN_URL="http://127.0.0.1:$DOUBLE/login/{region}" \
  TENANTRY_GENESYS_API_URL="http://127.0.0.1:$DOUBLE/api/{region}" \
  TENANTRY_PROVISIONING_POLL_INTERVAL=100ms TENANTRY_MAX_CONNECTIONS=4096 \
  target/debug/tenantry serve >"$DIR/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
echo "backend=$BACKEND n=$N nproc=$(nproc) $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD)"
python3 bench/provisioning_load.py "http://127.0.0.1:$PORT" "$ROOT" "$N" "$DOUBLE"
grep -c '"level":"WARN"\|"level":"ERROR"' "$DIR/server.log" | sed 's/^/server warnings+errors: /' || true
