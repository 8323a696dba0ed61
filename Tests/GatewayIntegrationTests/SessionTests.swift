import Foundation
import Testing

/// Dashboard sessions and per-shop customer tokens through the real binary, with tokens minted by
/// PyJWT from keys made by openssl (PRODUCT.md §2).
@Suite("Sessions and customer tokens (real gateway, PyJWT tokens)")
struct SessionTests {
  /// Session keys: an HS256 secret, an ES256 key pair and an Ed25519 key pair.
  struct Keys {
    let dir: URL
    var hsSecret: String { dir.appendingPathComponent("session-hs256.key").path }
    var esPrivate: String { dir.appendingPathComponent("es256.pem").path }
    var esPublic: String { dir.appendingPathComponent("es256.pub.pem").path }
    var edPrivate: String { dir.appendingPathComponent("ed25519.pem").path }
    var edPublic: String { dir.appendingPathComponent("ed25519.pub.pem").path }

    init(in dir: URL) throws {
      self.dir = dir
      try "session-secret-for-integration-tests-0123456789\n".write(toFile: dir.appendingPathComponent("session-hs256.key").path, atomically: true, encoding: .utf8)
      for cmd in [
        ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", dir.appendingPathComponent("es256.sec1.pem").path],
        ["pkcs8", "-topk8", "-nocrypt", "-in", dir.appendingPathComponent("es256.sec1.pem").path, "-out", dir.appendingPathComponent("es256.pem").path],
        ["ec", "-in", dir.appendingPathComponent("es256.pem").path, "-pubout", "-out", dir.appendingPathComponent("es256.pub.pem").path],
        ["genpkey", "-algorithm", "ed25519", "-out", dir.appendingPathComponent("ed25519.pem").path],
        ["pkey", "-in", dir.appendingPathComponent("ed25519.pem").path, "-pubout", "-out", dir.appendingPathComponent("ed25519.pub.pem").path],
      ] {
        let r = try Shell.run("openssl", cmd)
        guard r.status == 0 else { throw HarnessError(message: "openssl \(cmd): \(r.stderr)") }
      }
    }

    var config: String {
      """
      sessions:
        cookie_name: session
        issuer: platform-auth
        verify_keys:
          - {kid: auth-hs, alg: HS256, secret_file: \(hsSecret)}
          - {kid: auth-es, alg: ES256, public_key_file: \(esPublic)}
          - {kid: auth-ed, alg: EdDSA, public_key_file: \(edPublic)}
      """
    }
  }

  func mint(_ gw: GatewayHarness, _ keys: Keys, alg: String = "HS256", shop: String, sub: String = "user-7", exp: Int = 300, iss: String = "platform-auth") throws -> String {
    let (file, kid) = alg == "HS256" ? (keys.hsSecret, "auth-hs") : alg == "ES256" ? (keys.esPrivate, "auth-es") : (keys.edPrivate, "auth-ed")
    let r = try gw.python("mint_jwt.py", [alg, file, kid, iss, sub, shop, String(exp)])
    guard r.status == 0 else { throw HarnessError(message: r.stderr) }
    return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
  }

  func withSessions(_ body: (GatewayHarness, Keys) throws -> Void) throws {
    let h = try GatewayHarness()
    defer { h.stop() }
    let keys = try Keys(in: h.directory)
    h.extraConfig = keys.config
    try h.start()
    try body(h, keys)
  }

  @Test("Dashboard: a session for shop A reaches shop A only, with auth=session and user_id")
  func dashboard() throws {
    try withSessions { gw, keys in
      for alg in ["HS256", "ES256", "EdDSA"] {
        let token = try mint(gw, keys, alg: alg, shop: Demo.acmeID)
        let r = try gw.curl("dashboard.platform.localhost", "/v1/admin/products", headers: ["Cookie: theme=dark; session=\(token)"])
        #expect(r.status == 200, "\(alg): \(r.body)")
        #expect(r.claims?["auth"] as? String == "session")
        #expect(r.claims?["user_id"] as? String == "user-7")
        #expect(r.claims?["shop_id"] as? String == Demo.acmeID)
      }
      // Another shop's key next to the cookie changes nothing: the session decides.
      let token = try mint(gw, keys, shop: Demo.acmeID)
      let withKey = try gw.curl("dashboard.platform.localhost", "/v1/admin/x", headers: ["Cookie: session=\(token)", "Authorization: Bearer \(Demo.bibiSecret)"])
      #expect(withKey.claims?["shop_id"] as? String == Demo.acmeID)
    }
  }

  @Test("Dashboard refusals: no cookie, expired, wrong issuer, tampered, duplicate cookie, unknown and suspended shops")
  func dashboardRefusals() throws {
    try withSessions { gw, keys in
      let host = "dashboard.platform.localhost"
      let good = try mint(gw, keys, shop: Demo.acmeID)
      var parts = good.split(separator: ".").map(String.init)
      parts[2] = String(parts[2].reversed())
      let cases: [(String, [String], Int, String)] = [
        ("no cookie", [], 401, "missing_credentials"),
        ("expired", ["Cookie: session=\(try mint(gw, keys, shop: Demo.acmeID, exp: -120))"], 401, "invalid_session"),
        ("wrong issuer", ["Cookie: session=\(try mint(gw, keys, shop: Demo.acmeID, iss: "evil"))"], 401, "invalid_session"),
        ("tampered signature", ["Cookie: session=\(parts.joined(separator: "."))"], 401, "invalid_session"),
        ("two session cookies", ["Cookie: session=\(good); session=\(good)"], 401, "invalid_session"),
        ("unknown shop", ["Cookie: session=\(try mint(gw, keys, shop: "00000000-0000-4000-8000-000000000000"))"], 401, "invalid_session"),
        ("suspended shop", ["Cookie: session=\(try mint(gw, keys, shop: Demo.teaID))"], 403, "shop_suspended"),
      ]
      for (name, headers, status, code) in cases {
        let r = try gw.curl(host, "/v1/admin/products", headers: headers)
        #expect(r.status == status, "\(name): \(r.body)")
        #expect(r.errorCode == code, "\(name)")
      }
      #expect(gw.upstreamRequests().isEmpty)
    }
  }

  @Test("Customer tokens: shop A's token with shop A's publishable key passes; with shop B's key it is 403")
  func customers() throws {
    try withSessions { gw, keys in
      let token = try mint(gw, keys, alg: "ES256", shop: Demo.acmeID, sub: "cust-42")
      let path = "/v1/store/customers/me"
      let mine = try gw.curl(Demo.apiHost, path, headers: ["Authorization: Bearer \(token)", "X-Publishable-Key: \(Demo.acmePublishable)"], http2: true)
      #expect(mine.status == 200, "\(mine.body)")
      #expect(mine.claims?["auth"] as? String == "publishable_key")
      #expect(mine.claims?["customer_id"] as? String == "cust-42")
      #expect(mine.claims?["shop_id"] as? String == Demo.acmeID)

      // Shop B's publishable key (bibi is not headless, so use a secret-key-free shop host instead):
      let other = try gw.curl("bibisaree.test", path, headers: ["Authorization: Bearer \(token)", "X-Publishable-Key: \(Demo.bibiPublishable)"])
      #expect(other.status == 403, "\(other.body)")
      #expect(other.errorCode == "tenant_mismatch")

      let bad = try gw.curl(Demo.apiHost, path, headers: ["Authorization: Bearer \(token)x", "X-Publishable-Key: \(Demo.acmePublishable)"])
      #expect(bad.errorCode == "invalid_session")
      // A customer token is never an API key.
      let asKey = try gw.curl(Demo.apiHost, "/v1/orders", headers: ["Authorization: Bearer \(token)"])
      #expect(asKey.errorCode == "invalid_api_key")
    }
  }

  @Test("Tokens never appear in the gateway's logs")
  func tokensNotLogged() throws {
    try withSessions { gw, keys in
      let session = try mint(gw, keys, shop: Demo.acmeID)
      let customer = try mint(gw, keys, shop: Demo.acmeID, sub: "c")
      _ = try gw.curl("dashboard.platform.localhost", "/", headers: ["Cookie: session=\(session)"])
      _ = try gw.curl("dashboard.platform.localhost", "/", headers: ["Cookie: session=\(session)x"])
      _ = try gw.curl(Demo.apiHost, "/v1/store/customers/me", headers: ["Authorization: Bearer \(customer)", "X-Publishable-Key: \(Demo.acmePublishable)"])
      gw.signal(SIGHUP)
      usleep(300_000)
      let log = (try? String(contentsOfFile: gw.gatewayLogPath, encoding: .utf8)) ?? ""
      #expect(!log.isEmpty)
      for secret in [session, customer, String(session.split(separator: ".")[2]), Demo.acmePublishable] {
        #expect(!log.contains(secret), "a token or key is in the log")
      }
    }
  }

  @Test("check validates the session key files")
  func checkKeys() throws {
    let h = try GatewayHarness()
    defer { h.stop() }
    let keys = try Keys(in: h.directory)
    h.extraConfig = keys.config.replacingOccurrences(of: keys.esPublic, with: keys.hsSecret)
    try h.writeConfig()
    let r = try Shell.run(Paths.binary, ["check", "--config", h.configPath])
    #expect(r.status != 0)
    #expect(r.stderr.contains("sessions.verify_keys[1]"), "\(r.stderr)")
  }
}
