#!/usr/bin/env python3
"""A control plane stand-in: serves one snapshot file over HTTP with ETag / If-None-Match.

usage: snapshot_server.py PORT FILE LOG
Answers GET with the file and ETag "<sha256>", or 304 when If-None-Match matches; 503 while
FILE.down exists (a broken control plane). Appends "<status> <if-none-match or ->" per request to LOG.
"""
import hashlib
import http.server
import os
import sys

port, path, log = int(sys.argv[1]), sys.argv[2], sys.argv[3]


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        inm = self.headers.get("If-None-Match")
        if os.path.exists(path + ".down"):
            status = 503
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            with open(path, "rb") as f:
                body = f.read()
            etag = '"%s"' % hashlib.sha256(body).hexdigest()
            if inm == etag:
                status = 304
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
            else:
                status = 200
                self.send_response(200)
                self.send_header("ETag", etag)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
        with open(log, "a") as f:
            f.write(f"{status} {inm or '-'}\n")


http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
