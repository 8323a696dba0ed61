import Foundation
import Testing

/// Runs a command and collects its output (integration tests drive real clients this way).
struct CommandResult {
  var status: Int32
  var stdout: String
  var stderr: String
}

enum Shell {
  /// Runs `executable` with `arguments`; `input` is written to stdin.
  @discardableResult
  static func run(_ executable: String, _ arguments: [String], input: Data? = nil, environment: [String: String]? = nil)
    throws -> CommandResult
  {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : "/usr/bin/env")
    p.arguments = executable.hasPrefix("/") ? arguments : [executable] + arguments
    if let environment { p.environment = environment }
    let out = Pipe()
    let err = Pipe()
    p.standardOutput = out
    p.standardError = err
    let inPipe = Pipe()
    p.standardInput = inPipe
    try p.run()
    if let input { inPipe.fileHandleForWriting.write(input) }
    try? inPipe.fileHandleForWriting.close()
    // Read both pipes concurrently so a chatty child never blocks on a full pipe.
    final class Box: @unchecked Sendable { var data = Data() }
    let errBox = Box()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async {
      errBox.data = err.fileHandleForReading.readDataToEndOfFile()
      group.leave()
    }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    let errData = errBox.data
    p.waitUntilExit()
    return CommandResult(
      status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
      stderr: String(decoding: errData, as: UTF8.self))
  }
}

/// Paths of the package under test.
enum Paths {
  static let packageRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
  static let clients: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("clients")

  /// The tenant-gateway binary built with these tests (`TGW_BINARY` overrides).
  static let binary: String = {
    if let env = ProcessInfo.processInfo.environment["TGW_BINARY"] { return env }
    let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    var dir = testBinary.deletingLastPathComponent()
    for _ in 0..<4 {
      let candidate = dir.appendingPathComponent("tenant-gateway").path
      if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
      dir = dir.deletingLastPathComponent()
    }
    return packageRoot.appendingPathComponent(".build/debug/tenant-gateway").path
  }()
}

/// A free TCP port on loopback, handed out once per test process.
///
/// Taken from below Linux's ephemeral range (32768–60999): a port the kernel picked for `bind(0)`
/// can be handed out again moments later as the local port of some outgoing connection (curl, the
/// gateway's upstream pools), and the gateway started on it then fails with EADDRINUSE.
func freePort() -> Int { PortAllocator.shared.next() }

final class PortAllocator: @unchecked Sendable {
  static let shared = PortAllocator()
  private let lock = NSLock()
  private var candidate = 20_000 + Int(getpid() % 10_000)

  func next() -> Int {
    lock.withLock {
      while true {
        let port = candidate
        candidate = candidate >= 32_000 ? 20_000 : candidate + 1
        if Self.canBind(port) { return port }
      }
    }
  }

  private static func canBind(_ port: Int) -> Bool {
    withLoopbackSocket(port: port) { fd, address, length in bind(fd, address, length) == 0 }
  }
}

/// Something accepts TCP connections on 127.0.0.1:`port` (a helper process has started listening).
func isListening(port: Int) -> Bool {
  withLoopbackSocket(port: port) { fd, address, length in connect(fd, address, length) == 0 }
}

/// A fresh TCP socket and the address 127.0.0.1:`port`, closed after `body`.
private func withLoopbackSocket(
  port: Int, _ body: (Int32, UnsafePointer<sockaddr>, socklen_t) -> Bool
) -> Bool {
  let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
  defer { close(fd) }
  var addr = sockaddr_in()
  addr.sin_family = sa_family_t(AF_INET)
  addr.sin_addr.s_addr = inet_addr("127.0.0.1")
  addr.sin_port = UInt16(port).bigEndian
  let len = socklen_t(MemoryLayout<sockaddr_in>.size)
  return withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body(fd, $0, len) } }
}

/// Test certificates made with the openssl CLI, once per test process.
enum TestCertificates {
  struct Pair {
    let cert: String
    let key: String
  }
  /// `*.platform.localhost` + API and dashboard hosts (the default certificate).
  static let platform: Pair = make(name: "platform", cn: "*.platform.localhost",
    sans: ["*.platform.localhost", "api.platform.localhost", "dashboard.platform.localhost"])
  /// The custom domains of the sample snapshot.
  static let customDomains: Pair = make(name: "custom", cn: "shop.acme.test", sans: ["shop.acme.test", "bibisaree.test"])

  static let directory: URL = {
    let d = FileManager.default.temporaryDirectory.appendingPathComponent("tgw-test-certs-\(getpid())")
    try? FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
    return d
  }()

  static func make(name: String, cn: String, sans: [String], in dir: URL = directory) -> Pair {
    let cert = dir.appendingPathComponent("\(name).pem").path
    let key = dir.appendingPathComponent("\(name).key").path
    let san = sans.map { "DNS:\($0)" }.joined(separator: ",")
    let r = try! Shell.run("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
      "-days", "2", "-subj", "/CN=\(cn)", "-addext", "subjectAltName=\(san)",
    ])
    precondition(r.status == 0, "openssl failed: \(r.stderr)")
    return Pair(cert: cert, key: key)
  }
}

/// Demo keys of `samples/tenants.json` (also listed in the README).
enum Demo {
  static let acmeID = "5b0c6f2e-8a1d-4c3b-9e7f-1a2b3c4d5e01"
  static let bibiID = "7d3e9a10-2b4c-4f5e-8a6b-1c2d3e4f5a02"
  static let teaID = "9f1a2b3c-4d5e-4f6a-8b7c-9d0e1f2a3b03"
  static let acmeSecret = "sk_live_acme_demo_0000000000000001"
  static let acmeTestSecret = "sk_test_acme_demo_0000000000000002"
  static let acmePublishable = "pk_live_acme_demo_0000000000000003"
  static let acmeRevoked = "sk_live_acme_demo_revoked_00000004"
  static let bibiSecret = "vt_live_bibi_demo_0000000000000005"
  static let bibiPublishable = "pk_live_bibi_demo_0000000000000006"
  static let teaSecret = "sk_live_tea_demo_00000000000000007"
  static let apiHost = "api.platform.localhost"
  static let secretFile = Paths.packageRoot.appendingPathComponent("dev/tenant-hs256.key").path
}

/// One gateway plus one demo upstream, on free loopback ports, in a private directory.
final class GatewayHarness: @unchecked Sendable {
  let directory: URL
  let port = freePort()
  let adminPort = freePort()
  let upstreamPort = freePort()
  var snapshotPath: String
  var extraConfig: String
  /// Replaces the `upstreams:` line (several endpoints, TLS, health checks).
  var upstreamsYAML: String?
  var limits: [String: String]
  /// `access_log.path` (off when nil).
  var accessLogPath: String?
  private var gateway: Process?
  private var upstream: Process?
  var recordPath: String { directory.appendingPathComponent("upstream-requests.jsonl").path }
  var gatewayLogPath: String { directory.appendingPathComponent("gateway.log").path }
  /// The end of the gateway's log, for expectation messages.
  var gatewayLogTail: String {
    String(((try? String(contentsOfFile: gatewayLogPath, encoding: .utf8)) ?? "").suffix(2000))
  }

  /// - Parameters:
  ///   - limits: `limits` keys to override.
  ///   - extraConfig: YAML appended to the generated config (top-level keys).
  ///   - startUpstream: false to leave the upstream port closed (connection refused).
  init(limits: [String: String] = [:], extraConfig: String = "", snapshot: String? = nil) throws {
    directory = FileManager.default.temporaryDirectory.appendingPathComponent("tgw-it-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    self.limits = limits
    self.extraConfig = extraConfig
    let snap = directory.appendingPathComponent("tenants.json").path
    if let snapshot {
      try snapshot.write(toFile: snap, atomically: true, encoding: .utf8)
    } else {
      try FileManager.default.copyItem(atPath: Paths.packageRoot.appendingPathComponent("samples/tenants.json").path, toPath: snap)
    }
    snapshotPath = snap
  }

  var configPath: String { directory.appendingPathComponent("gateway.conf").path }

  /// `writeConfig()` with the snapshot file polled every `snapshotPollInterval` seconds.
  func writeConfig(snapshotPollInterval: Double) throws {
    try writeConfig()
    let text = try String(contentsOfFile: configPath, encoding: .utf8)
    let edited = text.replacingOccurrences(
      of: "snapshot: {path: \(snapshotPath),", with: "snapshot: {poll_interval_s: \(snapshotPollInterval), path: \(snapshotPath),")
    guard edited != text else { throw HarnessError(message: "no snapshot line to edit in \(configPath)") }
    try edited.write(toFile: configPath, atomically: true, encoding: .utf8)
  }

  func writeConfig() throws {
    var merged = ["client_header_timeout_s": "10", "drain_timeout_s": "3"]
    for (k, v) in limits { merged[k] = v }
    var limitLines = ""
    for (k, v) in merged.sorted(by: { $0.key < $1.key }) { limitLines += "  \(k): \(v)\n" }
    let yaml = """
      listen: {address: "127.0.0.1:\(port)"}
      admin: {address: "127.0.0.1:\(adminPort)"}
      tls:
        certificates:
          - {cert: \(TestCertificates.platform.cert), key: \(TestCertificates.platform.key)}
          - {cert: \(TestCertificates.customDomains.cert), key: \(TestCertificates.customDomains.key)}
      platform: {api_hosts: [api.platform.localhost], domain: platform.localhost, dashboard_hosts: [dashboard.platform.localhost]}
      snapshot: {path: \(snapshotPath), state_dir: \(directory.appendingPathComponent("var").path)}
      \(upstreamsYAML ?? "upstreams: {default: \"http://127.0.0.1:\(upstreamPort)\"}")
      tenant_header:
        issuer: tenant-gateway
        signing_keys: [{kid: dev-1, alg: HS256, secret_file: \(Demo.secretFile)}]
      access_log: {path: "\(accessLogPath ?? "")"}
      limits:
      \(limitLines)
      \(extraConfig)
      """
    try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
  }

  /// Starts the upstream (unless `upstream: false`) and the gateway, and waits until both answer.
  func start(upstream startUpstream: Bool = true) throws {
    try writeConfig()
    try startPrewritten(upstream: startUpstream)
  }

  /// Like ``start(upstream:)`` with the config file already written (and perhaps edited).
  func startPrewritten(upstream startUpstream: Bool = true) throws {
    if startUpstream { try self.startUpstream() }
    let g = Process()
    g.executableURL = URL(fileURLWithPath: Paths.binary)
    // Debug level: protocol errors that close a connection are logged (for failure messages).
    g.arguments = ["serve", "--config", configPath, "--log-level", "debug"]
    _ = FileManager.default.createFile(atPath: gatewayLogPath, contents: nil)
    let log = FileHandle(forWritingAtPath: gatewayLogPath)
    g.standardOutput = log
    g.standardError = log
    try g.run()
    gateway = g
    try waitFor { (try? Shell.run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(self.adminPort)/readyz"]))?.stdout == "200" }
  }

  func startUpstream() throws {
    let u = Process()
    u.executableURL = URL(fileURLWithPath: Paths.binary)
    u.arguments = ["demo-upstream", "--listen", "127.0.0.1:\(upstreamPort)", "--config", configPath, "--record", recordPath]
    u.standardOutput = FileHandle.nullDevice
    u.standardError = FileHandle.nullDevice
    try u.run()
    upstream = u
    try waitFor { (try? Shell.run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(self.upstreamPort)/__status/204"]))?.stdout == "204" }
  }

  func stopUpstream() {
    if let u = upstream { Self.terminate(u) }
    upstream = nil
  }

  /// Where `clients/raw_upstream.py` records the bytes it received.
  var rawRecordPath: String { directory.appendingPathComponent("raw-upstream.jsonl").path }

  /// Starts the gateway in front of `clients/raw_upstream.py` (on `upstreamPort`, instead of the
  /// demo upstream), an upstream that records every byte it receives (``rawUpstreamRequests()``).
  func startWithRawUpstream() throws {
    try writeConfig()
    let u = Process()
    u.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    u.arguments = ["python3", Paths.clients.appendingPathComponent("raw_upstream.py").path, String(upstreamPort), rawRecordPath]
    u.standardOutput = FileHandle.nullDevice
    u.standardError = FileHandle.nullDevice
    try u.run()
    upstream = u
    // The Python upstream takes a moment to bind on a busy machine; until then the gateway would
    // answer 503, which is not what a test using it is about.
    try waitFor { isListening(port: self.upstreamPort) }
    try startPrewritten(upstream: false)
  }

  /// What `clients/raw_upstream.py` received, one request per element, bytes as latin-1 text.
  func rawUpstreamRequests() -> [(conn: Int, raw: String)] {
    guard let text = try? String(contentsOfFile: rawRecordPath, encoding: .utf8) else { return [] }
    return text.split(separator: "\n").compactMap { line in
      guard let doc = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
        let conn = doc["conn"] as? Int, let raw = doc["raw"] as? String
      else { return nil }
      return (conn, raw)
    }
  }

  /// SIGTERM, then SIGKILL if the process is still there after 5 s.
  static func terminate(_ p: Process) {
    guard p.isRunning else { return }
    p.terminate()
    let deadline = Date().addingTimeInterval(5)
    while p.isRunning && Date() < deadline { usleep(20_000) }
    if p.isRunning { kill(p.processIdentifier, SIGKILL) }
    p.waitUntilExit()
  }

  /// Sends a signal to the gateway.
  func signal(_ sig: Int32) {
    if let pid = gateway?.processIdentifier { kill(pid, sig) }
  }

  var gatewayRunning: Bool { gateway?.isRunning ?? false }

  /// The gateway's resident set size in KiB (VmRSS), or 0 when unknown.
  var gatewayRSSKiB: Int {
    guard let pid = gateway?.processIdentifier,
      let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
      let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
    else { return 0 }
    return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
  }

  /// The gateway's exit status once it has exited.
  var gatewayExitStatus: Int32? {
    guard let g = gateway, !g.isRunning else { return nil }
    return g.terminationStatus
  }

  /// Starts curl without waiting for it (`%{http_code}` on stdout, via `output`).
  func startCurl(_ host: String, _ path: String, http2: Bool, output: String) throws -> Process {
    try Self.startProcess(["curl", "-sk", http2 ? "--http2" : "--http1.1", "--resolve", "\(host):\(port):127.0.0.1", "-o", "/dev/null",
                           "-w", "%{http_code}", "https://\(host):\(port)\(path)"], output: output)
  }

  /// Starts a client script from `clients/` with python3 without waiting for it (stdout to `output`).
  func startPython(_ script: String, _ arguments: [String], output: String) throws -> Process {
    try Self.startProcess(["python3", Paths.clients.appendingPathComponent(script).path] + arguments, output: output)
  }

  /// Runs `arguments` (looked up on PATH) in the background, stdout to the file `output`.
  static func startProcess(_ arguments: [String], output: String) throws -> Process {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = arguments
    if output == "/dev/null" {
      // Never createFile here: Foundation writes atomically (temp file + rename), which would
      // replace the device with a regular file for every process on the machine.
      p.standardOutput = FileHandle.nullDevice
    } else {
      _ = FileManager.default.createFile(atPath: output, contents: nil)
      p.standardOutput = FileHandle(forWritingAtPath: output)
    }
    p.standardError = FileHandle.nullDevice
    try p.run()
    return p
  }

  /// Stops the gateway only (its directory, storage and upstream stay), for a restart.
  func stopGateway() {
    if let g = gateway { Self.terminate(g) }
    gateway = nil
  }

  func stop() {
    if let g = gateway { Self.terminate(g) }
    stopUpstream()
    try? FileManager.default.removeItem(at: directory)
  }

  func waitFor(timeout: Double = 20, _ condition: () throws -> Bool) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
      if (try? condition()) == true { return }
      if let g = gateway, !g.isRunning {
        throw HarnessError(message: "gateway exited: \((try? String(contentsOfFile: gatewayLogPath, encoding: .utf8)) ?? "")")
      }
      usleep(50_000)
    }
    throw HarnessError(message: "timed out; gateway log: \((try? String(contentsOfFile: gatewayLogPath, encoding: .utf8)) ?? "")")
  }

  // MARK: clients

  struct HTTPResult {
    var status: Int
    var headers: [String: String]
    var body: String
    /// curl's exit status and stderr (status 0 with an empty body means curl got no response: these say why).
    var curlExit: Int32 = 0
    var curlError: String = ""
    /// One line for expectation messages.
    var diagnostic: String { "curl exit \(curlExit) \(curlError.prefix(300)) body: \(body.prefix(300))" }
    var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] }
    var errorCode: String? { (json?["error"] as? [String: Any])?["code"] as? String }
    var claims: [String: Any]? { json?["claims"] as? [String: Any] }
    /// Headers the upstream received, as the demo upstream echoes them.
    var upstreamHeaders: [(String, String)] {
      ((json?["headers"] as? [[String]]) ?? []).map { ($0[0], $0[1]) }
    }
  }

  /// curl against the gateway with `host` resolved to loopback (SNI = host).
  func curl(
    _ host: String, _ path: String, headers: [String] = [], method: String? = nil, http2: Bool = false, extra: [String] = []
  ) throws -> HTTPResult {
    var args = ["-sSk", "-D", "-", "--resolve", "\(host):\(port):127.0.0.1", http2 ? "--http2" : "--http1.1"]
    if let method { args += ["-X", method] }
    for h in headers { args += ["-H", h] }
    args += extra
    args.append("https://\(host):\(port)\(path)")
    let r = try Shell.run("curl", args)
    var result = Self.parseCurl(r.stdout)
    result.curlExit = r.status
    result.curlError = r.stderr
    return result
  }

  static func parseCurl(_ output: String) -> HTTPResult {
    // -D - prints every head (1xx included) before the body.
    var rest = Substring(output)
    var status = 0
    var headers: [String: String] = [:]
    while rest.hasPrefix("HTTP/") {
      guard let end = rest.range(of: "\r\n\r\n") else { break }
      let head = rest[..<end.lowerBound]
      rest = rest[end.upperBound...]
      let lines = head.split(separator: "\r\n")
      status = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
      headers = [:]
      for line in lines.dropFirst() {
        if let c = line.firstIndex(of: ":") {
          headers[line[..<c].lowercased()] = line[line.index(after: c)...].trimmingCharacters(in: .whitespaces)
        }
      }
    }
    return HTTPResult(status: status, headers: headers, body: String(rest))
  }

  /// Runs a client script from `clients/` with python3.
  func python(_ script: String, _ arguments: [String]) throws -> CommandResult {
    try Shell.run("python3", [Paths.clients.appendingPathComponent(script).path] + arguments)
  }

  /// Sends raw bytes over TLS and returns what came back (status, closed, body).
  func raw(_ request: String, sni: String = "acme.platform.localhost", timeout: Double = 3) throws -> [String: Any] {
    let hex = Array(request.utf8).map { String(format: "%02x", $0) }.joined()
    let r = try python("raw_http1.py", [String(port), sni, hex, String(timeout)])
    return (try JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any] ?? ["error": r.stderr]
  }

  /// Requests the demo upstream received, in order (method, uri, headers).
  func upstreamRequests() -> [[String: Any]] {
    guard let text = try? String(contentsOfFile: recordPath, encoding: .utf8) else { return [] }
    // The harness's own readiness probes (/__status/204, sent directly) are not part of any test.
    return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
      .filter { ($0["uri"] as? String) != "/__status/204" }
  }

  /// Admin API call.
  func admin(_ path: String, method: String = "GET") throws -> HTTPResult {
    let r = try Shell.run("curl", ["-s", "-D", "-", "-X", method, "http://127.0.0.1:\(adminPort)\(path)"])
    return Self.parseCurl(r.stdout)
  }
}

struct HarnessError: Error, CustomStringConvertible {
  var message: String
  var description: String { message }
}

/// Runs `body` with a gateway in front of `clients/raw_upstream.py` and always stops both.
func withRawUpstream<T>(
  limits: [String: String] = [:], extraConfig: String = "", _ body: (GatewayHarness) throws -> T
) throws -> T {
  let h = try GatewayHarness(limits: limits, extraConfig: extraConfig)
  defer { h.stop() }
  try h.startWithRawUpstream()
  return try body(h)
}

/// The claims of a JWT, unverified (tests that check the signature do so elsewhere).
func jwtPayload(_ token: some StringProtocol) -> [String: Any]? {
  let parts = token.split(separator: ".")
  guard parts.count == 3 else { return nil }
  var b64 = parts[1].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
  while b64.count % 4 != 0 { b64 += "=" }
  guard let data = Data(base64Encoded: b64) else { return nil }
  return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
}

/// Runs `body` with a started gateway writing its access log to a file (the path is passed in).
func withAccessLog<T>(_ body: (GatewayHarness, String) throws -> T) throws -> T {
  let h = try GatewayHarness()
  defer { h.stop() }
  let log = h.directory.appendingPathComponent("access.log").path
  h.accessLogPath = log
  try h.start()
  return try body(h, log)
}

/// Runs `body` with a started harness and always stops it.
func withGateway<T>(
  limits: [String: String] = [:], extraConfig: String = "", snapshot: String? = nil, upstream: Bool = true,
  _ body: (GatewayHarness) throws -> T
) throws -> T {
  let h = try GatewayHarness(limits: limits, extraConfig: extraConfig, snapshot: snapshot)
  defer { h.stop() }
  try h.start(upstream: upstream)
  return try body(h)
}
