#!/usr/bin/env python3
"""A WebSocket over HTTP/2 (RFC 8441 extended CONNECT) through the gateway, with Python h2.

usage: h2_websocket.py PORT HOST PATH MESSAGE [PROTOCOL [AUTHORIZATION]]
Opens one stream with :method CONNECT and :protocol PROTOCOL (default websocket), then, when the
answer is 200, speaks WebSocket frames on it: reads the upstream's greeting, sends MESSAGE as a
masked text frame and reads its echo, then closes. Prints JSON:
{"enable_connect_protocol": n, "status": n, "headers": {...}, "hello": ..., "echo": ..., "closed": bool}
and, for an answer other than 200, "body" (what DATA carried before the stream ended) and "reset"
(the RST_STREAM error code, or null).
"""
import json
import os
import struct
import sys
import time

import h2.events
import h2.settings

from h2_client import connect

port, host, path, message = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
protocol = sys.argv[5] if len(sys.argv) > 5 else "websocket"
authorization = sys.argv[6] if len(sys.argv) > 6 else None

sock, conn = connect(port, host)

out = {"enable_connect_protocol": None, "status": None, "headers": {}, "hello": None, "echo": None, "closed": False}
stream = 1
received = b""
ended = False
reset_code = None


def pump(until, seconds=10):
    """Reads and handles events until until() is true or the time is up."""
    global received, ended, reset_code
    deadline = time.time() + seconds
    while not until() and time.time() < deadline:
        data = sock.recv(65535)
        if not data:
            ended = True
            return
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.RemoteSettingsChanged):
                s = event.changed_settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL)
                if s is not None:
                    out["enable_connect_protocol"] = s.new_value
            elif isinstance(event, h2.events.ResponseReceived):
                hdrs = dict(event.headers)
                out["status"] = int(hdrs.pop(":status"))
                out["headers"] = hdrs
            elif isinstance(event, h2.events.DataReceived):
                received += event.data
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                ended = True
            elif isinstance(event, h2.events.StreamReset):
                reset_code = int(event.error_code)
                ended = True
        sock.sendall(conn.data_to_send())


def frame(opcode, payload):
    """A masked client frame (RFC 6455 §5.2)."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    else:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def next_frame():
    """(opcode, payload) of the next complete server frame, or None."""
    global received
    if len(received) < 2:
        return None
    opcode, n, offset = received[0] & 0x0F, received[1] & 0x7F, 2
    if n == 126:
        if len(received) < 4:
            return None
        n, offset = struct.unpack("!H", received[2:4])[0], 4
    elif n == 127:
        if len(received) < 10:
            return None
        n, offset = struct.unpack("!Q", received[2:10])[0], 10
    if len(received) < offset + n:
        return None
    payload = received[offset:offset + n]
    received = received[offset + n:]
    return opcode, payload


headers = [(":method", "CONNECT"), (":protocol", protocol), (":scheme", "https"), (":path", path),
           (":authority", host), ("sec-websocket-version", "13")]
if authorization:
    headers.append(("authorization", authorization))
try:
    pump(lambda: out["enable_connect_protocol"] is not None, 5)
    conn.send_headers(stream, headers, end_stream=False)
    sock.sendall(conn.data_to_send())
    pump(lambda: out["status"] is not None or ended)
    if out["status"] == 200:
        frames = []

        def have_frames(k):
            while True:
                f = next_frame()
                if f is None:
                    break
                frames.append(f)
            return len(frames) >= k or ended

        pump(lambda: have_frames(1))
        if frames:
            out["hello"] = json.loads(frames[0][1])
        conn.send_data(stream, frame(0x1, message.encode()))
        sock.sendall(conn.data_to_send())
        pump(lambda: have_frames(2))
        if len(frames) > 1:
            out["echo"] = frames[1][1].decode()
        conn.send_data(stream, frame(0x8, struct.pack("!H", 1000)))
        sock.sendall(conn.data_to_send())
        pump(lambda: have_frames(3))
        out["closed"] = len(frames) > 2 and frames[2][0] == 0x8
        conn.end_stream(stream)
        sock.sendall(conn.data_to_send())
    elif out["status"] is not None:
        # Not a tunnel: the answer's body, read to the end of the stream (or its reset).
        pump(lambda: ended)
        out["body"] = received.decode("utf-8", "replace")
        # A reset that follows the complete answer (RFC 9113 §8.1: stop sending) comes after.
        try:
            sock.settimeout(1)
            pump(lambda: reset_code is not None, 1)
        except OSError:
            pass
        out["reset"] = reset_code
except Exception as e:  # report, never hang
    out["error"] = f"{type(e).__name__}: {e}"
print(json.dumps(out))
