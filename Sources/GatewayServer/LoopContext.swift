import Foundation
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
  /// What admission reads and updates: resolver, rewrite, rate limits, clusters, signer, sessions.
  var admission: AdmissionEnvironment
  var signer: TenantTokenSigner {
    get { admission.signer }
    set { admission.signer = newValue }
  }
  var resolver: TenantResolver { admission.resolver }
  /// Upstream clusters by name, with this loop's pools.
  var clusters: [String: LoopCluster] { admission.clusters }
  let limits: RequestLimits
  let settings: ServerSettings
  let counters: LoopCounters
  /// Set when a graceful drain starts: connections finish what they carry and close
  /// (HTTP/1.1 with `Connection: close`, HTTP/2 with GOAWAY).
  var draining = false
  /// This loop's access-log lines waiting for the writer (nil: `access_log.path` is empty).
  var accessLog: AccessLogBuffer?
  /// Flushes `accessLog` on every sweep.
  private var accessLogFlusher: AccessLogFlusher?
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
    self.limits = settings.limits
    self.settings = settings
    let names = clusters.keys.sorted()
    for (i, name) in names.enumerated() { clusters[name]!.metricsIndex = i }
    self.admission = AdmissionEnvironment(
      resolver: TenantResolver(settings: settings.resolver), rewrite: settings.rewrite, rateLimits: settings.rateLimits,
      sessionCookieName: settings.sessionCookieName, clusters: clusters, signer: signer, sessions: sessions,
      allocator: ByteBufferAllocator())
    self.counters = LoopCounters(clusters: names)
    self.requestIDs = RequestIDGenerator()
    self.logger = logger
  }

  /// Turns the access log on for this loop (call on the loop, before traffic).
  func enableAccessLog(_ writer: AccessLogWriter) {
    accessLog = AccessLogBuffer(writer: writer)
    let flusher = AccessLogFlusher(loop: self)
    accessLogFlusher = flusher
    sweeper.register(flusher)
  }

  /// Completes and queues an entry.
  func finishLog(_ e: inout AccessLogEntry, durationNanos: Int64) {
    e.durationNanos = durationNanos
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    accessLog?.append(e, unixMillis: Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000)
  }
}

/// Hands a loop's access-log batch to the writer on every deadline sweep.
final class AccessLogFlusher: Expirable {
  unowned let loop: LoopContext
  init(loop: LoopContext) { self.loop = loop }
  func checkDeadlines(now: NIODeadline) { loop.accessLog?.flush() }
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
