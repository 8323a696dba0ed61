#!/usr/bin/env python3
"""Send raw HTTP/1.1 requests one after another on one TLS connection, each after the previous answer.

usage: raw_http1_sequence.py PORT SNI TIMEOUT_S HEX_REQUEST [HEX_REQUEST ...]
A request is hex-encoded so that any byte survives the command line. Each answer is read to its end
(Content-Length; a response without one ends the run). Prints
{"statuses": [int|null, ...], "seconds": [float, ...], "closed": bool, "headers": [[str], ...]}:
null for a request that got no answer within TIMEOUT_S (what a stalled connection looks like).
"""
import json
import re
import socket
import ssl
import sys
import time

port, sni, timeout = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
requests = [bytes.fromhex(h) for h in sys.argv[4:]]

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["http/1.1"])
sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname=sni)
sock.settimeout(0.1)
buf = b""
closed = False
statuses, seconds, heads = [], [], []


def read_response(deadline):
    """One response from buf/socket, or None."""
    global buf, closed
    while time.time() < deadline:
        if b"\r\n\r\n" in buf:
            head, rest = buf.split(b"\r\n\r\n", 1)
            m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            length = int(m.group(1)) if m else 0
            if len(rest) >= length:
                buf = rest[length:]
                return head.decode("latin-1")
        if closed:
            return None
        try:
            chunk = sock.recv(65536)
            if not chunk:
                closed = True
            buf += chunk
        except socket.timeout:
            continue
        except (ConnectionResetError, ssl.SSLError, OSError):
            closed = True
    return None


for request in requests:
    started = time.time()
    if not closed:
        try:
            sock.sendall(request)
        except OSError:
            closed = True
    head = read_response(started + timeout)
    seconds.append(round(time.time() - started, 3))
    if head is None:
        statuses.append(None)
        heads.append([])
        continue
    lines = head.split("\r\n")
    statuses.append(int(lines[0].split(" ")[1]))
    heads.append(lines[1:])
print(json.dumps({"statuses": statuses, "seconds": seconds, "closed": closed, "headers": heads}))
