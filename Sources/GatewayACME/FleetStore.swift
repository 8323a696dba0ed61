import Foundation

/// Where pending challenges are mirrored so that any member of a fleet can answer the CA's
/// validation, not only the one that placed the order (PRODUCT.md §10 "A fleet"). `name` is
/// ``ChallengeResponder/fileName(type:key:)``: `tls-alpn-01.<domain>` or `http-01.<token>`.
public protocol ChallengeMirror: Sendable {
  /// Stores the challenge; done before the CA is told to validate.
  func publish(name: String, domain: String, keyAuthorization: String) async throws
  func withdraw(name: String) async
  /// A pending challenge another member published; nil when there is none (or it is a leftover).
  func read(name: String) async -> (domain: String, keyAuthorization: String)?
}

/// A member's hold on a domain's order; released when the order ends (or the member dies).
public protocol ACMEFleetLock: Sendable {
  func release() async
}

/// What a fleet without a shared volume keeps in one place (the PostgreSQL storage,
/// `tenant_gateway.certificates`): the certificates, the account key, the per-domain order lock,
/// and the pending challenges. `storage_dir` is then each member's own cache, which the TLS
/// listener serves from.
public protocol ACMEFleetStore: ChallengeMirror {
  /// Takes the domain's order lock without waiting; nil when another member holds it.
  func tryLock(domain: String) async throws -> ACMEFleetLock?
  func certificate(domain: String) async throws -> IssuedCertificate?
  /// Every certificate (at start, to fill the local cache).
  func allCertificates() async throws -> [IssuedCertificate]
  func save(_ certificate: IssuedCertificate, notAfter: Date, issuer: String) async throws
  /// The fleet's account key for `directoryURL`: the stored one, or `proposed` if none was stored
  /// yet (whoever stores first wins, and every member then uses that one).
  func accountKey(directoryURL: String, proposed: String) async throws -> String
  /// Human-readable, for logs (never a password).
  var description: String { get }
}

/// ``ChallengeMirror`` over a directory shared by the fleet (`storage_dir/challenges`): one 0600
/// file per challenge, written atomically; a file older than ``lifetime`` is a crashed holder's
/// leftover and is ignored.
public struct FileChallengeMirror: ChallengeMirror {
  public let directory: String
  public static let lifetime: TimeInterval = 3600

  public init(directory: String) {
    self.directory = directory
    try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
  }

  func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }

  public func publish(name: String, domain: String, keyAuthorization: String) async throws {
    try ACMEStorage.writeAtomically(Array("\(domain)\n\(keyAuthorization)\n".utf8), to: path(name), mode: 0o600)
  }

  public func withdraw(name: String) async { unlink(path(name)) }

  public func read(name: String) async -> (domain: String, keyAuthorization: String)? {
    let file = path(name)
    guard let attributes = try? FileManager.default.attributesOfItem(atPath: file),
      let modified = attributes[.modificationDate] as? Date, Date().timeIntervalSince(modified) < Self.lifetime,
      let text = try? String(contentsOfFile: file, encoding: .utf8)
    else { return nil }
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    guard lines.count >= 2, !lines[0].isEmpty, !lines[1].isEmpty else { return nil }
    return (String(lines[0]), String(lines[1]))
  }
}
