#!/usr/bin/env bash
# Benchmarks usage ingestion, rate-limit decisions and quota checks against
# the server's own /healthz, measured in the same session.
#
#   bench/limits.sh [sqlite|postgres|all]        (default: all)
#
# For each backend it starts the release binary (PostgreSQL in a throw-away
# cluster with fsync=off, like scripts/test) and runs wrk (bench/limits.lua):
#   /healthz (the floor) · one usage event per request · batches of 1,000 ·
#   POST /v1/ratelimit in process · POST /v1/quotas/check with consume;
# then restarts it with TENANTRY_REDIS_URL (a throw-away redis-server) and
# measures POST /v1/ratelimit through Redis. Prints Markdown tables.
# Environment: BENCH_DURATION [10] s per run, BENCH_CONNECTIONS [16], BENCH_THREADS [1].
#
#   bench/limits.sh metering [sqlite|postgres|all]
#
# Usage ingestion only (issue 16), before and after in one run: with
# BENCH_BASELINE_BIN (a release binary of an earlier commit) each backend
# runs the ingestion rows on that binary and on this checkout's, one after
# the other; then the storage's own ceiling for the same rows: SQLite
# (python3's sqlite3, the server's database file and pragmas) and
# PostgreSQL (pgbench inserting generate_series rows), 1,000 rows a
# transaction. BENCH_EVENT_CONNECTIONS [64] is the load of the extra
# single-event row; BENCH_PG_FSYNC [off] turns fsync on in the throw-away
# cluster (off is what scripts/test uses). BENCH_BIN runs that binary
# instead of building this checkout's.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${1:-all}
if [ "$TARGET" = metering ]; then METERING=1; TARGET=${2:-all}; else METERING=0; fi
EVENT_CONNECTIONS=${BENCH_EVENT_CONNECTIONS:-64}
PG_FSYNC=${BENCH_PG_FSYNC:-off}
DURATION=${BENCH_DURATION:-10}
CONNECTIONS=${BENCH_CONNECTIONS:-16}
THREADS=${BENCH_THREADS:-1}
ROOT_KEY=bench-root-key-0123456789abcdefghijklmnop
log() { printf '\033[1m[bench]\033[0m %s\n' "$*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
command -v wrk >/dev/null || { [ "$(id -u)" = 0 ] && apt-get install -y -qq wrk >/dev/null; }
command -v redis-server >/dev/null || { [ "$(id -u)" = 0 ] && apt-get install -y -qq redis-server >/dev/null; }

WORK=$(mktemp -d /tmp/tenantry-bench-limits.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -n "${PG_BIN:-}" ]; then "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -m immediate stop >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ -n "${BENCH_BIN:-}" ]; then
  BIN=$BENCH_BIN # an already built release binary (the "after" rows)
else
  log "building the release binary"
  cargo build --release --locked -q
  BIN=$(pwd)/target/release/tenantry
fi

start_postgres() {
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | tail -1)
  PG_PORT=$(free_port)
  mkdir -p "$WORK/pg"
  AS_PG=()
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$WORK/pg"; chmod 755 "$WORK"; AS_PG=(runuser -u postgres --); fi
  "${AS_PG[@]}" "$PG_BIN/initdb" -D "$WORK/pg/data" -U postgres -A trust --no-sync >/dev/null
  "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/log" -w \
    -o "-p $PG_PORT -k $WORK/pg -c listen_addresses=127.0.0.1 -c fsync=$PG_FSYNC -c max_connections=200" start >/dev/null
}

start_server() { # $1 data dir, extra env in the rest ($SERVER_BIN, else $BIN, is run)
  local dir=$1; shift
  local port; port=$(free_port)
  mkdir -p "$dir"
  (cd "$dir" && exec env "$@" TENANTRY_LISTEN=127.0.0.1:$port TENANTRY_DATA_DIR="$dir/data" TENANTRY_ROOT_KEY=$ROOT_KEY \
     TENANTRY_LOG_LEVEL=warn "${SERVER_BIN:-$BIN}" serve >"$dir/server.log" 2>&1) &
  PIDS+=($!)
  SERVER_PID=$!
  URL=http://127.0.0.1:$port
  for _ in $(seq 1 100); do curl -sf "$URL/healthz" >/dev/null && return 0; sleep 0.1; done
  cat "$dir/server.log" >&2; return 1
}

api() { curl -sf -H "Authorization: Bearer $ROOT_KEY" -H 'Content-Type: application/json' "$@" >/dev/null; }

prepare_tenant() {
  api -X POST "$URL/v1/tenants" -d '{"id":"bench","name":"Bench","plan":"enterprise"}'
  api -X PATCH "$URL/v1/tenants/bench/config" -d '{"rate_limits":{"bench_per_second":1000000000},"quotas":{"messages_outbound":{"limit":1000000000000}}}'
}

run_wrk() { # $1 mode, $2 connections [BENCH_CONNECTIONS]
  BENCH_MODE=$1 BENCH_ROOT_KEY=$ROOT_KEY BENCH_TENANT=bench BENCH_RUN="w$RANDOM" \
    wrk -t1 -c4 -d2s -s bench/limits.lua "$URL" >/dev/null 2>&1 || true
  BENCH_MODE=$1 BENCH_ROOT_KEY=$ROOT_KEY BENCH_TENANT=bench BENCH_RUN="m$RANDOM$RANDOM" \
    wrk -t"$THREADS" -c"${2:-$CONNECTIONS}" -d"${DURATION}s" --latency -s bench/limits.lua "$URL" 2>&1 | grep BENCHRESULT
}

row() { # $1 label, $2 result line, $3 healthz rps, $4 items per request
  local rps p50 p99 errors
  rps=$(sed -E 's/.*rps=([0-9.]+).*/\1/' <<<"$2"); p50=$(sed -E 's/.*p50_us=([0-9]+).*/\1/' <<<"$2")
  p99=$(sed -E 's/.*p99_us=([0-9]+).*/\1/' <<<"$2"); errors=$(sed -E 's/.*errors=([0-9]+).*/\1/' <<<"$2")
  printf '| %s | %.0f | %.0f | %.2f | %.2f ms | %.2f ms | %s |\n' "$1" "$rps" "$(python3 -c "print($rps*$4)")" \
    "$(python3 -c "print($rps/$3)")" "$(python3 -c "print($p50/1000)")" "$(python3 -c "print($p99/1000)")" "$errors"
}

bench_backend() { # $1 sqlite|postgres
  local env=()
  if [ "$1" = postgres ]; then
    start_postgres
    env=(TENANTRY_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres" TENANTRY_MASTER_KEY=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=)
  fi
  start_server "$WORK/$1" "${env[@]}"
  prepare_tenant
  local h1 ev ba rl qu h2
  h1=$(run_wrk healthz); ev=$(run_wrk event); ba=$(run_wrk batch); rl=$(run_wrk ratelimit); qu=$(run_wrk quota); h2=$(run_wrk healthz)
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
  local redis_port; redis_port=$(free_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >/dev/null 2>&1 &
  PIDS+=($!)
  sleep 0.5
  start_server "$WORK/$1-redis" "${env[@]}" TENANTRY_REDIS_URL="redis://127.0.0.1:$redis_port"
  [ "$1" = sqlite ] && prepare_tenant
  local hr rr
  hr=$(run_wrk healthz); rr=$(run_wrk ratelimit)
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
  local floor; floor=$(sed -E 's/.*rps=([0-9.]+).*/\1/' <<<"$h1")
  echo
  echo "### $1 (wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s)"
  echo
  echo "| endpoint | req/s | items/s | ratio vs /healthz | p50 | p99 | errors |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  row "GET /healthz (floor)" "$h1" "$floor" 1
  row "POST /v1/usage/events, 1 event" "$ev" "$floor" 1
  row "POST /v1/usage/events, batch of 1,000" "$ba" "$floor" 1000
  row "POST /v1/ratelimit (in process)" "$rl" "$floor" 1
  row "POST /v1/quotas/check (consume)" "$qu" "$floor" 1
  row "GET /healthz (again, last)" "$h2" "$floor" 1
  local floor_r; floor_r=$(sed -E 's/.*rps=([0-9.]+).*/\1/' <<<"$hr")
  row "GET /healthz (Redis-backed server)" "$hr" "$floor_r" 1
  row "POST /v1/ratelimit (through Redis)" "$rr" "$floor_r" 1
}

rate() { sed -E 's/.*rps=([0-9.]+).*/\1/' <<<"$1"; }

# The ingestion rows on one binary: prints "label|result" lines.
ingestion_rows() { # $1 data dir, $2 binary, extra env in the rest
  local dir=$1 bin=$2; shift 2
  SERVER_BIN=$bin start_server "$dir" "$@"
  prepare_tenant
  echo "GET /healthz (floor)|$(run_wrk healthz)"
  echo "POST /v1/usage/events, 1 event, -c$CONNECTIONS|$(run_wrk event)"
  echo "POST /v1/usage/events, 1 event, -c$EVENT_CONNECTIONS|$(run_wrk event "$EVENT_CONNECTIONS")"
  echo "POST /v1/usage/events, batch of 1,000|$(run_wrk batch)"
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
}

# 1,000-row transactions of usage_events inserts, on the storage alone:
# the most any server can record through it.
storage_ceiling() { # $1 sqlite|postgres, $2 sqlite database file
  if [ "$1" = sqlite ]; then
    python3 - "$2" <<'PY'
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
for pragma in ("journal_mode=wal", "synchronous=normal", "foreign_keys=on", "secure_delete=on"):
    c.execute("PRAGMA " + pragma)
row = "('bench', ?, 'messages_outbound', 1, '2026-01-01T00:00:00+00:00', NULL, '{}', '2026-01-01T00:00:00+00:00')"
sql = ("INSERT INTO usage_events (tenant_id, id, meter, quantity, occurred_at, subject, properties, received_at) VALUES "
       + ",".join([row] * 500) + " ON CONFLICT DO NOTHING RETURNING id")
n, start = 0, time.perf_counter()
for batch in range(100):
    c.execute("BEGIN IMMEDIATE")
    for half in range(2):
        ids = ["ceiling-%d" % (n + i) for i in range(500)]
        n += 500
        c.execute(sql, ids).fetchall()
    c.execute("COMMIT")
print("%.0f" % (n / (time.perf_counter() - start)))
PY
  else
    cat >"$WORK/ceiling.sql" <<'SQL'
INSERT INTO usage_events (tenant_id, id, meter, quantity, occurred_at, subject, properties, received_at)
SELECT 'bench', 'ceiling-' || :client_id || '-' || txid_current() || '-' || g, 'messages_outbound', 1, now(), NULL, '{}', now()
FROM generate_series(1, 1000) g ON CONFLICT DO NOTHING;
SQL
    local tps
    tps=$("$PG_BIN/pgbench" -n -h 127.0.0.1 -p "$PG_PORT" -U postgres -c 2 -j 2 -T "$DURATION" -f "$WORK/ceiling.sql" postgres 2>/dev/null \
      | sed -nE 's/^tps = ([0-9.]+).*/\1/p')
    python3 -c "print('%.0f' % ($tps * 1000))"
  fi
}

metering_backend() { # $1 sqlite|postgres
  local env=()
  if [ "$1" = postgres ]; then
    start_postgres
    env=(TENANTRY_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres" TENANTRY_MASTER_KEY=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=)
  fi
  local before=() after=()
  if [ -n "${BENCH_BASELINE_BIN:-}" ]; then
    local env_before=("${env[@]}")
    if [ "$1" = postgres ]; then
      "$PG_BIN/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "CREATE DATABASE before" postgres >/dev/null
      env_before=(TENANTRY_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/before" "${env[@]:1}")
    fi
    mapfile -t before < <(ingestion_rows "$WORK/$1-before" "$BENCH_BASELINE_BIN" "${env_before[@]}")
  fi
  mapfile -t after < <(ingestion_rows "$WORK/$1" "$BIN" "${env[@]}")
  local ceiling; ceiling=$(storage_ceiling "$1" "$WORK/$1/data/tenantry.db")
  echo
  echo "### $1 (wrk -t$THREADS -d${DURATION}s; PostgreSQL fsync=$PG_FSYNC; $(uptime | sed 's/.*load/load/'))"
  echo
  echo "| endpoint | before req/s | before items/s | after req/s | after items/s | after p50 / p99 | after / before |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  local i
  for i in "${!after[@]}"; do
    local label=${after[$i]%%|*} a=${after[$i]#*|} b='' per=1
    [[ $label == *"batch of 1,000"* ]] && per=1000
    [ ${#before[@]} -gt 0 ] && b=${before[$i]#*|}
    local ar br; ar=$(rate "$a"); br=${b:+$(rate "$b")}
    local p50 p99; p50=$(sed -E 's/.*p50_us=([0-9]+).*/\1/' <<<"$a"); p99=$(sed -E 's/.*p99_us=([0-9]+).*/\1/' <<<"$a")
    python3 -c "
b='$br'; a=$ar; per=$per
bs = '%.0f | %.0f' % (float(b), float(b)*per) if b else '- | -'
ratio = '%.2f×' % (a/float(b)) if b else '-'
print('| $label | %s | %.0f | %.0f | %.2f / %.2f ms | %s |' % (bs, a, a*per, $p50/1000, $p99/1000, ratio))"
  done
  echo "| storage alone: usage_events inserts, 1,000 a transaction | | | | $ceiling rows/s | | |"
}

if [ "$METERING" = 1 ]; then
  case "$TARGET" in
    sqlite|postgres) metering_backend "$TARGET" ;;
    all) metering_backend sqlite; metering_backend postgres ;;
    *) echo "usage: $0 metering [sqlite|postgres|all]" >&2; exit 2 ;;
  esac
  exit 0
fi

case "$TARGET" in
  sqlite) bench_backend sqlite ;;
  postgres) bench_backend postgres ;;
  all) bench_backend sqlite; bench_backend postgres ;;
  *) echo "usage: $0 [sqlite|postgres|all]" >&2; exit 2 ;;
esac
