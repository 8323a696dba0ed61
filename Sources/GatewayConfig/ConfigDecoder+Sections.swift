import Foundation
import GatewayCore

/// The larger sections of the configuration, one function each: what `upstreams`, `routes` and
/// `tenant_header` say, checked, with every mistake recorded in `diag` under its key path.
extension ConfigDecoder {
  /// `upstreams` (PRODUCT.md §7): a cluster per name, a bare URL or a mapping with endpoints.
  func upstreams(_ root: ConfigCursor, _ diag: ConfigCursor.Diagnostics) -> [String: UpstreamCluster] {
    var upstreams: [String: UpstreamCluster] = [:]
    if let uC = root.child("upstreams") {
      for name in uC.keys {
        guard let node = uC.node(name) else { continue }
        let path = "upstreams.\(name)"
        switch node {
        case .scalar(let url):
          if url.isEmpty { continue }  // `test: ""` means no test cluster
          if let e = UpstreamEndpoint(url: url) {
            upstreams[name] = UpstreamCluster(name: name, endpoints: [e])
          } else {
            diag.errors.append(ConfigError(path: path, reason: "\"\(url)\" is not an http:// or https:// URL"))
          }
        case .mapping:
          let c = ConfigCursor(node: node, path: path, diagnostics: diag)
          var cluster = UpstreamCluster(name: name, endpoints: [])
          for (i, url) in (c.strings("endpoints") ?? []).enumerated() {
            if let e = UpstreamEndpoint(url: url), e.tls, e.host.allSatisfy({ $0.isNumber || $0 == "." || $0 == ":" }) {
              diag.errors.append(ConfigError(path: "\(path).endpoints[\(i)]", reason: "an https endpoint needs a DNS name: its certificate's name is verified"))
            } else if let e = UpstreamEndpoint(url: url) { cluster.endpoints.append(e) } else {
              diag.errors.append(ConfigError(path: "\(path).endpoints[\(i)]", reason: "\"\(url)\" is not an http:// or https:// URL"))
            }
          }
          if cluster.endpoints.isEmpty { c.fail("endpoints", "must list at least one endpoint URL") }
          if let lb = c.string("lb") {
            if let b = UpstreamCluster.Balancing(rawValue: lb) { cluster.balancing = b } else {
              c.fail("lb", "must be round_robin or least_request")
            }
          }
          if let hc = c.child("health_check") {
            cluster.healthCheck = .init(
              path: hc.string("path", default: "/healthz"), intervalSeconds: hc.double("interval_s", default: 5, range: 0.1...3600),
              unhealthyAfter: hc.int("unhealthy_after", default: 3, range: 1...100),
              healthyAfter: hc.int("healthy_after", default: 2, range: 1...100))
            hc.finish()
          }
          cluster.retries = c.int("retries", default: 1, range: 0...10)
          cluster.retryBudgetPercent = c.int("retry_budget_percent", default: 20, range: 0...100)
          cluster.maxConnectionsPerEndpoint = c.int("max_connections_per_endpoint", default: 512, range: 1...100_000)
          cluster.caFile = c.string("ca_file").flatMap { $0.isEmpty ? nil : absolute($0) }
          if c.has("connect_timeout_s") {
            cluster.connectTimeoutSeconds = c.double("connect_timeout_s", default: 2, range: 0.01...600)
          }
          if c.has("response_timeout_s") {
            cluster.responseTimeoutSeconds = c.double("response_timeout_s", default: 30, range: 0.01...86400)
          }
          c.finish()
          upstreams[name] = cluster
        case .null:
          continue
        case .sequence:
          diag.errors.append(ConfigError(path: path, reason: "must be a URL or a mapping with endpoints"))
        }
      }
      _ = uC.keys.map { _ = uC.node($0) }
    }
    if upstreams["default"] == nil {
      diag.errors.append(ConfigError(path: "upstreams.default", reason: "must be set"))
    }
    return upstreams
  }

  /// `routes`: path prefixes in normal form, the credentials each accepts, its cluster; a rule that
  /// an earlier one shadows is a warning.
  func routes(
    _ root: ConfigCursor, upstreams: [String: UpstreamCluster], _ diag: ConfigCursor.Diagnostics, warnings: inout [String]
  ) -> (RouteTable, Bool) {
    var routes = RouteTable.default
    var routesAreDefault = true
    if let items = root.items("routes") {
      routesAreDefault = false
      var list: [Route] = []
      for item in items {
        guard let prefix = item.string("prefix"), prefix.hasPrefix("/") else {
          item.fail("prefix", "must be set and start with /")
          continue
        }
        // Paths are matched in normal form (PRODUCT.md §3): a prefix in any other form could never
        // match, so it is a mistake, not a rule.
        switch RequestPath.normalize(target: prefix) {
        case .success(let n) where n.path == prefix && !prefix.contains("?"):
          break
        case .success(let n):
          item.fail("prefix", "\"\(prefix)\" is not in the normal form paths are matched in and could never match; write \"\(n.path)\"")
          continue
        case .failure(let problem):
          item.fail("prefix", "\"\(prefix)\": \(problem.message)")
          continue
        }
        var accepts = CredentialKinds()
        for (i, kind) in (item.strings("accepts") ?? []).enumerated() {
          if let k = CredentialKind(rawValue: kind) { accepts.insert(CredentialKinds(k)) } else {
            diag.errors.append(ConfigError(
              path: "\(item.path).accepts[\(i)]",
              reason: "unknown credential kind \"\(kind)\" (secret_key, publishable_key, host, session)"))
          }
        }
        if accepts.isEmpty { item.fail("accepts", "must list at least one credential kind") }
        let methods = item.strings("publishable_methods")?.map { $0.uppercased() }
        let upstream = item.string("upstream", default: "default")
        if upstreams[upstream] == nil && !upstreams.isEmpty {
          item.fail("upstream", "names cluster \"\(upstream)\", which upstreams does not define")
        }
        list.append(Route(
          prefix: prefix, accepts: accepts, publishableMethods: methods,
          customerTokens: item.bool("customer_tokens", default: false),
          requireOrigin: item.bool("require_origin", default: false), upstream: upstream))
        item.finish()
      }
      routes = RouteTable(list)
      for (rule, by) in routes.shadowedRules {
        warnings.append("routes[\(rule)] (\(list[rule].prefix)) is shadowed by routes[\(by)] (\(list[by].prefix)), which comes first and matches every path it does")
      }
    }
    return (routes, routesAreDefault)
  }

  /// `tenant_header`: the X-Tenant name, issuer, lifetime and signing keys (unique kids).
  func tenantHeader(_ root: ConfigCursor, _ diag: ConfigCursor.Diagnostics) -> GatewayConfig.TenantHeader {
    var tenantHeader = GatewayConfig.TenantHeader(name: "X-Tenant", issuer: "tenant-gateway", ttlSeconds: 60, trustRequestID: false, signingKeys: [])
    if let tC = root.child("tenant_header") {
      tenantHeader.name = tC.string("name", default: "X-Tenant")
      if !isToken(tenantHeader.name) { tC.fail("name", "must be a valid header name") }
      tenantHeader.issuer = tC.string("issuer", default: "tenant-gateway")
      tenantHeader.ttlSeconds = tC.int("ttl_seconds", default: 60, range: 1...86400)
      tenantHeader.trustRequestID = tC.bool("trust_request_id", default: false)
      for item in tC.items("signing_keys") ?? [] {
        let kid = item.string("kid") ?? ""
        let alg = item.string("alg") ?? ""
        if kid.isEmpty { item.fail("kid", "must be set") }
        switch alg {
        case "HS256":
          if let f = item.string("secret_file"), !f.isEmpty { tenantHeader.signingKeys.append(.init(kid: kid, alg: alg, file: absolute(f))) } else {
            item.fail("secret_file", "must be set for HS256")
          }
        case "EdDSA":
          if let f = item.string("private_key_file"), !f.isEmpty { tenantHeader.signingKeys.append(.init(kid: kid, alg: alg, file: absolute(f))) } else {
            item.fail("private_key_file", "must be set for EdDSA")
          }
        default:
          item.fail("alg", "must be HS256 or EdDSA, got \"\(alg)\"")
        }
        item.finish()
      }
      if Set(tenantHeader.signingKeys.map(\.kid)).count != tenantHeader.signingKeys.count {
        tC.fail("signing_keys", "kids must be unique")
      }
      tC.finish()
    }
    return tenantHeader
  }

  /// `tls.acme` (PRODUCT.md §7, §10); nil (off) when `directory_url` is empty.
  static func acme(_ c: ConfigCursor, absolute: (String) -> String) -> GatewayConfig.ACME? {
    let url = c.string("directory_url", default: "")
    var a = GatewayConfig.ACME(directoryURL: url, storageDir: absolute(c.string("storage_dir", default: "var/acme")))
    let contact = c.string("contact", default: "")
    a.contact = contact.split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init)
    a.caFile = c.string("ca_file").flatMap { $0.isEmpty ? nil : absolute($0) }
    if let list = c.strings("challenges") {
      a.challenges = list
      for (i, name) in list.enumerated() where !["tls-alpn-01", "http-01"].contains(name) {
        c.fail("challenges[\(i)]", "\"\(name)\" is not a challenge the gateway answers (tls-alpn-01, http-01)")
      }
      if list.isEmpty { c.fail("challenges", "must list tls-alpn-01, http-01 or both") }
    }
    a.renewBeforeDays = c.int("renew_before_days", default: 30, range: 1...365)
    a.handshakeWaitSeconds = c.double("handshake_wait_s", default: 10, range: 0...60)
    a.maxOrdersPerHour = c.int("max_orders_per_hour", default: 300, range: 0...100_000)
    a.maxConcurrentOrders = c.int("max_concurrent_orders", default: 8, range: 1...256)
    a.eabKid = c.string("eab_kid").flatMap { $0.isEmpty ? nil : $0 }
    a.eabHMACKeyFile = c.string("eab_hmac_key_file").flatMap { $0.isEmpty ? nil : absolute($0) }
    if (a.eabKid == nil) != (a.eabHMACKeyFile == nil) { c.fail("eab_kid", "eab_kid and eab_hmac_key_file go together") }
    a.storage = c.string("storage", default: "dir")
    if !["dir", "postgres"].contains(a.storage) { c.fail("storage", "must be dir (storage_dir, shared by the fleet) or postgres (the snapshot.postgres database)") }
    guard !url.isEmpty else { return nil }
    if !url.hasPrefix("https://") && !url.hasPrefix("http://") { c.fail("directory_url", "must be an https:// URL") }
    return a
  }
}
