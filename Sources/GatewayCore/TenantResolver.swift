/// The parts of a request that decide its shop and whether it may pass, already extracted from the
/// protocol (HTTP/1.1 or HTTP/2) and validated for framing.
public struct RequestFacts: Sendable {
  /// Normalised host (see ``HostName``).
  public var host: String
  /// Upper-case method, e.g. `GET`.
  public var method: String
  /// Path without the query.
  public var path: String
  /// The value after `Bearer ` in `Authorization`, if that header uses the Bearer scheme.
  public var bearer: String?
  /// The publishable-key header's value.
  public var publishableKey: String?
  /// The raw `Origin` header, if sent.
  public var origin: String?
  /// The session cookie (`sessions.cookie_name`), as found in `Cookie`.
  public var sessionCookie: CookieHeader.Lookup

  public init(
    host: String, method: String, path: String, bearer: String? = nil, publishableKey: String? = nil,
    origin: String? = nil, sessionCookie: CookieHeader.Lookup = .absent
  ) {
    self.sessionCookie = sessionCookie
    self.host = host
    self.method = method
    self.path = path
    self.bearer = bearer
    self.publishableKey = publishableKey
    self.origin = origin
  }
}

/// Who a request acts for, once resolved and authorised: everything the signed X-Tenant needs.
public struct TenantContext: Sendable, Equatable {
  public var shop: ShopRef
  /// The credential that decided (`auth` claim).
  public var auth: CredentialKind
  /// The deciding key, when a key decided.
  public var key: KeyRef?
  public var mode: KeyMode
  /// Index of the matched route.
  public var route: Int
  /// Upstream cluster name (`aud` claim).
  public var upstream: String
  public var hostClass: HostClass
  /// The normalised request Origin when it is allowed for this shop: responses then carry
  /// `Access-Control-Allow-Origin` with it and `Vary: Origin`.
  public var allowedOrigin: String?
  /// `user_id` claim: the dashboard session's subject.
  public var userID: String? = nil
  /// `customer_id` claim: the customer token's subject.
  public var customerID: String? = nil
}

/// Settings of the resolver, read once from `gateway.conf`.
public struct ResolverSettings: Sendable {
  public var platform: PlatformHosts
  public var routes: RouteTable
  /// `policy.refuse_secret_key_in_browser`.
  public var refuseSecretKeyInBrowser: Bool
  /// True when `upstreams.test` is set: test-mode keys on default-cluster routes go there.
  public var hasTestCluster: Bool

  public init(platform: PlatformHosts, routes: RouteTable = .default, refuseSecretKeyInBrowser: Bool = true,
              hasTestCluster: Bool = false) {
    self.platform = platform
    self.routes = routes
    self.refuseSecretKeyInBrowser = refuseSecretKeyInBrowser
    self.hasTestCluster = hasTestCluster
  }
}

/// Resolves the shop of a request and applies the shop's policy (PRODUCT.md §2 and §3). Pure: the
/// same facts and table always give the same answer.
///
/// Decision order: host class → route → keys (each presented key must exist) → agreement between
/// keys and host (`tenant_mismatch`) → suspended shop → credential kind for the route → headless
/// storefront and Origin rules → secret key in a browser.
public struct TenantResolver: Sendable {
  public let settings: ResolverSettings

  public init(settings: ResolverSettings) { self.settings = settings }

  /// A presented key after lookup.
  struct PresentedKey {
    var ref: KeyRef
    var kind: KeyKind
  }

  /// The (at most two) keys a request presented, in order, without an array per request.
  struct PresentedKeys: Sequence, IteratorProtocol {
    var first: PresentedKey?
    var second: PresentedKey?
    init(_ first: PresentedKey?, _ second: PresentedKey?) {
      self.first = first
      self.second = second
    }
    mutating func next() -> PresentedKey? {
      if let k = first { first = nil; return k }
      if let k = second { second = nil; return k }
      return nil
    }
  }

  /// Resolves without sessions (no `sessions` configured: session and customer tokens never verify).
  public func resolve(_ facts: RequestFacts, in table: TenantTable) -> Result<TenantContext, GatewayRefusal> {
    var none = NoSessions()
    return resolve(facts, in: table, sessions: &none)
  }

  public func resolve<V: SessionVerifying>(
    _ facts: RequestFacts, in table: TenantTable, sessions: inout V
  ) -> Result<TenantContext, GatewayRefusal> {
    let (hostClass, labelLength) = settings.platform.classify(facts.host)

    // The shop the host names, for shop hosts.
    var hostShop: ShopRef? = nil
    switch hostClass {
    case .subdomain:
      var host = facts.host
      hostShop = host.withUTF8 { table.shop(subdomain: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer($0)[0..<labelLength])) }
      guard hostShop != nil else { return .failure(.unknownHost) }
    case .customDomain:
      var host = facts.host
      hostShop = host.withUTF8 { table.shop(customDomain: UnsafeRawBufferPointer($0)) }
      guard hostShop != nil else { return .failure(.unknownHost) }
    case .api, .dashboard:
      break
    }

    guard let routeIndex = settings.routes.match(path: facts.path) else {
      return .failure(.notFound)
    }
    let route = settings.routes.routes[routeIndex]

    // Host kinds narrow what the route accepts (§3).
    var accepts = route.accepts
    switch hostClass {
    case .api: accepts.formIntersection(.keys)
    case .dashboard: accepts.formIntersection(.session)
    case .subdomain, .customDomain: accepts.formIntersection([.secretKey, .publishableKey, .host])
    }
    if hostClass == .api && accepts.isEmpty { return .failure(.notFound) }

    if hostClass == .dashboard {
      // A dashboard host is no shop: the session cookie is the only credential, on every path.
      guard accepts.contains(.session) else { return .failure(.notFound) }
      let cookie: String
      switch facts.sessionCookie {
      case .absent: return .failure(.missingCredentials)
      case .duplicate: return .failure(.invalidSession)
      case .value(let v): cookie = v
      }
      guard let session = sessions.verify(cookie), let shop = table.shop(id: session.shopID) else {
        return .failure(.invalidSession)
      }
      if table.isSuspended(shop) { return .failure(.shopSuspended) }
      return .success(
        TenantContext(
          shop: shop, auth: .session, key: nil, mode: .live, route: routeIndex, upstream: route.upstream,
          hostClass: hostClass, allowedOrigin: nil, userID: session.subject))
    }

    // Keys: every key presented must exist; kind comes from the snapshot, never from the header.
    var bearerKey: PresentedKey? = nil
    var headerKey: PresentedKey? = nil
    var customer: VerifiedToken? = nil
    if let bearer = facts.bearer, route.customerTokens && Self.isJWSCompact(bearer) {
      // A customer token (never looked up as a key, and a key is never read as a token).
      guard let token = sessions.verify(bearer) else { return .failure(.invalidSession) }
      customer = token
    } else if let bearer = facts.bearer {
      guard let ref = table.key(digest: KeyDigest.of(key: bearer)) else { return .failure(.invalidAPIKey) }
      bearerKey = PresentedKey(ref: ref, kind: table.kind(of: ref))
    }
    if let pk = facts.publishableKey {
      guard let ref = table.key(digest: KeyDigest.of(key: pk)) else { return .failure(.invalidAPIKey) }
      headerKey = PresentedKey(ref: ref, kind: table.kind(of: ref))
    }
    let deciding = bearerKey ?? headerKey

    // Agreement: all credentials name one shop.
    var shop = hostShop
    for key in PresentedKeys(bearerKey, headerKey) {
      let keyShop = table.shop(of: key.ref)
      if let s = shop, s != keyShop { return .failure(.tenantMismatch) }
      shop = keyShop
    }

    guard let shop else {
      // API host without a key.
      return .failure(.missingCredentials)
    }
    // A customer of shop A is never a customer at shop B.
    if let customer, table.shop(id: customer.shopID) != shop { return .failure(.tenantMismatch) }
    if table.isSuspended(shop) { return .failure(.shopSuspended) }

    // Kind per route. Where the route accepts `host`, a key of any kind is fine if it agrees.
    if !accepts.contains(.host) {
      for key in PresentedKeys(bearerKey, headerKey) {
        if !accepts.contains(.key(key.kind)) { return .failure(.keyNotAllowedForRoute) }
      }
      if deciding == nil { return .failure(.missingCredentials) }
    }

    // Origin: normalised once; `null` and malformed origins never match anything.
    let origin = facts.origin.flatMap { Origin.normalize($0) }
    var allowedOrigin: String? = nil
    if let origin {
      var o = origin
      if o.withUTF8({ table.allowsOrigin(shop, UnsafeRawBufferPointer($0)) }) { allowedOrigin = origin }
    }

    let usesPublishable = bearerKey?.kind == .publishable || headerKey?.kind == .publishable
    let usesSecret = bearerKey?.kind == .secret || headerKey?.kind == .secret
    if usesPublishable && !accepts.contains(.host) {
      if let methods = route.publishableMethods, !methods.contains(facts.method) {
        return .failure(.methodNotAllowedForKey)
      }
      if !table.isHeadless(shop) { return .failure(.headlessDisabled) }
      if facts.origin != nil {
        if allowedOrigin == nil { return .failure(.originNotAllowed) }
      } else if route.requireOrigin {
        return .failure(.originNotAllowed)
      }
    }
    if usesSecret && facts.origin != nil && settings.refuseSecretKeyInBrowser {
      return .failure(.secretKeyInBrowser)
    }

    let mode = deciding.map { table.mode(of: $0.ref) } ?? .live
    var upstream = route.upstream
    if mode == .test && settings.hasTestCluster && upstream == "default" { upstream = "test" }
    let auth: CredentialKind =
      deciding.map { $0.kind == .secret ? .secretKey : .publishableKey } ?? .host
    return .success(
      TenantContext(
        shop: shop, auth: auth, key: deciding?.ref, mode: mode, route: routeIndex, upstream: upstream,
        hostClass: hostClass, allowedOrigin: allowedOrigin, customerID: customer?.subject))
  }

  /// JWS compact serialisation: three non-empty base64url segments joined by two dots (RFC 7515 §7.1).
  public static func isJWSCompact(_ value: String) -> Bool {
    var dots = 0
    var segmentLength = 0
    for b in value.utf8 {
      switch b {
      case UInt8(ascii: "."):
        guard segmentLength > 0 else { return false }
        dots += 1
        segmentLength = 0
      case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
        segmentLength += 1
      default:
        return false
      }
    }
    return dots == 2 && segmentLength > 0
  }
}

/// The verifier used when `sessions` is not configured: nothing verifies.
public struct NoSessions: SessionVerifying {
  public init() {}
  public mutating func verify(_ token: String) -> VerifiedToken? { nil }
}
