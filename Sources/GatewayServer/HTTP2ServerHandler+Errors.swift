import GatewayCore
import GatewayObservability
import GatewayUpstream
import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2

/// Errors on the connection: NIOHTTP2's verdicts mapped to ``HTTP2ConnectionStateMachine/ErrorKind``,
/// and the lifecycle's answer (ignore, GOAWAY, lingering close) carried out.
extension HTTP2ServerHandler {
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
  func lingeringClose(context: ChannelHandlerContext, error: Error) {
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
