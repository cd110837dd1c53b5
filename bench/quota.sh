#!/usr/bin/env bash
# Quota consumption on one tenant's counter (issue 16): the direct path (one
# conditional statement per consume, TENANTRY_QUOTA_LEASE_MAX=0, the
# baseline) against leased blocks consumed in memory, measured interleaved
# in the same session next to the server's own /healthz.
#
#   bench/quota.sh [sqlite|postgres|all]        (default: all)
#
# For each backend it starts two release servers (PostgreSQL: both on one
# throw-away cluster with fsync=off, like scripts/test; SQLite: one file
# each), one tenant each with a hard quota of 10^12, and runs wrk
# (bench/limits.lua, mode quota: POST /v1/quotas/check, quantity 1,
# consume) against each in turn, twice. Afterwards both servers stop
# gracefully and the script checks that the counter equals the consumes
# the server acknowledged (wrk's request count of every run).
# Environment: BENCH_DURATION [10] s per run, BENCH_CONNECTIONS [16],
# BENCH_THREADS [1], BENCH_LEASE_MAX [1000].
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${1:-all}
DURATION=${BENCH_DURATION:-10}
CONNECTIONS=${BENCH_CONNECTIONS:-16}
THREADS=${BENCH_THREADS:-1}
LEASE_MAX=${BENCH_LEASE_MAX:-1000}
ROOT_KEY=bench-root-key-0123456789abcdefghijklmnop
log() { printf '\033[1m[bench]\033[0m %s\n' "$*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
command -v wrk >/dev/null || { [ "$(id -u)" = 0 ] && apt-get install -y -qq wrk >/dev/null; }

WORK=$(mktemp -d /tmp/tenantry-bench-quota.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -n "${PG_BIN:-}" ]; then "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -m immediate stop >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

log "building the release binary"
cargo build --release --locked -q -p tenantry
BIN=$(pwd)/target/release/tenantry

start_postgres() {
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | tail -1)
  PG_PORT=$(free_port)
  mkdir -p "$WORK/pg"
  AS_PG=()
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$WORK/pg"; chmod 755 "$WORK"; AS_PG=(runuser -u postgres --); fi
  "${AS_PG[@]}" "$PG_BIN/initdb" -D "$WORK/pg/data" -U postgres -A trust --no-sync >/dev/null
  "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/log" -w \
    -o "-p $PG_PORT -k $WORK/pg -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
}

start_server() { # $1 data dir, extra env in the rest; sets URL and SERVER_PID
  local dir=$1; shift
  local port; port=$(free_port)
  mkdir -p "$dir"
  (cd "$dir" && exec env "$@" TENANTRY_LISTEN=127.0.0.1:$port TENANTRY_DATA_DIR="$dir/data" TENANTRY_ROOT_KEY=$ROOT_KEY \
     TENANTRY_LOG_LEVEL=warn "$BIN" serve >"$dir/server.log" 2>&1) &
  PIDS+=($!)
  SERVER_PID=$!
  URL=http://127.0.0.1:$port
  for _ in $(seq 1 100); do curl -sf "$URL/healthz" >/dev/null && return 0; sleep 0.1; done
  cat "$dir/server.log" >&2; return 1
}

api() { curl -sf -H "Authorization: Bearer $ROOT_KEY" -H 'Content-Type: application/json' "$@"; }

prepare_tenant() { # $1 url, $2 tenant
  api -X POST "$1/v1/tenants" -d "{\"id\":\"$2\",\"name\":\"Bench\",\"plan\":\"enterprise\"}" >/dev/null
  api -X PATCH "$1/v1/tenants/$2/config" -d '{"quotas":{"messages_outbound":{"limit":1000000000000}}}' >/dev/null
}

run_wrk() { # $1 url, $2 tenant, $3 mode
  BENCH_MODE=$3 BENCH_ROOT_KEY=$ROOT_KEY BENCH_TENANT=$2 BENCH_RUN="m$RANDOM$RANDOM" \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s bench/limits.lua "$1" 2>&1 | grep BENCHRESULT
}

field() { sed -E "s/.*$1=([0-9.]+).*/\\1/" <<<"$2"; }

row() { # $1 label, $2 result line, $3 baseline rps
  printf '| %s | %.0f | %.2f | %.2f ms | %.2f ms | %s |\n' "$1" "$(field rps "$2")" \
    "$(python3 -c "print($(field rps "$2")/$3)")" "$(python3 -c "print($(field p50_us "$2")/1000)")" \
    "$(python3 -c "print($(field p99_us "$2")/1000)")" "$(field errors "$2")"
}

bench_backend() { # $1 sqlite|postgres
  local env=()
  if [ "$1" = postgres ]; then
    start_postgres
    env=(TENANTRY_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres" TENANTRY_MASTER_KEY=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=)
  fi
  start_server "$WORK/$1-direct" "${env[@]}" TENANTRY_QUOTA_LEASE_MAX=0 TENANTRY_NODE_ID=direct
  local direct_url=$URL direct_pid=$SERVER_PID
  start_server "$WORK/$1-leased" "${env[@]}" TENANTRY_QUOTA_LEASE_MAX="$LEASE_MAX" TENANTRY_NODE_ID=leased
  local leased_url=$URL leased_pid=$SERVER_PID
  prepare_tenant "$direct_url" direct
  prepare_tenant "$leased_url" leased
  prepare_tenant "$leased_url" warm-leased
  prepare_tenant "$direct_url" warm-direct
  # Warm-up (code paths, connections) on a tenant of its own.
  BENCH_MODE=quota BENCH_ROOT_KEY=$ROOT_KEY BENCH_TENANT=warm-leased wrk -t1 -c4 -d2s -s bench/limits.lua "$leased_url" >/dev/null 2>&1 || true
  BENCH_MODE=quota BENCH_ROOT_KEY=$ROOT_KEY BENCH_TENANT=warm-direct wrk -t1 -c4 -d2s -s bench/limits.lua "$direct_url" >/dev/null 2>&1 || true
  local h d1 l1 d2 l2
  h=$(run_wrk "$leased_url" leased healthz)
  d1=$(run_wrk "$direct_url" direct quota); l1=$(run_wrk "$leased_url" leased quota)
  d2=$(run_wrk "$direct_url" direct quota); l2=$(run_wrk "$leased_url" leased quota)
  local load; load=$(cut -d' ' -f1-3 /proc/loadavg)
  # Exactness: what the server reports used is every consume it admitted
  # (wrk counts the answered ones: at most one in flight per connection
  # more), and after a graceful stop the counter is exactly that.
  local used_live; used_live=$(api -X POST "$leased_url/v1/quotas/check" -d '{"tenant_id":"leased","meter":"messages_outbound"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["used"])')
  kill "$direct_pid" "$leased_pid"; wait "$direct_pid" "$leased_pid" 2>/dev/null || true
  start_server "$WORK/$1-leased" "${env[@]}" TENANTRY_QUOTA_LEASE_MAX=0
  local used_after; used_after=$(api -X POST "$URL/v1/quotas/check" -d '{"tenant_id":"leased","meter":"messages_outbound"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["used"])')
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
  local measured; measured=$(( $(field requests "$l1") + $(field requests "$l2") ))
  local base; base=$(field rps "$d1")
  echo
  echo "### $1 (wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, one tenant, quantity 1; load after: $load)"
  echo
  echo "| endpoint | consumes/s (= units/s) | ÷ direct (1st run) | p50 | p99 | errors |"
  echo "|---|---:|---:|---:|---:|---:|"
  row "GET /healthz (leased server, the floor)" "$h" "$base"
  row "POST /v1/quotas/check consume, direct (TENANTRY_QUOTA_LEASE_MAX=0)" "$d1" "$base"
  row "POST /v1/quotas/check consume, leased ($LEASE_MAX)" "$l1" "$base"
  row "POST /v1/quotas/check consume, direct (again)" "$d2" "$base"
  row "POST /v1/quotas/check consume, leased (again)" "$l2" "$base"
  echo
  echo "Leased tenant: used while running $used_live, after a graceful stop $used_after (wrk counted $measured answered consumes; at most $CONNECTIONS more were in flight when it stopped)."
}

case "$TARGET" in
  sqlite) bench_backend sqlite ;;
  postgres) bench_backend postgres ;;
  all) bench_backend sqlite; bench_backend postgres ;;
  *) echo "usage: $0 [sqlite|postgres|all]" >&2; exit 2 ;;
esac
