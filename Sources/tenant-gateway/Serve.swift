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

struct Serve: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Run the gateway.")

  @OptionGroup var options: ConfigOptions

  @Option(help: "Event loops (threads); default: one per core.")
  var eventLoops: Int?

  func run() throws {
    var logger = Logger(label: "tenant-gateway")
    logger.logLevel = .info
    let outcome = ConfigLoader.load(path: options.config, overrides: options.overrides)
    for w in outcome.warnings { logger.warning("config: \(w)") }
    guard let config = outcome.config else {
      for e in outcome.errors { printError("\(options.config): \(e)") }
      throw ExitCode(1)
    }
    try prepareDevelopmentCertificate(config, logger: logger)

    guard let path = config.snapshot.path else {
      printError("snapshot.url is not supported by this build yet; set snapshot.path")
      throw ExitCode(1)
    }
    let store = SnapshotStore()
    let loader = SnapshotLoader(path: path, stateDirectory: config.snapshot.stateDir, platform: config.platformHosts)
    do {
      try loader.loadAtStart(into: store)
    } catch {
      printError("cannot load a snapshot (\(path), nor a last-known-good copy): \(error)")
      throw ExitCode(1)
    }
    let status = store.status
    if let e = status.lastError {
      logger.error("snapshot source is broken; serving the last-known-good copy", metadata: ["error": "\(e.joined(separator: "; "))"])
    }
    logger.info("snapshot loaded", metadata: ["version": "\(status.version)", "shops": "\(status.shops)", "keys": "\(status.keys)", "source": "\(status.source)"])

    let server = try GatewayServer(config: config, store: store, loader: loader, logger: logger, eventLoops: eventLoops)
    try server.start()

    signal(SIGHUP, SIG_IGN)
    signal(SIGTERM, SIG_IGN)
    signal(SIGINT, SIG_IGN)
    let hup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
    hup.setEventHandler { _ = server.reload() }
    hup.resume()
    let stopQueue = DispatchQueue(label: "stop")
    var stopSources: [DispatchSourceSignal] = []
    for sig in [SIGTERM, SIGINT] {
      let source = DispatchSource.makeSignalSource(signal: sig, queue: stopQueue)
      source.setEventHandler {
        logger.info("stopping", metadata: ["signal": "\(sig)"])
        server.shutdown()
        Foundation.exit(0)
      }
      source.resume()
      stopSources.append(source)
    }
    try server.wait()
    withExtendedLifetime((hup, stopSources)) {}
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
