#!/usr/bin/env python3
"""A WebSocket upstream that greets in the same write as its 101, then echoes frames.

usage: ws_eager_upstream.py PORT
Real servers do this (a greeting right behind the handshake); the gateway then reads the 101 and the
first frame in one read, and the frame must still reach the client. Serves connections until killed.
"""
import base64
import hashlib
import socket
import struct
import sys
import threading

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(opcode, payload):
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


def read_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def serve(conn):
    try:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(4096)
            if not chunk:
                return
            head += chunk
        key = ""
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"sec-websocket-key:"):
                key = line.split(b":", 1)[1].strip().decode()
        accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        response = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode()
        conn.sendall(response + frame(0x1, b'{"eager": true}'))  # one write: 101 + greeting
        while True:
            b0, b1 = read_exact(conn, 2)
            opcode, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", read_exact(conn, 2))[0]
            elif n == 127:
                n = struct.unpack("!Q", read_exact(conn, 8))[0]
            mask = read_exact(conn, 4) if b1 & 0x80 else b"\0\0\0\0"
            payload = bytes(c ^ mask[i % 4] for i, c in enumerate(read_exact(conn, n)))
            if opcode == 0x8:
                conn.sendall(frame(0x8, payload))
                return
            if opcode == 0x9:
                conn.sendall(frame(0xA, payload))
            elif opcode in (0x1, 0x2):
                conn.sendall(frame(opcode, payload))
    except (EOFError, OSError):
        pass
    finally:
        conn.close()


listener = socket.create_server(("127.0.0.1", int(sys.argv[1])))
while True:
    c, _ = listener.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
