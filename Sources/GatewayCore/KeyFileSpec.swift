/// One key file of the config (`tenant_header.signing_keys[i]`, `sessions.verify_keys[i]`): its
/// `kid`, algorithm and path. Read by the key ring (GatewaySigning), written by the config loader.
public struct KeyFileSpec: Sendable, Equatable {
  public var kid: String
  /// `HS256`, `EdDSA` or `ES256`.
  public var alg: String
  /// Absolute path of the secret, private or public key file.
  public var file: String

  public init(kid: String, alg: String, file: String) {
    self.kid = kid
    self.alg = alg
    self.file = file
  }
}
