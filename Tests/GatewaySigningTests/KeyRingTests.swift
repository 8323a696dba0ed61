import Crypto
import Foundation
import GatewayCore
import Testing

@testable import GatewaySigning

/// The key ring: key files in, keys out, or an error naming the key path and the file.
@Suite("Key ring: signing and verify keys from their files")
struct KeyRingTests {
  /// A fresh directory with `files` written into it (mode 0600).
  func directory(_ files: [String: [UInt8]]) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tgw-keyring-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    for (name, bytes) in files {
      _ = FileManager.default.createFile(atPath: dir + "/" + name, contents: Data(bytes), attributes: [.posixPermissions: 0o600])
    }
    return dir
  }

  /// PKCS#8 PEM of an Ed25519 private key, as `openssl genpkey -algorithm ed25519` writes it.
  func ed25519PEM(_ key: Curve25519.Signing.PrivateKey) -> [UInt8] {
    let der = PEM.ed25519PKCS8Prefix + Array(key.rawRepresentation)
    return Array("-----BEGIN PRIVATE KEY-----\n\(Data(der).base64EncodedString())\n-----END PRIVATE KEY-----\n".utf8)
  }

  @Test("HS256 secrets (trailing newline ignored) and EdDSA PEM keys load, in order, with their kids")
  func loads() throws {
    let ed = Curve25519.Signing.PrivateKey()
    let dir = try directory(["hs.key": Array(repeating: UInt8(ascii: "s"), count: 32) + [0x0A], "ed.pem": ed25519PEM(ed)])
    let keys = try SigningKeys.load([
      KeyFileSpec(kid: "ed-1", alg: "EdDSA", file: dir + "/ed.pem"), KeyFileSpec(kid: "hs-1", alg: "HS256", file: dir + "/hs.key"),
    ])
    #expect(keys.map(\.kid) == ["ed-1", "hs-1"])
    #expect(keys.map(\.algorithm) == ["EdDSA", "HS256"])
    guard case .eddsa(let loaded) = keys[0].material else {
      Issue.record("not an EdDSA key")
      return
    }
    #expect(loaded.publicKey.rawRepresentation == ed.publicKey.rawRepresentation)
  }

  @Test("Each broken key file is refused with its key path and file: missing, short secret, not a PEM, unknown alg")
  func refusals() throws {
    let dir = try directory(["short.key": Array("too short\n".utf8), "junk.pem": Array("hello".utf8)])
    let cases: [(KeyFileSpec, String)] = [
      (KeyFileSpec(kid: "a", alg: "HS256", file: dir + "/missing.key"), "cannot read \(dir)/missing.key"),
      (KeyFileSpec(kid: "a", alg: "HS256", file: dir + "/short.key"), "must hold at least 32 bytes"),
      (KeyFileSpec(kid: "a", alg: "EdDSA", file: dir + "/junk.pem"), "is not a PKCS#8 PEM Ed25519 private key"),
      (KeyFileSpec(kid: "a", alg: "RS256", file: dir + "/short.key"), "alg RS256 is not supported yet"),
    ]
    for (spec, reason) in cases {
      let good = KeyFileSpec(kid: "ok", alg: "HS256", file: dir + "/missing-too.key")
      do {
        _ = try SigningKeys.load([spec, good])
        Issue.record("\(spec) loaded")
      } catch {
        #expect(error.keyPath == "tenant_header.signing_keys[0]", "the first broken entry is named: \(error)")
        #expect(error.reason.contains(reason), "\(error)")
      }
    }
  }

  @Test("Verify keys: loaded per sessions.verify_keys entry; a broken one names its index")
  func verifyKeys() throws {
    let dir = try directory(["hs.key": Array(repeating: UInt8(ascii: "v"), count: 40)])
    let keys = try SessionKeys.load([KeyFileSpec(kid: "v1", alg: "HS256", file: dir + "/hs.key")])
    #expect(keys.map(\.kid) == ["v1"])
    #expect(try SessionKeys.load([]).isEmpty)
    do {
      _ = try SessionKeys.load([
        KeyFileSpec(kid: "v1", alg: "HS256", file: dir + "/hs.key"), KeyFileSpec(kid: "v2", alg: "ES256", file: dir + "/none.pem"),
      ])
      Issue.record("a missing verify key loaded")
    } catch {
      #expect(error.keyPath == "sessions.verify_keys[1]", "\(error)")
    }
  }
}
