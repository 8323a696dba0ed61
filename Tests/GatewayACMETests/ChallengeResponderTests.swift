import Crypto
import Foundation
import Testing
import X509

@testable import GatewayACME

@Suite("Challenges shared through storage_dir (a fleet answers the CA from any member)")
struct ChallengeResponderTests {
  func directory() throws -> String {
    let d = FileManager.default.temporaryDirectory.appendingPathComponent("tgw-challenges-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
  }

  @Test("One gateway provisions; another reads both challenge kinds while pending, nothing once withdrawn")
  func sharedWhilePending() async throws {
    let dir = try directory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let placer = ChallengeResponder(sharedDirectory: dir)
    let other = ChallengeResponder(sharedDirectory: dir)
    let alpn = ACMEPendingChallenge(type: .tlsALPN01, domain: "shop.acme.test", token: "tok-A_1", keyAuthorization: "tok-A_1.thumb")
    let http = ACMEPendingChallenge(type: .http01, domain: "shop.acme.test", token: "tok-H_2", keyAuthorization: "tok-H_2.thumb")
    try await placer.provision(alpn)
    try await placer.provision(http)
    #expect(other.tlsALPNCertificate(for: "shop.acme.test") == nil)  // not in its memory
    let cert = try #require(await other.sharedTLSALPNCertificate(for: "shop.acme.test"))
    #expect(cert.domain == "shop.acme.test")
    // Built once (a fresh key each build), and for this key authorization.
    #expect(await other.sharedTLSALPNCertificate(for: "shop.acme.test")?.certificatePEM == cert.certificatePEM)
    #expect(ChallengeCertificate.acmeIdentifierDigest(of: try Certificate(pemEncoded: cert.certificatePEM)) == Array(SHA256.hash(data: Data("tok-A_1.thumb".utf8))))
    #expect(await other.sharedHTTP01KeyAuthorization(token: "tok-H_2", host: "shop.acme.test") == "tok-H_2.thumb")
    // A token placed for one host is not an answer for another.
    #expect(await other.sharedHTTP01KeyAuthorization(token: "tok-H_2", host: "bibisaree.test") == nil)
    #expect(await other.sharedTLSALPNCertificate(for: "bibisaree.test") == nil)
    let mode = try FileManager.default.attributesOfItem(atPath: dir + "/http-01.tok-H_2")[.posixPermissions] as? Int
    #expect(mode == 0o600)
    await placer.withdraw(alpn)
    await placer.withdraw(http)
    #expect(await other.sharedTLSALPNCertificate(for: "shop.acme.test") == nil)
    #expect(await other.sharedHTTP01KeyAuthorization(token: "tok-H_2", host: "shop.acme.test") == nil)
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
  }

  @Test("A leftover from a crashed holder (older than an hour) is not an answer")
  func leftoversIgnored() async throws {
    let dir = try directory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let placer = ChallengeResponder(sharedDirectory: dir)
    try await placer.provision(ACMEPendingChallenge(type: .http01, domain: "shop.acme.test", token: "old", keyAuthorization: "old.thumb"))
    let old = Date().addingTimeInterval(-2 * FileChallengeMirror.lifetime)
    try FileManager.default.setAttributes([.modificationDate: old], ofItemAtPath: dir + "/http-01.old")
    #expect(await ChallengeResponder(sharedDirectory: dir).sharedHTTP01KeyAuthorization(token: "old", host: "shop.acme.test") == nil)
  }

  @Test(
    "Keys that could name another file are refused, not escaped",
    arguments: ["../account.key", "a/b", ".hidden", "", "shop.acme.test\n", "UPPER.test", String(repeating: "a", count: 256)])
  func fileNamesAreSafe(_ key: String) {
    #expect(ChallengeResponder.fileName(type: .tlsALPN01, key: key) == nil)
    if key != "UPPER.test" { #expect(ChallengeResponder.fileName(type: .http01, key: key) == nil) }
  }

  @Test("Without a shared directory nothing touches the disk")
  func memoryOnly() async throws {
    let responder = ChallengeResponder()
    try await responder.provision(ACMEPendingChallenge(type: .http01, domain: "shop.acme.test", token: "t", keyAuthorization: "t.k"))
    #expect(responder.http01KeyAuthorization(token: "t") == "t.k")
    #expect(await responder.sharedHTTP01KeyAuthorization(token: "t", host: "shop.acme.test") == nil)
  }
}
