import Foundation
import GatewayConfig
import GatewaySigning
import NIOCore
import NIOPosix

/// What `tenant-gateway check` finds in the files a configuration names, loaded by the same code
/// `serve` loads them with (PRODUCT.md §8: check fails where serve would, naming key path and file).
public enum StartupCheck {
  /// One finding: an error fails `check` (and `serve`), a warning is printed, a note is informative.
  public struct Finding: Sendable, Equatable {
    public enum Severity: String, Sendable { case error, warning, note }
    public var severity: Severity
    /// The key path the finding is about (`tls.certificates[0].key`).
    public var keyPath: String
    public var message: String
  }

  /// A certificate expiring sooner than this is a warning.
  public static let expiryWarning: TimeInterval = 30 * 86400

  /// Loads every certificate, key and secret file of `config` as `serve` would.
  /// `probeListeners`: also try to bind the listen addresses (a warning when one is taken).
  public static func inspect(_ config: GatewayConfig, now: Date = Date(), probeListeners: Bool = true) -> [Finding] {
    var findings: [Finding] = []
    func error(_ path: String, _ message: String) { findings.append(Finding(severity: .error, keyPath: path, message: message)) }
    func warning(_ path: String, _ message: String) { findings.append(Finding(severity: .warning, keyPath: path, message: message)) }

    let profile = TLSProfile(config.tls)
    let fm = FileManager.default
    for (i, pair) in config.tls.certificates.enumerated() {
      let missing = [("cert", pair.cert), ("key", pair.key)].filter { !fm.fileExists(atPath: $0.1) }
      if !missing.isEmpty {
        for (kind, path) in missing {
          if config.tls.generateDevCertificate && i == 0 {
            findings.append(Finding(
              severity: .note, keyPath: "tls.certificates[0].\(kind)",
              message: "\(path) is missing; serve will generate a development certificate"))
          } else {
            error("tls.certificates[\(i)].\(kind)", "\(path) does not exist")
          }
        }
        continue
      }
      do {
        let entry = try CertificateSet.loadEntry(pair, index: i, profile: profile)
        findings += expiryFindings(entry.notAfter, keyPath: "tls.certificates[\(i)].cert", file: pair.cert, now: now)
      } catch let e as ConfigError {
        error(e.path, e.reason)
      } catch let e {
        error("tls.certificates[\(i)]", "\(e)")
      }
      findings += permissionFindings(pair.key, keyPath: "tls.certificates[\(i)].key")
    }
    if let dir = config.tls.customDomainCertsDir {
      var isDirectory: ObjCBool = false
      if !fm.fileExists(atPath: dir, isDirectory: &isDirectory) || !isDirectory.boolValue {
        error("tls.custom_domain_certs_dir", "\(dir) is not a directory")
      }
    }
    do { _ = try SigningKeys.load(config.tenantHeader.signingKeys) } catch let e { error(e.keyPath, e.reason) }
    for (i, spec) in config.tenantHeader.signingKeys.enumerated() {
      findings += permissionFindings(spec.file, keyPath: "tenant_header.signing_keys[\(i)]")
    }
    do { _ = try SessionKeys.load(config.sessions?.verifyKeys ?? []) } catch let e { error(e.keyPath, e.reason) }
    for (i, spec) in (config.sessions?.verifyKeys ?? []).enumerated() where spec.alg == "HS256" {
      findings += permissionFindings(spec.file, keyPath: "sessions.verify_keys[\(i)]")
    }
    if let token = config.admin.tokenFile {
      do { _ = try AdminToken.load(token) } catch { self.error(&findings, "admin.token_file", "\(error)") }
      findings += permissionFindings(token, keyPath: "admin.token_file")
    }
    if probeListeners {
      for (path, address) in [("listen.address", config.listen.address), ("admin.address", config.admin.address)] {
        if let reason = bindProblem(address) {
          warning(path, "\(address) cannot be bound now (\(reason)): serve fails unless it is freed, or is a running gateway of the same user (SO_REUSEPORT)")
        }
      }
    }
    return findings
  }

  private static func error(_ findings: inout [Finding], _ path: String, _ message: String) {
    findings.append(Finding(severity: .error, keyPath: path, message: message))
  }

  /// Expired: an error; expiring within ``expiryWarning``: a warning.
  static func expiryFindings(_ notAfter: Date, keyPath: String, file: String, now: Date) -> [Finding] {
    let day = ISO8601DateFormatter.string(from: notAfter, timeZone: TimeZone(identifier: "UTC")!, formatOptions: [.withFullDate])
    if notAfter <= now {
      return [Finding(severity: .error, keyPath: keyPath, message: "\(file) expired on \(day)")]
    }
    if notAfter.timeIntervalSince(now) < expiryWarning {
      let days = Int(notAfter.timeIntervalSince(now) / 86400)
      return [Finding(severity: .warning, keyPath: keyPath, message: "\(file) expires on \(day), in \(days) days")]
    }
    return []
  }

  /// A secret readable by other users is a warning (`chmod 600`, or 640 with the gateway's group).
  static func permissionFindings(_ file: String, keyPath: String) -> [Finding] {
    var st = stat()
    guard stat(file, &st) == 0 else { return [] }
    guard st.st_mode & S_IROTH != 0 else { return [] }
    let mode = String(st.st_mode & 0o777, radix: 8)
    return [Finding(
      severity: .warning, keyPath: keyPath,
      message: "\(file) is readable by every user (mode \(mode)); a secret should be 0600 or 0640")]
  }

  /// Why `address` cannot be listened on now, or nil. Binds without `SO_REUSEPORT`: joining a
  /// running gateway's port group, even for an instant, could take connections meant for it. So a
  /// gateway already running here counts as taken (and serve can still bind beside it, §8).
  static func bindProblem(_ address: SocketAddressSpec) -> String? {
    do {
      let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
      defer { try? group.syncShutdownGracefully() }
      let channel = try ServerBootstrap(group: group)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .bind(host: address.host, port: address.port).wait()
      try? channel.close().wait()
      return nil
    } catch {
      return BindFailure.describe(error)
    }
  }
}

/// Bind errors as an operator reads them.
public enum BindFailure {
  /// `address already in use`, `permission denied`, … instead of NIO's `bind(descriptor:ptr:bytes:)`.
  public static func describe(_ error: Error) -> String {
    if let e = error as? IOError {
      return String(cString: strerror(e.errnoCode)).lowercased()
    }
    return "\(error)"
  }
}

/// The admin bearer token file (`admin.token_file`).
public enum AdminToken {
  /// The token without trailing whitespace. A configured file that cannot be read, or holds no
  /// token, is an error: starting without it would leave the admin API open.
  public static func load(_ path: String) throws -> [UInt8] {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw SigningKeys.LoadError(keyPath: "admin.token_file", reason: "cannot read \(path)")
    }
    var t = Array(data)[...]
    while let l = t.last, l == 0x0A || l == 0x0D || l == 0x20 || l == 0x09 { t = t.dropLast() }
    guard t.count >= 16 else {
      throw SigningKeys.LoadError(keyPath: "admin.token_file", reason: "\(path) must hold a token of at least 16 bytes")
    }
    return Array(t)
  }
}
