import Crypto
import Foundation
import GatewayCore

/// One X-Tenant signing key (`tenant_header.signing_keys` entry).
public struct SigningKey: Sendable {
  public enum Material: Sendable {
    /// HMAC-SHA256 shared secret (at least 32 bytes).
    case hs256(SymmetricKey)
    /// Ed25519 private key.
    case eddsa(Curve25519.Signing.PrivateKey)
  }
  public let kid: String
  public let material: Material

  public init(kid: String, material: Material) {
    self.kid = kid
    self.material = material
  }

  /// The JOSE `alg` name.
  public var algorithm: String { jose.rawValue }

  public var jose: JOSEAlgorithm {
    switch material {
    case .hs256: return .hs256
    case .eddsa: return .eddsa
    }
  }

  /// Shortest HS256 secret accepted, in bytes (PRODUCT.md §5).
  public static let minimumSecretBytes = 32

  /// Reads an HS256 secret file: its bytes less trailing whitespace are the key.
  public static func hs256Secret(fileContents: [UInt8]) -> SymmetricKey? {
    var bytes = fileContents[...]
    while let last = bytes.last, last == 0x20 || last == 0x0A || last == 0x0D || last == 0x09 {
      bytes = bytes.dropLast()
    }
    guard bytes.count >= minimumSecretBytes else { return nil }
    return SymmetricKey(data: Array(bytes))
  }
}

/// Writes the JSON claims of one X-Tenant token into a reusable buffer, in a fixed order, with
/// string escaping. Values are appended as bytes straight from the tenant table, with no `String`.
public struct ClaimsWriter {
  @usableFromInline var bytes: [UInt8]
  @usableFromInline var first = true

  /// Takes over `buffer`'s storage (no copy), leaving it empty.
  @inlinable init(taking buffer: inout [UInt8]) {
    bytes = []
    swap(&bytes, &buffer)
    bytes.removeAll(keepingCapacity: true)
    bytes.append(UInt8(ascii: "{"))
  }

  @inlinable mutating func key(_ name: StaticString) {
    if !first { bytes.append(UInt8(ascii: ",")) }
    first = false
    bytes.append(UInt8(ascii: "\""))
    name.withUTF8Buffer { bytes.append(contentsOf: $0) }
    bytes.append(UInt8(ascii: "\""))
    bytes.append(UInt8(ascii: ":"))
  }

  /// Adds a string claim from raw UTF-8 bytes.
  @inlinable public mutating func add(_ name: StaticString, bytes value: UnsafeRawBufferPointer) {
    key(name)
    JSONText.appendQuoted(bytes: value, to: &bytes)
  }

  /// Adds a string claim.
  @inlinable public mutating func add(_ name: StaticString, _ value: String) {
    key(name)
    var v = value
    v.withUTF8 { JSONText.appendQuoted(bytes: $0, to: &bytes) }
  }

  /// Adds a numeric claim.
  @inlinable public mutating func add(_ name: StaticString, int value: Int) {
    key(name)
    if value == 0 {
      bytes.append(UInt8(ascii: "0"))
      return
    }
    var v = value
    if v < 0 {
      bytes.append(UInt8(ascii: "-"))
      v = -v
    }
    let start = bytes.count
    while v > 0 {
      bytes.append(UInt8(ascii: "0") + UInt8(v % 10))
      v /= 10
    }
    // Swapped in place: `bytes[start...].reverse()` copies the array (the slice being mutated
    // shares its storage), one allocation per claim.
    var i = start, j = bytes.count - 1
    while i < j {
      bytes.swapAt(i, j)
      i += 1
      j -= 1
    }
  }

  @inlinable mutating func close() { bytes.append(UInt8(ascii: "}")) }
}

/// Signs X-Tenant tokens (PRODUCT.md §5): JWS compact, `{"alg":…,"kid":…,"typ":"JWT"}` header, the
/// first configured key signing.
///
/// The protected header is encoded once at start-up; per request only the claims are written,
/// base64url-encoded and MACed. One signer per event loop (it owns scratch buffers); the keys are
/// shared and immutable.
public struct TenantTokenSigner {
  public let keys: [SigningKey]
  /// `iss` claim.
  public let issuer: String
  /// Token lifetime: `exp = iat + ttlSeconds`.
  public let ttlSeconds: Int
  @usableFromInline let encodedHeader: [UInt8]
  @usableFromInline let signing: SigningKey
  /// HS256: SHA-256 states after absorbing the key's inner and outer pads (RFC 2104), computed
  /// once. Per token the states are copied and continued, instead of re-deriving them from the key.
  @usableFromInline let innerPad: SHA256?
  @usableFromInline let outerPad: SHA256?
  @usableFromInline var payloadScratch: [UInt8] = []
  @usableFromInline var outScratch: [UInt8] = []

  public init(keys: [SigningKey], issuer: String, ttlSeconds: Int) {
    precondition(!keys.isEmpty, "at least one signing key")
    self.keys = keys
    self.issuer = issuer
    self.ttlSeconds = ttlSeconds
    self.signing = keys[0]
    var header = "{\"alg\":"
    JSONText.appendQuoted(keys[0].algorithm, to: &header)
    header += ",\"kid\":"
    JSONText.appendQuoted(keys[0].kid, to: &header)
    header += ",\"typ\":\"JWT\"}"
    var encoded: [UInt8] = []
    Array(header.utf8).withUnsafeBytes { Base64URL.encode($0, into: &encoded) }
    self.encodedHeader = encoded
    if case .hs256(let key) = keys[0].material {
      var block = key.withUnsafeBytes { Array($0) }
      if block.count > 64 { block = Array(SHA256.hash(data: block)) }
      block += [UInt8](repeating: 0, count: 64 - block.count)
      var inner = SHA256()
      inner.update(data: block.map { $0 ^ 0x36 })
      var outer = SHA256()
      outer.update(data: block.map { $0 ^ 0x5C })
      self.innerPad = inner
      self.outerPad = outer
    } else {
      self.innerPad = nil
      self.outerPad = nil
    }
    payloadScratch.reserveCapacity(512)
    outScratch.reserveCapacity(1024)
  }

  /// Signs the claims written by `write` (after `iss`, which the signer adds itself), and returns the
  /// compact token. `iat` is `now` in seconds since 1970; `exp` follows from the TTL.
  @inlinable
  public mutating func sign(now: Int, _ write: (inout ClaimsWriter) -> Void) -> String {
    var claims = ClaimsWriter(taking: &payloadScratch)
    claims.add("iss", issuer)
    write(&claims)
    claims.add("iat", int: now)
    claims.add("exp", int: now + ttlSeconds)
    claims.close()
    swap(&payloadScratch, &claims.bytes)

    var out: [UInt8] = []
    swap(&out, &outScratch)
    out.removeAll(keepingCapacity: true)
    out.append(contentsOf: encodedHeader)
    out.append(UInt8(ascii: "."))
    payloadScratch.withUnsafeBytes { Base64URL.encode($0, into: &out) }
    switch signing.material {
    case .hs256:
      // HMAC = H(K⊕opad ‖ H(K⊕ipad ‖ m)), continuing the precomputed pad states.
      var inner = innerPad!
      out.withUnsafeBytes { inner.update(bufferPointer: $0) }
      let innerDigest = inner.finalize()
      var outer = outerPad!
      innerDigest.withUnsafeBytes { outer.update(bufferPointer: $0) }
      let mac = outer.finalize()
      out.append(UInt8(ascii: "."))
      mac.withUnsafeBytes { Base64URL.encode($0, into: &out) }
    case .eddsa(let key):
      let signature = out.withUnsafeBytes { (try? key.signature(for: $0)) ?? Data() }
      out.append(UInt8(ascii: "."))
      signature.withUnsafeBytes { Base64URL.encode($0, into: &out) }
    }
    let token = String(decoding: out, as: UTF8.self)
    swap(&out, &outScratch)
    return token
  }
}

/// The public half of the X-Tenant signing keys as a JWKS (RFC 7517, RFC 8037), served at
/// `/.well-known/tenant-jwks.json`. Only EdDSA public keys appear: an HS256 secret is never
/// published, and private key material never leaves the signer.
public enum TenantJWKS {
  public static func document(_ keys: [SigningKey]) -> String {
    var entries: [String] = []
    for key in keys {
      guard case .eddsa(let privateKey) = key.material else { continue }
      var kid = ""
      JSONText.appendQuoted(key.kid, to: &kid)
      let x = Base64URL.encode(Array(privateKey.publicKey.rawRepresentation))
      entries.append(#"{"kty":"OKP","crv":"Ed25519","use":"sig","alg":"EdDSA","kid":\#(kid),"x":"\#(x)"}"#)
    }
    return #"{"keys":["# + entries.joined(separator: ",") + "]}"
  }
}
