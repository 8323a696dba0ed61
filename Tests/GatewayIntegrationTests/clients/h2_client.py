"""Shared by the h2_*.py clients: one HTTP/2 client connection over TLS to the gateway on loopback."""
import socket
import ssl

import h2.config
import h2.connection


def connect(port, host, timeout=10):
    """TLS to 127.0.0.1:port with SNI host and ALPN h2 (certificate not verified: test certificates),
    the client preface sent. Returns (socket, h2 connection)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname=host)
    sock.settimeout(timeout)
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    return sock, conn
