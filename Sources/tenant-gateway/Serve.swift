import ArgumentParser
import Dispatch
import Foundation
import GatewayConfig
import GatewayCore
import GatewayServer
import GatewaySnapshot
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

struct Serve: AsyncParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Run the gateway.")

  @OptionGroup var options: ConfigOptions

  @Option(help: "Event loops (threads); default: one per core.")
  var eventLoops: Int?

  @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
  var logLevel: String = "info"

  func run() async throws {
    var logger = Logger(label: "tenant-gateway")
    logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
    let outcome = ConfigLoader.load(path: options.config, overrides: options.overrides)
    for w in outcome.warnings { logger.warning("config: \(w)") }
    guard let config = outcome.config else {
      for e in outcome.errors { printError("\(options.config): \(e)") }
      throw ExitCode(1)
    }
    try prepareDevelopmentCertificate(config, logger: logger)

    let store = SnapshotStore()
    let group = MultiThreadedEventLoopGroup(numberOfThreads: eventLoops ?? GatewayServer.defaultEventLoops)
    let loader = SnapshotLoader(
      path: config.snapshot.path ?? "", stateDirectory: config.snapshot.stateDir, platform: config.platformHosts)
    let reloadSource: @Sendable () -> Result<TenantTable, SnapshotError>
    var watcher: SnapshotFileWatcher? = nil
    let trigger = ReloadTrigger()
    var urlSource: SnapshotURLSource? = nil

    if let url = config.snapshot.url {
      // A control plane: fetch now; when it is down at start, serve the last-known-good copy.
      let source = SnapshotURLSource(
        url: url, interval: config.snapshot.pollIntervalSeconds, loader: loader, store: store, group: group, logger: logger)
      if case .failure(let error) = source.fetchNow() {
        guard FileManager.default.fileExists(atPath: loader.lastKnownGoodPath),
          let table = try? loader.loadFile(loader.lastKnownGoodPath)
        else {
          printError("cannot fetch the snapshot from \(url), and there is no last-known-good copy: \(error)")
          throw ExitCode(1)
        }
        store.publish(table, source: "last-known-good:\(loader.lastKnownGoodPath)")
        store.recordFailure(error.messages)
      }
      urlSource = source
      reloadSource = {
        switch source.fetchNow() {
        case .success(let t): return .success(t ?? store.current)
        case .failure(let e): return .failure(e)
        }
      }
    } else {
      do {
        try loader.loadAtStart(into: store)
      } catch {
        printError("cannot load a snapshot (\(loader.path), nor a last-known-good copy): \(error)")
        throw ExitCode(1)
      }
      // Reload on change (a cheap stat poll), on SIGHUP and on POST /admin/reload.
      let w = SnapshotFileWatcher(path: loader.path, interval: config.snapshot.pollIntervalSeconds) { trigger.fire() }
      w.noteLoaded()
      watcher = w
      reloadSource = { [w] in
        defer { w.noteLoaded() }
        return loader.reload(into: store)
      }
    }
    let status = store.status
    if let e = status.lastError {
      logger.error("snapshot source is broken; serving the last-known-good copy", metadata: ["error": "\(e.joined(separator: "; "))"])
    }
    logger.info("snapshot loaded", metadata: ["version": "\(status.version)", "shops": "\(status.shops)", "keys": "\(status.keys)", "source": "\(status.source)"])

    let server = try GatewayServer(config: config, store: store, logger: logger, group: group, reloadSource: reloadSource)
    server.configSource = (options.config, options.overrides)
    try server.start()
    trigger.set { _ = server.reload() }

    let drainTimeout = TimeAmount.nanoseconds(Int64(config.limits.drainTimeoutSeconds * 1e9))
    var groupConfig = ServiceGroupConfiguration(
      services: [
        .init(service: SnapshotSourceService(watcher: watcher, urlSource: urlSource)),
        .init(service: ReloadOnHangup(server: server)),
        .init(service: GatewayService(server: server, drainTimeout: drainTimeout, logger: logger)),
      ],
      gracefulShutdownSignals: [.sigterm],
      cancellationSignals: [.sigint],
      logger: logger)
    // A safety net above the drain's own limit: past it the group is cancelled.
    groupConfig.maximumGracefulShutdownDuration = .seconds(config.limits.drainTimeoutSeconds + 10)
    try await ServiceGroup(configuration: groupConfig).run()
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

/// Lets the file watcher call the server, which is created after it.
final class ReloadTrigger: @unchecked Sendable {
  private let lock = NSLock()
  private var action: (() -> Void)?
  func set(_ action: @escaping () -> Void) { lock.withLock { self.action = action } }
  func fire() { lock.withLock { action }?() }
}
