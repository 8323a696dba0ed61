#!/usr/bin/env python3
"""Play systemd's side of sd_notify: receive datagrams on a unix socket, append each to a file.

usage: notify_socket.py SOCKET_PATH OUTPUT_FILE MAX_SECONDS [hup-on-ready]
Each datagram becomes one line in OUTPUT_FILE (its newlines as '|'). Stops after MAX_SECONDS.
With hup-on-ready, the first READY=1 that names a MAINPID is answered with SIGHUP to that pid the
moment it arrives (as a `systemctl reload` racing the start would): a process that announced
readiness before trapping SIGHUP dies of it.
"""
import os
import signal
import socket
import sys
import time

path, out, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
hup_on_ready = len(sys.argv) > 4 and sys.argv[4] == "hup-on-ready"
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
        text = data.decode("utf-8", "replace")
        if hup_on_ready and text.startswith("READY=1") and "MAINPID=" in text:
            hup_on_ready = False
            pid = int(text.split("MAINPID=")[1].split("\n")[0])
            os.kill(pid, signal.SIGHUP)
        f.write(text.replace("\n", "|") + "\n")
