import Foundation
import Testing

/// Route-prefix confusion (issue 15 item 1): every spelling of a path is matched, forwarded and
/// signed in one normal form (PRODUCT.md §3), so no spelling reaches a keyed backend route with only
/// host authentication (§9.1). The upstream is `clients/raw_upstream.py`, which records raw bytes.
@Suite("Route bypass by path spelling (§3, §9.1): real gateway, raw-bytes upstream")
struct RouteBypassTests {
  /// Spellings of `/v1/admin/orders` that backends are known to read as it (decoded unreserved
  /// escapes, merged slashes, case-insensitive routing, `;` parameters stripped, dot-segments).
  static let shapes: [(path: String, status: Int, code: String)] = [
    ("/v1/admin/orders", 401, "missing_credentials"),
    ("/%76%31/admin/orders", 401, "missing_credentials"),
    ("/v1/%61dmin/orders", 401, "missing_credentials"),
    ("//v1/admin/orders", 401, "missing_credentials"),
    ("/v1//admin/orders", 401, "missing_credentials"),
    ("/V1/admin/orders", 401, "missing_credentials"),
    ("/v1/ADMIN/orders", 401, "missing_credentials"),
    ("/v1/store/../admin/orders", 401, "missing_credentials"),
    ("/v1/store/%2e%2e/admin/orders", 401, "missing_credentials"),
    ("/v1/./admin/orders", 401, "missing_credentials"),
    ("/v1;x/admin/orders", 400, "invalid_request"),
    ("/v1/admin;x/orders", 400, "invalid_request"),
    ("/v1%2Fadmin/orders", 400, "invalid_request"),
    ("/v1%5Cadmin/orders", 400, "invalid_request"),
    ("/v1/%00/admin/orders", 400, "invalid_request"),
  ]

  @Test("Invariant §9.1: every spelling of a keyed route is that route, over HTTP/1.1 and HTTP/2; none reaches the upstream without a key")
  func spellingsOfAKeyedRoute() throws {
    try withRawUpstream { gw in
      for shape in Self.shapes {
        for http2 in [false, true] {
          let r = try gw.curl("acme.platform.localhost", shape.path, http2: http2, extra: ["--path-as-is"])
          #expect(r.status == shape.status, "\(shape.path) h2=\(http2): \(r.diagnostic)")
          #expect(r.errorCode == shape.code, "\(shape.path) h2=\(http2): \(r.body)")
        }
      }
      // curl never sends a fragment; a raw socket does.
      for target in ["/v1/admin/orders#x", "/#/../v1/admin/orders", "/x?y#z"] {
        let r = try gw.raw("GET \(target) HTTP/1.1\r\nHost: acme.platform.localhost\r\n\r\n")
        #expect(r["status"] as? Int == 400, "\(target): \(r)")
        #expect((r["body"] as? String)?.contains("invalid_request") == true, "\(target): \(r)")
      }
      // Nothing of the kind arrived: the upstream saw no request at all.
      let received = gw.rawUpstreamRequests()
      #expect(received.isEmpty, "\(received.map(\.raw).joined(separator: "\n---\n"))")
    }
  }

  @Test("An authorised request arrives in the normal form it was authorised in, and htu says the same")
  func normalFormForwarded() throws {
    try withRawUpstream { gw in
      let cases: [(sent: String, line: String, htu: String, auth: [String])] = [
        ("/%76%31//admin/./orders?x=%41&y=/../z", "GET /v1/admin/orders?x=%41&y=/../z HTTP/1.1", "/v1/admin/orders",
         ["Authorization: Bearer \(Demo.acmeSecret)"]),
        ("/V1/Admin/Orders", "GET /V1/Admin/Orders HTTP/1.1", "/V1/Admin/Orders", ["Authorization: Bearer \(Demo.acmeSecret)"]),
        ("/Shoes/%7eboots/caf%c3%a9", "GET /Shoes/~boots/caf%C3%A9 HTTP/1.1", "/Shoes/~boots/caf%C3%A9", []),
      ]
      for (i, c) in cases.enumerated() {
        for http2 in [false, true] {
          let before = gw.rawUpstreamRequests().count
          let r = try gw.curl("acme.platform.localhost", c.sent, headers: c.auth, http2: http2, extra: ["--path-as-is"])
          #expect(r.status == 200, "case \(i) h2=\(http2): \(r.diagnostic)")
          let received = gw.rawUpstreamRequests()
          guard received.count == before + 1, let raw = received.last?.raw else {
            Issue.record("case \(i) h2=\(http2): the upstream got \(received.count - before) requests")
            continue
          }
          #expect(raw.hasPrefix(c.line + "\r\n"), "case \(i) h2=\(http2): \(raw.prefix(200))")
          let claims = try #require(Self.tenantClaims(raw), "no X-Tenant in \(raw.prefix(400))")
          #expect(claims["htu"] as? String == c.htu)
          #expect(claims["auth"] as? String == (c.auth.isEmpty ? "host" : "secret_key"))
        }
      }
    }
  }

  /// Headers known to make common frameworks serve another path or method than the request line's
  /// (IIS/ASP.NET URL Rewrite, Symfony and Laravel, Express method-override, Rails, Envoy).
  static let reroutingHeaders = [
    "X-Original-URL: /v1/admin/orders", "X-Rewrite-URL: /v1/admin/orders", "X-HTTP-Method-Override: DELETE",
    "X-HTTP-Method: DELETE", "X-Method-Override: DELETE", "X-Envoy-Original-Path: /v1/admin/orders",
    // policy.strip_request_headers below, in other case than configured.
    "x-internal-route: admin", "X-DEBUG-AS: root",
  ]

  @Test("Invariant §9.2: headers that re-route or re-method a request never reach the upstream, nor those in policy.strip_request_headers")
  func reroutingHeadersStripped() throws {
    let extra = "policy: {refuse_secret_key_in_browser: true, strip_request_headers: [X-Internal-Route, x-debug-as]}"
    try withRawUpstream(extraConfig: extra) { gw in
      for http2 in [false, true] {
        // A storefront request (host auth) carrying every steering header.
        let r = try gw.curl("acme.platform.localhost", "/products", headers: Self.reroutingHeaders + ["X-Kept: yes"], http2: http2)
        #expect(r.status == 200, "h2=\(http2): \(r.diagnostic)")
      }
      let received = gw.rawUpstreamRequests()
      #expect(received.count == 2)
      for request in received {
        let names = request.raw.components(separatedBy: "\r\n").dropFirst().compactMap { line in
          line.firstIndex(of: ":").map { line[..<$0].lowercased() }
        }
        for h in Self.reroutingHeaders {
          let name = String(h[..<h.firstIndex(of: ":")!]).lowercased()
          #expect(!names.contains(name), "\(name) reached the upstream: \(request.raw.prefix(600))")
        }
        #expect(names.contains("x-kept"), "\(request.raw.prefix(600))")
        #expect(request.raw.hasPrefix("GET /products HTTP/1.1\r\n"))
      }
    }
  }

  /// The claims of the X-Tenant JWT in a raw request (the signature is checked elsewhere).
  static func tenantClaims(_ raw: String) -> [String: Any]? {
    guard let line = raw.components(separatedBy: "\r\n").first(where: { $0.lowercased().hasPrefix("x-tenant:") }) else { return nil }
    return jwtPayload(line.dropFirst("x-tenant:".count).trimmingCharacters(in: .whitespaces))
  }
}
