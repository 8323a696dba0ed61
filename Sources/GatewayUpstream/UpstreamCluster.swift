import Atomics
import NIOCore
import NIOSSL

/// One endpoint of a cluster, shared by every event loop: its health as the passive and active
/// checks see it. Reads on the request path are single relaxed atomic loads.
public final class EndpointHealth: Sendable {
  public let name: String
  private let healthy = ManagedAtomic<Bool>(true)
  private let consecutiveFailures = ManagedAtomic<Int>(0)
  private let consecutiveSuccesses = ManagedAtomic<Int>(0)
  /// Uptime-nanoseconds until which a passively ejected endpoint is skipped (0 = not ejected).
  private let ejectedUntil = ManagedAtomic<UInt64>(0)
  private let ejections = ManagedAtomic<Int>(0)
  /// Consecutive failures that eject it.
  let unhealthyAfter: Int
  /// Consecutive successful active checks that re-admit it.
  let healthyAfter: Int
  /// True when an active health check watches it (then only the checker re-admits).
  let activelyChecked: Bool

  public init(name: String, unhealthyAfter: Int, healthyAfter: Int, activelyChecked: Bool) {
    self.name = name
    self.unhealthyAfter = max(1, unhealthyAfter)
    self.healthyAfter = max(1, healthyAfter)
    self.activelyChecked = activelyChecked
  }

  /// Whether requests may go here now.
  public func isAvailable(now: NIODeadline) -> Bool {
    if isHealthy { return true }
    // Passive ejection without an active check: re-admit for a trial once the ejection expires.
    guard !activelyChecked else { return false }
    let until = ejectedUntilNanos
    return until != 0 && now.uptimeNanoseconds >= until
  }

  public var isHealthy: Bool { healthy.load(ordering: .relaxed) }
  var ejectedUntilNanos: UInt64 { ejectedUntil.load(ordering: .relaxed) }
  public var ejectionCount: Int { ejections.load(ordering: .relaxed) }

  /// A request reached the endpoint and got a non-5xx answer.
  public func recordSuccess() {
    consecutiveFailures.store(0, ordering: .relaxed)
    if !healthy.load(ordering: .relaxed) && !activelyChecked {
      healthy.store(true, ordering: .relaxed)
      ejectedUntil.store(0, ordering: .relaxed)
    }
  }

  /// A connect failure, reset or 5xx: after `unhealthyAfter` in a row the endpoint is ejected;
  /// without an active check it is tried again after an ejection period that doubles each time
  /// (1 s, 2 s, … 30 s).
  public func recordFailure(now: NIODeadline) {
    let n = consecutiveFailures.wrappingIncrementThenLoad(ordering: .relaxed)
    guard n >= unhealthyAfter else { return }
    if healthy.exchange(false, ordering: .relaxed) || !activelyChecked {
      let count = ejections.wrappingIncrementThenLoad(ordering: .relaxed)
      let seconds = min(30, 1 << min(count - 1, 5))
      ejectedUntil.store(now.uptimeNanoseconds + UInt64(seconds) * 1_000_000_000, ordering: .relaxed)
    }
  }

  /// Result of one active health check.
  public func recordCheck(ok: Bool, now: NIODeadline) {
    if ok {
      consecutiveFailures.store(0, ordering: .relaxed)
      let n = consecutiveSuccesses.wrappingIncrementThenLoad(ordering: .relaxed)
      if n >= healthyAfter { healthy.store(true, ordering: .relaxed) }
    } else {
      consecutiveSuccesses.store(0, ordering: .relaxed)
      let n = consecutiveFailures.wrappingIncrementThenLoad(ordering: .relaxed)
      if n >= unhealthyAfter && healthy.exchange(false, ordering: .relaxed) {
        ejections.wrappingIncrement(ordering: .relaxed)
      }
    }
  }

  /// `healthy`, `ejected` or `unhealthy` (for /admin/upstreams).
  public var state: String {
    if isHealthy { return "healthy" }
    return activelyChecked ? "unhealthy" : "ejected"
  }
}

/// The settings and shared health of one upstream cluster (`upstreams.<name>`).
public final class ClusterState: Sendable {
  public enum Balancing: Sendable { case roundRobin, leastRequest }
  public struct Endpoint: Sendable {
    public var host: String
    public var port: Int
    public var tls: Bool
    public var health: EndpointHealth
    public init(host: String, port: Int, tls: Bool, health: EndpointHealth) {
      self.host = host
      self.port = port
      self.tls = tls
      self.health = health
    }
  }
  public let name: String
  public let endpoints: [Endpoint]
  public let balancing: Balancing
  /// Retries per request (0: none).
  public let retries: Int
  /// Retries may add at most this share of the cluster's requests.
  public let retryBudgetPercent: Int
  public let maxConnectionsPerEndpoint: Int
  /// TLS client context for `https://` endpoints (CA from `ca_file`, names verified).
  public let tlsContext: NIOSSLContext?
  /// Active health checks (nil: passive ejection only), run by ``HealthChecker``.
  public let healthCheck: HealthCheckSettings?

  /// `upstreams.<name>.health_check`: what ``HealthChecker`` requests, and how often.
  public struct HealthCheckSettings: Sendable {
    public var path: String
    public var interval: TimeAmount
    public init(path: String, interval: TimeAmount) {
      self.path = path
      self.interval = interval
    }
  }

  public init(
    name: String, endpoints: [Endpoint], balancing: Balancing, retries: Int, retryBudgetPercent: Int,
    maxConnectionsPerEndpoint: Int, tlsContext: NIOSSLContext?, healthCheck: HealthCheckSettings? = nil
  ) {
    self.healthCheck = healthCheck
    self.name = name
    self.endpoints = endpoints
    self.balancing = balancing
    self.retries = retries
    self.retryBudgetPercent = retryBudgetPercent
    self.maxConnectionsPerEndpoint = maxConnectionsPerEndpoint
    self.tlsContext = tlsContext
  }
}

/// One cluster as one event loop sees it: a pool per endpoint, endpoint choice, the retry budget.
/// Loop-confined, like the pools.
public final class LoopCluster {
  public let state: ClusterState
  public let pools: [UpstreamPool]
  /// This cluster's index in the loop's per-cluster counters (clusters sorted by name).
  public var metricsIndex = 0
  private var next = 0
  private var retryTokens: Double = 3
  private let sweeper: DeadlineSweeper

  public init(state: ClusterState, pools: [UpstreamPool], sweeper: DeadlineSweeper) {
    self.state = state
    self.pools = pools
    self.sweeper = sweeper
  }

  /// Picks an available endpoint, avoiding `excluding` when another one is available. `nil`: every
  /// endpoint is down — the caller answers 503 at once instead of timing out.
  public func pick(excluding: Int? = nil) -> Int? {
    let n = pools.count
    let now = sweeper.now
    if n == 1 {
      return state.endpoints[0].health.isAvailable(now: now) ? 0 : nil
    }
    switch state.balancing {
    case .roundRobin:
      var fallback: Int? = nil
      for step in 0..<n {
        let i = (next + step) % n
        guard state.endpoints[i].health.isAvailable(now: now) else { continue }
        if i == excluding {
          fallback = i
          continue
        }
        next = (i + 1) % n
        return i
      }
      return fallback
    case .leastRequest:
      // Power of two choices among available endpoints: two random picks, the less busy wins.
      let available = (0..<n).filter { $0 != excluding && state.endpoints[$0].health.isAvailable(now: now) }
      if available.isEmpty {
        if let e = excluding, state.endpoints[e].health.isAvailable(now: now) { return e }
        return nil
      }
      if available.count == 1 { return available[0] }
      let a = available.randomElement()!
      var b = available.randomElement()!
      if a == b { b = available[(available.firstIndex(of: a)! + 1) % available.count] }
      return pools[a].inFlight <= pools[b].inFlight ? a : b
    }
  }

  /// Every request earns a fraction of a retry; a retry spends one (Envoy-style budget: retries
  /// stay a bounded share of traffic, so a failing cluster is not hammered by them).
  public func requestStarted() {
    retryTokens = min(retryTokens + Double(state.retryBudgetPercent) / 100, 10 + Double(state.retryBudgetPercent))
  }

  /// A retry could be paid for now (``takeRetryToken()`` would succeed).
  public var hasRetryToken: Bool { retryTokens >= 1 }

  public func takeRetryToken() -> Bool {
    guard retryTokens >= 1 else { return false }
    retryTokens -= 1
    return true
  }
}
