import Crypto
import Foundation
import GatewaySigning
import Testing

@testable import GatewayACME

@Suite("JWS for ACME: ES256 flattened JSON, JWK thumbprint, external account binding (RFC 8555 §6.2, RFC 7638)")
struct JWSTests {
  let key = ACMEAccountKey()

  func parts(_ body: Data) throws -> (header: [String: Any], payload: [UInt8], protected: String, payloadText: String, signature: [UInt8]) {
    let json = try #require(try JSONSerialization.jsonObject(with: body) as? [String: String])
    let protected = try #require(json["protected"])
    let payload = try #require(json["payload"])
    let signatureText = try #require(json["signature"])
    let headerBytes = try #require(Base64URL.decode(protected))
    let header = try #require(try JSONSerialization.jsonObject(with: Data(headerBytes)) as? [String: Any])
    let payloadBytes = try #require(Base64URL.decode(payload))
    let signature = try #require(Base64URL.decode(signatureText))
    return (header, payloadBytes, protected, payload, signature)
  }

  @Test("A kid-signed request: alg, kid, nonce and url in the protected header; the signature verifies as raw r||s")
  func kidSigned() throws {
    let body = try JWS.sign(payload: Data(#"{"a":1}"#.utf8), url: "https://ca/new-order", nonce: "n-1", signer: .kid("https://ca/acct/7"), key: key)
    let p = try parts(body)
    #expect(p.header["alg"] as? String == "ES256")
    #expect(p.header["kid"] as? String == "https://ca/acct/7")
    #expect(p.header["nonce"] as? String == "n-1")
    #expect(p.header["url"] as? String == "https://ca/new-order")
    #expect(p.header["jwk"] == nil)
    #expect(String(decoding: p.payload, as: UTF8.self) == #"{"a":1}"#)
    #expect(p.signature.count == 64)
    let signature = try P256.Signing.ECDSASignature(rawRepresentation: p.signature)
    #expect(key.privateKey.publicKey.isValidSignature(signature, for: Data((p.protected + "." + p.payloadText).utf8)))
  }

  @Test("POST-as-GET has an empty payload; newAccount carries the jwk and no kid")
  func postAsGetAndJWK() throws {
    let p = try parts(try JWS.sign(payload: nil, url: "https://ca/authz/1", nonce: "n", signer: .jwk, key: key))
    #expect(p.payloadText == "")
    #expect(p.header["kid"] == nil)
    let jwk = try #require(p.header["jwk"] as? [String: String])
    #expect(jwk["kty"] == "EC" && jwk["crv"] == "P-256")
    let x963 = Array(key.privateKey.publicKey.x963Representation)
    #expect(Base64URL.decode(try #require(jwk["x"])) == Array(x963[1..<33]))
    #expect(Base64URL.decode(try #require(jwk["y"])) == Array(x963[33..<65]))
  }

  @Test("The thumbprint hashes the required members in lexicographic order, no whitespace (RFC 7638 §3.2)")
  func thumbprint() throws {
    let x963 = Array(key.privateKey.publicKey.x963Representation)
    let canonical = "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"\(Base64URL.encode(x963[1..<33]))\",\"y\":\"\(Base64URL.encode(x963[33..<65]))\"}"
    #expect(key.thumbprint == Base64URL.encode(Array(SHA256.hash(data: Data(canonical.utf8)))))
    #expect(key.thumbprint.count == 43)
    #expect(key.keyAuthorization(token: "tok") == "tok." + key.thumbprint)
  }

  @Test("The key survives a PEM round trip (storage_dir keeps it)")
  func pemRoundTrip() throws {
    let again = try ACMEAccountKey(pem: key.pemRepresentation)
    #expect(again.thumbprint == key.thumbprint)
  }

  @Test("External account binding: HS256 over the account JWK with the CA's kid and the newAccount URL")
  func externalAccountBinding() throws {
    let hmac = Array("a secret the CA handed out, 32+ bytes long".utf8)
    let eab = try ExternalAccountBinding(keyID: "kid-1", hmacKeyBase64URL: Base64URL.encode(hmac))
    let p = try parts(JWS.externalAccountBinding(eab, url: "https://ca/new-account", key: key))
    #expect(p.header["alg"] as? String == "HS256")
    #expect(p.header["kid"] as? String == "kid-1")
    #expect(p.header["url"] as? String == "https://ca/new-account")
    #expect(String(decoding: p.payload, as: UTF8.self) == key.jwkJSON)
    let mac = HMAC<SHA256>.authenticationCode(for: Data((p.protected + "." + p.payloadText).utf8), using: SymmetricKey(data: hmac))
    #expect(p.signature == Array(mac))
    #expect(throws: ACMEError.self) { try ExternalAccountBinding(keyID: "k", hmacKeyBase64URL: "not base64url!") }
  }

  @Test("JSON strings in headers are escaped")
  func escaping() {
    #expect(JWS.jsonString(#"a"b\c"#) == #""a\"b\\c""#)
    #expect(JWS.jsonString("x\ny") == #""x\u000ay""#)
  }

  @Test("Retry-After: seconds or an HTTP-date, never negative, nil when neither", arguments: [
    ("5", 5.0), (" 120 ", 120.0), ("Fri, 04 Dec 2026 00:00:10 GMT", 10.0), ("Thu, 03 Dec 2026 00:00:00 GMT", 0.0),
  ])
  func retryAfter(value: String, seconds: Double) {
    let now = Date(timeIntervalSince1970: 1_796_342_400)  // 2026-12-04T00:00:00Z
    #expect(RetryAfter.parse(value, now: now) == seconds)
  }

  @Test("Retry-After that is neither form")
  func retryAfterInvalid() {
    #expect(RetryAfter.parse("soon", now: Date()) == nil)
    #expect(RetryAfter.parse("-3", now: Date()) == nil)
  }
}
