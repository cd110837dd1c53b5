#!/usr/bin/env bash
# Resolution by an external login token (RS256 and EdDSA, the issuer's keys
# cached) beside resolution by API key, in one server session, on SQLite:
# GET /v1/resolve with `Authorization: Bearer …`, wrk -t1 -cBENCH_CONNECTIONS.
#
# Rows: an API key; one RS256 / EdDSA token sent again and again (verified
# once, then answered from the verified-token cache, as a user's session
# does); BENCH_TOKENS distinct RS256 / EdDSA tokens sent in turn (each one
# verified from scratch the first time it is seen: the signature check's
# cost). Ratios are against the API key row of the same run.
#
# Tokens are minted by PyJWT (crates/tenantry/tests/support/jwt_mint.py); the
# issuer's key set is served by `python3 -m http.server`. Uses an existing
# binary (BENCH_BIN, default target/debug/tenantry: this project's machines
# build no release binaries; the ratios are the comparable figures).
#
#   BENCH_DURATION [5] seconds per run   BENCH_CONNECTIONS [8]   BENCH_TOKENS [2000]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BENCH_BIN:-target/debug/tenantry}
DURATION=${BENCH_DURATION:-5}
CONNECTIONS=${BENCH_CONNECTIONS:-8}
TOKENS=${BENCH_TOKENS:-2000}
MINT=crates/tenantry/tests/support/jwt_mint.py
ROOT=bench-root-key-0123456789abcdefghijklmnop
[ -x "$BIN" ] || { echo "no binary at $BIN (cargo build first)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk not found" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
DIR=$(mktemp -d /tmp/tenantry-bench-identity.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$DIR"; }
trap cleanup EXIT

# The issuer: keys, and a key set served over http.
echo '[{"alg":"RS256","kid":"rs"},{"alg":"EdDSA","kid":"ed"}]' | python3 "$MINT" keys >"$DIR/keys.json"
mkdir "$DIR/www"
python3 -c 'import json,sys; k=json.load(open(sys.argv[1])); print(json.dumps({"keys":[x["jwk"] for x in k]}))' \
  "$DIR/keys.json" >"$DIR/www/jwks.json"
JWKS_PORT=$(free_port)
python3 -m http.server "$JWKS_PORT" --bind 127.0.0.1 --directory "$DIR/www" >/dev/null 2>&1 &
PIDS+=($!)

PORT=$(free_port)
TENANTRY_LISTEN=127.0.0.1:$PORT TENANTRY_DATA_DIR=$DIR/data TENANTRY_ROOT_KEY=$ROOT \
  TENANTRY_OUTBOUND_ALLOWLIST=127.0.0.1/32 TENANTRY_LOG_LEVEL=error TENANTRY_RESOLVE_ANONYMOUS_PER_MINUTE=0 \
  "$BIN" serve >"$DIR/server.log" 2>&1 &
PIDS+=($!)
BASE=http://127.0.0.1:$PORT
for _ in $(seq 100); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.2; done
api() { curl -sf -H "Authorization: Bearer $ROOT" -H 'Content-Type: application/json' "$@"; }
api -X POST "$BASE/v1/tenants" -d '{"id":"bench","name":"Bench"}' >/dev/null
KEY=$(api -X POST "$BASE/v1/tenants/bench/api-keys" -d '{"name":"k","scopes":["tenant:read"]}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
IDP=$(api -X POST "$BASE/v1/identity-providers" -d "{\"issuer\":\"https://bench-idp/\",\"jwks_url\":\"http://127.0.0.1:$JWKS_PORT/jwks.json\",\"audiences\":[\"app\"],\"algorithms\":[\"RS256\",\"EdDSA\"],\"tenant_claim\":\"tenant_id\",\"trust_tenant_claim\":true}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
# Resolution by the (trusted) tenant claim; the user's memberships are
# still looked up (and cached) on the way, as for any user.
api -X PUT "$BASE/v1/tenants/bench/members/$IDP:user-0" -d '{"roles":["member"]}' >/dev/null

mint() { # alg count → file of tokens for users 0..count-1
  python3 - "$DIR/keys.json" "$1" "$2" <<'PY' | python3 "$MINT" mint | python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin)))'
import json, sys, time
keys = {k["alg"]: k for k in json.load(open(sys.argv[1]))}
now = int(time.time())
print(json.dumps([{"key": keys[sys.argv[2]], "claims": {"iss": "https://bench-idp/", "aud": "app",
    "sub": f"user-{i}", "tenant_id": "bench", "iat": now, "exp": now + 3600}} for i in range(int(sys.argv[3]))]))
PY
}
echo "$KEY" >"$DIR/api-key.txt"
mint RS256 "$TOKENS" >"$DIR/rs-many.txt"
mint EdDSA "$TOKENS" >"$DIR/ed-many.txt"
head -1 "$DIR/rs-many.txt" >"$DIR/rs-one.txt"
head -1 "$DIR/ed-many.txt" >"$DIR/ed-one.txt"
# Every credential resolves (and the issuer's keys get cached).
for f in api-key rs-one ed-one; do
  curl -sf -H "Authorization: Bearer $(cat "$DIR/$f.txt")" "$BASE/v1/resolve" | grep -q '"id":"bench"' \
    || { echo "$f does not resolve" >&2; cat "$DIR/server.log" >&2; exit 1; }
done

run() { # label file
  BENCH_FILE=$DIR/$2 BENCH_LABEL=$1 wrk -t1 -c"$CONNECTIONS" -d1s -s bench/identity.lua "$BASE" >/dev/null
  BENCH_FILE=$DIR/$2 BENCH_LABEL=$1 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" -s bench/identity.lua "$BASE" | grep BENCHRESULT
}
results=$(
  run api_key api-key.txt
  run rs256_same_token rs-one.txt
  run eddsa_same_token ed-one.txt
  # Distinct tokens: the first pass of each is a full verification. The
  # warm-up above already verified some, so restart the cache by minting anew.
  mint RS256 "$TOKENS" >"$DIR/rs-many.txt"; mint EdDSA "$TOKENS" >"$DIR/ed-many.txt"
  BENCH_FILE=$DIR/rs-many.txt BENCH_LABEL=rs256_distinct_tokens wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" -s bench/identity.lua "$BASE" | grep BENCHRESULT
  BENCH_FILE=$DIR/ed-many.txt BENCH_LABEL=eddsa_distinct_tokens wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" -s bench/identity.lua "$BASE" | grep BENCHRESULT
)
base_rps=$(echo "$results" | awk '/label=api_key /{for(i=1;i<=NF;i++) if($i ~ /^rps=/){sub("rps=","",$i); print $i}}')
echo "| credential | req/s | ratio vs API key | p50 | p99 | errors |"
echo "|---|---:|---:|---:|---:|---:|"
echo "$results" | while read -r _ label rps p50 p99 errors; do
  r=${rps#rps=}
  printf '| %s | %s | %.2f | %.2f ms | %.2f ms | %s |\n' "${label#label=}" "$r" \
    "$(echo "$r / $base_rps" | bc -l)" "$(echo "${p50#p50_us=} / 1000" | bc -l)" \
    "$(echo "${p99#p99_us=} / 1000" | bc -l)" "${errors#errors=}"
done
echo
echo "(each distinct token is seen $(echo "$results" | awk -v n="$TOKENS" -v d="$DURATION" '/distinct/{for(i=1;i<=NF;i++) if($i ~ /^rps=/){sub("rps=","",$i); printf "%.1f× ", $i*d/n}}')in its run: only the first is a full verification)"
