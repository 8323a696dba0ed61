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
  }
  let entries: [Entry]

  /// Loads every `tls.certificates` entry. The first is the default certificate.
  init(config: GatewayConfig.TLS) throws {
    let profile = TLSProfile(config)
    var entries: [Entry] = []
    for pair in config.certificates {
      let chain = try NIOSSLCertificate.fromPEMFile(pair.cert)
      guard !chain.isEmpty else { throw ConfigError(path: "tls.certificates", reason: "\(pair.cert) holds no certificate") }
      let key = try NIOSSLPrivateKey(file: pair.key, format: .pem)
      let context = try NIOSSLContext(configuration: profile.serverConfiguration(chain: chain, key: key))
      let names = try Self.names(ofLeafIn: pair.cert)
      entries.append(Entry(names: CertificateNames(names: names), context: context, certPath: pair.cert))
    }
    self.entries = entries
  }

  /// DNS names of a PEM file's first certificate: its subjectAltName DNS entries, else its CN.
  static func names(ofLeafIn path: String) throws -> [String] {
    let pem = try String(contentsOfFile: path, encoding: .utf8)
    let docs = try PEMDocument.parseMultiple(pemString: pem).filter { $0.discriminator == "CERTIFICATE" }
    guard let first = docs.first else { return [] }
    let cert = try Certificate(pemDocument: first)
    var names: [String] = []
    if let san = try cert.extensions.subjectAlternativeNames {
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
