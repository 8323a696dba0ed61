import Foundation
import GatewayCore
import GatewaySigning
import GatewayUpstream
import NIOCore
import NIOHTTP1

/// What the request path knows about a client connection.
struct ConnectionInfo {
  /// The client's IP address (X-Forwarded-For).
  let clientAddress: String
  /// The certificate presented on this connection: the names it covers (§2 `misdirected_request`).
  let certificate: CertificateNames
  /// The negotiated TLS version, `TLSv1.2` or `TLSv1.3` (for the access log).
  var tlsVersion: String? = nil
}

/// The outcome of admitting a request: forward it (with everything the upstream needs), or refuse.
enum Admission {
  case forward(ForwardPlan)
  case refuse(GatewayRefusal, closeConnection: Bool, requestID: String)
  /// Over a rate limit: 429 with `Retry-After` seconds.
  case rateLimited(retryAfter: Int, requestID: String)
  /// A CORS preflight the gateway answers itself with 204.
  case preflight(origin: String, methods: String, requestID: String)
}

/// A request that passed every check, ready for the upstream.
struct ForwardPlan {
  var requestID: String
  /// The upstream request head, serialised.
  var request: UpstreamRequestHead
  var cluster: LoopCluster
  var tenant: TenantContext
  /// The table the request was resolved in: everything later about it (its access-log line)
  /// reads this one, never the current one (PRODUCT.md §9 invariant 6; a swap may land between).
  var table: TenantTable
  var hasBody: Bool
  var expectContinue: Bool
  /// The request's Origin when allowed for the shop: the response gets `Access-Control-Allow-Origin`.
  var allowOrigin: String?
  /// The request carried an Origin, so the response depends on it (`Vary: Origin`).
  var varyOrigin: Bool
}

/// The protocol-independent phases of a request, in order: validate (done by the protocol
/// handler) → resolve → authorise → rewrite and sign. Each step either yields the next input or a
/// typed refusal; nothing here touches a channel.
enum RequestAdmission {
  static func admit<Headers: Sequence>(
    _ request: ValidatedRequest, method: HTTPMethod, headers: Headers, loop: LoopContext, connection: ConnectionInfo,
    websocketKey: String? = nil
  ) -> Admission where Headers.Element == (String, String) {
    let credentials = loop.rewrite.credentials(headers)
    var requestID = loop.requestIDs.next()
    if let id = credentials.requestID, RequestIDGenerator.isAcceptable(id) { requestID = id }

    if let duplicate = credentials.duplicate {
      return .refuse(.invalidRequest.with(message: "\(duplicate) appears more than once."), closeConnection: false, requestID: requestID)
    }
    // A connection's certificate must cover the host (no cross-tenant HTTP/2 connection reuse, §2).
    guard connection.certificate.covers(request.host) else {
      return .refuse(.misdirectedRequest, closeConnection: false, requestID: requestID)
    }

    let table = loop.tables.current()
    // CORS preflight: answered here, never forwarded (§3).
    if method == .OPTIONS, let requested = credentials.preflightMethod {
      switch loop.resolver.preflight(
        host: request.host, path: request.path, origin: credentials.origin, requestedMethod: requested, in: table)
      {
      case .allow(let origin, let methods): return .preflight(origin: origin, methods: methods, requestID: requestID)
      case .refuse(let refusal): return .refuse(refusal, closeConnection: false, requestID: requestID)
      }
    }

    let facts = RequestFacts(
      host: request.host, method: method.rawValue, path: request.path, bearer: credentials.bearer,
      publishableKey: credentials.publishableKey, origin: credentials.origin,
      sessionCookie: credentials.cookies.isEmpty ? .absent : CookieHeader.find(loop.settings.sessionCookieName, in: credentials.cookies))
    let tenant: TenantContext
    switch loop.resolver.resolve(facts, in: table, sessions: &loop.sessions) {
    case .success(let t): tenant = t
    case .failure(let refusal): return .refuse(refusal, closeConnection: false, requestID: requestID)
    }
    loop.counters.topShops.record(tenant.shop, in: table)
    if let wait = loop.settings.rateLimits.check(tenant: tenant, table: table, now: loop.sweeper.now) {
      return .rateLimited(retryAfter: wait, requestID: requestID)
    }
    guard let cluster = loop.clusters[tenant.upstream] ?? loop.clusters["default"] else {
      return .refuse(.upstreamUnavailable, closeConnection: false, requestID: requestID)
    }

    // Sign: claims straight from the table's bytes.
    let token = loop.signer.sign(now: loop.sweeper.wallSeconds) { claims in
      claims.add("aud", tenant.upstream)
      table.withShopID(tenant.shop) { claims.add("shop_id", bytes: $0) }
      table.withSubdomain(tenant.shop) { claims.add("shop_subdomain", bytes: $0) }
      claims.add("mode", tenant.mode == .live ? "live" : "test")
      claims.add("auth", tenant.auth.claim)
      if let key = tenant.key { table.withKeyID(key) { claims.add("key_id", bytes: $0) } }
      if let user = tenant.userID { claims.add("user_id", user) }
      if let customer = tenant.customerID { claims.add("customer_id", customer) }
      claims.add("host", request.host)
      claims.add("jti", requestID)
      claims.add("htm", method.rawValue)
      claims.add("htu", request.path)
    }

    let added = HeaderRewrite.Added(
      host: request.host, clientAddress: connection.clientAddress, requestID: requestID,
      shopID: table.shopID(tenant.shop), token: token, framing: request.body,
      stripAuthorization: credentials.authorizationIsBearer && !(loop.resolver.settings.routes.routes[tenant.route].customerTokens
        && TenantResolver.isJWSCompact(credentials.bearer ?? "")),
      websocket: request.websocket, websocketKey: websocketKey)
    let upstream = loop.rewrite.upstreamHead(
      method: method, target: request.target, from: headers, added: added, allocator: loop.allocator)
    return .forward(
      ForwardPlan(
        requestID: requestID, request: upstream, cluster: cluster, tenant: tenant, table: table, hasBody: request.body != .none,
        expectContinue: credentials.expectContinue, allowOrigin: tenant.allowedOrigin, varyOrigin: credentials.origin != nil))
  }
}

/// The refusal body and headers (§4): JSON, `Content-Type: application/json`, `X-Request-Id`.
enum RefusalResponse {
  static func body(_ refusal: GatewayRefusal, requestID: String, allocator: ByteBufferAllocator) -> ByteBuffer {
    allocator.buffer(string: refusal.jsonBody(requestID: requestID))
  }

  /// Refusals decided by the Origin vary with it (caches must not reuse them across origins).
  static func variesByOrigin(_ refusal: GatewayRefusal) -> Bool {
    refusal.code == GatewayRefusal.originNotAllowed.code || refusal.code == GatewayRefusal.secretKeyInBrowser.code
  }
}

/// Headers of an allowed preflight (204), computed once from `cors` settings.
struct PreflightHeaders: Sendable {
  /// `cors.allow_headers` plus the publishable-key header, joined.
  let allowHeaders: String
  let maxAge: String

  init(allowHeaders: [String], publishableKeyHeader: String, maxAgeSeconds: Int) {
    var names = allowHeaders
    if !names.contains(where: { equalsIgnoringCase($0, publishableKeyHeader) }) { names.append(publishableKeyHeader) }
    self.allowHeaders = names.joined(separator: ", ")
    self.maxAge = String(maxAgeSeconds)
  }

  /// Name/value pairs of a 204 answer for `origin`.
  func fields(origin: String, methods: String, requestID: String) -> [(String, String)] {
    [
      ("Access-Control-Allow-Origin", origin), ("Access-Control-Allow-Methods", methods),
      ("Access-Control-Allow-Headers", allowHeaders), ("Access-Control-Max-Age", maxAge),
      ("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"), ("X-Request-Id", requestID),
    ]
  }
}
