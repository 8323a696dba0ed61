import Crypto
import Foundation
import GatewayCore
import Testing

@testable import GatewaySigning

/// Mints tokens for the verifier tests (a JWT is three base64url segments; nothing more is needed).
enum Mint {
  static func token(header: [String: Any], claims: [String: Any], sign: (ArraySlice<UInt8>) -> [UInt8]) -> String {
    let h = Base64URL.encode(Array(try! JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])))
    let p = Base64URL.encode(Array(try! JSONSerialization.data(withJSONObject: claims, options: [.sortedKeys])))
    let input = Array("\(h).\(p)".utf8)
    return "\(h).\(p).\(Base64URL.encode(sign(input[...])))"
  }
  static func hs256(_ secret: [UInt8]) -> (ArraySlice<UInt8>) -> [UInt8] {
    { Array(HMAC<SHA256>.authenticationCode(for: $0, using: SymmetricKey(data: secret))) }
  }
}

@Suite("Session and customer tokens (§2)")
struct SessionTokenVerifierTests {
  static let now = 1_800_000_000
  static let secret = Array("session-secret-session-secret-session-secret!".utf8)
  static let es = P256.Signing.PrivateKey()
  static let ed = Curve25519.Signing.PrivateKey()

  static func verifier(capacity: Int = 100, clock: @escaping () -> Int = { now }) -> SessionTokenVerifier {
    SessionTokenVerifier(
      keys: [
        VerifyKey(kid: "hs", material: .hs256(SymmetricKey(data: secret))),
        VerifyKey(kid: "es", material: .es256(es.publicKey)),
        VerifyKey(kid: "ed", material: .eddsa(ed.publicKey)),
      ], issuer: "platform-auth", cacheCapacity: capacity, now: clock)
  }

  static func claims(exp: Int = now + 600, iss: String = "platform-auth", shop: String? = "shop-a", sub: String? = "user-1", nbf: Int? = nil) -> [String: Any] {
    var c: [String: Any] = ["iss": iss, "exp": exp, "iat": now]
    if let shop { c["shop_id"] = shop }
    if let sub { c["sub"] = sub }
    if let nbf { c["nbf"] = nbf }
    return c
  }

  struct Case: CustomTestStringConvertible, Sendable {
    var name: String
    var token: String
    var valid: Bool
    var testDescription: String { name }
  }

  static let cases: [Case] = {
    let hs = Mint.hs256(secret)
    let esSign: (ArraySlice<UInt8>) -> [UInt8] = { Array(try! es.signature(for: $0).rawRepresentation) }
    let edSign: (ArraySlice<UInt8>) -> [UInt8] = { Array(try! ed.signature(for: $0)) }
    let good = Mint.token(header: ["alg": "HS256", "kid": "hs", "typ": "JWT"], claims: claims(), sign: hs)
    var parts = good.split(separator: ".").map(String.init)
    parts[1] = Base64URL.encode(Array(try! JSONSerialization.data(withJSONObject: claims(shop: "shop-b"), options: [.sortedKeys])))
    let tampered = parts.joined(separator: ".")
    // alg confusion: HS256 computed with the ES256 public key's PEM as the secret.
    let confused = Mint.token(header: ["alg": "HS256", "kid": "es"], claims: claims(), sign: Mint.hs256(Array(es.publicKey.pemRepresentation.utf8)))
    let none = Mint.token(header: ["alg": "none", "kid": "hs"], claims: claims(), sign: { _ in [] })
    return [
      Case(name: "good HS256", token: good, valid: true),
      Case(name: "good ES256", token: Mint.token(header: ["alg": "ES256", "kid": "es"], claims: claims(), sign: esSign), valid: true),
      Case(name: "good EdDSA", token: Mint.token(header: ["alg": "EdDSA", "kid": "ed"], claims: claims(), sign: edSign), valid: true),
      Case(name: "expired", token: Mint.token(header: ["alg": "HS256", "kid": "hs"], claims: claims(exp: now - 31), sign: hs), valid: false),
      Case(name: "expired within the 30 s leeway", token: Mint.token(header: ["alg": "HS256", "kid": "hs"], claims: claims(exp: now - 29), sign: hs), valid: true),
      Case(name: "not yet valid", token: Mint.token(header: ["alg": "HS256", "kid": "hs"], claims: claims(nbf: now + 31), sign: hs), valid: false),
      Case(name: "nbf within the leeway", token: Mint.token(header: ["alg": "HS256", "kid": "hs"], claims: claims(nbf: now + 29), sign: hs), valid: true),
      Case(name: "wrong issuer", token: Mint.token(header: ["alg": "HS256", "kid": "hs"], claims: claims(iss: "someone-else"), sign: hs), valid: false),
      Case(name: "unknown kid", token: Mint.token(header: ["alg": "HS256", "kid": "nope"], claims: claims(), sign: hs), valid: false),
      Case(name: "alg none", token: none, valid: false),
      Case(name: "alg none with a trailing dot only", token: String(none.dropLast(0)), valid: false),
      Case(name: "HS256 signed with the ES256 public key (alg confusion)", token: confused, valid: false),
      Case(name: "ES256 token presented under the HS256 kid", token: Mint.token(header: ["alg": "ES256", "kid": "hs"], claims: claims(), sign: esSign), valid: false),
      Case(name: "tampered payload", token: tampered, valid: false),
      Case(name: "missing shop_id", token: Mint.token(header: ["alg": "HS256", "kid": "hs"], claims: claims(shop: nil), sign: hs), valid: false),
      Case(name: "missing sub", token: Mint.token(header: ["alg": "HS256", "kid": "hs"], claims: claims(sub: nil), sign: hs), valid: false),
      Case(name: "missing exp", token: Mint.token(header: ["alg": "HS256", "kid": "hs"], claims: ["iss": "platform-auth", "sub": "u", "shop_id": "s"], sign: hs), valid: false),
      Case(name: "RS256 header", token: Mint.token(header: ["alg": "RS256", "kid": "hs"], claims: claims(), sign: hs), valid: false),
      Case(name: "garbage", token: "not.a.token", valid: false),
      Case(name: "an API key", token: "sk_live_acme", valid: false),
    ]
  }()

  @Test("Each token", arguments: cases)
  func verify(_ c: Case) {
    var v = Self.verifier()
    let result = v.verify(c.token)
    #expect((result != nil) == c.valid)
    if c.valid {
      #expect(result?.shopID == "shop-a")
      #expect(result?.subject == "user-1")
    }
  }

  @Test("Cached results are never used past exp (+ leeway)")
  func cacheRespectsExpiry() {
    var clock = Self.now
    var v = Self.verifier(clock: { clock })
    let t = Mint.token(header: ["alg": "HS256", "kid": "hs"], claims: Self.claims(exp: Self.now + 10), sign: Mint.hs256(Self.secret))
    #expect(v.verify(t) != nil)
    #expect(v.cache.count == 1)
    clock = Self.now + 39
    #expect(v.verify(t) != nil)
    clock = Self.now + 41
    #expect(v.verify(t) == nil)
    #expect(v.cache.count == 0)
  }

  @Test("The cache is bounded (LRU) and does not keep failures")
  func cacheBounded() {
    var v = Self.verifier(capacity: 3)
    let tokens = (0..<5).map { i in
      Mint.token(header: ["alg": "HS256", "kid": "hs"], claims: Self.claims(sub: "user-\(i)"), sign: Mint.hs256(Self.secret))
    }
    for t in tokens { #expect(v.verify(t) != nil) }
    #expect(v.cache.count == 3)
    _ = v.verify("bad.bad.bad")
    #expect(v.cache.count == 3)
    #expect(v.cache.get(KeyDigest.of(key: tokens[0])) == nil)
    #expect(v.cache.get(KeyDigest.of(key: tokens[4]))?.subject == "user-4")
  }
}

@Suite("Cookie header parsing (RFC 6265)")
struct CookieHeaderTests {
  @Test(
    "Lookup",
    arguments: [
      (["session=abc"], CookieHeader.Lookup.value("abc")),
      (["a=1; session=abc; b=2"], .value("abc")),
      (["a=1;session=abc"], .value("abc")),
      (["session=\"abc\""], .value("abc")),
      (["a=1", "session=abc"], .value("abc")),
      (["session=abc; session=def"], .duplicate),
      (["session=abc", "session=abc"], .duplicate),
      (["sessionx=abc; xsession=def"], .absent),
      ([], .absent),
      (["session="], .value("")),
      (["junk; =x; session=v=w"], .value("v=w")),
    ])
  func lookup(_ headers: [String], _ expected: CookieHeader.Lookup) {
    #expect(CookieHeader.find("session", in: headers) == expected)
  }
}
