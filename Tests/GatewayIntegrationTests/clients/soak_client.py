#!/usr/bin/env python3
"""Load that checks every answer: h1 and h2 requests over many shops for a fixed time.

usage: soak_client.py PORT SECONDS EXPECT_JSON [H1_THREADS] [H2_CONNECTIONS]
EXPECT_JSON maps host -> shop id. Each response must be 200, carry a verified X-Tenant (the demo
upstream echoes it) naming exactly the shop of the host asked for. Prints
{"ok": n, "failed": n, "mislabelled": n, "errors": [first few]}.
"""
import json
import random
import socket
import ssl
import sys
import threading
import time
import http.client

import h2.config
import h2.connection
import h2.events

port, seconds = int(sys.argv[1]), float(sys.argv[2])
expect = json.load(open(sys.argv[3]))
h1_threads = int(sys.argv[4]) if len(sys.argv) > 4 else 4
h2_conns = int(sys.argv[5]) if len(sys.argv) > 5 else 2
hosts = sorted(expect)
deadline = time.time() + seconds
lock = threading.Lock()
stats = {"ok": 0, "failed": 0, "mislabelled": 0, "errors": []}


def record(host, status, body):
    with lock:
        try:
            doc = json.loads(body)
            shop = doc.get("claims", {}).get("shop_id")
            if status == 200 and doc.get("verified") and shop == expect[host]:
                stats["ok"] += 1
                return
            if shop is not None and shop != expect[host]:
                stats["mislabelled"] += 1
            else:
                stats["failed"] += 1
            err = f"{host}: {status} {body[:200]!r}"
        except Exception as e:  # not JSON: a gateway refusal or garbage
            stats["failed"] += 1
            err = f"{host}: {status} {body[:200]!r} ({e})"
        if len(stats["errors"]) < 10:
            stats["errors"].append(err)


def context(alpn):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols([alpn])
    return ctx


def h1_worker():
    conn = None
    while time.time() < deadline:
        host = random.choice(hosts)
        try:
            if conn is None:
                conn = http.client.HTTPSConnection("127.0.0.1", port, context=context("http/1.1"), timeout=10)
                conn.connect()
            conn.request("GET", f"/soak/{random.randint(0, 1 << 30)}", headers={"Host": host})
            r = conn.getresponse()
            record(host, r.status, r.read().decode("utf-8", "replace"))
        except Exception as e:
            with lock:
                stats["failed"] += 1
                if len(stats["errors"]) < 10:
                    stats["errors"].append(f"h1 {host}: {e!r}")
            conn = None


def h2_worker():
    sock = context("h2").wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname=hosts[0])
    c = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    c.initiate_connection()
    sock.sendall(c.data_to_send())
    pending = {}
    bodies = {}
    statuses = {}
    while time.time() < deadline or pending:
        while len(pending) < 16 and time.time() < deadline:
            host = random.choice(hosts)
            sid = c.get_next_available_stream_id()
            c.send_headers(sid, [(":method", "GET"), (":scheme", "https"), (":authority", host),
                                 (":path", f"/soak/{random.randint(0, 1 << 30)}")], end_stream=True)
            pending[sid] = host
            bodies[sid] = b""
        sock.sendall(c.data_to_send())
        sock.settimeout(10)
        data = sock.recv(65536)
        if not data:
            break
        for ev in c.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                statuses[ev.stream_id] = int(dict(ev.headers)[b":status"])
            elif isinstance(ev, h2.events.DataReceived):
                bodies[ev.stream_id] += ev.data
                c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
                host = pending.pop(ev.stream_id, None)
                if host:
                    record(host, statuses.get(ev.stream_id, 0), bodies.pop(ev.stream_id, b"").decode("utf-8", "replace"))
        sock.sendall(c.data_to_send())
    for host in pending.values():
        record(host, 0, "")


threads = [threading.Thread(target=h1_worker) for _ in range(h1_threads)] + [threading.Thread(target=h2_worker) for _ in range(h2_conns)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(stats))
