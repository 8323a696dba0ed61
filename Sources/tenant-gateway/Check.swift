import ArgumentParser
import Foundation
import GatewayConfig
import GatewayCore
import GatewayServer
import GatewaySnapshot

struct Check: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Validate gateway.conf, its key and certificate files, and the snapshot (like nginx -t).")

  @OptionGroup var options: ConfigOptions

  func run() throws {
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
