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
    let outcome = ConfigLoader.load(path: options.config, overrides: options.overrides)
    var problems = outcome.errors.map(\.description)
    // Unknown keys are errors here (a typo silently ignored is a bug in production).
    problems += outcome.warnings.filter { $0.hasPrefix("unknown key") }
    for w in outcome.warnings where !w.hasPrefix("unknown key") { print("warning: \(w)") }
    if let config = outcome.config {
      do { _ = try SigningKeys.load(config.tenantHeader.signingKeys) } catch { problems.append("\(error)") }
      do { _ = try SessionKeys.load(config.sessions) } catch { problems.append("\(error)") }
      for (i, pair) in config.tls.certificates.enumerated() {
        for (kind, path) in [("cert", pair.cert), ("key", pair.key)] where !FileManager.default.fileExists(atPath: path) {
          if config.tls.generateDevCertificate && i == 0 {
            print("note: tls.certificates[0].\(kind) \(path) is missing; serve will generate a development certificate")
          } else {
            problems.append("tls.certificates[\(i)].\(kind): \(path) does not exist")
          }
        }
      }
      if let dir = config.tls.customDomainCertsDir {
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory) || !isDirectory.boolValue {
          problems.append("tls.custom_domain_certs_dir: \(dir) is not a directory")
        }
      }
      if let path = config.snapshot.path {
        let loader = SnapshotLoader(path: path, stateDirectory: config.snapshot.stateDir, platform: config.platformHosts)
        do {
          let table = try loader.loadFile(path)
          print("snapshot \(path): version \(table.version), \(table.shopCount) shops, \(table.customDomainCount) custom domains, \(table.keyCount) live keys")
        } catch {
          problems.append(contentsOf: error.messages.map { "snapshot \(path): \($0)" })
        }
      }
    }
    if problems.isEmpty {
      print("\(options.config): configuration OK")
      return
    }
    for p in problems { printError("\(options.config): \(p)") }
    throw ExitCode(1)
  }
}

struct Keys: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "API key helpers.", subcommands: [Hash.self])

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
