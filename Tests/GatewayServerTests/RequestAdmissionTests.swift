import Crypto
import Foundation
import GatewayConfig
import GatewayCore
import GatewaySigning
import GatewayUpstream
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import GatewayServer

/// The request phases (validate → resolve → authorise → sign → rewrite) as functions: a table, a
/// signer, a clock and a request in, an ``Admission`` and a filled ``RequestContext`` out. No
/// server, socket or running event loop (the cluster's sweeper is given an `EmbeddedEventLoop`
/// that is never run).
@Suite("Request admission: the phases on narrow values")
struct RequestAdmissionTests {
  static let acme = "7d9f0c52-1d1a-4b6f-9a51-6a1c0b8e2f01"
  static let bibi = "c1f7a9e2-52b4-4e0b-8f2d-9b3c7d4e5a60"

  static func config(_ extra: [String] = []) throws -> GatewayConfig {
    let yaml = """
      listen: {address: "127.0.0.1:8443"}
      tls: {certificates: [{cert: c.pem, key: c.key}]}
      platform: {api_hosts: [api.platform.example], domain: platform.example}
      snapshot: {path: tenants.json}
      upstreams: {default: "http://127.0.0.1:9000"}
      tenant_header: {name: X-Tenant, signing_keys: [{kid: k1, alg: HS256, secret_file: secret.key}]}
      """
    let outcome = ConfigLoader.load(yaml: yaml, baseDirectory: "/etc/tgw", overrides: extra)
    return try #require(outcome.config, "\(outcome.errors)")
  }

  /// Version `v1`: acme (headless, https://acme.com allowed) and bibi, one secret and one
  /// publishable key for acme. `acmeSubdomain` renames acme's subdomain (a later table).
  static func table(version: String = "v1", acmeSubdomain: String = "acme") throws -> TenantTable {
    var b = TenantTableBuilder(
      version: version, platform: PlatformHosts(apiHosts: ["api.platform.example"], dashboardHosts: [], domain: "platform.example"))
    b.addShop(ShopInput(id: acme, subdomain: acmeSubdomain, headlessMode: true, allowedOrigins: ["https://acme.com"]))
    b.addShop(ShopInput(id: bibi, subdomain: "bibi"))
    b.addKey(KeyInput(id: "key_acme_sk", shopID: acme, sha256: KeyDigest.of(key: "sk_live_acme").hex, kind: "secret", mode: "live"))
    b.addKey(KeyInput(id: "key_acme_pk", shopID: acme, sha256: KeyDigest.of(key: "pk_live_acme").hex, kind: "publishable", mode: "live"))
    return try b.finish()
  }

  static let secret = SymmetricKey(data: Array(repeating: UInt8(0x5a), count: 32))

  static func environment(_ config: GatewayConfig, clusters: [String]? = ["default"]) -> AdmissionEnvironment {
    let settings = RuntimeSettings.make(from: config)
    let sweeper = DeadlineSweeper(eventLoop: EmbeddedEventLoop())
    var loopClusters: [String: LoopCluster] = [:]
    for name in clusters ?? [] {
      let state = ClusterState(
        name: name, endpoints: [], balancing: .roundRobin, retries: 0, retryBudgetPercent: 20, maxConnectionsPerEndpoint: 1,
        tlsContext: nil)
      loopClusters[name] = LoopCluster(state: state, pools: [], sweeper: sweeper)
    }
    return AdmissionEnvironment(
      resolver: TenantResolver(settings: settings.resolver), rewrite: settings.rewrite, rateLimits: settings.rateLimits,
      sessionCookieName: settings.sessionCookieName, clusters: loopClusters,
      signer: TenantTokenSigner(keys: [SigningKey(kid: "k1", material: .hs256(secret))], issuer: "tenant-gateway", ttlSeconds: 60),
      sessions: SessionTokenVerifier(keys: [], issuer: ""), allocator: ByteBufferAllocator())
  }

  static let connection = ConnectionInfo(
    clientAddress: "192.0.2.7", certificate: CertificateNames(names: ["*.platform.example", "api.platform.example"]))
  static let clock = AdmissionClock(now: .uptimeNanoseconds(5_000_000_000), wallSeconds: 1_800_000_000)

  static func request(_ host: String, _ target: String = "/p?q=1") -> ValidatedRequest {
    let path = target.split(separator: "?", maxSplits: 1).first.map(String.init) ?? target
    return ValidatedRequest(host: host, target: target, path: path, body: .none)
  }

  /// Runs admission; returns it with the context and the upstream head's text (when forwarded).
  static func admit(
    _ request: ValidatedRequest, method: HTTPMethod = .GET, headers: [(String, String)] = [], table: TenantTable,
    environment: inout AdmissionEnvironment, connection: ConnectionInfo = connection, clock: AdmissionClock = clock
  ) -> (Admission, RequestContext, String?) {
    var r = RequestContext(table: table, requestID: "rid-0001", started: .now())
    let a = RequestAdmission.admit(
      request, method: method, headers: headers, context: &r, connection: connection, environment: &environment, clock: clock)
    if case .forward(let plan) = a {
      return (a, r, String(buffer: plan.request.bytes))
    }
    return (a, r, nil)
  }

  /// The X-Tenant JWT's claims, after checking its HS256 signature.
  static func claims(inHead head: String) throws -> [String: Any] {
    let line = try #require(head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("x-tenant:") }, "\(head)")
    let token = String(line.split(separator: ":", maxSplits: 1)[1]).trimmingCharacters(in: CharacterSet.whitespaces)
    let parts = token.split(separator: ".").map(String.init)
    try #require(parts.count == 3)
    let mac = HMAC<SHA256>.authenticationCode(for: Data((parts[0] + "." + parts[1]).utf8), using: secret)
    #expect(base64url(Data(mac)) == parts[2], "the signature checks out")
    var payload = parts[1].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while payload.count % 4 != 0 { payload += "=" }
    let data = try #require(Data(base64Encoded: payload))
    return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
  }

  static func base64url(_ d: Data) -> String {
    d.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
      .replacingOccurrences(of: "=", with: "")
  }

  func refusalCode(_ a: Admission) -> String? {
    if case .refuse(let refusal, _) = a { return refusal.code }
    return nil
  }

  @Test("Forward: the tenant is set in the context, X-Tenant is signed from the context's table with its request id and the clock, client identity headers are gone")
  func forward() throws {
    let t = try Self.table()
    var env = Self.environment(try Self.config())
    let (a, r, head) = Self.admit(
      Self.request("acme.platform.example"), headers: [("Host", "acme.platform.example"), ("X-Shop-Id", Self.bibi), ("X-Tenant", "forged")],
      table: t, environment: &env)
    guard case .forward(let plan) = a else {
      Issue.record("not forwarded: \(a)")
      return
    }
    #expect(r.tenant.map { t.shopID($0.shop) } == Self.acme)
    #expect(plan.cluster === env.clusters["default"])
    let text = try #require(head)
    #expect(text.hasPrefix("GET /p?q=1 HTTP/1.1\r\n"), "\(text)")
    #expect(!text.contains("forged") && !text.contains(Self.bibi), "client-sent identity headers never reach the upstream: \(text)")
    let claims = try Self.claims(inHead: text)
    #expect(claims["shop_id"] as? String == Self.acme)
    #expect(claims["shop_subdomain"] as? String == "acme")
    #expect(claims["jti"] as? String == r.requestID)
    #expect(claims["htu"] as? String == "/p" && claims["htm"] as? String == "GET")
    #expect(claims["auth"] as? String == "host" && claims["mode"] as? String == "live")
    #expect(claims["iat"] as? Int == Self.clock.wallSeconds)
    #expect(claims["exp"] as? Int == Self.clock.wallSeconds + 60)
  }

  @Test("One request, one table: admission reads only the context's table, so a request that started before a rename is signed from the old one and one that started after is refused")
  func pinnedTable() throws {
    let before = try Self.table(version: "v1")
    let after = try Self.table(version: "v2", acmeSubdomain: "acme-renamed")
    var env = Self.environment(try Self.config())
    let (old, oldContext, head) = Self.admit(Self.request("acme.platform.example"), table: before, environment: &env)
    guard case .forward = old else {
      Issue.record("the request that started with v1 is served from v1: \(old)")
      return
    }
    #expect(oldContext.table.version == "v1")
    #expect(try Self.claims(inHead: try #require(head))["shop_subdomain"] as? String == "acme")
    let (new, newContext, _) = Self.admit(Self.request("acme.platform.example"), table: after, environment: &env)
    #expect(refusalCode(new) == "unknown_host")
    #expect(newContext.tenant == nil)
  }

  @Test("Validate: an identity header sent twice is invalid_request, a host the connection's certificate does not cover is misdirected_request; neither resolves a tenant")
  func validate() throws {
    let t = try Self.table()
    var env = Self.environment(try Self.config())
    let (twice, r1, _) = Self.admit(
      Self.request("api.platform.example", "/v1/orders"),
      headers: [("Authorization", "Bearer sk_live_acme"), ("Authorization", "Bearer sk_live_acme")], table: t, environment: &env)
    #expect(refusalCode(twice) == "invalid_request")
    #expect(r1.tenant == nil)
    let other = ConnectionInfo(clientAddress: "192.0.2.7", certificate: CertificateNames(names: ["shop.acme.com"]))
    let (misdirected, r2, _) = Self.admit(Self.request("acme.platform.example"), table: t, environment: &env, connection: other)
    #expect(refusalCode(misdirected) == "misdirected_request")
    #expect(r2.tenant == nil)
  }

  @Test("The request id: the loop's, unless tenant_header.trust_request_id is on and the client's is well-formed")
  func requestID() throws {
    let t = try Self.table()
    var plain = Self.environment(try Self.config())
    let (_, r1, _) = Self.admit(Self.request("acme.platform.example"), headers: [("X-Request-Id", "client-1")], table: t, environment: &plain)
    #expect(r1.requestID == "rid-0001")
    var trusting = Self.environment(try Self.config(["tenant_header.trust_request_id=true"]))
    let (a, r2, head) = Self.admit(Self.request("acme.platform.example"), headers: [("X-Request-Id", "client-1")], table: t, environment: &trusting)
    #expect(r2.requestID == "client-1")
    if case .forward = a { #expect(try Self.claims(inHead: try #require(head))["jti"] as? String == "client-1") }
    let (_, r3, _) = Self.admit(
      Self.request("acme.platform.example"), headers: [("X-Request-Id", "has space")], table: t, environment: &trusting)
    #expect(r3.requestID == "rid-0001", "a malformed client id is not used")
  }

  @Test("Resolve: a key of another shop is tenant_mismatch; a CORS preflight from an allowed Origin is answered at the edge")
  func resolve() throws {
    let t = try Self.table()
    var env = Self.environment(try Self.config())
    let (mismatch, r, _) = Self.admit(
      Self.request("bibi.platform.example", "/v1/orders"), headers: [("Authorization", "Bearer sk_live_acme")], table: t, environment: &env)
    #expect(refusalCode(mismatch) == "tenant_mismatch")
    #expect(r.tenant == nil)
    let (preflight, _, _) = Self.admit(
      Self.request("api.platform.example", "/v1/store/products"), method: .OPTIONS,
      headers: [("Origin", "https://acme.com"), ("Access-Control-Request-Method", "GET")], table: t, environment: &env)
    guard case .preflight(let origin, _) = preflight else {
      Issue.record("not a preflight answer: \(preflight)")
      return
    }
    #expect(origin == "https://acme.com")
  }

  @Test("Authorise: over the shop's rate limit is 429 with Retry-After; no cluster for the tenant (and no default) is upstream_unavailable")
  func authorise() throws {
    let t = try Self.table()
    var limited = Self.environment(try Self.config(["limits.per_shop_rps=1", "limits.burst=1"]))
    let (first, _, _) = Self.admit(Self.request("acme.platform.example"), table: t, environment: &limited)
    guard case .forward = first else {
      Issue.record("the first request is within the burst: \(first)")
      return
    }
    let (second, r, _) = Self.admit(Self.request("acme.platform.example"), table: t, environment: &limited)
    guard case .rateLimited(let wait) = second else {
      Issue.record("the second request in the same instant is over the limit: \(second)")
      return
    }
    #expect(wait >= 1)
    #expect(r.tenant != nil, "the tenant is known (and counted) even when limited")
    var noClusters = Self.environment(try Self.config(), clusters: nil)
    let (none, _, _) = Self.admit(Self.request("acme.platform.example"), table: t, environment: &noClusters)
    #expect(refusalCode(none) == "upstream_unavailable")
  }
}
