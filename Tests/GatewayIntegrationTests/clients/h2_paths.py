#!/usr/bin/env python3
"""GETs several paths at once, one stream each, on ONE HTTP/2 connection, and reports each answer.

usage: h2_paths.py PORT HOST PATH [PATH ...]
Streams are opened in the order given, all before any answer is read. Prints
{"answers": [{"path": p, "status": s, "body": b}, ...]} in the same order (status null: no answer
within 10 s).
"""
import json
import sys

import h2.events

from h2_client import connect

port, host, paths = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
sock, conn = connect(port, host)
streams = {}
for p in paths:
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "GET"), (":scheme", "https"), (":authority", host), (":path", p)], end_stream=True)
    streams[sid] = {"path": p, "status": None, "body": b""}
sock.sendall(conn.data_to_send())
done = set()
try:
    while len(done) < len(streams):
        data = sock.recv(65536)
        if not data:
            break
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                streams[event.stream_id]["status"] = int(dict(event.headers)[":status"])
            elif isinstance(event, h2.events.DataReceived):
                streams[event.stream_id]["body"] += event.data
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                done.add(event.stream_id)
        sock.sendall(conn.data_to_send())
except OSError:
    pass
print(json.dumps({"answers": [dict(s, body=s["body"].decode("utf-8", "replace")) for s in streams.values()]}))
