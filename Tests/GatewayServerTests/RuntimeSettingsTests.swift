import GatewayConfig
import NIOCore
import Testing

@testable import GatewayServer

/// ``RuntimeSettings``: config → what the data path reads, with no server, socket or event loop.
@Suite("Runtime settings made from the config (pure)")
struct RuntimeSettingsTests {
  static let base = """
    listen: {address: "127.0.0.1:8443"}
    tls: {certificates: [{cert: c.pem, key: c.key}]}
    platform: {api_hosts: [api.platform.example], domain: platform.example}
    snapshot: {path: tenants.json}
    upstreams:
      default: "http://127.0.0.1:9000"
      catalog: {endpoints: ["http://10.0.0.5:8080"], max_connections_per_endpoint: 7, connect_timeout_s: 0.25, response_timeout_s: 4}
    tenant_header: {name: X-Shop-Context, signing_keys: [{kid: k1, alg: HS256, secret_file: secret.key}]}
    """

  func config(_ yaml: String = base, _ overrides: [String] = []) throws -> GatewayConfig {
    let outcome = ConfigLoader.load(yaml: yaml, baseDirectory: "/etc/tgw", overrides: overrides)
    return try #require(outcome.config, "\(outcome.errors)")
  }

  @Test("Defaults: PRODUCT.md §7's limits as TimeAmounts, the session cookie name, no cookies collected without sessions, no rate limits")
  func defaults() throws {
    let s = RuntimeSettings.make(from: try config())
    #expect(s.clientHeaderTimeout == .seconds(10))
    #expect(s.idleTimeout == .seconds(60))
    #expect(s.limits.maxHeaderBytes == 32768)
    #expect(s.limits.maxHeaderCount == 100)
    #expect(s.limits.maxBodyBytes == 10_485_760)
    #expect(s.limits.maxURIBytes == 8192)
    #expect(s.h2MaxConcurrentStreams == 100)
    #expect(s.maxConnections == 10000)
    #expect(s.sessionCookieName == "session")
    #expect(!s.rewrite.collectCookies)
    #expect(s.rewrite.tenantHeader == "x-shop-context")
    #expect(s.rateLimits.perKeyRPS == 0 && s.rateLimits.perShopRPS == 0)
    #expect(s.preflight.allowHeaders.contains("X-Publishable-Key"))
  }

  @Test("Overrides reach the settings: fractional timeouts, rate limits, the publishable-key header in the preflight")
  func overrides() throws {
    let c = try config(Self.base, [
      "limits.client_header_timeout_s=2.5", "limits.idle_timeout_s=0.5", "limits.per_key_rps=50", "limits.burst=9",
      "publishable_key_header=X-Storefront-Key", "limits.h2_max_concurrent_streams=7",
    ])
    let s = RuntimeSettings.make(from: c)
    #expect(s.clientHeaderTimeout == .milliseconds(2500))
    #expect(s.idleTimeout == .milliseconds(500))
    #expect(s.rateLimits.perKeyRPS == 50 && s.rateLimits.burst == 9)
    #expect(s.preflight.allowHeaders.hasSuffix("X-Storefront-Key"))
    #expect(s.h2MaxConcurrentStreams == 7)
  }

  @Test("Pools: a cluster's own timeouts win over limits; its connection budget is split across loops, at least one each")
  func pools() throws {
    let c = try config()
    let catalog = try #require(c.upstreams["catalog"])
    let two = RuntimeSettings.pool(host: "10.0.0.5", port: 8080, cluster: catalog, limits: c.limits, loops: 2, tls: nil)
    #expect(two.maxConnections == 3)
    #expect(two.connectTimeout == .milliseconds(250))
    #expect(two.queueTimeout == .milliseconds(250))
    #expect(two.responseTimeout == .seconds(4))
    #expect(RuntimeSettings.pool(host: "h", port: 1, cluster: catalog, limits: c.limits, loops: 16, tls: nil).maxConnections == 1)
    let plain = try #require(c.upstreams["default"])
    let d = RuntimeSettings.pool(host: "127.0.0.1", port: 9000, cluster: plain, limits: c.limits, loops: 2, tls: nil)
    #expect(d.connectTimeout == .seconds(2))
    #expect(d.responseTimeout == .seconds(30))
    #expect(d.maxConnections == 256)
  }
}
