#!/usr/bin/env python3
"""A request body whose last full-size DATA frame carries END_STREAM, with Python h2.

usage: h2_upload.py PORT HOST PATH FRAMES
Sends FRAMES DATA frames of 16 384 bytes (the default maximum frame size) on one stream, the last
one with END_STREAM (curl usually sends END_STREAM on a separate empty frame, so it rarely hits
this). Prints {"status": n, "body": "...", "reset": code-or-null, "closed": bool}.
"""
import json
import sys
import time

import h2.events

from h2_client import connect

port, host, path, frames = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
sock, conn = connect(port, host)
size = 16384
conn.send_headers(1, [(":method", "POST"), (":scheme", "https"), (":path", path), (":authority", host),
                      ("content-length", str(size * frames))])
for i in range(frames):
    conn.send_data(1, bytes([i % 251]) * size, end_stream=(i == frames - 1))
sock.sendall(conn.data_to_send())
out = {"status": None, "body": "", "reset": None, "closed": False}
body = b""
done = False
deadline = time.time() + 10
while not done and time.time() < deadline:
    data = sock.recv(65535)
    if not data:
        out["closed"] = True
        break
    for event in conn.receive_data(data):
        if isinstance(event, h2.events.ResponseReceived):
            out["status"] = int(dict(event.headers)[":status"])
        elif isinstance(event, h2.events.DataReceived):
            body += event.data
            conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            done = True
        elif isinstance(event, h2.events.StreamReset):
            out["reset"] = event.error_code
            done = True
    sock.sendall(conn.data_to_send())
out["body"] = body.decode("utf-8", "replace")
print(json.dumps(out))
