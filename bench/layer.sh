#!/usr/bin/env bash
# Benchmarks tenantry-layer in the leads example (examples/leads):
#
#  1. throughput of the same endpoints with the layer (tenant resolved through
#     Tenantry, served from the layer's cache) and without it (the baseline:
#     the same app with LEADS_AUTH=trusted-header, the tenant taken from a
#     header), measured in the same run, baseline before and after; the
#     ratio is layer / mean(baselines). Two baselines: "same context"
#     (LEADS_TRUSTED_CONTEXT: the context Tenantry resolved for the key, so
#     both apps answer the same bytes; the ratio against it is the layer's
#     cost) and "header" (a context with no features or limits, built per
#     request: shorter /whoami answers, shown for continuity with earlier
#     runs). `/whoami` touches no database (the layer's own cost stands out),
#     `/leads` is a real tenant-scoped query;
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
#   BENCH_OTHER_LEADS    another leads binary (e.g. built before a change)
#                        measured with the layer in the same run
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
# The "same context" baseline: what the layer put in the request, as JSON.
CONTEXT=$(curl -sf "http://127.0.0.1:$L_PORT/whoami" -H "x-api-key: $KEY" |
  python3 -c 'import json,sys; c=json.load(sys.stdin); c["status"]="active"; print(json.dumps(c))')
S_PORT=$(free_port)
LEADS_LISTEN=127.0.0.1:$S_PORT LEADS_DATABASE_URL="postgres://$ROLE@$HOSTPART/$DB" LEADS_AUTH=trusted-header \
  LEADS_TRUSTED_CONTEXT="$CONTEXT" "$LEADS" >"$WORK/leads-same.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$S_PORT/whoami" && break; sleep 0.1; done
O_PORT=
if [ -n "${BENCH_OTHER_LEADS:-}" ]; then
  O_PORT=$(free_port)
  LEADS_LISTEN=127.0.0.1:$O_PORT LEADS_DATABASE_URL="postgres://$ROLE@$HOSTPART/$DB" \
    TENANTRY_URL=$T_URL TENANTRY_SERVICE_KEY=$ROOT_KEY "$BENCH_OTHER_LEADS" >"$WORK/leads-other.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$O_PORT/whoami" && break; sleep 0.1; done
fi
for path in /whoami /leads; do
  a=$(curl -sf "http://127.0.0.1:$L_PORT$path" -H "x-api-key: $KEY")
  b=$(curl -sf "http://127.0.0.1:$S_PORT$path" -H "x-tenant-id: acme")
  [ "$a" = "$b" ] || { log "GET $path: the same-context baseline answers differently"; exit 1; }
done

rps() { # url header → requests per second
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" -H "$2" "$1" >/dev/null
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -H "$2" "$1" | awk '/Requests\/sec/ {print $2}'
}
log "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| endpoint | same-context baseline before | header baseline before | with the layer | ${O_PORT:+other build, with the layer |} header baseline after | same-context baseline after | ratio layer / same-context baseline | ${O_PORT:+ratio other / same-context baseline |} ratio layer / header baseline |"
echo "|---|---:|---:|---:|${O_PORT:+---:|}---:|---:|---:|${O_PORT:+---:|}---:|"
for path in /whoami /leads; do
  s1=$(rps "http://127.0.0.1:$S_PORT$path" "x-tenant-id: acme")
  b1=$(rps "http://127.0.0.1:$B_PORT$path" "x-tenant-id: acme")
  l=$(rps "http://127.0.0.1:$L_PORT$path" "x-api-key: $KEY")
  o=; [ -z "$O_PORT" ] || o=$(rps "http://127.0.0.1:$O_PORT$path" "x-api-key: $KEY")
  b2=$(rps "http://127.0.0.1:$B_PORT$path" "x-tenant-id: acme")
  s2=$(rps "http://127.0.0.1:$S_PORT$path" "x-tenant-id: acme")
  same=$(python3 -c "print(f'{$l / (($s1 + $s2) / 2):.3f}')")
  header=$(python3 -c "print(f'{$l / (($b1 + $b2) / 2):.3f}')")
  other=; [ -z "$o" ] || other="$(python3 -c "print(f'{$o / (($s1 + $s2) / 2):.3f}')") | "
  echo "| GET $path | $s1 | $b1 | $l | ${o:+$o | }$b2 | $s2 | $same | $other$header |"
done
log "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

log "revocation to refusal, $ROUNDS rounds"
python3 bench/layer_revocation.py "$T_URL" "http://127.0.0.1:$L_PORT" "$ROOT_KEY" acme "$ROUNDS"
