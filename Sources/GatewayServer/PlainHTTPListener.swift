import Atomics
import Foundation
import GatewayACME
import GatewayConfig
import GatewayCore
import GatewayObservability
import GatewaySnapshot
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// `listen.http_address` (PRODUCT.md §10): plain HTTP, for ACME http-01 and a `308` to https.
/// Nothing on it is ever forwarded upstream. One request per connection (`Connection: close`):
/// there is nothing here worth keeping a connection open for, and it keeps the limits simple —
/// the head must arrive within `client_header_timeout_s`, within the header limits, and at most
/// `max_connections` are open, as on the TLS listener.
final class PlainHTTPListener: @unchecked Sendable {  // counters behind `lock`
  let address: SocketAddressSpec
  let settings: ServerSettings
  let platform: PlatformHosts
  let store: SnapshotStore
  /// http-01 answers (nil: ACME off, so every challenge path is an ordinary request here).
  let acme: ACMECertificates?
  let httpsPort: Int
  let logger: Logger
  private var channel: Channel?
  private let open = ManagedAtomic<Int>(0)
  private let lock = NIOLock()
  private var answers: [String: Int] = [:]

  init(
    address: SocketAddressSpec, settings: ServerSettings, platform: PlatformHosts, store: SnapshotStore, acme: ACMECertificates?,
    httpsPort: Int, logger: Logger
  ) {
    self.address = address
    self.settings = settings
    self.platform = platform
    self.store = store
    self.acme = acme
    self.httpsPort = httpsPort
    self.logger = logger
  }

  /// Answers by kind, for `/metrics`.
  func counts() -> [String: Int] { lock.withLock { answers } }

  func note(_ kind: String) { lock.withLock { answers[kind, default: 0] += 1 } }

  func start(group: EventLoopGroup, contexts: [ObjectIdentifier: LoopContext]) throws {
    let bootstrap = ServerBootstrap(group: group)
      .serverChannelOption(.backlog, value: 1024)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .serverChannelOption(ChannelOptions.socket(SocketOptionLevel(SOL_SOCKET), SO_REUSEPORT), value: 1)
      .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
      .childChannelInitializer { [self] channel in
        let count = open.loadThenWrappingIncrement(ordering: .relaxed)
        let counter = open
        channel.closeFuture.whenComplete { _ in counter.wrappingDecrement(ordering: .relaxed) }
        guard count < settings.maxConnections, let loop = contexts[ObjectIdentifier(channel.eventLoop)] else {
          note("refused_at_limit")
          return channel.close()
        }
        return channel.eventLoop.makeCompletedFuture {
          var limits = NIOHTTPDecoderLimitConfiguration()
          limits.maxHeaderFieldSize = settings.limits.maxHeaderBytes + settings.limits.maxURIBytes
          limits.maxHeaderListSize = settings.limits.maxHeaderBytes + settings.limits.maxURIBytes
          limits.maxHeaderFieldCount = settings.limits.maxHeaderCount + 1
          let sync = channel.pipeline.syncOperations
          try sync.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes, limitConfiguration: limits)))
          try sync.addHandler(PlainHTTPHandler(listener: self, loop: loop, client: channel.remoteAddress?.ipAddress ?? "unknown"))
        }
      }
    do {
      channel = try bootstrap.bind(host: address.host, port: address.port).wait()
    } catch {
      throw ConfigError(path: "listen.http_address", reason: "cannot listen on \(address): \(BindFailure.describe(error))")
    }
    logger.info("plain HTTP listening (ACME http-01, redirect to https)", metadata: ["address": "\(address)"])
  }

  var boundPort: Int? { channel?.localAddress?.port }

  func stop() {
    try? channel?.close().wait()
  }
}

/// One plain-HTTP connection: one request head, one answer, close.
final class PlainHTTPHandler: ChannelInboundHandler {
  typealias InboundIn = HTTPServerRequestPart
  let listener: PlainHTTPListener
  let loop: LoopContext
  let client: String
  private var answered = false
  private var timeout: Scheduled<Void>?

  init(listener: PlainHTTPListener, loop: LoopContext, client: String) {
    self.listener = listener
    self.loop = loop
    self.client = client
  }

  func handlerAdded(context: ChannelHandlerContext) {
    // The whole head within client_header_timeout_s, as on the TLS listener (a slowloris here too).
    timeout = context.eventLoop.assumeIsolated().scheduleTask(in: listener.settings.clientHeaderTimeout) { [self] in
      guard !answered else { return }
      answered = true
      listener.note("timeout")
      context.close(promise: nil)
    }
  }

  func handlerRemoved(context: ChannelHandlerContext) { timeout?.cancel() }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    guard case .head(let head) = unwrapInboundIn(data), !answered else { return }
    answered = true
    timeout?.cancel()
    let started = NIODeadline.now()
    // One table for the whole answer, its log line included.
    let table = store.current
    let answer: PlainHTTPAnswer
    if head.uri.utf8.count > listener.settings.limits.maxURIBytes {
      answer = .refuse(.uriTooLong)
    } else {
      answer = PlainHTTPRouting.answer(
        target: head.uri, hostHeader: head.headers.first(name: "host"), platform: listener.platform, table: table,
        httpsPort: listener.httpsPort, challenge: { [listener] token in listener.acme?.responder.http01KeyAuthorization(token: token) })
    }
    // A token this gateway did not place may be another fleet member's: for a host the table maps,
    // look in the shared storage (off the loop), then answer. Everything else answers at once.
    if case .challenge = answer {
    } else if let acme = listener.acme, head.uri.hasPrefix(PlainHTTPRouting.challengePrefix), head.uri.utf8.count <= listener.settings.limits.maxURIBytes {
      let token = String(head.uri.dropFirst(PlainHTTPRouting.challengePrefix.count))
      let host = head.headers.first(name: "host").flatMap(HostName.normalize)
      acme.http01Answer(token: token, host: host, on: context.eventLoop).assumeIsolated().whenComplete { [self] result in
        if case .success(let body?) = result {
          respond(context: context, head: head, answer: .challenge(keyAuthorization: body), started: started)
        } else {
          respond(context: context, head: head, answer: answer, started: started)
        }
      }
      return
    }
    respond(context: context, head: head, answer: answer, started: started)
  }

  private func respond(context: ChannelHandlerContext, head: HTTPRequestHead, answer: PlainHTTPAnswer, started: NIODeadline) {
    let requestID = loop.requestIDs.next()
    var headers = HTTPHeaders([("X-Request-Id", requestID), ("Connection", "close")])
    let status: HTTPResponseStatus
    var body: String
    var code: String? = nil
    switch answer {
    case .challenge(let keyAuthorization):
      status = .ok
      headers.add(name: "Content-Type", value: "application/octet-stream")
      body = keyAuthorization
      listener.note("challenge")
    case .redirect(let location):
      status = .permanentRedirect
      headers.add(name: "Location", value: location)
      body = ""
      listener.note("redirect")
    case .refuse(let refusal):
      status = HTTPResponseStatus(statusCode: refusal.status)
      headers.add(name: "Content-Type", value: "application/json")
      body = refusal.jsonBody(requestID: requestID)
      code = refusal.code
      listener.note(refusal.code)
      loop.counters.recordRefusal(refusal)
    }
    headers.add(name: "Content-Length", value: String(body.utf8.count))
    if head.method == .HEAD { body = "" }
    var out = context.channel.allocator.buffer(capacity: 256 + body.utf8.count)
    out.writeString("HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\n")
    for (name, value) in headers { out.writeString("\(name): \(value)\r\n") }
    out.writeString("\r\n")
    out.writeString(body)
    let bytes = out.readableBytes
    context.writeAndFlush(NIOAny(out)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    loop.counters.recordResponse(status: Int(status.code))

    if loop.accessLog != nil {
      var e = AccessLogEntry()
      e.requestID = requestID
      e.client = client
      e.proto = "http"
      e.host = head.headers.first(name: "host") ?? ""
      e.method = head.method.rawValue
      // Never the token: it is the secret half of the challenge answer.
      e.path = head.uri.hasPrefix(PlainHTTPRouting.challengePrefix) ? PlainHTTPRouting.challengePrefix + "…" : String(head.uri.prefix { $0 != "?" })
      e.status = Int(status.code)
      e.code = code
      e.userAgent = head.headers.first(name: "user-agent")
      e.bytesOut = bytes
      loop.finishLog(&e, durationNanos: (NIODeadline.now() - started).nanoseconds)
    }
  }

  func errorCaught(context: ChannelHandlerContext, error: Error) {
    // A malformed request or a head past the limits: 400 / 431, as the TLS listener answers.
    guard !answered else {
      context.close(promise: nil)
      return
    }
    answered = true
    let refusal: GatewayRefusal
    if let e = error as? HTTPParserError, e == .headerOverflow {
      refusal = .headersTooLarge
    } else {
      refusal = .invalidRequest
    }
    listener.note(refusal.code)
    let requestID = loop.requestIDs.next()
    let body = refusal.jsonBody(requestID: requestID)
    var out = context.channel.allocator.buffer(capacity: 256)
    out.writeString("HTTP/1.1 \(refusal.status) \(HTTPResponseStatus(statusCode: refusal.status).reasonPhrase)\r\nContent-Type: application/json\r\nX-Request-Id: \(requestID)\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)")
    context.writeAndFlush(NIOAny(out)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
  }

  private var store: SnapshotStore { listener.store }
}
