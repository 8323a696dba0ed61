import Foundation
import Testing

/// Graceful drain on SIGTERM (PRODUCT.md §8) through the real binary.
@Suite("Lifecycle: graceful drain (real gateway)")
struct LifecycleTests {
  @Test("SIGTERM drains: readyz turns false, new connections are refused, no in-flight request fails, exit 0")
  func drainKeepsInFlightRequests() throws {
    try withGateway(limits: ["drain_timeout_s": "10"]) { gw in
      // Requests in flight on both protocols when the signal arrives (the upstream answers after 2 s).
      var clients: [(Process, String)] = []
      for (i, http2) in [false, true, false, true].enumerated() {
        let out = gw.directory.appendingPathComponent("drain-\(i).out").path
        clients.append((try gw.startCurl("acme.platform.localhost", "/__sleep/2000", http2: http2, output: out), out))
      }
      // Wait until the gateway has forwarded all four before signalling.
      try gw.waitFor(timeout: 5) { gw.upstreamRequests().filter { ($0["uri"] as? String) == "/__sleep/2000" }.count == 4 }
      let signalled = Date()
      gw.signal(SIGTERM)

      try gw.waitFor(timeout: 2) { try gw.admin("/readyz").status == 503 }
      // The listener is closed: a new client cannot connect.
      let late = try Shell.run("curl", ["-sk", "--max-time", "2", "--resolve", "acme.platform.localhost:\(gw.port):127.0.0.1",
                                        "-o", "/dev/null", "-w", "%{http_code}", "https://acme.platform.localhost:\(gw.port)/ok"])
      #expect(late.stdout == "000", "a connection was accepted during the drain")

      for (p, out) in clients {
        p.waitUntilExit()
        let code = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        #expect(p.terminationStatus == 0 && code == "200", "in-flight request failed during the drain: curl exit \(p.terminationStatus), status \(code)")
      }
      // The gateway exits 0 once the last connection has closed, well before drain_timeout_s.
      let deadline = Date().addingTimeInterval(8)
      while gw.gatewayRunning && Date() < deadline { usleep(20_000) }
      #expect(gw.gatewayExitStatus == 0)
      #expect(Date().timeIntervalSince(signalled) < 6)
      let log = (try? String(contentsOfFile: gw.gatewayLogPath, encoding: .utf8)) ?? ""
      #expect(log.contains("draining"))
    }
  }

  @Test("A drain that outlasts drain_timeout_s still exits 0 and closes what is left")
  func drainTimeout() throws {
    try withGateway(limits: ["drain_timeout_s": "1"]) { gw in
      let out = gw.directory.appendingPathComponent("slow.out").path
      let slow = try gw.startCurl("acme.platform.localhost", "/__sleep/6000", http2: false, output: out)
      try gw.waitFor(timeout: 5) { gw.upstreamRequests().contains { ($0["uri"] as? String) == "/__sleep/6000" } }
      let signalled = Date()
      gw.signal(SIGTERM)
      let deadline = Date().addingTimeInterval(5)
      while gw.gatewayRunning && Date() < deadline { usleep(20_000) }
      #expect(gw.gatewayExitStatus == 0)
      #expect(Date().timeIntervalSince(signalled) < 3, "the drain did not stop at drain_timeout_s")
      slow.waitUntilExit()
      #expect(((try? String(contentsOfFile: out, encoding: .utf8)) ?? "") != "200")
    }
  }
}

extension LifecycleTests {
  @Test("A second SIGTERM, or SIGINT, during a drain stops at once with exit 0", arguments: [SIGTERM, SIGINT])
  func secondSignalStopsTheDrain(_ second: Int32) throws {
    try withGateway(limits: ["drain_timeout_s": "30"]) { gw in
      let out = gw.directory.appendingPathComponent("slow.out").path
      let slow = try gw.startCurl("acme.platform.localhost", "/__sleep/20000", http2: false, output: out)
      try gw.waitFor(timeout: 5) { gw.upstreamRequests().contains { ($0["uri"] as? String) == "/__sleep/20000" } }
      gw.signal(SIGTERM)
      try gw.waitFor(timeout: 5) { gw.gatewayLogTail.contains("draining") }
      #expect(gw.gatewayRunning, "the drain should still be waiting for the slow request")
      let signalled = Date()
      gw.signal(second)
      let deadline = Date().addingTimeInterval(5)
      while gw.gatewayRunning && Date() < deadline { usleep(20_000) }
      #expect(!gw.gatewayRunning)
      #expect(gw.gatewayExitStatus == 0)
      #expect(Date().timeIntervalSince(signalled) < 3, "the second signal did not cut the drain short")
      slow.waitUntilExit()
    }
  }

  @Test("SIGHUP reloads the snapshot while serving; the gateway keeps running")
  func hangupReloads() throws {
    let gw = try GatewayHarness()
    defer { gw.stop() }
    // The file watcher polls once an hour here, so only the signal can explain a reload.
    try gw.writeConfig(snapshotPollInterval: 3600)
    try gw.startPrewritten()
    do {
      var doc = try String(contentsOfFile: gw.snapshotPath, encoding: .utf8)
      let version = "hup-\(getpid())"
      guard let r = doc.range(of: #""version"\s*:\s*"[^"]*""#, options: .regularExpression) else {
        Issue.record("no version in the sample snapshot")
        return
      }
      doc.replaceSubrange(r, with: "\"version\": \"\(version)\"")
      try doc.write(toFile: gw.snapshotPath, atomically: true, encoding: .utf8)
      gw.signal(SIGHUP)
      try gw.waitFor(timeout: 10) { (try? gw.admin("/admin/snapshot").json?["version"] as? String) == version }
      #expect(gw.gatewayRunning)
      #expect(try gw.curl("acme.platform.localhost", "/").status == 200)
    }
  }
}

/// The access log (PRODUCT.md §8) through the real binary.
@Suite("Operations: access log (real gateway)")
struct AccessLogTests {
  @Test("One JSON line per request with the §8 fields; never a key, cookie, token or Authorization value")
  func accessLogNeverLeaksSecrets() throws {
    let h = try GatewayHarness()
    defer { h.stop() }
    let logPath = h.directory.appendingPathComponent("access.log").path
    h.accessLogPath = logPath
    try h.start()
    let cookieSecret = "cookie-secret-6f1d2a9b"
    let querySecret = "query-secret-8c3e7d41"
    let bearerJunk = "Bearer-junk-secret-0a9b8c7d"
    var expected: [(status: Int, code: String?)] = []
    for http2 in [false, true] {
      var r = try h.curl(Demo.apiHost, "/v1/admin/orders?token=\(querySecret)", headers: ["Authorization: Bearer \(Demo.acmeSecret)", "Cookie: sid=\(cookieSecret)"], http2: http2)
      #expect(r.status == 200)
      expected.append((200, nil))
      r = try h.curl(Demo.apiHost, "/v1/store/products", headers: ["X-Publishable-Key: \(Demo.acmePublishable)", "Origin: https://evil.example"], http2: http2)
      expected.append((r.status, r.errorCode))
      r = try h.curl(Demo.apiHost, "/v1/admin/orders", headers: ["Authorization: Bearer \(Demo.acmeRevoked)"], http2: http2)
      expected.append((r.status, r.errorCode))
      r = try h.curl(Demo.apiHost, "/v1/admin/orders", headers: ["Authorization: \(bearerJunk)"], http2: http2)
      expected.append((r.status, r.errorCode))
      r = try h.curl("acme.platform.localhost", "/__download?bytes=5000", http2: http2)
      expected.append((r.status, nil))
    }
    // Stopping flushes the log (SIGTERM drains, then the writer thread finishes).
    let metrics = try h.admin("/metrics").body
    #expect(metrics.contains("tenant_gateway_access_log_dropped_total 0"))
    h.signal(SIGTERM)
    let deadline = Date().addingTimeInterval(8)
    while h.gatewayRunning && Date() < deadline { usleep(20_000) }

    let text = try String(contentsOfFile: logPath, encoding: .utf8)
    let lines = text.split(separator: "\n")
    #expect(lines.count == expected.count, "\(text)")
    var entries: [[String: Any]] = []
    for line in lines {
      let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
      #expect(obj != nil, "not JSON: \(line)")
      if let obj { entries.append(obj) }
    }
    for e in entries {
      for field in ["time", "request_id", "client", "protocol", "host", "method", "path", "status", "bytes_in", "bytes_out", "duration_ms"] {
        #expect(e[field] != nil, "missing \(field) in \(e)")
      }
    }
    // Loops flush their batches independently: compare as multisets, not in order.
    let seen = entries.map { "\($0["status"] as? Int ?? 0) \($0["code"] as? String ?? "-")" }.sorted()
    #expect(seen == expected.map { "\($0.status) \($0.code ?? "-")" }.sorted())
    let first = entries.first { ($0["path"] as? String) == "/v1/admin/orders" && ($0["status"] as? Int) == 200 } ?? [:]
    #expect(first["shop_id"] as? String == Demo.acmeID)
    #expect(first["auth"] as? String == "secret_key")
    #expect((first["key_id"] as? String)?.isEmpty == false)
    #expect(first["path"] as? String == "/v1/admin/orders")
    #expect(first["upstream_ms"] != nil)
    #expect(entries.map { $0["protocol"] as? String }.filter { $0 == "h2" }.count == expected.count / 2)
    if let download = entries.first(where: { ($0["path"] as? String) == "/__download" }) {
      #expect((download["bytes_out"] as? Int ?? 0) >= 5000)
    }
    for secret in [Demo.acmeSecret, Demo.acmePublishable, Demo.acmeRevoked, cookieSecret, querySecret, bearerJunk, "Bearer"] {
      #expect(!text.contains(secret), "the access log contains \(secret)")
      let gatewayLog = (try? String(contentsOfFile: h.gatewayLogPath, encoding: .utf8)) ?? ""
      #expect(!gatewayLog.contains(secret), "the process log contains \(secret)")
    }
  }
}

/// EdDSA X-Tenant signing and the JWKS (PRODUCT.md §5, §8) through the real binary.
@Suite("Operations: EdDSA signing and the JWKS (real gateway)")
struct JWKSTests {
  @Test("The first key signs (EdDSA); the JWKS holds only EdDSA public keys; a backend verifies with PyJWT")
  func eddsaAndJWKS() throws {
    let h = try GatewayHarness()
    defer { h.stop() }
    let keyPath = h.directory.appendingPathComponent("ed25519.pem").path
    let gen = try Shell.run("openssl", ["genpkey", "-algorithm", "ed25519", "-out", keyPath])
    #expect(gen.status == 0, "\(gen.stderr)")
    try h.writeConfig()
    var text = try String(contentsOfFile: h.configPath, encoding: .utf8)
    text = text.replacingOccurrences(
      of: "signing_keys: [{kid: dev-1, alg: HS256, secret_file: \(Demo.secretFile)}]",
      with: "signing_keys: [{kid: ed-1, alg: EdDSA, private_key_file: \(keyPath)}, {kid: dev-1, alg: HS256, secret_file: \(Demo.secretFile)}]")
    try text.write(toFile: h.configPath, atomically: true, encoding: .utf8)
    try h.startPrewritten()

    let jwks = try h.admin("/.well-known/tenant-jwks.json")
    #expect(jwks.status == 200)
    let keys = (jwks.json?["keys"] as? [[String: Any]]) ?? []
    #expect(keys.count == 1)
    #expect(keys.first?["kid"] as? String == "ed-1")
    #expect(keys.first?["kty"] as? String == "OKP" && keys.first?["crv"] as? String == "Ed25519")
    #expect(keys.first?["d"] == nil && keys.first?["k"] == nil, "private or symmetric material in the JWKS")
    let secret = try String(contentsOfFile: Demo.secretFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    #expect(!jwks.body.contains(secret))

    // Cacheable (backends fetch it rarely; docs/backend.md), never no-store.
    #expect(jwks.headers["cache-control"] == "public, max-age=300", "\(jwks.headers)")
    // The demo upstream verifies EdDSA through the JWKS, as a backend would.
    let demo = try h.curl("acme.platform.localhost", "/storefront")
    #expect(demo.status == 200 && demo.json?["verified"] as? Bool == true, "\(demo.body)")
    let token = try #require(h.upstreamRequests().last.flatMap { r in
      (r["headers"] as? [[String]])?.first { $0.first?.lowercased() == "x-tenant" }?.last
    })
    let r = try h.python("verify_jwks.py", [token, "http://127.0.0.1:\(h.adminPort)/.well-known/tenant-jwks.json", "tenant-gateway", "default"])
    #expect(r.status == 0, "\(r.stderr)")
    let verified = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
    #expect((verified?["header"] as? [String: Any])?["alg"] as? String == "EdDSA")
    #expect((verified?["claims"] as? [String: Any])?["shop_id"] as? String == Demo.acmeID)

    // Rotation without a restart: a new key goes first in the config; a reload picks it up.
    let key2 = h.directory.appendingPathComponent("ed25519-2.pem").path
    #expect(try Shell.run("openssl", ["genpkey", "-algorithm", "ed25519", "-out", key2]).status == 0)
    let rotated = text.replacingOccurrences(of: "signing_keys: [{kid: ed-1,", with: "signing_keys: [{kid: ed-2, alg: EdDSA, private_key_file: \(key2)}, {kid: ed-1,")
    try rotated.write(toFile: h.configPath, atomically: true, encoding: .utf8)
    #expect(try h.admin("/admin/reload", method: "POST").status == 200)
    let kids = ((try h.admin("/.well-known/tenant-jwks.json").json?["keys"] as? [[String: Any]]) ?? []).compactMap { $0["kid"] as? String }
    #expect(kids == ["ed-2", "ed-1"])
    func signingKID() throws -> String? {
      _ = try h.curl("acme.platform.localhost", "/storefront")
      let token = h.upstreamRequests().last.flatMap { r in (r["headers"] as? [[String]])?.first { $0.first?.lowercased() == "x-tenant" }?.last } ?? ""
      let r = try h.python("verify_jwks.py", [token, "http://127.0.0.1:\(h.adminPort)/.well-known/tenant-jwks.json", "tenant-gateway", "default"])
      return ((try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any]).flatMap { ($0["header"] as? [String: Any])?["kid"] as? String }
    }
    try h.waitFor(timeout: 3) { try signingKID() == "ed-2" }
    // A broken key list is refused on reload: the current keys keep signing.
    try rotated.replacingOccurrences(of: key2, with: key2 + ".missing").write(toFile: h.configPath, atomically: true, encoding: .utf8)
    _ = try h.admin("/admin/reload", method: "POST")
    #expect(try signingKID() == "ed-2")
    #expect(try String(contentsOfFile: h.gatewayLogPath, encoding: .utf8).contains("signing keys rejected on reload"))
  }
}

/// Latency histograms at /metrics (PRODUCT.md §8) through the real binary.
@Suite("Operations: latency histograms (real gateway)")
struct LatencyMetricsTests {
  /// `name{le="x"} v` lines of one histogram, in order, and its _count.
  func buckets(_ metrics: String, _ name: String, labels: String = "") -> (buckets: [(String, Int)], count: Int) {
    var out: [(String, Int)] = []
    var count = -1
    let bucketPrefix = "\(name)_bucket{\(labels.isEmpty ? "" : labels + ",")le=\""
    let countPrefix = "\(name)_count\(labels.isEmpty ? "" : "{\(labels)}") "
    for line in metrics.split(separator: "\n") {
      if line.hasPrefix(bucketPrefix) {
        let le = line.dropFirst(bucketPrefix.count).split(separator: "\"")[0]
        out.append((String(le), Int(line.split(separator: " ").last ?? "") ?? -1))
      } else if line.hasPrefix(countPrefix) {
        count = Int(line.split(separator: " ").last ?? "") ?? -1
      }
    }
    return (out, count)
  }

  @Test("Request and upstream latency histograms count every response, cumulatively, in the right buckets")
  func histograms() throws {
    try withGateway { gw in
      for http2 in [false, true] {
        for _ in 0..<3 { #expect(try gw.curl("acme.platform.localhost", "/ok", http2: http2).status == 200) }
      }
      #expect(try gw.curl(Demo.apiHost, "/v1/admin/x").status == 401)  // answered by the gateway: no upstream leg
      #expect(try gw.curl("acme.platform.localhost", "/__sleep/300").status == 200)
      let metrics = try gw.admin("/metrics").body

      let request = buckets(metrics, "tenant_gateway_request_duration_seconds")
      #expect(request.count == 8, "\(metrics)")
      let upstream = buckets(metrics, "tenant_gateway_upstream_response_seconds", labels: "cluster=\"default\"")
      #expect(upstream.count == 7)
      for h in [request, upstream] {
        #expect(h.buckets.last?.0 == "+Inf" && h.buckets.last?.1 == h.count)
        #expect(zip(h.buckets, h.buckets.dropFirst()).allSatisfy { $0.1 <= $1.1 }, "not cumulative: \(h.buckets)")
      }
      // The 300 ms request is above the 0.25 s bound and within 0.5 s (or 1 s on a slow machine).
      let le025 = upstream.buckets.first { $0.0 == "0.25" }?.1 ?? -1
      #expect(le025 == 6, "\(upstream.buckets)")
      #expect(upstream.buckets.first { $0.0 == "1.0" }?.1 == 7, "\(upstream.buckets)")
      // The bounded per-shop top-K: acme's seven resolved requests.
      #expect(metrics.contains("tenant_gateway_shop_requests_top{shop_id=\"\(Demo.acmeID)\"} 7"), "\(metrics)")
    }
  }
}
