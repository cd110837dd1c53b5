#!/usr/bin/env bash
# Benchmarks tenantry-layer in the leads example (examples/leads):
#
#  1. throughput of the same endpoints with the layer (tenant resolved through
#     Tenantry, served from the layer's cache) and without it (the baseline:
#     the same app with LEADS_AUTH=trusted-header, the tenant taken from a
#     header), measured in the same run, baseline before and after; the
#     ratio is layer / mean(baselines). `/whoami` touches no database (the
#     layer's own cost stands out), `/leads` is a real tenant-scoped query;
#  2. time from a key revocation in Tenantry to the app refusing that key
#     (push invalidation through GET /v1/changes), p50/p99 over many rounds
#     (bench/layer_revocation.py).
#
#   bench/layer.sh
#
# Environment (defaults in brackets):
#   BENCH_DURATION [10]  seconds per wrk run     BENCH_WARMUP [2]
#   BENCH_THREADS [1]    BENCH_CONNECTIONS [16]
#   BENCH_ROUNDS [200]   revocations measured
#   BENCH_NO_BUILD       use the existing target/release binaries
#   TEST_PG_URL          a superuser URL of a PostgreSQL cluster to use;
#                        otherwise a throw-away cluster is started here
# Installs wrk (Debian package) when missing. Everything started here is
# stopped and removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
THREADS=${BENCH_THREADS:-1}
CONNECTIONS=${BENCH_CONNECTIONS:-16}
ROUNDS=${BENCH_ROUNDS:-200}
ROOT_KEY=bench-root-key-0123456789abcdefghijklmnop

log() { printf '\033[1m[bench]\033[0m %s\n' "$*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

WORK=$(mktemp -d /tmp/tenantry-bench-layer.XXXXXX)
PIDS=() PG_DIR= as_pg=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  if [ -n "$PG_DIR" ]; then
    "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

if ! command -v wrk >/dev/null; then
  log "installing wrk"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi

if [ -z "${BENCH_NO_BUILD:-}" ]; then
  log "building release binaries (tenantry, leads)"
  cargo build --release --locked -p tenantry -p leads
fi
TENANTRY=target/release/tenantry LEADS=target/release/leads

# --- PostgreSQL (the leads database) ----------------------------------------
if [ -z "${TEST_PG_URL:-}" ]; then
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | tail -1)
  PG_DIR=$(mktemp -d /tmp/tenantry-bench-pg.XXXXXX)
  PG_PORT=$(free_port)
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$PG_DIR"; as_pg=(runuser -u postgres --); fi
  "${as_pg[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust --no-sync -E UTF8 >/dev/null
  "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off" start >/dev/null
  TEST_PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
fi
PG_BASE=${TEST_PG_URL%/*}
HOSTPART=${PG_BASE#*://}; HOSTPART=${HOSTPART#*@}
SUFFIX=$$$(date +%s)
DB=leads_bench_$SUFFIX ROLE=leads_bench_$SUFFIX
psql_admin() { psql "$TEST_PG_URL" -v ON_ERROR_STOP=1 -qc "$1"; }
psql_admin "CREATE DATABASE $DB"
psql_admin "CREATE ROLE $ROLE LOGIN NOSUPERUSER NOBYPASSRLS"

# --- Tenantry (SQLite) --------------------------------------------------------
T_PORT=$(free_port)
TENANTRY_DATA_DIR=$WORK/tenantry TENANTRY_ROOT_KEY=$ROOT_KEY TENANTRY_LISTEN=127.0.0.1:$T_PORT \
  TENANTRY_LOG_LEVEL=warn "$TENANTRY" serve >"$WORK/tenantry.log" 2>&1 &
PIDS+=($!)
T_URL=http://127.0.0.1:$T_PORT
for _ in $(seq 200); do curl -sf "$T_URL/healthz" >/dev/null && break; sleep 0.1; done
api() { curl -sf -X "$1" "$T_URL$2" -H "authorization: Bearer $ROOT_KEY" -H 'content-type: application/json' -d "$3"; }
api POST /v1/tenants '{"id":"acme","name":"Acme"}' >/dev/null
KEY=$(api POST /v1/tenants/acme/api-keys '{"name":"bench","scopes":["tenant:read"]}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')

# --- The app, with and without the layer ---------------------------------------
L_PORT=$(free_port) B_PORT=$(free_port)
LEADS_LISTEN=127.0.0.1:$L_PORT LEADS_DATABASE_URL="postgres://$ROLE@$HOSTPART/$DB" \
  LEADS_SETUP_ADMIN_URL="$PG_BASE/$DB" LEADS_APP_ROLE=$ROLE \
  TENANTRY_URL=$T_URL TENANTRY_SERVICE_KEY=$ROOT_KEY "$LEADS" >"$WORK/leads-layer.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$L_PORT/whoami" && break; sleep 0.1; done
LEADS_LISTEN=127.0.0.1:$B_PORT LEADS_DATABASE_URL="postgres://$ROLE@$HOSTPART/$DB" LEADS_AUTH=trusted-header \
  "$LEADS" >"$WORK/leads-baseline.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$B_PORT/whoami" && break; sleep 0.1; done
for i in $(seq 20); do
  curl -sf "http://127.0.0.1:$L_PORT/leads" -H "x-api-key: $KEY" -H 'content-type: application/json' \
    -d "{\"name\":\"lead $i\",\"email\":\"l$i@example.com\"}" >/dev/null
done

rps() { # url header → requests per second
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" -H "$2" "$1" >/dev/null
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -H "$2" "$1" | awk '/Requests\/sec/ {print $2}'
}
echo "| endpoint | baseline before (req/s) | with the layer (req/s) | baseline after (req/s) | ratio layer/baseline |"
echo "|---|---:|---:|---:|---:|"
for path in /whoami /leads; do
  b1=$(rps "http://127.0.0.1:$B_PORT$path" "x-tenant-id: acme")
  l=$(rps "http://127.0.0.1:$L_PORT$path" "x-api-key: $KEY")
  b2=$(rps "http://127.0.0.1:$B_PORT$path" "x-tenant-id: acme")
  ratio=$(python3 -c "print(f'{$l / (($b1 + $b2) / 2):.3f}')")
  echo "| GET $path | $b1 | $l | $b2 | $ratio |"
done

log "revocation to refusal, $ROUNDS rounds"
python3 bench/layer_revocation.py "$T_URL" "http://127.0.0.1:$L_PORT" "$ROOT_KEY" acme "$ROUNDS"
