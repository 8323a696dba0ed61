import Foundation
import Testing

/// Reloads, the admin listener, `check`, and last-known-good — through the real binary.
@Suite("Operations (real gateway)")
struct OperationsTests {
  /// The sample snapshot with `extraShops` more shops and the given version.
  static func snapshot(version: String, extraShops: Int) throws -> String {
    let url = Paths.packageRoot.appendingPathComponent("samples/tenants.json")
    var doc = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    var shops = doc["shops"] as! [[String: Any]]
    for i in 0..<extraShops {
      shops.append(["id": "00000000-0000-4000-8000-\(String(format: "%012d", i))", "subdomain": "extra\(i)",
                    "customDomains": ["extra\(i).merchant.test"], "headlessMode": false, "allowedOrigins": [], "status": "active"])
    }
    doc["shops"] = shops
    doc["version"] = version
    return String(decoding: try JSONSerialization.data(withJSONObject: doc), as: UTF8.self)
  }

  static func h2loadSummary(_ output: String) -> (succeeded: Int, failed: Int, errored: Int, non2xx: Int) {
    func number(after label: String, in line: Substring) -> Int {
      let parts = line.components(separatedBy: ", ")
      for p in parts where p.hasSuffix(label) { return Int(p.split(separator: " ").first(where: { Int($0) != nil }) ?? "") ?? -1 }
      return -1
    }
    let req = output.split(separator: "\n").first { $0.hasPrefix("requests:") } ?? ""
    let codes = output.split(separator: "\n").first { $0.hasPrefix("status codes:") } ?? ""
    let two = number(after: "2xx", in: codes)
    let total = number(after: "done", in: req)
    return (number(after: "succeeded", in: req), number(after: "failed", in: req), number(after: "errored", in: req), total - two)
  }

  @Test("Reload under concurrent HTTP/1.1 and HTTP/2 load: zero failed requests (§6)")
  func reloadUnderLoad() throws {
    try withGateway { gw in
      let stop = ManagedFlag()
      let reloads = Counter()
      let reloader = Thread {
        var n = 0
        while !stop.value {
          n += 1
          let doc = try! Self.snapshot(version: "reload-\(n)", extraShops: n % 2 == 0 ? 50 : 10)
          try! doc.write(toFile: gw.snapshotPath, atomically: true, encoding: .utf8)
          if n % 2 == 0 { _ = try? gw.admin("/admin/reload", method: "POST") } else { gw.signal(SIGHUP) }
          reloads.increment()
          usleep(100_000)
        }
      }
      reloader.start()
      let url = "https://127.0.0.1:\(gw.port)/products"
      let h2 = try Shell.run("h2load", ["-n", "4000", "-c", "4", "-m", "8", "-H", ":authority: acme.platform.localhost", url])
      // h2load turns :authority into Host for HTTP/1.1.
      let h1 = try Shell.run("h2load", ["--h1", "-n", "2000", "-c", "4", "-H", ":authority: acme.platform.localhost", url])
      stop.value = true
      while !reloader.isFinished { usleep(10_000) }
      for (name, out) in [("h2", h2.stdout), ("h1", h1.stdout)] {
        let s = Self.h2loadSummary(out)
        #expect(s.failed == 0 && s.errored == 0 && s.non2xx == 0, "\(name): \(out)")
        #expect(s.succeeded > 0, "\(name): \(out)")
      }
      #expect(reloads.value >= 3)
      let status = try gw.admin("/admin/snapshot").json
      #expect((status?["version"] as? String)?.hasPrefix("reload-") == true)
      #expect(status?["lastError"] is NSNull)
    }
  }

  @Test("Admin: health, readiness, snapshot status, metrics; a bad reload is 422 and the old table keeps serving")
  func admin() throws {
    try withGateway { gw in
      #expect(try gw.admin("/healthz").status == 200)
      #expect(try gw.admin("/readyz").status == 200)
      let snap = try gw.admin("/admin/snapshot")
      #expect(snap.json?["version"] as? String == "2026-11-25T10:00:00Z-000001")
      #expect(snap.json?["shops"] as? Int == 3)
      #expect(snap.json?["keys"] as? Int == 6)
      #expect((snap.json?["source"] as? String)?.hasPrefix("file:") == true)

      _ = try gw.curl("acme.platform.localhost", "/")
      _ = try gw.curl("nobody.platform.localhost", "/")
      let metrics = try gw.admin("/metrics")
      #expect(metrics.status == 200)
      #expect(metrics.body.contains("tenant_gateway_requests_total{code_class=\"2xx\"} 1"), "\(metrics.body)")
      #expect(metrics.body.contains("tenant_gateway_refusals_total{code=\"unknown_host\"} 1"))
      #expect(metrics.body.contains("tenant_gateway_snapshot_entries{kind=\"shops\"} 3"))

      // A snapshot breaking a rule: 422 naming the entry; the old table keeps serving.
      var broken = try Self.snapshot(version: "broken", extraShops: 0)
      broken = broken.replacingOccurrences(of: "\"subdomain\":\"bibi-saree\"", with: "\"subdomain\":\"acme\"")
      try broken.write(toFile: gw.snapshotPath, atomically: true, encoding: .utf8)
      let rejected = try gw.admin("/admin/reload", method: "POST")
      #expect(rejected.status == 422)
      #expect(rejected.json?["accepted"] as? Bool == false)
      #expect(((rejected.json?["errors"] as? [String]) ?? []).contains { $0.contains("duplicate_subdomain") && $0.contains("acme") })
      #expect(try gw.curl("bibisaree.test", "/").claims?["shop_id"] as? String == Demo.bibiID)
      #expect(try gw.admin("/admin/snapshot").json?["version"] as? String == "2026-11-25T10:00:00Z-000001")
      #expect((try gw.admin("/admin/snapshot").json?["lastError"] as? [String])?.isEmpty == false)

      // A good snapshot: 200 with the new version and counts.
      try Self.snapshot(version: "v2", extraShops: 5).write(toFile: gw.snapshotPath, atomically: true, encoding: .utf8)
      let accepted = try gw.admin("/admin/reload", method: "POST")
      #expect(accepted.status == 200)
      #expect(accepted.json?["version"] as? String == "v2")
      #expect(accepted.json?["shops"] as? Int == 8)
      #expect(try gw.curl("extra3.platform.localhost", "/").status == 200)
    }
  }

  @Test("A restart while the snapshot source is broken serves the last-known-good copy")
  func lastKnownGoodAtRestart() throws {
    let h = try GatewayHarness()
    defer { h.stop() }
    try h.start()
    #expect(try h.curl("acme.platform.localhost", "/").status == 200)
    h.signal(SIGTERM)
    while h.gatewayRunning { usleep(20_000) }
    try "{ broken".write(toFile: h.snapshotPath, atomically: true, encoding: .utf8)
    try h.start(upstream: false)
    let status = try h.admin("/admin/snapshot").json
    #expect((status?["source"] as? String)?.hasPrefix("last-known-good:") == true)
    #expect((status?["lastError"] as? [String])?.first?.contains("malformed JSON") == true)
    #expect(try h.curl("acme.platform.localhost", "/").status == 200)
  }

  @Test("`check` accepts the shipped config and rejects bad ones with the key path and reason")
  func check() throws {
    let ok = try Shell.run(Paths.binary, ["check", "--config", Paths.packageRoot.appendingPathComponent("gateway.conf").path])
    #expect(ok.status == 0, "\(ok.stderr)")
    #expect(ok.stdout.contains("configuration OK"))

    let h = try GatewayHarness(extraConfig: "policy: {refuse_secret_key_in_browser: perhaps}\nmystery: 1")
    defer { h.stop() }
    try h.writeConfig()
    let bad = try Shell.run(Paths.binary, ["check", "--config", h.configPath])
    #expect(bad.status != 0)
    #expect(bad.stderr.contains("policy.refuse_secret_key_in_browser: must be true or false"), "\(bad.stderr)")

    let unknown = try GatewayHarness(extraConfig: "mystery: 1")
    defer { unknown.stop() }
    try unknown.writeConfig()
    let u = try Shell.run(Paths.binary, ["check", "--config", unknown.configPath])
    #expect(u.status != 0)
    #expect(u.stderr.contains("unknown key mystery"))

    var broken = try Self.snapshot(version: "x", extraShops: 0)
    broken = broken.replacingOccurrences(of: "\"shop.acme.test\"", with: "\"bibisaree.test\"")
    let s = try GatewayHarness(snapshot: broken)
    defer { s.stop() }
    try s.writeConfig()
    let snap = try Shell.run(Paths.binary, ["check", "--config", s.configPath])
    #expect(snap.status != 0)
    #expect(snap.stderr.contains("duplicate_custom_domain"), "\(snap.stderr)")

    // --set reaches check too.
    let set = try Shell.run(Paths.binary, ["check", "--config", s.configPath, "--set", "listen.address=nonsense"])
    #expect(set.stderr.contains("listen.address"))
  }

  @Test("keys hash prints the sha256 the snapshot stores")
  func keysHash() throws {
    let r = try Shell.run(Paths.binary, ["keys", "hash"], input: Data("\(Demo.acmeSecret)\n".utf8))
    let expected = try Shell.run("sh", ["-c", "printf %s '\(Demo.acmeSecret)' | sha256sum"]).stdout.split(separator: " ")[0]
    #expect(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == String(expected))
  }
}

final class ManagedFlag: @unchecked Sendable {
  private let lock = NSLock()
  private var v = false
  var value: Bool {
    get { lock.withLock { v } }
    set { lock.withLock { v = newValue } }
  }
}

final class Counter: @unchecked Sendable {
  private let lock = NSLock()
  private var v = 0
  var value: Int { lock.withLock { v } }
  func increment() { lock.withLock { v += 1 } }
}

@Suite("scripts/loadtest.sh against the real gateway")
struct LoadTestScriptTests {
  @Test("Passes within thresholds, fails on a broken one, writes the distribution, h1 and h2")
  func loadtest() throws {
    try withGateway { gw in
      let hosts = gw.directory.appendingPathComponent("hosts.txt").path
      try "acme.platform.localhost\nbibi-saree.platform.localhost\n".write(toFile: hosts, atomically: true, encoding: .utf8)
      let lat = gw.directory.appendingPathComponent("lat.tsv").path
      let script = Paths.packageRoot.appendingPathComponent("scripts/loadtest.sh").path
      let url = "https://127.0.0.1:\(gw.port)/products"
      let ok = try Shell.run("bash", [script, "--url", url, "--hosts", hosts, "--duration", "2", "--connections", "4", "--max-error-rate", "0", "--latency-out", lat])
      #expect(ok.status == 0, "\(ok.stdout) \(ok.stderr)")
      #expect(ok.stdout.contains("responses by status: 200:"))
      #expect(((try? String(contentsOfFile: lat, encoding: .utf8)) ?? "").split(separator: "\n").count == 102)
      let broken = try Shell.run("bash", [script, "--url", url, "--hosts", hosts, "--duration", "1", "--connections", "2", "--max-p99-ms", "0.0001"])
      #expect(broken.status == 1)
      #expect(broken.stdout.contains("THRESHOLD BROKEN"))
      let h2 = try Shell.run("bash", [script, "--protocol", "h2", "--url", url, "--hosts", hosts, "--duration", "2", "--connections", "2", "--streams", "4", "--max-error-rate", "0"])
      #expect(h2.status == 0, "\(h2.stdout) \(h2.stderr)")
      // Errors count: unknown hosts are 421s.
      let bad = gw.directory.appendingPathComponent("bad.txt").path
      try "ghost.platform.localhost\n".write(toFile: bad, atomically: true, encoding: .utf8)
      let errors = try Shell.run("bash", [script, "--url", url, "--hosts", bad, "--duration", "1", "--connections", "2", "--max-error-rate", "0.01"])
      #expect(errors.status == 1)
      #expect(errors.stdout.contains("421:"))
    }
  }

  @Test("CI defaults: non-2xx fail without any option, --allow-status accepts some, --rate paces, one greppable summary line, a real --help, loopback unless --allow-remote, a log-scale plot")
  func ciDefaults() throws {
    try withGateway { gw in
      let script = Paths.packageRoot.appendingPathComponent("scripts/loadtest.sh").path
      let hosts = gw.directory.appendingPathComponent("hosts.txt").path
      try "acme.platform.localhost\n".write(toFile: hosts, atomically: true, encoding: .utf8)
      // Half the requests are 403s (a publishable key on a secret-key route is refused): a failure by default.
      let keys = gw.directory.appendingPathComponent("keys.txt").path
      try "\(Demo.acmeSecret)\n\(Demo.acmePublishable)\n".write(toFile: keys, atomically: true, encoding: .utf8)
      let api = gw.directory.appendingPathComponent("api.txt").path
      try "\(Demo.apiHost)\n".write(toFile: api, atomically: true, encoding: .utf8)
      let url = "https://127.0.0.1:\(gw.port)/v1/admin/products"
      let mixed = try Shell.run("bash", [script, "--url", url, "--hosts", api, "--keys", keys, "--duration", "1", "--connections", "2"])
      #expect(mixed.status == 1, "\(mixed.stdout)")
      #expect(mixed.stdout.contains("403:") && mixed.stdout.contains("THRESHOLD BROKEN: error rate"), "\(mixed.stdout)")
      #expect(mixed.stdout.contains("loadtest: FAIL requests="), "\(mixed.stdout)")
      let allowed = try Shell.run("bash", [script, "--url", url, "--hosts", api, "--keys", keys, "--duration", "1", "--connections", "2", "--allow-status", "401,403"])
      #expect(allowed.status == 0, "\(allowed.stdout)")
      #expect(allowed.stdout.contains("loadtest: PASS requests="), "\(allowed.stdout)")

      // --rate 40 for 3 s with 2 connections: about 120 requests, far below the unpaced rate.
      let lat = gw.directory.appendingPathComponent("lat.tsv").path
      let plot = gw.directory.appendingPathComponent("lat.png").path
      let paced = try Shell.run("bash", [
        script, "--url", "https://127.0.0.1:\(gw.port)/paced", "--hosts", hosts, "--duration", "3", "--connections", "2", "--rate", "40",
        "--max-p99-ms", "500", "--latency-out", lat, "--plot", plot,
      ])
      #expect(paced.status == 0, "\(paced.stdout) \(paced.stderr)")
      let summary = paced.stdout.split(separator: "\n").first { $0.hasPrefix("loadtest: PASS") } ?? ""
      let requests = Int(summary.split(separator: " ").first { $0.hasPrefix("requests=") }?.dropFirst("requests=".count) ?? "") ?? -1
      #expect((60...180).contains(requests), "paced to 40/s for 3 s: \(summary)")
      let png = try Data(contentsOf: URL(fileURLWithPath: plot))
      #expect(png.prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]), "a PNG plot")

      let help = try Shell.run("bash", [script, "--help"])
      #expect(help.status == 0 && help.stdout.hasPrefix("usage: scripts/loadtest.sh") && help.stdout.contains("--allow-status"))
      #expect(!help.stdout.contains("set -euo"), "--help prints usage, not the script")
      let remote = try Shell.run("bash", [script, "--url", "https://192.0.2.1/", "--duration", "1"])
      #expect(remote.status == 2 && remote.stderr.contains("--allow-remote"), "\(remote.stderr)")
      let typo = try Shell.run("bash", [script, "--url", url, "--durration", "1"])
      #expect(typo.status == 2 && typo.stderr.contains("unknown option --durration"))
    }
  }
}
