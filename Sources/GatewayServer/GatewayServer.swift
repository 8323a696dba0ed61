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

/// The gateway process: the TLS listener, one ``LoopContext`` per event loop, and the admin
/// listener. Built from a validated ``GatewayConfig`` and a ``SnapshotStore``.
public final class GatewayServer: @unchecked Sendable {
  public let config: GatewayConfig
  public let store: SnapshotStore
  /// Re-reads the snapshot source (file or URL) and publishes it when valid.
  let reloadSource: @Sendable () -> Result<TenantTable, SnapshotError>
  let logger: Logger
  let group: MultiThreadedEventLoopGroup
  let certificates: CertificateSet
  /// `tls.custom_domain_certs_dir`: certificates loaded by SNI on first use (nil: off).
  let customCertificates: CustomDomainCertificates?
  /// `tls.acme`: certificates ordered for the table's custom domains (nil: off).
  let acme: ACMECertificates?
  /// The TLS settings every context shares (versions, ciphers, ALPN).
  let tlsProfile: TLSProfile
  /// `listen.http_address`: ACME http-01 and the redirect to https (nil: off).
  let plainHTTP: PlainHTTPListener?
  private var certificateRescan: RepeatedTask?
  let settings: ServerSettings
  let contexts: [ObjectIdentifier: LoopContext]
  /// Upstream clusters by name (shared health).
  public let clusters: [String: ClusterState]
  private var healthChecker: HealthChecker?
  private let openConnections = ManagedAtomic<Int>(0)
  /// Sets up each accepted connection (TLS, then HTTP/1.1 or HTTP/2).
  private let connections: ConnectionInitializer
  /// Set when a graceful drain starts (`/readyz` answers 503 from then on).
  private let drainingFlag = ManagedAtomic<Bool>(false)
  /// Left by ``shutdown()``; ``wait()`` blocks on it.
  private let stopping = ManagedAtomic<Bool>(false)
  /// The access-log writer thread (nil: `access_log.path` is empty).
  private(set) var accessLogWriter: AccessLogWriter?
  /// `/.well-known/tenant-jwks.json`: the EdDSA public keys of `tenant_header.signing_keys`.
  var jwks: String { jwksBox.withLockedValue { $0 } }
  private let jwksBox: NIOLockedValueBox<String>
  /// The config file and `--set` overrides the server was started with: reloads re-read its
  /// signing keys from them.
  public var configSource: (path: String, overrides: [String])?
  /// The file source's journal and edit queue (nil with a URL source: edits go to the control plane).
  public var changeSource: FileChangeSource?
  /// Kids of the keys signing now (touched on the reload thread only).
  private var signingKIDs: [String]
  private var listener: Channel?
  private var admin: AdminServer?
  /// Reloads and edits run here, off the event loops (started with the admin listener).
  let reloadPool = NIOThreadPool(numberOfThreads: 1)
  /// `admin.token_file`'s token (nil: no token configured).
  private let adminToken: [UInt8]?

  /// Creates the server; nothing listens until ``start()``.
  /// - Parameter eventLoops: event loop count; defaults to one per core.
  public init(
    config: GatewayConfig, store: SnapshotStore, logger: Logger, eventLoops: Int? = nil, group: MultiThreadedEventLoopGroup? = nil,
    acmeFleet: ACMEFleetStore? = nil, reloadSource: @escaping @Sendable () -> Result<TenantTable, SnapshotError>
  ) throws {
    self.config = config
    self.store = store
    self.reloadSource = reloadSource
    self.logger = logger
    self.certificates = try CertificateSet(config: config.tls)
    self.tlsProfile = TLSProfile(config.tls)
    self.customCertificates = config.tls.customDomainCertsDir.map {
      CustomDomainCertificates(directory: $0, profile: TLSProfile(config.tls))
    }
    let keys = try SigningKeys.load(config.tenantHeader.signingKeys)
    self.jwksBox = NIOLockedValueBox(TenantJWKS.document(keys))
    self.signingKIDs = keys.map(\.kid)
    let verifyKeys = try SessionKeys.load(config.sessions?.verifyKeys ?? [])
    self.adminToken = try config.admin.tokenFile.map(AdminToken.load)
    self.settings = RuntimeSettings.make(from: config)
    let loops = group.map { g in g.makeIterator().reduce(0) { n, _ in n + 1 } } ?? eventLoops ?? GatewayServer.defaultEventLoops
    self.group = group ?? MultiThreadedEventLoopGroup(numberOfThreads: loops)
    let acme: ACMECertificates?
    do {
      let group = self.group
      acme = try config.tls.acme.map {
        try ACMECertificates(config: $0, profile: TLSProfile(config.tls), store: store, fleet: acmeFleet, group: group, logger: logger)
      }
    } catch {
      throw ConfigError(path: "tls.acme", reason: "\(error)")
    }
    self.acme = acme
    // Clusters: settings and endpoint health shared by every loop; pools per loop.
    var clusterStates: [String: ClusterState] = [:]
    for (name, cluster) in config.upstreams {
      clusterStates[name] = try Self.clusterState(cluster)
    }
    self.clusters = clusterStates
    var contexts: [ObjectIdentifier: LoopContext] = [:]
    for loop in self.group.makeIterator() {
      let sweeper = DeadlineSweeper(eventLoop: loop)
      var pools: [String: LoopCluster] = [:]
      for (name, cluster) in config.upstreams {
        let state = clusterStates[name]!
        let endpointPools = state.endpoints.map { endpoint in
          UpstreamPool(
            settings: RuntimeSettings.pool(
              host: endpoint.host, port: endpoint.port, cluster: cluster, limits: config.limits, loops: loops,
              tls: endpoint.tls ? state.tlsContext : nil),
            eventLoop: loop, sweeper: sweeper)
        }
        pools[name] = LoopCluster(state: state, pools: endpointPools, sweeper: sweeper)
      }
      let signer = TenantTokenSigner(keys: keys, issuer: config.tenantHeader.issuer, ttlSeconds: config.tenantHeader.ttlSeconds)
      let sessions = SessionTokenVerifier(keys: verifyKeys, issuer: config.sessions?.issuer ?? "")
      contexts[ObjectIdentifier(loop)] = LoopContext(
        eventLoop: loop, store: store, signer: signer, sessions: sessions, settings: settings, clusters: pools, sweeper: sweeper, logger: logger)
    }
    self.contexts = contexts
    self.connections = ConnectionInitializer(
      contexts: contexts, certificates: certificates, customCertificates: customCertificates, acme: acme, profile: tlsProfile,
      settings: settings, proxyProtocol: config.listen.proxyProtocol, proxyProtocolFrom: config.listen.proxyProtocolFrom,
      openConnections: openConnections)
    let serverSettings = self.settings
    self.plainHTTP = config.listen.httpAddress.map {
      PlainHTTPListener(
        address: $0, settings: serverSettings, platform: config.platformHosts, store: store, acme: acme,
        httpsPort: config.listen.httpsRedirectPort, logger: logger)
    }
  }

  /// Binds the admin listener and then the TLS listener.
  public func start() throws {
    try startAdmin()
    try startListeners()
  }

  /// Binds the admin listener alone, before anything slow (the snapshot's first load) starts:
  /// `/healthz` answers from the first instant, `/readyz` is false until a table is loaded.
  public func startAdmin() throws {
    guard admin == nil else { return }
    reloadPool.start()
    let admin = AdminServer(group: group, backend: AdminBackendImpl(server: self), token: adminToken, logger: logger)
    do {
      try admin.start(host: config.admin.address.host, port: config.admin.address.port)
    } catch {
      throw ConfigError(path: "admin.address", reason: "cannot listen on \(config.admin.address): \(BindFailure.describe(error))")
    }
    self.admin = admin
    logger.info("admin listening", metadata: ["address": "\(config.admin.address)"])
  }

  /// Starts health checks, certificate rescans and the access log, and binds the TLS listener.
  public func startListeners() throws {
    try startAdmin()
    let checker = HealthChecker(states: clusters, eventLoop: group.next(), logger: logger)
    checker.start()
    healthChecker = checker
    if let custom = customCertificates {
      // Follow renewed and added certificates (the same cadence as the snapshot's file poll).
      let interval = TimeAmount.nanoseconds(Int64(max(0.5, config.snapshot.pollIntervalSeconds) * 1e9))
      certificateRescan = group.next().scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
        DispatchQueue.global().async { custom.rescan() }
      }
      logger.info("custom-domain certificates indexed", metadata: ["directory": "\(custom.directory)", "domains": "\(custom.domainCount)"])
    }
    if let acme {
      acme.start()
      logger.info("ACME on", metadata: [
        "directory_url": "\(acme.config.directoryURL)", "storage_dir": "\(acme.config.storageDir)",
        "challenges": "\(acme.config.challenges.joined(separator: ","))",
      ])
    }
    if let path = config.accessLog.path {
      let writer: AccessLogWriter
      do { writer = try AccessLogWriter(path: path) } catch {
        throw ConfigError(path: "access_log.path", reason: "cannot open \(path): \(error)")
      }
      writer.start()
      accessLogWriter = writer
    }
    for ctx in contexts.values {
      let writer = accessLogWriter
      try ctx.eventLoop.submit {
        ctx.sweeper.start()
        if let writer { ctx.enableAccessLog(writer) }
      }.wait()
    }
    let bootstrap = ServerBootstrap(group: group)
      .serverChannelOption(.backlog, value: 4096)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      // A new process (a new config, a new binary) binds beside this one, becomes ready, and this
      // one drains: the kernel spreads new connections over both until this one closes (§8).
      .serverChannelOption(ChannelOptions.socket(SocketOptionLevel(SOL_SOCKET), SO_REUSEPORT), value: 1)
      .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
      .childChannelOption(.maxMessagesPerRead, value: 16)
      .childChannelInitializer { [connections] channel in
        connections.initialize(channel)
      }
    let address = config.listen.address
    do {
      listener = try bootstrap.bind(host: address.host, port: address.port).wait()
    } catch {
      throw ConfigError(path: "listen.address", reason: "cannot listen on \(address): \(BindFailure.describe(error))")
    }
    logger.info("listening", metadata: ["address": "\(address)", "event_loops": "\(contexts.count)"])
    try plainHTTP?.start(group: group, contexts: contexts)
  }

  /// The bound plain-HTTP port (`listen.http_address`), if any.
  public var boundHTTPPort: Int? { plainHTTP?.boundPort }

  /// The bound TLS port (useful when configured as port 0).
  public var boundPort: Int? { listener?.localAddress?.port }

  /// True once a graceful drain has started.
  public var isDraining: Bool { drainingFlag.load(ordering: .relaxed) }

  /// Client connections open now (TLS listener only).
  public var openClientConnections: Int { openConnections.load(ordering: .relaxed) }

  /// Graceful drain (PRODUCT.md §8): `/readyz` turns false, the listener stops accepting, every
  /// connection finishes what it carries (HTTP/1.1 answers with `Connection: close`, HTTP/2 sends
  /// GOAWAY naming the last stream it will serve) and closes. Returns when no client connection is
  /// left, `timeout` has passed or the calling task is cancelled, with the number still open.
  @discardableResult
  public func drain(timeout: TimeAmount) async -> Int {
    drainingFlag.store(true, ordering: .relaxed)
    logger.info("draining", metadata: ["open_connections": "\(openClientConnections)", "timeout_s": "\(Double(timeout.nanoseconds) / 1e9)"])
    try? await listener?.close().get()
    plainHTTP?.stop()
    for ctx in contexts.values {
      ctx.eventLoop.execute {
        ctx.draining = true
        ctx.sweeper.sweepNow()
      }
    }
    let deadline = NIODeadline.now() + timeout
    while openClientConnections > 0 && NIODeadline.now() < deadline && !Task.isCancelled {
      try? await Task.sleep(nanoseconds: 20_000_000)
    }
    let left = openClientConnections
    logger.info("drained", metadata: ["connections_left": "\(left)"])
    return left
  }

  /// Stops listening and closes everything. Blocks until the event loops have stopped: call it
  /// off them (and off Swift concurrency's threads; ``GatewayService`` does).
  /// Idempotent: a second call (say, a second SIGTERM during a drain's shutdown) returns at once.
  public func shutdown() {
    guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
    try? listener?.close().wait()
    plainHTTP?.stop()
    admin?.stop()
    for ctx in contexts.values {
      try? ctx.eventLoop.submit { ctx.accessLog?.flush() }.wait()
    }
    certificateRescan?.cancel()
    acme?.stop()
    try? group.syncShutdownGracefully()
    try? reloadPool.syncShutdownGracefully()
    customCertificates?.shutdown()
    accessLogWriter?.stop()
  }

  /// SIGUSR1: reopens the access log file (after logrotate moved it). Queued lines are written first.
  public func reopenAccessLog() {
    guard let writer = accessLogWriter else { return }
    writer.reopen()
    logger.info("access log reopened", metadata: ["path": "\(config.accessLog.path ?? "")"])
  }

  /// Re-reads the snapshot off the event loops; the old table keeps serving on failure.
  public func reload() -> EventLoopFuture<Result<TenantTable, SnapshotError>> {
    let loop = group.next()
    let logger = self.logger
    let reloadSource = self.reloadSource
    return reloadPool.runIfActive(eventLoop: loop) { [self] in
      reloadSigningKeys()
      let result = reloadSource()
      switch result {
      case .success(let t):
        logger.info("snapshot reloaded", metadata: ["version": "\(t.version)", "shops": "\(t.shopCount)", "keys": "\(t.keyCount)"])
      case .failure(let e):
        logger.error("snapshot rejected; previous table keeps serving", metadata: ["error": "\(e)"])
      }
      return result
    }
  }

  /// Key rotation without a restart: re-reads `tenant_header.signing_keys` from the config file (the
  /// list and the key files) and, when they load, swaps every loop's signer and the JWKS. A broken
  /// key list is logged and the current keys keep signing. Other config changes need a restart.
  func reloadSigningKeys() {
    guard let source = configSource else { return }
    let outcome = ConfigLoader.load(path: source.path, overrides: source.overrides)
    guard let fresh = outcome.config else {
      logger.error("config unreadable on reload; signing keys unchanged", metadata: ["errors": "\(outcome.errors)"])
      return
    }
    let keys: [SigningKey]
    do { keys = try SigningKeys.load(fresh.tenantHeader.signingKeys) } catch {
      logger.error("signing keys rejected on reload; current keys keep signing", metadata: ["error": "\(error)"])
      return
    }
    let jwks = TenantJWKS.document(keys)
    let kids = keys.map(\.kid)
    let issuer = config.tenantHeader.issuer
    let ttl = config.tenantHeader.ttlSeconds
    for ctx in contexts.values {
      ctx.eventLoop.execute { ctx.signer = TenantTokenSigner(keys: keys, issuer: issuer, ttlSeconds: ttl) }
    }
    let changed = jwksBox.withLockedValue { old in
      defer { old = jwks }
      return old != jwks || signingKIDs != kids
    }
    signingKIDs = kids
    if changed { logger.info("signing keys reloaded", metadata: ["kids": "\(kids.joined(separator: ","))", "signing": "\(kids.first ?? "")"]) }
  }

  /// The shared state of one configured cluster: endpoints with their health, and the TLS context
  /// for `https://` endpoints (CA from `ca_file`, else the system roots; certificate names verified).
  static func clusterState(_ cluster: UpstreamCluster) throws -> ClusterState {
    let active = cluster.healthCheck != nil
    let endpoints = cluster.endpoints.map { e in
      ClusterState.Endpoint(
        host: e.host, port: e.port, tls: e.tls,
        health: EndpointHealth(
          name: e.description, unhealthyAfter: cluster.healthCheck?.unhealthyAfter ?? 3,
          healthyAfter: cluster.healthCheck?.healthyAfter ?? 2, activelyChecked: active))
    }
    var tlsContext: NIOSSLContext? = nil
    if cluster.endpoints.contains(where: \.tls) {
      var tls = TLSConfiguration.makeClientConfiguration()
      tls.certificateVerification = .fullVerification
      if let ca = cluster.caFile { tls.trustRoots = .file(ca) }
      tls.applicationProtocols = ["http/1.1"]
      tlsContext = try NIOSSLContext(configuration: tls)
    }
    return ClusterState(
      name: cluster.name, endpoints: endpoints, balancing: cluster.balancing == .leastRequest ? .leastRequest : .roundRobin,
      retries: cluster.retries, retryBudgetPercent: cluster.retryBudgetPercent,
      maxConnectionsPerEndpoint: cluster.maxConnectionsPerEndpoint, tlsContext: tlsContext,
      healthCheck: cluster.healthCheck.map {
        ClusterState.HealthCheckSettings(path: $0.path, interval: RuntimeSettings.seconds($0.intervalSeconds))
      })
  }

  /// Event loops by default: the CPUs this process may run on (its affinity mask, like nginx's
  /// `worker_processes auto`), so a gateway pinned to one core runs one loop.
  public static var defaultEventLoops: Int {
    // /proc/self/status: "Cpus_allowed:\tff,ffffffff" (hex mask, comma-separated words).
    if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
      let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed:") })
    {
      let mask = line.dropFirst("Cpus_allowed:".count).filter { $0.isHexDigit }
      let count = mask.reduce(0) { $0 + (Int(String($1), radix: 16) ?? 0).nonzeroBitCount }
      if count > 0 { return min(count, System.coreCount) }
    }
    return System.coreCount
  }
}
