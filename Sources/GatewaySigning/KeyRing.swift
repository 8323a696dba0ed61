import Crypto
import GatewayCore

// The key ring: the config's key files read into keys, with errors that name the key path and the
// file. Here rather than in the server so that everything about keys lives with the keys.

/// Loads `sessions.verify_keys` (PRODUCT.md §2); none (no `sessions`): no keys.
public enum SessionKeys {
  public static func load(_ specs: [KeyFileSpec]) throws(SigningKeys.LoadError) -> [VerifyKey] {
    try specs.enumerated().map { (i, spec) throws(SigningKeys.LoadError) in
      do {
        return try VerifyKey.load(kid: spec.kid, alg: spec.alg, file: spec.file)
      } catch {
        throw SigningKeys.LoadError(keyPath: "sessions.verify_keys[\(i)]", reason: "\(error)")
      }
    }
  }
}

/// Loads `tenant_header.signing_keys` (PRODUCT.md §5).
public enum SigningKeys {
  public struct LoadError: Error, CustomStringConvertible {
    /// The key path, `tenant_header.signing_keys[0]`.
    public var keyPath: String
    /// What is wrong, naming the file.
    public var reason: String
    public var description: String { "\(keyPath): \(reason)" }

    public init(keyPath: String, reason: String) {
      self.keyPath = keyPath
      self.reason = reason
    }
  }

  public static func load(_ specs: [KeyFileSpec]) throws(LoadError) -> [SigningKey] {
    try specs.enumerated().map { (i, spec) throws(LoadError) in
      let path = "tenant_header.signing_keys[\(i)]"
      let bytes: [UInt8]
      do { bytes = try FileBytes.read(spec.file) } catch {
        throw LoadError(keyPath: path, reason: "cannot read \(spec.file): \(error)")
      }
      switch JOSEAlgorithm(rawValue: spec.alg) {
      case .hs256:
        guard let key = SigningKey.hs256Secret(fileContents: bytes) else {
          throw LoadError(keyPath: path, reason: "\(spec.file) must hold at least \(SigningKey.minimumSecretBytes) bytes (less trailing whitespace)")
        }
        return SigningKey(kid: spec.kid, material: .hs256(key))
      case .eddsa:
        // PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), as `openssl genpkey -algorithm ed25519` writes it.
        guard let pem = String(bytes: bytes, encoding: .utf8), let der = PEM.decode(pem, label: "PRIVATE KEY"),
          der.count == 48, der.prefix(16).elementsEqual(PEM.ed25519PKCS8Prefix),
          let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: der.suffix(32))
        else {
          throw LoadError(keyPath: path, reason: "\(spec.file) is not a PKCS#8 PEM Ed25519 private key")
        }
        return SigningKey(kid: spec.kid, material: .eddsa(key))
      case .es256, nil:
        // ES256 verifies session tokens; X-Tenant is signed with HS256 or EdDSA only (PRODUCT.md §5).
        throw LoadError(keyPath: path, reason: "alg \(spec.alg) is not supported yet")
      }
    }
  }
}
