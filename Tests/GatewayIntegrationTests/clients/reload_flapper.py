#!/usr/bin/env python3
"""Swap the snapshot file between several versions and reload after each, as fast as the gateway
takes it, for a bounded time: tables of different sizes and shop orders land under load.

usage: reload_flapper.py ADMIN_PORT SNAPSHOT_PATH SECONDS VERSION_FILE...
Prints {"reloads": n, "accepted": n}.
"""
import json
import os
import shutil
import sys
import time
import urllib.request

port, target, seconds = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
versions = sys.argv[4:]
deadline = time.time() + seconds
reloads = accepted = 0
i = 0
while time.time() < deadline:
    source = versions[i % len(versions)]
    i += 1
    tmp = target + ".tmp"
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)
    req = urllib.request.Request(f"http://127.0.0.1:{port}/admin/reload", method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            accepted += r.status == 200
    except Exception:  # noqa: BLE001 - a refused reload is counted as not accepted
        pass
    reloads += 1
print(json.dumps({"reloads": reloads, "accepted": accepted}))
