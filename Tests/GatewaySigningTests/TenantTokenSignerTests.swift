import Crypto
import Foundation
import JWTKit
import Testing

@testable import GatewaySigning

/// The claims jwt-kit decodes an X-Tenant into.
struct TenantClaims: JWTPayload {
  var iss: IssuerClaim
  var aud: AudienceClaim
  var shop_id: String
  var shop_subdomain: String
  var mode: String
  var auth: String
  var key_id: String?
  var host: String
  var iat: IssuedAtClaim
  var exp: ExpirationClaim
  var jti: IDClaim
  var htm: String
  var htu: String

  func verify(using algorithm: some JWTAlgorithm) async throws {
    try exp.verifyNotExpired()
  }
}

@Suite("X-Tenant signer (§5)")
struct TenantTokenSignerTests {
  let secret = Array("0123456789abcdef0123456789abcdef-test".utf8)

  func sign(now: Int, keyID: String? = "key_1", path: String = "/v1/admin/products") -> String {
    var signer = TenantTokenSigner(keys: [SigningKey(kid: "k1", material: .hs256(SymmetricKey(data: secret)))], issuer: "tenant-gateway", ttlSeconds: 60)
    return signer.sign(now: now) { c in
      c.add("aud", "default")
      c.add("shop_id", "5b0c6f2e-8a1d-4c3b-9e7f-1a2b3c4d5e01")
      c.add("shop_subdomain", "acme")
      c.add("mode", "live")
      c.add("auth", "secret_key")
      if let keyID { c.add("key_id", keyID) }
      c.add("host", "api.platform.example")
      c.add("jti", "req-1")
      c.add("htm", "GET")
      c.add("htu", path)
    }
  }

  @Test("jwt-kit verifies the token and reads every claim")
  func roundTrip() async throws {
    let now = Int(Date().timeIntervalSince1970)
    let token = sign(now: now)
    let keys = JWTKeyCollection()
    await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256, kid: "k1")
    let claims = try await keys.verify(token, as: TenantClaims.self)
    #expect(claims.shop_id == "5b0c6f2e-8a1d-4c3b-9e7f-1a2b3c4d5e01")
    #expect(claims.iss.value == "tenant-gateway")
    #expect(claims.aud.value == ["default"])
    #expect(claims.key_id == "key_1")
    #expect(claims.htu == "/v1/admin/products")
    #expect(Int(claims.exp.value.timeIntervalSince1970) == now + 60)
    #expect(Int(claims.iat.value.timeIntervalSince1970) == now)
  }

  @Test("The header names alg HS256, the kid and typ JWT")
  func header() throws {
    let token = sign(now: 1_700_000_000)
    let header = try #require(Base64URL.decode(token.split(separator: ".")[0]))
    let json = try JSONSerialization.jsonObject(with: Data(header)) as? [String: String]
    #expect(json == ["alg": "HS256", "kid": "k1", "typ": "JWT"])
  }

  @Test("A tampered payload or another key fails verification")
  func tamper() async throws {
    let token = sign(now: Int(Date().timeIntervalSince1970))
    var parts = token.split(separator: ".").map(String.init)
    var payload = try #require(Base64URL.decode(parts[1]))
    let text = String(decoding: payload, as: UTF8.self).replacingOccurrences(of: "acme", with: "evil")
    payload = Array(text.utf8)
    parts[1] = Base64URL.encode(payload)
    let keys = JWTKeyCollection()
    await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256, kid: "k1")
    await #expect(throws: (any Error).self) { try await keys.verify(parts.joined(separator: "."), as: TenantClaims.self) }
    let other = JWTKeyCollection()
    await other.add(hmac: HMACKey(from: Array("another-secret-another-secret-another".utf8)), digestAlgorithm: .sha256, kid: "k1")
    await #expect(throws: (any Error).self) { try await other.verify(token, as: TenantClaims.self) }
  }

  @Test("Strings are JSON-escaped; repeated signing reuses buffers without mixing claims")
  func escapingAndReuse() throws {
    var signer = TenantTokenSigner(keys: [SigningKey(kid: "k1", material: .hs256(SymmetricKey(data: secret)))], issuer: "i\"ss", ttlSeconds: 5)
    let a = signer.sign(now: 10) { $0.add("htu", "/a\"b\\c") }
    let b = signer.sign(now: 10) { $0.add("htu", "/x") }
    let pa = String(decoding: Base64URL.decode(a.split(separator: ".")[1])!, as: UTF8.self)
    let pb = String(decoding: Base64URL.decode(b.split(separator: ".")[1])!, as: UTF8.self)
    #expect(pa == "{\"iss\":\"i\\\"ss\",\"htu\":\"/a\\\"b\\\\c\",\"iat\":10,\"exp\":15}")
    #expect(pb == "{\"iss\":\"i\\\"ss\",\"htu\":\"/x\",\"iat\":10,\"exp\":15}")
    #expect(try JSONSerialization.jsonObject(with: Data(pa.utf8)) is [String: Any])
  }

  @Test("Base64url matches RFC 4648 test vectors (no padding)")
  func base64url() {
    let vectors = [("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg"), ("fooba", "Zm9vYmE"), ("foobar", "Zm9vYmFy")]
    for (plain, encoded) in vectors {
      #expect(Base64URL.encode(Array(plain.utf8)) == encoded)
      #expect(Base64URL.decode(encoded) == Array(plain.utf8))
    }
    #expect(Base64URL.encode([0xFB, 0xFF]) == "-_8")
    #expect(Base64URL.decode("a+b") == nil)
  }

  @Test("HS256 secret files: trailing whitespace dropped, at least 32 bytes")
  func secretFiles() {
    #expect(SigningKey.hs256Secret(fileContents: Array("short\n".utf8)) == nil)
    #expect(SigningKey.hs256Secret(fileContents: Array((String(repeating: "a", count: 31) + " \n\n").utf8)) == nil)
    let k = SigningKey.hs256Secret(fileContents: Array((String(repeating: "a", count: 32) + "\r\n").utf8))
    #expect(k?.bitCount == 256)
  }
}
