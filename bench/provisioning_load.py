#!/usr/bin/env python3
"""Load driver for bench/provisioning.sh: local Meta and Genesys doubles that
answer at once, N plain tenant creations, then N provisioning workflows
started concurrently; prints workflows/s and request->active percentiles."""
import json, sys, threading, time, urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BASE, ROOT, N, DOUBLE_PORT = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

class Double(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def reply(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        if self.path.startswith("/meta/"):
            self.reply({"id": "106540352242922", "display_phone_number": "+1 555-0100",
                        "verified_name": "Bench", "quality_rating": "GREEN"})
        else:
            self.reply({"id": "org-1", "name": "bench", "thirdPartyOrgName": "bench", "state": "active"})
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.reply({"access_token": "t", "token_type": "bearer", "expires_in": 86399})

ThreadingHTTPServer.daemon_threads = True
double = ThreadingHTTPServer(("127.0.0.1", DOUBLE_PORT), Double)
threading.Thread(target=double.serve_forever, daemon=True).start()

def call(method, path, body=None):
    req = urllib.request.Request(BASE + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"authorization": "Bearer " + ROOT, "content-type": "application/json"})
    for attempt in range(20):
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            if e.code in (503, 429) and attempt < 19:
                time.sleep(0.2); continue
            return e.code, json.loads(e.read() or b"null")

def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]

pool = ThreadPoolExecutor(max_workers=64)
# Plain tenant creations.
t0 = time.monotonic()
statuses = list(pool.map(lambda i: call("POST", "/v1/tenants", {"id": f"plain-{i}", "name": f"Plain {i}"})[0], range(N)))
plain = time.monotonic() - t0
assert all(s == 201 for s in statuses), set(statuses)
# Provisioning workflows.
body = lambda i: {"tenant": {"id": f"prov-{i}", "name": f"Prov {i}"},
                  "whatsapp": {"phone_number_id": f"1065403522{i:05d}", "business_account_id": f"1022901293{i:05d}",
                               "access_token": "bench-access-token", "app_secret": "bench-app-secret",
                               "verify_token": "bench-verify-token"},
                  "genesys": {"region": "us_east_1", "client_id": "bench-client", "client_secret": "bench-secret"},
                  "api_keys": [{"name": "bridge", "scopes": ["tenant:read"]}]}
sent = {}
def start(i):
    sent_at = time.monotonic()
    status, wf = call("POST", "/v1/provisioning", body(i))
    assert status == 202, (status, wf)
    sent[wf["id"]] = sent_at
t0 = time.monotonic()
list(pool.map(start, range(N)))
accepted = time.monotonic() - t0
done = {}
deadline = time.monotonic() + 1800
while len(done) < N and time.monotonic() < deadline:
    cursor = None
    while True:
        q = "/v1/provisioning?status=succeeded&limit=200" + (f"&cursor={cursor}" if cursor else "")
        _, page = call("GET", q)
        now = time.monotonic()
        for wf in page["data"]:
            done.setdefault(wf["id"], now)
        cursor = page.get("next_cursor")
        if not cursor:
            break
    time.sleep(0.2)
total = max(done.values()) - t0 if done else float("nan")
lat = [done[i] - sent[i] for i in done]
print(json.dumps({
    "n": N,
    "plain_creations_s": round(plain, 2), "plain_creations_per_s": round(N / plain, 1),
    "workflows_accepted_s": round(accepted, 2), "workflows_completed": len(done),
    "workflows_total_s": round(total, 2), "workflows_per_s": round(len(done) / total, 1),
    "request_to_active_p50_s": round(pct(lat, 50), 2), "p90_s": round(pct(lat, 90), 2),
    "p99_s": round(pct(lat, 99), 2), "max_s": round(max(lat), 2),
}, indent=1))
