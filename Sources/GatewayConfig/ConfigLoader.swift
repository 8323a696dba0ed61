import Foundation
import GatewayCore

/// Reads `gateway.conf`: YAML, then environment (`TGW_…`), then `--set key.path=value`, the command
/// line winning; then decodes and validates into a ``GatewayConfig``.
///
/// Why not swift-configuration alone: its YAML provider holds scalars and lists of scalars, but
/// `gateway.conf` has lists of mappings (`routes`, `tls.certificates`, `signing_keys`). So the file is
/// read with Yams into a plain tree, scalar overrides are applied to that tree by key path, and one
/// decoder produces typed structs with key-path errors (docs/configuration.md).
public enum ConfigLoader {
  /// The result of loading: a config, or errors; plus warnings either way.
  public struct Outcome: Sendable {
    public var config: GatewayConfig?
    public var errors: [ConfigError]
    public var warnings: [String]
    /// The YAML line of each key path (for messages about values checked later, such as files).
    public var lines: [String: Int] = [:]
    /// Key paths set by an override, with where: `environment TGW_…` or `--set …`.
    public var overridden: [String: String] = [:]

    /// Where the value at `keyPath` came from, as a message prefix: `gateway.conf:12`,
    /// `environment TGW_LISTEN_ADDRESS` or `--set listen.address=…`.
    public func origin(of keyPath: String, file: String) -> String {
      if let s = overridden[keyPath] { return s }
      if let l = lines[keyPath] { return "\(file):\(l)" }
      return file
    }
  }

  /// `TGW_` variables that belong to the repository's scripts and tests, not to gateway.conf.
  public static let toolingVariables: Set<String> = ["TGW_BINARY", "TGW_WARNINGS_AS_ERRORS", "TGW_SOAK_SECONDS"]

  /// Every scalar key that environment variables and `--set` may override.
  public static let scalarKeyPaths: [String] = [
    "listen.address", "listen.proxy_protocol", "listen.http_address", "listen.https_redirect_port",
    "tls.acme.directory_url", "tls.acme.contact", "tls.acme.ca_file", "tls.acme.storage_dir", "tls.acme.renew_before_days",
    "tls.acme.handshake_wait_s", "tls.acme.max_orders_per_hour", "tls.acme.max_concurrent_orders", "tls.acme.eab_kid",
    "tls.acme.eab_hmac_key_file", "tls.acme.storage", "admin.address", "admin.token_file", "tls.custom_domain_certs_dir", "tls.min_version",
    "tls.generate_dev_certificate", "platform.domain", "sessions.cookie_name", "sessions.issuer", "snapshot.path",
    "snapshot.url", "snapshot.state_dir", "snapshot.poll_interval_s", "snapshot.changes_path",
    "snapshot.compact_after_bytes", "snapshot.postgres.url", "snapshot.postgres.password_file", "snapshot.postgres.schema",
    "snapshot.postgres.tls", "snapshot.postgres.ca_file", "snapshot.postgres.poll_interval_s", "upstreams.default", "upstreams.test",
    "policy.refuse_secret_key_in_browser", "cors.max_age_s", "tenant_header.name", "tenant_header.issuer",
    "tenant_header.ttl_seconds", "tenant_header.trust_request_id", "access_log.path", "publishable_key_header",
    "limits.per_key_rps", "limits.per_shop_rps", "limits.burst", "limits.max_header_bytes",
    "limits.max_header_count", "limits.max_body_bytes", "limits.max_uri_bytes", "limits.client_header_timeout_s",
    "limits.idle_timeout_s", "limits.upstream_connect_timeout_s", "limits.upstream_response_timeout_s",
    "limits.max_connections", "limits.h2_max_concurrent_streams", "limits.drain_timeout_s",
  ]

  /// `listen.address` → `TGW_LISTEN_ADDRESS`.
  public static func environmentName(for keyPath: String) -> String {
    "TGW_" + keyPath.uppercased().replacingOccurrences(of: ".", with: "_")
  }

  /// Loads the file at `path` with overrides.
  public static func load(
    path: String, environment: [String: String] = ProcessInfo.processInfo.environment, overrides: [String] = []
  ) -> Outcome {
    let text: String
    do {
      text = try String(contentsOfFile: path, encoding: .utf8)
    } catch {
      return Outcome(config: nil, errors: [ConfigError(path: "", reason: "cannot read \(path): \(error.localizedDescription)")], warnings: [])
    }
    let base = (URL(fileURLWithPath: path).deletingLastPathComponent().path)
    return load(yaml: text, baseDirectory: base, environment: environment, overrides: overrides)
  }

  /// Loads YAML text; relative file paths resolve against `baseDirectory`.
  public static func load(
    yaml: String, baseDirectory: String, environment: [String: String] = [:], overrides: [String] = []
  ) -> Outcome {
    var tree: ConfigNode
    var lines: [String: Int] = [:]
    do {
      (tree, lines) = try ConfigNode.parseWithLines(yaml: yaml)
    } catch let e as ConfigError {
      return Outcome(config: nil, errors: [e], warnings: [])
    } catch {
      return Outcome(config: nil, errors: [ConfigError(path: "", reason: "not valid YAML: \(error)")], warnings: [])
    }
    var errors: [ConfigError] = []
    var warnings: [String] = []
    var overridden: [String: String] = [:]
    let known = Set(scalarKeyPaths.map(environmentName(for:)))
    for name in environment.keys.sorted() where name.hasPrefix("TGW_") && !known.contains(name) && !toolingVariables.contains(name) {
      let hint = Spelling.closest(to: name, among: known).map { "; did you mean \($0)?" } ?? ""
      warnings.append("environment variable \(name) is not a gateway.conf key and is ignored\(hint)")
    }
    for keyPath in scalarKeyPaths {
      let name = environmentName(for: keyPath)
      if let value = environment[name] {
        overridden[keyPath] = "environment \(name)"
        do { try tree.set(path: keyPath.split(separator: ".").map(String.init), value: .scalar(value)) } catch {
          errors.append(ConfigError(path: keyPath, reason: "cannot apply: \(error)", source: "environment \(name)"))
        }
      }
    }
    for item in overrides {
      guard let eq = item.firstIndex(of: "=") else {
        errors.append(ConfigError(path: item, reason: "--set needs key.path=value", source: "--set \(item)"))
        continue
      }
      let keyPath = String(item[..<eq])
      guard scalarKeyPaths.contains(keyPath) else {
        let hint = Spelling.closest(to: keyPath, among: scalarKeyPaths).map { "; did you mean \($0)?" } ?? ""
        errors.append(ConfigError(
          path: keyPath, reason: "--set only overrides scalar keys (\(scalarKeyPaths.count) of them, see docs/configuration.md)\(hint)",
          source: "--set \(item)"))
        continue
      }
      overridden[keyPath] = "--set \(item)"
      do {
        try tree.set(path: keyPath.split(separator: ".").map(String.init), value: .scalar(String(item[item.index(after: eq)...])))
      } catch {
        errors.append(ConfigError(path: keyPath, reason: "\(error)", source: "--set \(item)"))
      }
    }
    let decoded = ConfigDecoder(baseDirectory: baseDirectory).decode(tree)
    // A decoding error is about a value: say where that value was written (or which override set it).
    for var e in decoded.errors {
      if let s = overridden[e.path] {
        e.source = s
      } else if e.line == nil {
        var p = Substring(e.path)
        while !p.isEmpty, lines[String(p)] == nil, let cut = p.lastIndex(where: { $0 == "." || $0 == "[" }) { p = p[..<cut] }
        e.line = lines[String(p)]
      }
      errors.append(e)
    }
    warnings = decoded.unknownKeys.map { u in
      "unknown key \(u.path)" + (lines[u.path].map { " (line \($0))" } ?? "") + u.hint
    } + decoded.warnings + warnings
    var outcome = Outcome(config: errors.isEmpty ? decoded.config : nil, errors: errors, warnings: warnings)
    outcome.lines = lines
    outcome.overridden = overridden
    return outcome
  }
}

/// Turns the tree into a ``GatewayConfig``, collecting every error with its key path.
struct ConfigDecoder {
  let baseDirectory: String

  struct Result {
    var config: GatewayConfig?
    var errors: [ConfigError]
    var unknownKeys: [(path: String, hint: String)]
    var warnings: [String]
  }

  func absolute(_ path: String) -> String {
    path.hasPrefix("/") ? path : URL(fileURLWithPath: baseDirectory).appendingPathComponent(path).standardizedFileURL.path
  }

  func decode(_ tree: ConfigNode) -> Result {
    let diag = ConfigCursor.Diagnostics()
    var warnings: [String] = []
    let root = ConfigCursor(node: tree, path: "", diagnostics: diag)

    func address(_ c: ConfigCursor?, _ key: String, default d: String?, section: String) -> SocketAddressSpec? {
      guard let c else {
        if let d { return SocketAddressSpec(d) }
        diag.errors.append(ConfigError(path: "\(section).\(key)", reason: "must be set"))
        return nil
      }
      guard let text = c.string(key) ?? d else {
        c.fail(key, "must be set")
        return nil
      }
      guard let a = SocketAddressSpec(text) else {
        c.fail(key, "must be host:port, got \"\(text)\"")
        return nil
      }
      return a
    }

    // listen
    let listenC = root.child("listen")
    let listenAddress = address(listenC, "address", default: nil, section: "listen")
    let proxyProtocol = listenC?.bool("proxy_protocol", default: false) ?? false
    var proxyFrom: [CIDRBlock] = []
    for (i, text) in (listenC?.strings("proxy_protocol_from") ?? []).enumerated() {
      if let block = CIDRBlock(text) { proxyFrom.append(block) } else {
        diag.errors.append(ConfigError(path: "listen.proxy_protocol_from[\(i)]", reason: "\"\(text)\" is not an address or CIDR block"))
      }
    }
    var httpAddress: SocketAddressSpec? = nil
    if let text = listenC?.string("http_address"), !text.isEmpty {
      httpAddress = address(listenC, "http_address", default: nil, section: "listen")
    }
    let redirectPort = listenC?.int("https_redirect_port", default: 443, range: 1...65535) ?? 443
    if proxyProtocol && proxyFrom.isEmpty {
      listenC?.fail("proxy_protocol_from", "must list the load balancers' addresses when proxy_protocol is true (a PROXY header from anyone else would let them choose their client address)")
    }
    listenC?.finish()

    // admin
    let adminC = root.child("admin")
    let adminAddress = address(adminC, "address", default: "127.0.0.1:9901", section: "admin")
    let tokenFile = adminC?.string("token_file").flatMap { $0.isEmpty ? nil : absolute($0) }
    adminC?.finish()

    // tls
    var certificates: [GatewayConfig.CertificatePair] = []
    var customDir: String? = nil
    var minVersion = "1.2"
    var generateDev = false
    var ciphers: [String] = []
    var acme: GatewayConfig.ACME? = nil
    if let tlsC = root.child("tls") {
      if let items = tlsC.items("certificates") {
        for item in items {
          guard let cert = item.string("cert"), let key = item.string("key"), !cert.isEmpty, !key.isEmpty else {
            diag.errors.append(ConfigError(path: item.path, reason: "needs cert and key"))
            continue
          }
          certificates.append(.init(cert: absolute(cert), key: absolute(key)))
          item.finish()
        }
      }
      if certificates.isEmpty { tlsC.fail("certificates", "must list at least one {cert, key}") }
      customDir = tlsC.string("custom_domain_certs_dir").flatMap { $0.isEmpty ? nil : absolute($0) }
      minVersion = tlsC.string("min_version", default: "1.2")
      if minVersion != "1.2" && minVersion != "1.3" { tlsC.fail("min_version", "must be \"1.2\" or \"1.3\"") }
      generateDev = tlsC.bool("generate_dev_certificate", default: false)
      for (i, name) in (tlsC.strings("ciphers") ?? []).enumerated() {
        if let suite = TLSCipherSuites.openSSLName(name.trimmingCharacters(in: .whitespaces)) {
          ciphers.append(suite)
        } else {
          let reason = name.uppercased().hasPrefix("TLS_AES_") || name.uppercased().hasPrefix("TLS_CHACHA20_")
            ? "\"\(name)\" is a TLS 1.3 suite; those are not configurable (all three are AEAD)"
            : "\"\(name)\" is not a TLS 1.2 cipher suite the gateway has (OpenSSL or IANA names: "
              + TLSCipherSuites.known.map(\.openssl).joined(separator: ", ") + ")"
          diag.errors.append(ConfigError(path: "tls.ciphers[\(i)]", reason: reason))
        }
      }
      if let acmeC = tlsC.child("acme") {
        acme = Self.acme(acmeC, absolute: absolute)
        acmeC.finish()
      }
      tlsC.finish()
    } else {
      diag.errors.append(ConfigError(path: "tls.certificates", reason: "must be set"))
    }

    // platform
    var platform: GatewayConfig.Platform? = nil
    if let pC = root.child("platform") {
      var api: [String] = []
      for (i, h) in (pC.strings("api_hosts") ?? []).enumerated() {
        if let n = HostName.normalize(h), !h.contains(":") { api.append(n) } else {
          diag.errors.append(ConfigError(path: "platform.api_hosts[\(i)]", reason: "\"\(h)\" is not a host name"))
        }
      }
      if api.isEmpty { pC.fail("api_hosts", "must list at least one API host") }
      var dash: [String] = []
      for (i, h) in (pC.strings("dashboard_hosts") ?? []).enumerated() {
        if let n = HostName.normalize(h), !h.contains(":") { dash.append(n) } else {
          diag.errors.append(ConfigError(path: "platform.dashboard_hosts[\(i)]", reason: "\"\(h)\" is not a host name"))
        }
      }
      let domainText = pC.string("domain")
      if let d = domainText, let n = HostName.normalize(d), !d.contains(":"), n.contains(".") {
        platform = .init(apiHosts: api, domain: n, dashboardHosts: dash)
      } else {
        pC.fail("domain", domainText == nil ? "must be set" : "\"\(domainText!)\" is not a domain name")
      }
      pC.finish()
    } else {
      diag.errors.append(ConfigError(path: "platform", reason: "must be set"))
    }

    // sessions
    var sessions: GatewayConfig.Sessions? = nil
    if let sC = root.child("sessions") {
      let cookie = sC.string("cookie_name", default: "session")
      let issuer = sC.string("issuer", default: "platform-auth")
      var keys: [KeyFileSpec] = []
      for item in sC.items("verify_keys") ?? [] {
        let kid = item.string("kid") ?? ""
        let alg = item.string("alg") ?? ""
        if kid.isEmpty { item.fail("kid", "must be set") }
        switch alg {
        case "HS256":
          if let f = item.string("secret_file"), !f.isEmpty { keys.append(.init(kid: kid, alg: alg, file: absolute(f))) } else {
            item.fail("secret_file", "must be set for HS256")
          }
        case "ES256", "EdDSA":
          if let f = item.string("public_key_file"), !f.isEmpty { keys.append(.init(kid: kid, alg: alg, file: absolute(f))) } else {
            item.fail("public_key_file", "must be set for \(alg)")
          }
        default:
          item.fail("alg", "must be HS256, ES256 or EdDSA, got \"\(alg)\"")
        }
        item.finish()
      }
      if Set(keys.map(\.kid)).count != keys.count { sC.fail("verify_keys", "kids must be unique") }
      sC.finish()
      if !keys.isEmpty { sessions = .init(cookieName: cookie, issuer: issuer, verifyKeys: keys) }
    }

    // snapshot
    var snapshot = GatewayConfig.Snapshot(path: nil, url: nil, stateDir: absolute("var"), pollIntervalSeconds: 5)
    if let snC = root.child("snapshot") {
      snapshot.path = snC.string("path").flatMap { $0.isEmpty ? nil : absolute($0) }
      snapshot.url = snC.string("url").flatMap { $0.isEmpty ? nil : $0 }
      snapshot.stateDir = absolute(snC.string("state_dir", default: "var"))
      snapshot.pollIntervalSeconds = snC.double("poll_interval_s", default: 5, range: 0.1...86400)
      snapshot.changesPath = snC.string("changes_path").flatMap { $0.isEmpty ? nil : absolute($0) }
      snapshot.compactAfterBytes = snC.int("compact_after_bytes", default: 64 << 20, range: 4096...(1 << 40))
      if let pgC = snC.child("postgres") {
        var pg = GatewayConfig.Postgres(url: "")
        pg.url = pgC.string("url", default: "")
        pg.passwordFile = pgC.string("password_file").flatMap { $0.isEmpty ? nil : absolute($0) }
        pg.schema = pgC.string("schema", default: "tenant_gateway")
        pg.tls = pgC.string("tls", default: "prefer")
        pg.caFile = pgC.string("ca_file").flatMap { $0.isEmpty ? nil : absolute($0) }
        pg.pollIntervalSeconds = pgC.double("poll_interval_s", default: 5, range: 0.05...86400)
        if !["disable", "prefer", "require"].contains(pg.tls) { pgC.fail("tls", "must be disable, prefer or require") }
        if !pg.url.isEmpty && !(pg.url.hasPrefix("postgres://") || pg.url.hasPrefix("postgresql://")) {
          pgC.fail("url", "must be a postgres:// URL")
        }
        if pg.schema.isEmpty || !pg.schema.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) || pg.schema.first!.isNumber {
          pgC.fail("schema", "must be a plain SQL identifier (letters, digits, _)")
        }
        pgC.finish()
        if !pg.url.isEmpty { snapshot.postgres = pg }
      }
      let sources = [snapshot.path != nil, snapshot.url != nil, snapshot.postgres != nil].filter { $0 }.count
      if sources == 0 { snC.fail("path", "one of snapshot.path, snapshot.url or snapshot.postgres.url must be set") }
      if sources > 1 { snC.fail("path", "set exactly one of snapshot.path, snapshot.url and snapshot.postgres.url") }
      if let u = snapshot.url, !(u.hasPrefix("http://") || u.hasPrefix("https://")) {
        snC.fail("url", "must be an http:// or https:// URL")
      }
      snC.finish()
    } else {
      diag.errors.append(ConfigError(path: "snapshot.path", reason: "one of snapshot.path, snapshot.url or snapshot.postgres.url must be set"))
    }

    // limits (read early: clusters default their timeouts from it)
    var limits = GatewayConfig.Limits()
    if let lC = root.child("limits") {
      limits.perKeyRPS = lC.int("per_key_rps", default: 0, range: 0...10_000_000)
      limits.perShopRPS = lC.int("per_shop_rps", default: 0, range: 0...10_000_000)
      limits.burst = lC.int("burst", default: 0, range: 0...10_000_000)
      limits.maxHeaderBytes = lC.int("max_header_bytes", default: 32768, range: 1024...1_048_576)
      limits.maxHeaderCount = lC.int("max_header_count", default: 100, range: 8...10_000)
      limits.maxBodyBytes = lC.int("max_body_bytes", default: 10_485_760, range: 0...Int.max)
      limits.maxURIBytes = lC.int("max_uri_bytes", default: 8192, range: 64...1_048_576)
      limits.clientHeaderTimeoutSeconds = lC.double("client_header_timeout_s", default: 10, range: 0.1...3600)
      limits.idleTimeoutSeconds = lC.double("idle_timeout_s", default: 60, range: 0.1...86400)
      limits.upstreamConnectTimeoutSeconds = lC.double("upstream_connect_timeout_s", default: 2, range: 0.01...600)
      limits.upstreamResponseTimeoutSeconds = lC.double("upstream_response_timeout_s", default: 30, range: 0.01...86400)
      limits.maxConnections = lC.int("max_connections", default: 10000, range: 1...10_000_000)
      limits.h2MaxConcurrentStreams = lC.int("h2_max_concurrent_streams", default: 100, range: 1...10_000)
      limits.drainTimeoutSeconds = lC.double("drain_timeout_s", default: 30, range: 0...3600)
      lC.finish()
    }

    // upstreams
    let upstreams = upstreams(root, diag)

    // routes
    let (routes, routesAreDefault) = routes(root, upstreams: upstreams, diag, warnings: &warnings)

    // policy, cors
    let policyC = root.child("policy")
    var policy = GatewayConfig.Policy(refuseSecretKeyInBrowser: policyC?.bool("refuse_secret_key_in_browser", default: true) ?? true)
    for (i, name) in (policyC?.strings("strip_request_headers") ?? []).enumerated() {
      // Names only: an underscore or any non-token byte could never match a header the gateway
      // accepts (such requests are refused), so it is a mistake, not a rule.
      if !isToken(name) {
        diag.errors.append(ConfigError(path: "policy.strip_request_headers[\(i)]", reason: "\"\(name)\" is not a header name"))
      } else {
        policy.stripRequestHeaders.append(name)
      }
    }
    policyC?.finish()
    let corsC = root.child("cors")
    let cors = GatewayConfig.CORS(
      allowHeaders: corsC?.strings("allow_headers") ?? ["Content-Type", "Authorization"],
      maxAgeSeconds: corsC?.int("max_age_s", default: 600, range: 0...86400) ?? 600)
    corsC?.finish()

    // tenant_header
    let tenantHeader = tenantHeader(root, diag)
    if acme?.storage == "postgres" && snapshot.postgres == nil {
      diag.errors.append(ConfigError(path: "tls.acme.storage", reason: "postgres keeps certificates in the snapshot.postgres database, and snapshot.postgres.url is not set"))
    }
    if tenantHeader.signingKeys.isEmpty {
      diag.errors.append(ConfigError(path: "tenant_header.signing_keys", reason: "must list at least one key"))
    }

    let logC = root.child("access_log")
    let logPath = logC?.string("path", default: "-") ?? "-"
    logC?.finish()
    let accessLog = GatewayConfig.AccessLog(path: logPath.isEmpty ? nil : (logPath == "-" ? "-" : absolute(logPath)))

    let pkHeader = root.string("publishable_key_header", default: "X-Publishable-Key")
    if !isToken(pkHeader) { root.fail("publishable_key_header", "must be a valid header name") }

    root.finish()

    guard diag.errors.isEmpty, let listenAddress, let adminAddress, let platform else {
      return Result(config: nil, errors: diag.errors, unknownKeys: diag.unknownKeys, warnings: warnings)
    }
    let config = GatewayConfig(
      listen: .init(
        address: listenAddress, proxyProtocol: proxyProtocol, proxyProtocolFrom: proxyFrom, httpAddress: httpAddress,
        httpsRedirectPort: redirectPort),
      admin: .init(address: adminAddress, tokenFile: tokenFile),
      tls: .init(
        certificates: certificates, customDomainCertsDir: customDir, minVersion: minVersion, generateDevCertificate: generateDev,
        ciphers: ciphers, acme: acme),
      platform: platform, sessions: sessions, snapshot: snapshot, upstreams: upstreams, routes: routes,
      routesAreDefault: routesAreDefault, policy: policy, cors: cors, tenantHeader: tenantHeader, accessLog: accessLog,
      publishableKeyHeader: pkHeader, limits: limits, baseDirectory: baseDirectory)
    return Result(config: config, errors: [], unknownKeys: diag.unknownKeys, warnings: warnings)
  }

  /// RFC 9110 token characters (header names).
  func isToken(_ s: String) -> Bool {
    !s.isEmpty && s.utf8.allSatisfy { b in
      (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || "!#$%&'*+-.^`|~".utf8.contains(b)
    }
  }
}
