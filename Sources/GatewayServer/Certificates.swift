import Crypto
import Foundation
import GatewayConfig
import GatewayCore
import NIOCore
import NIOSSL
import SwiftASN1
import X509

/// The host names one certificate covers: exact names and `*.suffix` wildcards (one label).
struct CertificateNames: Sendable {
  let exact: Set<String>
  /// Wildcard suffixes with their leading dot, e.g. `.platform.localhost`.
  let wildcardSuffixes: [String]

  init(names: [String]) {
    var exact = Set<String>()
    var wild: [String] = []
    for n in names.map({ $0.lowercased() }) {
      if n.hasPrefix("*.") { wild.append(String(n.dropFirst())) } else { exact.insert(n) }
    }
    self.exact = exact
    self.wildcardSuffixes = wild
  }

  /// True when a normalised host is covered (RFC 6125 §6.4.3: a wildcard stands for one label).
  func covers(_ host: String) -> Bool {
    if exact.contains(host) { return true }
    return coveredByWildcard(host)
  }

  func coveredByWildcard(_ host: String) -> Bool {
    // Bytes, not Characters: both sides are normalised ASCII, and this runs on every request.
    let h = host.utf8
    let hostCount = h.count
    for suffix in wildcardSuffixes {
      let s = suffix.utf8
      let labelLength = hostCount - s.count
      guard labelLength > 0 else { continue }
      let labelEnd = h.index(h.startIndex, offsetBy: labelLength)
      guard h[labelEnd...].elementsEqual(s) else { continue }
      if !h[..<labelEnd].contains(UInt8(ascii: ".")) { return true }
    }
    return false
  }
}

/// The configured certificates, one TLS context each, and SNI selection among them (PRODUCT.md §2).
final class CertificateSet: Sendable {
  struct Entry: Sendable {
    let names: CertificateNames
    let context: NIOSSLContext
    let certPath: String
    /// The leaf's expiry.
    let notAfter: Date
  }
  let entries: [Entry]

  /// Loads every `tls.certificates` entry (``loadEntry(_:index:profile:)``). The first is the default.
  init(config: GatewayConfig.TLS) throws {
    let profile = TLSProfile(config)
    self.entries = try config.certificates.enumerated().map { try Self.loadEntry($1, index: $0, profile: profile) }
  }

  /// Loads one `tls.certificates[i]` pair as `serve` uses it, and as `check` checks it: the chain
  /// parsed, the key parsed and matched to the leaf, a TLS context built. Errors name the key path
  /// and the file.
  static func loadEntry(_ pair: GatewayConfig.CertificatePair, index i: Int, profile: TLSProfile) throws -> Entry {
    let certKey = "tls.certificates[\(i)].cert"
    let keyKey = "tls.certificates[\(i)].key"
    let leaf: Certificate
    let chain: [NIOSSLCertificate]
    do {
      let pem = try String(contentsOfFile: pair.cert, encoding: .utf8)
      let docs = try PEMDocument.parseMultiple(pemString: pem).filter { $0.discriminator == "CERTIFICATE" }
      guard let first = docs.first else { throw ConfigError(path: certKey, reason: "\(pair.cert) holds no PEM certificate") }
      leaf = try Certificate(pemDocument: first)
      chain = try NIOSSLCertificate.fromPEMFile(pair.cert)
    } catch let e as ConfigError {
      throw e
    } catch {
      throw ConfigError(path: certKey, reason: "\(pair.cert) is not a readable PEM certificate chain (\(Self.describe(error)))")
    }
    let privateKey: Certificate.PrivateKey
    let key: NIOSSLPrivateKey
    do {
      let pem = try String(contentsOfFile: pair.key, encoding: .utf8)
      privateKey = try Certificate.PrivateKey(pemEncoded: pem)
      key = try NIOSSLPrivateKey(file: pair.key, format: .pem)
    } catch {
      throw ConfigError(path: keyKey, reason: "\(pair.key) is not a readable PEM private key (\(Self.describe(error)))")
    }
    guard privateKey.publicKey == leaf.publicKey else {
      throw ConfigError(path: keyKey, reason: "\(pair.key) does not match the certificate in \(pair.cert) (its public key differs)")
    }
    let context: NIOSSLContext
    do {
      context = try NIOSSLContext(configuration: profile.serverConfiguration(chain: chain, key: key))
    } catch {
      throw ConfigError(path: certKey, reason: "\(pair.cert) with \(pair.key): the TLS library refused them (\(Self.describe(error)))")
    }
    return Entry(names: CertificateNames(names: Self.names(of: leaf)), context: context, certPath: pair.cert, notAfter: leaf.notValidAfter)
  }

  /// A file-level reason (missing, unreadable) or what the parser said, in a few words.
  static func describe(_ error: Error) -> String {
    if let e = error as? CocoaError, e.code == .fileReadNoSuchFile { return "no such file" }
    if let e = error as? CocoaError, e.code == .fileReadNoPermission { return "permission denied" }
    if let e = error as? CocoaError, e.code == .fileReadInapplicableStringEncoding { return "not text" }
    let text = "\(error)"
    if text.contains("PEM start marker") || text.contains("invalidPEMDocument") { return "no PEM block found" }
    if text.contains("discriminator") { return "not a PKCS#8, SEC1 or RSA key" }
    return text.split(separator: "\n").first.map(String.init) ?? text
  }

  /// DNS names of a PEM file's first certificate: its subjectAltName DNS entries, else its CN.
  static func names(ofLeafIn path: String) throws -> [String] {
    let pem = try String(contentsOfFile: path, encoding: .utf8)
    let docs = try PEMDocument.parseMultiple(pemString: pem).filter { $0.discriminator == "CERTIFICATE" }
    guard let first = docs.first else { return [] }
    return names(of: try Certificate(pemDocument: first))
  }

  /// DNS names of a certificate: its subjectAltName DNS entries, else its CN.
  static func names(of cert: Certificate) -> [String] {
    var names: [String] = []
    if let san = try? cert.extensions.subjectAlternativeNames {
      for name in san { if case .dnsName(let d) = name { names.append(d) } }
    }
    if names.isEmpty {
      for rdn in cert.subject { for attr in rdn where attr.type == .RDNAttributeType.commonName { names.append("\(attr.value)") } }
    }
    return names
  }

  /// The configured certificate covering a normalised name (exact first, then wildcard), if any.
  func match(_ name: String) -> Int? {
    if let i = entries.firstIndex(where: { $0.names.exact.contains(name) }) { return i }
    return entries.firstIndex(where: { $0.names.coveredByWildcard(name) })
  }
}

/// The development certificate of `tls.generate_dev_certificate` (PRODUCT.md §7).
public enum DevelopmentCertificate {
  /// Writes a self-signed P-256 certificate for `names` to `certPath` and its key to `keyPath`.
  public static func generate(names: [String], certPath: String, keyPath: String) throws {
    let key = P256.Signing.PrivateKey()
    let subject = try DistinguishedName {
      CommonName("tenant-gateway development certificate")
      OrganizationName("tenant-gateway (development only)")
    }
    let now = Date()
    let extensions = try Certificate.Extensions {
      Critical(BasicConstraints.notCertificateAuthority)
      Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
      try ExtendedKeyUsage([.serverAuth])
      SubjectAlternativeNames(names.map { GeneralName.dnsName($0) })
    }
    let cert = try Certificate(
      version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
      notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(90 * 86400),
      issuer: subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions,
      issuerPrivateKey: .init(key))
    let certPEM = try cert.serializeAsPEM().pemString
    for path in [certPath, keyPath] {
      try FileManager.default.createDirectory(
        atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    }
    try Data((certPEM + "\n").utf8).write(to: URL(fileURLWithPath: certPath), options: .atomic)
    _ = FileManager.default.createFile(
      atPath: keyPath, contents: Data((key.pemRepresentation + "\n").utf8), attributes: [.posixPermissions: 0o600])
  }

  /// The names the shipped configuration's development certificate covers.
  public static func names(for platform: GatewayConfig.Platform) -> [String] {
    var names = platform.apiHosts + platform.dashboardHosts + ["*." + platform.domain, platform.domain]
    var seen = Set<String>()
    names = names.filter { seen.insert($0).inserted }
    return names
  }
}
