import Foundation
import GatewayCore

/// A `host:port` to listen on or connect to.
public struct SocketAddressSpec: Sendable, Equatable, CustomStringConvertible {
  public var host: String
  public var port: Int
  public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

  /// Parses `host:port` or `[v6]:port`.
  public init?(_ text: String) {
    if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
      host = String(text[text.index(after: text.startIndex)..<close])
      let rest = text[text.index(after: close)...]
      guard rest.hasPrefix(":"), let p = Int(rest.dropFirst()), (0...65535).contains(p) else { return nil }
      port = p
    } else {
      guard let colon = text.lastIndex(of: ":"), let p = Int(text[text.index(after: colon)...]),
        (0...65535).contains(p)
      else { return nil }
      host = String(text[..<colon])
      port = p
    }
    guard !host.isEmpty else { return nil }
  }
}

/// One upstream endpoint URL (`http://host:port` or `https://host:port`).
public struct UpstreamEndpoint: Sendable, Equatable, CustomStringConvertible {
  public var tls: Bool
  public var host: String
  public var port: Int
  public var description: String { "\(tls ? "https" : "http")://\(host):\(port)" }

  public init?(url: String) {
    let rest: Substring
    if url.hasPrefix("http://") {
      tls = false
      rest = url.dropFirst(7)
    } else if url.hasPrefix("https://") {
      tls = true
      rest = url.dropFirst(8)
    } else {
      return nil
    }
    var authority = rest
    if authority.hasSuffix("/") { authority = authority.dropLast() }
    guard !authority.isEmpty, !authority.contains("/"), !authority.contains("@") else { return nil }
    if let addr = SocketAddressSpec(String(authority)) {
      host = addr.host
      port = addr.port
    } else {
      guard !authority.contains(":") else { return nil }
      host = String(authority)
      port = tls ? 443 : 80
    }
  }
}

/// An upstream cluster (PRODUCT.md §7): a URL, or a mapping with endpoints and settings.
public struct UpstreamCluster: Sendable, Equatable {
  public enum Balancing: String, Sendable { case roundRobin = "round_robin", leastRequest = "least_request" }
  public struct HealthCheck: Sendable, Equatable {
    public var path: String
    public var intervalSeconds: Double
    public var unhealthyAfter: Int
    public var healthyAfter: Int
  }
  public var name: String
  public var endpoints: [UpstreamEndpoint]
  public var balancing: Balancing = .roundRobin
  public var healthCheck: HealthCheck? = nil
  public var retries: Int = 1
  public var retryBudgetPercent: Int = 20
  public var maxConnectionsPerEndpoint: Int = 512
  public var caFile: String? = nil
  public var connectTimeoutSeconds: Double? = nil
  public var responseTimeoutSeconds: Double? = nil
}

/// `tenant_header.signing_keys` and `sessions.verify_keys` entries: a key id, an algorithm and a file.

/// Everything in `gateway.conf`, typed and validated (PRODUCT.md §7).
public struct GatewayConfig: Sendable {
  public struct Listen: Sendable {
    public var address: SocketAddressSpec
    /// `listen.proxy_protocol`: every connection starts with a PROXY protocol v1 or v2 header.
    public var proxyProtocol: Bool = false
    /// `listen.proxy_protocol_from`: the load balancers trusted to send it; anyone else is closed.
    public var proxyProtocolFrom: [CIDRBlock] = []
    /// `listen.http_address` (PRODUCT.md §10): plain HTTP for ACME http-01 and a 308 to https; nil: off.
    public var httpAddress: SocketAddressSpec? = nil
    /// `listen.https_redirect_port`: the port the 308 names (omitted from the URL when 443).
    public var httpsRedirectPort: Int = 443
  }
  public struct Admin: Sendable {
    public var address: SocketAddressSpec
    /// File with the admin bearer token; `nil`: no token required.
    public var tokenFile: String?
  }
  public struct CertificatePair: Sendable, Equatable {
    public var cert: String
    public var key: String
  }
  public struct TLS: Sendable {
    public var certificates: [CertificatePair]
    public var customDomainCertsDir: String?
    /// `1.2` or `1.3`.
    public var minVersion: String
    public var generateDevCertificate: Bool
    /// TLS 1.2 cipher suites, OpenSSL names; `[]`: Mozilla "intermediate" (ECDHE + AEAD only).
    public var ciphers: [String] = []
    /// `tls.acme` (PRODUCT.md §10); nil when `directory_url` is empty.
    public var acme: ACME? = nil
  }
  /// `tls.acme`: certificates for custom domains from an ACME CA (RFC 8555).
  public struct ACME: Sendable, Equatable {
    public var directoryURL: String
    /// Contact addresses (`mailto:` added when missing).
    public var contact: [String] = []
    /// PEM file of the CAs trusted for the ACME server's HTTPS; nil: the system store.
    public var caFile: String? = nil
    /// Account key, certificates (`<domain>.pem` + `<domain>.key`) and per-domain locks.
    public var storageDir: String
    /// In order of preference: `tls-alpn-01`, `http-01`.
    public var challenges: [String] = ["tls-alpn-01", "http-01"]
    public var renewBeforeDays: Int = 30
    /// Longest wait (seconds) of a handshake for a mapped domain whose first certificate is on its way.
    public var handshakeWaitSeconds: Double = 10
    public var maxOrdersPerHour: Int = 300
    /// Orders running at once.
    public var maxConcurrentOrders: Int = 8
    /// External account binding (RFC 8555 §7.3.4): the CA's key id and a file with its base64url HMAC key.
    public var eabKid: String? = nil
    public var eabHMACKeyFile: String? = nil
    /// `dir`: certificates, account, locks and pending challenges in `storage_dir` (shared by a
    /// fleet); `postgres`: in the `snapshot.postgres` database (`tenant_gateway.certificates`,
    /// advisory locks), with `storage_dir` each gateway's own cache.
    public var storage: String = "dir"
  }
  public struct Platform: Sendable {
    public var apiHosts: [String]
    public var domain: String
    public var dashboardHosts: [String]
  }
  public struct Sessions: Sendable {
    public var cookieName: String
    public var issuer: String
    public var verifyKeys: [KeyFileSpec]
  }
  public struct Snapshot: Sendable {
    public var path: String?
    public var url: String?
    public var stateDir: String
    public var pollIntervalSeconds: Double
    /// `snapshot.changes_path` as configured (nil: the default).
    public var changesPath: String? = nil
    /// `snapshot.compact_after_bytes`: the journal size past which the gateway compacts it.
    public var compactAfterBytes: Int = 64 << 20
    /// `snapshot.postgres` when its `url` is set (PRODUCT.md §6 "The PostgreSQL source").
    public var postgres: Postgres? = nil
    /// The file source's journal: `changes_path`, or `<path>.changes`.
    public var journalPath: String? { changesPath ?? path.map { $0 + ".changes" } }
  }
  /// `snapshot.postgres`.
  public struct Postgres: Sendable {
    /// `postgres://user[:password]@host[:port]/database`.
    public var url: String
    public var passwordFile: String? = nil
    public var schema: String = "tenant_gateway"
    /// `disable`, `prefer` or `require`.
    public var tls: String = "prefer"
    public var caFile: String? = nil
    /// The backstop poll of the outbox (a notification can be lost).
    public var pollIntervalSeconds: Double = 5
  }
  public struct RouteSpec: Sendable, Equatable {
    public var route: Route
  }
  public struct Policy: Sendable {
    public var refuseSecretKeyInBrowser: Bool
    /// Client request headers to delete before forwarding, beyond PRODUCT.md §5's list.
    public var stripRequestHeaders: [String] = []
  }
  public struct CORS: Sendable {
    public var allowHeaders: [String]
    public var maxAgeSeconds: Int
  }
  public struct TenantHeader: Sendable {
    public var name: String
    public var issuer: String
    public var ttlSeconds: Int
    public var trustRequestID: Bool
    public var signingKeys: [KeyFileSpec]
  }
  public struct AccessLog: Sendable {
    /// `-` for stdout, a file path, or `nil` for off.
    public var path: String?
  }
  /// `limits`; every duration in seconds, every size in bytes.
  public struct Limits: Sendable {
    public var perKeyRPS: Int = 0
    public var perShopRPS: Int = 0
    public var burst: Int = 0
    public var maxHeaderBytes: Int = 32768
    public var maxHeaderCount: Int = 100
    public var maxBodyBytes: Int = 10_485_760
    public var maxURIBytes: Int = 8192
    public var clientHeaderTimeoutSeconds: Double = 10
    public var idleTimeoutSeconds: Double = 60
    public var upstreamConnectTimeoutSeconds: Double = 2
    public var upstreamResponseTimeoutSeconds: Double = 30
    public var maxConnections: Int = 10000
    public var h2MaxConcurrentStreams: Int = 100
    public var drainTimeoutSeconds: Double = 30
  }

  public var listen: Listen
  public var admin: Admin
  public var tls: TLS
  public var platform: Platform
  public var sessions: Sessions?
  public var snapshot: Snapshot
  /// Clusters by name; `default` always exists.
  public var upstreams: [String: UpstreamCluster]
  public var routes: RouteTable
  /// True when `routes` was omitted and the default table applies.
  public var routesAreDefault: Bool
  public var policy: Policy
  public var cors: CORS
  public var tenantHeader: TenantHeader
  public var accessLog: AccessLog
  public var publishableKeyHeader: String
  public var limits: Limits
  /// Directory relative paths were resolved against (the config file's directory).
  public var baseDirectory: String

  /// The host classifier for these settings.
  public var platformHosts: PlatformHosts {
    PlatformHosts(apiHosts: platform.apiHosts, dashboardHosts: platform.dashboardHosts, domain: platform.domain)
  }

  /// The resolver settings for these settings.
  public var resolverSettings: ResolverSettings {
    ResolverSettings(
      platform: platformHosts, routes: routes, refuseSecretKeyInBrowser: policy.refuseSecretKeyInBrowser,
      hasTestCluster: upstreams["test"] != nil)
  }
}

/// An address block, `10.0.0.0/8`, `::1/128` or a bare address (all of its bits).
public struct CIDRBlock: Sendable, Equatable, CustomStringConvertible {
  /// 4 or 16 bytes.
  public let network: [UInt8]
  public let prefixLength: Int
  public let description: String

  public init?(_ text: String) {
    let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
    guard let bytes = Self.parseAddress(String(parts[0])) else { return nil }
    let bits = bytes.count * 8
    var length = bits
    if parts.count == 2 {
      guard let l = Int(parts[1]), (0...bits).contains(l) else { return nil }
      length = l
    }
    network = Self.masked(bytes, length)
    prefixLength = length
    description = text
  }

  /// True when `address` (4 or 16 bytes; an IPv4-mapped IPv6 address counts as IPv4) is inside.
  public func contains(_ address: [UInt8]) -> Bool {
    var a = address
    if a.count == 16, network.count == 4, a.prefix(12).elementsEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]) {
      a = Array(a.suffix(4))
    }
    guard a.count == network.count else { return false }
    return Self.masked(a, prefixLength) == network
  }

  static func masked(_ bytes: [UInt8], _ length: Int) -> [UInt8] {
    bytes.enumerated().map { i, b in
      let keep = max(0, min(8, length - i * 8))
      return keep == 8 ? b : b & UInt8(truncatingIfNeeded: 0xFF << (8 - keep))
    }
  }

  /// IPv4 dotted quad or IPv6 text, as bytes.
  public static func parseAddress(_ text: String) -> [UInt8]? {
    if text.contains(":") {
      var storage = in6_addr()
      guard inet_pton(AF_INET6, text, &storage) == 1 else { return nil }
      return withUnsafeBytes(of: &storage) { Array($0) }
    }
    var storage = in_addr()
    guard inet_pton(AF_INET, text, &storage) == 1 else { return nil }
    return withUnsafeBytes(of: &storage) { Array($0) }
  }
}
