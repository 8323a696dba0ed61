import Foundation
import Testing

/// An operator's first week (issue 16): shipped files that run, `check` that fails where `serve`
/// would, nginx's signals, health from the first instant, errors that say where.
@Suite("Operating the gateway", .serialized)
struct OperatorTests {
  @Test("Shipped files run: check passes on every shipped config and snapshot (the ConfigMap's extracted), and the container's config serves")
  func shippedFilesRun() throws {
    let r = try Shell.run(
      "bash", [Paths.packageRoot.appendingPathComponent("scripts/check-shipped.sh").path, Paths.binary])
    #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
    #expect(r.stdout.contains("ok: check docker/k8s/configmap.yaml"), "\(r.stdout)")
    #expect(r.stdout.contains("verified X-Tenant"), "\(r.stdout)")
  }

  /// A config whose first certificate pair is `cert`/`key`, in `h`'s directory.
  func config(_ h: GatewayHarness, cert: String, key: String) throws -> String {
    try h.writeConfig()
    let text = try String(contentsOfFile: h.configPath, encoding: .utf8)
      .replacingOccurrences(of: "{cert: \(TestCertificates.platform.cert), key: \(TestCertificates.platform.key)}", with: "{cert: \(cert), key: \(key)}")
    try text.write(toFile: h.configPath, atomically: true, encoding: .utf8)
    return h.configPath
  }

  /// The line of gateway.conf that names the first certificate pair.
  func certificateLine(_ path: String) throws -> Int {
    let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
    return (lines.firstIndex { $0.contains("{cert:") } ?? -1) + 1
  }

  @Test("check fails where serve fails, naming key path, file and line: garbage PEM, a key of another certificate, an expired certificate")
  func checkLoadsWhatServeLoads() throws {
    let h = try GatewayHarness()
    defer { h.stop() }
    let dir = h.directory.path
    let garbage = "\(dir)/garbage.pem"
    try "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n".write(toFile: garbage, atomically: true, encoding: .utf8)
    // An expired certificate (2019–2020) and its key, made with the cryptography module sslyze brings.
    let expired = try Shell.run("python3", ["-c", """
      import datetime, sys
      from cryptography import x509
      from cryptography.x509.oid import NameOID
      from cryptography.hazmat.primitives import hashes, serialization
      from cryptography.hazmat.primitives.asymmetric import ec
      key = ec.generate_private_key(ec.SECP256R1())
      name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "api.platform.localhost")])
      cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.datetime(2019, 1, 1)).not_valid_after(datetime.datetime(2020, 1, 1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("api.platform.localhost")]), critical=False)
        .sign(key, hashes.SHA256()))
      open(sys.argv[1] + "/expired.pem", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
      open(sys.argv[1] + "/expired.key", "wb").write(key.private_bytes(serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
      """, dir])
    try #require(expired.status == 0, "\(expired.stderr)")
    let cases: [(String, String, String, String)] = [
      ("garbage PEM", garbage, TestCertificates.platform.key, "tls.certificates[0].cert: \(garbage)"),
      ("mismatched key", TestCertificates.platform.cert, TestCertificates.customDomains.key, "does not match the certificate"),
      ("expired", "\(dir)/expired.pem", "\(dir)/expired.key", "expired on 2020-01-01"),
    ]
    for (name, cert, key, expected) in cases {
      let path = try config(h, cert: cert, key: key)
      let line = try certificateLine(path)
      let check = try Shell.run(Paths.binary, ["check", "--config", path])
      #expect(check.status == 1, "\(name): check rc \(check.status): \(check.stdout) \(check.stderr)")
      #expect(check.stderr.contains("\(path):\(line): tls.certificates[0]"), "\(name): \(check.stderr)")
      #expect(check.stderr.contains(expected), "\(name): \(check.stderr)")
      #expect(!check.stdout.contains("configuration OK"), "\(name)")
      if name != "expired" {
        // serve refuses the same files with the same message (an expired certificate is served
        // with an error logged: refusing to start would turn a missed renewal into an outage).
        let serve = try Shell.run("timeout", ["10", Paths.binary, "serve", "--config", path])
        #expect(serve.status == 1, "\(name): serve rc \(serve.status): \(serve.stderr)")
        #expect(serve.stderr.contains("\(path):\(line): tls.certificates[0]") && serve.stderr.contains(expected), "\(name): \(serve.stderr)")
      }
    }
  }

  @Test("check warns about secrets readable by everyone and about listen addresses already taken")
  func checkWarnings() throws {
    try withGateway { h in
      let secret = h.directory.appendingPathComponent("open.key").path
      try String(repeating: "s", count: 40).write(toFile: secret, atomically: true, encoding: .utf8)
      chmod(secret, 0o644)
      var text = try String(contentsOfFile: h.configPath, encoding: .utf8)
      text = text.replacingOccurrences(of: "secret_file: \(Demo.secretFile)", with: "secret_file: \(secret)")
      let path = h.directory.appendingPathComponent("check.conf").path
      try text.write(toFile: path, atomically: true, encoding: .utf8)
      let r = try Shell.run(Paths.binary, ["check", "--config", path])
      #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
      #expect(r.stdout.contains("tenant_header.signing_keys[0]: \(secret) is readable by every user (mode 644)"), "\(r.stdout)")
      // The running gateway holds both ports: check says so (a warning; serve could bind beside it).
      #expect(r.stdout.contains("warning: \(path):1: listen.address: 127.0.0.1:\(h.port) cannot be bound now (address already in use)"), "\(r.stdout)")
      #expect(r.stdout.contains("admin.address: 127.0.0.1:\(h.adminPort) cannot be bound now"), "\(r.stdout)")
    }
  }

  @Test("--version prints the version; the start log and tenant_gateway_build_info carry it")
  func version() throws {
    let r = try Shell.run(Paths.binary, ["--version"])
    #expect(r.status == 0)
    let version = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    #expect(version.split(separator: ".").count == 3, "\(r.stdout)")
    try withGateway { h in
      let log = try String(contentsOfFile: h.gatewayLogPath, encoding: .utf8)
      #expect(log.contains("starting") && log.contains("version=\(version)"), "\(log.prefix(600))")
      #expect(log.contains("snapshot loaded") && log.contains("duration_s="), "the load's duration is logged: \(log.prefix(900))")
      let metrics = try h.admin("/metrics").body
      #expect(metrics.contains("tenant_gateway_build_info{version=\"\(version)\""), "\(metrics.prefix(300))")
    }
  }

  @Test("--log-format json: every application log line is a JSON object with time, level, label and message")
  func jsonApplicationLogs() throws {
    let h = try GatewayHarness()
    defer { h.stop() }
    try h.writeConfig()
    let log = h.directory.appendingPathComponent("app.log").path
    let g = try GatewayHarness.startProcess(
      ["sh", "-c", "exec '\(Paths.binary)' serve --config '\(h.configPath)' --log-format json 2>&1"], output: log)
    defer { GatewayHarness.terminate(g) }
    // The TLS listener's line: it comes after the snapshot load ("admin listening" comes before it,
    // so waiting for any "listening" raced the load on a busy machine).
    try h.waitFor(timeout: 20) { ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("\"message\":\"listening\"") }
    let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
    #expect(lines.count >= 3)
    for line in lines {
      let doc = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
      #expect(doc != nil, "not JSON: \(line)")
      #expect(doc?["level"] is String && doc?["message"] is String && doc?["time"] is String, "\(line)")
    }
    #expect(lines.contains { $0.contains("\"message\":\"snapshot loaded\"") && $0.contains("\"duration_s\"") })
    let bad = try Shell.run(Paths.binary, ["serve", "--config", h.configPath, "--log-format", "yaml"])
    #expect(bad.status == 64)
  }

  @Test("SIGUSR1 reopens the access log (logrotate's rename, then SIGUSR1); the process keeps serving")
  func sigusr1ReopensAccessLog() throws {
    try withAccessLog { h, log in try reopenAfterRotation(h, log: log) }
  }

  func reopenAfterRotation(_ h: GatewayHarness, log: String) throws {
    #expect(try h.curl("acme.platform.localhost", "/one").status == 200)
    try h.waitFor(timeout: 5) { ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("/one") }
    let rotated = log + ".1"
    try FileManager.default.moveItem(atPath: log, toPath: rotated)
    h.signal(SIGUSR1)
    try h.waitFor(timeout: 5) { FileManager.default.fileExists(atPath: log) }
    #expect(h.gatewayRunning, "\(h.gatewayLogTail)")
    #expect(try h.curl("acme.platform.localhost", "/two").status == 200)
    try h.waitFor(timeout: 5) { ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("/two") }
    let old = try String(contentsOfFile: rotated, encoding: .utf8)
    #expect(old.contains("/one") && !old.contains("/two"))
    #expect(h.gatewayRunning)
  }

  @Test("Health from the first instant: with a snapshot URL that never answers, /healthz is 200 and /readyz 503 (GET, HEAD, OPTIONS)")
  func healthWhileLoading() throws {
    // A control plane that accepts and never answers.
    let hangPort = freePort()
    let hang = try GatewayHarness.startProcess(
      ["python3", "-c", "import socket,time\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', \(hangPort))); s.listen(16)\nc=[]\nwhile True: c.append(s.accept())"],
      output: "/dev/null")
    defer { GatewayHarness.terminate(hang) }
    let h = try GatewayHarness()
    defer { h.stop() }
    try h.writeConfig()
    var text = try String(contentsOfFile: h.configPath, encoding: .utf8)
    text = text.replacingOccurrences(of: "snapshot: {path: \(h.snapshotPath),", with: "snapshot: {url: \"http://127.0.0.1:\(hangPort)/snapshot.json\",")
    try text.write(toFile: h.configPath, atomically: true, encoding: .utf8)
    try h.waitFor(timeout: 30) { isListening(port: hangPort) }
    let g = try GatewayHarness.startProcess([Paths.binary, "serve", "--config", h.configPath], output: h.gatewayLogPath)
    defer { GatewayHarness.terminate(g) }
    let started = Date()
    var healthz = ""
    while Date().timeIntervalSince(started) < 3 {
      healthz = (try? Shell.run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(h.adminPort)/healthz"]))?.stdout ?? ""
      if healthz == "200" { break }
      usleep(50_000)
    }
    #expect(healthz == "200", "no /healthz within 3 s of start")
    for method in ["GET", "HEAD", "OPTIONS"] {
      let flag = method == "HEAD" ? ["-I"] : ["-X", method]
      let live = try Shell.run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}"] + flag + ["http://127.0.0.1:\(h.adminPort)/healthz"])
      let ready = try Shell.run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}"] + flag + ["http://127.0.0.1:\(h.adminPort)/readyz"])
      #expect(live.stdout == (method == "OPTIONS" ? "204" : "200"), "\(method) /healthz")
      #expect(ready.stdout == (method == "OPTIONS" ? "204" : "503"), "\(method) /readyz")
    }
    #expect(!isListening(port: h.port), "the TLS listener opens only once a table is loaded")
    #expect(g.isRunning)
    // The harness discarded the hanging server's output through /dev/null: it is still the device
    // (an atomic createFile there once replaced it with a regular file, and broke apt for the machine).
    var st = stat()
    #expect(stat("/dev/null", &st) == 0 && (st.st_mode & S_IFMT) == S_IFCHR, "/dev/null is no longer a character device")
  }

  @Test("Errors say where: a busy port names its address, a bad --set or TGW_ value names its source, typos get a did-you-mean, log levels are validated")
  func errorsHaveContext() throws {
    let h = try GatewayHarness()
    defer { h.stop() }
    try h.writeConfig()
    // A port held by a socket without SO_REUSEPORT.
    let busy = freePort()
    let holder = try GatewayHarness.startProcess(
      ["python3", "-c", "import socket,time\ns=socket.socket(); s.bind(('127.0.0.1', \(busy))); s.listen(1); time.sleep(30)"], output: "/dev/null")
    defer { GatewayHarness.terminate(holder) }
    try h.waitFor(timeout: 30) { isListening(port: busy) }
    let bind = try Shell.run("timeout", ["20", Paths.binary, "serve", "--config", h.configPath, "--set", "listen.address=127.0.0.1:\(busy)"])
    #expect(bind.status == 1)
    #expect(bind.stderr.contains("--set listen.address=127.0.0.1:\(busy): listen.address: cannot listen on 127.0.0.1:\(busy): address already in use"), "\(bind.stderr)")

    let badSet = try Shell.run(Paths.binary, ["check", "--config", h.configPath, "--set", "limits.max_body_bytes=lots"])
    #expect(badSet.status == 1)
    #expect(badSet.stderr.contains("--set limits.max_body_bytes=lots: limits.max_body_bytes: must be an integer"), "\(badSet.stderr)")
    var env = ProcessInfo.processInfo.environment
    env["TGW_LIMITS_IDLE_TIMEOUT_S"] = "soon"
    env["TGW_LISTEN_ADRESS"] = "127.0.0.1:1"
    let badEnv = try Shell.run(Paths.binary, ["check", "--config", h.configPath], environment: env)
    #expect(badEnv.status == 1)
    #expect(badEnv.stderr.contains("environment TGW_LIMITS_IDLE_TIMEOUT_S: limits.idle_timeout_s"), "\(badEnv.stderr)")
    #expect(badEnv.stdout.contains("TGW_LISTEN_ADRESS is not a gateway.conf key and is ignored; did you mean TGW_LISTEN_ADDRESS?"), "\(badEnv.stdout)")

    var text = try String(contentsOfFile: h.configPath, encoding: .utf8)
    text = text.replacingOccurrences(of: "listen: {address:", with: "listen: {adress: \"x\", address:")
    try text.write(toFile: h.configPath, atomically: true, encoding: .utf8)
    let typo = try Shell.run(Paths.binary, ["check", "--config", h.configPath])
    #expect(typo.status == 1)
    #expect(typo.stderr.contains("unknown key listen.adress (line 1) (did you mean listen.address?)"), "\(typo.stderr)")

    let diff = try Shell.run(Paths.binary, ["snapshot", "diff", h.directory.appendingPathComponent("missing.json").path, h.snapshotPath])
    #expect(diff.status == 1)
    #expect(diff.stderr.contains("cannot read the snapshot \(h.directory.path)/missing.json: no such file or directory"), "\(diff.stderr)")
    #expect(!diff.stderr.contains("NSCocoaErrorDomain"))

    try h.writeConfig()
    let mapped = try Shell.run(Paths.binary, ["domains", "add", "shop.acme.test", "bibi-saree", "--config", h.configPath])
    #expect(mapped.status == 1, "a refusal is not a usage error (64)")
    #expect(mapped.stderr.contains("shop.acme.test is already mapped to shop \(Demo.acmeID)"), "\(mapped.stderr)")
    #expect(!mapped.stderr.contains("USAGE"), "\(mapped.stderr)")
    try text.write(toFile: h.configPath, atomically: true, encoding: .utf8)

    let level = try Shell.run(Paths.binary, ["serve", "--config", h.configPath, "--log-level", "verbose"])
    #expect(level.status == 64)
    #expect(level.stderr.contains("--log-level verbose is not one of"), "\(level.stderr)")
  }

  /// The access-log lines written so far, parsed.
  func accessLines(_ path: String) -> [[String: Any]] {
    ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
      try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
    }
  }

  @Test("The access log counts everything: parser-level refusals with their method and path, bytes_out of refusals, upstream address, route, TLS version, user agent")
  func accessLogCountsEverything() throws {
    try withAccessLog { h, log in try countEverything(h, log: log) }
  }

  func countEverything(_ h: GatewayHarness, log: String) throws {
    let shapes = [
      ("/cl-te", "POST /cl-te HTTP/1.1\r\nHost: acme.platform.localhost\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
      ("/fold", "GET /fold HTTP/1.1\r\nHost: acme.platform.localhost\r\nX-A: b\r\n  c\r\n\r\n"),
      ("/tab\tin", "GET /tab\tin HTTP/1.1\r\nHost: acme.platform.localhost\r\n\r\n"),
      ("/two-cl", "POST /two-cl HTTP/1.1\r\nHost: acme.platform.localhost\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
    ]
    for (_, request) in shapes {
      let r = try h.raw(request)
      #expect(r["status"] as? Int == 400, "\(request): \(r)")
    }
    #expect(try h.curl("acme.platform.localhost", "/ok?token=secret", headers: ["User-Agent: probe/1.0"]).status == 200)
    #expect(try h.curl(Demo.apiHost, "/v1/admin/x", http2: true).status == 401)
    try h.waitFor(timeout: 5) { self.accessLines(log).count >= shapes.count + 2 }
    let lines = accessLines(log)
    let metrics = try h.admin("/metrics").body
    let refused = metrics.split(separator: "\n").first { $0.hasPrefix("tenant_gateway_refusals_total{code=\"invalid_request\"}") }
    #expect(refused?.hasSuffix(" \(shapes.count)") == true, "\(refused ?? "")")
    for (path, _) in shapes {
      let line = lines.first { ($0["path"] as? String) == path }
      #expect(line != nil, "no access-log line for \(path): \(lines)")
      #expect(line?["status"] as? Int == 400 && line?["code"] as? String == "invalid_request", "\(line ?? [:])")
      #expect((line?["bytes_out"] as? Int ?? 0) > 100, "a refusal's JSON body is counted: \(line ?? [:])")
      #expect(line?["tls"] as? String == "TLSv1.3")
    }
    let ok = try #require(lines.first { ($0["path"] as? String) == "/ok" }, "the query is never logged: \(lines)")
    #expect(ok["upstream_addr"] as? String == "http://127.0.0.1:\(h.upstreamPort)")
    #expect(ok["route"] as? String == "/")
    #expect(ok["user_agent"] as? String == "probe/1.0")
    let keyed = try #require(lines.first { ($0["path"] as? String) == "/v1/admin/x" })
    #expect(keyed["protocol"] as? String == "h2" && keyed["status"] as? Int == 401)
    #expect((keyed["bytes_out"] as? Int ?? 0) > 50, "\(keyed)")
    #expect(!((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("secret"))
  }

  @Test("Metrics an SRE expects: per-cluster requests, errors, latency and pool gauges, process_*, accepted connections, body bytes, TLS by version and failure reason, certificate expiry; promtool-clean")
  func metricsAnSREExpects() throws {
    try withGateway { h in
      #expect(try h.curl("acme.platform.localhost", "/one").status == 200)
      #expect(try h.curl("acme.platform.localhost", "/two", http2: true).status == 200)
      #expect(try h.curl("acme.platform.localhost", "/__status/503").status == 503)
      // Plain HTTP at the TLS port: a handshake failure with its reason.
      _ = try? Shell.run("curl", ["-s", "-o", "/dev/null", "--max-time", "3", "http://127.0.0.1:\(h.port)/"])
      h.stopUpstream()
      #expect([502, 503].contains(try h.curl("acme.platform.localhost", "/down").status))
      let m = try h.admin("/metrics").body
      func value(_ series: String) -> Double? {
        m.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
      }
      #expect(value("tenant_gateway_upstream_responses_total{cluster=\"default\",code_class=\"2xx\"}") == 2, "\(m)")
      #expect(value("tenant_gateway_upstream_responses_total{cluster=\"default\",code_class=\"5xx\"}") == 1)
      #expect(value("tenant_gateway_upstream_response_seconds_count{cluster=\"default\"}") == 3)
      #expect(m.contains("tenant_gateway_upstream_errors_total{cluster=\"default\",kind=\"connect_failed\"}"), "\(m)")
      #expect(value("tenant_gateway_upstream_connections{cluster=\"default\",state=\"open\"}") != nil)
      #expect(value("tenant_gateway_upstream_pending_requests{cluster=\"default\"}") == 0)
      #expect((value("process_resident_memory_bytes") ?? 0) > 1_000_000)
      #expect((value("process_open_fds") ?? 0) > 5)
      #expect(value("process_cpu_seconds_total") != nil)
      #expect(abs((value("process_start_time_seconds") ?? 0) - Date().timeIntervalSince1970) < 120)
      #expect((value("tenant_gateway_connections_accepted_total") ?? 0) >= 5)
      #expect((value("tenant_gateway_response_body_bytes_total") ?? 0) > 100)
      #expect(value("tenant_gateway_tls_handshakes_total{version=\"TLSv1.3\"}") ?? 0 >= 4)
      #expect(value("tenant_gateway_tls_handshake_failures_total{reason=\"plain_http\"}") == 1, "\(m)")
      let expiry = try #require(value("tenant_gateway_certificate_expiry_timestamp_seconds"))
      #expect(expiry > Date().timeIntervalSince1970)
      let lint = try Shell.run("sh", ["-c", "curl -s http://127.0.0.1:\(h.adminPort)/metrics | promtool check metrics"])
      #expect(lint.status == 0, "promtool: \(lint.stdout) \(lint.stderr)")
    }
  }

  @Test("systemd Type=notify: READY=1 once the listener is bound, RELOADING=1 then READY=1 around SIGHUP, STOPPING=1 on SIGTERM")
  func systemdNotify() throws {
    let h = try GatewayHarness()
    defer { h.stop() }
    try h.writeConfig()
    try h.startUpstream()
    let socketPath = h.directory.appendingPathComponent("notify.sock").path
    let messages = h.directory.appendingPathComponent("notify.txt").path
    // The listener stops by itself after 120 s; the test terminates it long before. Its start is
    // given 30 s: on a loaded 2-core CI machine (the PostgreSQL suite runs beside this one) a
    // cold python3 took more than 5 s to bind once.
    let listener = try h.startPython("notify_socket.py", [socketPath, messages, "120", "hup-on-ready"], output: "/dev/null")
    defer { GatewayHarness.terminate(listener) }
    try h.waitFor(timeout: 30) { !listener.isRunning || FileManager.default.fileExists(atPath: socketPath) }
    try #require(listener.isRunning, "notify_socket.py exited before binding \(socketPath)")
    let g = Process()
    g.executableURL = URL(fileURLWithPath: Paths.binary)
    g.arguments = ["serve", "--config", h.configPath]
    var env = ProcessInfo.processInfo.environment
    env["NOTIFY_SOCKET"] = socketPath
    g.environment = env
    g.standardOutput = FileHandle.nullDevice
    g.standardError = FileHandle.nullDevice
    try g.run()
    defer { GatewayHarness.terminate(g) }
    func lines() -> [String] { ((try? String(contentsOfFile: messages, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init) }
    func wait(_ step: String, _ timeout: Double, _ condition: () -> Bool) throws {
      do { try h.waitFor(timeout: timeout) { condition() } } catch {
        throw HarnessError(message: "\(step): timed out after \(timeout) s; running: \(g.isRunning); messages: \(lines())")
      }
    }
    try wait("READY=1", 20) { lines().contains { $0.hasPrefix("READY=1") } }
    #expect(isListening(port: h.port), "READY=1 only once the TLS listener is bound")
    #expect(lines().first?.contains("MAINPID=\(g.processIdentifier)") == true, "\(lines())")
    // The listener sent SIGHUP the moment READY=1 arrived, as a `systemctl reload` racing the
    // start may: SIGHUP's default action ends a process, so it must be trapped before readiness
    // is announced (CI caught a gateway that announced READY=1 first).
    try wait("RELOADING=1 then READY=1 after SIGHUP", 10) { lines().count >= 3 }
    #expect(lines()[1].hasPrefix("RELOADING=1|MONOTONIC_USEC="), "\(lines())")
    #expect(lines()[2] == "READY=1", "\(lines())")
    kill(g.processIdentifier, SIGTERM)
    try wait("STOPPING=1 after SIGTERM", 10) { lines().contains("STOPPING=1") }
    g.waitUntilExit()
    #expect(g.terminationStatus == 0)
  }

  @Test("Restarts nobody notices: under load on new connections, process B with a changed config binds beside A (SO_REUSEPORT), A drains on SIGTERM, zero requests fail")
  func seamlessRestart() throws {
    // docs/operations.md: without net.ipv4.tcp_migrate_req=1 Linux resets the connections waiting
    // in the old listener's accept queue when it closes (CI saw 1 in ~300). The setting is part of
    // the documented set-up, so the test runs with it (as root; restored after) and says so when
    // it cannot.
    let sysctl = "/proc/sys/net/ipv4/tcp_migrate_req"
    let before = (try? String(contentsOfFile: sysctl, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    if before == "0" { try? "1\n".write(toFile: sysctl, atomically: false, encoding: .utf8) }
    defer { if before == "0" { try? "0\n".write(toFile: sysctl, atomically: false, encoding: .utf8) } }
    let migrate = (try? String(contentsOfFile: sysctl, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    #expect(migrate == "1", "net.ipv4.tcp_migrate_req is \(migrate ?? "unknown") and cannot be set: run as root, or set it on the host")
    let h = try GatewayHarness()
    defer { h.stop() }
    try h.start()
    let stop = h.directory.appendingPathComponent("stop-churn").path
    let out = h.directory.appendingPathComponent("churn.json").path
    let churn = try h.startPython("churn.py", [String(h.port), "acme.platform.localhost", stop, "40", "6"], output: out)
    defer { GatewayHarness.terminate(churn) }
    usleep(1_000_000)

    // B: the same addresses, a changed config (a longer X-Tenant lifetime).
    let configB = h.directory.appendingPathComponent("gateway-b.conf").path
    let text = try String(contentsOfFile: h.configPath, encoding: .utf8)
      .replacingOccurrences(of: "  issuer: tenant-gateway\n", with: "  issuer: tenant-gateway\n  ttl_seconds: 120\n")
    try text.write(toFile: configB, atomically: true, encoding: .utf8)
    let logB = h.directory.appendingPathComponent("gateway-b.log").path
    let b = Process()
    b.executableURL = URL(fileURLWithPath: Paths.binary)
    b.arguments = ["serve", "--config", configB]
    _ = FileManager.default.createFile(atPath: logB, contents: nil)
    b.standardOutput = FileHandle(forWritingAtPath: logB)
    b.standardError = FileHandle(forWritingAtPath: logB)
    try b.run()
    defer { GatewayHarness.terminate(b) }
    // The new process is ready once its TLS listener is bound (its readiness comes from its log
    // or READY=1 to systemd: the shared admin port may answer from either process).
    try h.waitFor(timeout: 20) { ((try? String(contentsOfFile: logB, encoding: .utf8)) ?? "").contains("listening") }
    #expect(b.isRunning)
    usleep(1_000_000)
    h.signal(SIGTERM)
    try h.waitFor(timeout: 15) { !h.gatewayRunning }
    #expect(h.gatewayExitStatus == 0, "A: \(h.gatewayLogTail)")
    usleep(500_000)
    let after = try h.curl("acme.platform.localhost", "/after")
    #expect(after.status == 200)
    let claims = after.claims ?? [:]
    #expect((claims["exp"] as? Int ?? 0) - (claims["iat"] as? Int ?? 0) == 120, "B serves with its config: \(claims)")

    _ = FileManager.default.createFile(atPath: stop, contents: nil)
    churn.waitUntilExit()
    let result = try #require(
      try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as? [String: Any])
    let ok = result["ok"] as? Int ?? 0
    #expect((result["failed"] as? Int ?? -1) == 0, "failed requests during the restart: \(result)")
    #expect(ok > 50, "too little load to mean anything: \(result)")
  }
}

/// docs/backend.md's examples, run against what the real gateway sends.
@Suite("Backend examples in docs/ (real gateway)")
struct BackendExampleTests {
  @Test("The Python and Node examples verify the X-Tenant the upstream received, with the key file's trailing newline, and refuse it on another path or method")
  func examplesVerify() throws {
    try withGateway { h in
      #expect(try h.curl("acme.platform.localhost", "/cart/items?page=2").status == 200)
      let token = try #require(h.upstreamRequests().last.flatMap { r in
        (r["headers"] as? [[String]])?.first { $0.first?.lowercased() == "x-tenant" }?.last
      })
      // The development key file ends with a newline that is not part of the key.
      let keyBytes = try Data(contentsOf: URL(fileURLWithPath: Demo.secretFile))
      #expect(keyBytes.last == 0x0A)
      let examples = Paths.packageRoot.appendingPathComponent("docs/examples")
      let runs: [(String, [String])] = [
        ("python3", [examples.appendingPathComponent("verify_tenant.py").path]),
        ("node", [examples.appendingPathComponent("verify_tenant.mjs").path]),
      ]
      for (tool, script) in runs {
        let ok = try Shell.run(tool, script + [token, Demo.secretFile, "GET", "/cart/items?page=2"])
        #expect(ok.status == 0, "\(tool): \(ok.stderr)")
        let claims = (try? JSONSerialization.jsonObject(with: Data(ok.stdout.utf8))) as? [String: Any]
        #expect(claims?["shop_id"] as? String == Demo.acmeID, "\(tool): \(ok.stdout)")
        for (method, path) in [("GET", "/cart/checkout"), ("POST", "/cart/items")] {
          let replay = try Shell.run(tool, script + [token, Demo.secretFile, method, path])
          #expect(replay.status != 0 && replay.stderr.contains("issued for another request"), "\(tool) \(method) \(path): \(replay.stderr)")
        }
        // A changed signature character well inside the signature (the last one carries padding bits).
        var chars = Array(token)
        let i = chars.count - 10
        chars[i] = chars[i] == "A" ? "B" : "A"
        let tampered = String(chars)
        let forged = try Shell.run(tool, script + [tampered, Demo.secretFile, "GET", "/cart/items"])
        #expect(forged.status != 0, "\(tool) accepted a changed signature")
      }
      // The docs show these files verbatim.
      let doc = try String(contentsOf: Paths.packageRoot.appendingPathComponent("docs/backend.md"), encoding: .utf8)
      for file in ["verify_tenant.py", "verify_tenant.mjs"] {
        let code = try String(contentsOf: examples.appendingPathComponent(file), encoding: .utf8)
        #expect(doc.contains(code.trimmingCharacters(in: .newlines)), "docs/backend.md does not show \(file) as it is")
      }
    }
  }
}
