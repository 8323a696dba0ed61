import ArgumentParser
import Foundation
import GatewayConfig
import GatewayCore
import GatewayPostgres
import GatewayServer
import Logging
import GatewaySnapshot

struct Check: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Validate gateway.conf, its key and certificate files, and the snapshot (like nginx -t).")

  @OptionGroup var options: ConfigOptions

  func run() async throws {
    let file = options.config
    let outcome = ConfigLoader.load(path: file, overrides: options.overrides)
    var problems = outcome.errors.map { $0.message(file: file) }
    // Unknown keys are errors here (a typo silently ignored is a bug in production).
    for w in outcome.warnings {
      if w.hasPrefix("unknown key") { problems.append("\(file): \(w)") } else { print("warning: \(w)") }
    }
    if let config = outcome.config {
      // The same loaders serve uses, finding by finding.
      for f in StartupCheck.inspect(config) {
        let line = "\(outcome.origin(of: f.keyPath, file: file)): \(f.keyPath): \(f.message)"
        switch f.severity {
        case .error: problems.append(line)
        case .warning: print("warning: \(line)")
        case .note: print("note: \(line)")
        }
      }
      if let path = config.snapshot.path {
        let loader = SnapshotLoader(path: path, stateDirectory: config.snapshot.stateDir, platform: config.platformHosts)
        do {
          let table = try loader.loadFile(path)
          print("snapshot \(path): version \(table.version), \(table.shopCount) shops, \(table.customDomainCount) custom domains, \(table.keyCount) live keys")
        } catch {
          problems.append(contentsOf: error.messages.map { "\(outcome.origin(of: "snapshot.path", file: file)): snapshot.path: \(path): \($0)" })
        }
      }
      if let pg = config.snapshot.postgres {
        // Connects and reads both views as serve would.
        let origin = outcome.origin(of: "snapshot.postgres.url", file: file)
        do {
          let password = try PostgresSettings.password(pg)
          var quiet = Logger(label: "check")
          quiet.logLevel = .critical
          switch await PostgresSource.probe(PostgresSettings.resolve(pg, password: password), platform: config.platformHosts, logger: quiet) {
          case .success(let read):
            print("postgres \(PostgresSettings.resolve(pg, password: nil).displayName): read in \(String(format: "%.2f", read.seconds)) s: \(read.table.shopCount) shops, \(read.table.customDomainCount) custom domains, \(read.table.keyCount) live keys, outbox seq \(read.seq)")
            for r in read.refusals.prefix(20) {
              print("warning: \(origin): \(r.entity.rawValue) \(r.id) refused: \(r.reasons.joined(separator: "; "))")
            }
          case .failure(let e):
            problems.append("\(origin): snapshot.postgres.url: cannot read the database: \(e)")
          }
        } catch {
          problems.append("\(origin): \(error)")
        }
      }
    }
    if problems.isEmpty {
      print("\(file): configuration OK")
      return
    }
    for p in problems { printError(p) }
    throw ExitCode(1)
  }
}

struct Keys: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "API key helpers and edits.", subcommands: [Hash.self, Add.self, Revoke.self])

  struct Hash: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the sha256 (lower-case hex) of a key read from stdin, as the snapshot stores it.")
    func run() throws {
      let data = FileHandle.standardInput.readDataToEndOfFile()
      var key = String(decoding: data, as: UTF8.self)
      while key.hasSuffix("\n") || key.hasSuffix("\r") { key.removeLast() }
      print(KeyDigest.of(key: key).hex)
    }
  }
}
