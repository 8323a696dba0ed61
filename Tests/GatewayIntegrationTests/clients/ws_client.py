#!/usr/bin/env python3
"""WebSocket echo through the gateway with the `websockets` library.

usage: ws_client.py PORT HOST PATH MESSAGE [AUTHORIZATION]
Prints {"hello": <first message as JSON>, "echo": <echo of MESSAGE>, "binaryEcho": bool}.
Exits 1 with the reason when the handshake is refused.
"""
import json
import socket
import ssl
import sys

from websockets.sync.client import connect

port, host, path, message = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
headers = {"Authorization": sys.argv[5]} if len(sys.argv) > 5 else {}
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
sock = socket.create_connection(("127.0.0.1", port))
step = "opening handshake"
try:
    with connect(f"wss://{host}:{port}{path}", sock=sock, ssl=ctx, server_hostname=host,
                 additional_headers=headers, open_timeout=10) as ws:
        step = "waiting for the upstream's hello"
        hello = json.loads(ws.recv(timeout=10))
        step = "waiting for the text echo"
        ws.send(message)
        echo = ws.recv(timeout=10)
        step = "waiting for the binary echo"
        ws.send(b"\x00\x01\x02binary")
        binary = ws.recv(timeout=10)
        print(json.dumps({"hello": hello, "echo": echo, "binaryEcho": binary == b"\x00\x01\x02binary"}))
except Exception as e:
    print(f"refused ({step}): {e}")
    sys.exit(1)
