import ArgumentParser
import Dispatch
import Foundation
import GatewayConfig
import GatewayCore
import GatewayObservability
import GatewayPostgres
import GatewayServer
import GatewaySigning
import GatewaySnapshot
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle
import UnixSignals

struct Serve: AsyncParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Run the gateway.")

  @OptionGroup var options: ConfigOptions

  @Option(help: "Event loops (threads); default: one per core.")
  var eventLoops: Int?

  @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
  var logLevel: String = "info"

  @Option(help: "Application log format: text or json (one JSON object per line).")
  var logFormat: String = "text"

  func validate() throws {
    guard Logger.Level(rawValue: logLevel) != nil else {
      throw ValidationError("--log-level \(logLevel) is not one of trace, debug, info, notice, warning, error, critical")
    }
    guard ["text", "json"].contains(logFormat) else { throw ValidationError("--log-format must be text or json, not \(logFormat)") }
  }

  func run() async throws {
    // Until the signal service runs, a logrotate SIGUSR1 must not kill a process still loading.
    signal(SIGUSR1, SIG_IGN)
    ApplicationLog.bootstrap(format: logFormat)
    var logger = Logger(label: "tenant-gateway")
    logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
    let file = options.config
    let outcome = ConfigLoader.load(path: file, overrides: options.overrides)
    for w in outcome.warnings { logger.warning("config: \(w)") }
    guard let config = outcome.config else {
      for e in outcome.errors { printError(e.message(file: file)) }
      throw ExitCode(1)
    }
    /// A file or listener the config names failed to load: say where the key was set.
    func fail(_ error: Error) -> ExitCode {
      if let e = error as? ConfigError {
        printError("\(outcome.origin(of: e.path, file: file)): \(e.description)")
      } else if let e = error as? SigningKeys.LoadError {
        printError("\(outcome.origin(of: e.keyPath, file: file)): \(e.description)")
      } else {
        printError("\(file): \(error)")
      }
      return ExitCode(1)
    }
    logger.info("starting", metadata: ["version": "\(BuildInfo.version)", "config": "\(file)", "pid": "\(getpid())"])
    do { try prepareDevelopmentCertificate(config, logger: logger) } catch { throw fail(error) }
    for f in StartupCheck.inspect(config, probeListeners: false) where f.severity != .note {
      // Expired or expiring certificates are served (refusing to start would turn a renewal
      // miss into an outage); `check` fails on them.
      logger.log(level: f.severity == .error ? .error : .warning, "\(f.keyPath): \(f.message)")
    }

    let store = SnapshotStore()
    let group = MultiThreadedEventLoopGroup(numberOfThreads: eventLoops ?? GatewayServer.defaultEventLoops)
    var loader = SnapshotLoader(
      path: config.snapshot.path ?? "", stateDirectory: config.snapshot.stateDir, platform: config.platformHosts)
    let progressLogger = logger
    loader.progress = { p in
      progressLogger.info("loading snapshot", metadata: [
        "entries": "\(p.entries)", "entries_per_s": "\(p.entriesPerSecond)", "percent": "\(p.percent)",
        "mb_read": "\(p.bytesRead >> 20)", "elapsed_s": "\(Int(p.elapsed))",
      ])
    }
    let reloadSource: @Sendable () -> Result<TenantTable, SnapshotError>
    let urlBox = NIOLockedValueBox<SnapshotURLSource?>(nil)
    var urlSource: SnapshotURLSource? = nil
    var changeSource: FileChangeSource? = nil
    var postgresSource: PostgresSource? = nil
    var databaseGroup: MultiThreadedEventLoopGroup? = nil
    var certificateStore: PostgresCertificateStore? = nil
    if let pg = config.snapshot.postgres {
      let password: String?
      do { password = try PostgresSettings.password(pg) } catch { throw fail(error) }
      // Its own event loop, not the server's: the server's loops shut down at the end of the drain,
      // and the database follower stops after that (the table keeps following edits while
      // requests drain). On a shut-down loop its connection could never close, and the process
      // hung at exit. It also keeps database I/O off the request loops.
      let databaseLoop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
      databaseGroup = databaseLoop
      let source = PostgresSource(
        settings: PostgresSettings.resolve(pg, password: password), store: store, platform: config.platformHosts,
        stateDirectory: config.snapshot.stateDir, group: databaseLoop, logger: logger)
      postgresSource = source
      if config.tls.acme?.storage == "postgres" {
        // Its own connection on the database loop: an order's advisory lock lives in its session.
        certificateStore = PostgresCertificateStore(settings: PostgresSettings.resolve(pg, password: password), group: databaseLoop, logger: logger)
      }
      reloadSource = {
        source.requestResync()
        return .success(store.current)
      }
    } else if config.snapshot.url != nil {
      reloadSource = { [loader] in
        guard let source = urlBox.withLockedValue({ $0 }) else { return .failure(.unreadable(path: loader.path, reason: "not started")) }
        switch source.fetchNow() {
        case .success(let t): return .success(t ?? store.current)
        case .failure(let e): return .failure(e)
        }
      }
    } else {
      // The file source and its journal: every table change goes through its queue.
      let source = FileChangeSource(
        loader: loader, journalPath: config.snapshot.journalPath ?? loader.path + ".changes", store: store,
        compactAfterBytes: config.snapshot.compactAfterBytes, logger: logger)
      changeSource = source
      reloadSource = { source.reload() }
    }

    // Built and its admin listener bound before the first load: a slow or hanging snapshot source
    // leaves /healthz answering and /readyz false, never a refused probe.
    let server: GatewayServer
    do {
      server = try GatewayServer(
        config: config, store: store, logger: logger, group: group, acmeFleet: certificateStore, reloadSource: reloadSource)
      server.configSource = (options.config, options.overrides)
      server.changeSource = changeSource
      try server.startAdmin()
    } catch { throw fail(error) }

    let loadStarted = Date()
    if let url = config.snapshot.url {
      // A control plane: fetch now; when it is down at start, serve the last-known-good copy.
      let source = SnapshotURLSource(
        url: url, interval: config.snapshot.pollIntervalSeconds, loader: loader, store: store, group: group, logger: logger)
      if case .failure(let error) = source.fetchNow() {
        guard FileManager.default.fileExists(atPath: loader.lastKnownGoodPath),
          let table = try? loader.loadFile(loader.lastKnownGoodPath)
        else {
          printError("\(outcome.origin(of: "snapshot.url", file: file)): snapshot.url: cannot fetch the snapshot from \(url), and there is no last-known-good copy: \(error)")
          throw ExitCode(1)
        }
        store.publish(table, source: "last-known-good:\(loader.lastKnownGoodPath)")
        store.recordFailure(error.messages)
      }
      urlSource = source
      urlBox.withLockedValue { $0 = source }
    } else if let postgresSource {
      do {
        try await postgresSource.loadAtStart()
      } catch {
        printError("\(outcome.origin(of: "snapshot.postgres.url", file: file)): snapshot.postgres.url: \(error)")
        throw ExitCode(1)
      }
    } else if let changeSource {
      do {
        try changeSource.loadAtStart()
      } catch {
        printError("\(outcome.origin(of: "snapshot.path", file: file)): snapshot.path: cannot load \(loader.path) (nor a last-known-good copy): \(error)")
        throw ExitCode(1)
      }
    }
    let status = store.status
    if let e = status.lastError {
      logger.error("snapshot source is broken; serving the last-known-good copy", metadata: ["error": "\(e.joined(separator: "; "))"])
    }
    logger.info("snapshot loaded", metadata: [
      "version": "\(status.version)", "shops": "\(status.shops)", "keys": "\(status.keys)", "source": "\(status.source)",
      "duration_s": "\(String(format: "%.3f", Date().timeIntervalSince(loadStarted)))",
    ])

    do { try server.startListeners() } catch { throw fail(error) }
    // SIGHUP and SIGUSR1 are trapped from here on, before READY=1: their default action ends the
    // process, so a reload (`systemctl reload`, or a test) sent right after readiness would kill
    // the gateway instead. SIGTERM and SIGINT are trapped by the service group before it starts
    // any service; GatewayService sends READY=1 when it starts.
    let operatorSignals = await UnixSignalsSequence(trapping: .sighup, .sigusr1)

    let drainTimeout = TimeAmount.nanoseconds(Int64(config.limits.drainTimeoutSeconds * 1e9))
    var groupConfig = ServiceGroupConfiguration(
      services: [
        .init(service: SnapshotSourceService(
          changeSource: changeSource, urlSource: urlSource, postgres: postgresSource, pollInterval: config.snapshot.pollIntervalSeconds)),
        .init(service: SignalActions(server: server, signals: operatorSignals)),
        .init(service: GatewayService(
          server: server, drainTimeout: drainTimeout, logger: logger,
          readiness: "READY=1\nSTATUS=serving \(status.version)\nMAINPID=\(getpid())")),
      ],
      gracefulShutdownSignals: [.sigterm],
      cancellationSignals: [.sigint],
      logger: logger)
    // A safety net above the drain's own limit: past it the group is cancelled.
    groupConfig.maximumGracefulShutdownDuration = .seconds(config.limits.drainTimeoutSeconds + 10)
    try await ServiceGroup(configuration: groupConfig).run()
    // Its session ends here, and with it any order lock it still held.
    await certificateStore?.close()
    try? await databaseGroup?.shutdownGracefully()
  }
}

/// Generates the development certificate when `tls.generate_dev_certificate` is set and the
/// configured files are missing (PRODUCT.md §7; the shipped gateway.conf only).
func prepareDevelopmentCertificate(_ config: GatewayConfig, logger: Logger) throws {
  guard config.tls.generateDevCertificate, let first = config.tls.certificates.first else { return }
  let fm = FileManager.default
  guard !fm.fileExists(atPath: first.cert) || !fm.fileExists(atPath: first.key) else { return }
  let names = DevelopmentCertificate.names(for: config.platform)
  try DevelopmentCertificate.generate(names: names, certPath: first.cert, keyPath: first.key)
  logger.warning(
    "generated a self-signed DEVELOPMENT certificate (tls.generate_dev_certificate: true); never use it in production",
    metadata: ["cert": "\(first.cert)", "names": "\(names.joined(separator: ","))"])
}

func printError(_ message: String) {
  FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// `snapshot.postgres` as the source's settings; the password from `password_file`, else
/// `PGPASSWORD`, else the URL.
enum PostgresSettings {
  static func password(_ pg: GatewayConfig.Postgres) throws -> String? {
    if let file = pg.passwordFile {
      guard let data = FileManager.default.contents(atPath: file) else {
        throw ConfigError(path: "snapshot.postgres.password_file", reason: "cannot read \(file)")
      }
      return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
    return ProcessInfo.processInfo.environment["PGPASSWORD"]
  }

  static func resolve(_ pg: GatewayConfig.Postgres, password: String?) -> PostgresSource.Settings {
    PostgresSource.Settings(url: pg.url, password: password, schema: pg.schema, tls: pg.tls, caFile: pg.caFile, pollInterval: pg.pollIntervalSeconds)
  }
}
