#!/usr/bin/env python3
"""Requests over new TLS connections, from several threads, until a stop file appears (or a time
limit passes): the load of a restart test, where every accept matters.

usage: churn.py PORT HOST STOP_FILE MAX_SECONDS [THREADS]
Prints {"ok": n, "failed": n, "errors": [first few], "statuses": {code: n}} when done.
Each request is `GET /churn/<n>` with Connection: close on a fresh connection (HTTP/1.1, ALPN).
"""
import json
import os
import socket
import ssl
import sys
import threading
import time

port, host, stop_file, max_seconds = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
threads = int(sys.argv[5]) if len(sys.argv) > 5 else 4
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["http/1.1"])
lock = threading.Lock()
result = {"ok": 0, "failed": 0, "errors": [], "statuses": {}}
deadline = time.time() + max_seconds


def one(n):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as s:
            s.sendall(f"GET /churn/{n} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    line = data.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split(" ")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def worker(i):
    n = 0
    while time.time() < deadline and not os.path.exists(stop_file):
        n += 1
        try:
            status = one(f"{i}-{n}")
            err = None if status == 200 else f"status {status}"
        except Exception as e:  # noqa: BLE001 - every failure counts
            status, err = 0, f"{type(e).__name__}: {e}"
        with lock:
            result["statuses"][str(status)] = result["statuses"].get(str(status), 0) + 1
            if err is None:
                result["ok"] += 1
            else:
                result["failed"] += 1
                if len(result["errors"]) < 5:
                    result["errors"].append(err)


ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print(json.dumps(result))
