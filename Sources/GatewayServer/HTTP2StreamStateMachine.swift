/// One HTTP/2 stream's request and response sides, as a value whose methods say what to do
/// (the shape of NIO's `HTTPServerPipelineHandler.ConnectionState`); ``HTTP2ServerHandler`` keeps
/// one per stream and only carries the answers out.
///
/// - The request side is open until END_STREAM, on DATA or on trailers. Body bytes go to the
///   exchange while it still wants them, within `max_body_bytes`. The stream window is given back
///   (WINDOW_UPDATE) only for bytes the upstream took, and never once the client ended the stream:
///   NIOHTTP2 then counts it half-closed and would refuse the update as a stream error.
/// - On an extended CONNECT (RFC 8441) the stream is a tunnel: bytes are credited as the upstream
///   socket takes them.
/// - The response side frames the response (``HTTP2ResponseFraming``: END_STREAM folded into the
///   last frame) and counts the bytes written but not yet on the wire, which pause the upstream
///   read above ``HTTP2FlowControl/outstandingHigh`` and resume it below ``HTTP2FlowControl/outstandingLow``.
struct HTTP2StreamStateMachine {
  /// The client ended its side (END_STREAM seen).
  private(set) var requestEnded: Bool
  /// Request bytes taken by the upstream (or tunnel) and not yet given back to the client.
  private(set) var uncredited = 0
  /// The response's frames on their way out.
  var response = HTTP2ResponseFraming()
  /// Response bytes written but not yet on the wire.
  private(set) var outstanding = 0
  /// The upstream's read is paused because `outstanding` went over the high mark.
  private(set) var upstreamPaused = false

  init(requestEnded: Bool) {
    self.requestEnded = requestEnded
  }

  /// What to do with a DATA frame of a request.
  enum DataAction: Equatable {
    /// Hand the bytes to the exchange when `body`, then end its request when `end`.
    case deliver(body: Bool, end: Bool)
    /// The body went over `max_body_bytes`: cancel the exchange, then 413 (or reset if its
    /// response started).
    case tooLarge
  }

  /// A request's DATA frame: `bytes` of it, `total` the body bytes received with it, `forwarding`
  /// whether an exchange still takes request bytes (one exists, and its answer is not complete).
  /// END_STREAM is noted before the bytes go on, so no credit is ever given for an ended stream.
  mutating func requestData(bytes: Int, endStream: Bool, total: Int, limit: Int, forwarding: Bool) -> DataAction {
    let ending = endStream && !requestEnded
    if ending { requestEnded = true }
    let body = bytes > 0 && forwarding
    if body && total > limit { return .tooLarge }
    return .deliver(body: body, end: ending)
  }

  /// Trailers (a HEADERS frame after the request's): not forwarded to the HTTP/1.1 upstream, they
  /// end the request. True: end the exchange's request now.
  mutating func trailers(endStream: Bool) -> Bool {
    guard endStream, !requestEnded else { return false }
    requestEnded = true
    return true
  }

  /// The upstream took `bytes` of the request body: the WINDOW_UPDATE increment to send now, if
  /// any (batched, see ``HTTP2FlowControl/streamWindowUpdate(uncredited:requestEnded:)``).
  mutating func upstreamConsumed(_ bytes: Int) -> Int? {
    uncredited += bytes
    guard let increment = HTTP2FlowControl.streamWindowUpdate(uncredited: uncredited, requestEnded: requestEnded) else { return nil }
    uncredited = 0
    return increment
  }

  /// A tunnel's DATA frame: the bytes are owed back as credit once the upstream socket takes them.
  /// True: the client ended its side, so the tunnel's output is finished.
  mutating func tunnelData(bytes: Int, endStream: Bool) -> Bool {
    uncredited += bytes
    if endStream { requestEnded = true }
    return endStream
  }

  /// The tunnel's upstream socket can take more (`writable`): the credit to give back now, if any.
  mutating func tunnelCredit(writable: Bool) -> Int? {
    guard writable, uncredited > 0, !requestEnded else { return nil }
    defer { uncredited = 0 }
    return uncredited
  }

  /// Whether the response's last frame, once written, must be followed by RST_STREAM(NO_ERROR):
  /// the client is still sending (RFC 9113 §8.1).
  var stopsRequestAfterResponse: Bool { !requestEnded }

  /// What the upstream's read should do after a change of `outstanding`.
  enum ReadChange: Equatable {
    case pause
    case resume
  }

  /// `bytes` of response DATA were written (their promise pending).
  mutating func wrote(_ bytes: Int) -> ReadChange? {
    outstanding += bytes
    guard HTTP2FlowControl.shouldPause(outstanding: outstanding, paused: upstreamPaused) else { return nil }
    upstreamPaused = true
    return .pause
  }

  /// `bytes` of response DATA reached the wire.
  mutating func written(_ bytes: Int) -> ReadChange? {
    outstanding -= bytes
    guard HTTP2FlowControl.shouldResume(outstanding: outstanding, paused: upstreamPaused) else { return nil }
    upstreamPaused = false
    return .resume
  }
}
