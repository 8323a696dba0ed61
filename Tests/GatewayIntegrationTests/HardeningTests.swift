import Foundation
import Testing

/// Issue 7/8 hardening through the real binary: upstream faults, rate limits, slow bodies.
@Suite("Hardening: upstream faults, rate limits, slow bodies (real gateway)")
struct HardeningTests {
  struct Fault: CustomTestStringConvertible, Sendable {
    var path: String
    var status: Int
    var code: String?
    var testDescription: String { path }
  }

  static let faults: [Fault] = [
    Fault(path: "/__badframing", status: 502, code: "upstream_error"),
    Fault(path: "/__bigheaders", status: 502, code: "upstream_error"),
    Fault(path: "/__garbage", status: 502, code: "upstream_error"),
    Fault(path: "/__drop", status: 502, code: "upstream_error"),
    Fault(path: "/__early", status: 200, code: nil),
  ]

  @Test("Each upstream fault fails only its own request with the right code; the pool recovers", arguments: faults)
  func upstreamFault(_ f: Fault) throws {
    try withGateway { gw in
      for http2 in [false, true] {
        let r = try gw.curl("acme.platform.localhost", f.path, http2: http2)
        #expect(r.status == f.status, "\(http2 ? "h2" : "h1"): \(r.body)")
        #expect(r.errorCode == f.code)
        if f.path == "/__early" { #expect(r.body == "after") }
        // The next request on the same gateway works.
        #expect(try gw.curl("acme.platform.localhost", "/ok", http2: http2).status == 200)
      }
    }
  }

  @Test("A truncated upstream body cuts the client's response instead of completing it")
  func truncated() throws {
    try withGateway { gw in
      for flag in ["--http1.1", "--http2"] {
        let r = try Shell.run("curl", ["-sk", flag, "--resolve", "acme.platform.localhost:\(gw.port):127.0.0.1", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                                       "https://acme.platform.localhost:\(gw.port)/__truncated"])
        #expect(r.status != 0, "curl accepted a truncated body as complete: \(r.stdout)")
      }
      #expect(try gw.curl("acme.platform.localhost", "/ok").status == 200)
    }
  }

  @Test("Per-key limits: 429 rate_limited with Retry-After; other keys are not affected")
  func perKey() throws {
    try withGateway(limits: ["per_key_rps": "5", "burst": "5"]) { gw in
      var statuses: [Int] = []
      var retryAfter: String? = nil
      for _ in 0..<12 {
        let r = try gw.curl(Demo.apiHost, "/v1/admin/x", headers: ["Authorization: Bearer \(Demo.acmeSecret)"])
        statuses.append(r.status)
        if r.status == 429 {
          #expect(r.errorCode == "rate_limited")
          retryAfter = r.headers["retry-after"]
        }
      }
      #expect(statuses.prefix(5).allSatisfy { $0 == 200 }, "\(statuses)")
      #expect(statuses.contains(429), "\(statuses)")
      #expect(Int(retryAfter ?? "") ?? 0 >= 1)
      // Another key of the same shop has its own bucket.
      #expect(try gw.curl(Demo.apiHost, "/v1/admin/x", headers: ["Authorization: Bearer \(Demo.acmeTestSecret)"]).status == 200)
      #expect(try gw.admin("/metrics").body.contains("tenant_gateway_refusals_total{code=\"rate_limited\"}"))
    }
  }

  @Test("Per-shop override from the snapshot's rateLimit")
  func perShopOverride() throws {
    var doc = try JSONSerialization.jsonObject(with: Data(contentsOf: Paths.packageRoot.appendingPathComponent("samples/tenants.json"))) as! [String: Any]
    var shops = doc["shops"] as! [[String: Any]]
    shops[0]["rateLimit"] = ["rps": 1, "burst": 2]
    doc["shops"] = shops
    let snapshot = String(decoding: try JSONSerialization.data(withJSONObject: doc), as: UTF8.self)
    try withGateway(snapshot: snapshot) { gw in
      let acme = try (0..<4).map { _ in try gw.curl("acme.platform.localhost", "/").status }
      #expect(acme.prefix(2).allSatisfy { $0 == 200 }, "\(acme)")
      #expect(acme.contains(429), "\(acme)")
      // Other shops are unlimited (limits.per_shop_rps is 0).
      #expect(try (0..<4).map { _ in try gw.curl("bibisaree.test", "/").status } == [200, 200, 200, 200])
    }
  }

  @Test("A request body that stalls gets 408 and the connection closes; the upstream request is dropped")
  func slowBody() throws {
    try withGateway(limits: ["client_header_timeout_s": "1"]) { gw in
      let r = try gw.raw("POST /__upload HTTP/1.1\r\nHost: acme.platform.localhost\r\nContent-Length: 100\r\n\r\nonly-part", timeout: 4)
      #expect(r["status"] as? Int == 408, "\(r["raw"] ?? "")")
      #expect(r["closed"] as? Bool == true)
    }
  }
}
