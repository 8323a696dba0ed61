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

  private let loop: LoopContext
  private let connection: ConnectionInfo
  private var context: ChannelHandlerContext?
  /// The connection's lifecycle: every decision about parts, timers, keep-alive and reads.
  private var machine = HTTP1ConnectionStateMachine<Exchange>()
  /// When the machine's running timer fires.
  private var deadline: NIODeadline?
  private var bodyLimit = 0
  private var method = HTTPMethod.GET
  /// Set for a 429: its `Retry-After`, in seconds.
  private var retryAfter: Int?
  /// Set when an upgrade was not taken: the decoder starts a fresh parser before its next bytes.
  var parserNeedsFreshStart = false
  /// True while ``ClientRequestDecoder`` is decoding (parts reach this handler synchronously).
  var decoding = false
  private var version = HTTPVersion.http1_1
  /// What the sweeper, the request decoder and exchanges hold instead of `weak` references to this
  /// handler (see ``BackReference``).
  private(set) lazy var backReference = BackReference(self)
  private lazy var clientReference = ClientReference(self)
  private var writer = HTTP1ResponseWriter()
  /// The current request, from its head to its access-log line (nil between requests).
  private var request: RequestContext?
  /// When the connection reached HTTP (after TLS).
  private var openedAt = NIODeadline.uptimeNanoseconds(0)
  /// How long a drain waits for the first request of a connection that has sent none yet.
  static let drainGraceForNewConnections = TimeAmount.seconds(2)
  /// The request line of bytes the parser refused before producing a head (for the access log).
  var unparsedRequestLine: (method: String, target: String)?

  /// The current request is over: its log phase, once.
  private func endRequest(completed: Bool) {
    guard var r = request else { return }
    request = nil
    loop.log(&r, completed: completed)
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

  // MARK: timeouts

  /// Sets the deadline of a timer the machine started.
  private func arm(_ timer: HTTP1ConnectionStateMachine<Exchange>.Timer?) {
    switch timer {
    case nil: return
    case .off: deadline = nil
    case .idle: deadline = loop.sweeper.deadline(in: loop.settings.idleTimeout)
    case .header, .body: deadline = loop.sweeper.deadline(in: loop.settings.clientHeaderTimeout)
    }
  }

  func checkDeadlines(now: NIODeadline) {
    if loop.draining { drainStep() }
    // A deadline left over from a timer the machine has stopped means nothing.
    guard machine.timer != .off, let d = deadline, d <= now else { return }
    deadline = nil
    switch machine.deadlinePassed() {
    case nil: return
    case .rearmBody: arm(.body)
    case .body: bodyTimedOut()
    case .header: headerTimedOut()
    case .idle: context?.close(promise: nil)
    }
  }

  /// A graceful drain is under way: later responses say `Connection: close`, and an idle
  /// connection closes now (a request in flight finishes first). A connection accepted just before
  /// the listener closed has a request on its way: closing it now would fail that request (the
  /// client cannot know it was never read), so it gets a moment to send it.
  private func drainStep() {
    guard let context else { return }
    if machine.drain(young: loop.sweeper.now < openedAt + Self.drainGraceForNewConnections) {
      context.close(promise: nil)
    }
  }

  func channelInactive(context: ChannelHandlerContext) {
    loop.counters.openHTTP1Connections -= 1
    deadline = nil
    machine.answer?.cancel()
    endRequest(completed: false)
    machine.closed()
    context.fireChannelInactive()
  }

  /// Called by ``ClientRequestDecoder`` when bytes of a new request arrive on an idle connection.
  func requestBytesArrived() {
    guard context != nil else { return }
    arm(machine.requestBytesArrived())
  }

  /// A request body stalled for `client_header_timeout_s` (slowloris on the body): 408 if nothing
  /// was answered yet, else the connection is cut. Either way the upstream request is abandoned.
  private func bodyTimedOut() {
    guard let context else { return }
    if let exchange = machine.answer {
      exchange.cancel()
      if exchange.responseStarted {
        context.close(promise: nil)
        return
      }
      refuse(.requestTimeout, closeConnection: true, context: context)
    } else {
      context.close(promise: nil)
    }
  }

  /// The head never completed: answer 408 and close (§4 request_timeout).
  private func headerTimedOut() {
    guard let context else { return }
    let refusal = GatewayRefusal.requestTimeout
    let requestID = loop.requestIDs.next()
    loop.counters.recordRefusal(refusal)
    loop.counters.recordResponse(status: refusal.status)
    let text = HTTP1Responses.headerTimeout(requestID: requestID)
    context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: text))).assumeIsolated()
      .whenComplete { _ in context.close(promise: nil) }
  }

  // MARK: requests

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    let part = unwrapInboundIn(data)
    switch machine.partArrived(part) {
    case .drop, .queue: return
    case .process: process(part, context: context)
    }
  }

  private func process(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
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

  private func refuse(_ refusal: GatewayRefusal, closeConnection: Bool, context: ChannelHandlerContext) {
    machine.refusing(close: closeConnection)
    writeRefusal(refusal, context: context)
  }

  /// 204 for an allowed CORS preflight.
  private func writePreflight(origin: String, methods: String, context: ChannelHandlerContext) {
    guard request != nil else { return }
    loop.responded(&request!, status: 204)
    let requestID = request!.requestID
    var head = writer.beginHead(version: version, status: .noContent, allocator: context.channel.allocator)
    HTTP1Responses.preflight(into: &head, loop.settings.preflight, origin: origin, methods: methods, requestID: requestID)
    machine.refusing(close: false)
    writer.hold(finishHead(&head))
    if machine.answerWritten() { finishResponse(context: context) }
  }

  private func writeRefusal(_ refusal: GatewayRefusal, context: ChannelHandlerContext) {
    // A refusal belongs to a request; one that reached no head (a parser error) gets its
    // context from errorCaught, and this one is never left unanswered either.
    if request == nil {
      request = loop.beginRequest(proto: "h1", host: nil, method: "", uri: "", connection: connection, userAgent: nil)
    }
    let requestID = request!.requestID
    let body = RefusalResponse.body(refusal, requestID: requestID, allocator: context.channel.allocator)
    loop.refused(&request!, refusal, bodyBytes: body.readableBytes, headOnly: method == .HEAD)
    var head = writer.beginHead(
      version: version, status: HTTPResponseStatus(statusCode: refusal.status), allocator: context.channel.allocator,
      capacity: 320 + body.readableBytes)
    HTTP1Responses.refusal(into: &head, refusal, requestID: requestID, bodyBytes: body.readableBytes, retryAfter: retryAfter)
    retryAfter = nil
    // Held, so the JSON body is copied in behind the head: one write, like a small forwarded response.
    writer.hold(finishHead(&head))
    writer.writeBody(body, context: context)
    if machine.answerWritten() {
      finishResponse(context: context)
    } else {
      writer.writeHeld(context: context)  // a HEAD's head is still held (no body part took it)
      context.flush()
    }
  }

  /// The response is complete: keep the connection for the next request or close it.
  private func finishResponse(context: ChannelHandlerContext) {
    endRequest(completed: true)
    let finish = machine.finishResponse()
    if finish.resumeRead { context.read() }
    if finish.close {
      let written = context.eventLoop.makePromise(of: Void.self)
      writer.writeEnd(context: context, promise: written)
      context.flush()
      written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    } else {
      writer.writeEnd(context: context, promise: nil)
      arm(.idle)
      // Next pipelined request, if one is waiting (its response is flushed with this one).
      while let part = machine.nextQueuedPart() { process(part, context: context) }
      if machine.readAfterFinish() { context.read() }
      context.flush()
      // An upgrade asked for and not taken (refused, or answered without a 101): the connection
      // stays HTTP/1.1, so the stopped parser must start again on the bytes that follow (last:
      // that can begin the next request at once).
      if finish.restartParser { restartParser(context: context) }
    }
  }

  /// Has the request decoder start a fresh parser on the bytes it holds (after an upgrade that did
  /// not happen). Inside a decode the decoder notices on return; otherwise it is run now, over the
  /// bytes it has buffered (a request pipelined behind the upgrade), with an empty read.
  private func restartParser(context: ChannelHandlerContext) {
    parserNeedsFreshStart = true
    guard !decoding else { return }
    let sync = context.pipeline.syncOperations
    guard let decoder = try? sync.handler(type: ByteToMessageHandler<ClientRequestDecoder>.self),
      let decoderContext = try? sync.context(handler: decoder)
    else { return }
    decoder.channelRead(context: decoderContext, data: NIOAny(context.channel.allocator.buffer(capacity: 0)))
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

  /// Ends a head with `Connection: close` when this response is the connection's last (a close-
  /// delimited body makes it so).
  private func finishHead(_ head: inout HTTP1ResponseWriter.Head) -> ByteBuffer {
    let last = machine.isLastResponse
    if last { head.add("Connection", "close") }
    let (bytes, closeDelimited) = writer.finishHead(&head, version: version, requestMethod: method, closing: last)
    if closeDelimited { machine.responseIsCloseDelimited() }
    return bytes
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
