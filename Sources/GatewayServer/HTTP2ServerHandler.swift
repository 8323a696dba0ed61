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

  /// A stream's state, a class: the handler reads and changes it in place. As a struct in the
  /// dictionary, each `streams[id]?.x = y` ran Dictionary's modify coroutine, whose frame (for a
  /// value this size) is a heap allocation, and each read-modify-write copied the struct with a
  /// retain of every reference in it.
  final class StreamState {
    /// The request, from its HEADERS to its access-log line.
    var request: RequestContext
    var exchange: Exchange?
    var method: HTTPMethod = .GET
    /// Request end, window credit, response framing and backpressure: every decision about the
    /// stream's frames.
    var machine: HTTP2StreamStateMachine
    var responseDone: Bool { machine.response.done }
    /// An extended CONNECT for a WebSocket (RFC 8441): the `Sec-WebSocket-Accept` the upstream's
    /// 101 must carry, then the tunnel once it answered.
    var websocketAccept: String?
    var tunnel: HTTP2StreamTunnel?
    /// DATA the client sent before the tunnel was up (bounded by the stream window).
    var earlyData: [ByteBuffer] = []

    init(request: RequestContext, requestEnded: Bool) {
      self.request = request
      self.machine = HTTP2StreamStateMachine(requestEnded: requestEnded)
    }
  }

  private let loop: LoopContext
  private let connection: ConnectionInfo
  private var context: ChannelHandlerContext?
  /// What the sweeper, exchanges, tunnels and write callbacks hold instead of `weak` references to
  /// this handler (see ``BackReference``).
  private(set) lazy var backReference = BackReference(self)
  private lazy var clientReference = ClientReference(self)
  private var streams: [HTTP2StreamID: StreamState] = [:]
  private var connectionCredit = 0
  /// True between channelRead and channelReadComplete: writes then are flushed at read complete.
  private var inReadCycle = false
  /// Set while the connection has no streams: it closes (GOAWAY) when this passes.
  private var idleDeadline: NIODeadline?
  /// The connection's lifecycle: active, draining, closing, lingering (``HTTP2ConnectionStateMachine``).
  private var lifecycle = HTTP2ConnectionStateMachine()
  /// A flush is queued for the end of this event-loop tick (``scheduleFlush(_:)``).
  private var flushQueued = false
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

  // MARK: outbound helpers

  private func reset(_ id: HTTP2StreamID, _ code: HTTP2ErrorCode) {
    guard let context else { return }
    streams[id]?.machine.response.finish()
    context.writeAndFlush(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .rstStream(code))), promise: nil)
  }

  private func sendPreflight(_ id: HTTP2StreamID, origin: String, methods: String) {
    guard let context, let s = streams[id] else { return }
    loop.responded(&s.request, status: 204)
    let requestID = s.request.requestID
    let headers = HTTP2Responses.preflight(loop.settings.preflight, origin: origin, methods: methods, requestID: requestID)
    s.machine.response.finish()
    writeLast(HTTP2Frame(streamID: id, payload: .headers(.init(headers: headers, endStream: true))), id: id, context: context)
    context.flush()
  }

  /// Writes a response's last frame (END_STREAM set). If the client is still sending its request,
  /// RST_STREAM(NO_ERROR) then asks it to stop (RFC 9113 §8.1), once that frame has been written:
  /// "only after sending a complete response". Written at once, the reset would also lose the
  /// response: NIOHTTP2 holds DATA in its flow-control buffer until a flush, RST_STREAM goes
  /// straight through and closes the stream, and the held DATA is dropped (a refusal's client got
  /// HEADERS with `content-length: 148`, then the reset, and no body).
  private func writeLast(_ frame: HTTP2Frame, id: HTTP2StreamID, context: ChannelHandlerContext) {
    guard let s = streams[id], s.machine.stopsRequestAfterResponse else {
      context.write(wrapOutboundOut(frame), promise: nil)
      return
    }
    let written = context.eventLoop.makePromise(of: Void.self)
    written.futureResult.assumeIsolated().whenSuccess { [weak backReference] in backReference?.target.stopRequest(id) }
    context.write(wrapOutboundOut(frame), promise: written)
  }

  /// The response is on the wire and the client is still sending: RST_STREAM(NO_ERROR).
  private func stopRequest(_ id: HTTP2StreamID) {
    guard let context, let s = streams[id], s.machine.stopsRequestAfterResponse else { return }
    context.writeAndFlush(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .rstStream(.noError))), promise: nil)
  }

  private func sendRefusal(_ id: HTTP2StreamID, _ refusal: GatewayRefusal, method: HTTPMethod, retryAfter: Int? = nil) {
    guard let context, let s = streams[id] else { return }
    let requestID = s.request.requestID
    let body = RefusalResponse.body(refusal, requestID: requestID, allocator: context.channel.allocator)
    loop.refused(&s.request, refusal, bodyBytes: body.readableBytes, headOnly: method == .HEAD)
    let headers = HTTP2Responses.refusal(refusal, requestID: requestID, bodyBytes: body.readableBytes, retryAfter: retryAfter)
    let headOnly = method == .HEAD
    s.machine.response.finish()
    let headersFrame = HTTP2Frame(streamID: id, payload: .headers(.init(headers: headers, endStream: headOnly)))
    if headOnly {
      writeLast(headersFrame, id: id, context: context)
    } else {
      context.write(wrapOutboundOut(headersFrame), promise: nil)
      writeLast(HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(body), endStream: true))), id: id, context: context)
    }
    context.flush()
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

  /// Writes what ``HTTP2ResponseFraming`` released, none of it ending the stream.
  private func write(_ writes: HTTP2ResponseFraming.Writes, id: HTTP2StreamID, state s: StreamState, context: ChannelHandlerContext) {
    if let h = writes.headers {
      context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .headers(.init(headers: h, endStream: false)))), promise: nil)
    }
    if let d = writes.data { writeData(d, id: id, state: s, context: context) }
  }

  private func writeData(_ buffer: ByteBuffer, id: HTTP2StreamID, state s: StreamState, context: ChannelHandlerContext) {
    let n = buffer.readableBytes
    s.request.log?.bytesOut += n
    loop.counters.responseBodyBytes &+= n
    let promise = context.eventLoop.makePromise(of: Void.self)
    promise.futureResult.assumeIsolated().whenComplete { [weak backReference] _ in backReference?.target.dataWritten(id, bytes: n) }
    context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(buffer), endStream: false)))), promise: promise)
    if s.machine.wrote(n) == .pause {
      if let tunnel = s.tunnel { tunnel.setReadPaused(true) } else { s.exchange?.clientWritabilityChanged(isWritable: false) }
    }
  }

  private func dataWritten(_ id: HTTP2StreamID, bytes: Int) {
    guard let s = streams[id] else { return }
    if s.machine.written(bytes) == .resume {
      if let tunnel = s.tunnel { tunnel.setReadPaused(false) } else { s.exchange?.clientWritabilityChanged(isWritable: true) }
    }
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

  /// Flushes once per event-loop tick however many streams ask: responses of different streams
  /// that complete in the same tick (each from its own upstream read) go out in one batch of TLS
  /// records and one write. Inside a client read cycle, channelReadComplete flushes anyway.
  private func scheduleFlush(_ context: ChannelHandlerContext) {
    if inReadCycle || flushQueued { return }
    flushQueued = true
    context.eventLoop.assumeIsolated().execute { [weak backReference] in
      guard let self = backReference?.target else { return }
      self.flushQueued = false
      self.context?.flush()
    }
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

  /// The upstream switched protocols. For an extended CONNECT whose 101 checked out, the stream
  /// answers `:status 200` and becomes a tunnel to the upstream socket; anything else is cut (an
  /// ordinary HTTP/2 request never asks for an upgrade).
  func exchangeUpgraded(_ exchange: Exchange, connection upstream: UpstreamConnection) {
    let id = HTTP2StreamID(exchange.streamID)
    guard let context, let s = streams[id], s.websocketAccept != nil, let headers = s.machine.response.heldHeaders,
      let upstreamChannel = upstream.channel
    else {
      upstream.cancel()
      if let s = streams[id], s.machine.response.heldHeaders == nil, s.websocketAccept != nil {
        sendRefusal(id, GatewayRefusal.upstreamError.with(message: "The upstream's WebSocket handshake is invalid."), method: .GET)
      } else {
        reset(id, .internalError)
      }
      return
    }
    let tunnel = HTTP2StreamTunnel(client: self, streamID: id, sweeper: loop.sweeper, idleTimeout: loop.settings.idleTimeout)
    do {
      try upstreamChannel.pipeline.syncOperations.addHandler(tunnel)
    } catch {
      upstream.cancel()
      reset(id, .internalError)
      return
    }
    guard upstream.detachForTunnel() != nil else {
      upstreamChannel.close(promise: nil)
      reset(id, .internalError)
      return
    }
    context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .headers(.init(headers: headers, endStream: false)))), promise: nil)
    _ = s.machine.response.takeHeaders()
    s.tunnel = tunnel
    let early = s.earlyData
    s.earlyData = []
    for buffer in early { tunnel.send(buffer) }
    if !s.machine.stopsRequestAfterResponse { tunnel.finishOutput() }
    // Bytes that came with the 101 reach the tunnel from the decoder's removal task (Tunnel.swift).
    upstreamChannel.read()
    context.flush()
  }

  /// The upstream's 101 for an extended CONNECT: checked, and turned into the stream's `:status 200`
  /// (held until the tunnel is up, in `exchangeUpgraded`).
  private func websocketAccepted(_ id: HTTP2StreamID, head: HTTPResponseHead, expectedAccept: String, requestID: String) {
    guard let s = streams[id] else { return }
    guard head.headers.first(name: "Sec-WebSocket-Accept") == expectedAccept else {
      // Left without headers: exchangeUpgraded answers 502 upstream_error.
      return
    }
    // Connection and Upgrade are hop-by-hop (dropped); the accept is between gateway and upstream.
    let headers = HTTP2Responses.forwarded(
      status: "200", from: head.headers, requestID: requestID, allowOrigin: nil, varyOrigin: false,
      dropping: "sec-websocket-accept")
    if let exchange = s.exchange { loop.forwardedHead(&s.request, status: 200, exchange: exchange) }
    s.machine.response.head(headers)
  }

  // MARK: extended CONNECT tunnels

  /// Client DATA on a WebSocket stream: to the upstream once the tunnel is up (held before), with
  /// the stream's window given back as the upstream socket takes the bytes.
  private func tunnelData(_ id: HTTP2StreamID, _ data: HTTP2Frame.FramePayload.Data, state s: StreamState) {
    var bytes = 0
    if case .byteBuffer(let buffer) = data.data, buffer.readableBytes > 0 {
      bytes = buffer.readableBytes
      s.request.bodyBytes += bytes
      if let tunnel = s.tunnel {
        tunnel.send(buffer)
      } else {
        s.earlyData.append(buffer)
      }
    }
    if s.machine.tunnelData(bytes: bytes, endStream: data.endStream) { s.tunnel?.finishOutput() }
    creditTunnel(id)
  }

  private func creditTunnel(_ id: HTTP2StreamID) {
    guard let context, let s = streams[id], let increment = s.machine.tunnelCredit(writable: s.tunnel?.isWritable ?? false) else { return }
    context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .windowUpdate(windowSizeIncrement: increment))), promise: nil)
    if !inReadCycle { context.flush() }
  }

  /// Upstream bytes for the stream.
  func tunnelReceived(_ id: HTTP2StreamID, _ buffer: ByteBuffer) {
    guard let context, let s = streams[id], !s.responseDone else { return }
    writeData(buffer, id: id, state: s, context: context)
    context.flush()
  }

  /// The upstream socket can take more: give the client back its window.
  func tunnelWritable(_ id: HTTP2StreamID) { creditTunnel(id) }

  /// The upstream closed: the stream ends (and is reset if the client is still sending).
  func tunnelClosed(_ id: HTTP2StreamID) {
    guard let context, let s = streams[id], !s.responseDone else { return }
    s.machine.response.finish()
    s.tunnel = nil
    let empty = context.channel.allocator.buffer(capacity: 0)
    writeLast(HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(empty), endStream: true))), id: id, context: context)
    context.flush()
  }

  /// HTTP/2 uses stream flow control instead of pausing the connection.
  func exchangeSetRequestBodyPaused(_ exchange: Exchange, _ paused: Bool) {}

  func errorCaught(context: ChannelHandlerContext, error: Error) {
    // NIOHTTP2Handler has already answered protocol errors (RST_STREAM or GOAWAY). A connection
    // error's GOAWAY must be followed by closing the TCP connection (RFC 9113 §5.4.1): flush it,
    // then close. Stream-level errors leave the connection usable.
    // The client sent HEADERS (or DATA) on a stream it had ended: half-closed (remote), which
    // RFC 9113 §5.1 answers with STREAM_CLOSED; NIOHTTP2 1.46 resets the stream with PROTOCOL_ERROR
    // for HEADERS there (StreamStateMachine.receiveHeaders, the halfClosedRemoteLocalIdle/Active
    // case), so the lifecycle makes it a connection error (h2spec http2/5.1/6).
    let kind: HTTP2ConnectionStateMachine.ErrorKind
    if Self.isFrameAfterEndStream(error) {
      kind = .frameAfterEndStream
    } else if error is NIOHTTP2Errors.StreamError {
      kind = .stream
    } else if error is any NIOHTTP2Error {
      kind = .protocolError
    } else {
      kind = .other
    }
    switch lifecycle.errorCaught(kind) {
    case .ignore:
      if let streamError = error as? NIOHTTP2Errors.StreamError {
        // A frame for one stream was refused (NIOHTTP2 reset that stream): the connection stays.
        loop.logger.debug("http/2 stream error", metadata: ["stream": "\(streamError.streamID)", "error": "\(streamError.baseError)"])
      } else {
        loop.logger.debug("http/2 protocol error", metadata: ["error": "\(error)"])
      }
    case .linger:
      lingeringClose(context: context, error: error)
    case .goAwayStreamClosedAndLinger(let last):
      let goAway = HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: last, errorCode: .streamClosed, opaqueData: nil))
      context.write(wrapOutboundOut(goAway), promise: nil)
      lingeringClose(context: context, error: error)
    case .close:
      loop.logger.debug("http/2 connection error", metadata: ["error": "\(error)"])
      context.close(promise: nil)
    }
  }
}

extension HTTP2ServerHandler {
  /// A connection error's close, lingering: closing at once with the client's frames still unread
  /// would send a TCP reset, and a reset can discard the GOAWAY before the client reads it. So:
  /// flush the GOAWAY, half-close (TLS close_notify + FIN: the client sees GOAWAY, then end of
  /// stream), and close for good after `linger`, whatever the client still sends being ignored
  /// meanwhile.
  private func lingeringClose(context: ChannelHandlerContext, error: Error) {
    loop.logger.debug("http/2 connection error; closing", metadata: ["error": "\(error)"])
    context.flush()
    context.close(mode: .output, promise: nil)
    let channel = context.channel
    context.eventLoop.scheduleTask(in: Self.linger) { channel.close(promise: nil) }
  }

  /// NIOHTTP2's error for a frame on a stream the client had already ended (half-closed remote),
  /// as it reports it: bare, or wrapped in a `StreamError`. (A closed stream is a connection error
  /// NIOHTTP2 answers with its own GOAWAY(STREAM_CLOSED).)
  static func isFrameAfterEndStream(_ error: Error) -> Bool {
    let base = (error as? NIOHTTP2Errors.StreamError)?.baseError ?? error
    guard let transition = base as? NIOHTTP2Errors.BadStreamStateTransition else { return false }
    return transition.fromState == .halfClosedRemoteLocalIdle || transition.fromState == .halfClosedRemoteLocalActive
  }
}

extension HTTP2ServerHandler: NIOHTTP2FrameDelegate {
  /// Every frame NIOHTTP2Handler writes, its own included. A GOAWAY with an error code means it
  /// found a connection error (flood, HPACK or flow-control violation, bad frame); it reports the
  /// error next through `errorCaught`, which then closes the connection. The gateway's own GOAWAYs
  /// (drain, idle) carry NO_ERROR.
  func wroteFrame(_ frame: HTTP2Frame) {
    if case .goAway(_, let code, _) = frame.payload { lifecycle.wroteGoAway(errorCode: code) }
  }
}
