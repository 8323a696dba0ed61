import Atomics
import Crypto
import Foundation
import GatewayACME
import GatewayConfig
import GatewayCore
import GatewayObservability
import GatewaySigning
import GatewaySnapshot
import GatewayUpstream
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import NIOSSL
import NIOTLS

/// What the admin listener reads from the running server: connection counts per endpoint, the
/// `/admin/upstreams` document and the counters summed over loops, and ``AdminBackendImpl``, which
/// connects the two.
extension GatewayServer {
  /// Connection counts per (cluster, endpoint), summed over loops.
  func endpointConnections() -> EventLoopFuture<[String: (open: Int, idle: Int, inFlight: Int)]> {
    let futures = contexts.values.map { ctx in
      ctx.eventLoop.submit { () -> [String: [Int]] in
        var out: [String: [Int]] = [:]
        for (name, cluster) in ctx.clusters {
          for (i, pool) in cluster.pools.enumerated() {
            out["\(name)#\(i)"] = [pool.openConnections, pool.idleConnections, pool.inFlight]
          }
        }
        return out
      }
    }
    return EventLoopFuture.reduce([String: (open: Int, idle: Int, inFlight: Int)](), futures, on: group.next()) { total, next in
      var t = total
      for (k, v) in next {
        let old = t[k] ?? (0, 0, 0)
        t[k] = (old.open + v[0], old.idle + v[1], old.inFlight + v[2])
      }
      return t
    }
  }

  /// `GET /admin/upstreams`: every cluster, its settings and each endpoint's health and connections.
  struct UpstreamsDocument: Encodable {
    struct Cluster: Encodable {
      var name: String
      var balancing: String
      var retries: Int
      var retryBudgetPercent: Int
      var endpoints: [Endpoint]
    }
    struct Endpoint: Encodable {
      var url: String
      var state: String
      var ejections: Int
      var openConnections: Int
      var idleConnections: Int
      var inFlight: Int
    }
    var clusters: [Cluster]
  }

  /// `GET /admin/upstreams`.
  public func upstreamsJSON() -> EventLoopFuture<String> {
    let clusters = self.clusters
    return endpointConnections().map { conns in
      let document = UpstreamsDocument(clusters: clusters.sorted(by: { $0.key < $1.key }).map { name, state in
        UpstreamsDocument.Cluster(
          name: name, balancing: state.balancing == .leastRequest ? "least_request" : "round_robin", retries: state.retries,
          retryBudgetPercent: state.retryBudgetPercent,
          endpoints: state.endpoints.enumerated().map { i, e in
            let c = conns["\(name)#\(i)"] ?? (0, 0, 0)
            return UpstreamsDocument.Endpoint(
              url: e.health.name, state: e.health.state, ejections: e.health.ejectionCount, openConnections: c.open,
              idleConnections: c.idle, inFlight: c.inFlight)
          })
      })
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.sortedKeys]
      let data = (try? encoder.encode(document)) ?? Data()
      return String(decoding: data, as: UTF8.self)
    }
  }

  /// Sums every loop's counters.
  public func counters() -> EventLoopFuture<CounterSnapshot> {
    let futures = contexts.values.map { ctx in
      ctx.eventLoop.submit {
        var s = ctx.counters.snapshot
        s.topShops = ctx.counters.topShops.resolved(in: ctx.tables.current())
        for (name, cluster) in ctx.clusters {
          for pool in cluster.pools {
            s.clusters[name, default: ClusterCounters()].openConnections += pool.openConnections
            s.clusters[name, default: ClusterCounters()].idleConnections += pool.idleConnections
            s.clusters[name, default: ClusterCounters()].pendingRequests += pool.waiting
          }
        }
        return s
      }
    }
    let writer = accessLogWriter
    let custom = customCertificates
    let acme = self.acme
    let plain = self.plainHTTP
    let soonestExpiry = certificates.entries.map(\.notAfter.timeIntervalSince1970).min()
    return EventLoopFuture.reduce(CounterSnapshot(), futures, on: group.next()) { total, next in
      var t = total
      t.add(next)
      return t
    }.map { total in
      var t = total
      if let writer {
        t.accessLog = (writer.writtenLines.load(ordering: .relaxed), writer.droppedLines.load(ordering: .relaxed))
        t.accessLogReopens = writer.reopens.load(ordering: .relaxed)
      }
      t.soonestCertificateExpiry = soonestExpiry
      if let custom { t.customCertificates = custom.stats }
      if let acme {
        let st = acme.stats()
        t.acme = (st.byState, st.orders, st.running, st.soonestNotAfter?.timeIntervalSince1970, st.storageReads)
      }
      if let plain { t.plainHTTP = plain.counts() }
      return t
    }
  }
}

extension LoopContext: @unchecked Sendable {}

/// Connects the admin listener to the running server.
struct AdminBackendImpl: AdminBackend {
  let server: GatewayServer

  var isReady: Bool { server.store.isReady && !server.isDraining }
  var jwks: String { server.jwks }
  var snapshotStatus: SnapshotStatus { server.store.status }

  func reload() -> EventLoopFuture<ReloadOutcome> {
    server.reload().map { result in
      switch result {
      case .success(let t):
        return ReloadOutcome(accepted: true, version: t.version, shops: t.shopCount, customDomains: t.customDomainCount, keys: t.keyCount, errors: [])
      case .failure(let e):
        let s = server.store.status
        return ReloadOutcome(accepted: false, version: s.version, shops: s.shops, customDomains: s.customDomains, keys: s.keys, errors: e.messages)
      }
    }
  }

  func counters() -> EventLoopFuture<CounterSnapshot> { server.counters() }

  func shop(_ idOrSubdomain: String) -> String? {
    let table = server.store.current
    return table.shop(idOrSubdomain: idOrSubdomain).map { SnapshotJSON.shopDocument(table, $0) }
  }

  func applyChanges(_ body: [UInt8]) -> EventLoopFuture<AdminResponse> {
    let loop = server.group.next()
    guard let source = server.changeSource else {
      let message = server.config.snapshot.postgres != nil
        ? "the tenants come from PostgreSQL: edit the rows there (the gateway follows them)"
        : "the snapshot comes from a URL: send edits to the control plane"
      return loop.makeSucceededFuture(AdminResponse(status: 409, json: AdminJSON.changeRefused("source_is_authoritative", [message])))
    }
    let logger = server.logger
    return server.reloadPool.runIfActive(eventLoop: loop) {
      let change: ChangeSet
      switch Result(catching: { () throws(SnapshotError) -> ChangeSet in try ChangeSetCodec.decode(body) }) {
      case .success(let c): change = c
      case .failure(let error):
        return AdminResponse(status: 422, json: AdminJSON.changeRefused("invalid_change_set", error.messages))
      }
      switch source.submit(change) {
      case .applied(let t):
        logger.info("change set applied", metadata: ["version": "\(t.version)", "entities": "\(change.entityCount)"])
        return AdminResponse(status: 200, json: AdminJSON.changeApplied(t.version, shops: t.shopCount, customDomains: t.customDomainCount, keys: t.keyCount))
      case .staleBase(let current, let message):
        return AdminResponse(status: 409, json: AdminJSON.changeRefused("stale_base", [message], version: current))
      case .refused(let errors):
        logger.warning("change set refused", metadata: ["version": "\(change.version)", "errors": "\(errors.joined(separator: "; "))"])
        return AdminResponse(status: 422, json: AdminJSON.changeRefused("invalid_change_set", errors))
      case .failed(let message):
        return AdminResponse(status: 503, json: AdminJSON.changeRefused("journal_unavailable", [message]))
      }
    }
  }

  func upstreams() -> EventLoopFuture<String> { server.upstreamsJSON() }

  var endpointHealth: [(cluster: String, endpoint: String, healthy: Bool, ejections: Int)] {
    server.clusters.sorted(by: { $0.key < $1.key }).flatMap { name, state in
      state.endpoints.map { (name, $0.health.name, $0.health.isHealthy, $0.health.ejectionCount) }
    }
  }

  func certificates(host: String?) -> [CertificateStatus]? {
    guard let acme = server.acme else { return nil }
    var name: String? = nil
    if let host {
      guard let normalised = HostName.normalize(host) else { return [] }
      name = normalised
    }
    return acme.entries(host: name).map {
      CertificateStatus(
        domain: $0.domain, state: $0.state, issuer: $0.issuer, notAfter: $0.notAfter?.timeIntervalSince1970,
        lastError: $0.lastError, nextAttemptAt: $0.nextAttemptAt?.timeIntervalSince1970)
    }
  }

  func lookup(host: String, keySHA256: String?) -> String {
    let resolver = TenantResolver(settings: server.config.resolverSettings)
    return resolver.explain(host: host, keyDigest: keySHA256.flatMap { KeyDigest(hex: $0) }, in: server.store.current).json
  }
}
