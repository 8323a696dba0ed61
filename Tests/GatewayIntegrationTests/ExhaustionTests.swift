import Foundation
import Testing

/// PRODUCT.md §9.5: many connections that never finish, and the connection limit. Memory stays
/// bounded, the timeouts reclaim every connection, and a well-behaved client keeps getting 200s.
@Suite("Resource exhaustion (real gateway)")
struct ExhaustionTests {
  /// RSS bound while 5 000 connections are held open (documented in docs/threat_model.md).
  static let rssBoundKiB = 384 * 1024

  @Test("Invariant §9.5: 5 000 stalled connections (slowloris pre-TLS, slow head, slow body) are all reclaimed; others are served")
  func slowloris() throws {
    try withGateway(limits: ["client_header_timeout_s": "2"]) { gw in
      let out = gw.directory.appendingPathComponent("slowloris.json").path
      let p = try gw.startPython("slowloris.py", [String(gw.port), "5000", "600", "14", "3"], output: out)
      var statuses: [Int] = []
      var maxRSS = 0
      var maxOpen = 0
      while p.isRunning {
        statuses.append(try gw.curl("acme.platform.localhost", "/ok", extra: ["--max-time", "3"]).status)
        maxRSS = max(maxRSS, gw.gatewayRSSKiB)
        let open = try gw.admin("/metrics").body.split(separator: "\n")
          .filter { $0.hasPrefix("tenant_gateway_open_connections{") }
          .compactMap { Int($0.split(separator: " ").last ?? "") }.reduce(0, +)
        maxOpen = max(maxOpen, open)
        usleep(100_000)
      }
      let stats = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as? [String: Any] ?? [:]
      #expect((stats["opened"] as? Int ?? 0) + (stats["setup_failed"] as? Int ?? 0) == 5000, "\(stats)")
      #expect(stats["opened"] as? Int ?? 0 >= 4500, "\(stats)")
      // Every stalled connection is closed by the gateway's timeouts (2 s for the head, 2 s between
      // body bytes, dripped every 3 s, swept every 250 ms): measured 2.3-2.8 s on an idle machine,
      // so 6 s leaves room for a CPU shared with the client and CI, and still fails if a timeout
      // stops working (the next drip would keep the connection alive to the end of the run).
      #expect((stats["max_lifetime_s"] as? Double ?? 99) < 6, "\(stats)")
      #expect((stats["max_open_age_at_end_s"] as? Double ?? 99) < 6, "\(stats)")
      #expect(statuses.count >= 10 && statuses.allSatisfy { $0 == 200 }, "well-behaved client: \(statuses)")
      #expect(maxRSS > 0 && maxRSS < Self.rssBoundKiB, "RSS peaked at \(maxRSS) KiB")
      print("slowloris: \(stats), well-behaved requests \(statuses.count), peak RSS \(maxRSS / 1024) MiB, peak open HTTP connections \(maxOpen)")
    }
  }

  @Test("max_connections: connections over the limit are closed at once and counted; service resumes when they go")
  func maxConnections() throws {
    try withGateway(limits: ["max_connections": "50", "client_header_timeout_s": "2"]) { gw in
      let out = gw.directory.appendingPathComponent("slowloris.json").path
      let p = try gw.startPython("slowloris.py", [String(gw.port), "80", "0", "3", "5"], output: out)
      p.waitUntilExit()
      let refused = try gw.admin("/metrics").body.split(separator: "\n")
        .first { $0.hasPrefix("tenant_gateway_connections_refused_total ") }
        .flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
      #expect(refused >= 30, "refused \(refused)")
      // The stalled ones timed out: the limit has room again.
      try gw.waitFor(timeout: 5) { try gw.curl("acme.platform.localhost", "/ok").status == 200 }
    }
  }
}
