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
