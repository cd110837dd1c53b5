#!/usr/bin/env bash
# Webhook delivery throughput and commit→delivery latency, one node, SQLite.
#
# Starts a local receiver that answers 200 at once (Python asyncio, raw
# HTTP/1.1), measures its own request rate under a plain load generator
# (N concurrent keep-alive connections from Python), then starts tenantry
# (debug build, as the tests do; pass TENANTRY_BIN to use another) with one
# tenant endpoint pointing at the receiver, makes EVENTS changes (tenant
# renames) and measures deliveries per second and, per event, the time from
# the change's answer (its commit) to the receiver seeing it.
# Usage: bench/webhooks.sh [EVENTS]   (run once, not under the test suite)
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-2000}
BIN=${TENANTRY_BIN:-target/debug/tenantry}
[ -x "$BIN" ] || cargo build -q -p tenantry
WORK=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
exec python3 - "$BIN" "$WORK" "$EVENTS" <<'PY'
import asyncio, json, os, subprocess, sys, time, urllib.request, re
BIN, WORK, EVENTS = sys.argv[1], sys.argv[2], int(sys.argv[3])
seen = {}
async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            m = re.search(rb"(?i)content-length:\s*(\d+)", head)
            body = await reader.readexactly(int(m.group(1))) if m else b""
            if body:
                try:
                    name = json.loads(body)["data"]["changes"]["name"]["to"]
                    seen.setdefault(name, time.monotonic())
                except Exception:
                    pass
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            await writer.drain()
    except BaseException:
        writer.close()
async def load(port, conns=16, seconds=3.0):
    count = 0
    end = time.monotonic() + seconds
    async def one():
        nonlocal count
        r, w = await asyncio.open_connection("127.0.0.1", port)
        body = b'{"x":1}'
        while time.monotonic() < end:
            w.write(b"POST /hook HTTP/1.1\r\nhost: x\r\ncontent-length: 7\r\n\r\n" + body)
            await w.drain()
            await r.readuntil(b"\r\n\r\n")
            count += 1
        w.close()
    await asyncio.gather(*[one() for _ in range(conns)])
    return count / seconds
def call(base, method, path, body=None):
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body is not None else None,
        headers={"authorization": "Bearer " + ROOT, "content-type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"null")
ROOT = "tnt_root_bench_" + "x" * 40
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    baseline = await load(port)
    env = dict(os.environ, TENANTRY_ROOT_KEY=ROOT, TENANTRY_DATA_DIR=WORK, TENANTRY_LISTEN="127.0.0.1:0",
               TENANTRY_OUTBOUND_ALLOWLIST="127.0.0.1/32", TENANTRY_WEBHOOK_POLL_INTERVAL="50ms")
    proc = subprocess.Popen([BIN, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = None
    loop = asyncio.get_running_loop()
    while base is None:
        line = await loop.run_in_executor(None, proc.stdout.readline)
        m = re.search(r"listening on (http://[0-9.:]+)", line)
        if m: base = m.group(1)
    import threading
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    call(base, "POST", "/v1/tenants", {"id": "bench", "name": "Bench"})
    ep = call(base, "POST", "/v1/tenants/bench/webhook-endpoints", {"url": f"http://127.0.0.1:{port}/hook", "event_types": ["tenant.updated"]})
    committed = {}
    def changes(prefix, n, clients):
        from concurrent.futures import ThreadPoolExecutor
        def one(i):
            call(base, "PATCH", "/v1/tenants/bench", {"name": f"{prefix} {i}"})
            committed[f"{prefix} {i}"] = time.monotonic()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(one, range(n)))
    async def wait(names):
        start = time.monotonic()
        while any(n not in seen for n in names) and time.monotonic() - start < 600:
            await asyncio.sleep(0.02)
    # Phase 1: latency from a change's answer (its commit) to its delivery,
    # one change at a time.
    t0 = time.monotonic()
    await loop.run_in_executor(None, changes, "lat", EVENTS, 1)
    t_changes = time.monotonic() - t0
    await wait([f"lat {i}" for i in range(EVENTS)])
    lat = sorted((seen[k] - committed[k]) * 1000 for k in committed if k in seen)
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
    # Phase 2: throughput: a backlog queued behind a 1/s rate limit, then
    # released at once; deliveries per second while it drains.
    path = "/v1/tenants/bench/webhook-endpoints/" + ep["id"]
    call(base, "PATCH", path, {"rate_limit_per_second": 1})
    backlog = [f"tp {i}" for i in range(2 * EVENTS)]
    await loop.run_in_executor(None, changes, "tp", 2 * EVENTS, 4)
    await asyncio.sleep(1.0)
    before = sum(1 for n in backlog if n in seen)
    t1 = time.monotonic()
    call(base, "PATCH", path, {"rate_limit_per_second": 0})
    await wait(backlog)
    drained = 2 * EVENTS - before
    t_drain = max(seen[n] for n in backlog) - t1
    print(f"receiver alone: {baseline:.0f} req/s (plain load generator, 16 keep-alive connections)")
    print(f"phase 1: {EVENTS} changes in {t_changes:.1f}s, one client; commit->delivery p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms")
    print(f"phase 2: backlog of {drained} delivered in {t_drain:.2f}s = {drained / t_drain:.0f}/s; ratio to the receiver's own rate {drained / t_drain / baseline:.3f}")
    proc.terminate()
asyncio.run(main())
PY
