import GatewayCore
import GatewayObservability
import GatewayUpstream
import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2

/// Serves HTTP/2 on the connection channel: frames are handled here with a per-connection stream
/// table, not through a child channel per stream (a child channel, pipeline and codec per request
/// costs ~2.5× throughput, see `../shared/spikes/nio-ceiling`).
///
/// Flow control is ours: the connection window is replenished as DATA arrives (stream windows bound
/// what any stream can buffer), a stream's window only once its bytes were handed to the upstream
/// socket. Response DATA carries write promises so a slow client pauses the upstream read.
final class HTTP2ServerHandler: ChannelDuplexHandler, ClientSide, Expirable {
  typealias InboundIn = HTTP2Frame
  typealias OutboundIn = HTTP2Frame
  typealias OutboundOut = HTTP2Frame

  let loop: LoopContext
  private let connection: ConnectionInfo
  private(set) var context: ChannelHandlerContext?
  /// What the sweeper, exchanges, tunnels and write callbacks hold instead of `weak` references to
  /// this handler (see ``BackReference``).
  private(set) lazy var backReference = BackReference(self)
  private lazy var clientReference = ClientReference(self)
  private(set) var streams: [HTTP2StreamID: StreamState] = [:]
  private var connectionCredit = 0
  /// True between channelRead and channelReadComplete: writes then are flushed at read complete.
  private(set) var inReadCycle = false
  /// Set while the connection has no streams: it closes (GOAWAY) when this passes.
  private var idleDeadline: NIODeadline?
  /// The connection's lifecycle: active, draining, closing, lingering (``HTTP2ConnectionStateMachine``).
  var lifecycle = HTTP2ConnectionStateMachine()
  /// A flush is queued for the end of this event-loop tick (``scheduleFlush(_:)``).
  var flushQueued = false
  /// How long a connection closed for an error keeps reading (and ignoring) before it is closed.
  static let linger = TimeAmount.seconds(1)
  /// A stream closed (it has left `streams`): its log phase.
  private func streamEnded(_ id: HTTP2StreamID, state s: StreamState?) {
    guard let s else { return }
    loop.log(&s.request, completed: s.responseDone)
  }

  static let connectionWindow = HTTP2FlowControl.connectionWindow

  init(loop: LoopContext, connection: ConnectionInfo) {
    self.loop = loop
    self.connection = connection
  }

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
    loop.counters.openHTTP2Connections += 1
    // Open the connection window beyond the 65 535-byte default (RFC 9113 §6.9.2).
    let increment = Self.connectionWindow - 65535
    context.write(wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: increment))), promise: nil)
    loop.sweeper.register(backReference)
    armIdleTimer()
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    idleDeadline = nil
    self.context = nil
  }

  func checkDeadlines(now: NIODeadline) {
    guard let context else { return }
    let idleExpired = idleDeadline.map { $0 <= now } ?? false
    switch lifecycle.tick(draining: loop.draining, openStreams: streams.count, idleExpired: idleExpired) {
    case .none:
      return
    case .sendGoAway(let last):
      let goAway = HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: last, errorCode: .noError, opaqueData: nil))
      context.writeAndFlush(wrapOutboundOut(goAway), promise: nil)
    case .goAwayAndClose(let last):
      idleDeadline = nil
      let goAway = HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: last, errorCode: .noError, opaqueData: nil))
      context.writeAndFlush(wrapOutboundOut(goAway)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
  }

  func channelInactive(context: ChannelHandlerContext) {
    loop.counters.openHTTP2Connections -= 1
    idleDeadline = nil
    for (id, s) in streams {
      s.exchange?.cancel()
      s.tunnel?.close()
      streamEnded(id, state: s)
    }
    streams.removeAll()
    context.fireChannelInactive()
  }

  private func armIdleTimer() {
    idleDeadline = loop.sweeper.deadline(in: loop.settings.idleTimeout)
  }

  /// A stream left `streams`: with none open, the idle timer starts again.
  private func streamRemoved() {
    if lifecycle.streamClosed(openStreams: streams.count) { armIdleTimer() }
  }

  // MARK: inbound

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    guard lifecycle.acceptsFrames else { return }
    inReadCycle = true
    let frame = unwrapInboundIn(data)
    let id = frame.streamID
    switch frame.payload {
    case .headers(let headers):
      if streams[id] != nil {
        // Trailers: not forwarded (HTTP/1.1 upstream); they end the request.
        if let s = streams[id], s.machine.trailers(endStream: headers.endStream) { s.exchange?.requestEnd() }
      } else {
        newRequest(id, headers: headers.headers, endStream: headers.endStream, context: context)
      }
    case .data(let data):
      connectionCredit += HTTP2FlowControl.flowControlledLength(dataBytes: data.data.readableBytes, padding: data.paddingBytes)
      guard let s = streams[id] else { return }
      if s.websocketAccept != nil {
        tunnelData(id, data, state: s)
        return
      }
      guard case .byteBuffer(let buffer) = data.data else { return }
      let n = buffer.readableBytes
      s.request.bodyBytes += n
      let forwarding = s.exchange.map { !s.responseDone || !$0.finished } ?? false
      switch s.machine.requestData(
        bytes: n, endStream: data.endStream, total: s.request.bodyBytes, limit: loop.limits.maxBodyBytes, forwarding: forwarding)
      {
      case .tooLarge:
        if let exchange = s.exchange { bodyTooLarge(id, exchange: exchange) }
      case .deliver(let body, let end):
        if body { s.exchange?.requestBody(buffer) }
        if end { s.exchange?.requestEnd() }
      }
    case .rstStream:
      // The client gave up on the stream: cancel the upstream request (its connection is closed,
      // never reused with a half-sent request).
      let s = streams.removeValue(forKey: id)
      s?.exchange?.cancel()
      s?.tunnel?.close()
      streamEnded(id, state: s)
      streamRemoved()
    default:
      break
    }
  }

  func channelReadComplete(context: ChannelHandlerContext) {
    inReadCycle = false
    if let increment = HTTP2FlowControl.connectionWindowUpdate(credit: connectionCredit) {
      context.write(wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: increment))), promise: nil)
      connectionCredit = 0
    }
    context.flush()
    context.fireChannelReadComplete()
  }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    if let closed = event as? StreamClosedEvent {
      let s = streams.removeValue(forKey: closed.streamID)
      if let e = s?.exchange, !e.finished { e.cancel() }
      s?.tunnel?.close()
      streamEnded(closed.streamID, state: s)
      streamRemoved()
    }
    context.fireUserInboundEventTriggered(event)
  }

  private func newRequest(_ id: HTTP2StreamID, headers: HPACKHeaders, endStream: Bool, context: ChannelHandlerContext) {
    idleDeadline = nil
    lifecycle.streamOpened(id)
    let request = loop.beginRequest(
      proto: "h2", host: headers.first(name: ":authority") ?? headers.first(name: "host"), method: headers.first(name: ":method") ?? "",
      uri: headers.first(name: ":path") ?? "", connection: connection, userAgent: headers.first(name: "user-agent"))
    let s = StreamState(request: request, requestEnded: endStream)
    streams[id] = s
    let validated: ValidatedRequest
    let method: HTTPMethod
    switch HTTP2RequestValidation.validate(headers, endStream: endStream, limits: loop.limits) {
    case .success(let v):
      validated = v.request
      method = v.method
    case .failure(let f):
      sendRefusal(id, f.refusal, method: .GET)
      return
    }
    s.method = method
    s.request.log?.host = validated.host
    let pairs = headers.lazy.filter { $0.name.utf8.first != UInt8(ascii: ":") }.map { ($0.name, $0.value) }
    // RFC 8441 §5: no key on HTTP/2; the gateway is the upstream's WebSocket client and checks its
    // answer (exchangeSendHead).
    let websocketKey = validated.websocket ? WebSocketHandshake.makeKey() : nil
    switch loop.admit(validated, method: method, headers: pairs, context: &s.request, connection: connection, websocketKey: websocketKey) {
    case .refuse(let refusal, _):
      sendRefusal(id, refusal, method: method)
    case .preflight(let origin, let methods):
      sendPreflight(id, origin: origin, methods: methods)
    case .rateLimited(let wait):
      sendRefusal(id, .rateLimited, method: method, retryAfter: wait)
    case .forward(let plan):
      if let websocketKey { s.websocketAccept = WebSocketHandshake.accept(for: websocketKey) }
      let exchange = Exchange(
        requestID: s.request.requestID, streamID: Int(id), client: clientReference, cluster: plan.cluster, request: plan.request,
        hasBody: plan.hasBody && !validated.websocket, allowOrigin: plan.allowOrigin, varyOrigin: plan.varyOrigin)
      s.exchange = exchange
      exchange.start()
      // The upgrade request has no body: what the stream carries later is the tunnel's.
      if endStream || validated.websocket { exchange.requestEnd() }
    }
  }

  private func bodyTooLarge(_ id: HTTP2StreamID, exchange: Exchange) {
    exchange.cancel()
    if exchange.responseStarted {
      reset(id, .cancel)
    } else {
      sendRefusal(id, .payloadTooLarge, method: streams[id]?.method ?? .POST)
    }
  }


  // MARK: ClientSide

  func exchangeSendHead(_ exchange: Exchange, _ head: HTTPResponseHead) {
    let id = HTTP2StreamID(exchange.streamID)
    // One lookup per head: the state is a class, changed in place below.
    let s = streams[id]
    if let accept = s?.websocketAccept {
      if head.status == .switchingProtocols {
        websocketAccepted(id, head: head, expectedAccept: accept, requestID: exchange.requestID)
        return
      }
      if (200..<300).contains(head.status.code) {
        // A 2xx to an extended CONNECT means "tunnel established" (RFC 9113 §8.5, RFC 8441 §5): a
        // backend that answered the upgrade with a plain success did not accept it, and passing
        // that on would leave the client writing WebSocket frames into nothing. Errors pass as
        // they are.
        exchange.cancel()
        loop.counters.recordUpstreamError("upgrade_declined", cluster: exchange.cluster.metricsIndex)
        let refusal = GatewayRefusal.upstreamError.with(
          message: "The upstream did not accept the WebSocket upgrade (it answered \(head.status.code), not 101).")
        sendRefusal(id, refusal, method: .GET)
        return
      }
    }
    let headers = HTTP2Responses.forwarded(
      status: String(head.status.code), from: head.headers, requestID: exchange.requestID,
      allowOrigin: exchange.allowOrigin, varyOrigin: exchange.varyOrigin)
    if let s {
      loop.forwardedHead(&s.request, status: Int(head.status.code), exchange: exchange)
      s.machine.response.head(headers)
    }
  }

  func exchangeSendBody(_ exchange: Exchange, _ buffer: ByteBuffer) {
    let id = HTTP2StreamID(exchange.streamID)
    guard let context, let s = streams[id] else { return }
    if s.method == .HEAD { return }
    write(s.machine.response.body(buffer), id: id, state: s, context: context)
  }


  func exchangeSendEnd(_ exchange: Exchange) {
    let id = HTTP2StreamID(exchange.streamID)
    guard let context, let s = streams[id] else { return }
    let (headers, end) = s.machine.response.end()
    if let h = headers {
      context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .headers(.init(headers: h, endStream: false)))), promise: nil)
    }
    let last: HTTP2Frame
    switch end {
    case .data(let data):
      s.request.log?.bytesOut += data.readableBytes
      loop.counters.responseBodyBytes &+= data.readableBytes
      last = HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(data), endStream: true)))
    case .headers(let h):
      last = HTTP2Frame(streamID: id, payload: .headers(.init(headers: h, endStream: true)))
    case .emptyData:
      let empty = context.channel.allocator.buffer(capacity: 0)
      last = HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(empty), endStream: true)))
    }
    writeLast(last, id: id, context: context)
    // A complete response is always flushed, not left to the upstream's end-of-read notice: that
    // notice never comes when the upstream connection closes in the read that ended the response
    // (`Connection: close`), and the stream would hold its slot until the client sent something.
    scheduleFlush(context)
  }

  func exchangeFlush(_ exchange: Exchange) {
    let id = HTTP2StreamID(exchange.streamID)
    guard let context else { return }
    if let s = streams[id] {
      // Streaming response: put what is held on the wire now rather than wait for the next part.
      write(s.machine.response.flush(), id: id, state: s, context: context)
    }
    scheduleFlush(context)
  }


  func exchangeSendRefusal(_ exchange: Exchange, _ refusal: GatewayRefusal) {
    loop.counters.recordUpstreamError(exchange.failure?.kind ?? "unknown", cluster: exchange.cluster.metricsIndex)
    let id = HTTP2StreamID(exchange.streamID)
    sendRefusal(id, refusal, method: streams[id]?.method ?? .GET)
  }

  func exchangeAbort(_ exchange: Exchange) {
    loop.counters.recordUpstreamError(exchange.failure?.kind ?? "unknown", cluster: exchange.cluster.metricsIndex)
    reset(HTTP2StreamID(exchange.streamID), .internalError)
  }

  func exchangeConsumedRequestBody(_ exchange: Exchange, bytes: Int) {
    let id = HTTP2StreamID(exchange.streamID)
    guard let context, let s = streams[id] else { return }
    if let increment = s.machine.upstreamConsumed(bytes) {
      context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .windowUpdate(windowSizeIncrement: increment))), promise: nil)
      // Credit given outside a read cycle (the upstream drained) must go out now.
      if !inReadCycle { context.flush() }
    }
  }


  /// HTTP/2 uses stream flow control instead of pausing the connection.
  func exchangeSetRequestBodyPaused(_ exchange: Exchange, _ paused: Bool) {}
}
