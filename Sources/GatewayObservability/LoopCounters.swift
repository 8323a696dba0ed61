import GatewayCore
import NIOCore

/// Request and connection counters owned by one event loop: plain integers, no atomics, no locks.
/// The admin listener reads them by running a closure on each loop and summing.
public final class LoopCounters {
  /// Responses by status class: index 1…5 for 1xx…5xx.
  public var responsesByClass = [Int](repeating: 0, count: 6)
  /// Gateway refusals by code.
  public var refusals: [String: Int] = [:]
  /// Upstream failures by kind.
  public var upstreamErrors: [String: Int] = [:]
  public var openHTTP1Connections = 0
  public var openHTTP2Connections = 0
  public var tlsHandshakes = 0
  /// Completed handshakes by version: TLS 1.2, TLS 1.3.
  public var tlsHandshakesByVersion = [0, 0]
  public var tlsHandshakeFailures = 0
  /// Failed handshakes by reason (a bounded set, ``TLSFailureReason``).
  public var tlsFailuresByReason: [String: Int] = [:]
  public var connectionsRefusedAtLimit = 0
  public var connectionsAccepted = 0
  /// Connections closed for the PROXY protocol: `untrusted` (not from proxy_protocol_from), `malformed`.
  public var proxyProtocolRefused: [String: Int] = [:]
  /// tls-alpn-01 validation handshakes answered with a challenge certificate, and `acme-tls/1`-only
  /// handshakes closed because the name had no pending challenge.
  public var acmeChallengeHandshakes = 0
  public var acmeChallengeRefused = 0
  /// Request and response body bytes (what crossed the gateway, without heads and TLS framing).
  public var requestBodyBytes = 0
  public var responseBodyBytes = 0
  /// Request head received → response complete, every response the gateway sent.
  public var requestDuration = LatencyHistogram()
  /// Per upstream cluster, indexed like ``clusterNames`` (a cluster's `metricsIndex`).
  public var clusters: [ClusterCounters]
  public let clusterNames: [String]
  /// The busiest shops on this loop (bounded, approximate).
  public var topShops = ShopTopK()

  /// - Parameter clusters: the configured cluster names; a cluster's index here is its `metricsIndex`.
  public init(clusters: [String] = ["default"]) {
    clusterNames = clusters
    self.clusters = clusters.map { _ in ClusterCounters() }
  }

  /// An upstream response head: its status and the time from the request head to it.
  @inline(__always)
  public func recordUpstreamResponse(cluster: Int, status: Int, nanos: Int64) {
    let c = status / 100
    if c >= 1 && c <= 5 { clusters[cluster].responsesByClass[c] &+= 1 }
    clusters[cluster].latency.observe(nanos: nanos)
  }

  @inline(__always)
  public func recordResponse(status: Int) {
    let c = status / 100
    if c >= 1 && c <= 5 { responsesByClass[c] &+= 1 }
  }

  public func recordRefusal(_ refusal: GatewayRefusal) {
    refusals[refusal.code, default: 0] += 1
  }

  public func recordUpstreamError(_ kind: String, cluster: Int) {
    upstreamErrors[kind, default: 0] += 1
    clusters[cluster].errors[kind, default: 0] += 1
  }

  /// A copy for summing on another thread.
  public var snapshot: CounterSnapshot {
    var s = CounterSnapshot(
      responsesByClass: responsesByClass, refusals: refusals, upstreamErrors: upstreamErrors,
      openHTTP1Connections: openHTTP1Connections, openHTTP2Connections: openHTTP2Connections,
      tlsHandshakes: tlsHandshakes, tlsHandshakeFailures: tlsHandshakeFailures,
      connectionsRefusedAtLimit: connectionsRefusedAtLimit)
    s.requestDuration = requestDuration
    s.tlsHandshakesByVersion = tlsHandshakesByVersion
    s.tlsFailuresByReason = tlsFailuresByReason
    s.connectionsAccepted = connectionsAccepted
    s.proxyProtocolRefused = proxyProtocolRefused
    s.acmeChallengeHandshakes = acmeChallengeHandshakes
    s.acmeChallengeRefused = acmeChallengeRefused
    s.requestBodyBytes = requestBodyBytes
    s.responseBodyBytes = responseBodyBytes
    for (i, name) in clusterNames.enumerated() { s.clusters[name] = clusters[i] }
    return s
  }
}

/// One upstream cluster's counters on one loop.
public struct ClusterCounters: Sendable {
  /// Upstream responses by status class (index 1…5).
  public var responsesByClass = [Int](repeating: 0, count: 6)
  /// Upstream failures by kind (connect, timeout, reset, …).
  public var errors: [String: Int] = [:]
  /// Request head received → upstream response head.
  public var latency = LatencyHistogram()
  /// Pool state, summed over loops when `/metrics` is scraped (gauges, not counted per request).
  public var openConnections = 0
  public var idleConnections = 0
  public var pendingRequests = 0

  public init() {}

  public mutating func add(_ o: ClusterCounters) {
    for i in 0..<6 { responsesByClass[i] += o.responsesByClass[i] }
    for (k, v) in o.errors { errors[k, default: 0] += v }
    latency.add(o.latency)
    openConnections += o.openConnections
    idleConnections += o.idleConnections
    pendingRequests += o.pendingRequests
  }
}

/// Summable copy of ``LoopCounters``.
public struct CounterSnapshot: Sendable {
  public var responsesByClass = [Int](repeating: 0, count: 6)
  public var refusals: [String: Int] = [:]
  public var upstreamErrors: [String: Int] = [:]
  public var openHTTP1Connections = 0
  public var openHTTP2Connections = 0
  public var tlsHandshakes = 0
  public var tlsHandshakeFailures = 0
  public var tlsHandshakesByVersion = [0, 0]
  public var tlsFailuresByReason: [String: Int] = [:]
  public var connectionsRefusedAtLimit = 0
  public var connectionsAccepted = 0
  public var proxyProtocolRefused: [String: Int] = [:]
  public var acmeChallengeHandshakes = 0
  public var acmeChallengeRefused = 0
  public var requestBodyBytes = 0
  public var responseBodyBytes = 0
  public var clusters: [String: ClusterCounters] = [:]
  /// `tls.acme` (process-wide; nil when off): domains by state, orders by result, orders running,
  /// the soonest `notAfter` of an eligible domain's certificate (seconds since 1970).
  public var acme: (byState: [String: Int], orders: [String: Int], running: Int, soonestNotAfter: Double?, storageReads: Int)?
  /// The plain-HTTP listener (`listen.http_address`): answers by kind (challenge, redirect, refused).
  public var plainHTTP: [String: Int] = [:]
  /// The soonest `notAfter` of the configured certificates (seconds since 1970; nil: unknown).
  public var soonestCertificateExpiry: Double?
  /// Access-log reopens (SIGUSR1).
  public var accessLogReopens = 0
  /// Access-log lines handed to the writer, and lines dropped because it fell behind (process-wide,
  /// filled in by the server; nil when the access log is off).
  public var accessLog: (written: Int, dropped: Int)?
  /// `tls.custom_domain_certs_dir` (process-wide; nil when off).
  public var customCertificates: (domains: Int, cached: Int, hits: Int, loads: Int, failures: Int)?
  public var requestDuration = LatencyHistogram()
  /// Requests per shop id for the busiest shops (merged from each loop's ``ShopTopK``).
  public var topShops: [String: Int] = [:]

  public init() {}

  init(
    responsesByClass: [Int], refusals: [String: Int], upstreamErrors: [String: Int], openHTTP1Connections: Int,
    openHTTP2Connections: Int, tlsHandshakes: Int, tlsHandshakeFailures: Int, connectionsRefusedAtLimit: Int
  ) {
    self.responsesByClass = responsesByClass
    self.refusals = refusals
    self.upstreamErrors = upstreamErrors
    self.openHTTP1Connections = openHTTP1Connections
    self.openHTTP2Connections = openHTTP2Connections
    self.tlsHandshakes = tlsHandshakes
    self.tlsHandshakeFailures = tlsHandshakeFailures
    self.connectionsRefusedAtLimit = connectionsRefusedAtLimit
  }

  public mutating func add(_ o: CounterSnapshot) {
    for i in 0..<6 { responsesByClass[i] += o.responsesByClass[i] }
    for (k, v) in o.refusals { refusals[k, default: 0] += v }
    for (k, v) in o.upstreamErrors { upstreamErrors[k, default: 0] += v }
    openHTTP1Connections += o.openHTTP1Connections
    openHTTP2Connections += o.openHTTP2Connections
    tlsHandshakes += o.tlsHandshakes
    tlsHandshakeFailures += o.tlsHandshakeFailures
    for i in 0..<2 { tlsHandshakesByVersion[i] += o.tlsHandshakesByVersion[i] }
    for (k, v) in o.tlsFailuresByReason { tlsFailuresByReason[k, default: 0] += v }
    connectionsRefusedAtLimit += o.connectionsRefusedAtLimit
    connectionsAccepted += o.connectionsAccepted
    for (k, v) in o.proxyProtocolRefused { proxyProtocolRefused[k, default: 0] += v }
    acmeChallengeHandshakes += o.acmeChallengeHandshakes
    acmeChallengeRefused += o.acmeChallengeRefused
    requestBodyBytes += o.requestBodyBytes
    responseBodyBytes += o.responseBodyBytes
    for (k, v) in o.clusters { clusters[k, default: ClusterCounters()].add(v) }
    requestDuration.add(o.requestDuration)
    for (k, v) in o.topShops { topShops[k, default: 0] += v }
  }
}

/// Requests per shop for the busiest shops of one loop, in fixed memory: the Space-Saving algorithm
/// (Metwally et al.) over 32 slots. A shop already tracked gets +1; an untracked one replaces the
/// slot with the smallest count and inherits it (+1), so counts are upper bounds and any shop with
/// more than 1/32 of the traffic is always present. Recording is a scan of 32 integers and no
/// allocation; names are resolved from the current table only when `/metrics` is scraped. Per-shop
/// labels stay bounded (PRODUCT.md §8: no per-shop label except a bounded top-K).
public struct ShopTopK {
  public static let capacity = 32
  struct Slot {
    var hash: UInt64
    var shop: ShopRef
    var count: Int
  }
  var slots: [Slot] = []

  public init() { slots.reserveCapacity(Self.capacity) }

  public mutating func record(_ shop: ShopRef, in table: TenantTable) {
    let hash = table.stableShopHash(shop)  // computed at reload time; equal across tables
    var minIndex = 0
    for i in slots.indices {
      if slots[i].hash == hash {
        slots[i].count &+= 1
        slots[i].shop = shop  // the index in the newest table, for naming
        return
      }
      if slots[i].count < slots[minIndex].count { minIndex = i }
    }
    if slots.count < Self.capacity {
      slots.append(Slot(hash: hash, shop: shop, count: 1))
    } else {
      slots[minIndex] = Slot(hash: hash, shop: shop, count: slots[minIndex].count &+ 1)
    }
  }

  /// Counts by shop id, named through `table` (a slot whose shop is no longer in it is left out).
  public func resolved(in table: TenantTable) -> [String: Int] {
    var out: [String: Int] = [:]
    for slot in slots where Int(slot.shop.index) < table.shopRefBound {
      guard table.stableShopHash(slot.shop) == slot.hash else { continue }
      out[table.shopID(slot.shop), default: 0] += slot.count
    }
    return out
  }
}

/// A fixed-bucket latency histogram (Prometheus `le` buckets, seconds). Observing is a short scan
/// of 13 integer bounds and two additions; no allocation.
public struct LatencyHistogram: Sendable {
  /// Bucket upper bounds in seconds (the `le` labels); a last, implicit bucket is +Inf.
  public static let bounds: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
  @usableFromInline static let boundsNanos: [Int64] = bounds.map { Int64($0 * 1e9) }
  /// Per-bucket (not cumulative) counts; the last entry is the +Inf bucket.
  public private(set) var counts = [Int](repeating: 0, count: bounds.count + 1)
  public private(set) var sumNanos: Int64 = 0

  public init() {}

  public mutating func observe(nanos: Int64) {
    var i = 0
    let bounds = Self.boundsNanos
    while i < bounds.count && nanos > bounds[i] { i += 1 }
    counts[i] &+= 1
    sumNanos &+= max(0, nanos)
  }

  public var count: Int { counts.reduce(0, +) }

  public mutating func add(_ o: LatencyHistogram) {
    for i in counts.indices { counts[i] += o.counts[i] }
    sumNanos += o.sumNanos
  }
}

/// Why a TLS handshake failed, in a few bounded buckets (a label value).
public enum TLSFailureReason {
  public static func classify(_ error: Error) -> String {
    let text = String(describing: error).uppercased()
    if text.contains("HTTP_REQUEST") || text.contains("HTTPS_PROXY_REQUEST") { return "plain_http" }
    if text.contains("NO_SHARED_CIPHER") { return "no_shared_cipher" }
    if text.contains("UNSUPPORTED_PROTOCOL") || text.contains("WRONG_VERSION") || text.contains("PROTOCOL_VERSION") {
      return "protocol_version"
    }
    if text.contains("NO_APPLICATION_PROTOCOL") || text.contains("ALPN") { return "alpn" }
    if text.contains("CERTIFICATE") || text.contains("UNKNOWN_CA") || text.contains("BAD_CERT") { return "certificate" }
    if text.contains("UNCLEANSHUTDOWN") || text.contains("EOF") || text.contains("CONNECTION RESET") { return "closed" }
    return "other"
  }
}
