import Foundation
import Testing

/// `listen.proxy_protocol` behind a real HAProxy in TCP mode (PRODUCT.md §7, §8: many replicas
/// behind an L4 balancer). The client connects from 127.0.0.7 through HAProxy, which connects to
/// the gateway from 127.0.0.1 and names the client in a PROXY header.
@Suite("PROXY protocol behind a real HAProxy", .serialized)
struct ProxyProtocolIntegrationTests {
  func startHAProxy(_ h: GatewayHarness, v2Port: Int, v1Port: Int) throws -> Process {
    let cfg = h.directory.appendingPathComponent("haproxy.cfg").path
    try """
      defaults
        mode tcp
        timeout connect 2s
        timeout client 10s
        timeout server 10s
      frontend v2
        bind 127.0.0.1:\(v2Port)
        default_backend gw_v2
      backend gw_v2
        server gw 127.0.0.1:\(h.port) send-proxy-v2
      frontend v1
        bind 127.0.0.1:\(v1Port)
        default_backend gw_v1
      backend gw_v1
        server gw 127.0.0.1:\(h.port) send-proxy

      """.write(toFile: cfg, atomically: true, encoding: .utf8)
    let p = try GatewayHarness.startProcess(["haproxy", "-db", "-f", cfg], output: h.directory.appendingPathComponent("haproxy.log").path)
    try h.waitFor(timeout: 10) { isListening(port: v2Port) && isListening(port: v1Port) }
    return p
  }

  /// curl from `source` to `port` with api.platform.localhost resolved to loopback.
  func request(_ port: Int, from source: String, path: String, http2: Bool = false) throws -> GatewayHarness.HTTPResult {
    let r = try Shell.run("curl", [
      "-sSk", "-D", "-", "--max-time", "5", "--interface", source, http2 ? "--http2" : "--http1.1",
      "--resolve", "acme.platform.localhost:\(port):127.0.0.1", "https://acme.platform.localhost:\(port)\(path)",
    ])
    var result = GatewayHarness.parseCurl(r.stdout)
    result.curlExit = r.status
    result.curlError = r.stderr
    return result
  }

  @Test("The client address from HAProxy's PROXY v2 and v1 headers feeds X-Forwarded-For and the access log; untrusted peers and missing or forged headers are closed")
  func behindHAProxy() throws {
    let h = try GatewayHarness(extraConfig: "")
    defer { h.stop() }
    let log = h.directory.appendingPathComponent("access.log").path
    h.accessLogPath = log
    try h.writeConfig()
    var text = try String(contentsOfFile: h.configPath, encoding: .utf8)
    text = text.replacingOccurrences(
      of: "listen: {address: \"127.0.0.1:\(h.port)\"}",
      with: "listen: {address: \"127.0.0.1:\(h.port)\", proxy_protocol: true, proxy_protocol_from: [127.0.0.1/32]}")
    try text.write(toFile: h.configPath, atomically: true, encoding: .utf8)
    try h.startPrewritten()
    let v2Port = freePort()
    let v1Port = freePort()
    let haproxy = try startHAProxy(h, v2Port: v2Port, v1Port: v1Port)
    defer { GatewayHarness.terminate(haproxy) }

    for (name, port, http2) in [("v2", v2Port, false), ("v2 h2", v2Port, true), ("v1", v1Port, false)] {
      let r = try request(port, from: "127.0.0.7", path: "/\(name.replacingOccurrences(of: " ", with: "-"))", http2: http2)
      #expect(r.status == 200, "\(name): \(r.diagnostic)")
      let xff = r.upstreamHeaders.first { $0.0.lowercased() == "x-forwarded-for" }?.1
      #expect(xff == "127.0.0.7", "\(name): the upstream saw X-Forwarded-For \(xff ?? "none")")
    }
    try h.waitFor(timeout: 5) {
      ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").count >= 3
    }
    let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
    #expect(lines.allSatisfy { $0.contains("\"client\":\"127.0.0.7\"") }, "\(lines)")

    // Straight to the gateway from the trusted address, without a header: closed.
    let bare = try request(h.port, from: "127.0.0.1", path: "/bare")
    #expect(bare.status == 0, "\(bare.diagnostic)")
    // From an address that is not a balancer, even with a well-formed header: closed before reading it.
    let forged = try Shell.run("python3", ["-c", """
      import socket
      s = socket.socket(); s.bind(("127.0.0.9", 0)); s.settimeout(3)
      s.connect(("127.0.0.1", \(h.port)))
      s.sendall(b"PROXY TCP4 10.1.2.3 127.0.0.1 1234 443\\r\\n")
      try:
          print("closed" if s.recv(100) == b"" else "data")
      except Exception as e:
          print("closed" if isinstance(e, ConnectionResetError) else "timeout")
      """])
    #expect(forged.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "closed", "\(forged.stdout) \(forged.stderr)")
    let metrics = try h.admin("/metrics").body
    #expect(metrics.contains("tenant_gateway_proxy_protocol_refused_total{reason=\"untrusted\"} 1"), "\(metrics)")
    #expect(metrics.contains("tenant_gateway_proxy_protocol_refused_total{reason=\"malformed\"} 1"), "\(metrics)")
  }
}
