"""A scanner's flood at the ACME path: N TLS handshakes with random SNI names (every 10th offering
only ALPN acme-tls/1, as a validation would), and N/10 plain-HTTP requests for random http-01
tokens on random hosts. Prints JSON counts. Loopback only; bounded by N and by 300 s.

usage: sni_flood.py TLS_PORT HTTP_PORT N
"""
import json
import random
import socket
import ssl
import string
import sys
import time

tls_port, http_port, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(8737)
plain = ssl.create_default_context()
plain.check_hostname = False
plain.verify_mode = ssl.CERT_NONE
challenge = ssl.create_default_context()
challenge.check_hostname = False
challenge.verify_mode = ssl.CERT_NONE
challenge.set_alpn_protocols(["acme-tls/1"])


def name():
    return "".join(rng.choices(string.ascii_lowercase, k=12)) + rng.choice([".example", ".test", ".com"])


counts = {"handshakes": 0, "challenge_attempts": 0, "challenge_answered": 0, "http": 0, "http_status": {}}
t0 = time.time()
for i in range(n):
    if time.time() - t0 > 300:
        break
    ctx = challenge if i % 10 == 0 else plain
    try:
        with socket.create_connection(("127.0.0.1", tls_port), timeout=5) as s:
            with ctx.wrap_socket(s, server_hostname=name()) as t:
                if ctx is challenge:
                    counts["challenge_answered"] += 1
                else:
                    counts["handshakes"] += 1
    except (ssl.SSLError, ConnectionError, socket.timeout, OSError):
        pass
    if ctx is challenge:
        counts["challenge_attempts"] += 1
for i in range(n // 10):
    token = "".join(rng.choices(string.ascii_letters + string.digits + "-_", k=43))
    with socket.create_connection(("127.0.0.1", http_port), timeout=5) as s:
        s.sendall(f"GET /.well-known/acme-challenge/{token} HTTP/1.1\r\nHost: {name()}\r\n\r\n".encode())
        head = s.recv(4096).split(b"\r\n", 1)[0].decode(errors="replace")
        status = head.split(" ")[1] if " " in head else "none"
        counts["http_status"][status] = counts["http_status"].get(status, 0) + 1
        counts["http"] += 1
counts["seconds"] = round(time.time() - t0, 1)
print(json.dumps(counts))
