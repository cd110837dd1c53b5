#!/usr/bin/env bash
# Acknowledgement latency of WhatsApp deliveries (POST /v1/webhooks/whatsapp/
# {tenant}: signature check, durable store, parse, events, audit, usage, one
# commit) under load, against GET /healthz measured in the same run at the
# same concurrency (the ratio is the comparable figure). SQLite, the debug
# binary (the project does not build --release on this shared machine).
# Load generator: bench/inbound.py (Python threads, stdlib HMAC-SHA256, so the
# signatures are computed independently of the server's code).
#   bench/inbound.sh [seconds per phase, default 10] [concurrency, default 8]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_PHASE=${1:-10}
CONCURRENCY=${2:-8}
cargo build -q --locked -p tenantry
BIN=$(pwd)/target/debug/tenantry
WORK=$(mktemp -d /tmp/tenantry-bench-inbound.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ROOT_KEY=tnt_root_bench_inbound_0123456789abcdef
cleanup() { [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
(cd "$WORK" && exec env TENANTRY_LISTEN=127.0.0.1:$PORT TENANTRY_DATA_DIR="$WORK/data" TENANTRY_ROOT_KEY=$ROOT_KEY \
   TENANTRY_LOG_LEVEL=warn "$BIN" serve >"$WORK/server.log" 2>&1) &
PID=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
python3 bench/inbound.py "http://127.0.0.1:$PORT" "$ROOT_KEY" "$SECONDS_PER_PHASE" "$CONCURRENCY"
