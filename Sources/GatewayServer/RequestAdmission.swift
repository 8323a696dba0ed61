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
}

/// The outcome of admitting a request: forward it (with everything the upstream needs), or refuse.
enum Admission {
  case forward(ForwardPlan)
  case refuse(GatewayRefusal, closeConnection: Bool, requestID: String)
}

/// A request that passed every check, ready for the upstream.
struct ForwardPlan {
  var requestID: String
  var head: HTTPRequestHead
  var pool: UpstreamPool
  var tenant: TenantContext
  var hasBody: Bool
  var expectContinue: Bool
}

/// The protocol-independent phases of a request, in order: validate (done by the protocol
/// handler) → resolve → authorise → rewrite and sign. Each step either yields the next input or a
/// typed refusal; nothing here touches a channel.
enum RequestAdmission {
  static func admit<Headers: Sequence>(
    _ request: ValidatedRequest, method: HTTPMethod, headers: Headers, loop: LoopContext, connection: ConnectionInfo
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

    let facts = RequestFacts(
      host: request.host, method: method.rawValue, path: request.path, bearer: credentials.bearer,
      publishableKey: credentials.publishableKey, origin: credentials.origin)
    let table = loop.tables.current()
    let tenant: TenantContext
    switch loop.resolver.resolve(facts, in: table) {
    case .success(let t): tenant = t
    case .failure(let refusal): return .refuse(refusal, closeConnection: false, requestID: requestID)
    }
    guard let pool = loop.pools[tenant.upstream] ?? loop.pools["default"] else {
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
      claims.add("host", request.host)
      claims.add("jti", requestID)
      claims.add("htm", method.rawValue)
      claims.add("htu", request.path)
    }

    let added = HeaderRewrite.Added(
      host: request.host, clientAddress: connection.clientAddress, requestID: requestID,
      shopID: table.shopID(tenant.shop), token: token, framing: request.body,
      stripAuthorization: credentials.authorizationIsBearer && !(loop.resolver.settings.routes.routes[tenant.route].customerTokens
        && TenantResolver.isJWSCompact(credentials.bearer ?? "")))
    let upstreamHeaders = loop.rewrite.upstreamHeaders(from: headers, added: added)
    let head = HTTPRequestHead(version: .http1_1, method: method, uri: request.target, headers: upstreamHeaders)
    return .forward(
      ForwardPlan(
        requestID: requestID, head: head, pool: pool, tenant: tenant, hasBody: request.body != .none,
        expectContinue: credentials.expectContinue))
  }
}

/// The refusal body and headers (§4): JSON, `Content-Type: application/json`, `X-Request-Id`.
enum RefusalResponse {
  static func body(_ refusal: GatewayRefusal, requestID: String, allocator: ByteBufferAllocator) -> ByteBuffer {
    allocator.buffer(string: refusal.jsonBody(requestID: requestID))
  }
}
