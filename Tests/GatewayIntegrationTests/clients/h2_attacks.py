#!/usr/bin/env python3
"""HTTP/2 attack shapes against a gateway on loopback (PRODUCT.md §9.5), one per run.

Usage: h2_attacks.py PORT ATTACK [HOST]
Frames are written raw (hyperframe + hpack) so that nothing in a client library smooths them over.
Every attack is bounded in frames and seconds. Prints one JSON object of what the server did:
  goaway: the GOAWAY error code (or null), closed: the server closed the connection,
  responses: {status: count}, resets: {error code: count}, sent: frames the attack got out.
"""
import json
import socket
import ssl
import sys
import time

from hpack import Encoder, Decoder
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame, HeadersFrame, PingFrame,
                              RstStreamFrame, SettingsFrame, WindowUpdateFrame)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class Conn:
    def __init__(self, port, host):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2"])
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock = ctx.wrap_socket(raw, server_hostname=host)
        assert self.sock.selected_alpn_protocol() == "h2", "no h2"
        self.host = host
        self.enc = Encoder()
        self.dec = Decoder()
        self.buf = b""
        self.goaway = None
        self.goaway_data = ""
        self.goaway_last = None
        self.closed = False
        self.responses = {}
        self.resets = {}
        self.bodies = {}
        self.ended = set()
        self.sent = 0
        self.send(PREFACE + SettingsFrame(0).serialize())

    def send(self, data):
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.closed = True
            return False

    def frames(self, frames):
        """Sends frames in batches; stops when the server has closed."""
        batch = []
        for f in frames:
            batch.append(f.serialize())
            if len(batch) >= 64:
                if not self.send(b"".join(batch)):
                    return
                self.sent += len(batch)
                batch = []
                self.poll(0)
                if self.closed:
                    return
        if batch and self.send(b"".join(batch)):
            self.sent += len(batch)

    def headers(self, stream, path, method="GET", extra=(), end_stream=True, authority=None):
        block = self.enc.encode([(":method", method), (":scheme", "https"), (":authority", authority or self.host),
                                 (":path", path)] + list(extra))
        f = HeadersFrame(stream, block)
        f.flags.add("END_HEADERS")
        if end_stream:
            f.flags.add("END_STREAM")
        return f

    def requests(self, header_lists):
        """One complete request (HEADERS, END_HEADERS + END_STREAM) per header list, exactly as
        given, on streams 1, 3, 5, ..."""
        for i, hs in enumerate(header_lists):
            f = HeadersFrame(1 + 2 * i, self.enc.encode(hs))
            f.flags.add("END_HEADERS")
            f.flags.add("END_STREAM")
            yield f

    def poll(self, seconds, until=None):
        """Reads frames for up to `seconds` (0: what is already there), answering PINGs from the server."""
        deadline = time.time() + seconds
        while not self.closed:
            self.sock.settimeout(max(0.01, min(0.2, deadline - time.time())))
            try:
                data = self.sock.recv(1 << 16)
                if not data:
                    self.closed = True
                    break
                self.buf += data
            except (socket.timeout, ssl.SSLWantReadError):
                if time.time() >= deadline:
                    break
                continue
            except (ConnectionResetError, ssl.SSLError, OSError):
                self.closed = True
                break
            self._parse()
            if until and until(self):
                break
            if time.time() >= deadline:
                break
        self._parse()

    def _parse(self):
        while len(self.buf) >= 9:
            f, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
            if len(self.buf) < 9 + length:
                return
            f.parse_body(memoryview(self.buf[9:9 + length]))
            self.buf = self.buf[9 + length:]
            if isinstance(f, GoAwayFrame):
                self.goaway = f.error_code
                self.goaway_data = bytes(f.additional_data).decode("utf-8", "replace")
                self.goaway_last = f.last_stream_id
            elif isinstance(f, RstStreamFrame):
                self.resets[f.error_code] = self.resets.get(f.error_code, 0) + 1
                self.ended.add(f.stream_id)
            elif isinstance(f, HeadersFrame):
                try:
                    hdrs = dict((k.decode() if isinstance(k, bytes) else k, v.decode() if isinstance(v, bytes) else v)
                                for k, v in self.dec.decode(f.data))
                except Exception:
                    hdrs = {}
                status = hdrs.get(":status")
                if status:
                    self.responses[status] = self.responses.get(status, 0) + 1
                if "END_STREAM" in f.flags:
                    self.ended.add(f.stream_id)
            elif isinstance(f, DataFrame):
                self.bodies[f.stream_id] = self.bodies.get(f.stream_id, b"") + f.data
                if "END_STREAM" in f.flags:
                    self.ended.add(f.stream_id)
                if f.flow_controlled_length:
                    # Keep the server's sending windows open.
                    self.send(WindowUpdateFrame(0, f.flow_controlled_length).serialize()
                              + WindowUpdateFrame(f.stream_id, f.flow_controlled_length).serialize())
            elif isinstance(f, SettingsFrame) and "ACK" not in f.flags:
                self.send(SettingsFrame(0, flags=["ACK"]).serialize())

    def result(self, **extra):
        out = {"goaway": self.goaway, "goaway_data": self.goaway_data, "goaway_last": self.goaway_last, "closed": self.closed, "responses": self.responses,
               "resets": {str(k): v for k, v in self.resets.items()}, "sent": self.sent}
        out.update(extra)
        return out


def rapid_reset(c):
    # CVE-2023-44487: open a stream and cancel it at once, thousands of times.
    def frames():
        for i in range(5000):
            sid = 1 + 2 * i
            yield c.headers(sid, "/attack/rapid-reset")
            yield RstStreamFrame(sid, 8)  # CANCEL
    c.frames(frames())
    c.poll(3, until=lambda c: c.closed)
    return c.result()


def continuation_flood(c):
    # A header block that never ends: HEADERS without END_HEADERS, then endless CONTINUATION frames.
    block = c.enc.encode([(":method", "GET"), (":scheme", "https"), (":authority", c.host), (":path", "/attack/continuation")])
    def frames():
        yield HeadersFrame(1, block)
        pad = c.enc.encode([("x-pad", "a" * 1000)])
        for _ in range(20000):
            yield ContinuationFrame(1, pad)
    c.frames(frames())
    c.poll(3, until=lambda c: c.closed)
    return c.result()


def hpack_bomb(c):
    # One 4 KiB header put in the dynamic table, then referenced by index many times: each reference
    # is one byte on the wire and 4 KiB once decoded.
    big = ("x-bomb", "b" * 4000)
    first = c.enc.encode([(":method", "GET"), (":scheme", "https"), (":authority", c.host), (":path", "/attack/hpack-bomb"), big])
    # Index 62 is the newest dynamic entry (x-bomb); 0xBE = indexed header field, index 62.
    refs = bytes([0xBE]) * 5000
    f = HeadersFrame(1, first + refs)
    f.flags.add("END_HEADERS")
    f.flags.add("END_STREAM")
    c.frames([f])
    c.poll(3, until=lambda c: c.closed or 1 in c.ended)
    return c.result()


def hpack_table_size(c):
    # A dynamic table size update above the 4096 bytes the server allows (RFC 7541 §4.2, §6.3).
    update = bytes([0x3F, 0xE1, 0xFF, 0x03])  # size update to 65535
    rest = c.enc.encode([(":method", "GET"), (":scheme", "https"), (":authority", c.host), (":path", "/attack/hpack-table")])
    f = HeadersFrame(1, update + rest)
    f.flags.add("END_HEADERS")
    f.flags.add("END_STREAM")
    c.frames([f])
    c.poll(3, until=lambda c: c.closed or 1 in c.ended)
    return c.result()


def ping_flood(c):
    c.frames(PingFrame(0, opaque_data=i.to_bytes(8, "big")) for i in range(50000))
    c.poll(3, until=lambda c: c.closed)
    return c.result()


def settings_flood(c):
    c.frames(SettingsFrame(0, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 65535 + (i % 7)}) for i in range(50000))
    c.poll(3, until=lambda c: c.closed)
    return c.result()


def window_update_flood(c):
    # Thousands of tiny connection window updates, then one that overflows the window (2^31-1).
    frames = [WindowUpdateFrame(0, 1) for _ in range(20000)] + [WindowUpdateFrame(0, 2 ** 31 - 1)]
    c.frames(frames)
    c.poll(3, until=lambda c: c.closed)
    return c.result()


def empty_data_flood(c):
    # A request body of endless empty DATA frames (costs the server work, moves no bytes).
    c.frames([c.headers(1, "/attack/empty-data", method="POST", end_stream=False)])
    c.frames(DataFrame(1, b"") for _ in range(20000))
    c.poll(3, until=lambda c: c.closed)
    return c.result()


def too_many_streams(c):
    # 150 slow requests at once on a connection that allows 100 concurrent streams.
    c.frames(c.headers(1 + 2 * i, "/__sleep/1500") for i in range(150))
    c.poll(8, until=lambda c: len(c.ended) >= 150)
    return c.result()


def authority_host_mismatch(c):
    c.frames([c.headers(1, "/attack/authority", extra=[("host", "bibi-saree.platform.localhost")])])
    c.poll(3, until=lambda c: 1 in c.ended)
    return c.result()


def connection_specific_header(c):
    # Connection-specific fields are malformed in HTTP/2 (RFC 9113 §8.2.2), one stream each.
    shapes = [("connection", "keep-alive"), ("transfer-encoding", "chunked"), ("keep-alive", "timeout=5"),
              ("upgrade", "websocket"), ("proxy-connection", "keep-alive"), ("te", "gzip")]
    c.frames(c.headers(1 + 2 * i, "/attack/conn-specific", extra=[h]) for i, h in enumerate(shapes))
    c.poll(3, until=lambda c: len(c.ended) >= len(shapes) or c.closed)
    return c.result(streams=len(shapes))


def invalid_pseudo_headers(c):
    shapes = [
        [(":method", "GET"), (":scheme", "https"), (":authority", c.host)],  # no :path
        [(":method", "GET"), (":scheme", "https"), (":authority", c.host), (":path", "/attack/pseudo"), (":foo", "x")],
        [(":method", "GET"), (":scheme", "https"), ("x-a", "1"), (":authority", c.host), (":path", "/attack/pseudo")],
        [(":method", "GET"), (":method", "POST"), (":scheme", "https"), (":authority", c.host), (":path", "/attack/pseudo")],
        [(":method", "GET"), (":scheme", "https"), (":authority", c.host), (":path", "")],
        [(":method", "GET"), (":scheme", "https"), (":authority", c.host), (":path", "/attack/pseudo"), (":status", "200")],
    ]
    c.frames(c.requests(shapes))
    c.poll(3, until=lambda c: len(c.ended) >= len(shapes) or c.closed)
    return c.result(streams=len(shapes))


def uppercase_header_names(c):
    c.frames([c.headers(1, "/attack/uppercase", extra=[("X-Upper", "1")]), c.headers(3, "/attack/uppercase", extra=[("Authorization", "Bearer x")])])
    c.poll(3, until=lambda c: len(c.ended) >= 2 or c.closed)
    return c.result(streams=2)


def reset_mid_upload(c):
    # Declare 1 MiB, send 64 000 bytes (within the 65 535-byte stream window), then cancel: the
    # upstream request must be abandoned.
    c.frames([c.headers(1, "/__upload?attack=reset-mid-upload", method="POST", end_stream=False, extra=[("content-length", str(1 << 20))])])
    chunk = b"u" * 16000
    c.frames(DataFrame(1, chunk) for _ in range(4))
    c.poll(0.5)
    c.frames([RstStreamFrame(1, 8)])
    c.poll(0.5)
    # The same connection keeps working.
    c.frames([c.headers(3, "/after-reset")])
    c.poll(3, until=lambda c: 3 in c.ended)
    return c.result()


def headers_after_end_stream(c):
    # h2spec http2/5.1/6: HEADERS on a stream the client has ended (half-closed remote) must be a
    # STREAM_CLOSED error. The first request is slow, so the stream is still half-closed when the
    # second HEADERS arrives.
    first = c.headers(1, "/__sleep/800")
    again = c.headers(1, "/attack/after-end-stream")
    c.frames([first, again])
    c.poll(3, until=lambda c: c.closed)
    return c.result()


def headers_after_end_stream_fast(c):
    # The same, as h2spec sends it: both HEADERS in one write, on a path answered at once.
    c.frames([c.headers(1, "/attack/after-end-stream"), c.headers(1, "/attack/after-end-stream")])
    c.poll(3, until=lambda c: c.closed)
    return c.result()


def malformed_semantics(c):
    # Requests HTTP/2 calls malformed (RFC 9113 §8.1.1, §8.2.1, §8.3.1) or that the TLS listener does
    # not serve; each on its own stream. Each must be refused (400) without touching the connection.
    base = [(":scheme", "https"), (":authority", c.host)]
    shapes = [
        [(":method", "GET")] + base + [(":path", "/attack/semantics"), ("x-a", " leading-space")],
        [(":method", "GET")] + base + [(":path", "/attack/semantics"), ("x-a", "trailing-tab\t")],
        [(":method", "get")] + base + [(":path", "/attack/semantics")],
        [(":method", "options")] + base + [(":path", "/attack/semantics"), ("access-control-request-method", "GET"),
                                          ("origin", "https://acme.com")],
        [(":method", "GET"), (":scheme", "http"), (":authority", c.host), (":path", "/attack/semantics")],
        [(":method", "GET")] + base + [(":path", "/attack/semantics#fragment")],
        [(":method", "GET")] + base + [(":path", "/attack/semantics;param")],
        [(":method", "GET")] + base + [(":path", "/attack/semantics?a b")],
    ]
    c.frames(c.requests(shapes))
    c.poll(3, until=lambda c: len(c.ended) >= len(shapes) or c.closed)
    codes = {}
    for sid, body in c.bodies.items():
        try:
            codes[str(sid)] = json.loads(body)["error"]["code"]
        except Exception:
            codes[str(sid)] = None
    return c.result(streams=len(shapes), codes=codes)


ATTACKS = {f.__name__: f for f in [
    headers_after_end_stream, headers_after_end_stream_fast, malformed_semantics,
    rapid_reset, continuation_flood, hpack_bomb, hpack_table_size, ping_flood, settings_flood, window_update_flood,
    empty_data_flood, too_many_streams, authority_host_mismatch, connection_specific_header, invalid_pseudo_headers,
    uppercase_header_names, reset_mid_upload]}


def main():
    port, attack = int(sys.argv[1]), sys.argv[2]
    host = sys.argv[3] if len(sys.argv) > 3 else "acme.platform.localhost"
    c = Conn(port, host)
    c.poll(0.3)  # the server's SETTINGS
    started = time.time()
    out = ATTACKS[attack](c)
    out["seconds"] = round(time.time() - started, 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
