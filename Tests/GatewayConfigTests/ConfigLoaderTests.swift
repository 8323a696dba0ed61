import Foundation
import GatewayCore
import Testing

@testable import GatewayConfig

@Suite("gateway.conf (§7)")
struct ConfigLoaderTests {
  static let minimal = """
    listen: {address: "127.0.0.1:8443"}
    tls: {certificates: [{cert: c.pem, key: c.key}]}
    platform: {api_hosts: [api.platform.example], domain: platform.example}
    snapshot: {path: tenants.json}
    upstreams: {default: "http://127.0.0.1:9000"}
    tenant_header: {signing_keys: [{kid: k1, alg: HS256, secret_file: secret.key}]}
    """

  @Test("The shipped gateway.conf loads without warnings")
  func shipped() throws {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let outcome = ConfigLoader.load(path: root.appendingPathComponent("gateway.conf").path, environment: [:])
    #expect(outcome.errors.isEmpty, "\(outcome.errors)")
    #expect(outcome.warnings.isEmpty, "\(outcome.warnings)")
    let c = try #require(outcome.config)
    #expect(c.listen.address.port == 8443)
    #expect(c.tls.generateDevCertificate)
    #expect(c.routesAreDefault)
    #expect(c.upstreams["test"] == nil)
  }

  @Test("Shipped deployment configs load: docker/gateway.conf and the one in docker/k8s/configmap.yaml")
  func deploymentConfigs() throws {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let docker = ConfigLoader.load(path: root.appendingPathComponent("docker/gateway.conf").path, environment: [:])
    #expect(docker.errors.isEmpty && docker.warnings.isEmpty, "\(docker.errors) \(docker.warnings)")
    #expect(docker.config?.listen.address.host == "0.0.0.0")
    #expect(docker.config?.tls.generateDevCertificate == false)

    // The ConfigMap carries gateway.conf as a block scalar indented by four spaces.
    let manifest = try String(contentsOf: root.appendingPathComponent("docker/k8s/configmap.yaml"), encoding: .utf8)
    var lines: [Substring] = []
    var inBlock = false
    for line in manifest.split(separator: "\n", omittingEmptySubsequences: false) {
      if line == "  gateway.conf: |" { inBlock = true; continue }
      if inBlock {
        guard line.isEmpty || line.hasPrefix("    ") else { break }
        lines.append(line.dropFirst(min(4, line.count)))
      }
    }
    #expect(lines.count > 10)
    let k8s = ConfigLoader.load(yaml: lines.joined(separator: "\n"), baseDirectory: "/")
    #expect(k8s.errors.isEmpty && k8s.warnings.isEmpty, "\(k8s.errors) \(k8s.warnings)")
    #expect(k8s.config?.snapshot.path == "/etc/tenant-gateway/snapshot/tenants.json")
  }

  @Test("Omitted scalar keys take the documented defaults; paths resolve against the config directory")
  func defaults() throws {
    let c = try #require(ConfigLoader.load(yaml: Self.minimal, baseDirectory: "/etc/tgw").config)
    #expect(c.admin.address.description == "127.0.0.1:9901")
    #expect(c.limits.maxHeaderBytes == 32768)
    #expect(c.limits.maxBodyBytes == 10_485_760)
    #expect(c.limits.h2MaxConcurrentStreams == 100)
    #expect(c.tenantHeader.name == "X-Tenant")
    #expect(c.tenantHeader.ttlSeconds == 60)
    #expect(c.publishableKeyHeader == "X-Publishable-Key")
    #expect(c.cors.maxAgeSeconds == 600)
    #expect(c.policy.refuseSecretKeyInBrowser)
    #expect(c.tls.minVersion == "1.2")
    #expect(c.tls.certificates[0].cert == "/etc/tgw/c.pem")
    #expect(c.snapshot.path == "/etc/tgw/tenants.json")
    #expect(c.accessLog.path == "-")
    #expect(c.sessions == nil)
  }

  @Test(
    "Missing required keys are reported with their key path",
    arguments: [
      ("listen", "listen.address"), ("tls", "tls.certificates"), ("platform", "platform"),
      ("snapshot", "snapshot.path"), ("upstreams", "upstreams.default"), ("tenant_header", "tenant_header.signing_keys"),
    ])
  func missing(_ section: String, _ path: String) {
    let yaml = Self.minimal.split(separator: "\n").filter { !$0.hasPrefix(section + ":") }.joined(separator: "\n")
    let outcome = ConfigLoader.load(yaml: yaml, baseDirectory: "/")
    #expect(outcome.config == nil)
    #expect(outcome.errors.contains { $0.path == path }, "\(outcome.errors)")
  }

  @Test(
    "Bad values name the key path and the reason",
    arguments: [
      ("limits: {max_body_bytes: lots}", "limits.max_body_bytes"),
      ("limits: {h2_max_concurrent_streams: 0}", "limits.h2_max_concurrent_streams"),
      ("policy: {refuse_secret_key_in_browser: maybe}", "policy.refuse_secret_key_in_browser"),
      ("tls2: {}", ""),
      ("publishable_key_header: X_Key", "publishable_key_header"),
      ("routes: [{prefix: /v1/, accepts: [api_key]}]", "routes[0].accepts[0]"),
      ("routes: [{prefix: /v1/, accepts: [secret_key], upstream: nowhere}]", "routes[0].upstream"),
      // Paths are matched in normal form (§3): a prefix in another form could never match.
      ("routes: [{prefix: /v1//admin/, accepts: [secret_key]}]", "routes[0].prefix"),
      ("routes: [{prefix: /v1/./admin/, accepts: [secret_key]}]", "routes[0].prefix"),
      ("routes: [{prefix: /%76%31/, accepts: [secret_key]}]", "routes[0].prefix"),
      ("routes: [{prefix: \"/v1;x/\", accepts: [secret_key]}]", "routes[0].prefix"),
      ("routes: [{prefix: \"/v1?x\", accepts: [secret_key]}]", "routes[0].prefix"),
      ("policy: {strip_request_headers: [X-Ok, \"X Bad\"]}", "policy.strip_request_headers[1]"),
      ("policy: {strip_request_headers: [X_Internal]}", "policy.strip_request_headers[0]"),
    ])
  func badValues(_ extra: String, _ path: String) {
    let outcome = ConfigLoader.load(yaml: Self.minimal + "\n" + extra, baseDirectory: "/")
    if path.isEmpty {
      #expect(outcome.warnings.contains { $0.contains("unknown key tls2") })
    } else {
      #expect(outcome.errors.contains { $0.path == path }, "\(outcome.errors)")
    }
  }

  @Test("tls.acme and listen.http_address (§10): off by default, every key decoded, bad values named")
  func acme() throws {
    let off = try #require(ConfigLoader.load(yaml: Self.minimal, baseDirectory: "/etc/tgw").config)
    #expect(off.tls.acme == nil)
    #expect(off.listen.httpAddress == nil)
    #expect(off.listen.httpsRedirectPort == 443)
    let yaml = Self.minimal
      .replacingOccurrences(of: "listen: {address: \"127.0.0.1:8443\"}",
                            with: "listen: {address: \"127.0.0.1:8443\", http_address: \"127.0.0.1:8080\", https_redirect_port: 8443}")
      .replacingOccurrences(of: "tls: {certificates: [{cert: c.pem, key: c.key}]}", with: """
        tls:
          certificates: [{cert: c.pem, key: c.key}]
          acme: {directory_url: "https://127.0.0.1:14000/dir", contact: "ops@example.com", ca_file: pebble.minica.pem,
                 challenges: [http-01], renew_before_days: 20, handshake_wait_s: 2.5, max_orders_per_hour: 50}
        """)
    let outcome = ConfigLoader.load(yaml: yaml, baseDirectory: "/etc/tgw")
    let c = try #require(outcome.config, "\(outcome.errors)")
    #expect(outcome.warnings.isEmpty, "\(outcome.warnings)")
    #expect(c.listen.httpAddress != nil)
    #expect(c.listen.httpsRedirectPort == 8443)
    let a = try #require(c.tls.acme)
    #expect(a.directoryURL == "https://127.0.0.1:14000/dir")
    #expect(a.contact == ["ops@example.com"])
    #expect(a.caFile == "/etc/tgw/pebble.minica.pem")
    #expect(a.storageDir == "/etc/tgw/var/acme")
    #expect(a.challenges == ["http-01"])
    #expect(a.renewBeforeDays == 20)
    #expect(a.handshakeWaitSeconds == 2.5)
    #expect(a.maxOrdersPerHour == 50)
    #expect(a.maxConcurrentOrders == 8)
    #expect(a.storage == "dir")
    // tls.acme.storage: postgres needs the PostgreSQL source; an unknown storage is named.
    let noDB = ConfigLoader.load(yaml: yaml, baseDirectory: "/", overrides: ["tls.acme.storage=postgres"])
    #expect(noDB.errors.contains { $0.path == "tls.acme.storage" && $0.reason.contains("snapshot.postgres.url") }, "\(noDB.errors)")
    let withDB = ConfigLoader.load(
      yaml: yaml, baseDirectory: "/", overrides: ["tls.acme.storage=postgres", "snapshot.postgres.url=postgres://gw@db:5432/platform", "snapshot.path="])
    #expect(withDB.config?.tls.acme?.storage == "postgres", "\(withDB.errors)")
    #expect(ConfigLoader.load(yaml: yaml, baseDirectory: "/", overrides: ["tls.acme.storage=s3"]).errors.contains { $0.path == "tls.acme.storage" })
    // Overrides reach the nested keys.
    let set = try #require(ConfigLoader.load(yaml: yaml, baseDirectory: "/", overrides: ["tls.acme.max_orders_per_hour=7"]).config)
    #expect(set.tls.acme?.maxOrdersPerHour == 7)
    let dns = ConfigLoader.load(yaml: yaml.replacingOccurrences(of: "[http-01]", with: "[http-01, dns-01]"), baseDirectory: "/")
    #expect(dns.errors.contains { $0.path == "tls.acme.challenges[1]" }, "\(dns.errors)")
    for (bad, path) in [
      ("tls.acme.renew_before_days=0", "tls.acme.renew_before_days"), ("tls.acme.handshake_wait_s=600", "tls.acme.handshake_wait_s"),
      ("tls.acme.directory_url=ftp://ca", "tls.acme.directory_url"), ("tls.acme.eab_kid=kid-1", "tls.acme.eab_kid"),
      ("listen.https_redirect_port=0", "listen.https_redirect_port"),
    ] {
      let o = ConfigLoader.load(yaml: yaml, baseDirectory: "/", overrides: [bad])
      #expect(o.errors.contains { $0.path == path }, "\(bad): \(o.errors)")
    }
  }

  @Test("tls.ciphers: OpenSSL or IANA names become OpenSSL names; unknown and TLS 1.3 names are errors with their index")
  func ciphers() throws {
    func load(_ list: String) -> ConfigLoader.Outcome {
      ConfigLoader.load(yaml: Self.minimal.replacingOccurrences(of: "tls: {certificates:", with: "tls: {ciphers: \(list), certificates:"), baseDirectory: "/")
    }
    let ok = try #require(load("[TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, ecdhe-rsa-aes128-gcm-sha256]").config)
    #expect(ok.tls.ciphers == ["ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-GCM-SHA256"])
    #expect(try #require(ConfigLoader.load(yaml: Self.minimal, baseDirectory: "/").config).tls.ciphers.isEmpty)
    let bad = load("[ECDHE-ECDSA-AES256-GCM-SHA384, ECDHE-ECDSA-AES256-GCM-SHA385, TLS_AES_128_GCM_SHA256]")
    #expect(bad.config == nil)
    #expect(bad.errors.map(\.path) == ["tls.ciphers[1]", "tls.ciphers[2]"], "\(bad.errors)")
    #expect(bad.errors.last?.reason.contains("TLS 1.3") == true)
  }

  @Test("Environment overrides the file and --set overrides the environment")
  func overrides() throws {
    let env = ["TGW_LISTEN_ADDRESS": "127.0.0.1:1111", "TGW_LIMITS_MAX_BODY_BYTES": "42", "TGW_TENANT_HEADER_TTL_SECONDS": "5"]
    let c = try #require(ConfigLoader.load(yaml: Self.minimal, baseDirectory: "/", environment: env, overrides: ["listen.address=127.0.0.1:2222"]).config)
    #expect(c.listen.address.port == 2222)
    #expect(c.limits.maxBodyBytes == 42)
    #expect(c.tenantHeader.ttlSeconds == 5)
    let bad = ConfigLoader.load(yaml: Self.minimal, baseDirectory: "/", overrides: ["routes=x"])
    #expect(bad.errors.contains { $0.path == "routes" })
    #expect(ConfigLoader.environmentName(for: "limits.max_body_bytes") == "TGW_LIMITS_MAX_BODY_BYTES")
  }

  @Test("A route shadowed by an earlier prefix is a warning; the default table nests on purpose")
  func shadowedRoutes() throws {
    let yaml = Self.minimal + "\nroutes: [{prefix: /v1/, accepts: [secret_key]}, {prefix: /v1/admin/, accepts: [secret_key]}]"
    let outcome = ConfigLoader.load(yaml: yaml, baseDirectory: "/")
    #expect(outcome.config != nil)
    #expect(outcome.warnings.contains { $0.contains("shadowed") })
    let c = try #require(outcome.config)
    #expect(c.routes.routes.count == 2)
    #expect(!c.routesAreDefault)
  }

  @Test("Upstream clusters: a URL or a mapping with endpoints")
  func clusters() throws {
    let yaml = Self.minimal.replacingOccurrences(of: "upstreams: {default: \"http://127.0.0.1:9000\"}", with: """
      upstreams:
        default: "http://127.0.0.1:9000"
        catalog: {endpoints: ["http://10.0.0.5:8080", "https://catalog-2.internal:8443"], lb: least_request, retries: 2}
        test: ""
      """)
    let c = try #require(ConfigLoader.load(yaml: yaml, baseDirectory: "/").config)
    #expect(c.upstreams["catalog"]?.endpoints.map(\.description) == ["http://10.0.0.5:8080", "https://catalog-2.internal:8443"])
    #expect(c.upstreams["catalog"]?.balancing == .leastRequest)
    #expect(c.upstreams["test"] == nil)
    // An https endpoint named by IP literal cannot have its certificate name verified: refused.
    let ip = yaml.replacingOccurrences(of: "https://catalog-2.internal:8443", with: "https://10.0.0.6:8443")
    #expect(ConfigLoader.load(yaml: ip, baseDirectory: "/").errors.contains { "\($0)".contains("needs a DNS name") })
  }

  @Test("Errors carry the YAML line of the value, or the override that set it")
  func errorOrigins() throws {
    let yaml = Self.minimal + "\nlimits: {max_body_bytes: lots}\n"
    let fromFile = ConfigLoader.load(yaml: yaml, baseDirectory: "/etc/tgw")
    let e = try #require(fromFile.errors.first)
    #expect(e.path == "limits.max_body_bytes")
    #expect(e.line == 7)
    #expect(e.message(file: "gw.conf") == "gw.conf:7: limits.max_body_bytes: must be an integer, got \"lots\"")
    let env = ConfigLoader.load(yaml: Self.minimal, baseDirectory: "/", environment: ["TGW_LIMITS_BURST": "x"])
    #expect(env.errors.first?.message(file: "gw.conf").hasPrefix("environment TGW_LIMITS_BURST: limits.burst:") == true, "\(env.errors)")
    let set = ConfigLoader.load(yaml: Self.minimal, baseDirectory: "/", overrides: ["limits.burts=3"])
    #expect(set.errors.first?.message(file: "gw.conf").contains("--set limits.burts=3: limits.burts: --set only overrides scalar keys") == true)
    #expect(set.errors.first?.reason.hasSuffix("did you mean limits.burst?") == true, "\(set.errors)")
    #expect(fromFile.origin(of: "tls.certificates[0].cert", file: "gw.conf") == "gw.conf:2")
  }

  @Test("Unknown keys and TGW_ variables get a did-you-mean; the repository's tooling variables are not config")
  func didYouMean() throws {
    let o = ConfigLoader.load(
      yaml: Self.minimal.replacingOccurrences(of: "listen: {address:", with: "listen: {adress: x, address:"), baseDirectory: "/",
      environment: ["TGW_LISTEN_ADRESS": "1", "TGW_BINARY": "/x", "TGW_COMPLETELY_ELSE": "1"])
    #expect(o.warnings.contains("unknown key listen.adress (line 1) (did you mean listen.address?)"), "\(o.warnings)")
    #expect(o.warnings.contains { $0.contains("TGW_LISTEN_ADRESS") && $0.hasSuffix("did you mean TGW_LISTEN_ADDRESS?") }, "\(o.warnings)")
    #expect(o.warnings.contains { $0.contains("TGW_COMPLETELY_ELSE is not a gateway.conf key") && !$0.contains("did you mean") })
    #expect(!o.warnings.contains { $0.contains("TGW_BINARY") })
    #expect(Spelling.closest(to: "idle_timeout", among: ["idle_timeout_s", "drain_timeout_s"]) == "idle_timeout_s")
    #expect(Spelling.closest(to: "zzz", among: ["idle_timeout_s"]) == nil)
  }

  @Test("listen.proxy_protocol needs proxy_protocol_from; CIDR blocks parse and match v4, v6 and v4-mapped addresses")
  func proxyProtocolConfig() throws {
    let bare = ConfigLoader.load(
      yaml: Self.minimal.replacingOccurrences(of: "listen: {address: \"127.0.0.1:8443\"}", with: "listen: {address: \"127.0.0.1:8443\", proxy_protocol: true}"),
      baseDirectory: "/")
    #expect(bare.errors.contains { $0.path == "listen.proxy_protocol_from" }, "\(bare.errors)")
    let ok = ConfigLoader.load(
      yaml: Self.minimal.replacingOccurrences(
        of: "listen: {address: \"127.0.0.1:8443\"}",
        with: "listen: {address: \"127.0.0.1:8443\", proxy_protocol: true, proxy_protocol_from: [10.0.0.0/8, \"::1\", 192.168.1.7]}"),
      baseDirectory: "/")
    let listen = try #require(ok.config?.listen, "\(ok.errors)")
    #expect(listen.proxyProtocol)
    let blocks = listen.proxyProtocolFrom
    #expect(blocks.count == 3)
    #expect(blocks[0].contains([10, 200, 3, 4]))
    #expect(!blocks[0].contains([11, 0, 0, 1]))
    #expect(blocks[0].contains([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 10, 1, 2, 3]))
    #expect(blocks[1].contains([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]))
    #expect(!blocks[2].contains([192, 168, 1, 8]))
    #expect(CIDRBlock("10.0.0.0/33") == nil && CIDRBlock("nonsense") == nil)
    let badBlock = ConfigLoader.load(
      yaml: Self.minimal.replacingOccurrences(
        of: "listen: {address: \"127.0.0.1:8443\"}",
        with: "listen: {address: \"127.0.0.1:8443\", proxy_protocol: true, proxy_protocol_from: [\"10.0.0.0/99\"]}"),
      baseDirectory: "/")
    #expect(badBlock.errors.contains { $0.path == "listen.proxy_protocol_from[0]" })
  }
}
