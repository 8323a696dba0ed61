#!/usr/bin/env python3
"""An HTTP/1.1 upstream that records every raw byte it receives and answers as the path says.

usage: raw_upstream.py PORT RECORD_FILE
Each request is appended to RECORD_FILE as one JSON line: {"conn": n, "raw": "<head and body, latin-1>"}.
Nothing is parsed beyond what is needed to find where a request ends (Content-Length or chunked), so
tests see exactly the bytes the gateway sent. Answers, chosen by the request path:
  /close/cl            Connection: close + Content-Length, close after the body
  /close/cl-late       the same, closing 200 ms after the body
  /close/eof           Connection: close, no Content-Length: the body ends at close
  /close/eof-bare      no Connection header, no Content-Length: the body ends at close
  /close/chunked       Connection: close + chunked body, close after the last chunk
  /close/split         head, 100 ms, body, close (Connection: close + Content-Length)
  /close/before-body   Connection: close + Content-Length: 2, close before any body byte
  /extra/response      200 "ok", and a second, unasked-for response behind it in the same write
  anything else        200, Content-Length, keep-alive; the body echoes the request line
Serves connections until killed.
"""
import json
import socket
import sys
import threading
import time

port = int(sys.argv[1])
record = sys.argv[2]
lock = threading.Lock()
counter = [0]


def read_request(conn, buf):
    """Returns (raw request bytes, rest of the buffer) or (None, buf) at EOF."""
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(65536)
        if not chunk:
            return None, buf
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    head += b"\r\n\r\n"
    lines = head.split(b"\r\n")
    length = 0
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
        if name.strip().lower() == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while not (rest.startswith(b"0\r\n\r\n") or b"\r\n0\r\n\r\n" in rest):
            chunk = conn.recv(65536)
            if not chunk:
                return None, b""
            rest += chunk
        end = rest.index(b"0\r\n\r\n") + 5 if rest.startswith(b"0\r\n\r\n") else rest.index(b"\r\n0\r\n\r\n") + 7
        return head + rest[:end], rest[end:]
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None, b""
        rest += chunk
    return head + rest[:length], rest[length:]


OK2 = b"Content-Length: 2\r\n\r\n"
# Path prefix -> (what is written, a pause in seconds between writes; keep the connection open).
# Checked in order: the first prefix that matches answers.
ANSWERS = [
    (b"/close/cl-late", [b"HTTP/1.1 200 OK\r\nConnection: close\r\n" + OK2 + b"ok", 0.2], False),
    (b"/close/cl", [b"HTTP/1.1 200 OK\r\nConnection: close\r\n" + OK2 + b"ok"], False),
    (b"/close/eof-bare", [b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nok"], False),
    (b"/close/eof", [b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nok"], False),
    (b"/close/chunked", [b"HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"], False),
    (b"/close/split", [b"HTTP/1.1 200 OK\r\nConnection: close\r\n" + OK2, 0.1, b"ok"], False),
    (b"/close/before-body", [b"HTTP/1.1 200 OK\r\nConnection: close\r\n" + OK2], False),
    # A second, unasked-for response right behind the first, in the same write (a buggy backend):
    # it must never become some other request's answer.
    (b"/extra/response", [b"HTTP/1.1 200 OK\r\n" + OK2 + b"ok"
                          b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{\"bogus\": \"yes\"}"], True),
]


def answer(conn, request_line):
    """Writes the answer the path asks for; returns whether the connection stays open."""
    path = request_line.split(b" ")[1] if request_line.count(b" ") >= 2 else b"/"
    for prefix, steps, keep in ANSWERS:
        if path.startswith(prefix):
            for step in steps:
                if isinstance(step, bytes):
                    conn.sendall(step)
                else:
                    time.sleep(step)
            return keep
    body = json.dumps({"requestLine": request_line.decode("latin-1")}).encode()
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    return True


def serve(conn):
    with lock:
        counter[0] += 1
        n = counter[0]
    buf = b""
    try:
        while True:
            raw, buf = read_request(conn, buf)
            if raw is None:
                return
            with lock, open(record, "a") as f:
                f.write(json.dumps({"conn": n, "raw": raw.decode("latin-1")}) + "\n")
            if not answer(conn, raw.split(b"\r\n", 1)[0]):
                return
    except OSError:
        pass
    finally:
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        conn.close()


listener = socket.create_server(("127.0.0.1", port))
while True:
    c, _ = listener.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
