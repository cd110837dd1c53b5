#!/usr/bin/env python3
"""Revocation-to-refusal latency of tenantry-layer (used by bench/layer.sh).

For each round: create a tenant key in Tenantry, request the app with it until
it answers 200 twice (resolved, then served from the layer's cache), revoke
the key, and poll the app with it on a kept-alive connection until it answers
401. The time counted runs from the revoke request being sent to the first
401; it includes the revoke call itself. Prints one JSON object.

    layer_revocation.py TENANTRY_URL APP_URL ROOT_KEY TENANT ROUNDS
"""
import http.client
import json
import statistics
import sys
import time
import urllib.parse


def connection(url):
    u = urllib.parse.urlparse(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=30)


def call(conn, method, path, headers=None, body=None):
    data = json.dumps(body).encode() if body is not None else None
    h = {"content-type": "application/json"} if data else {}
    h.update(headers or {})
    conn.request(method, path, body=data, headers=h)
    r = conn.getresponse()
    payload = r.read()
    return r.status, payload


def main():
    tenantry_url, app_url, root, tenant, rounds = sys.argv[1:6]
    rounds = int(rounds)
    t = connection(tenantry_url)
    a = connection(app_url)
    auth = {"authorization": f"Bearer {root}"}
    latencies = []
    polls = []
    for i in range(rounds):
        status, body = call(t, "POST", f"/v1/tenants/{tenant}/api-keys", auth, {"name": f"bench-{i}", "scopes": ["tenant:read"]})
        assert status == 201, (status, body)
        created = json.loads(body)
        key, key_id = created["key"], created["id"]
        for _ in range(2):
            status, body = call(a, "GET", "/whoami", {"x-api-key": key})
            assert status == 200, (status, body)
        started = time.perf_counter()
        status, body = call(t, "POST", f"/v1/tenants/{tenant}/api-keys/{key_id}/revoke", auth, {})
        assert status == 200, (status, body)
        n = 0
        while True:
            status, _ = call(a, "GET", "/whoami", {"x-api-key": key})
            n += 1
            if status == 401:
                break
            assert status == 200, status
            if time.perf_counter() - started > 10:
                raise SystemExit(f"round {i}: still served 10 s after the revocation")
        latencies.append((time.perf_counter() - started) * 1000)
        polls.append(n)
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(round(q * (len(latencies) - 1))))]
    print(json.dumps({
        "rounds": rounds,
        "p50_ms": round(p(0.50), 2),
        "p99_ms": round(p(0.99), 2),
        "max_ms": round(latencies[-1], 2),
        "mean_ms": round(statistics.mean(latencies), 2),
        "polls_p50": sorted(polls)[len(polls) // 2],
    }))


if __name__ == "__main__":
    main()
