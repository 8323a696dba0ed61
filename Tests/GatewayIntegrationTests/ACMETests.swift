import Foundation
import Testing

/// Let's Encrypt's test CA on loopback (scripts/pebble-test-server.sh): pebble validates the
/// gateway's real tls-alpn-01 and http-01 answers; challtestsrv answers its DNS (every name is
/// 127.0.0.1). Each test has its own instance, CA and ports.
final class Pebble: @unchecked Sendable {
  let directory: String
  let acmePort = freePort()
  let managementPort = freePort()
  let dnsPort = freePort()
  let dnsManagementPort = freePort()
  var directoryURL: String { "https://127.0.0.1:\(acmePort)/dir" }
  /// Trusts pebble's own HTTPS (`tls.acme.ca_file`).
  var caFile: String { directory + "/ca.pem" }
  static let script = Paths.packageRoot.appendingPathComponent("scripts/pebble-test-server.sh").path

  /// Starts pebble validating on `tlsPort` (tls-alpn-01) and `httpPort` (http-01).
  init(tlsPort: Int, httpPort: Int) throws {
    directory = FileManager.default.temporaryDirectory.appendingPathComponent("tgw-pebble-\(UUID().uuidString)").path
    let r = try Shell.run("bash", [
      Self.script, "start", directory, String(acmePort), String(dnsPort), String(tlsPort), String(httpPort),
      String(managementPort), String(dnsManagementPort),
    ])
    guard r.status == 0 else { throw HarnessError(message: "pebble did not start: \(r.stderr)") }
  }

  func stop() {
    _ = try? Shell.run("bash", [Self.script, "stop", directory])
    try? FileManager.default.removeItem(atPath: directory)
  }

  /// The root pebble issues under (it makes a new one at every start), for verifying chains.
  func issuingRoot() throws -> String {
    let path = directory + "/issuing-root.pem"
    let r = try Shell.run("curl", ["-sk", "-o", path, "https://127.0.0.1:\(managementPort)/roots/0"])
    guard r.status == 0 else { throw HarnessError(message: "no root from pebble: \(r.stderr)") }
    return path
  }

  var log: String { (try? String(contentsOfFile: directory + "/pebble.log", encoding: .utf8)) ?? "" }
  /// Requests pebble has handled so far (its log has one line per request).
  var requestCount: Int { log.split(separator: "\n").filter { $0.contains(" -> calling handler()") }.count }
  var issuedCount: Int { log.split(separator: "\n").filter { $0.contains("Issued certificate serial") }.count }
}

/// ACME in the gateway (PRODUCT.md §10, §9 invariant 7) against pebble, with real validation.
@Suite("ACME certificates for custom domains against pebble (real gateway, real CA)")
struct ACMETests {
  /// A gateway with `tls.acme` pointed at `pebble` and the plain-HTTP listener on `httpPort`.
  /// The custom-domain certificate of the other tests is left out: ACME must provide them.
  static func configure(
    _ h: GatewayHarness, pebble: Pebble, httpPort: Int, storage: String, challenges: String = "[tls-alpn-01, http-01]",
    postgres: PostgresServer? = nil
  ) throws {
    if let postgres { try h.writePostgresConfig(postgres) } else { try h.writeConfig() }
    var text = try String(contentsOfFile: h.configPath, encoding: .utf8)
    text = text.replacingOccurrences(of: "    - {cert: \(TestCertificates.customDomains.cert), key: \(TestCertificates.customDomains.key)}\n", with: "")
    text = text.replacingOccurrences(
      of: "listen: {address: \"127.0.0.1:\(h.port)\"}",
      with: "listen: {address: \"127.0.0.1:\(h.port)\", http_address: \"127.0.0.1:\(httpPort)\", https_redirect_port: \(h.port)}")
    text = text.replacingOccurrences(
      of: "tls:\n",
      with: """
        tls:
          acme: {directory_url: "\(pebble.directoryURL)", contact: ops@example.com, ca_file: \(pebble.caFile), storage_dir: \(storage),
                 challenges: \(challenges), handshake_wait_s: 15\(postgres == nil ? "" : ", storage: postgres")}

        """)
    guard text.contains("http_address"), text.contains("directory_url") else { throw HarnessError(message: "config not edited: \(text)") }
    try text.write(toFile: h.configPath, atomically: true, encoding: .utf8)
  }

  static func certificates(_ adminPort: Int) throws -> [[String: Any]] {
    let r = try Shell.run("curl", ["-s", "http://127.0.0.1:\(adminPort)/admin/certificates"])
    let doc = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
    return doc?["certificates"] as? [[String: Any]] ?? []
  }

  static func state(_ adminPort: Int, _ domain: String) throws -> String? {
    try certificates(adminPort).first { $0["domain"] as? String == domain }?["state"] as? String
  }

  static func metric(_ adminPort: Int, _ name: String) throws -> Int {
    let body = try Shell.run("curl", ["-s", "http://127.0.0.1:\(adminPort)/metrics"]).stdout
    let line = body.split(separator: "\n").first { $0.hasPrefix(name + " ") || $0 == Substring(name) }
    return Int(line?.split(separator: " ").last ?? "") ?? -1
  }

  /// The certificate presented for `sni` (issuer, serial, SAN), and openssl's verdict against `root`.
  static func presented(port: Int, sni: String, root: String? = nil, alpn: String? = nil) throws -> String {
    var connect = "openssl s_client -connect 127.0.0.1:\(port) -servername \(sni)"
    if let root { connect += " -CAfile \(root) -verify_hostname \(sni)" }
    if let alpn { connect += " -alpn \(alpn)" }
    let r = try Shell.run("bash", ["-c", "\(connect) </dev/null 2>/dev/null | tee /dev/stderr | openssl x509 -noout -issuer -serial -ext subjectAltName"])
    let verdict = r.stderr.split(separator: "\n").first { $0.contains("Verify return code") }.map(String.init) ?? ""
    return r.stdout + verdict
  }

  /// Both active sample shops' custom domains, ordered from the table alone (the suspended shop has none).
  static func waitForSampleDomains(_ h: GatewayHarness) throws {
    try h.waitFor(timeout: 60) {
      try state(h.adminPort, "shop.acme.test") == "valid" && state(h.adminPort, "bibisaree.test") == "valid"
    }
  }

  @Test("Issued with real validation, verified against pebble's root, stored 0600, ordered at once when a domain is added, dropped at once when removed or its shop suspended, loaded at restart without ordering")
  func endToEnd() throws {
    let h = try GatewayHarness()
    defer { h.stop() }
    let httpPort = freePort()
    let pebble = try Pebble(tlsPort: h.port, httpPort: httpPort)
    defer { pebble.stop() }
    let storage = h.directory.appendingPathComponent("acme").path
    try Self.configure(h, pebble: pebble, httpPort: httpPort, storage: storage)
    try h.startPrewritten()

    // Both active shops' custom domains, ordered from the table alone; the suspended shop has none.
    try Self.waitForSampleDomains(h)
    let root = try pebble.issuingRoot()
    let shown = try Self.presented(port: h.port, sni: "shop.acme.test", root: root)
    #expect(shown.contains("Pebble"), "\(shown)")
    #expect(shown.contains("DNS:shop.acme.test"), "\(shown)")
    #expect(shown.contains("Verify return code: 0 (ok)"), "\(shown)")
    // A real request, verified by curl against pebble's root (no -k), reaches the shop with a
    // signed X-Tenant (without the certificate: the platform wildcard, and 421).
    let verified = try Shell.run("curl", [
      "-sS", "-D", "-", "--cacert", root, "--resolve", "shop.acme.test:\(h.port):127.0.0.1", "https://shop.acme.test:\(h.port)/",
    ])
    let r = GatewayHarness.parseCurl(verified.stdout)
    #expect(verified.status == 0 && r.status == 200, "\(verified.stderr) \(r.body) \(h.gatewayLogTail)")
    #expect(r.claims?["shop_id"] as? String == Demo.acmeID, "\(r.body)")
    let keyMode = try FileManager.default.attributesOfItem(atPath: storage + "/shop.acme.test.key")[.posixPermissions] as? Int
    #expect(keyMode == 0o600)
    #expect(try Self.metric(h.adminPort, "tenant_gateway_acme_orders_total{result=\"issued\"}") == 2)
    #expect(try Self.metric(h.adminPort, "tenant_gateway_acme_certificates{state=\"valid\"}") == 2)
    // The challenges were withdrawn when the orders ended: none in memory, none in storage.
    #expect(try FileManager.default.contentsOfDirectory(atPath: storage + "/challenges").isEmpty)
    // tls-alpn-01 with nothing pending: closed, never a certificate, never HTTP.
    let probe = try Self.presented(port: h.port, sni: "shop.acme.test", alpn: "acme-tls/1")
    #expect(!probe.contains("Pebble") && !probe.contains("DNS:"), "\(probe)")
    #expect(try Self.metric(h.adminPort, "tenant_gateway_acme_challenge_handshakes_total{result=\"refused\"}") >= 1)

    // Plain HTTP: known hosts to https, unknown ones refused, nothing forwarded.
    let redirect = try Shell.run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "-H", "Host: shop.acme.test", "http://127.0.0.1:\(httpPort)/cart?x=1"])
    #expect(redirect.stdout == "308 https://shop.acme.test:\(h.port)/cart?x=1")
    let unknown = try Shell.run("curl", ["-s", "-w", " %{http_code}", "-H", "Host: nobody.test", "http://127.0.0.1:\(httpPort)/"])
    #expect(unknown.stdout.hasSuffix(" 421") && unknown.stdout.contains("\"unknown_host\""), "\(unknown.stdout)")

    // A domain added by a change set: ordered at once; a handshake arriving first waits for it.
    let cli = { (args: [String]) in try Shell.run(Paths.binary, args + ["--config", h.configPath]) }
    let added = try cli(["domains", "add", "new.acme.test", "acme"])
    #expect(added.status == 0, "\(added.stdout) \(added.stderr)")
    let first = try Self.presented(port: h.port, sni: "new.acme.test", root: root)
    #expect(first.contains("DNS:new.acme.test") && first.contains("Verify return code: 0 (ok)"), "\(first) \(h.gatewayLogTail)")
    let status = try cli(["certs", "status", "new.acme.test"])
    #expect(status.status == 0 && status.stdout.contains("valid"), "\(status.stdout) \(status.stderr)")

    // Removed: the default certificate at once, and no longer eligible.
    #expect(try cli(["domains", "remove", "new.acme.test"]).status == 0)
    let gone = try Self.presented(port: h.port, sni: "new.acme.test")
    #expect(gone.contains("DNS:*.platform.localhost") && !gone.contains("Pebble"), "\(gone)")
    let after = try cli(["certs", "status", "new.acme.test"])
    #expect(after.status == 1 && after.stdout.contains("not_eligible"), "\(after.stdout) \(after.stderr)")

    // A suspended shop: its certificate stops being served at once; activated, it is served again
    // from storage, with no new order.
    let suspend = try cli(["shops", "suspend", "acme"])
    #expect(suspend.status == 0, "\(suspend.stderr)")
    let suspended = try Self.presented(port: h.port, sni: "shop.acme.test")
    #expect(suspended.contains("DNS:*.platform.localhost") && !suspended.contains("Pebble"), "\(suspended)")
    #expect(try Self.state(h.adminPort, "shop.acme.test") == "not_eligible")
    #expect(try cli(["shops", "activate", "acme"]).status == 0)
    let back = try Self.presented(port: h.port, sni: "shop.acme.test", root: root)
    #expect(back.contains("DNS:shop.acme.test") && back.contains("Verify return code: 0 (ok)"), "\(back)")
    #expect(try Self.metric(h.adminPort, "tenant_gateway_acme_orders_total{result=\"issued\"}") == 3)

    // A restart loads what storage holds: served at once, no new order, nothing asked of the CA
    // beyond the directory.
    let issuedBefore = pebble.issuedCount
    h.stopGateway()
    try h.startPrewritten(upstream: false)
    try h.waitFor(timeout: 20) { try Self.state(h.adminPort, "shop.acme.test") == "valid" }
    let again = try Self.presented(port: h.port, sni: "shop.acme.test", root: root)
    #expect(again.contains("Verify return code: 0 (ok)"), "\(again)")
    Thread.sleep(forTimeInterval: 1)
    #expect(try Self.metric(h.adminPort, "tenant_gateway_acme_orders_total{result=\"issued\"}") == 0)
    #expect(pebble.issuedCount == issuedBefore)
  }

  /// §9.7: a certificate is only ever ordered for a custom domain of an active shop in the live
  /// table; no client-chosen SNI name, however many, causes an order, a storage write or a call to
  /// the ACME server. (The suspended shop's absence and removal are in ``endToEnd()``.)
  @Test("Invariant §9.7: 10 000 random SNI names (and random http-01 tokens) cause no order, no storage read or write, no ACME call")
  func randomNameFlood() throws {
    let h = try GatewayHarness()
    defer { h.stop() }
    let httpPort = freePort()
    let pebble = try Pebble(tlsPort: h.port, httpPort: httpPort)
    defer { pebble.stop() }
    let storage = h.directory.appendingPathComponent("acme").path
    try Self.configure(h, pebble: pebble, httpPort: httpPort, storage: storage)
    try h.startPrewritten()
    try Self.waitForSampleDomains(h)
    // Settled: the two orders are done and their challenges withdrawn.
    Thread.sleep(forTimeInterval: 1)
    let files = try FileManager.default.contentsOfDirectory(atPath: storage).sorted()
    let requests = pebble.requestCount
    let reads = try Self.metric(h.adminPort, "tenant_gateway_acme_storage_reads_total")
    let orders = try ["issued", "failed", "held_elsewhere"].map { try Self.metric(h.adminPort, "tenant_gateway_acme_orders_total{result=\"\($0)\"}") }
    let refusedBefore = try Self.metric(h.adminPort, "tenant_gateway_acme_challenge_handshakes_total{result=\"refused\"}")

    let r = try h.python("sni_flood.py", [String(h.port), String(httpPort), "10000"])
    let counts = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stderr)")
    // Every plain handshake completed (on the default certificate); no acme-tls/1 one was answered.
    #expect(counts["handshakes"] as? Int == 9000, "\(counts)")
    #expect(counts["challenge_answered"] as? Int == 0, "\(counts)")
    #expect((counts["http_status"] as? [String: Int])?["421"] == 1000, "\(counts)")

    #expect(pebble.requestCount == requests, "the flood reached the CA")
    #expect(try Self.metric(h.adminPort, "tenant_gateway_acme_storage_reads_total") == reads)
    #expect(try ["issued", "failed", "held_elsewhere"].map { try Self.metric(h.adminPort, "tenant_gateway_acme_orders_total{result=\"\($0)\"}") } == orders)
    #expect(try FileManager.default.contentsOfDirectory(atPath: storage).sorted() == files)
    #expect(try Self.certificates(h.adminPort).count == 2)
    #expect(try Self.metric(h.adminPort, "tenant_gateway_acme_challenge_handshakes_total{result=\"refused\"}") == refusedBefore + 1000)
    #expect(h.gatewayRunning)
  }

  /// Renewal and a failed validation with its retry, against the real CA. Storage holds a
  /// certificate past its renewal window (`clients/expiring_cert.py`), and pebble's http-01 port
  /// first has nothing listening on it: the renewal fails, the domain is `failed` with its error
  /// and a backoff of 2 min ± 10 %, and the old certificate keeps serving. Then
  /// `clients/tcp_relay.py` joins that port to the gateway's plain-HTTP listener, and the retry
  /// replaces the old certificate with pebble's.
  @Test("Renewal: a failed validation backs off and keeps the old certificate serving; the retry validates and replaces it")
  func renewalAfterFailedValidation() throws {
    let h = try GatewayHarness()
    defer { h.stop() }
    let httpPort = freePort()
    let validationPort = freePort()
    let pebble = try Pebble(tlsPort: freePort(), httpPort: validationPort)
    defer { pebble.stop() }
    let storage = h.directory.appendingPathComponent("acme").path
    let domain = "shop.acme.test"
    let made = try h.python("expiring_cert.py", [domain, storage])
    #expect(made.status == 0, "\(made.stderr)")
    try Self.configure(h, pebble: pebble, httpPort: httpPort, storage: storage, challenges: "[http-01]")
    try h.startPrewritten()

    // Loaded at start and served at once, although it is already due for renewal.
    let old = try Self.presented(port: h.port, sni: domain)
    #expect(old.contains("expiring test issuer"), "\(old) \(h.gatewayLogTail)")
    // The renewal's validation reaches a closed port: failed, with why and when it tries again.
    try h.waitFor(timeout: 60) { try Self.state(h.adminPort, domain) == "failed" }
    let entry = try #require(try Self.certificates(h.adminPort).first { $0["domain"] as? String == domain })
    let lastError = entry["lastError"] as? String ?? ""
    #expect(!lastError.isEmpty, "\(entry)")
    let next = try #require((entry["nextAttemptAt"] as? String).flatMap { ISO8601DateFormatter().date(from: $0) }, "\(entry)")
    let wait = next.timeIntervalSinceNow
    #expect(wait > 60 && wait < 135, "next attempt in \(wait) s: \(entry)")
    #expect(try Self.metric(h.adminPort, "tenant_gateway_acme_orders_total{result=\"failed\"}") >= 1)
    #expect(try Self.metric(h.adminPort, "tenant_gateway_acme_orders_total{result=\"issued\"}") == 0)
    let during = try Self.presented(port: h.port, sni: domain)
    #expect(during.contains("expiring test issuer"), "the old certificate stopped serving: \(during)")

    // The CA can reach the gateway now: the backed-off retry validates and replaces the certificate.
    let relay = try h.startPython("tcp_relay.py", [String(validationPort), String(httpPort), "240"], output: "/dev/null")
    defer { relay.terminate() }
    try h.waitFor(timeout: 200) { try Self.state(h.adminPort, domain) == "valid" }
    let root = try pebble.issuingRoot()
    let renewed = try Self.presented(port: h.port, sni: domain, root: root)
    #expect(renewed.contains("Pebble") && renewed.contains("Verify return code: 0 (ok)"), "\(renewed)")
    #expect(try Self.metric(h.adminPort, "tenant_gateway_acme_orders_total{result=\"issued\"}") >= 1)
    let stored = try String(contentsOfFile: "\(storage)/\(domain).pem", encoding: .utf8)
    #expect(!stored.isEmpty && pebble.issuedCount >= 1)
    #expect(try Self.certificates(h.adminPort).first { $0["domain"] as? String == domain }?["lastError"] as? String == nil)
  }

  /// Starts a second gateway from `h`'s config with its own admin port (and storage_dir, when
  /// given), on the same listeners (SO_REUSEPORT). Returns the process, its admin port and log.
  static func startSecond(_ h: GatewayHarness, storage: (from: String, to: String)? = nil, name: String = "2") throws -> (Process, Int, String) {
    let admin = freePort()
    let path = h.directory.appendingPathComponent("gateway-\(name).conf").path
    var text = try String(contentsOfFile: h.configPath, encoding: .utf8)
      .replacingOccurrences(of: "admin: {address: \"127.0.0.1:\(h.adminPort)\"}", with: "admin: {address: \"127.0.0.1:\(admin)\"}")
    if let storage { text = text.replacingOccurrences(of: "storage_dir: \(storage.from),", with: "storage_dir: \(storage.to),") }
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    let p = Process()
    p.executableURL = URL(fileURLWithPath: Paths.binary)
    p.arguments = ["serve", "--config", path, "--log-level", "debug"]
    let log = h.directory.appendingPathComponent("gateway-\(name).log").path
    _ = FileManager.default.createFile(atPath: log, contents: nil)
    p.standardOutput = FileHandle(forWritingAtPath: log)
    p.standardError = p.standardOutput
    try p.run()
    return (p, admin, log)
  }

  static func tail(_ log: String) -> String { String(((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").suffix(2000)) }

  @Test("PostgreSQL storage: two gateways with their own storage_dir (no shared volume) on one port order each domain once; certificates, the one account key and the locks live in the database; a gateway with an empty storage_dir serves them without ordering")
  func postgresFleet() throws {
    let pg = try PostgresServer()
    defer { pg.stop() }
    try pg.seedSample()
    let extra = (1...4).map { "d\($0).pgfleet.test" }
    for d in extra { try pg.sql("INSERT INTO \"Domain\" (hostname, \"shopId\") VALUES ('\(d)', '\(Demo.acmeID)')") }
    let domains = ["shop.acme.test", "bibisaree.test"] + extra
    let h = try GatewayHarness()
    defer { h.stop() }
    let httpPort = freePort()
    let pebble = try Pebble(tlsPort: h.port, httpPort: httpPort)
    defer { pebble.stop() }
    let storageA = h.directory.appendingPathComponent("acme-a").path
    let storageB = h.directory.appendingPathComponent("acme-b").path
    try Self.configure(h, pebble: pebble, httpPort: httpPort, storage: storageA, postgres: pg)
    try h.startUpstream()
    let (second, secondAdmin, secondLog) = try Self.startSecond(h, storage: (storageA, storageB))
    defer { GatewayHarness.terminate(second) }
    try h.startPrewritten(upstream: false)

    try h.waitFor(timeout: 90) {
      try domains.allSatisfy { try Self.state(h.adminPort, $0) == "valid" && Self.state(secondAdmin, $0) == "valid" }
    }
    #expect(pebble.issuedCount == domains.count, "\(h.gatewayLogTail)\n\(Self.tail(secondLog))")
    #expect(try pg.sql("SELECT count(*) FROM tenant_gateway.certificates") == String(domains.count))
    #expect(try pg.sql("SELECT count(*) FROM tenant_gateway.acme_accounts") == "1")
    #expect(try pg.sql("SELECT count(*) FROM tenant_gateway.acme_challenges") == "0")
    // One account for the fleet: both gateways hold the database's key.
    let keyA = try String(contentsOfFile: storageA + "/account.key", encoding: .utf8)
    let keyB = try String(contentsOfFile: storageB + "/account.key", encoding: .utf8)
    #expect(keyA == keyB)
    #expect(try pg.sql("SELECT key_pem FROM tenant_gateway.acme_accounts") == keyA.trimmingCharacters(in: .whitespacesAndNewlines))
    // No shared volume: each storage_dir is a cache holding every certificate.
    for d in domains {
      #expect(FileManager.default.fileExists(atPath: "\(storageA)/\(d).pem") && FileManager.default.fileExists(atPath: "\(storageB)/\(d).pem"))
    }
    // The challenges went to the database, not to files.
    let challengeFiles = (try? FileManager.default.contentsOfDirectory(atPath: storageA + "/challenges")) ?? []
    #expect(challengeFiles.isEmpty)
    let root = try pebble.issuingRoot()
    for d in domains {
      let shown = try (0..<4).map { _ in try Self.presented(port: h.port, sni: d, root: root) }
      #expect(shown.allSatisfy { $0.contains("Verify return code: 0 (ok)") }, "\(d): \(shown)")
      #expect(Set(shown.map { $0.split(separator: "\n").first { $0.hasPrefix("serial=") } ?? "" }).count == 1, "\(d): \(shown)")
    }

    // A new pod (empty storage_dir) fills its cache from the database and orders nothing.
    GatewayHarness.terminate(second)
    let storageC = h.directory.appendingPathComponent("acme-c").path
    let (third, thirdAdmin, thirdLog) = try Self.startSecond(h, storage: (storageA, storageC), name: "3")
    defer { GatewayHarness.terminate(third) }
    try h.waitFor(timeout: 30) { try domains.allSatisfy { try Self.state(thirdAdmin, $0) == "valid" } }
    Thread.sleep(forTimeInterval: 1)
    #expect(try Self.metric(thirdAdmin, "tenant_gateway_acme_orders_total{result=\"issued\"}") == 0, "\(Self.tail(thirdLog))")
    #expect(pebble.issuedCount == domains.count)
    #expect(domains.allSatisfy { FileManager.default.fileExists(atPath: "\(storageC)/\($0).pem") })
  }

  @Test(
    "Two gateways on one storage_dir and one port: every domain ordered exactly once, either answers the CA's validation",
    arguments: ["tls-alpn-01", "http-01"])
  func fleet(_ challenge: String) throws {
    let h = try GatewayHarness()
    defer { h.stop() }
    let httpPort = freePort()
    let pebble = try Pebble(tlsPort: h.port, httpPort: httpPort)
    defer { pebble.stop() }
    let storage = h.directory.appendingPathComponent("shared-acme").path
    try Self.configure(h, pebble: pebble, httpPort: httpPort, storage: storage, challenges: "[\(challenge)]")
    // Six more domains, journalled before either gateway starts.
    let domains = ["shop.acme.test", "bibisaree.test"] + (1...6).map { "d\($0).fleet.test" }
    for d in domains.dropFirst(2) {
      let r = try Shell.run(Paths.binary, ["domains", "add", d, "acme", "--config", h.configPath])
      #expect(r.status == 0, "\(r.stderr)")
    }
    // The second gateway: the same config, listeners and storage, its own admin port.
    let secondAdmin = freePort()
    let secondConfig = h.directory.appendingPathComponent("gateway-2.conf").path
    let text = try String(contentsOfFile: h.configPath, encoding: .utf8)
    try text.replacingOccurrences(of: "admin: {address: \"127.0.0.1:\(h.adminPort)\"}", with: "admin: {address: \"127.0.0.1:\(secondAdmin)\"}")
      .write(toFile: secondConfig, atomically: true, encoding: .utf8)
    let second = Process()
    second.executableURL = URL(fileURLWithPath: Paths.binary)
    second.arguments = ["serve", "--config", secondConfig, "--log-level", "debug"]
    let secondLog = h.directory.appendingPathComponent("gateway-2.log").path
    _ = FileManager.default.createFile(atPath: secondLog, contents: nil)
    second.standardOutput = FileHandle(forWritingAtPath: secondLog)
    second.standardError = second.standardOutput
    try h.startUpstream()
    try second.run()
    defer { GatewayHarness.terminate(second) }
    try h.startPrewritten(upstream: false)

    try h.waitFor(timeout: 90) {
      try domains.allSatisfy { try Self.state(h.adminPort, $0) == "valid" && Self.state(secondAdmin, $0) == "valid" }
    }
    let log2 = String(((try? String(contentsOfFile: secondLog, encoding: .utf8)) ?? "").suffix(2000))
    // Exactly once: pebble issued one certificate per domain, and the two gateways' orders add up.
    #expect(pebble.issuedCount == domains.count, "\(pebble.issuedCount) issued for \(domains.count) domains\n\(h.gatewayLogTail)\n\(log2)")
    let issued = try Self.metric(h.adminPort, "tenant_gateway_acme_orders_total{result=\"issued\"}")
      + Self.metric(secondAdmin, "tenant_gateway_acme_orders_total{result=\"issued\"}")
    #expect(issued == domains.count)
    #expect(try Self.metric(h.adminPort, "tenant_gateway_acme_orders_total{result=\"failed\"}") == 0, "\(h.gatewayLogTail)")
    #expect(try Self.metric(secondAdmin, "tenant_gateway_acme_orders_total{result=\"failed\"}") == 0, "\(log2)")
    // Pebble validates each challenge from three perspectives, and SO_REUSEPORT spreads those
    // connections over both processes: the gateway that did not place the order answered some of
    // them from the shared storage (nothing else reads storage before the handshakes below).
    let sharedReads = try Self.metric(h.adminPort, "tenant_gateway_acme_storage_reads_total") + Self.metric(secondAdmin, "tenant_gateway_acme_storage_reads_total")
    #expect(sharedReads > 0)
    // Both serve the one stored certificate (the same serial, whichever process takes the handshake).
    let root = try pebble.issuingRoot()
    for d in domains {
      let serials = try (0..<4).map { _ in try Self.presented(port: h.port, sni: d, root: root) }
      #expect(serials.allSatisfy { $0.contains("Verify return code: 0 (ok)") }, "\(d): \(serials)")
      #expect(Set(serials.map { $0.split(separator: "\n").first { $0.hasPrefix("serial=") } ?? "" }).count == 1, "\(d): \(serials)")
    }
    #expect(try FileManager.default.contentsOfDirectory(atPath: storage + "/challenges").isEmpty)
  }
}
