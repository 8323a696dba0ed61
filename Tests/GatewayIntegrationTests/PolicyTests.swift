import Foundation
import Testing

/// PRODUCT.md §3 policy and the §4 policy codes, each through the real binary with curl.
@Suite("Tenant policy and CORS at the edge (real gateway)")
struct PolicyTests {
  struct Row: CustomTestStringConvertible, Sendable {
    var code: String
    var status: Int
    var host: String = Demo.apiHost
    var path: String
    var method: String? = nil
    var headers: [String]
    var testDescription: String { "\(status) \(code): \(path) \(headers.joined(separator: ", "))" }
  }

  static let pk = "X-Publishable-Key"
  /// One row per policy code (PRODUCT.md §3/§4); the config adds publishable_methods on /v1/store/cart/.
  static let rows: [Row] = [
    Row(code: "missing_credentials", status: 401, path: "/v1/orders", headers: []),
    Row(code: "invalid_api_key", status: 401, path: "/v1/orders", headers: ["Authorization: Bearer sk_live_nope"]),
    Row(code: "tenant_mismatch", status: 403, path: "/v1/store/products", headers: ["Authorization: Bearer \(Demo.acmeSecret)", "\(pk): \(Demo.bibiPublishable)"]),
    Row(code: "key_not_allowed_for_route", status: 403, path: "/v1/admin/products", headers: ["\(pk): \(Demo.acmePublishable)"]),
    Row(code: "key_not_allowed_for_route", status: 403, path: "/v1/admin/products", headers: ["Authorization: Bearer \(Demo.acmePublishable)"]),
    Row(code: "key_not_allowed_for_route", status: 403, path: "/v1/orders", headers: ["\(pk): \(Demo.acmePublishable)"]),
    Row(code: "method_not_allowed_for_key", status: 403, path: "/v1/store/cart/items", method: "POST", headers: ["\(pk): \(Demo.acmePublishable)"]),
    Row(code: "headless_disabled", status: 403, path: "/v1/store/products", headers: ["\(pk): \(Demo.bibiPublishable)"]),
    Row(code: "origin_not_allowed", status: 403, path: "/v1/store/products", headers: ["\(pk): \(Demo.acmePublishable)", "Origin: https://acme.test.evil.com"]),
    Row(code: "origin_not_allowed", status: 403, path: "/v1/store/products", headers: ["\(pk): \(Demo.acmePublishable)", "Origin: null"]),
    Row(code: "secret_key_in_browser", status: 403, path: "/v1/admin/products", headers: ["Authorization: Bearer \(Demo.acmeSecret)", "Origin: https://acme.test"]),
    Row(code: "shop_suspended", status: 403, path: "/v1/admin/products", headers: ["Authorization: Bearer \(Demo.teaSecret)"]),
    Row(code: "shop_suspended", status: 403, host: "tea-house.platform.localhost", path: "/", headers: []),
    Row(code: "not_found", status: 404, path: "/index.html", headers: ["Authorization: Bearer \(Demo.acmeSecret)"]),
    Row(code: "unknown_host", status: 421, host: "ghost.platform.localhost", path: "/", headers: []),
  ]

  static let routes = """
    routes:
      - {prefix: /v1/admin/, accepts: [secret_key, session]}
      - {prefix: /v1/store/customers/, accepts: [publishable_key, secret_key, session], customer_tokens: true}
      - {prefix: /v1/store/cart/, accepts: [publishable_key, secret_key], publishable_methods: [GET, HEAD]}
      - {prefix: /v1/store/, accepts: [publishable_key, secret_key, session]}
      - {prefix: /v1/, accepts: [secret_key, session]}
      - {prefix: /, accepts: [host, session]}
    """

  @Test("Invariant §9.1: every policy code gets its status and JSON code, no CORS headers, and nothing is forwarded", arguments: rows)
  func refusal(_ row: Row) throws {
    try withGateway(extraConfig: Self.routes) { gw in
      for http2 in [false, true] {
        let r = try gw.curl(row.host, row.path, headers: row.headers, method: row.method, http2: http2)
        #expect(r.status == row.status, "\(r.body)")
        #expect(r.errorCode == row.code)
        #expect(r.headers["content-type"] == "application/json")
        #expect(!r.headers.keys.contains { $0.hasPrefix("access-control-") })
      }
      #expect(gw.upstreamRequests().isEmpty)
    }
  }

  @Test("Publishable key with an allowed Origin: forwarded, ACAO is the exact origin, upstream CORS headers are replaced")
  func allowedOrigin() throws {
    try withGateway { gw in
      for http2 in [false, true] {
        let r = try gw.curl(Demo.apiHost, "/v1/store/products?cors=1", headers: ["\(Self.pk): \(Demo.acmePublishable)", "Origin: https://acme.test"], http2: http2)
        #expect(r.status == 200, "\(r.body)")
        #expect(r.claims?["auth"] as? String == "publishable_key")
        #expect(r.headers["access-control-allow-origin"] == "https://acme.test")
        #expect(r.headers["access-control-allow-credentials"] == nil, "an upstream CORS header leaked")
        #expect(r.headers["vary"]?.contains("Origin") == true)
      }
      // Server-side rendering sends no Origin: allowed (require_origin is off by default), no ACAO.
      let ssr = try gw.curl(Demo.apiHost, "/v1/store/products?cors=1", headers: ["\(Self.pk): \(Demo.acmePublishable)"])
      #expect(ssr.status == 200)
      #expect(ssr.headers["access-control-allow-origin"] == nil)
    }
  }

  @Test("Preflights are answered at the edge: 204 with exact CORS headers, or 403 without any")
  func preflight() throws {
    try withGateway { gw in
      for http2 in [false, true] {
        let ok = try gw.curl(Demo.apiHost, "/v1/store/products", headers: [
          "Origin: https://acme.test", "Access-Control-Request-Method: POST", "Access-Control-Request-Headers: x-publishable-key",
        ], method: "OPTIONS", http2: http2)
        #expect(ok.status == 204)
        #expect(ok.headers["access-control-allow-origin"] == "https://acme.test")
        #expect(ok.headers["access-control-allow-methods"]?.contains("POST") == true)
        #expect(ok.headers["access-control-allow-headers"] == "Content-Type, Authorization, X-Publishable-Key")
        #expect(ok.headers["access-control-max-age"] == "600")
        #expect(ok.headers["vary"]?.hasPrefix("Origin") == true)

        let shopHost = try gw.curl("acme.platform.localhost", "/cart", headers: ["Origin: http://localhost:3000", "Access-Control-Request-Method: GET"], method: "OPTIONS", http2: http2)
        #expect(shopHost.status == 204)
        #expect(shopHost.headers["access-control-allow-origin"] == "http://localhost:3000")

        for origin in ["https://evil.test", "https://acme.test.evil.com", "null", "https://tea-house.test"] {
          let no = try gw.curl(Demo.apiHost, "/v1/store/products", headers: ["Origin: \(origin)", "Access-Control-Request-Method: GET"], method: "OPTIONS", http2: http2)
          #expect(no.status == 403, "\(origin)")
          #expect(no.errorCode == "origin_not_allowed")
          #expect(!no.headers.keys.contains { $0.hasPrefix("access-control-") }, "\(origin)")
        }
      }
      #expect(gw.upstreamRequests().isEmpty, "a preflight was forwarded")
      // A plain OPTIONS (no Access-Control-Request-Method) is an ordinary request.
      let plain = try gw.curl("acme.platform.localhost", "/", method: "OPTIONS")
      #expect(plain.status == 200)
      #expect(gw.upstreamRequests().count == 1)
    }
  }

  @Test("Preflight storm: 10 000 preflights from allowed and refused origins, none reaches the upstream")
  func preflightStorm() throws {
    try withGateway { gw in
      let url = "https://127.0.0.1:\(gw.port)/v1/store/products"
      for origin in ["https://acme.test", "https://evil.test"] {
        let r = try Shell.run("h2load", ["-n", "5000", "-c", "4", "-m", "16", "-H", ":method: OPTIONS", "-H", ":authority: \(Demo.apiHost)",
                                         "-H", "origin: \(origin)", "-H", "access-control-request-method: GET", url])
        let s = OperationsTests.h2loadSummary(r.stdout)
        #expect(s.failed + s.succeeded == 5000 || origin.contains("evil"), "\(r.stdout)")
        let expectedCodes = origin.contains("acme") ? "5000 2xx" : "5000 4xx"
        #expect(r.stdout.contains(expectedCodes), "\(r.stdout)")
      }
      #expect(gw.upstreamRequests().isEmpty, "\(gw.upstreamRequests().count) preflights reached the upstream")
    }
  }

  @Test("Test-mode keys go to upstreams.test and say mode=test")
  func testCluster() throws {
    let h = try GatewayHarness()
    defer { h.stop() }
    h.extraConfig = "upstreams: {default: \"http://127.0.0.1:1\", test: \"http://127.0.0.1:\(h.upstreamPort)\"}"
    try h.writeConfig()
    // The generated config already has upstreams: replace that line with ours.
    var text = try String(contentsOfFile: h.configPath, encoding: .utf8)
    text = text.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.hasPrefix("upstreams: {default: \"http://127.0.0.1:\(h.upstreamPort)\"}") }.joined(separator: "\n")
    try text.write(toFile: h.configPath, atomically: true, encoding: .utf8)
    try h.startPrewritten()
    let test = try h.curl(Demo.apiHost, "/v1/orders", headers: ["Authorization: Bearer \(Demo.acmeTestSecret)"])
    #expect(test.status == 200)
    #expect(test.claims?["mode"] as? String == "test")
    #expect(test.claims?["aud"] as? String == "test")
    // Live keys go to default, which is down here.
    let live = try h.curl(Demo.apiHost, "/v1/orders", headers: ["Authorization: Bearer \(Demo.acmeSecret)"])
    #expect(live.status == 503)
  }
}
