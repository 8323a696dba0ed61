import Foundation
import GatewayCore
import NIOHPACK
import NIOCore
import NIOHTTP1
import Testing

@testable import GatewayServer

let limits = RequestLimits(maxHeaderBytes: 4096, maxHeaderCount: 20, maxBodyBytes: 1000, maxURIBytes: 256)

func head(_ method: HTTPMethod = .GET, _ uri: String = "/", version: HTTPVersion = .http1_1, _ headers: [(String, String)]) -> HTTPRequestHead {
  HTTPRequestHead(version: version, method: method, uri: uri, headers: HTTPHeaders(headers))
}

@Suite("HTTP/1.1 request validation (§2, §4, §9.4)")
struct HTTP1ValidationTests {
  struct Case: CustomTestStringConvertible, Sendable {
    var name: String
    var method: HTTPMethod = .GET
    var uri = "/"
    var version: HTTPVersion = .http1_1
    var headers: [(String, String)]
    var code: String?
    var testDescription: String { name }
  }

  static let host = ("Host", "acme.platform.example")
  static let cases: [Case] = [
    Case(name: "plain GET", headers: [host], code: nil),
    Case(name: "Content-Length + Transfer-Encoding (CL.TE / TE.CL)", method: .POST, headers: [host, ("Content-Length", "5"), ("Transfer-Encoding", "chunked")], code: "invalid_request"),
    Case(name: "duplicate Content-Length, same value", method: .POST, headers: [host, ("Content-Length", "5"), ("Content-Length", "5")], code: "invalid_request"),
    Case(name: "Content-Length list", method: .POST, headers: [host, ("Content-Length", "5, 5")], code: "invalid_request"),
    Case(name: "signed Content-Length", method: .POST, headers: [host, ("Content-Length", "+5")], code: "invalid_request"),
    Case(name: "huge Content-Length", method: .POST, headers: [host, ("Content-Length", "99999999999999999999")], code: "invalid_request"),
    Case(name: "Content-Length over max_body_bytes", method: .POST, headers: [host, ("Content-Length", "1001")], code: "payload_too_large"),
    Case(name: "Transfer-Encoding: xchunked", method: .POST, headers: [host, ("Transfer-Encoding", "xchunked")], code: "invalid_request"),
    Case(name: "Transfer-Encoding: chunked, identity", method: .POST, headers: [host, ("Transfer-Encoding", "chunked, identity")], code: "invalid_request"),
    Case(name: "Transfer-Encoding twice", method: .POST, headers: [host, ("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")], code: "invalid_request"),
    Case(name: "Transfer-Encoding on HTTP/1.0", method: .POST, version: .http1_0, headers: [host, ("Transfer-Encoding", "chunked")], code: "invalid_request"),
    Case(name: "underscore in a header name", headers: [host, ("X_Tenant", "x")], code: "invalid_request"),
    Case(name: "NUL in a header value", headers: [host, ("X-A", "a\u{0}b")], code: "invalid_request"),
    Case(name: "missing Host", headers: [], code: "invalid_host"),
    Case(name: "two Host headers", headers: [host, ("Host", "bibi.platform.example")], code: "invalid_host"),
    Case(name: "invalid Host", headers: [("Host", "acme_shop.example")], code: "invalid_host"),
    Case(name: "absolute-form naming another host", uri: "https://bibi.platform.example/x", headers: [host], code: "invalid_host"),
    Case(name: "absolute-form naming the same host", uri: "https://ACME.platform.example:443/x?y", headers: [host], code: nil),
    Case(name: "asterisk-form on GET", uri: "*", headers: [host], code: "invalid_request"),
    Case(name: "asterisk-form on OPTIONS", method: .OPTIONS, uri: "*", headers: [host], code: nil),
    Case(name: "CONNECT", method: .CONNECT, uri: "acme.platform.example:443", headers: [host], code: "invalid_request"),
    Case(name: "dot segment (removed, see RequestPathTests)", uri: "/v1/store/../admin/x", headers: [host], code: nil),
    Case(name: "encoded dot segment (removed)", uri: "/v1/store/%2e%2e/admin/x", headers: [host], code: nil),
    Case(name: "path parameter", uri: "/v1;x/admin/orders", headers: [host], code: "invalid_request"),
    Case(name: "fragment", uri: "/v1/admin/orders#x", headers: [host], code: "invalid_request"),
    Case(name: "encoded NUL", uri: "/v1/%00", headers: [host], code: "invalid_request"),
    Case(name: "absolute-form with http:// on the TLS listener", uri: "http://acme.platform.example/x", headers: [host], code: "invalid_request"),
    Case(name: "encoded slash", uri: "/v1/store/..%2Fadmin", headers: [host], code: "invalid_request"),
    Case(name: "backslash", uri: "/v1/store\\..\\admin", headers: [host], code: "invalid_request"),
    Case(name: "bad percent escape", uri: "/a%zz", headers: [host], code: "invalid_request"),
    Case(name: "dots inside a segment are fine", uri: "/v1/files/a..b/.well-known", headers: [host], code: nil),
    Case(name: "URI too long", uri: "/" + String(repeating: "a", count: 300), headers: [host], code: "uri_too_long"),
    Case(name: "too many headers", headers: [host] + (0..<25).map { ("X-H\($0)", "v") }, code: "headers_too_large"),
    Case(name: "headers too large", headers: [host, ("X-Big", String(repeating: "v", count: 5000))], code: "headers_too_large"),
    Case(name: "HTTP/2.0 on the HTTP/1 parser", version: HTTPVersion(major: 2, minor: 0), headers: [host], code: "invalid_request"),
  ]

  @Test("Each request shape", arguments: cases)
  func validate(_ c: Case) {
    let result = RequestValidation.validateHTTP1(head(c.method, c.uri, version: c.version, c.headers), limits: limits)
    switch result {
    case .success: #expect(c.code == nil, "accepted")
    case .failure(let f):
      #expect(f.refusal.code == c.code)
      // Framing errors close the HTTP/1.1 connection.
      #expect(f.closeConnection)
    }
  }

  @Test("Framing and target are reported for valid requests")
  func valid() throws {
    let v = try RequestValidation.validateHTTP1(head(.POST, "https://acme.platform.example/a/b?q=1", [("Host", "Acme.Platform.Example:443"), ("Content-Length", "12")]), limits: limits).get()
    #expect(v.host == "acme.platform.example")
    #expect(v.target == "/a/b?q=1")
    #expect(v.path == "/a/b")
    #expect(v.body == .contentLength(12))
    // The target goes upstream in normal form, and routes see the same form.
    let odd = try RequestValidation.validateHTTP1(head(.GET, "//%76%31/store/../admin/orders?x=/../y", [("Host", "a.b")]), limits: limits).get()
    #expect(odd.target == "/v1/admin/orders?x=/../y")
    #expect(odd.path == "/v1/admin/orders")
    let chunked = try RequestValidation.validateHTTP1(head(.POST, "/", [("Host", "a.b"), ("Transfer-Encoding", "Chunked")]), limits: limits).get()
    #expect(chunked.body == .streamed)
  }
}

@Suite("HTTP/2 request validation")
struct HTTP2ValidationTests {
  func validate(_ fields: [(String, String)], endStream: Bool = true) -> Result<HTTP2RequestValidation.Validated, ValidationFailure> {
    HTTP2RequestValidation.validate(HPACKHeaders(fields), endStream: endStream, limits: limits)
  }
  static let base = [(":method", "GET"), (":scheme", "https"), (":authority", "acme.platform.example"), (":path", "/x")]

  @Test("A well-formed request passes; host comes from :authority")
  func valid() throws {
    let v = try validate(Self.base).get()
    #expect(v.request.host == "acme.platform.example")
    #expect(v.method == .GET)
    #expect(v.request.body == .none)
    #expect(try validate(Self.base, endStream: false).get().request.body == .streamed)
  }

  @Test("Extended CONNECT (RFC 8441) for websocket is a WebSocket GET; other uses of CONNECT and :protocol are refused")
  func extendedConnect() throws {
    let connect = [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"), (":authority", "acme.platform.example"), (":path", "/chat")]
    let v = try validate(connect, endStream: false).get()
    #expect(v.request.websocket)
    #expect(v.method == .GET)
    #expect(v.request.body == .none)
    #expect(v.request.path == "/chat")
    // A tunnel needs an open stream; only websocket; :protocol only with CONNECT.
    for (fields, endStream) in [
      (connect, true),
      (connect.map { $0.0 == ":protocol" ? ($0.0, "connect-udp") : $0 }, false),
      (connect + [("content-length", "5")], false),
      (Self.base + [(":protocol", "websocket")], false),
    ] {
      guard case .failure(let f) = validate(fields, endStream: endStream) else {
        Issue.record("accepted: \(fields)")
        continue
      }
      #expect(f.refusal.code == "invalid_request")
    }
  }

  @Test("Sec-WebSocket-Accept of RFC 6455's example key")
  func websocketAccept() {
    #expect(WebSocketHandshake.accept(for: "dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    #expect(Data(base64Encoded: WebSocketHandshake.makeKey())?.count == 16)
  }

  typealias Fields = [(String, String)]
  static let refusedShapes: [(Fields, String)] = [
      ([(":method", "GET"), (":scheme", "https"), (":authority", "acme.platform.example"), (":path", "/x"), ("host", "bibi.platform.example")], "invalid_host"),
      ([(":method", "GET"), (":scheme", "https"), (":path", "/x")], "invalid_host"),
      ([(":method", "GET"), (":scheme", "https"), (":authority", "acme.platform.example"), (":path", "/x"), ("x_tenant", "1")], "invalid_request"),
      ([(":method", "GET"), (":scheme", "https"), (":authority", "a.b"), (":path", "/v1;x/admin")], "invalid_request"),
      ([(":method", "GET"), (":scheme", "https"), (":authority", "a.b"), (":path", "/v1/admin#x")], "invalid_request"),
      ([(":method", "GET"), (":scheme", "https"), (":authority", "a.b"), (":path", "/v1%2Fadmin")], "invalid_request"),
      ([(":method", "GET"), (":scheme", "https"), (":authority", "a.b"), (":path", "/?a b")], "invalid_request"),
      // RFC 9113 §8.2.1: leading or trailing whitespace in a value is malformed.
      ([(":method", "GET"), (":scheme", "https"), (":authority", "a.b"), (":path", "/"), ("x-a", " v")], "invalid_request"),
      ([(":method", "GET"), (":scheme", "https"), (":authority", "a.b"), (":path", "/"), ("x-a", "v\t")], "invalid_request"),
      ([(":method", "GET"), (":scheme", "https"), (":authority", "a.b "), (":path", "/")], "invalid_request"),
      // Methods are case-sensitive: `get` is no GET, and `options` must not skip the preflight path.
      ([(":method", "get"), (":scheme", "https"), (":authority", "a.b"), (":path", "/")], "invalid_request"),
      ([(":method", "options"), (":scheme", "https"), (":authority", "a.b"), (":path", "/")], "invalid_request"),
      ([(":method", "FOO"), (":scheme", "https"), (":authority", "a.b"), (":path", "/")], "invalid_request"),
      // The TLS listener serves https only.
      ([(":method", "GET"), (":scheme", "http"), (":authority", "a.b"), (":path", "/")], "invalid_request"),
      ([(":method", "CONNECT"), (":authority", "a.b:443")], "invalid_request"),
      ([(":method", "GET"), (":scheme", "ftp"), (":authority", "a.b"), (":path", "/")], "invalid_request"),
      ([(":method", "POST"), (":scheme", "https"), (":authority", "a.b"), (":path", "/"), ("content-length", "5000")], "payload_too_large"),
      ([(":method", "POST"), (":scheme", "https"), (":authority", "a.b"), (":path", "/"), ("content-length", "1"), ("content-length", "1")], "invalid_request"),
      // Pseudo-header names are checked byte by byte after the colon: empty, underscore, and a
      // combining mark (which String.dropFirst() once swallowed together with the colon).
      ([(":method", "GET"), (":scheme", "https"), (":authority", "a.b"), (":path", "/"), (":", "x")], "invalid_request"),
      ([(":method", "GET"), (":scheme", "https"), (":authority", "a.b"), (":path", "/"), (":x_y", "1")], "invalid_request"),
      ([(":method", "GET"), (":scheme", "https"), (":authority", "a.b"), (":path", "/"), (":\u{0301}method", "POST")], "invalid_request"),
    ]

  @Test("Refused shapes", arguments: refusedShapes.indices)
  func refused(_ i: Int) {
    let (fields, code) = Self.refusedShapes[i]
    switch validate(fields, endStream: false) {
    case .success: Issue.record("accepted")
    case .failure(let f): #expect(f.refusal.code == code)
    }
  }

  @Test("The :path goes upstream in normal form, and routes see the same form")
  func normalForm() throws {
    let v = try validate([(":method", "GET"), (":scheme", "https"), (":authority", "a.b"), (":path", "//%76%31/store/../admin/orders?q=%41")]).get()
    #expect(v.request.target == "/v1/admin/orders?q=%41")
    #expect(v.request.path == "/v1/admin/orders")
  }

  @Test("Host header alone is accepted when it agrees; :authority and host that agree pass")
  func hostAgreement() throws {
    let v = try validate([(":method", "GET"), (":scheme", "https"), (":path", "/"), ("host", "acme.platform.example")]).get()
    #expect(v.request.host == "acme.platform.example")
    _ = try validate(Self.base + [("host", "ACME.platform.example:443")]).get()
  }
}

@Suite("Header hygiene (§5)")
struct HeaderRewriteTests {
  let rewrite = HeaderRewrite(tenantHeaderName: "X-Tenant", publishableKeyHeader: "X-Sellvik-Key", trustRequestID: false)

  @Test("Identity, hop-by-hop and key headers are dropped; the gateway's own are added last")
  func upstreamHeaders() {
    let client: [(String, String)] = [
      ("Host", "x"), ("X-Tenant", "f"), ("x-tenant-shop", "f"), ("X-TENANTS", "kept"), ("X-Shop-Id", "f"),
      ("X-Forwarded-For", "f"), ("x-forwarded-anything", "f"), ("Forwarded", "f"), ("X-Real-IP", "f"), ("X-Request-Id", "f"),
      ("Connection", "close, X-Hop, X-Request-Id"), ("X-Hop", "f"), ("Keep-Alive", "f"), ("TE", "trailers"), ("Upgrade", "h2c"),
      ("Transfer-Encoding", "chunked"), ("Content-Length", "9"), ("X-Sellvik-Key", "pk_x"), ("Authorization", "Bearer sk_x"),
      ("Cookie", "a=1"), ("cookie", "b=2"), ("Accept", "*/*"),
    ]
    let added = HeaderRewrite.Added(host: "acme.example", clientAddress: "10.0.0.1", requestID: "rid", shopID: "shop", token: "jwt",
                                    framing: .contentLength(9), stripAuthorization: true)
    let out = rewrite.upstreamHeaders(from: client, added: added)
    let pairs = out.map { ($0.name.lowercased(), $0.value) }
    #expect(pairs.allSatisfy { $0.1 != "f" && !$0.1.contains("pk_x") && !$0.1.contains("sk_x") }, "\(pairs)")
    #expect(pairs.contains { $0 == ("x-tenants", "kept") })
    #expect(pairs.contains { $0 == ("cookie", "a=1; b=2") })
    #expect(pairs.contains { $0 == ("host", "acme.example") })
    #expect(pairs.contains { $0 == ("content-length", "9") })
    #expect(pairs.filter { $0.0 == "x-request-id" }.map(\.1) == ["rid"])
    #expect(pairs.filter { $0.0 == "x-tenant" }.map(\.1) == ["jwt"])
    #expect(pairs.filter { $0.0 == "x-forwarded-for" }.map(\.1) == ["10.0.0.1"])
    #expect(pairs.contains { $0 == ("accept", "*/*") })
    #expect(!pairs.contains { ["te", "upgrade", "keep-alive", "connection", "transfer-encoding", "authorization"].contains($0.0) })
  }

  @Test("Headers that re-route or re-method a request are dropped, with policy.strip_request_headers, in any case")
  func reroutingHeaders() {
    let strict = HeaderRewrite(
      tenantHeaderName: "X-Tenant", publishableKeyHeader: "X-Sellvik-Key", trustRequestID: false,
      stripRequestHeaders: ["X-Internal-Route", "x-debug-as"])
    let client: [(String, String)] = [
      ("X-Original-URL", "/v1/admin/orders"), ("x-rewrite-url", "/v1/admin/orders"), ("X-HTTP-Method-Override", "DELETE"),
      ("X-Http-Method", "DELETE"), ("X-METHOD-OVERRIDE", "DELETE"), ("X-Envoy-Original-Path", "/v1/admin/orders"),
      ("x-internal-route", "admin"), ("X-Debug-As", "root"), ("X-Original-URLs", "kept"), ("Accept", "*/*"),
    ]
    let added = HeaderRewrite.Added(host: "acme.example", clientAddress: "10.0.0.1", requestID: "rid", shopID: "shop", token: "jwt",
                                    framing: .none, stripAuthorization: false)
    let names = strict.upstreamHeaders(from: client, added: added).map { $0.name.lowercased() }
    for gone in ["x-original-url", "x-rewrite-url", "x-http-method-override", "x-http-method", "x-method-override",
      "x-envoy-original-path", "x-internal-route", "x-debug-as"]
    {
      #expect(!names.contains(gone), "\(gone) reached the upstream: \(names)")
    }
    #expect(names.contains("x-original-urls"))
    #expect(names.contains("accept"))
    // Without the policy list, the platform's own names pass (the §5 list still goes).
    let plain = rewrite.upstreamHeaders(from: client, added: added).map { $0.name.lowercased() }
    #expect(plain.contains("x-internal-route") && !plain.contains("x-original-url"))
  }

  @Test("Credentials are read once; a repeated credential header is reported")
  func credentials() {
    let c = rewrite.credentials([("authorization", "bearer  sk_1 "), ("x-sellvik-key", "pk_1"), ("Origin", "https://a.com")])
    #expect(c.bearer == "sk_1")
    #expect(c.publishableKey == "pk_1")
    #expect(c.origin == "https://a.com")
    #expect(c.duplicate == nil)
    #expect(rewrite.credentials([("Authorization", "Bearer a"), ("authorization", "Bearer b")]).duplicate == "Authorization")
    #expect(rewrite.credentials([("Authorization", "Basic dXNlcg==")]).bearer == nil)
  }

  @Test("The upstream head is serialised as HTTP/1.1 bytes: request line, the same fields, blank line")
  func upstreamHeadBytes() {
    let client: [(String, String)] = [("Accept", "*/*"), ("X-Tenant", "forged"), ("Transfer-Encoding", "chunked")]
    let added = HeaderRewrite.Added(host: "acme.example", clientAddress: "10.0.0.1", requestID: "rid", shopID: "shop", token: "jwt",
                                    framing: .streamed, stripAuthorization: false)
    let head = rewrite.upstreamHead(method: .POST, target: "/v1/x?q=1", from: client, added: added, allocator: .init())
    #expect(head.method == .POST)
    #expect(head.chunked)
    #expect(String(buffer: head.bytes) == """
      POST /v1/x?q=1 HTTP/1.1\r\nHost: acme.example\r\nAccept: */*\r\nTransfer-Encoding: chunked\r\n\
      X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: acme.example\r\n\
      X-Request-Id: rid\r\nX-Shop-Id: shop\r\nX-Tenant: jwt\r\n\r\n
      """)
    // The same fields as the HTTPHeaders form, in the same order.
    let fields = rewrite.upstreamHeaders(from: client, added: added).map { "\($0.name): \($0.value)\r\n" }.joined()
    #expect(String(buffer: head.bytes) == "POST /v1/x?q=1 HTTP/1.1\r\n" + fields + "\r\n")
    let fixed = rewrite.upstreamHead(method: .GET, target: "/", from: client, added: {
      var a = added
      a.framing = .contentLength(3)
      return a
    }(), allocator: .init())
    #expect(!fixed.chunked)
    #expect(String(buffer: fixed.bytes).contains("Content-Length: 3\r\n"))
  }

  @Test("HTTP/2 WebSocket: the gateway's Sec-WebSocket-Key replaces the client's; a client version is kept")
  func websocketKey() {
    var added = HeaderRewrite.Added(host: "a.example", clientAddress: "::1", requestID: "r", shopID: "s", token: "t",
                                    framing: .none, stripAuthorization: false, websocket: true)
    added.websocketKey = "gatewaykey=="
    let out = rewrite.upstreamHeaders(from: [("sec-websocket-key", "clientkey=="), ("sec-websocket-version", "13")], added: added)
    #expect(out["Sec-WebSocket-Key"] == ["gatewaykey=="])
    #expect(out["Sec-WebSocket-Version"] == ["13"])
    #expect(out["Connection"] == ["Upgrade"] && out["Upgrade"] == ["websocket"])
    let noVersion = rewrite.upstreamHeaders(from: [], added: added)
    #expect(noVersion["Sec-WebSocket-Version"] == ["13"])
  }

  @Test("Responses lose hop-by-hop headers and get the gateway's request id")
  func responseHeaders() {
    let upstream = HTTPHeaders([("Connection", "X-Secret"), ("X-Secret", "1"), ("Keep-Alive", "5"), ("Transfer-Encoding", "chunked"),
                                ("X-Request-Id", "upstream"), ("Content-Type", "text/plain")])
    let out = HeaderRewrite.clientResponseHeaders(from: upstream, requestID: "rid")
    #expect(out.map(\.name) == ["Content-Type", "X-Request-Id"])
    #expect(out["X-Request-Id"] == ["rid"])
  }

  @Test("Every field a Connection list names is dropped: spaces, empty elements, hop-by-hop names and several fields mixed")
  func connectionListedFields() {
    let upstream = HTTPHeaders([
      ("Connection", "keep-alive,  X-One ,,\tx-two"), ("connection", "Upgrade, X-Three"), ("X-One", "1"), ("x-TWO", "2"),
      ("X-Three", "3"), ("X-Four", "4"), ("Keep-Alive", "timeout=5"), ("Upgrade", "h2c"),
      ("X-Very-Long-Connection-Listed-Name", "5"), ("Connection", "x-very-long-connection-listed-name"),
    ])
    let out = HeaderRewrite.clientResponseHeaders(from: upstream, requestID: "rid")
    #expect(out.map(\.name) == ["X-Four", "X-Request-Id"], "\(out)")
    let client: [(String, String)] = [("Connection", "close, X-Hop"), ("X-Hop", "f"), ("Accept", "*/*")]
    let added = HeaderRewrite.Added(host: "a.example", clientAddress: "::1", requestID: "r", shopID: "s", token: "t",
                                    framing: .none, stripAuthorization: false)
    let up = rewrite.upstreamHeaders(from: client, added: added)
    #expect(up["X-Hop"].isEmpty && up["Accept"] == ["*/*"])
  }
}

@Suite("ASCII case-insensitive header-name comparison")
struct CaseInsensitiveTests {
  @Test("Letters match across case; bytes that differ only in bit 0x20 but are not letters never do")
  func table() {
    #expect(equalsIgnoringCase("Content-Length", "content-length"))
    #expect(equalsIgnoringCase("X-TENANT", "x-tenant"))
    #expect(equalsIgnoringCase("", ""))
    #expect(!equalsIgnoringCase("content-length", "content-lengt"))
    #expect(!equalsIgnoringCase("a-b", "a\rb"))  // '-' 0x2D and CR 0x0D
    #expect(!equalsIgnoringCase("@", "`"))  // 0x40 and 0x60
    #expect(!equalsIgnoringCase("[", "{"))
    #expect(equalsIgnoringCase("a-very-long-header-name-beyond-small-strings", "A-Very-Long-Header-Name-Beyond-Small-Strings"))
    #expect(hasPrefixIgnoringCase("X-Forwarded-For", "x-forwarded-"))
    #expect(hasPrefixIgnoringCase("anything", ""))
    #expect(!hasPrefixIgnoringCase("x-forwarde", "x-forwarded-"))
    #expect(!hasPrefixIgnoringCase("x_forwarded-for", "x-forwarded-"))
  }
}

@Suite("Certificate coverage (§2 misdirected_request)")
struct CertificateNamesTests {
  @Test func coverage() {
    let n = CertificateNames(names: ["*.platform.example", "api.platform.example", "Shop.Acme.com"])
    #expect(n.covers("acme.platform.example"))
    #expect(n.covers("api.platform.example"))
    #expect(n.covers("shop.acme.com"))
    #expect(!n.covers("a.b.platform.example"))
    #expect(!n.covers("platform.example"))
    #expect(!n.covers("acme.com"))
  }
}
