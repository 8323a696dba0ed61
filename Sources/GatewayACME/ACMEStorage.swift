import Foundation
import SwiftASN1
import X509

#if canImport(Glibc)
  import Glibc
#endif

/// `tls.acme.storage_dir` (PRODUCT.md §10): the account key, and per domain `<domain>.pem` (the
/// chain) and `<domain>.key`, the layout `tls.custom_domain_certs_dir` reads, so the same loader
/// serves both. Every file is written to a temporary name, fsynced and renamed into place; keys
/// are 0600 from their first byte.
public struct ACMEStorage: Sendable {
  public let directory: String

  public init(directory: String) throws {
    self.directory = directory
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
  }

  public var accountKeyPath: String { path("account.key") }
  /// The registered account URL (`kid`) and the directory it belongs to.
  public var accountURLPath: String { path("account.json") }
  func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
  public func certificatePath(_ domain: String) -> String { path(domain + ".pem") }
  public func keyPath(_ domain: String) -> String { path(domain + ".key") }

  /// The account key, made (and stored, 0600) on first use.
  public func accountKey() throws -> ACMEAccountKey {
    if let pem = try? String(contentsOfFile: accountKeyPath, encoding: .utf8) {
      return try ACMEAccountKey(pem: pem)
    }
    let key = ACMEAccountKey()
    try Self.writeAtomically(Array(key.pemRepresentation.utf8), to: accountKeyPath, mode: 0o600)
    return try ACMEAccountKey(pem: try String(contentsOfFile: accountKeyPath, encoding: .utf8))
  }

  /// The account URL (`kid`) registered with `directoryURL`, if one was.
  public func accountURL(for directoryURL: String) -> String? {
    guard let data = FileManager.default.contents(atPath: accountURLPath),
      let json = try? JSONSerialization.jsonObject(with: data) as? [String: String], json["directory"] == directoryURL
    else { return nil }
    return json["kid"]
  }

  public func saveAccountURL(_ kid: String, for directoryURL: String) throws {
    let data = try JSONSerialization.data(withJSONObject: ["directory": directoryURL, "kid": kid], options: [.sortedKeys])
    try Self.writeAtomically(Array(data), to: accountURLPath, mode: 0o600)
  }

  /// Stores an issued chain and its key. The key goes first: a crash between the two renames
  /// leaves a pair that does not match, which the loader refuses (and the domain is ordered again),
  /// never a certificate served with the wrong key.
  public func store(domain: String, chainPEM: String, keyPEM: String) throws {
    try Self.writeAtomically(Array(keyPEM.utf8), to: keyPath(domain), mode: 0o600)
    try Self.writeAtomically(Array(chainPEM.utf8), to: certificatePath(domain), mode: 0o644)
  }

  /// The stored certificate's validity and issuer, or nil when there is none (or it does not parse).
  public func issued(_ domain: String) -> CertificateScheduler.Issued? {
    guard let pem = try? String(contentsOfFile: certificatePath(domain), encoding: .utf8),
      FileManager.default.fileExists(atPath: keyPath(domain)),
      // The file is the whole chain, leaf first: `Certificate(pemEncoded:)` refuses several documents.
      let first = try? PEMDocument.parseMultiple(pemString: pem).first(where: { $0.discriminator == "CERTIFICATE" }),
      let leaf = try? Certificate(derEncoded: first.derBytes)
    else { return nil }
    return CertificateScheduler.Issued(notBefore: leaf.notValidBefore, notAfter: leaf.notValidAfter, issuer: Self.issuerName(leaf))
  }

  /// Domains with both files (a directory listing, no parsing).
  public func storedDomains() -> [String] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    let keys = Set(names.filter { $0.hasSuffix(".key") }.map { String($0.dropLast(4)) })
    return names.filter { $0.hasSuffix(".pem") }.map { String($0.dropLast(4)) }.filter { keys.contains($0) && $0 != "account" }
  }

  /// The issuer's common name (else its whole name), for `/admin/certificates`.
  public static func issuerName(_ cert: Certificate) -> String {
    for rdn in cert.issuer {
      for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
        return String(describing: attribute.value)
      }
    }
    return cert.issuer.description
  }

  /// Writes `bytes` to `path` through a temporary file (created with `mode`), fsync, rename.
  public static func writeAtomically(_ bytes: [UInt8], to path: String, mode: mode_t) throws {
    let temp = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
    guard fd >= 0 else { throw ACMEError.invalidConfiguration("cannot write \(temp): \(String(cString: strerror(errno)))") }
    var ok = bytes.withUnsafeBytes { buffer -> Bool in
      var offset = 0
      while offset < buffer.count {
        let n = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
        if n < 0 { if errno == EINTR { continue }; return false }
        offset += n
      }
      return true
    }
    ok = ok && fsync(fd) == 0
    close(fd)
    guard ok, rename(temp, path) == 0 else {
      unlink(temp)
      throw ACMEError.invalidConfiguration("cannot write \(path): \(String(cString: strerror(errno)))")
    }
  }
}

/// A per-domain order lock in `storage_dir`, so gateways sharing it order each certificate once.
///
/// `flock` on `<domain>.lock`: the kernel releases it when its holder exits or crashes (and an
/// NFSv4 server when the holder's lease lapses), so a crashed gateway never blocks the domain.
/// The file's contents (holder, taken at, lease) are for people reading the directory; the lock
/// is the `flock`, never the contents, so there is no stale-file takeover race.
public final class DomainLock: @unchecked Sendable {  // the fd is owned by one order
  let fd: Int32
  public let path: String

  /// Takes the lock without waiting; nil when another process holds it.
  public static func tryAcquire(_ storage: ACMEStorage, domain: String, holder: String, lease: TimeInterval) -> DomainLock? {
    let path = storage.path(domain + ".lock")
    let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
    guard fd >= 0 else { return nil }
    guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
      close(fd)
      return nil
    }
    let note = "holder=\(holder) taken_at=\(Int(Date().timeIntervalSince1970)) lease_s=\(Int(lease))\n"
    _ = ftruncate(fd, 0)
    _ = note.withCString { pwrite(fd, $0, strlen($0), 0) }
    return DomainLock(fd: fd, path: path)
  }

  init(fd: Int32, path: String) {
    self.fd = fd
    self.path = path
  }

  private var released = false

  /// Releases the lock (closing the descriptor releases the flock). Once; later calls do nothing.
  public func release() {
    guard !released else { return }
    released = true
    close(fd)
  }

  deinit { release() }
}
