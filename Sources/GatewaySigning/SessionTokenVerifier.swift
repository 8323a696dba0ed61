import Crypto
import Foundation
import GatewayCore

/// A key that verifies session and customer tokens (`sessions.verify_keys`). The algorithm belongs
/// to the key: a token's `alg` header must name it, so `none`, or HS256 computed with a public key
/// as the secret (the classic alg-confusion attack), never verify.
public struct VerifyKey: Sendable {
  public enum Material: Sendable {
    case hs256(SymmetricKey)
    case es256(P256.Signing.PublicKey)
    case eddsa(Curve25519.Signing.PublicKey)
  }
  public let kid: String
  public let material: Material

  public init(kid: String, material: Material) {
    self.kid = kid
    self.material = material
  }

  /// The JOSE `alg` name a token's header must carry.
  public var algorithm: String { jose.rawValue }

  public var jose: JOSEAlgorithm {
    switch material {
    case .hs256: return .hs256
    case .es256: return .es256
    case .eddsa: return .eddsa
    }
  }

  public enum LoadError: Error, CustomStringConvertible {
    case unreadable(String)
    case invalid(String)
    public var description: String {
      switch self {
      case .unreadable(let m), .invalid(let m): return m
      }
    }
  }

  /// Loads a key file: an HS256 secret (≥ 32 bytes, trailing whitespace dropped), or a PEM public key
  /// (`-----BEGIN PUBLIC KEY-----`, SubjectPublicKeyInfo) for ES256 (P-256) or EdDSA (Ed25519).
  public static func load(kid: String, alg: String, file: String) throws(LoadError) -> VerifyKey {
    guard let data = FileManager.default.contents(atPath: file) else { throw .unreadable("cannot read \(file)") }
    guard let algorithm = JOSEAlgorithm(rawValue: alg) else {
      throw .invalid("algorithm \(alg) is not supported (\(JOSEAlgorithm.allCases.map(\.rawValue).joined(separator: ", ")))")
    }
    switch algorithm {
    case .hs256:
      guard let key = SigningKey.hs256Secret(fileContents: Array(data)) else {
        throw .invalid("\(file): an HS256 secret needs at least \(SigningKey.minimumSecretBytes) bytes")
      }
      return VerifyKey(kid: kid, material: .hs256(key))
    case .es256:
      guard let pem = String(data: data, encoding: .utf8), let key = try? P256.Signing.PublicKey(pemRepresentation: pem) else {
        throw .invalid("\(file): not a PEM P-256 public key")
      }
      return VerifyKey(kid: kid, material: .es256(key))
    case .eddsa:
      guard let pem = String(data: data, encoding: .utf8), let der = PEM.decode(pem, label: "PUBLIC KEY"),
        der.count == 44, der.prefix(12).elementsEqual(PEM.ed25519SPKIPrefix),
        let key = try? Curve25519.Signing.PublicKey(rawRepresentation: der.suffix(32))
      else { throw .invalid("\(file): not a PEM Ed25519 public key") }
      return VerifyKey(kid: kid, material: .eddsa(key))
    }
  }

  /// Verifies a JWS signature over `input` with this key.
  func isValid(signature: [UInt8], for input: ArraySlice<UInt8>) -> Bool {
    switch material {
    case .hs256(let key):
      return HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: input, using: key)
    case .es256(let key):
      // JWS ES256 signatures are r ‖ s, 64 bytes (RFC 7518 §3.4), not DER.
      guard signature.count == 64, let sig = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
      return key.isValidSignature(sig, for: input)
    case .eddsa(let key):
      return key.isValidSignature(signature, for: input)
    }
  }
}

/// PEM helpers for the few key formats the gateway reads.
public enum PEM {
  /// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): SEQ { SEQ { OID 1.3.101.112 } BIT STRING }.
  static let ed25519SPKIPrefix: [UInt8] = [0x30, 0x2A, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x03, 0x21, 0x00]
  /// DER prefix of an Ed25519 PKCS#8 private key (RFC 8410 §7).
  public static let ed25519PKCS8Prefix: [UInt8] = [
    0x30, 0x2E, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
  ]

  /// The DER bytes of the first `-----BEGIN <label>-----` block.
  public static func decode(_ pem: String, label: String) -> [UInt8]? {
    guard let begin = pem.range(of: "-----BEGIN \(label)-----"), let end = pem.range(of: "-----END \(label)-----"),
      begin.upperBound <= end.lowerBound
    else { return nil }
    let body = pem[begin.upperBound..<end.lowerBound].filter { !$0.isWhitespace }
    return Data(base64Encoded: String(body)).map { Array($0) }
  }
}

/// Verifies session cookies and customer tokens (PRODUCT.md §2): signature by `kid` with the key's
/// own algorithm, `iss`, `exp`/`nbf` with 30 s leeway, and the `sub` and `shop_id` claims.
///
/// One per event loop: it keeps a bounded LRU of verified tokens keyed by the token's SHA-256, so a
/// browser's repeated requests verify once; an entry is never used past the token's `exp`. Failed
/// tokens are not cached (an attacker cannot fill the cache with garbage).
public struct SessionTokenVerifier: SessionVerifying {
  public let keys: [String: VerifyKey]
  public let issuer: String
  /// Clock skew tolerated on `exp` and `nbf`, in seconds.
  public static let leeway = 30
  /// Returns "now" in seconds since 1970 (injectable for tests).
  let now: () -> Int
  var cache: TokenCache

  public init(keys: [VerifyKey], issuer: String, cacheCapacity: Int = 10_000, now: @escaping () -> Int = { Int(Date().timeIntervalSince1970) }) {
    var byKid: [String: VerifyKey] = [:]
    for k in keys { byKid[k.kid] = k }
    self.keys = byKid
    self.issuer = issuer
    self.now = now
    self.cache = TokenCache(capacity: cacheCapacity)
  }

  public mutating func verify(_ token: String) -> VerifiedToken? {
    let t = now()
    let digest = KeyDigest.of(key: token)
    if let hit = cache.get(digest) {
      if t <= hit.expires + Self.leeway { return hit }
      cache.remove(digest)
    }
    guard let verified = verifyUncached(token, now: t) else { return nil }
    cache.put(digest, verified)
    return verified
  }

  /// Full verification, no cache.
  public func verifyUncached(_ token: String, now t: Int) -> VerifiedToken? {
    let bytes = Array(token.utf8)
    guard bytes.count <= 8192 else { return nil }
    guard let firstDot = bytes.firstIndex(of: UInt8(ascii: ".")),
      let secondDot = bytes[(firstDot + 1)...].firstIndex(of: UInt8(ascii: "."))
    else { return nil }
    let headerPart = String(decoding: bytes[..<firstDot], as: UTF8.self)
    let payloadPart = String(decoding: bytes[(firstDot + 1)..<secondDot], as: UTF8.self)
    let signaturePart = String(decoding: bytes[(secondDot + 1)...], as: UTF8.self)
    guard let headerJSON = Base64URL.decode(headerPart), let payloadJSON = Base64URL.decode(payloadPart),
      let signature = Base64URL.decode(signaturePart),
      let header = (try? JSONSerialization.jsonObject(with: Data(headerJSON))) as? [String: Any],
      let alg = header["alg"] as? String
    else { return nil }
    // The key decides the algorithm; a kid is required unless exactly one key is configured.
    let key: VerifyKey
    if let kid = header["kid"] as? String {
      guard let k = keys[kid] else { return nil }
      key = k
    } else {
      guard keys.count == 1, let only = keys.values.first else { return nil }
      key = only
    }
    guard alg == key.algorithm else { return nil }
    guard key.isValid(signature: signature, for: bytes[..<secondDot]) else { return nil }
    guard let claims = (try? JSONSerialization.jsonObject(with: Data(payloadJSON))) as? [String: Any],
      claims["iss"] as? String == issuer,
      let exp = Self.integer(claims["exp"]), t <= exp + Self.leeway,
      let sub = claims["sub"] as? String, !sub.isEmpty,
      let shopID = claims["shop_id"] as? String, !shopID.isEmpty
    else { return nil }
    if let nbfValue = claims["nbf"] {
      guard let nbf = Self.integer(nbfValue), t + Self.leeway >= nbf else { return nil }
    }
    return VerifiedToken(subject: sub, shopID: shopID, expires: exp)
  }

  /// NumericDate (RFC 7519 §2): a JSON number; fractions are allowed and truncated. (A boolean
  /// would read as 0 or 1 here: long expired, so it fails the check that follows.)
  static func integer(_ value: Any?) -> Int? {
    guard let n = value as? NSNumber else { return nil }
    let d = n.doubleValue
    guard d.isFinite, abs(d) < 1e15 else { return nil }
    return Int(d)
  }
}

/// A bounded least-recently-used map from a token's digest to its verified claims.
struct TokenCache {
  let capacity: Int
  private var index: [KeyDigest: Int] = [:]
  private var keys: [KeyDigest] = []
  private var values: [VerifiedToken] = []
  private var prev: [Int] = []
  private var next: [Int] = []
  private var head = -1  // most recent
  private var tail = -1  // least recent
  private var free: [Int] = []

  init(capacity: Int) { self.capacity = max(1, capacity) }

  var count: Int { index.count }

  mutating func get(_ k: KeyDigest) -> VerifiedToken? {
    guard let i = index[k] else { return nil }
    moveToFront(i)
    return values[i]
  }

  mutating func put(_ k: KeyDigest, _ v: VerifiedToken) {
    if let i = index[k] {
      values[i] = v
      moveToFront(i)
      return
    }
    if index.count >= capacity, tail >= 0 { remove(keys[tail]) }
    let i: Int
    if let f = free.popLast() {
      i = f
      keys[i] = k
      values[i] = v
    } else {
      i = keys.count
      keys.append(k)
      values.append(v)
      prev.append(-1)
      next.append(-1)
    }
    index[k] = i
    link(i)
  }

  mutating func remove(_ k: KeyDigest) {
    guard let i = index.removeValue(forKey: k) else { return }
    unlink(i)
    free.append(i)
  }

  private mutating func link(_ i: Int) {
    prev[i] = -1
    next[i] = head
    if head >= 0 { prev[head] = i }
    head = i
    if tail < 0 { tail = i }
  }

  private mutating func unlink(_ i: Int) {
    if prev[i] >= 0 { next[prev[i]] = next[i] } else { head = next[i] }
    if next[i] >= 0 { prev[next[i]] = prev[i] } else { tail = prev[i] }
  }

  private mutating func moveToFront(_ i: Int) {
    guard head != i else { return }
    unlink(i)
    link(i)
  }
}
