import GatewayCore
import GatewayObservability
import GatewayUpstream
import NIOCore
import NIOHTTP1

/// Serves HTTP/1.1 on one client connection: validates each request, admits or refuses it, and
/// runs its ``Exchange``. One request at a time: parts of a pipelined request that arrive while a
/// response is still going out are queued here (and reading stops) until it is done. This replaces
/// NIO's `HTTPServerPipelineHandler`, whose extra hop per message cost ~20 % of h1 throughput.
///
/// Reads are gated (the `read` outbound event is held) while the upstream cannot take more request
/// body, so an upload is never buffered whole. Timeouts: `idle_timeout_s` between requests,
/// `client_header_timeout_s` from a request's first byte to its complete head.
final class HTTP1ServerHandler: ChannelDuplexHandler, RemovableChannelHandler, ClientSide, Expirable {
  typealias InboundIn = HTTPServerRequestPart
  /// Responses leave as bytes (``HTTP1ResponseWriter``): there is no response encoder handler.
  typealias OutboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer

  let loop: LoopContext
  let connection: ConnectionInfo
  var context: ChannelHandlerContext?
  /// The connection's lifecycle: every decision about parts, timers, keep-alive and reads.
  var machine = HTTP1ConnectionStateMachine<Exchange>()
  /// When the machine's running timer fires.
  var deadline: NIODeadline?
  var bodyLimit = 0
  var method = HTTPMethod.GET
  /// Set for a 429: its `Retry-After`, in seconds.
  var retryAfter: Int?
  /// Set when an upgrade was not taken: the decoder starts a fresh parser before its next bytes.
  var parserNeedsFreshStart = false
  /// True while ``ClientRequestDecoder`` is decoding (parts reach this handler synchronously).
  var decoding = false
  var version = HTTPVersion.http1_1
  /// What the sweeper, the request decoder and exchanges hold instead of `weak` references to this
  /// handler (see ``BackReference``).
  private(set) lazy var backReference = BackReference(self)
  private lazy var clientReference = ClientReference(self)
  var writer = HTTP1ResponseWriter()
  /// The current request, from its head to its access-log line (nil between requests).
  var request: RequestContext?
  /// When the connection reached HTTP (after TLS).
  var openedAt = NIODeadline.uptimeNanoseconds(0)
  /// How long a drain waits for the first request of a connection that has sent none yet.
  static let drainGraceForNewConnections = TimeAmount.seconds(2)
  /// The request line of bytes the parser refused before producing a head (for the access log).
  var unparsedRequestLine: (method: String, target: String)?

  /// The current request is over: its log phase, once.
  func endRequest(completed: Bool) {
    guard request != nil else { return }
    // In place: a copy of the context out of the optional would retain and release each of its
    // references once more per request.
    loop.log(&request!, completed: completed)
    request = nil
  }

  init(loop: LoopContext, connection: ConnectionInfo) {
    self.loop = loop
    self.connection = connection
  }

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
    openedAt = loop.sweeper.now
    loop.counters.openHTTP1Connections += 1
    loop.sweeper.register(backReference)
    arm(.idle)
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    deadline = nil
    self.context = nil
  }

  func channelInactive(context: ChannelHandlerContext) {
    loop.counters.openHTTP1Connections -= 1
    deadline = nil
    machine.answer?.cancel()
    endRequest(completed: false)
    machine.closed()
    context.fireChannelInactive()
  }

  // MARK: requests

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    let part = unwrapInboundIn(data)
    switch machine.partArrived(part) {
    case .drop, .queue: return
    case .process: process(part, context: context)
    }
  }

  func process(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
    switch part {
    case .head(let head):
      machine.headReceived(keepAlive: head.isKeepAlive && !loop.draining)
      deadline = nil
      receivedHead(head, context: context)
    case .body(let buffer):
      request?.bodyBytes += buffer.readableBytes
      arm(machine.bodyArrived())
      if let exchange = machine.answer {
        if (request?.bodyBytes ?? 0) > bodyLimit {
          bodyTooLarge(exchange, context: context)
        } else {
          exchange.requestBody(buffer)
        }
      }
    case .end:
      let exchange = machine.answer
      switch machine.requestEnded() {
      case .forward: exchange?.requestEnd()
      case .finishResponse: finishResponse(context: context)
      case .none: break
      }
    }
  }

  private func receivedHead(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
    version = head.version
    method = head.method
    bodyLimit = loop.limits.maxBodyBytes
    endRequest(completed: false)
    request = loop.beginRequest(
      proto: "h1", host: head.headers.first(name: "host"), method: head.method.rawValue, uri: head.uri, connection: connection,
      userAgent: head.headers.first(name: "user-agent"))
    let validated: ValidatedRequest
    switch RequestValidation.validateHTTP1(head, limits: loop.limits) {
    case .success(let v):
      validated = v
    case .failure(let f):
      refuse(f.refusal, closeConnection: f.closeConnection, context: context)
      return
    }
    if validated.websocket { machine.upgradeRequested() }
    request!.log?.host = validated.host
    let pairs = head.headers.lazy.map { ($0.name, $0.value) }
    switch loop.admit(validated, method: head.method, headers: pairs, context: &request!, connection: connection) {
    case .refuse(let refusal, let close):
      // A refused request with a body: the client is still sending it; close rather than read it all.
      refuse(refusal, closeConnection: close || validated.body != .none, context: context)
    case .preflight(let origin, let methods):
      writePreflight(origin: origin, methods: methods, context: context)
    case .rateLimited(let wait):
      retryAfter = wait
      refuse(.rateLimited, closeConnection: validated.body != .none, context: context)
    case .forward(let plan):
      if plan.expectContinue {
        var interim = writer.beginHead(version: head.version, status: .continue, allocator: context.channel.allocator, capacity: 32)
        let bytes = writer.finishHead(&interim, version: head.version, requestMethod: head.method, informational: true).bytes
        context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
      }
      let exchange = Exchange(
        requestID: request!.requestID, streamID: 0, client: clientReference, cluster: plan.cluster, request: plan.request, hasBody: plan.hasBody,
        allowOrigin: plan.allowOrigin, varyOrigin: plan.varyOrigin)
      arm(machine.forwarding(exchange, hasBody: plan.hasBody))
      exchange.start()
    }
  }

  private func bodyTooLarge(_ exchange: Exchange, context: ChannelHandlerContext) {
    exchange.cancel()
    if exchange.responseStarted {
      context.close(promise: nil)
    } else {
      refuse(.payloadTooLarge, closeConnection: true, context: context)
    }
  }

  // MARK: ClientSide

  func exchangeSendHead(_ exchange: Exchange, _ head: HTTPResponseHead) {
    guard let context else { return }
    if head.status == .switchingProtocols, machine.upgradePending {
      // Answer 101 now; the tunnel is joined once the upstream's 101 has been fully read.
      var switching = writer.beginHead(version: .http1_1, status: .switchingProtocols, allocator: context.channel.allocator)
      HTTP1Responses.forwarded(into: &switching, head.headers, requestID: exchange.requestID, allowOrigin: nil, varyOrigin: false, upgrade: true)
      if request != nil { loop.responded(&request!, status: 101) }
      let bytes = writer.finishHead(&switching, version: .http1_1, requestMethod: method, informational: true).bytes
      context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
      return
    }
    machine.responseHeadStarting()
    // Room for a small body behind the head: it then goes out in the same write (see writer.hold).
    var response = writer.beginHead(
      version: version, status: head.status, allocator: context.channel.allocator,
      capacity: 256 + head.headers.count * 48 + HTTP1Responses.bodyRoom(head.headers))
    HTTP1Responses.forwarded(
      into: &response, head.headers, requestID: exchange.requestID, allowOrigin: exchange.allowOrigin, varyOrigin: exchange.varyOrigin,
      upgrade: false)
    if request != nil { loop.forwardedHead(&request!, status: Int(head.status.code), exchange: exchange) }
    writer.hold(finishHead(&response))
  }

  func exchangeSendBody(_ exchange: Exchange, _ buffer: ByteBuffer) {
    guard let context else { return }
    request?.log?.bytesOut += buffer.readableBytes
    loop.counters.responseBodyBytes &+= buffer.readableBytes
    writer.writeBody(buffer, context: context)
    if !context.channel.isWritable { exchange.clientWritabilityChanged(isWritable: false) }
  }

  func exchangeSendEnd(_ exchange: Exchange) {
    guard let context else { return }
    machine.responseEnded()
    finishResponse(context: context)
  }

  func exchangeSendRefusal(_ exchange: Exchange, _ refusal: GatewayRefusal) {
    guard let context else { return }
    loop.counters.recordUpstreamError(exchange.failure?.kind ?? "unknown", cluster: exchange.cluster.metricsIndex)
    machine.upstreamRefused()
    writeRefusal(refusal, context: context)
  }

  func exchangeAbort(_ exchange: Exchange) {
    loop.counters.recordUpstreamError(exchange.failure?.kind ?? "unknown", cluster: exchange.cluster.metricsIndex)
    // The response already started: its status cannot change; closing tells the client it is cut.
    endRequest(completed: false)
    context?.close(promise: nil)
  }

  func exchangeConsumedRequestBody(_ exchange: Exchange, bytes: Int) {}

  func exchangeFlush(_ exchange: Exchange) {
    guard let context else { return }
    writer.writeHeld(context: context)
    context.flush()
  }

  func exchangeSetRequestBodyPaused(_ exchange: Exchange, _ paused: Bool) {
    if machine.setReadPaused(paused) { context?.read() }
  }

  /// The upstream accepted the WebSocket upgrade (its 101 is read and was answered): replace the
  /// HTTP handlers on both connections with a byte tunnel (the upstream connection leaves its pool).
  func exchangeUpgraded(_ exchange: Exchange, connection upstream: UpstreamConnection) {
    guard let context, machine.upgradePending else {
      upstream.cancel()
      return
    }
    endRequest(completed: true)
    // Reads were held while the upgrade was pending: the tunnel's read must get through.
    machine.upgraded()
    deadline = nil
    let channel = context.channel
    guard TunnelHandler.join(client: channel, upstream: upstream, sweeper: loop.sweeper, idleTimeout: loop.settings.idleTimeout) else {
      channel.close(promise: nil)
      return
    }
    let sync = channel.pipeline.syncOperations
    if let h = try? sync.handler(type: ByteToMessageHandler<ClientRequestDecoder>.self) { sync.removeHandler(h, promise: nil) }
    sync.removeHandler(self, promise: nil)
  }

  // MARK: backpressure

  func read(context: ChannelHandlerContext) {
    if machine.readRequested() { context.read() }
  }

  func channelWritabilityChanged(context: ChannelHandlerContext) {
    machine.answer?.clientWritabilityChanged(isWritable: context.channel.isWritable)
    context.fireChannelWritabilityChanged()
  }

  func errorCaught(context: ChannelHandlerContext, error: Error) {
    if let parserError = error as? HTTPParserError {
      // Framing the parser could not accept (§9.4): refuse and close, nothing is forwarded.
      let refusal = HTTP1Responses.refusal(for: parserError)
      if let exchange = machine.answer {
        exchange.cancel()
        if exchange.responseStarted {
          context.close(promise: nil)
          return
        }
      }
      machine.parserFailed()
      method = .GET
      if request == nil {
        // Refused before the parser produced a head: log what the request line said, if anything.
        let line = unparsedRequestLine
        request = loop.beginRequest(
          proto: "h1", host: nil, method: line?.method ?? "", uri: line?.target ?? "", connection: connection, userAgent: nil)
      }
      unparsedRequestLine = nil
      writeRefusal(refusal, context: context)
      return
    }
    context.close(promise: nil)
  }
}
