#!/usr/bin/env python3
"""Play systemd's side of sd_notify: receive datagrams on a unix socket, append each to a file.

usage: notify_socket.py SOCKET_PATH OUTPUT_FILE MAX_SECONDS
Each datagram becomes one line in OUTPUT_FILE (its newlines as '|'). Stops after MAX_SECONDS.
"""
import os
import socket
import sys
import time

path, out, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
if os.path.exists(path):
    os.unlink(path)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(0.2)
deadline = time.time() + limit
with open(out, "a", buffering=1) as f:
    while time.time() < deadline:
        try:
            data = s.recv(4096)
        except socket.timeout:
            continue
        f.write(data.decode("utf-8", "replace").replace("\n", "|") + "\n")
