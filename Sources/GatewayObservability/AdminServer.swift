import Crypto
import Foundation
import GatewayCore
import GatewaySnapshot
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// The outcome of `POST /admin/reload`.
public struct ReloadOutcome: Sendable {
  public var accepted: Bool
  public var version: String
  public var shops: Int
  public var customDomains: Int
  public var keys: Int
  public var errors: [String]
  public init(accepted: Bool, version: String, shops: Int, customDomains: Int, keys: Int, errors: [String]) {
    self.accepted = accepted
    self.version = version
    self.shops = shops
    self.customDomains = customDomains
    self.keys = keys
    self.errors = errors
  }
}

/// A status and a JSON body.
public struct AdminResponse: Sendable {
  public var status: Int
  public var json: String
  public init(status: Int, json: String) {
    self.status = status
    self.json = json
  }
}

/// What the admin listener asks of the gateway.
public protocol AdminBackend: Sendable {
  /// `GET /admin/shops/<id or subdomain>`: the shop document, or nil when no shop has that name.
  func shop(_ idOrSubdomain: String) -> String?
  /// `POST /admin/changes`: a change set (PRODUCT.md §6), validated, journaled and applied.
  func applyChanges(_ body: [UInt8]) -> EventLoopFuture<AdminResponse>
  var isReady: Bool { get }
  /// The X-Tenant verification keys as a JWKS (EdDSA public keys only).
  var jwks: String { get }
  var snapshotStatus: SnapshotStatus { get }
  func reload() -> EventLoopFuture<ReloadOutcome>
  func counters() -> EventLoopFuture<CounterSnapshot>
  /// Resolution debug for `GET /admin/lookup` (JSON); never reveals a key.
  func lookup(host: String, keySHA256: String?) -> String
  /// Clusters, endpoints, health and connections for `GET /admin/upstreams` (JSON).
  func upstreams() -> EventLoopFuture<String>
  /// (cluster, endpoint URL, healthy, ejections) for the metrics.
  var endpointHealth: [(cluster: String, endpoint: String, healthy: Bool, ejections: Int)] { get }
  /// `GET /admin/certificates[?host=H]` (PRODUCT.md §10): every domain ACME knows, or the one named;
  /// nil when `tls.acme` is off.
  func certificates(host: String?) -> [CertificateStatus]?
}

/// One custom domain's certificate as ACME sees it (PRODUCT.md §10).
public struct CertificateStatus: Sendable, Equatable {
  public var domain: String
  /// `pending`, `valid`, `renewing`, `failed` or `not_eligible`.
  public var state: String
  public var issuer: String?
  /// Unix time.
  public var notAfter: Double?
  public var lastError: String?
  /// Unix time.
  public var nextAttemptAt: Double?
  public init(domain: String, state: String, issuer: String?, notAfter: Double?, lastError: String?, nextAttemptAt: Double?) {
    self.domain = domain
    self.state = state
    self.issuer = issuer
    self.notAfter = notAfter
    self.lastError = lastError
    self.nextAttemptAt = nextAttemptAt
  }
}

/// The admin listener (PRODUCT.md §8): plain HTTP/1.1, loopback by default, optional bearer token.
/// `/healthz`, `/readyz`, `/metrics`, `/admin/snapshot`, `POST /admin/reload`.
public final class AdminServer: Sendable {
  let group: EventLoopGroup
  let backend: AdminBackend
  let token: [UInt8]?
  let logger: Logger
  private let channelBox = NIOLockedValueBox<Channel?>(nil)

  /// - Parameter token: the bearer token every endpoint but health and the JWKS requires (nil: none).
  public init(group: EventLoopGroup, backend: AdminBackend, token: [UInt8]?, logger: Logger) {
    self.group = group
    self.backend = backend
    self.logger = logger
    self.token = token
  }

  public func start(host: String, port: Int) throws {
    let backend = self.backend
    let token = self.token
    let channel = try ServerBootstrap(group: group)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      // Like the TLS listener: a replacement process binds beside this one (PRODUCT.md §8).
      .serverChannelOption(ChannelOptions.socket(SocketOptionLevel(SOL_SOCKET), SO_REUSEPORT), value: 1)
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
          try channel.pipeline.syncOperations.addHandler(AdminHandler(backend: backend, token: token))
        }
      }
      .bind(host: host, port: port).wait()
    channelBox.withLockedValue { $0 = channel }
  }

  public var boundPort: Int? { channelBox.withLockedValue { $0?.localAddress?.port } }

  public func stop() {
    let ch = channelBox.withLockedValue { $0 }
    try? ch?.close().wait()
  }
}

final class AdminHandler: ChannelInboundHandler {
  typealias InboundIn = HTTPServerRequestPart
  typealias OutboundOut = HTTPServerResponsePart

  let backend: AdminBackend
  let token: [UInt8]?
  private var head: HTTPRequestHead?
  private var body: [UInt8] = []
  private var bodyTooLarge = false
  /// Change sets are small; a snapshot-sized body is a mistake (use the file or URL source).
  static let maxBodyBytes = 16 << 20
  private var keepAlive = true
  /// The request is a HEAD: the answer has GET's headers and no body.
  private var headOnly = false
  /// Overrides `no-store` for the next response (the JWKS is cacheable).
  private var cacheControl: String?

  init(backend: AdminBackend, token: [UInt8]?) {
    self.backend = backend
    self.token = token
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    switch unwrapInboundIn(data) {
    case .head(let h):
      head = h
      body = []
      bodyTooLarge = false
    case .body(var b):
      if body.count + b.readableBytes > Self.maxBodyBytes {
        bodyTooLarge = true
      } else if let bytes = b.readBytes(length: b.readableBytes) {
        body += bytes
      }
    case .end:
      guard let head else { return }
      self.head = nil
      keepAlive = head.isKeepAlive
      if bodyTooLarge {
        keepAlive = false
        respond(context, status: .payloadTooLarge, json: AdminJSON.error("body_too_large", "admin request bodies are limited to 16 MiB"))
        return
      }
      handle(head, context: context)
    }
  }

  private func authorised(_ head: HTTPRequestHead) -> Bool {
    guard let token else { return true }
    guard let value = head.headers.first(name: "authorization"), value.hasPrefix("Bearer ") else { return false }
    let presented = Array(value.dropFirst(7).utf8)
    // Constant time: compare digests so neither length nor prefix leaks through timing.
    let a = SHA256.hash(data: presented)
    let b = SHA256.hash(data: token)
    return a == b
  }

  private func handle(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
    let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
    // Health and the public signing keys are open; everything else needs the token when one is set.
    if path != "/healthz" && path != "/readyz" && path != "/.well-known/tenant-jwks.json" && !authorised(head) {
      respond(context, status: .unauthorized, json: "{\"error\":{\"code\":\"unauthorized\",\"message\":\"admin token required\"}}")
      return
    }
    // Probes and load balancers use HEAD and OPTIONS too: HEAD is GET without the body.
    let method: HTTPMethod = head.method == .HEAD ? .GET : head.method
    headOnly = head.method == .HEAD
    if head.method == .OPTIONS {
      respond(context, status: .noContent, contentType: nil, body: "", extraHeaders: [("Allow", "GET, HEAD, OPTIONS, POST")])
      return
    }
    switch (method, path) {
    case (.GET, "/healthz"):
      respond(context, status: .ok, json: "{\"status\":\"ok\"}")
    case (.GET, "/readyz"):
      let ready = backend.isReady
      respond(context, status: ready ? .ok : .serviceUnavailable, json: "{\"ready\":\(ready)}")
    case (.GET, "/.well-known/tenant-jwks.json"):
      // Backends cache the keys (docs/backend.md). Rotation publishes a new key (second in
      // signing_keys) for longer than this before it signs, so a cached copy always has it.
      cacheControl = "public, max-age=300"
      respond(context, status: .ok, json: backend.jwks)
    case (.GET, "/admin/snapshot"):
      respond(context, status: .ok, json: AdminJSON.snapshot(backend.snapshotStatus))
    case (.POST, "/admin/reload"):
      backend.reload().hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
        switch result {
        case .success(let outcome):
          self.respond(context, status: outcome.accepted ? .ok : .unprocessableEntity, json: AdminJSON.reload(outcome))
        case .failure(let error):
          self.respond(context, status: .internalServerError, json: AdminJSON.reload(
            ReloadOutcome(accepted: false, version: "", shops: 0, customDomains: 0, keys: 0, errors: ["\(error)"])))
        }
      }
    case (.POST, "/admin/changes"):
      let request = body
      body = []
      backend.applyChanges(request).hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
        switch result {
        case .success(let r): self.respond(context, status: HTTPResponseStatus(statusCode: r.status), json: r.json)
        case .failure(let e): self.respond(context, status: .internalServerError, json: AdminJSON.error("internal", "\(e)"))
        }
      }
    case (.GET, _) where path.hasPrefix("/admin/shops/"):
      let name = String(path.dropFirst("/admin/shops/".count)).removingPercentEncoding ?? ""
      if let doc = backend.shop(name) {
        respond(context, status: .ok, json: doc)
      } else {
        respond(context, status: .notFound, json: AdminJSON.error("unknown_shop", "no shop with id or subdomain \(name)"))
      }
    case (.GET, "/admin/lookup"):
      let query = AdminQuery(head.uri)
      guard let host = query["host"], !host.isEmpty else {
        respond(context, status: .badRequest, json: "{\"error\":{\"code\":\"invalid_request\",\"message\":\"host is required; key_sha256 is optional (never send a plaintext key)\"}}")
        return
      }
      respond(context, status: .ok, json: backend.lookup(host: host, keySHA256: query["key_sha256"]))
    case (.GET, "/admin/certificates"):
      let host = AdminQuery(head.uri)["host"].flatMap { $0.isEmpty ? nil : $0 }
      guard let list = backend.certificates(host: host) else {
        respond(context, status: .notFound, json: AdminJSON.error("acme_disabled", "tls.acme.directory_url is not set: the gateway orders no certificates"))
        return
      }
      if host != nil, let one = list.first {
        respond(context, status: .ok, json: AdminJSON.certificate(one))
      } else if host != nil {
        respond(context, status: .badRequest, json: AdminJSON.error("invalid_host", "host is not a valid host name"))
      } else {
        respond(context, status: .ok, json: AdminJSON.certificates(list))
      }
    case (.GET, "/admin/upstreams"):
      backend.upstreams().hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
        self.respond(context, status: .ok, json: (try? result.get()) ?? "{}")
      }
    case (.GET, "/metrics"):
      let status = backend.snapshotStatus
      backend.counters().hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
        let counters = (try? result.get()) ?? CounterSnapshot()
        self.respond(
          context, status: .ok, contentType: "text/plain; version=0.0.4",
          body: PrometheusText.render(counters, snapshot: status, endpoints: self.backend.endpointHealth))
      }
    default:
      respond(context, status: .notFound, json: "{\"error\":{\"code\":\"not_found\",\"message\":\"no such admin endpoint\"}}")
    }
  }

  private func respond(_ context: ChannelHandlerContext, status: HTTPResponseStatus, json: String) {
    respond(context, status: status, contentType: "application/json", body: json)
  }

  private func respond(
    _ context: ChannelHandlerContext, status: HTTPResponseStatus, contentType: String?, body: String,
    extraHeaders: [(String, String)] = []
  ) {
    let buffer = context.channel.allocator.buffer(string: body)
    var headers = HTTPHeaders()
    if let contentType { headers.add(name: "Content-Type", value: contentType) }
    if status != .noContent { headers.add(name: "Content-Length", value: String(buffer.readableBytes)) }
    headers.add(name: "Cache-Control", value: cacheControl ?? "no-store")
    for (n, v) in extraHeaders { headers.add(name: n, value: v) }
    if !keepAlive { headers.add(name: "Connection", value: "close") }
    context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
    if !headOnly && buffer.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil) }
    cacheControl = nil
    let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
    if !keepAlive { done.assumeIsolated().whenComplete { _ in context.close(promise: nil) } }
  }
}

/// Query parameters of an admin URI (percent-decoded).
struct AdminQuery {
  var values: [String: String] = [:]
  init(_ uri: String) {
    guard let q = uri.split(separator: "?", maxSplits: 1).dropFirst().first else { return }
    for pair in q.split(separator: "&") {
      let kv = pair.split(separator: "=", maxSplits: 1)
      guard let k = kv.first else { continue }
      let v = kv.count > 1 ? String(kv[1]) : ""
      values[String(k)] = v.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? v
    }
  }
  subscript(_ key: String) -> String? { values[key] }
}

/// JSON documents of the admin API.
public enum AdminJSON {
  public static func snapshot(_ s: SnapshotStatus) -> String {
    var out = "{\"version\":"
    JSONText.appendQuoted(s.version, to: &out)
    out += ",\"shops\":\(s.shops),\"customDomains\":\(s.customDomains),\"keys\":\(s.keys)"
    out += ",\"loadedAt\":"
    JSONText.appendQuoted(iso8601(s.loadedAt), to: &out)
    out += ",\"source\":"
    JSONText.appendQuoted(s.source, to: &out)
    out += ",\"reloadsAccepted\":\(s.accepted),\"reloadsRejected\":\(s.rejected),\"lastError\":"
    if let e = s.lastError { out += stringArray(e) } else { out += "null" }
    out += ",\"changes\":{\"source\":"
    if let c = s.changeSource { JSONText.appendQuoted(c, to: &out) } else { out += "null" }
    out += ",\"applied\":\(s.changeSetsApplied),\"refused\":\(s.changeSetsRefused),\"lastAppliedAt\":"
    if let t = s.lastChangeAt { JSONText.appendQuoted(iso8601(t), to: &out) } else { out += "null" }
    out += ",\"lastError\":"
    if let e = s.lastChangeError { out += stringArray(e) } else { out += "null" }
    out += ",\"overlayShops\":\(s.overlayShops),\"overlayHidden\":\(s.overlayHidden),\"folds\":\(s.folds)"
    out += ",\"compactions\":\(s.compactions),\"journalBytes\":\(s.journalBytes)"
    out += ",\"sourceState\":"
    if let st = s.sourceState { JSONText.appendQuoted(st, to: &out) } else { out += "null" }
    out += ",\"lastSeq\":" + (s.lastSeq.map { "\($0)" } ?? "null")
    out += ",\"resyncs\":\(s.resyncs),\"lagSeconds\":" + (s.lastChangeLagSeconds.map { String(format: "%.4f", $0) } ?? "null")
    out += ",\"refusedEntities\":\(stringArray(s.refusedEntities))}"
    out += "}"
    return out
  }

  /// `{"domain":…,"state":…,"issuer":…,"notAfter":…,"lastError":…,"nextAttemptAt":…}`, times in ISO 8601.
  public static func certificate(_ c: CertificateStatus) -> String {
    var out = "{\"domain\":"
    JSONText.appendQuoted(c.domain, to: &out)
    out += ",\"state\":"
    JSONText.appendQuoted(c.state, to: &out)
    func field(_ name: String, _ value: String?) {
      out += ",\"\(name)\":"
      if let value { JSONText.appendQuoted(value, to: &out) } else { out += "null" }
    }
    field("issuer", c.issuer)
    field("notAfter", c.notAfter.map(iso8601))
    field("lastError", c.lastError)
    field("nextAttemptAt", c.nextAttemptAt.map(iso8601))
    return out + "}"
  }

  /// `{"certificates":[…],"byState":{…}}`.
  public static func certificates(_ list: [CertificateStatus]) -> String {
    var out = "{\"certificates\":["
    out.reserveCapacity(list.count * 160)
    var byState: [String: Int] = ["pending": 0, "valid": 0, "renewing": 0, "failed": 0, "not_eligible": 0]
    for (i, c) in list.enumerated() {
      if i > 0 { out += "," }
      out += certificate(c)
      byState[c.state, default: 0] += 1
    }
    out += "],\"byState\":{"
    out += byState.sorted(by: { $0.key < $1.key }).map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",")
    return out + "}}"
  }

  /// `{"error":{"code":…,"message":…}}`, the shape of every admin error.
  public static func error(_ code: String, _ message: String) -> String {
    var out = "{\"error\":{\"code\":"
    JSONText.appendQuoted(code, to: &out)
    out += ",\"message\":"
    JSONText.appendQuoted(message, to: &out)
    return out + "}}"
  }

  /// `POST /admin/changes` accepted.
  public static func changeApplied(_ version: String, shops: Int, customDomains: Int, keys: Int) -> String {
    var out = "{\"applied\":true,\"version\":"
    JSONText.appendQuoted(version, to: &out)
    return out + ",\"shops\":\(shops),\"customDomains\":\(customDomains),\"keys\":\(keys)}"
  }

  /// `POST /admin/changes` refused: the code, every reason, and (for `stale_base`) the current version.
  public static func changeRefused(_ code: String, _ errors: [String], version: String? = nil) -> String {
    var out = "{\"applied\":false,\"error\":{\"code\":"
    JSONText.appendQuoted(code, to: &out)
    out += ",\"message\":"
    JSONText.appendQuoted(errors.first ?? code, to: &out)
    out += "},\"errors\":\(stringArray(errors))"
    if let version {
      out += ",\"version\":"
      JSONText.appendQuoted(version, to: &out)
    }
    return out + "}"
  }

  public static func reload(_ r: ReloadOutcome) -> String {
    var out = "{\"accepted\":\(r.accepted),\"version\":"
    JSONText.appendQuoted(r.version, to: &out)
    out += ",\"shops\":\(r.shops),\"customDomains\":\(r.customDomains),\"keys\":\(r.keys),\"errors\":\(stringArray(r.errors))}"
    return out
  }

  static func stringArray(_ items: [String]) -> String {
    var out = "["
    for (i, e) in items.enumerated() {
      if i > 0 { out += "," }
      JSONText.appendQuoted(e, to: &out)
    }
    return out + "]"
  }

  /// `2026-12-04T10:43:28Z`. By hand from `gmtime_r`: an `ISO8601DateFormatter` per call costs more
  /// than the rest of a 50 000-domain `/admin/certificates` together.
  static func iso8601(_ t: Double) -> String {
    var seconds = time_t(t.rounded(.down))
    var tm = tm()
    gmtime_r(&seconds, &tm)
    func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
    return "\(tm.tm_year + 1900)-\(two(tm.tm_mon + 1))-\(two(tm.tm_mday))T\(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec))Z"
  }
}

/// Prometheus text exposition (version 0.0.4) of the counters.
public enum PrometheusText {
  public static func render(
    _ c: CounterSnapshot, snapshot s: SnapshotStatus,
    endpoints: [(cluster: String, endpoint: String, healthy: Bool, ejections: Int)] = [], process: ProcessStats? = nil
  ) -> String {
    var out = ""
    out += "# HELP tenant_gateway_build_info The running build (value 1).\n"
    out += "# TYPE tenant_gateway_build_info gauge\n"
    out += "tenant_gateway_build_info{version=\"\(BuildInfo.version)\",swift=\"\(BuildInfo.swiftVersion)\"} 1\n"
    let p = process ?? ProcessStats.read()
    out += "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
    out += "# TYPE process_resident_memory_bytes gauge\n"
    out += "process_resident_memory_bytes \(p.residentMemoryBytes)\n"
    out += "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
    out += "# TYPE process_virtual_memory_bytes gauge\n"
    out += "process_virtual_memory_bytes \(p.virtualMemoryBytes)\n"
    out += "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
    out += "# TYPE process_cpu_seconds_total counter\n"
    out += "process_cpu_seconds_total \(p.cpuSeconds)\n"
    out += "# HELP process_open_fds Number of open file descriptors.\n"
    out += "# TYPE process_open_fds gauge\n"
    out += "process_open_fds \(p.openFDs)\n"
    out += "# HELP process_max_fds Maximum number of open file descriptors.\n"
    out += "# TYPE process_max_fds gauge\n"
    out += "process_max_fds \(p.maxFDs)\n"
    out += "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
    out += "# TYPE process_start_time_seconds gauge\n"
    out += "process_start_time_seconds \(p.startTimeSeconds)\n"
    out += "# HELP tenant_gateway_requests_total Responses sent to clients, by status class.\n"
    out += "# TYPE tenant_gateway_requests_total counter\n"
    for i in 1...5 { out += "tenant_gateway_requests_total{code_class=\"\(i)xx\"} \(c.responsesByClass[i])\n" }
    out += "# HELP tenant_gateway_refusals_total Requests the gateway answered itself, by refusal code.\n"
    out += "# TYPE tenant_gateway_refusals_total counter\n"
    for r in GatewayRefusal.all {
      out += "tenant_gateway_refusals_total{code=\"\(r.code)\"} \(c.refusals[r.code] ?? 0)\n"
    }
    let clusters = c.clusters.sorted(by: { $0.key < $1.key })
    out += "# HELP tenant_gateway_upstream_errors_total Upstream faults, by cluster and kind.\n"
    out += "# TYPE tenant_gateway_upstream_errors_total counter\n"
    for (name, cluster) in clusters {
      for (k, v) in cluster.errors.sorted(by: { $0.key < $1.key }) {
        out += "tenant_gateway_upstream_errors_total{cluster=\"\(escape(name))\",kind=\"\(escape(k))\"} \(v)\n"
      }
    }
    out += "# HELP tenant_gateway_upstream_responses_total Upstream response heads, by cluster and status class.\n"
    out += "# TYPE tenant_gateway_upstream_responses_total counter\n"
    for (name, cluster) in clusters {
      for i in 1...5 {
        out += "tenant_gateway_upstream_responses_total{cluster=\"\(escape(name))\",code_class=\"\(i)xx\"} \(cluster.responsesByClass[i])\n"
      }
    }
    out += "# HELP tenant_gateway_upstream_connections Upstream pool connections, by cluster and state.\n"
    out += "# TYPE tenant_gateway_upstream_connections gauge\n"
    for (name, cluster) in clusters {
      out += "tenant_gateway_upstream_connections{cluster=\"\(escape(name))\",state=\"open\"} \(cluster.openConnections)\n"
      out += "tenant_gateway_upstream_connections{cluster=\"\(escape(name))\",state=\"idle\"} \(cluster.idleConnections)\n"
    }
    out += "# HELP tenant_gateway_upstream_pending_requests Requests waiting for an upstream connection, by cluster.\n"
    out += "# TYPE tenant_gateway_upstream_pending_requests gauge\n"
    for (name, cluster) in clusters {
      out += "tenant_gateway_upstream_pending_requests{cluster=\"\(escape(name))\"} \(cluster.pendingRequests)\n"
    }
    out += "# HELP tenant_gateway_connections_accepted_total Client connections accepted on the TLS listener.\n"
    out += "# TYPE tenant_gateway_connections_accepted_total counter\n"
    out += "tenant_gateway_connections_accepted_total \(c.connectionsAccepted)\n"
    out += "# HELP tenant_gateway_proxy_protocol_refused_total Connections closed for the PROXY protocol, by reason.\n"
    out += "# TYPE tenant_gateway_proxy_protocol_refused_total counter\n"
    for reason in ["malformed", "untrusted"] {
      out += "tenant_gateway_proxy_protocol_refused_total{reason=\"\(reason)\"} \(c.proxyProtocolRefused[reason] ?? 0)\n"
    }
    out += "# HELP tenant_gateway_request_body_bytes_total Request body bytes received from clients.\n"
    out += "# TYPE tenant_gateway_request_body_bytes_total counter\n"
    out += "tenant_gateway_request_body_bytes_total \(c.requestBodyBytes)\n"
    out += "# HELP tenant_gateway_response_body_bytes_total Response body bytes sent to clients (upstream bodies).\n"
    out += "# TYPE tenant_gateway_response_body_bytes_total counter\n"
    out += "tenant_gateway_response_body_bytes_total \(c.responseBodyBytes)\n"
    out += "# HELP tenant_gateway_open_connections Open client connections, by protocol.\n"
    out += "# TYPE tenant_gateway_open_connections gauge\n"
    out += "tenant_gateway_open_connections{protocol=\"http1\"} \(c.openHTTP1Connections)\n"
    out += "tenant_gateway_open_connections{protocol=\"http2\"} \(c.openHTTP2Connections)\n"
    out += "# HELP tenant_gateway_tls_handshakes_total Completed TLS handshakes.\n"
    out += "# TYPE tenant_gateway_tls_handshakes_total counter\n"
    out += "tenant_gateway_tls_handshakes_total{version=\"TLSv1.2\"} \(c.tlsHandshakesByVersion[0])\n"
    out += "tenant_gateway_tls_handshakes_total{version=\"TLSv1.3\"} \(c.tlsHandshakesByVersion[1])\n"
    out += "# HELP tenant_gateway_tls_handshake_failures_total Failed TLS handshakes, by reason.\n"
    out += "# TYPE tenant_gateway_tls_handshake_failures_total counter\n"
    for reason in ["alpn", "certificate", "closed", "no_shared_cipher", "other", "plain_http", "protocol_version"] {
      out += "tenant_gateway_tls_handshake_failures_total{reason=\"\(reason)\"} \(c.tlsFailuresByReason[reason] ?? 0)\n"
    }
    if let expiry = c.soonestCertificateExpiry {
      out += "# HELP tenant_gateway_certificate_expiry_timestamp_seconds The soonest notAfter of the configured certificates.\n"
      out += "# TYPE tenant_gateway_certificate_expiry_timestamp_seconds gauge\n"
      out += "tenant_gateway_certificate_expiry_timestamp_seconds \(Int(expiry))\n"
    }
    out += "# HELP tenant_gateway_connections_refused_total Connections closed at max_connections.\n"
    out += "# TYPE tenant_gateway_connections_refused_total counter\n"
    out += "tenant_gateway_connections_refused_total \(c.connectionsRefusedAtLimit)\n"
    histogram("tenant_gateway_request_duration_seconds", "From the request head to the end of the response.", c.requestDuration, &out)
    out += "# HELP tenant_gateway_upstream_response_seconds From the request head to the upstream's response head, by cluster.\n"
    out += "# TYPE tenant_gateway_upstream_response_seconds histogram\n"
    for (name, cluster) in clusters {
      histogramSeries("tenant_gateway_upstream_response_seconds", labels: "cluster=\"\(escape(name))\"", cluster.latency, &out)
    }
    out += "# HELP tenant_gateway_shop_requests_top Requests of the busiest shops (bounded top-K, upper bounds per event loop).\n"
    out += "# TYPE tenant_gateway_shop_requests_top gauge\n"
    for (shop, n) in c.topShops.sorted(by: { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }).prefix(10) {
      out += "tenant_gateway_shop_requests_top{shop_id=\"\(escape(shop))\"} \(n)\n"
    }
    if let certs = c.customCertificates {
      out += "# HELP tenant_gateway_custom_certificates Custom-domain certificates: domains with files, TLS contexts cached.\n"
      out += "# TYPE tenant_gateway_custom_certificates gauge\n"
      out += "tenant_gateway_custom_certificates{state=\"available\"} \(certs.domains)\n"
      out += "tenant_gateway_custom_certificates{state=\"cached\"} \(certs.cached)\n"
      out += "# HELP tenant_gateway_custom_certificate_lookups_total Handshakes for custom domains, by outcome.\n"
      out += "# TYPE tenant_gateway_custom_certificate_lookups_total counter\n"
      out += "tenant_gateway_custom_certificate_lookups_total{result=\"cached\"} \(certs.hits)\n"
      out += "tenant_gateway_custom_certificate_lookups_total{result=\"loaded\"} \(certs.loads)\n"
      out += "tenant_gateway_custom_certificate_lookups_total{result=\"failed\"} \(certs.failures)\n"
    }
    if let acme = c.acme {
      out += "# HELP tenant_gateway_acme_certificates Custom domains known to ACME, by state (PRODUCT.md §10).\n"
      out += "# TYPE tenant_gateway_acme_certificates gauge\n"
      for (state, n) in acme.byState.sorted(by: { $0.key < $1.key }) {
        out += "tenant_gateway_acme_certificates{state=\"\(state)\"} \(n)\n"
      }
      out += "# HELP tenant_gateway_acme_orders_total ACME orders by result.\n"
      out += "# TYPE tenant_gateway_acme_orders_total counter\n"
      for (result, n) in acme.orders.sorted(by: { $0.key < $1.key }) {
        out += "tenant_gateway_acme_orders_total{result=\"\(result)\"} \(n)\n"
      }
      out += "# HELP tenant_gateway_acme_orders_running ACME orders in progress.\n"
      out += "# TYPE tenant_gateway_acme_orders_running gauge\n"
      out += "tenant_gateway_acme_orders_running \(acme.running)\n"
      if let soonest = acme.soonestNotAfter {
        out += "# HELP tenant_gateway_acme_certificate_expiry_seconds The soonest notAfter of a served ACME certificate (Unix time).\n"
        out += "# TYPE tenant_gateway_acme_certificate_expiry_seconds gauge\n"
        out += "tenant_gateway_acme_certificate_expiry_seconds \(Int(soonest))\n"
      }
      out += "# HELP tenant_gateway_acme_storage_reads_total Files read from storage_dir for handshakes and challenges (a name the table does not map never causes one).\n"
      out += "# TYPE tenant_gateway_acme_storage_reads_total counter\n"
      out += "tenant_gateway_acme_storage_reads_total \(acme.storageReads)\n"
      out += "# HELP tenant_gateway_acme_challenge_handshakes_total tls-alpn-01 handshakes: answered with a challenge certificate, or closed (no challenge pending).\n"
      out += "# TYPE tenant_gateway_acme_challenge_handshakes_total counter\n"
      out += "tenant_gateway_acme_challenge_handshakes_total{result=\"answered\"} \(c.acmeChallengeHandshakes)\n"
      out += "tenant_gateway_acme_challenge_handshakes_total{result=\"refused\"} \(c.acmeChallengeRefused)\n"
    }
    if !c.plainHTTP.isEmpty {
      out += "# HELP tenant_gateway_plain_http_responses_total Answers of the plain-HTTP listener, by kind.\n"
      out += "# TYPE tenant_gateway_plain_http_responses_total counter\n"
      for (kind, n) in c.plainHTTP.sorted(by: { $0.key < $1.key }) {
        out += "tenant_gateway_plain_http_responses_total{kind=\"\(kind)\"} \(n)\n"
      }
    }
    if let log = c.accessLog {
      out += "# HELP tenant_gateway_access_log_lines_total Access-log lines queued for writing.\n"
      out += "# TYPE tenant_gateway_access_log_lines_total counter\n"
      out += "tenant_gateway_access_log_lines_total \(log.written)\n"
      out += "# HELP tenant_gateway_access_log_dropped_total Access-log lines dropped because the writer fell behind.\n"
      out += "# TYPE tenant_gateway_access_log_dropped_total counter\n"
      out += "tenant_gateway_access_log_dropped_total \(log.dropped)\n"
      out += "# HELP tenant_gateway_access_log_reopens_total Access-log reopens (SIGUSR1).\n"
      out += "# TYPE tenant_gateway_access_log_reopens_total counter\n"
      out += "tenant_gateway_access_log_reopens_total \(c.accessLogReopens)\n"
    }
    out += "# HELP tenant_gateway_snapshot_info The serving snapshot's version.\n"
    out += "# TYPE tenant_gateway_snapshot_info gauge\n"
    out += "tenant_gateway_snapshot_info{version=\"\(escape(s.version))\"} 1\n"
    out += "# HELP tenant_gateway_snapshot_entries Entries in the serving snapshot.\n"
    out += "# TYPE tenant_gateway_snapshot_entries gauge\n"
    out += "tenant_gateway_snapshot_entries{kind=\"shops\"} \(s.shops)\n"
    out += "tenant_gateway_snapshot_entries{kind=\"custom_domains\"} \(s.customDomains)\n"
    out += "tenant_gateway_snapshot_entries{kind=\"keys\"} \(s.keys)\n"
    out += "# HELP tenant_gateway_snapshot_loaded_timestamp_seconds When the serving snapshot was loaded.\n"
    out += "# TYPE tenant_gateway_snapshot_loaded_timestamp_seconds gauge\n"
    out += "tenant_gateway_snapshot_loaded_timestamp_seconds \(Int(s.loadedAt))\n"
    out += "# HELP tenant_gateway_snapshot_reloads_total Snapshot loads, by result.\n"
    out += "# TYPE tenant_gateway_snapshot_reloads_total counter\n"
    out += "tenant_gateway_snapshot_reloads_total{result=\"accepted\"} \(s.accepted)\n"
    out += "tenant_gateway_snapshot_reloads_total{result=\"rejected\"} \(s.rejected)\n"
    out += "# HELP tenant_gateway_change_sets_total Change sets (PRODUCT.md §6), by result.\n"
    out += "# TYPE tenant_gateway_change_sets_total counter\n"
    out += "tenant_gateway_change_sets_total{result=\"applied\"} \(s.changeSetsApplied)\n"
    out += "tenant_gateway_change_sets_total{result=\"refused\"} \(s.changeSetsRefused)\n"
    out += "# HELP tenant_gateway_change_last_applied_timestamp_seconds When the last change set was applied.\n"
    out += "# TYPE tenant_gateway_change_last_applied_timestamp_seconds gauge\n"
    out += "tenant_gateway_change_last_applied_timestamp_seconds \(s.lastChangeAt ?? 0)\n"
    out += "# HELP tenant_gateway_overlay_entries Shops held by the overlay over the base table, and base shops it hides.\n"
    out += "# TYPE tenant_gateway_overlay_entries gauge\n"
    out += "tenant_gateway_overlay_entries{kind=\"shops\"} \(s.overlayShops)\n"
    out += "tenant_gateway_overlay_entries{kind=\"hidden\"} \(s.overlayHidden)\n"
    out += "# HELP tenant_gateway_overlay_folds_total Overlays folded into a new base table.\n"
    out += "# TYPE tenant_gateway_overlay_folds_total counter\n"
    out += "tenant_gateway_overlay_folds_total \(s.folds)\n"
    out += "# HELP tenant_gateway_journal_compactions_total Journal compactions by the gateway.\n"
    out += "# TYPE tenant_gateway_journal_compactions_total counter\n"
    out += "tenant_gateway_journal_compactions_total \(s.compactions)\n"
    out += "# HELP tenant_gateway_source_connected 1 when the database source is connected (0 while reconnecting).\n"
    out += "# TYPE tenant_gateway_source_connected gauge\n"
    out += "tenant_gateway_source_connected \(s.sourceState == nil || s.sourceState == "connected" ? 1 : 0)\n"
    out += "# HELP tenant_gateway_source_last_seq The last outbox seq read from the database source.\n"
    out += "# TYPE tenant_gateway_source_last_seq gauge\n"
    out += "tenant_gateway_source_last_seq \(s.lastSeq ?? 0)\n"
    out += "# HELP tenant_gateway_source_resyncs_total Whole re-reads of the database source.\n"
    out += "# TYPE tenant_gateway_source_resyncs_total counter\n"
    out += "tenant_gateway_source_resyncs_total \(s.resyncs)\n"
    out += "# HELP tenant_gateway_source_refused_entities Database rows refused (each keeps its previous record).\n"
    out += "# TYPE tenant_gateway_source_refused_entities gauge\n"
    out += "tenant_gateway_source_refused_entities \(s.refusedEntities.count)\n"
    out += "# HELP tenant_gateway_change_lag_seconds Commit (outbox insert) to served, for the last change set.\n"
    out += "# TYPE tenant_gateway_change_lag_seconds gauge\n"
    out += "tenant_gateway_change_lag_seconds \(s.lastChangeLagSeconds ?? 0)\n"
    out += "# HELP tenant_gateway_journal_bytes Size of the change journal.\n"
    out += "# TYPE tenant_gateway_journal_bytes gauge\n"
    out += "tenant_gateway_journal_bytes \(s.journalBytes)\n"
    out += "# HELP tenant_gateway_upstream_endpoint_healthy 1 when the endpoint takes requests.\n"
    out += "# TYPE tenant_gateway_upstream_endpoint_healthy gauge\n"
    for e in endpoints {
      out += "tenant_gateway_upstream_endpoint_healthy{cluster=\"\(escape(e.cluster))\",endpoint=\"\(escape(e.endpoint))\"} \(e.healthy ? 1 : 0)\n"
    }
    out += "# HELP tenant_gateway_upstream_endpoint_ejections_total Times the endpoint was taken out.\n"
    out += "# TYPE tenant_gateway_upstream_endpoint_ejections_total counter\n"
    for e in endpoints {
      out += "tenant_gateway_upstream_endpoint_ejections_total{cluster=\"\(escape(e.cluster))\",endpoint=\"\(escape(e.endpoint))\"} \(e.ejections)\n"
    }
    return out
  }

  static func histogram(_ name: String, _ help: String, _ h: LatencyHistogram, _ out: inout String) {
    out += "# HELP \(name) \(help)\n"
    out += "# TYPE \(name) histogram\n"
    histogramSeries(name, labels: "", h, &out)
  }

  /// One histogram's buckets, sum and count; `labels` (`cluster="x"`) go before `le`.
  static func histogramSeries(_ name: String, labels: String, _ h: LatencyHistogram, _ out: inout String) {
    let prefix = labels.isEmpty ? "" : labels + ","
    let only = labels.isEmpty ? "" : "{\(labels)}"
    var cumulative = 0
    for (i, bound) in LatencyHistogram.bounds.enumerated() {
      cumulative += h.counts[i]
      out += "\(name)_bucket{\(prefix)le=\"\(bound)\"} \(cumulative)\n"
    }
    cumulative += h.counts[LatencyHistogram.bounds.count]
    out += "\(name)_bucket{\(prefix)le=\"+Inf\"} \(cumulative)\n"
    out += "\(name)_sum\(only) \(Double(h.sumNanos) / 1e9)\n"
    out += "\(name)_count\(only) \(cumulative)\n"
  }

  static func escape(_ s: String) -> String {
    s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
  }
}
