#!/usr/bin/env python3
"""Send raw bytes over TLS (ALPN http/1.1) and report what came back.

usage: raw_http1.py PORT SNI HEX_REQUEST [TIMEOUT_S]
The request is given hex-encoded so that any byte (bare CR, NUL, obs-fold) survives the command
line. Prints {"status": int|null, "body": str, "closed": bool, "responses": n, "raw": str}.
"closed" is true when the server closed the connection within the timeout.
"""
import json
import re
import socket
import ssl
import sys
import time

port = int(sys.argv[1])
sni = sys.argv[2]
request = bytes.fromhex(sys.argv[3])
timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 3.0

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["http/1.1"])
sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname=sni)
sock.sendall(request)
sock.settimeout(0.2)
data = b""
closed = False
deadline = time.time() + timeout
while time.time() < deadline:
    try:
        chunk = sock.recv(65536)
    except socket.timeout:
        continue
    except (ConnectionResetError, ssl.SSLError):
        closed = True
        break
    if not chunk:
        closed = True
        break
    data += chunk
text = data.decode("latin-1")
statuses = re.findall(r"HTTP/1\.[01] (\d{3})", text)
body = text.split("\r\n\r\n", 1)[1] if "\r\n\r\n" in text else ""
print(json.dumps({
    "status": int(statuses[0]) if statuses else None,
    "statuses": [int(s) for s in statuses],
    "body": body,
    "closed": closed,
    "responses": len(statuses),
    "raw": text[:2000],
}))
