import ArgumentParser
import Foundation
import GatewayACME
import GatewayConfig
import GatewayCore

/// `certs list|status HOST` (PRODUCT.md §10): what ACME holds for the custom domains. With a gateway
/// running it asks `GET /admin/certificates`; without one it reads `tls.acme.storage_dir`, which
/// shows what is stored but not what the table makes eligible (that needs the running gateway).
struct Certs: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Certificates ACME holds for custom domains: state, issuer, expiry, last error.",
    subcommands: [List.self, Status.self])

  struct Row {
    var domain: String
    var state: String
    var issuer: String?
    var notAfter: String?
    var lastError: String?
    var nextAttemptAt: String?

    init(json: [String: Any]) {
      domain = json["domain"] as? String ?? ""
      state = json["state"] as? String ?? ""
      issuer = json["issuer"] as? String
      notAfter = json["notAfter"] as? String
      lastError = json["lastError"] as? String
      nextAttemptAt = json["nextAttemptAt"] as? String
    }

    init(stored domain: String, _ issued: CertificateScheduler.Issued?, exists: Bool) {
      self.domain = domain
      if let issued {
        state = issued.notAfter > Date() ? "stored" : "expired"
        issuer = issued.issuer
        notAfter = ISO8601DateFormatter().string(from: issued.notAfter)
      } else {
        state = exists ? "unreadable" : "absent"
      }
    }

    var line: String {
      var s = "\(domain)\t\(state)\t\(notAfter ?? "-")\t\(issuer ?? "-")"
      if let lastError { s += "\tlast error: \(lastError)" }
      if let nextAttemptAt { s += "\tnext attempt: \(nextAttemptAt)" }
      return s
    }
  }

  /// The rows from the running gateway, or nil when none answers.
  static func fromGateway(_ config: GatewayConfig, host: String?) throws -> [Row]? {
    let admin = AdminConnection(config: config)
    guard admin.isAnswering else { return nil }
    var path = "/admin/certificates"
    if let host { path += "?host=" + (host.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? host) }
    let (status, body) = try admin.request("GET", path)
    let json = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
    guard status == 200, let json else {
      let message = ((json?["error"] as? [String: Any])?["message"] as? String) ?? "HTTP \(status): \(body)"
      throw CommandFailure(message)
    }
    if host != nil { return [Row(json: json)] }
    return (json["certificates"] as? [[String: Any]] ?? []).map(Row.init(json:))
  }

  static func fromStorage(_ config: GatewayConfig, host: String?) throws -> [Row] {
    guard let acme = config.tls.acme else { throw CommandFailure("tls.acme.directory_url is not set: the gateway orders no certificates") }
    guard FileManager.default.fileExists(atPath: acme.storageDir) else { return [] }
    let storage = try ACMEStorage(directory: acme.storageDir)
    let names = host.map { [$0] } ?? storage.storedDomains().sorted()
    return names.map { Row(stored: $0, storage.issued($0), exists: FileManager.default.fileExists(atPath: storage.certificatePath($0))) }
  }

  struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Every domain: state, notAfter, issuer (tab-separated).")
    @OptionGroup var options: ConfigOptions
    func run() throws {
      let config = try loadConfig(options)
      let rows: [Row]
      if let live = try Certs.fromGateway(config, host: nil) {
        rows = live
      } else {
        printError("no gateway answers on \(config.admin.address): listing \(config.tls.acme?.storageDir ?? "storage_dir") (no eligibility)")
        rows = try Certs.fromStorage(config, host: nil)
      }
      for r in rows { print(r.line) }
    }
  }

  struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "One domain's state; exits 1 unless it has a certificate being served (valid or renewing).")
    @OptionGroup var options: ConfigOptions
    @Argument(help: "The custom domain.") var host: String
    func run() throws {
      let config = try loadConfig(options)
      guard let name = HostName.normalize(host) else { throw CommandFailure("\(host) is not a valid host name") }
      let row: Row
      if let live = try Certs.fromGateway(config, host: name), let first = live.first {
        row = first
      } else {
        printError("no gateway answers on \(config.admin.address): reading \(config.tls.acme?.storageDir ?? "storage_dir")")
        guard let stored = try Certs.fromStorage(config, host: name).first else { throw ExitCode(1) }
        row = stored
      }
      print("domain:        \(row.domain)")
      print("state:         \(row.state)")
      print("issuer:        \(row.issuer ?? "-")")
      print("notAfter:      \(row.notAfter ?? "-")")
      if let e = row.lastError { print("lastError:     \(e)") }
      if let t = row.nextAttemptAt { print("nextAttemptAt: \(t)") }
      if !["valid", "renewing", "stored"].contains(row.state) { throw ExitCode(1) }
    }
  }
}
