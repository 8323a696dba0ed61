import GatewayCore
import GatewayUpstream
import NIOCore
import NIOHTTP1

/// Credentials and policy inputs read from a request's headers in one pass.
struct RequestCredentials {
  var bearer: String?
  var authorizationIsBearer = false
  var publishableKey: String?
  var origin: String?
  var requestID: String?
  var expectContinue = false
  /// `Access-Control-Request-Method` (a CORS preflight when the method is OPTIONS).
  var preflightMethod: String?
  /// Set when a credential header appears twice (ambiguous: refused).
  var duplicate: String?
  /// `Cookie` field values (collected only when sessions are configured).
  var cookies: [String] = []
}

/// Header hygiene of PRODUCT.md §5, in both directions.
///
/// Towards the upstream: client-sent identity headers (`X-Tenant*`, `X-Shop-Id`, `X-Forwarded-*`,
/// `Forwarded`, `X-Real-IP`, `X-Request-Id` unless trusted) are deleted in any case, and so are the
/// headers common frameworks use to re-route or re-method a request (`X-Original-URL`,
/// `X-Rewrite-URL`, `X-HTTP-Method-Override`, `X-HTTP-Method`, `X-Method-Override`,
/// `X-Envoy-Original-Path`, and `policy.strip_request_headers`): the gateway authorised this path
/// and this method, and a backend that obeys such a header would serve another. Hop-by-hop headers
/// and the headers `Connection` names are dropped, API keys are removed (the gateway never forwards
/// a plaintext key), then the gateway adds its own headers. Because ours are added after the
/// filtering, `Connection` can never strip them.
struct HeaderRewrite {
  /// `tenant_header.name`, lowercased.
  let tenantHeader: String
  /// `tenantHeader` + `-` (its `X-Tenant-*` family), built once rather than per header.
  private let tenantHeaderPrefix: String
  /// `publishable_key_header`, lowercased.
  let publishableKeyHeader: String
  let tenantHeaderName: String
  let trustRequestID: Bool
  /// Collect `Cookie` values (sessions configured).
  let collectCookies: Bool
  /// `policy.strip_request_headers`: the platform's own names to delete from client requests.
  let extraStripped: [String]

  init(
    tenantHeaderName: String, publishableKeyHeader: String, trustRequestID: Bool, collectCookies: Bool = false,
    stripRequestHeaders: [String] = []
  ) {
    self.collectCookies = collectCookies
    self.extraStripped = stripRequestHeaders
    self.tenantHeaderName = tenantHeaderName
    self.tenantHeader = tenantHeaderName.lowercased()
    self.tenantHeaderPrefix = tenantHeaderName.lowercased() + "-"
    self.publishableKeyHeader = publishableKeyHeader.lowercased()
    self.trustRequestID = trustRequestID
  }

  /// Reads credentials from `(name, value)` pairs.
  func credentials<S: Sequence>(_ headers: S) -> RequestCredentials where S.Element == (String, String) {
    var c = RequestCredentials()
    var sawAuthorization = false
    for (name, value) in headers {
      if equalsIgnoringCase(name, "authorization") {
        if sawAuthorization { c.duplicate = "Authorization" }
        sawAuthorization = true
        if let token = Self.bearerToken(value) {
          c.bearer = token
          c.authorizationIsBearer = true
        }
      } else if equalsIgnoringCase(name, publishableKeyHeader) {
        if c.publishableKey != nil { c.duplicate = "the publishable-key header" }
        c.publishableKey = value.trimmingASCIIWhitespace()
      } else if equalsIgnoringCase(name, "origin") {
        if c.origin != nil { c.duplicate = "Origin" }
        c.origin = value.trimmingASCIIWhitespace()
      } else if trustRequestID && equalsIgnoringCase(name, "x-request-id") {
        c.requestID = value
      } else if collectCookies && equalsIgnoringCase(name, "cookie") {
        c.cookies.append(value)
      } else if equalsIgnoringCase(name, "access-control-request-method") {
        c.preflightMethod = value.trimmingASCIIWhitespace()
      } else if equalsIgnoringCase(name, "expect") {
        c.expectContinue = equalsIgnoringCase(value.trimmingASCIIWhitespace(), "100-continue")
      }
    }
    return c
  }

  /// `Bearer <token>` (scheme case-insensitive, RFC 9110 §11.1); `nil` for other schemes.
  static func bearerToken(_ value: String) -> String? {
    let v = value.trimmingASCIIWhitespace()
    guard v.utf8.count > 7, equalsIgnoringCase(String(v.prefix(7)), "bearer ") else { return nil }
    let token = v.dropFirst(7).trimmingASCIIWhitespace()
    return token.isEmpty ? nil : token
  }

  /// What the gateway adds to every forwarded request.
  struct Added {
    var host: String
    var clientAddress: String
    var requestID: String
    var shopID: String
    var token: String
    var framing: BodyFraming
    /// Drop `Authorization` (it carried an API key).
    var stripAuthorization: Bool
    /// A WebSocket upgrade: `Connection: Upgrade` and `Upgrade: websocket` go upstream.
    var websocket = false
    /// RFC 8441: an HTTP/2 WebSocket has no key; the gateway, as the upstream's WebSocket client,
    /// sends its own (and `Sec-WebSocket-Version: 13` unless the client named one).
    var websocketKey: String? = nil
  }

  /// Builds the upstream request headers from the client's (as `HTTPHeaders`: for tests and tools;
  /// the request path writes bytes with ``upstreamHead(method:target:from:added:allocator:)``).
  func upstreamHeaders<S: Sequence>(from client: S, added: Added) -> HTTPHeaders where S.Element == (String, String) {
    var out = HTTPHeaders()
    out.reserveCapacity(16)
    forEachUpstreamHeader(from: client, added: added, chunked: { out.add(name: "Transfer-Encoding", value: "chunked") }) {
      out.add(name: $0, value: $1)
    }
    return out
  }

  /// The upstream request head, serialised: request line, the fields of
  /// ``forEachUpstreamHeader(from:added:chunked:_:)``, blank line.
  func upstreamHead<S: Sequence>(
    method: HTTPMethod, target: String, from client: S, added: Added, allocator: ByteBufferAllocator
  ) -> UpstreamRequestHead where S.Element == (String, String) {
    // Room for the request line, the added fields (the token is the big one) and typical client fields.
    let capacity = 768 + target.utf8.count + added.token.utf8.count + 2 * added.host.utf8.count
    var writer = UpstreamHeadWriter(method: method, target: target, capacity: capacity, allocator: allocator)
    forEachUpstreamHeader(from: client, added: added, chunked: { writer.addChunkedFraming() }) {
      writer.add(name: $0, value: $1)
    }
    var head = writer.finish()
    head.upgrade = added.websocket
    return head
  }

  /// The upstream request fields in order: `Host`, the client's fields that survive the filtering,
  /// `Cookie` (joined), framing, upgrade fields, then the gateway's own. `chunked` is called instead
  /// of `body` for `Transfer-Encoding: chunked`.
  @inline(__always)
  func forEachUpstreamHeader<S: Sequence>(
    from client: S, added: Added, chunked: () -> Void, _ body: (_ name: String, _ value: String) -> Void
  ) where S.Element == (String, String) {
    var connectionTokens: [String] = []
    for (name, value) in client { Self.collectConnectionTokens(name: name, value: value, into: &connectionTokens) }
    body("Host", added.host)
    var cookies: [String] = []
    var sawWebSocketVersion = false
    for (name, value) in client {
      if isStrippedRequestHeader(name) { continue }
      if added.stripAuthorization && equalsIgnoringCase(name, "authorization") { continue }
      if !connectionTokens.isEmpty && connectionTokens.contains(where: { equalsIgnoringCase(name, $0) }) { continue }
      if equalsIgnoringCase(name, "cookie") {
        // HTTP/2 may split cookies over several fields; HTTP/1.1 wants one (RFC 9113 §8.2.3).
        cookies.append(value)
        continue
      }
      if added.websocketKey != nil {
        // The gateway's key replaces any the client sent; its version is kept.
        if equalsIgnoringCase(name, "sec-websocket-key") { continue }
        if equalsIgnoringCase(name, "sec-websocket-version") { sawWebSocketVersion = true }
      }
      body(name, value)
    }
    if !cookies.isEmpty { body("Cookie", cookies.joined(separator: "; ")) }
    switch added.framing {
    case .none: break
    case .contentLength(let n): body("Content-Length", String(n))
    case .streamed: chunked()
    }
    if added.websocket {
      body("Connection", "Upgrade")
      body("Upgrade", "websocket")
    }
    if let key = added.websocketKey {
      body("Sec-WebSocket-Key", key)
      if !sawWebSocketVersion { body("Sec-WebSocket-Version", "13") }
    }
    body("X-Forwarded-For", added.clientAddress)
    body("X-Forwarded-Proto", "https")
    body("X-Forwarded-Host", added.host)
    body("X-Request-Id", added.requestID)
    body("X-Shop-Id", added.shopID)
    body(tenantHeaderName, added.token)
  }

  /// Client headers that never reach an upstream.
  func isStrippedRequestHeader(_ name: String) -> Bool {
    let n = name.utf8.count
    if n >= 8 && hasPrefixIgnoringCase(name, "x-tenant") {
      // X-Tenant and every X-Tenant-*.
      if n == 8 || name.utf8[name.utf8.index(name.utf8.startIndex, offsetBy: 8)] == UInt8(ascii: "-") { return true }
    }
    if n >= 12 && hasPrefixIgnoringCase(name, "x-forwarded-") { return true }
    if equalsIgnoringCase(name, tenantHeader) || equalsIgnoringCase(name, publishableKeyHeader) { return true }
    if n > tenantHeader.utf8.count && hasPrefixIgnoringCase(name, tenantHeaderPrefix) { return true }
    if !extraStripped.isEmpty && extraStripped.contains(where: { equalsIgnoringCase(name, $0) }) { return true }
    switch n {
    case 2: return equalsIgnoringCase(name, "te")
    case 4: return equalsIgnoringCase(name, "host")
    case 6: return equalsIgnoringCase(name, "expect")
    case 7: return equalsIgnoringCase(name, "upgrade") || equalsIgnoringCase(name, "trailer")
    case 9: return equalsIgnoringCase(name, "forwarded") || equalsIgnoringCase(name, "x-real-ip") || equalsIgnoringCase(name, "x-shop-id")
    case 10: return equalsIgnoringCase(name, "connection") || equalsIgnoringCase(name, "keep-alive")
    case 12: return equalsIgnoringCase(name, "x-request-id")
    // Re-routing and re-methoding headers (IIS/ASP.NET URL Rewrite, Symfony, Laravel, Rails,
    // Express method-override, Spring's HiddenHttpMethodFilter kin, Envoy's own original path).
    case 13: return equalsIgnoringCase(name, "x-rewrite-url") || equalsIgnoringCase(name, "x-http-method")
    case 14: return equalsIgnoringCase(name, "content-length") || equalsIgnoringCase(name, "x-original-url")
    case 16: return equalsIgnoringCase(name, "proxy-connection")
    case 17: return equalsIgnoringCase(name, "transfer-encoding") || equalsIgnoringCase(name, "x-method-override")
    case 21: return equalsIgnoringCase(name, "x-envoy-original-path")
    case 22: return equalsIgnoringCase(name, "x-http-method-override")
    default: return false
    }
  }

  /// Response headers to pass to the client: hop-by-hop ones and `Connection`-named ones dropped,
  /// `X-Request-Id` replaced by the gateway's. The gateway owns CORS (preflights never reach an
  /// upstream), so upstream `Access-Control-*` headers are dropped too — a backend bug cannot widen
  /// access — and `Access-Control-Allow-Origin` is set for an allowed Origin.
  static func clientResponseHeaders(
    from upstream: HTTPHeaders, requestID: String, allowOrigin: String? = nil, varyOrigin: Bool = false, upgrade: Bool = false
  ) -> HTTPHeaders {
    var out = HTTPHeaders()
    out.reserveCapacity(upstream.count + 1)
    forEachClientResponseHeader(
      from: upstream, requestID: requestID, allowOrigin: allowOrigin, varyOrigin: varyOrigin, upgrade: upgrade
    ) { name, value, _ in out.add(name: name, value: value) }
    return out
  }

  /// The headers of ``clientResponseHeaders(from:requestID:allowOrigin:varyOrigin:upgrade:)``, one
  /// by one, without building an `HTTPHeaders` (the HTTP/2 leg encodes them straight into HPACK).
  /// `unique` marks a value that differs on every response (`X-Request-Id`): worthless in an HPACK
  /// dynamic table, where it would only evict the entries that repeat.
  @inline(__always)
  static func forEachClientResponseHeader(
    from upstream: HTTPHeaders, requestID: String, allowOrigin: String?, varyOrigin: Bool, upgrade: Bool,
    _ body: (_ name: String, _ value: String, _ unique: Bool) -> Void
  ) {
    var connectionTokens: [String] = []
    for (name, value) in upstream { collectConnectionTokens(name: name, value: value, into: &connectionTokens) }
    for (name, value) in upstream {
      if isHopByHop(name) || equalsIgnoringCase(name, "x-request-id") { continue }
      if upgrade && (equalsIgnoringCase(name, "connection") || equalsIgnoringCase(name, "upgrade")) { continue }
      if hasPrefixIgnoringCase(name, "access-control-") { continue }
      if !connectionTokens.isEmpty && connectionTokens.contains(where: { equalsIgnoringCase(name, $0) }) { continue }
      body(name, value, false)
    }
    if upgrade {
      body("Connection", "Upgrade", false)
      body("Upgrade", "websocket", false)
    }
    body("X-Request-Id", requestID, true)
    if let allowOrigin { body("Access-Control-Allow-Origin", allowOrigin, false) }
    if varyOrigin { body("Vary", "Origin", false) }
  }

  /// The field names a `Connection` field lists (RFC 9110 §7.6.1), lowercased, added to `tokens`;
  /// those fields are hop-by-hop too. Any other field adds nothing.
  ///
  /// Names that are hop-by-hop anyway (`keep-alive`, `upgrade`, …) are left out: both callers drop
  /// those fields regardless, and the usual `Connection: keep-alive` then costs no array (this runs
  /// on every request and every response).
  @inline(__always)
  static func collectConnectionTokens(name: String, value: String, into tokens: inout [String]) {
    guard name.utf8.count == 10, equalsIgnoringCase(name, "connection") else { return }
    var start = value.utf8.startIndex
    let end = value.utf8.endIndex
    while start < end {
      let comma = value.utf8[start...].firstIndex(of: UInt8(ascii: ",")) ?? end
      // A token of up to 15 bytes is a small string: no allocation.
      let t = value[start..<comma].trimmingASCIIWhitespace()
      if !t.isEmpty && !isHopByHop(t) { tokens.append(t.lowercased()) }
      start = comma < end ? value.utf8.index(after: comma) : end
    }
  }

  static func isHopByHop(_ name: String) -> Bool {
    switch name.utf8.count {
    case 2: return equalsIgnoringCase(name, "te")
    case 7: return equalsIgnoringCase(name, "upgrade") || equalsIgnoringCase(name, "trailer")
    case 10: return equalsIgnoringCase(name, "connection") || equalsIgnoringCase(name, "keep-alive")
    case 16: return equalsIgnoringCase(name, "proxy-connection")
    case 17: return equalsIgnoringCase(name, "transfer-encoding")
    default: return false
    }
  }
}

/// ASCII case-insensitive equality without allocating.
///
/// Header names are compared this way dozens of times per request, so both strings are read as
/// contiguous UTF-8 (native and small strings always are) rather than through `zip` over two
/// `UTF8View`s, whose generic iteration was ~1 % of a loaded gateway's CPU.
@inline(__always)
func equalsIgnoringCase(_ a: String, _ b: String) -> Bool {
  guard a.utf8.count == b.utf8.count else { return false }
  return asciiCaseInsensitivePrefix(a, b)
}

@inline(__always)
func hasPrefixIgnoringCase(_ a: String, _ prefix: String) -> Bool {
  guard a.utf8.count >= prefix.utf8.count else { return false }
  return asciiCaseInsensitivePrefix(a, prefix)
}

/// `prefix` (no longer than `a`) equals the start of `a`, ASCII letters compared without case.
@inline(__always)
private func asciiCaseInsensitivePrefix(_ a: String, _ prefix: String) -> Bool {
  let fast = a.utf8.withContiguousStorageIfAvailable { x in
    prefix.utf8.withContiguousStorageIfAvailable { y in
      for i in 0..<y.count where x[i] != y[i] {
        guard asciiLettersMatch(x[i], y[i]) else { return false }
      }
      return true
    }
  }
  if let fast, let result = fast { return result }
  for (p, q) in zip(a.utf8, prefix.utf8) where p != q {
    guard asciiLettersMatch(p, q) else { return false }
  }
  return true
}

/// Two different bytes that are the same ASCII letter in different case.
@inline(__always)
private func asciiLettersMatch(_ p: UInt8, _ q: UInt8) -> Bool {
  p | 0x20 == q | 0x20 && (p | 0x20) >= UInt8(ascii: "a") && (p | 0x20) <= UInt8(ascii: "z")
}
