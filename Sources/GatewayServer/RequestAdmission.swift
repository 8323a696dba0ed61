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

/// The outcome of admitting a request: forward it (with everything the upstream needs), or
/// refuse. The request id, the table and the tenant are in the ``RequestContext``.
enum Admission {
  case forward(ForwardPlan)
  case refuse(GatewayRefusal, closeConnection: Bool)
  /// Over a rate limit: 429 with `Retry-After` seconds.
  case rateLimited(retryAfter: Int)
  /// A CORS preflight the gateway answers itself with 204.
  case preflight(origin: String, methods: String)
}

/// A request that passed every check, ready for the upstream.
struct ForwardPlan {
  /// The upstream request head, serialised.
  var request: UpstreamRequestHead
  var cluster: LoopCluster
  var hasBody: Bool
  var expectContinue: Bool
  /// The request's Origin when allowed for the shop: the response gets `Access-Control-Allow-Origin`.
  var allowOrigin: String?
  /// The request carried an Origin, so the response depends on it (`Vary: Origin`).
  var varyOrigin: Bool
}

/// What admission reads, and the per-loop state it updates (the signer's scratch space, the
/// session cache): narrow values with no event loop and no channel, so the phases are tested as
/// functions (`RequestAdmissionTests`). One per event loop, in its ``LoopContext``.
struct AdmissionEnvironment {
  let resolver: TenantResolver
  let rewrite: HeaderRewrite
  let rateLimits: RateLimits
  /// `sessions.cookie_name`.
  let sessionCookieName: String
  /// Upstream clusters by name, with this loop's pools.
  var clusters: [String: LoopCluster]
  var signer: TenantTokenSigner
  /// Session and customer-token verification with this loop's cache (no keys: sessions off).
  var sessions: SessionTokenVerifier
  /// Buffers built on the request path (upstream request heads).
  let allocator: ByteBufferAllocator
}

/// The two clocks admission reads, passed in (the loop's cached ones, or a test's).
struct AdmissionClock {
  /// Monotonic: rate-limit buckets.
  var now: NIODeadline
  /// Unix seconds: the X-Tenant `iat`/`exp`.
  var wallSeconds: Int
}

/// The protocol-independent phases of a request, in the order STYLE.md gives: validate (the
/// protocol's own framing checks come first, ``RequestValidation``; then the checks here) →
/// resolve → authorise → sign → rewrite. Each phase returns the next phase's input or a typed
/// refusal; nothing here touches a channel, a loop or the current table (the context's table is
/// the only one read).
enum RequestAdmission {
  /// Runs the phases for a validated request. `r` is the request's context: its id may become a
  /// trusted client's, and its tenant is set once resolved.
  static func admit<Headers: Sequence>(
    _ request: ValidatedRequest, method: HTTPMethod, headers: Headers, context r: inout RequestContext,
    connection: ConnectionInfo, environment env: inout AdmissionEnvironment, clock: AdmissionClock,
    websocketKey: String? = nil
  ) -> Admission where Headers.Element == (String, String) {
    let credentials = env.rewrite.credentials(headers)
    if let refusal = validate(request, credentials, connection: connection, context: &r) {
      return .refuse(refusal, closeConnection: false)
    }
    let tenant: TenantContext
    switch resolve(request, method: method, credentials, in: r.table, environment: &env) {
    case .tenant(let t): tenant = t
    case .preflight(let origin, let methods): return .preflight(origin: origin, methods: methods)
    case .refused(let refusal): return .refuse(refusal, closeConnection: false)
    }
    r.tenant = tenant
    let cluster: LoopCluster
    switch authorise(tenant, in: r.table, environment: env, now: clock.now) {
    case .success(let c): cluster = c
    case .failure(let refused): return refused.admission
    }
    let token = sign(request, method: method, tenant: tenant, context: r, signer: &env.signer, wallSeconds: clock.wallSeconds)
    let upstream = rewrite(
      request, method: method, headers: headers, credentials, tenant: tenant, token: token, context: r,
      connection: connection, environment: env, websocketKey: websocketKey)
    return .forward(
      ForwardPlan(
        request: upstream, cluster: cluster, hasBody: request.body != .none, expectContinue: credentials.expectContinue,
        allowOrigin: tenant.allowedOrigin, varyOrigin: credentials.origin != nil))
  }

  /// Validate: the checks that need the request's credentials and its connection. A trusted
  /// client's well-formed `X-Request-Id` becomes the request's id; an identity header sent twice
  /// is ambiguous; the connection's certificate must cover the host (no cross-tenant HTTP/2
  /// connection reuse, §2).
  static func validate(
    _ request: ValidatedRequest, _ credentials: RequestCredentials, connection: ConnectionInfo, context r: inout RequestContext
  ) -> GatewayRefusal? {
    if let id = credentials.requestID, RequestIDGenerator.isAcceptable(id) { r.requestID = id }
    if let duplicate = credentials.duplicate {
      return .invalidRequest.with(message: "\(duplicate) appears more than once.")
    }
    guard connection.certificate.covers(request.host) else { return .misdirectedRequest }
    return nil
  }

  /// What the resolve phase found.
  enum Resolved {
    case tenant(TenantContext)
    /// A CORS preflight, answered at the edge and never forwarded (§3).
    case preflight(origin: String, methods: String)
    case refused(GatewayRefusal)
  }

  /// Resolve: the shop and credential from the host, keys, Origin and session (``TenantResolver``,
  /// in `table`), or the preflight's answer.
  static func resolve(
    _ request: ValidatedRequest, method: HTTPMethod, _ credentials: RequestCredentials, in table: TenantTable,
    environment env: inout AdmissionEnvironment
  ) -> Resolved {
    if method == .OPTIONS, let requested = credentials.preflightMethod {
      switch env.resolver.preflight(
        host: request.host, path: request.path, origin: credentials.origin, requestedMethod: requested, in: table)
      {
      case .allow(let origin, let methods): return .preflight(origin: origin, methods: methods)
      case .refuse(let refusal): return .refused(refusal)
      }
    }
    let facts = RequestFacts(
      host: request.host, method: method.rawValue, path: request.path, bearer: credentials.bearer,
      publishableKey: credentials.publishableKey, origin: credentials.origin,
      sessionCookie: credentials.cookies.isEmpty ? .absent : CookieHeader.find(env.sessionCookieName, in: credentials.cookies))
    switch env.resolver.resolve(facts, in: table, sessions: &env.sessions) {
    case .success(let tenant): return .tenant(tenant)
    case .failure(let refusal): return .refused(refusal)
    }
  }

  /// Authorise: within the rate limits, and to a cluster that exists (the tenant's, else
  /// `default`).
  static func authorise(
    _ tenant: TenantContext, in table: TenantTable, environment env: AdmissionEnvironment, now: NIODeadline
  ) -> Result<LoopCluster, AuthoriseRefusal> {
    if let wait = env.rateLimits.check(tenant: tenant, table: table, now: now) {
      return .failure(.rateLimited(retryAfter: wait))
    }
    guard let cluster = env.clusters[tenant.upstream] ?? env.clusters["default"] else {
      return .failure(.noCluster)
    }
    return .success(cluster)
  }

  /// An authorise phase's "no" (plain values, so it can be an `Error`), and the admission it becomes.
  enum AuthoriseRefusal: Error {
    case rateLimited(retryAfter: Int)
    case noCluster

    var admission: Admission {
      switch self {
      case .rateLimited(let wait): return .rateLimited(retryAfter: wait)
      case .noCluster: return .refuse(.upstreamUnavailable, closeConnection: false)
      }
    }
  }

  /// Sign: the X-Tenant token, its claims straight from the bytes of the request's table (§6).
  static func sign(
    _ request: ValidatedRequest, method: HTTPMethod, tenant: TenantContext, context r: RequestContext,
    signer: inout TenantTokenSigner, wallSeconds: Int
  ) -> String {
    let table = r.table
    return signer.sign(now: wallSeconds) { claims in
      claims.add("aud", tenant.upstream)
      table.withShopID(tenant.shop) { claims.add("shop_id", bytes: $0) }
      table.withSubdomain(tenant.shop) { claims.add("shop_subdomain", bytes: $0) }
      claims.add("mode", tenant.mode == .live ? "live" : "test")
      claims.add("auth", tenant.auth.claim)
      if let key = tenant.key { table.withKeyID(key) { claims.add("key_id", bytes: $0) } }
      if let user = tenant.userID { claims.add("user_id", user) }
      if let customer = tenant.customerID { claims.add("customer_id", customer) }
      claims.add("host", request.host)
      claims.add("jti", r.requestID)
      claims.add("htm", method.rawValue)
      claims.add("htu", request.path)
    }
  }

  /// Rewrite: the upstream request head, with the client's identity headers gone and the
  /// gateway's added (§5). The bearer is kept only for a route that takes customer tokens.
  static func rewrite<Headers: Sequence>(
    _ request: ValidatedRequest, method: HTTPMethod, headers: Headers, _ credentials: RequestCredentials,
    tenant: TenantContext, token: String, context r: RequestContext, connection: ConnectionInfo,
    environment env: AdmissionEnvironment, websocketKey: String?
  ) -> UpstreamRequestHead where Headers.Element == (String, String) {
    let stripAuthorization = credentials.authorizationIsBearer
      && !(env.resolver.settings.routes.routes[tenant.route].customerTokens && TenantResolver.isJWSCompact(credentials.bearer ?? ""))
    let added = HeaderRewrite.Added(
      host: request.host, clientAddress: connection.clientAddress, requestID: r.requestID,
      shopID: r.table.shopID(tenant.shop), token: token, framing: request.body,
      stripAuthorization: stripAuthorization,
      websocket: request.websocket, websocketKey: websocketKey)
    return env.rewrite.upstreamHead(method: method, target: request.target, from: headers, added: added, allocator: env.allocator)
  }
}

extension LoopContext {
  /// Admits a request on this loop: ``RequestAdmission/admit(_:method:headers:context:connection:environment:clock:websocketKey:)``
  /// with this loop's environment and clocks, and the resolved shop counted for `/admin/stats`.
  func admit<Headers: Sequence>(
    _ request: ValidatedRequest, method: HTTPMethod, headers: Headers, context r: inout RequestContext,
    connection: ConnectionInfo, websocketKey: String? = nil
  ) -> Admission where Headers.Element == (String, String) {
    let admission = RequestAdmission.admit(
      request, method: method, headers: headers, context: &r, connection: connection, environment: &self.admission,
      clock: AdmissionClock(now: sweeper.now, wallSeconds: sweeper.wallSeconds), websocketKey: websocketKey)
    if let tenant = r.tenant { counters.topShops.record(tenant.shop, in: r.table) }
    return admission
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
