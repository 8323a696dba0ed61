#!/usr/bin/env python3
"""Many streams of two shops interleaved on ONE HTTP/2 connection (PRODUCT.md §9.3).

usage: h2_multiplex.py PORT STREAMS HOST_A KEY_A SHOP_A HOST_B KEY_B SHOP_B
Each stream i uses shop A's host and key when i is even, shop B's when odd. The demo upstream
echoes the verified claims; every answer must name the shop its own stream asked for.
Prints {"ok": n, "mismatched": n, "failed": n, "statuses": {...}}.
"""
import json
import socket
import ssl
import sys

import h2.config
import h2.connection
import h2.events

port = int(sys.argv[1])
streams = int(sys.argv[2])
shops = [tuple(sys.argv[3:6]), tuple(sys.argv[6:9])]

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["h2"])
raw = socket.create_connection(("127.0.0.1", port))
sock = ctx.wrap_socket(raw, server_hostname=shops[0][0])
assert sock.selected_alpn_protocol() == "h2", sock.selected_alpn_protocol()

conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
conn.initiate_connection()
sock.sendall(conn.data_to_send())

expected = {}
bodies = {}
statuses = {}
done = set()
next_index = 0
in_flight = 0
max_in_flight = 50


def send_more():
    global next_index, in_flight
    while next_index < streams and in_flight < max_in_flight:
        host, key, shop = shops[next_index % 2]
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [
            (":method", "GET"), (":scheme", "https"), (":authority", host),
            (":path", f"/v1/admin/orders/{next_index}"), ("authorization", f"Bearer {key}"),
        ], end_stream=True)
        expected[sid] = shop
        bodies[sid] = b""
        next_index += 1
        in_flight += 1
    sock.sendall(conn.data_to_send())


send_more()
sock.settimeout(20)
while len(done) < streams:
    data = sock.recv(65536)
    if not data:
        break
    for event in conn.receive_data(data):
        if isinstance(event, h2.events.ResponseReceived):
            statuses[event.stream_id] = dict(event.headers)[b":status"].decode()
        elif isinstance(event, h2.events.DataReceived):
            bodies[event.stream_id] += event.data
            conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
            done.add(event.stream_id)
            in_flight -= 1
    send_more()

ok = mismatched = failed = 0
status_counts = {}
for sid, shop in expected.items():
    status = statuses.get(sid, "none")
    status_counts[status] = status_counts.get(status, 0) + 1
    try:
        doc = json.loads(bodies[sid])
        got = doc["claims"]["shop_id"]
        if status == "200" and doc["verified"] and got == shop:
            ok += 1
        elif got != shop:
            mismatched += 1
        else:
            failed += 1
    except Exception:
        failed += 1
print(json.dumps({"ok": ok, "mismatched": mismatched, "failed": failed, "statuses": status_counts}))
