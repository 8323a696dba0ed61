import Foundation
import Testing

/// `tls.custom_domain_certs_dir` (PRODUCT.md §7, §8) through the real binary: certificates loaded by
/// SNI on first use, cached, refused when the file name lies, and followed when renewed.
@Suite("Custom-domain certificates loaded by SNI (real gateway)")
struct CustomDomainCertificateTests {
  /// The SAN and serial of the certificate the gateway presents for `sni`.
  func presented(_ gw: GatewayHarness, sni: String) throws -> String {
    let r = try Shell.run("bash", ["-c",
      "openssl s_client -connect 127.0.0.1:\(gw.port) -servername \(sni) </dev/null 2>/dev/null | openssl x509 -noout -serial -ext subjectAltName"])
    return r.stdout
  }

  func metric(_ gw: GatewayHarness, _ prefix: String) throws -> Int {
    let line = try gw.admin("/metrics").body.split(separator: "\n").first { $0.hasPrefix(prefix) }
    return Int(line?.split(separator: " ").last ?? "") ?? -1
  }

  @Test("Loaded on first use, cached after, default certificate for unknown or mislabelled names, renewals followed")
  func customDomains() throws {
    let h = try GatewayHarness()
    defer { h.stop() }
    let dir = h.directory.appendingPathComponent("domains")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    _ = TestCertificates.make(name: "shop.acme.test", cn: "shop.acme.test", sans: ["shop.acme.test"], in: dir)
    _ = TestCertificates.make(name: "bibisaree.test", cn: "bibisaree.test", sans: ["bibisaree.test"], in: dir)
    // A file named for one domain holding another's certificate is refused (default certificate).
    _ = TestCertificates.make(name: "liar.test", cn: "other.test", sans: ["other.test"], in: dir)
    try h.writeConfig()
    var text = try String(contentsOfFile: h.configPath, encoding: .utf8)
    // Only the platform certificate is configured; custom domains come from the directory.
    text = text.replacingOccurrences(of: "    - {cert: \(TestCertificates.customDomains.cert), key: \(TestCertificates.customDomains.key)}\n", with: "")
    text = text.replacingOccurrences(of: "  certificates:\n", with: "  custom_domain_certs_dir: \(dir.path)\n  certificates:\n")
    text = text.replacingOccurrences(of: "snapshot: {path:", with: "snapshot: {poll_interval_s: 0.5, path:")
    try text.write(toFile: h.configPath, atomically: true, encoding: .utf8)
    try h.startPrewritten()

    // Without the directory's certificate the connection would only cover *.platform.localhost (421).
    #expect(try h.curl("shop.acme.test", "/").status == 200)
    #expect(try h.curl("bibisaree.test", "/", http2: true).status == 200)
    #expect(try h.curl("shop.acme.test", "/").status == 200)
    #expect(try presented(h, sni: "shop.acme.test").contains("DNS:shop.acme.test"))
    #expect(try presented(h, sni: "unknown.test").contains("DNS:*.platform.localhost"))
    #expect(try presented(h, sni: "liar.test").contains("DNS:*.platform.localhost"))
    #expect(try metric(h, "tenant_gateway_custom_certificates{state=\"available\"}") == 3)
    #expect(try metric(h, "tenant_gateway_custom_certificate_lookups_total{result=\"loaded\"}") == 2)
    #expect(try metric(h, "tenant_gateway_custom_certificate_lookups_total{result=\"cached\"}") >= 2)
    #expect(try metric(h, "tenant_gateway_custom_certificate_lookups_total{result=\"failed\"}") == 1)

    // Renewal: a new certificate replaces the file; the next handshake presents it, no restart.
    let before = try presented(h, sni: "shop.acme.test")
    let tmp = h.directory.appendingPathComponent("renewed")
    try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    let renewed = TestCertificates.make(name: "shop.acme.test", cn: "shop.acme.test", sans: ["shop.acme.test", "www.shop.acme.test"], in: tmp)
    for (from, to) in [(renewed.key, "shop.acme.test.key"), (renewed.cert, "shop.acme.test.pem")] {
      _ = rename(from, dir.appendingPathComponent(to).path)
    }
    try h.waitFor(timeout: 5) { try presented(h, sni: "shop.acme.test").contains("DNS:www.shop.acme.test") }
    #expect(try presented(h, sni: "shop.acme.test") != before)
    // A domain added while running is found after the next scan.
    _ = TestCertificates.make(name: "new-shop.test", cn: "new-shop.test", sans: ["new-shop.test"], in: dir)
    try h.waitFor(timeout: 5) { try presented(h, sni: "new-shop.test").contains("DNS:new-shop.test") }
  }
}
