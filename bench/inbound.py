"""Load generator of bench/inbound.sh: p50/p99 of GET /healthz, then of
signed WhatsApp deliveries (each a new message, emoji included), then
/healthz again; prints a Markdown table."""
import hashlib, hmac, http.client, json, sys, threading, time, urllib.parse

base, root, seconds, concurrency = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
url = urllib.parse.urlparse(base)
SECRET = "bench-app-secret"

def call(method, path, body=None, headers=None):
    c = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    h = {"authorization": f"Bearer {root}", "content-type": "application/json"}
    h.update(headers or {})
    c.request(method, path, body=body, headers=h)
    r = c.getresponse(); data = r.read(); c.close()
    return r.status, data

assert call("POST", "/v1/tenants", json.dumps({"id": "bench", "name": "Bench"}))[0] == 201
status, _ = call("POST", "/v1/tenants/bench/credentials", json.dumps({"kind": "whatsapp", "name": "n", "data": {
    "business_account_id": "1001", "phone_number_id": "2001", "access_token": "EAAbench",
    "app_secret": SECRET, "verify_token": "v"}}))
assert status == 201, status

def delivery(n):
    body = ('{"object":"whatsapp_business_account","entry":[{"id":"1001","changes":[{"value":{"messaging_product":"whatsapp",'
            '"metadata":{"display_phone_number":"15550001111","phone_number_id":"2001"},"contacts":[{"profile":{"name":"Jos\\u00e9"},'
            '"wa_id":"1631555%05d"}],"messages":[{"from":"1631555%05d","id":"wamid.bench%d","timestamp":"1767225600",'
            '"text":{"body":"Ol\\u00e1 \\ud83d\\udc4b %d"},"type":"text"}]},"field":"messages"}]}]}' % (n % 1000, n % 1000, n, n)).encode()
    sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return body, {"x-hub-signature-256": sig}

counter = iter(range(10**9)); lock = threading.Lock()

def phase(name, make):
    latencies, errors = [], [0]
    stop = time.monotonic() + seconds
    def worker():
        c = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        while time.monotonic() < stop:
            with lock:
                n = next(counter)
            method, path, body, headers = make(n)
            t = time.perf_counter()
            c.request(method, path, body=body, headers=headers)
            r = c.getresponse(); r.read()
            latencies.append(time.perf_counter() - t)
            if r.status != 200:
                errors[0] += 1
        c.close()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    [t.start() for t in threads]; [t.join() for t in threads]
    latencies.sort()
    q = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000
    return name, len(latencies) / seconds, q(0.5), q(0.99), errors[0]

def healthz(n):
    return "GET", "/healthz", None, {}

def webhook(n):
    body, headers = delivery(n)
    headers["content-type"] = "application/json"
    return "POST", "/v1/webhooks/whatsapp/bench", body, headers

rows = [phase("GET /healthz (baseline)", healthz), phase("POST /v1/webhooks/whatsapp/{tenant} (new message each)", webhook),
        phase("GET /healthz (baseline, after)", healthz)]
_, _, base50, base99, _ = rows[0]
print(f"concurrency {concurrency}, {seconds:.0f} s per phase")
print("| route | req/s | p50 ms | p99 ms | p50 ratio | p99 ratio | non-200 |")
print("|---|---:|---:|---:|---:|---:|---:|")
for name, rps, p50, p99, errors in rows:
    print(f"| {name} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {p50 / base50:.1f}x | {p99 / base99:.1f}x | {errors} |")
status, data = call("GET", "/v1/tenants/bench/usage?meter=messages_inbound&granularity=day")
print("messages_inbound usage:", json.loads(data).get("data", data) if status == 200 else status)
