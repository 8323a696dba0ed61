#!/usr/bin/env python3
"""Edit -> served latency, measured from outside the gateway (PRODUCT.md §6 "Changes").

usage: edit_latency.py ADMIN_PORT MODE COUNT [JOURNAL] [TOKEN]
  MODE journal: append one change-set line per edit to JOURNAL (under its .lock, fsynced), as any
                writer may;
  MODE admin:   POST /admin/changes.
Each edit maps a fresh custom domain to a fresh shop; the clock stops when GET /admin/lookup for
that domain names the shop (polled every millisecond). Prints JSON: count, p50_ms, p99_ms, max_ms.
"""
import fcntl, json, os, sys, time, urllib.request, uuid

port, mode, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
journal = sys.argv[4] if len(sys.argv) > 4 else ""
token = sys.argv[5] if len(sys.argv) > 5 else ""
base = f"http://127.0.0.1:{port}"


def request(method, path, body=None):
    req = urllib.request.Request(base + path, data=body, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


run = uuid.uuid4().hex[:8]
latencies = []
for i in range(count):
    shop_id = f"lat-{run}-{i}"
    domain = f"lat-{run}-{i}.example"
    change = {"version": f"lat-{run}-{i}", "shops": [{"id": shop_id, "subdomain": f"lat{run}{i}", "customDomains": [domain]}]}
    started = time.monotonic()
    if mode == "journal":
        with open(journal + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            with open(journal, "a") as f:
                f.write(json.dumps(change) + "\n")
                f.flush()
                os.fsync(f.fileno())
    else:
        status, body = request("POST", "/admin/changes", json.dumps(change).encode())
        if status != 200:
            print(json.dumps({"error": f"HTTP {status}", "body": body}))
            sys.exit(1)
    while True:
        _, found = request("GET", f"/admin/lookup?host={domain}")
        if found.get("shopId") == shop_id:
            break
        if time.monotonic() - started > 10:
            print(json.dumps({"error": f"{domain} not served after 10 s"}))
            sys.exit(1)
        time.sleep(0.001)
    latencies.append((time.monotonic() - started) * 1000)

latencies.sort()
pick = lambda q: round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 1)
print(json.dumps({"count": count, "p50_ms": pick(0.5), "p99_ms": pick(0.99), "max_ms": round(latencies[-1], 1)}))
