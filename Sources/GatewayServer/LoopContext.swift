import GatewayConfig
import GatewayCore
import GatewayObservability
import GatewaySigning
import GatewaySnapshot
import GatewayUpstream
import Logging
import NIOCore

/// Everything one event loop owns: its view of the tenant table, its signer scratch space, its
/// upstream pools and its counters. Only ever touched on that loop, so nothing here is locked.
final class LoopContext {
  let eventLoop: EventLoop
  var tables: TableReader
  var signer: TenantTokenSigner
  /// Session and customer-token verification with this loop's cache (no keys: sessions off).
  var sessions: SessionTokenVerifier
  let resolver: TenantResolver
  let rewrite: HeaderRewrite
  let limits: RequestLimits
  let settings: ServerSettings
  /// Upstream clusters by name, with this loop's pools.
  var clusters: [String: LoopCluster]
  let counters = LoopCounters()
  /// Coarse timeouts and the cached clock of this loop.
  let sweeper: DeadlineSweeper
  var requestIDs: RequestIDGenerator
  let logger: Logger

  init(
    eventLoop: EventLoop, store: SnapshotStore, signer: TenantTokenSigner, sessions: SessionTokenVerifier,
    settings: ServerSettings,
    clusters: [String: LoopCluster], sweeper: DeadlineSweeper, logger: Logger
  ) {
    self.eventLoop = eventLoop
    self.sweeper = sweeper
    self.tables = TableReader(store: store)
    self.signer = signer
    self.sessions = sessions
    self.resolver = TenantResolver(settings: settings.resolver)
    self.rewrite = settings.rewrite
    self.limits = settings.limits
    self.settings = settings
    self.clusters = clusters
    self.requestIDs = RequestIDGenerator()
    self.logger = logger
  }
}

/// Settings the request path reads, computed once from `gateway.conf`.
struct ServerSettings: Sendable {
  var resolver: ResolverSettings
  var rewrite: HeaderRewrite
  var limits: RequestLimits
  var clientHeaderTimeout: TimeAmount
  var idleTimeout: TimeAmount
  var h2MaxConcurrentStreams: Int
  var maxConnections: Int
  var preflight: PreflightHeaders
  /// `sessions.cookie_name`.
  var sessionCookieName: String
  /// Rate limits (shared buckets).
  var rateLimits: RateLimits
}

extension HeaderRewrite: @unchecked Sendable {}

/// Request ids: 16 hex digits of per-loop random prefix and a 16-digit counter. Unique across loops
/// and restarts, cheap to make, and safe in headers and logs.
struct RequestIDGenerator {
  private let prefix: [UInt8]
  private var counter: UInt64 = 0

  init() {
    var p: [UInt8] = []
    var r = UInt64.random(in: 0...UInt64.max)
    for _ in 0..<16 {
      p.append(JSONText.hexByte(UInt8(r & 0xF)))
      r >>= 4
    }
    prefix = p
  }

  mutating func next() -> String {
    counter &+= 1
    var c = counter
    return String(unsafeUninitializedCapacity: 32) { buf in
      for i in 0..<16 { buf[i] = prefix[i] }
      for i in (16..<32).reversed() {
        buf[i] = JSONText.hexByte(UInt8(c & 0xF))
        c >>= 4
      }
      return 32
    }
  }

  /// A client-supplied id is used only when trusted and well-formed (printable, no spaces, ≤ 128).
  static func isAcceptable(_ id: String) -> Bool {
    let u = id.utf8
    return !u.isEmpty && u.count <= 128 && u.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }
  }
}
