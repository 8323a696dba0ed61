import Foundation
import Testing

/// Upgrades that do not happen (issue 15 items 2 and 3): the backend answers a WebSocket upgrade
/// without a 101, or the gateway refuses it. Neither the upstream connection nor the client's may be
/// left in a state where the next request hangs.
@Suite("Declined and refused upgrades (§9.3): real gateway, NIO demo upstream")
struct UpgradeTests {
  /// Four ordinary requests from other shops than the upgrade's, each on its own connection (so
  /// both event loops, and both loops' pools, are drawn on): all must be answered at once.
  static func otherShopsAreServed(_ gw: GatewayHarness, after what: String) throws {
    let requests: [(host: String, path: String, headers: [String])] = [
      (Demo.apiHost, "/v1/orders", ["Authorization: Bearer \(Demo.bibiSecret)"]),
      ("bibisaree.test", "/", []),
      (Demo.apiHost, "/v1/admin/products", ["Authorization: Bearer \(Demo.bibiSecret)"]),
      ("bibisaree.test", "/products", []),
    ]
    for (i, r) in requests.enumerated() {
      let started = Date()
      let result = try gw.curl(r.host, r.path, headers: r.headers, extra: ["--max-time", "3"])
      let seconds = Date().timeIntervalSince(started)
      #expect(result.status == 200, "after \(what), request \(i): \(result.diagnostic)")
      #expect(seconds < 1, "after \(what), request \(i) took \(seconds) s")
      #expect(result.claims?["shop_id"] as? String == Demo.bibiID, "after \(what), request \(i): \(result.body.prefix(200))")
    }
  }

  @Test("A declined WebSocket upgrade never goes back to the upstream pool: other shops' requests are all answered at once")
  func declinedUpgradeIsNotPooled() throws {
    // A short response timeout: without the fix a poisoned connection answers 504 after it.
    try withGateway(limits: ["upstream_response_timeout_s": "5"]) { gw in
      // The demo upstream (NIO's upgrade handler) declines upgrades outside /__ws with a 200, and
      // stops parsing HTTP on that connection. Twice per event loop.
      for i in 0..<4 {
        let r = try gw.curl("acme.platform.localhost", "/", headers: ["Connection: Upgrade", "Upgrade: websocket"],
                            extra: ["--max-time", "3"])
        #expect(r.status == 200, "declined upgrade \(i): \(r.diagnostic)")
      }
      try Self.otherShopsAreServed(gw, after: "declined HTTP/1.1 upgrades")
      // The same over HTTP/2 (extended CONNECT): a 200 there would mean "tunnel established"
      // (RFC 9113 §8.5), so a backend's non-101 success is a 502, with its JSON body.
      for i in 0..<4 {
        let r = try gw.python("h2_websocket.py", [String(gw.port), "acme.platform.localhost", "/", "x"])
        let doc = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any]
        #expect(doc?["status"] as? Int == 502, "extended CONNECT \(i): \(r.stdout) \(r.stderr)")
      }
      try Self.otherShopsAreServed(gw, after: "declined extended CONNECTs")
    }
  }

  /// `GET / HTTP/1.1` with the upgrade headers, for `path`.
  static func upgradeRequest(_ path: String, extra: String = "") -> String {
    "GET \(path) HTTP/1.1\r\nHost: acme.platform.localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
      + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\(extra)\r\n"
  }
  static let plainGET = "GET /after HTTP/1.1\r\nHost: acme.platform.localhost\r\n\r\n"

  static func hex(_ s: String) -> String { Array(s.utf8).map { String(format: "%02x", $0) }.joined() }

  @Test("After an upgrade that did not happen, the client's HTTP/1.1 connection goes on: the next request is answered")
  func connectionGoesOnAfterDeclinedUpgrade() throws {
    try withGateway { gw in
      // Declined by the backend (200), refused by the gateway (401: /v1/ needs a key), and both
      // again with the next request pipelined behind the upgrade in the same write.
      let sequences: [(String, [String], [Int])] = [
        ("declined, then a GET", [Self.upgradeRequest("/"), Self.plainGET, Self.plainGET], [200, 200, 200]),
        ("refused, then a GET", [Self.upgradeRequest("/v1/admin/x"), Self.plainGET], [401, 200]),
        ("declined with a GET pipelined behind", [Self.upgradeRequest("/") + Self.plainGET], [200]),
        ("refused with a GET pipelined behind", [Self.upgradeRequest("/v1/admin/x") + Self.plainGET], [401]),
      ]
      for (name, requests, statuses) in sequences {
        let r = try gw.python("raw_http1_sequence.py", [String(gw.port), "acme.platform.localhost", "3"] + requests.map(Self.hex))
        let doc = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any]
        let got = (doc?["statuses"] as? [Any])?.map { $0 as? Int } ?? []
        #expect(got == statuses.map { Optional($0) }, "\(name): \(r.stdout) \(r.stderr)")
        #expect(doc?["closed"] as? Bool == false, "\(name): the connection was closed: \(r.stdout)")
      }
      // Pipelined: both answers arrive, in order, on the one connection.
      for (path, first) in [("/", 200), ("/v1/admin/x", 401)] {
        let r = try gw.raw(Self.upgradeRequest(path) + Self.plainGET, timeout: 2)
        #expect(r["statuses"] as? [Int] == [first, 200], "\(path): \(r)")
      }
      // An accepted upgrade still becomes a tunnel (the control for the above).
      let ws = try gw.python("ws_client.py", [String(gw.port), "acme.platform.localhost", "/__ws", "still a tunnel"])
      #expect(ws.status == 0, "\(ws.stdout) \(ws.stderr)")
      #expect(ws.stdout.contains("still a tunnel"))
    }
  }
}
