import GatewayCore
import GatewayObservability
import GatewayUpstream
import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2

/// The stream's outbound side: refusals, preflights and forwarded response frames, the last frame's
/// RST_STREAM(NO_ERROR) for a client still sending, DATA with write promises for backpressure, and
/// the once-per-tick flush. What to write is decided by ``HTTP2StreamStateMachine`` and
/// ``HTTP2Responses``; these only turn it into frames.
extension HTTP2ServerHandler {

  func reset(_ id: HTTP2StreamID, _ code: HTTP2ErrorCode) {
    guard let context else { return }
    streams[id]?.machine.response.finish()
    context.writeAndFlush(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .rstStream(code))), promise: nil)
  }

  func sendPreflight(_ id: HTTP2StreamID, origin: String, methods: String) {
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
  func writeLast(_ frame: HTTP2Frame, id: HTTP2StreamID, context: ChannelHandlerContext) {
    guard let s = streams[id], s.machine.stopsRequestAfterResponse else {
      context.write(wrapOutboundOut(frame), promise: nil)
      return
    }
    let written = context.eventLoop.makePromise(of: Void.self)
    written.futureResult.assumeIsolated().whenSuccess { [weak backReference] in backReference?.target.stopRequest(id) }
    context.write(wrapOutboundOut(frame), promise: written)
  }

  /// The response is on the wire and the client is still sending: RST_STREAM(NO_ERROR).
  func stopRequest(_ id: HTTP2StreamID) {
    guard let context, let s = streams[id], s.machine.stopsRequestAfterResponse else { return }
    context.writeAndFlush(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .rstStream(.noError))), promise: nil)
  }

  func sendRefusal(_ id: HTTP2StreamID, _ refusal: GatewayRefusal, method: HTTPMethod, retryAfter: Int? = nil) {
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

  /// Writes what ``HTTP2ResponseFraming`` released, none of it ending the stream.
  func write(_ writes: HTTP2ResponseFraming.Writes, id: HTTP2StreamID, state s: StreamState, context: ChannelHandlerContext) {
    if let h = writes.headers {
      context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .headers(.init(headers: h, endStream: false)))), promise: nil)
    }
    if let d = writes.data { writeData(d, id: id, state: s, context: context) }
  }

  func writeData(_ buffer: ByteBuffer, id: HTTP2StreamID, state s: StreamState, context: ChannelHandlerContext) {
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

  func dataWritten(_ id: HTTP2StreamID, bytes: Int) {
    guard let s = streams[id] else { return }
    if s.machine.written(bytes) == .resume {
      if let tunnel = s.tunnel { tunnel.setReadPaused(false) } else { s.exchange?.clientWritabilityChanged(isWritable: true) }
    }
  }
  /// Flushes once per event-loop tick however many streams ask: responses of different streams
  /// that complete in the same tick (each from its own upstream read) go out in one batch of TLS
  /// records and one write. Inside a client read cycle, channelReadComplete flushes anyway.
  func scheduleFlush(_ context: ChannelHandlerContext) {
    if inReadCycle || flushQueued { return }
    flushQueued = true
    context.eventLoop.assumeIsolated().execute { [weak backReference] in
      guard let self = backReference?.target else { return }
      self.flushQueued = false
      self.context?.flush()
    }
  }
}
