import NIOCore
import NIOHTTP1

/// Receives one upstream response, part by part, on the connection's event loop.
public protocol UpstreamResponseDelegate: AnyObject {
  func upstreamResponseHead(_ head: HTTPResponseHead)
  func upstreamResponseBody(_ buffer: ByteBuffer)
  func upstreamResponseEnd()
  /// The exchange failed. `responseStarted` says whether a response head had arrived.
  func upstreamFailed(_ failure: UpstreamFailure, responseStarted: Bool)
  /// The upstream socket's writability changed (request-body backpressure).
  func upstreamWritabilityChanged(isWritable: Bool)
  /// The current batch of reads is done: a good moment to flush what was written to the client.
  func upstreamReadComplete()
  /// A 101 response ended: the connection can now be handed to a tunnel (``UpstreamConnection/detachForTunnel()``).
  func upstreamUpgraded()
}

/// One pooled keep-alive HTTP/1.1 connection to an upstream endpoint.
///
/// Carries one exchange at a time (no upstream pipelining: a slow response would hold up the ones
/// behind it). Reads are gated for response backpressure: while the client side is not writable the
/// connection stops reading, so a slow client never makes the gateway buffer a large response.
/// A connection goes back to the pool only after a cleanly framed response to a completely sent
/// request that asked for no upgrade, with no byte left over; anything else closes it.
///
/// Requests go out as bytes (``UpstreamRequestHead``, then the body as given or in chunks): there
/// is no encoder handler, so a write goes from here straight to TLS or the socket.
public final class UpstreamConnection: ChannelDuplexHandler, RemovableChannelHandler, Expirable {
  public typealias InboundIn = HTTPClientResponsePart
  public typealias OutboundIn = ByteBuffer
  public typealias OutboundOut = ByteBuffer

  enum State {
    case idle
    /// Request in progress: the head is out, the response not complete.
    case active(requestComplete: Bool, responseStarted: Bool, responseComplete: Bool)
    case closed
  }

  private var state = State.idle
  private var context: ChannelHandlerContext?
  /// The pool this connection returns to, held through its stand-in (see ``BackReference``).
  weak var poolReference: BackReference<UpstreamPool>?
  private var pool: UpstreamPool? { poolReference?.target }
  /// What the sweeper holds instead of a `weak` reference to this handler.
  private lazy var backReference = BackReference(self)
  /// The current exchange's receiver (strong while active, cleared at the end).
  private var delegate: UpstreamResponseDelegate?
  /// The delegate whose response ended in this read batch: it still gets `upstreamReadComplete`.
  private var lastDelegateForFlush: UpstreamResponseDelegate?
  /// The response ended cleanly: back to the pool at the end of this read, if nothing else came in
  /// it. Released inside the read, a waiting request would take the connection at once, and a
  /// response the upstream sent unasked behind the first (in the same read) would be parsed as the
  /// waiting request's answer — another request's, perhaps another shop's. Left idle until the
  /// read ends, such bytes meet an idle connection, and that closes it.
  private var releaseAtReadComplete = false
  /// Response reads held while the client cannot take more.
  private var reads = ReadGate()
  private var keepAlive = true
  /// When the response head must have arrived by (checked by the loop's sweeper).
  private var responseDeadline: NIODeadline?
  private let responseTimeoutAmount: TimeAmount
  private let sweeper: DeadlineSweeper
  /// Requests served on this connection (0 while serving its first).
  public private(set) var useCount = 0
  /// The upstream answered 101 Switching Protocols: the connection now belongs to a tunnel.
  public private(set) var upgraded = false

  /// The response parser, told each request's method (a HEAD response has no body).
  let responseDecoder: UpstreamResponseDecoder
  /// The current request's body goes in chunks.
  private var chunked = false

  init(responseTimeout: TimeAmount, sweeper: DeadlineSweeper) {
    self.responseTimeoutAmount = responseTimeout
    self.sweeper = sweeper
    self.responseDecoder = UpstreamResponseDecoder()
  }

  public func checkDeadlines(now: NIODeadline) {
    if let d = responseDeadline, d <= now {
      responseDeadline = nil
      fail(.responseTimeout)
    }
  }

  public var channel: Channel? { context?.channel }
  public var isWritable: Bool { context?.channel.isWritable ?? false }
  var isIdle: Bool { if case .idle = state { return true } else { return false } }

  public func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
    sweeper.register(backReference)
  }
  public func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

  // MARK: exchange API (called on the event loop by the exchange)

  /// Starts a request: sends its head. `delegate` receives the response.
  public func start(_ request: UpstreamRequestHead, delegate: UpstreamResponseDelegate, hasBody: Bool) {
    guard let context, case .idle = state else {
      delegate.upstreamFailed(.reset, responseStarted: false)
      return
    }
    self.delegate = delegate
    // A connection that carried an upgrade request is never pooled, whatever the answer: after a
    // 101 it becomes a tunnel, and after anything else its framing state is unknown. A server may
    // have stopped parsing HTTP on it (NIO's upgrade handler does, on an upgrade it declines), so
    // the next request on it, from any shop, would hang until the response timeout.
    self.keepAlive = !request.upgrade
    chunked = request.chunked && hasBody
    state = .active(requestComplete: false, responseStarted: false, responseComplete: false)
    responseDecoder.expectResponse(to: request.method)
    context.write(wrapOutboundOut(request.bytes), promise: nil)
    if !hasBody { finishRequest() } else { context.flush() }
  }

  /// Sends part of the request body.
  public func sendBody(_ buffer: ByteBuffer) {
    guard let context, case .active = state else { return }
    guard chunked else {
      context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
      return
    }
    HTTP1Chunks.write(buffer, to: context)
    context.flush()
  }

  /// Ends the request body.
  public func finishRequest() {
    guard let context, case .active(_, let started, let complete) = state else { return }
    if chunked {
      context.writeAndFlush(wrapOutboundOut(HTTP1Chunks.end), promise: nil)
    } else {
      context.flush()
    }
    state = .active(requestComplete: true, responseStarted: started, responseComplete: complete)
    if !started && !complete {
      responseDeadline = sweeper.deadline(in: responseTimeoutAmount)
    }
  }

  /// Leaves the pool for good after a 101: removes the HTTP codecs and this handler from the
  /// upstream pipeline (bytes already read past the 101 are passed on to what follows) and returns
  /// the channel for the tunnel. Call after adding the tunnel handler to `channel`.
  public func detachForTunnel() -> Channel? {
    guard upgraded, let context else { return nil }
    let channel = context.channel
    pool?.connectionClosed(self)
    poolReference = nil
    let sync = channel.pipeline.syncOperations
    if let decoder = try? sync.handler(type: ByteToMessageHandler<UpstreamResponseDecoder>.self) {
      sync.removeHandler(decoder, promise: nil)
    }
    sync.removeHandler(self, promise: nil)
    return channel
  }

  /// Gives back a connection that was leased but never used (the request was cancelled meanwhile).
  public func returnUnused() {
    guard case .idle = state else { return }
    if let pool { pool.release(self) } else { close() }
  }

  /// Abandons the exchange (client went away): the connection is closed, never reused dirty.
  public func cancel() {
    delegate = nil
    close()
  }

  /// Stops or resumes reading the response (client-side backpressure).
  public func setReadPaused(_ paused: Bool) {
    reads.setPaused(paused, context: context)
  }

  // MARK: channel events

  public func read(context: ChannelHandlerContext) {
    reads.read(context)
  }

  public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    let part = unwrapInboundIn(data)
    guard case .active(let reqDone, let started, _) = state else {
      // Bytes on an idle connection: the upstream is confused. Never reuse it.
      if case .idle = state { close() }
      return
    }
    switch part {
    case .head(let head):
      responseDeadline = nil
      if head.status == .switchingProtocols {
        // A WebSocket upgrade: never back to the pool; the exchange hands the socket to a tunnel.
        upgraded = true
        keepAlive = false
      }
      if !head.isKeepAlive { keepAlive = false }
      state = .active(requestComplete: reqDone, responseStarted: true, responseComplete: false)
      delegate?.upstreamResponseHead(head)
    case .body(let buffer):
      delegate?.upstreamResponseBody(buffer)
    case .end:
      if upgraded {
        // The 101's end: the HTTP part is over and the bytes that follow belong to the tunnel.
        state = .closed
        let d = delegate
        delegate = nil
        d?.upstreamUpgraded()
        return
      }
      state = .active(requestComplete: reqDone, responseStarted: started, responseComplete: true)
      let d = delegate
      delegate = nil
      lastDelegateForFlush = d
      d?.upstreamResponseEnd()
      if reqDone {
        completeExchange()
      } else {
        // The upstream answered before the request body was fully sent (e.g. an early 413): the
        // rest of the body would be read as a new request, so this connection is never reused.
        close()
      }
    }
  }

  private func completeExchange() {
    delegate = nil
    useCount += 1
    state = .idle
    reads.setPaused(false, context: context)
    // A response that ended at EOF (close-delimited) completes while the channel is going away:
    // never hand that to the pool, where a waiting request would take it.
    if keepAlive, pool != nil, context?.channel.isActive == true {
      releaseAtReadComplete = true
    } else {
      // NIO fires channelReadComplete only while a channel is active, so closing here, inside the
      // read, would leave the client's side waiting for the flush that event brings (HTTP/2 wrote
      // the response and never sent it). Give it now.
      flushLastExchange()
      close()
    }
  }

  /// The end-of-read-batch notice for the exchange whose response just ended, if not yet given.
  private func flushLastExchange() {
    let d = lastDelegateForFlush
    lastDelegateForFlush = nil
    d?.upstreamReadComplete()
  }

  public func channelReadComplete(context: ChannelHandlerContext) {
    delegate?.upstreamReadComplete()
    flushLastExchange()
    if releaseAtReadComplete {
      releaseAtReadComplete = false
      if case .idle = state, let pool { pool.release(self) }
    }
    context.fireChannelReadComplete()
  }

  public func channelWritabilityChanged(context: ChannelHandlerContext) {
    delegate?.upstreamWritabilityChanged(isWritable: context.channel.isWritable)
    context.fireChannelWritabilityChanged()
  }

  public func channelInactive(context: ChannelHandlerContext) {
    fail(.reset)
    state = .closed
    pool?.connectionClosed(self)
    poolReference = nil
    // A close-delimited response ends here (the parser's last parts): no read-complete follows.
    flushLastExchange()
    context.fireChannelInactive()
  }

  public func errorCaught(context: ChannelHandlerContext, error: Error) {
    if error is HTTPParserError {
      fail(.malformedResponse)
    } else {
      fail(.reset)
    }
  }

  private func fail(_ failure: UpstreamFailure) {
    responseDeadline = nil
    if case .active(_, let started, _) = state, let d = delegate {
      delegate = nil
      state = .closed
      d.upstreamFailed(failure, responseStarted: started)
    }
    close()
  }

  func close() {
    if case .closed = state {} else { state = .closed }
    context?.close(promise: nil)
  }
}

/// NIO's HTTP/1 response parser, fed the request methods directly.
///
/// NIO's `ByteToMessageHandler<HTTPResponseDecoder>` learns each request's method by watching the
/// outbound `HTTPClientRequestPart`s; the upstream connection writes bytes instead, so it tells the
/// parser itself (``expectResponse(to:)``). Not being write-observing also keeps this handler off
/// the outbound path: one hop less per write.
public struct UpstreamResponseDecoder: ByteToMessageDecoder {
  public typealias InboundOut = HTTPClientResponsePart
  /// A class: the handler's copy and the connection's share it.
  let parser: HTTPResponseDecoder

  init() {
    // forwardBytes: after a 101 (WebSocket), bytes that follow the head belong to the tunnel.
    parser = HTTPResponseDecoder(leftOverBytesStrategy: .forwardBytes)
  }

  /// The request just written has `method` (call before its bytes go out).
  func expectResponse(to method: HTTPMethod) {
    parser.write(data: .head(Self.head(for: method)))
  }

  /// Request heads carrying only the method (all the parser reads), common ones prebuilt.
  private static let getHead = HTTPRequestHead(version: .http1_1, method: .GET, uri: "")
  private static let postHead = HTTPRequestHead(version: .http1_1, method: .POST, uri: "")
  private static func head(for method: HTTPMethod) -> HTTPRequestHead {
    switch method {
    case .GET: return getHead
    case .POST: return postHead
    default: return HTTPRequestHead(version: .http1_1, method: method, uri: "")
    }
  }

  public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
    try parser.decode(context: context, buffer: &buffer)
  }

  public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
    try parser.decodeLast(context: context, buffer: &buffer, seenEOF: seenEOF)
  }

  public mutating func decoderAdded(context: ChannelHandlerContext) {
    parser.decoderAdded(context: context)
  }

  public mutating func decoderRemoved(context: ChannelHandlerContext) {
    parser.decoderRemoved(context: context)
  }

  public func shouldReclaimBytes(buffer: ByteBuffer) -> Bool {
    parser.shouldReclaimBytes(buffer: buffer)
  }
}
