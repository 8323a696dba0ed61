import Testing

@testable import GatewayCore

@Suite("Resolver: §2 resolution and §3 policy")
struct TenantResolverTests {
  struct Row: CustomTestStringConvertible, Sendable {
    var name: String
    var host: String
    var path: String
    var method = "GET"
    var bearer: String? = nil
    var publishable: String? = nil
    var origin: String? = nil
    /// Expected refusal code, or nil for a forwarded request.
    var refusal: String? = nil
    var shop: String? = nil
    var auth: CredentialKind? = nil
    var mode: KeyMode = .live
    var testDescription: String { name }
  }

  static let api = "api.platform.example"
  static let rows: [Row] = [
    // API host: the key decides.
    Row(name: "API host, secret key", host: api, path: "/v1/admin/products", bearer: "sk_live_acme", shop: Fixture.acme, auth: .secretKey),
    Row(name: "API host, test-mode key", host: api, path: "/v1/orders", bearer: "sk_test_acme", shop: Fixture.acme, auth: .secretKey, mode: .test),
    Row(name: "API host, no key", host: api, path: "/v1/admin/products", refusal: "missing_credentials"),
    Row(name: "API host, unknown key", host: api, path: "/v1/admin/products", bearer: "sk_nope", refusal: "invalid_api_key"),
    Row(name: "API host, revoked key", host: api, path: "/v1/admin/products", bearer: "sk_live_acme_revoked", refusal: "invalid_api_key"),
    Row(name: "API host, non-/v1 path", host: api, path: "/index.html", bearer: "sk_live_acme", refusal: "not_found"),
    Row(name: "API host, publishable key on admin route (Authorization)", host: api, path: "/v1/admin/x", bearer: "pk_live_acme", refusal: "key_not_allowed_for_route"),
    Row(name: "API host, publishable key on admin route (header)", host: api, path: "/v1/admin/x", publishable: "pk_live_acme", refusal: "key_not_allowed_for_route"),
    Row(name: "API host, publishable key on other /v1 route", host: api, path: "/v1/orders", publishable: "pk_live_acme", refusal: "key_not_allowed_for_route"),
    Row(name: "API host, publishable key on store, headless, no Origin", host: api, path: "/v1/store/products", publishable: "pk_live_acme", shop: Fixture.acme, auth: .publishableKey),
    Row(name: "API host, publishable key on store, allowed Origin", host: api, path: "/v1/store/products", publishable: "pk_live_acme", origin: "https://acme.com", shop: Fixture.acme, auth: .publishableKey),
    Row(name: "API host, publishable key on store, other Origin", host: api, path: "/v1/store/products", publishable: "pk_live_acme", origin: "https://acme.com.evil.com", refusal: "origin_not_allowed"),
    Row(name: "API host, publishable key on store, null Origin", host: api, path: "/v1/store/products", publishable: "pk_live_acme", origin: "null", refusal: "origin_not_allowed"),
    Row(name: "API host, publishable key of non-headless shop", host: api, path: "/v1/store/products", publishable: "pk_live_bibi", refusal: "headless_disabled"),
    Row(name: "API host, secret key on store (server side)", host: api, path: "/v1/store/products", bearer: "sk_live_acme", shop: Fixture.acme, auth: .secretKey),
    Row(name: "API host, secret key with a browser Origin", host: api, path: "/v1/admin/products", bearer: "sk_live_acme", origin: "https://acme.com", refusal: "secret_key_in_browser"),
    Row(name: "API host, two keys of two shops", host: api, path: "/v1/store/x", bearer: "sk_live_acme", publishable: "pk_live_bibi", refusal: "tenant_mismatch"),
    Row(name: "API host, suspended shop's key", host: api, path: "/v1/admin/x", bearer: "sk_live_tea", refusal: "shop_suspended"),
    Row(name: "API host, customer token shape on customer route without sessions", host: api, path: "/v1/store/customers/me", bearer: "aaa.bbb.ccc", publishable: "pk_live_acme", refusal: "invalid_session"),
    // Subdomain: the host decides; a key must agree.
    Row(name: "subdomain, storefront page", host: "acme.platform.example", path: "/products/shoes", shop: Fixture.acme, auth: .host),
    Row(name: "subdomain, /v1 without a key", host: "acme.platform.example", path: "/v1/admin/x", refusal: "missing_credentials"),
    Row(name: "subdomain, /v1 with its own key", host: "acme.platform.example", path: "/v1/admin/x", bearer: "sk_live_acme", shop: Fixture.acme, auth: .secretKey),
    Row(name: "subdomain, another shop's key", host: "acme.platform.example", path: "/v1/admin/x", bearer: "sk_live_bibi", refusal: "tenant_mismatch"),
    Row(name: "subdomain, storefront page with another shop's key", host: "acme.platform.example", path: "/", bearer: "sk_live_bibi", refusal: "tenant_mismatch"),
    Row(name: "subdomain, storefront page with its own publishable key", host: "acme.platform.example", path: "/", publishable: "pk_live_acme", shop: Fixture.acme, auth: .publishableKey),
    Row(name: "subdomain, unknown", host: "nobody.platform.example", path: "/", refusal: "unknown_host"),
    Row(name: "subdomain, suspended shop", host: "tea.platform.example", path: "/", refusal: "shop_suspended"),
    Row(name: "two labels under the platform domain", host: "a.acme.platform.example", path: "/", refusal: "unknown_host"),
    // Custom domain.
    Row(name: "custom domain, storefront page", host: "shop.acme.com", path: "/", shop: Fixture.acme, auth: .host),
    Row(name: "custom domain, own key on /v1", host: "shop.acme.com", path: "/v1/orders", bearer: "sk_live_acme", shop: Fixture.acme, auth: .secretKey),
    Row(name: "custom domain, another shop's key", host: "bibi.example", path: "/v1/orders", bearer: "sk_live_acme", refusal: "tenant_mismatch"),
    Row(name: "custom domain, unknown", host: "unknown.example", path: "/", refusal: "unknown_host"),
    // Dashboard host: sessions only.
    Row(name: "dashboard host without a session", host: "dashboard.platform.example", path: "/", refusal: "missing_credentials"),
    Row(name: "dashboard host, a key does not count", host: "dashboard.platform.example", path: "/v1/admin/x", bearer: "sk_live_acme", refusal: "missing_credentials"),
  ]

  @Test("Every row of the decision table", arguments: rows)
  func decide(_ row: Row) throws {
    let resolver = TenantResolver(settings: ResolverSettings(platform: Fixture.platform))
    let table = try Fixture.table()
    let facts = RequestFacts(
      host: row.host, method: row.method, path: row.path, bearer: row.bearer, publishableKey: row.publishable, origin: row.origin)
    switch resolver.resolve(facts, in: table) {
    case .success(let ctx):
      #expect(row.refusal == nil, "expected \(row.refusal ?? "")")
      #expect(table.shopID(ctx.shop) == row.shop)
      #expect(ctx.auth == row.auth)
      #expect(ctx.mode == row.mode)
      #expect(ctx.upstream == "default")
    case .failure(let refusal):
      #expect(refusal.code == row.refusal)
    }
  }

  @Test("publishable_methods limits a publishable key's methods")
  func publishableMethods() throws {
    var routes = RouteTable.default.routes
    routes[2].publishableMethods = ["GET", "HEAD"]
    let resolver = TenantResolver(settings: ResolverSettings(platform: Fixture.platform, routes: RouteTable(routes)))
    let table = try Fixture.table()
    let post = RequestFacts(host: Self.api, method: "POST", path: "/v1/store/cart", publishableKey: "pk_live_acme")
    #expect(resolver.resolve(post, in: table).failureCode == "method_not_allowed_for_key")
    let get = RequestFacts(host: Self.api, method: "GET", path: "/v1/store/cart", publishableKey: "pk_live_acme")
    #expect(resolver.resolve(get, in: table).failureCode == nil)
    // A secret key is not limited by publishable_methods.
    let secret = RequestFacts(host: Self.api, method: "POST", path: "/v1/store/cart", bearer: "sk_live_acme")
    #expect(resolver.resolve(secret, in: table).failureCode == nil)
  }

  @Test("require_origin refuses a publishable-key request without Origin")
  func requireOrigin() throws {
    var routes = RouteTable.default.routes
    routes[2].requireOrigin = true
    let resolver = TenantResolver(settings: ResolverSettings(platform: Fixture.platform, routes: RouteTable(routes)))
    let facts = RequestFacts(host: Self.api, method: "GET", path: "/v1/store/cart", publishableKey: "pk_live_acme")
    #expect(resolver.resolve(facts, in: try Fixture.table()).failureCode == "origin_not_allowed")
  }

  @Test("refuse_secret_key_in_browser: false lets a secret key with Origin pass")
  func secretKeyInBrowserOff() throws {
    let resolver = TenantResolver(settings: ResolverSettings(platform: Fixture.platform, refuseSecretKeyInBrowser: false))
    let facts = RequestFacts(host: Self.api, method: "GET", path: "/v1/admin/x", bearer: "sk_live_acme", origin: "https://acme.com")
    #expect(resolver.resolve(facts, in: try Fixture.table()).failureCode == nil)
  }

  @Test("Test-mode keys go to the test cluster when it is configured")
  func testCluster() throws {
    let resolver = TenantResolver(settings: ResolverSettings(platform: Fixture.platform, hasTestCluster: true))
    let table = try Fixture.table()
    let test = resolver.resolve(RequestFacts(host: Self.api, method: "GET", path: "/v1/x", bearer: "sk_test_acme"), in: table)
    #expect(try test.get().upstream == "test")
    let live = resolver.resolve(RequestFacts(host: Self.api, method: "GET", path: "/v1/x", bearer: "sk_live_acme"), in: table)
    #expect(try live.get().upstream == "default")
  }

  @Test("JWS compact shape detection")
  func jwsShape() {
    #expect(TenantResolver.isJWSCompact("eyJh.eyJz.c2ln"))
    #expect(TenantResolver.isJWSCompact("a-_.b.c"))
    #expect(!TenantResolver.isJWSCompact("sk_live_acme"))
    #expect(!TenantResolver.isJWSCompact("a..c"))
    #expect(!TenantResolver.isJWSCompact("a.b.c.d"))
    #expect(!TenantResolver.isJWSCompact("a.b."))
    #expect(!TenantResolver.isJWSCompact("a.b=.c"))
  }

  @Test("Route table: first match wins; shadowed rules are reported")
  func routes() {
    let t = RouteTable.default
    #expect(t.match(path: "/v1/admin/products") == 0)
    #expect(t.match(path: "/v1/store/customers/me") == 1)
    #expect(t.match(path: "/v1/store/cart") == 2)
    #expect(t.match(path: "/v1/orders") == 3)
    #expect(t.match(path: "/v1") == 4)
    #expect(t.match(path: "/") == 4)
    #expect(t.shadowedRules.isEmpty)
    let bad = RouteTable([Route(prefix: "/v1/", accepts: .secretKey), Route(prefix: "/v1/admin/", accepts: .secretKey)])
    #expect(bad.shadowedRules.map(\.rule) == [1])
  }

  @Test("Every refusal has a stable code, a 4xx/5xx status and a JSON body")
  func refusalBodies() throws {
    #expect(Set(GatewayRefusal.all.map(\.code)).count == GatewayRefusal.all.count)
    for r in GatewayRefusal.all {
      #expect((400...599).contains(r.status))
      let body = r.jsonBody(requestID: "rid\"1")
      #expect(body.hasPrefix("{\"error\":{\"code\":\"\(r.code)\""))
      #expect(body.contains("\"requestId\":\"rid\\\"1\""))
    }
  }
}

extension Result where Failure == GatewayRefusal {
  var failureCode: String? {
    if case .failure(let r) = self { return r.code }
    return nil
  }
}

@Suite("CORS preflights decided at the edge (§3)")
struct PreflightTests {
  struct Row: CustomTestStringConvertible, Sendable {
    var name: String
    var host: String
    var path = "/v1/store/products"
    var origin: String?
    var method = "GET"
    var expected: PreflightDecision
    var testDescription: String { name }
  }

  static let api = "api.platform.example"
  static let rows: [Row] = [
    Row(name: "API host, an origin some shop allows", host: api, origin: "https://acme.com",
        expected: .allow(origin: "https://acme.com", methods: "GET, HEAD, POST, PUT, PATCH, DELETE")),
    Row(name: "API host, origin spelled with the default port", host: api, origin: "HTTPS://ACME.COM:443",
        expected: .allow(origin: "https://acme.com", methods: "GET, HEAD, POST, PUT, PATCH, DELETE")),
    Row(name: "API host, an origin no shop allows", host: api, origin: "https://evil.com", expected: .refuse(.originNotAllowed)),
    Row(name: "API host, only a suspended shop allows it", host: api, origin: "https://tea.com", expected: .refuse(.originNotAllowed)),
    Row(name: "API host, suffix trick", host: api, origin: "https://acme.com.evil.com", expected: .refuse(.originNotAllowed)),
    Row(name: "API host, null origin", host: api, origin: "null", expected: .refuse(.originNotAllowed)),
    Row(name: "API host, no origin", host: api, origin: nil, expected: .refuse(.originNotAllowed)),
    Row(name: "API host, non-/v1 path", host: api, path: "/x", origin: "https://acme.com", expected: .refuse(.notFound)),
    Row(name: "shop host, its own origin", host: "acme.platform.example", path: "/cart", origin: "http://localhost:3000",
        expected: .allow(origin: "http://localhost:3000", methods: "GET, HEAD, POST, PUT, PATCH, DELETE")),
    Row(name: "shop host, another shop's origin", host: "bibi.example", path: "/", origin: "https://acme.com", expected: .refuse(.originNotAllowed)),
    Row(name: "suspended shop host", host: "tea.platform.example", path: "/", origin: "https://tea.com", expected: .refuse(.shopSuspended)),
    Row(name: "unknown shop host", host: "nobody.platform.example", origin: "https://acme.com", expected: .refuse(.unknownHost)),
    Row(name: "dashboard host", host: "dashboard.platform.example", origin: "https://acme.com", expected: .refuse(.originNotAllowed)),
    Row(name: "a method the route does not allow", host: api, origin: "https://acme.com", method: "TRACE", expected: .refuse(.methodNotAllowedForKey)),
  ]

  @Test("Each preflight", arguments: rows)
  func decide(_ row: Row) throws {
    let resolver = TenantResolver(settings: ResolverSettings(platform: Fixture.platform))
    #expect(resolver.preflight(host: row.host, path: row.path, origin: row.origin, requestedMethod: row.method, in: try Fixture.table()) == row.expected)
  }

  @Test("A route limiting publishable methods limits the preflight's methods")
  func limitedMethods() throws {
    var routes = RouteTable.default.routes
    routes[2].publishableMethods = ["GET", "HEAD"]
    let resolver = TenantResolver(settings: ResolverSettings(platform: Fixture.platform, routes: RouteTable(routes)))
    let t = try Fixture.table()
    #expect(resolver.preflight(host: Self.api, path: "/v1/store/x", origin: "https://acme.com", requestedMethod: "GET", in: t)
      == .allow(origin: "https://acme.com", methods: "GET, HEAD"))
    #expect(resolver.preflight(host: Self.api, path: "/v1/store/x", origin: "https://acme.com", requestedMethod: "POST", in: t)
      == .refuse(.methodNotAllowedForKey))
  }

  @Test("The origin index holds active shops only")
  func originIndex() throws {
    let t = try Fixture.table()
    var acme = "https://acme.com"
    #expect(acme.withUTF8 { t.ownShops(allowingOrigin: UnsafeRawBufferPointer($0)) }.map { t.shopID(ShopRef(Int($0))) } == [Fixture.acme])
    #expect(acme.withUTF8 { t.hasActiveShop(allowingOrigin: UnsafeRawBufferPointer($0)) })
    var tea = "https://tea.com"
    #expect(tea.withUTF8 { t.ownShops(allowingOrigin: UnsafeRawBufferPointer($0)) }.isEmpty)
    #expect(!tea.withUTF8 { t.hasActiveShop(allowingOrigin: UnsafeRawBufferPointer($0)) })
  }
}

/// A fixed verifier for resolver tests: tokens "good-a" / "good-b" / "good-tea" / "good-ghost".
struct FixedSessions: SessionVerifying {
  mutating func verify(_ token: String) -> VerifiedToken? {
    switch token {
    case "a.good.a": return VerifiedToken(subject: "cust-1", shopID: Fixture.acme, expires: .max)
    case "a.good.b": return VerifiedToken(subject: "cust-2", shopID: Fixture.bibi, expires: .max)
    case "a.good.tea": return VerifiedToken(subject: "u", shopID: Fixture.tea, expires: .max)
    case "a.good.ghost": return VerifiedToken(subject: "u", shopID: "ghost", expires: .max)
    default: return nil
    }
  }
}

@Suite("Sessions and customer tokens in the resolver (§2)")
struct SessionResolutionTests {
  let resolver = TenantResolver(settings: ResolverSettings(platform: Fixture.platform))
  static let dash = "dashboard.platform.example"
  static let api = "api.platform.example"

  func run(_ facts: RequestFacts) throws -> Result<TenantContext, GatewayRefusal> {
    var v = FixedSessions()
    return resolver.resolve(facts, in: try Fixture.table(), sessions: &v)
  }

  @Test("Dashboard: the cookie decides the shop; keys do not count there")
  func dashboard() throws {
    let ok = try run(RequestFacts(host: Self.dash, method: "GET", path: "/v1/admin/x", bearer: "sk_live_bibi", sessionCookie: .value("a.good.a"))).get()
    #expect(ok.auth == .session)
    #expect(ok.userID == "cust-1")
    #expect(ok.shop == (try Fixture.table()).shop(id: Fixture.acme))
    #expect(try run(RequestFacts(host: Self.dash, method: "GET", path: "/")).failureCode == "missing_credentials")
    #expect(try run(RequestFacts(host: Self.dash, method: "GET", path: "/", sessionCookie: .value("forged"))).failureCode == "invalid_session")
    #expect(try run(RequestFacts(host: Self.dash, method: "GET", path: "/", sessionCookie: .duplicate)).failureCode == "invalid_session")
    #expect(try run(RequestFacts(host: Self.dash, method: "GET", path: "/", sessionCookie: .value("a.good.ghost"))).failureCode == "invalid_session")
    #expect(try run(RequestFacts(host: Self.dash, method: "GET", path: "/", sessionCookie: .value("a.good.tea"))).failureCode == "shop_suspended")
  }

  @Test("Customer tokens: only with their own shop's publishable key or host")
  func customers() throws {
    let path = "/v1/store/customers/me"
    let mine = try run(RequestFacts(host: Self.api, method: "GET", path: path, bearer: "a.good.a", publishableKey: "pk_live_acme")).get()
    #expect(mine.auth == .publishableKey)
    #expect(mine.customerID == "cust-1")
    #expect(try run(RequestFacts(host: Self.api, method: "GET", path: path, bearer: "a.good.a", publishableKey: "pk_live_bibi")).failureCode == "tenant_mismatch")
    #expect(try run(RequestFacts(host: Self.api, method: "GET", path: path, bearer: "a.bad.x", publishableKey: "pk_live_acme")).failureCode == "invalid_session")
    #expect(try run(RequestFacts(host: Self.api, method: "GET", path: path, bearer: "a.good.a")).failureCode == "missing_credentials")
    // On a shop host the default route still wants the publishable key next to the token.
    let onHost = try run(RequestFacts(host: "acme.platform.example", method: "GET", path: path, bearer: "a.good.a", publishableKey: "pk_live_acme")).get()
    #expect(onHost.customerID == "cust-1")
    #expect(try run(RequestFacts(host: "acme.platform.example", method: "GET", path: path, bearer: "a.good.a")).failureCode == "missing_credentials")
    #expect(try run(RequestFacts(host: "bibi.example", method: "GET", path: path, bearer: "a.good.a", publishableKey: "pk_live_bibi")).failureCode == "tenant_mismatch")
    // A route that accepts the host alone lets the host decide; the token must still agree.
    var routes = RouteTable.default.routes
    routes[1].accepts = [.host, .publishableKey]
    let hostRoutes = TenantResolver(settings: ResolverSettings(platform: Fixture.platform, routes: RouteTable(routes)))
    var v = FixedSessions()
    let t = try Fixture.table()
    #expect(try hostRoutes.resolve(RequestFacts(host: "acme.platform.example", method: "GET", path: path, bearer: "a.good.a"), in: t, sessions: &v).get().customerID == "cust-1")
    #expect(hostRoutes.resolve(RequestFacts(host: "bibi.example", method: "GET", path: path, bearer: "a.good.a"), in: t, sessions: &v).failureCode == "tenant_mismatch")
    // A token is not a key elsewhere, and a key is not a token here.
    #expect(try run(RequestFacts(host: Self.api, method: "GET", path: "/v1/orders", bearer: "a.good.a")).failureCode == "invalid_api_key")
    let key = try run(RequestFacts(host: Self.api, method: "GET", path: path, bearer: "sk_live_acme")).get()
    #expect(key.auth == .secretKey)
    #expect(key.customerID == nil)
  }
}
