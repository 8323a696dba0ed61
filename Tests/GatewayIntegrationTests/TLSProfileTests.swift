import Foundation
import Testing

/// The TLS listener's protocol profile (issue 15 item 8): Mozilla "intermediate" by default, judged
/// by sslyze's own Mozilla checker, and `tls.ciphers` for operators who must differ.
@Suite("TLS profile (real gateway, sslyze, openssl s_client)")
struct TLSProfileTests {
  /// `openssl s_client` over TLS 1.2 offering only `cipher`; true when the handshake completed.
  static func handshakes(port: Int, cipher: String? = nil, version: String = "-tls1_2") throws -> Bool {
    var args = ["s_client", "-connect", "127.0.0.1:\(port)", "-servername", "api.platform.localhost", version]
    if let cipher { args += ["-cipher", cipher] }
    let r = try Shell.run("timeout", ["-k", "2", "10", "openssl"] + args, input: Data())
    return r.status == 0 && r.stdout.contains("Cipher is ") && !r.stdout.contains("Cipher is (NONE)")
  }

  @Test("Default profile: sslyze's Mozilla intermediate check finds no protocol, cipher, curve or vulnerability issue")
  func mozillaIntermediate() throws {
    try withGateway { gw in
      let r = try gw.python("tls_profile.py", [String(gw.port), "api.platform.localhost"])
      let doc = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any]
      // Any finding fails; only the test certificate's trust (no public root) is ignored.
      #expect(r.status == 0, "\(r.stdout) \(r.stderr.suffix(500))")
      #expect((doc?["issues"] as? [String: Any])?.isEmpty == true, "\(r.stdout)")
      let tls12 = doc?["tls_1_2_ciphers"] as? [String] ?? []
      #expect(!tls12.isEmpty, "\(r.stdout)")
      #expect(tls12.allSatisfy { $0.hasPrefix("TLS_ECDHE_") && ($0.contains("_GCM_") || $0.contains("CHACHA20")) }, "\(tls12)")
      #expect(doc?["versions"] as? [String] == ["TLSv1.2", "TLSv1.3"], "\(r.stdout)")
      // The same seen from openssl: the CBC/SHA-1 suites the audit found are gone, TLS 1.1 is refused.
      #expect(try Self.handshakes(port: gw.port, cipher: "ECDHE-ECDSA-AES128-GCM-SHA256"))
      #expect(try !Self.handshakes(port: gw.port, cipher: "ECDHE-ECDSA-AES128-SHA"))
      #expect(try !Self.handshakes(port: gw.port, cipher: "ECDHE-ECDSA-AES256-SHA"))
      #expect(try !Self.handshakes(port: gw.port, cipher: "DEFAULT@SECLEVEL=0", version: "-tls1_1"))
    }
  }

  @Test("tls.ciphers replaces the TLS 1.2 list; a name the TLS library does not have fails check and serve")
  func configuredCiphers() throws {
    let h = try GatewayHarness()
    defer { h.stop() }
    try h.writeConfig()
    let text = try String(contentsOfFile: h.configPath, encoding: .utf8)
    let narrowed = text.replacingOccurrences(of: "tls:\n  certificates:", with: "tls:\n  ciphers: [ECDHE-ECDSA-AES256-GCM-SHA384]\n  certificates:")
    #expect(narrowed != text)
    try narrowed.write(toFile: h.configPath, atomically: true, encoding: .utf8)
    try h.startPrewritten()
    #expect(try Self.handshakes(port: h.port, cipher: "ECDHE-ECDSA-AES256-GCM-SHA384"))
    #expect(try !Self.handshakes(port: h.port, cipher: "ECDHE-ECDSA-AES128-GCM-SHA256"))
    // TLS 1.3 is not affected by the list.
    #expect(try Self.handshakes(port: h.port, version: "-tls1_3"))

    // A typo would silently drop a suite (BoringSSL skips unknown names in a list): refused.
    let typo = text.replacingOccurrences(of: "tls:\n  certificates:", with: "tls:\n  ciphers: [ECDHE-ECDSA-AES256-GCM-SHA384, ECDHE-ECDSA-AES256-GCM-SHA385]\n  certificates:")
    let typoPath = h.directory.appendingPathComponent("typo.conf").path
    try typo.write(toFile: typoPath, atomically: true, encoding: .utf8)
    let check = try Shell.run(Paths.binary, ["check", "--config", typoPath])
    #expect(check.status != 0)
    #expect(check.stderr.contains("tls.ciphers") && check.stderr.contains("ECDHE-ECDSA-AES256-GCM-SHA385"), "\(check.stdout) \(check.stderr)")
    let serve = try Shell.run("timeout", ["-k", "2", "20", Paths.binary, "serve", "--config", typoPath])
    #expect(serve.status != 0 && serve.status != 124, "serve: \(serve.status)")
    #expect((serve.stdout + serve.stderr).contains("tls.ciphers"), "\(serve.stdout) \(serve.stderr)")
  }
}
