import NIOHTTP2

/// The life of one HTTP/2 client connection as a value: active → draining (GOAWAY sent, streams
/// at or below `lastStreamID` finish) → closing → closed, and the lingering close after a
/// connection error. ``HTTP2ServerHandler`` reports events and carries out the returned actions
/// (frames to write, when to close); the streams themselves are the handler's.
/// Tested in `HTTP2ConnectionStateMachineTests`, without a channel.
struct HTTP2ConnectionStateMachine {
  enum State: Equatable {
    /// Serving; `idle` while no stream is open (the idle timer runs).
    case active(idle: Bool)
    /// A graceful drain: the first GOAWAY(NO_ERROR, lastStreamID) is out; streams finish.
    case draining
    /// The last GOAWAY is written and the connection closes once it is on the wire.
    case closing
    /// After a connection error: GOAWAY flushed, output half-closed, the rest of what the client
    /// sends ignored until the linger ends (closing at once would send a TCP reset, and a reset can
    /// discard the GOAWAY before the client reads it).
    case lingering
  }

  /// What the handler does.
  enum Action: Equatable {
    case none
    /// Write and flush GOAWAY(NO_ERROR, lastStreamID): new streams above it are refused by
    /// NIOHTTP2 (RFC 9113 §6.8) and the client retries them elsewhere.
    case sendGoAway(lastStreamID: HTTP2StreamID)
    /// Write GOAWAY(NO_ERROR, lastStreamID), then close once it is written.
    case goAwayAndClose(lastStreamID: HTTP2StreamID)
  }

  /// What a caught error asks for.
  enum ErrorAction: Equatable {
    /// Nothing: NIOHTTP2 answered a stream error (RST_STREAM), the connection stays.
    case ignore
    /// Close the lingering way (NIOHTTP2 already wrote the connection error's GOAWAY).
    case linger
    /// Write GOAWAY(STREAM_CLOSED, lastStreamID), then close the lingering way.
    case goAwayStreamClosedAndLinger(lastStreamID: HTTP2StreamID)
    /// Close now.
    case close
  }

  /// How the handler classifies an error for ``errorCaught(_:)``.
  enum ErrorKind: Equatable {
    /// HEADERS or DATA on a stream the client had ended (RFC 9113 §5.1: STREAM_CLOSED).
    case frameAfterEndStream
    /// A stream-level error NIOHTTP2 answered with RST_STREAM.
    case stream
    /// Another protocol error NIOHTTP2 reported (and answered).
    case protocolError
    /// Anything else (I/O, TLS): the connection is unusable.
    case other
  }

  private(set) var state = State.active(idle: true)
  /// The highest stream id a request arrived on (the GOAWAY's last stream).
  private(set) var lastStreamID = HTTP2StreamID(0)
  /// NIOHTTP2 wrote a GOAWAY with an error code: it found a connection error.
  private(set) var errorGoAwayWritten = false

  init() {}

  /// Frames from the client are ignored while lingering.
  var acceptsFrames: Bool { state != .lingering }

  /// The idle timer runs: active, no stream open.
  var isIdle: Bool { state == .active(idle: true) }

  /// A request's HEADERS opened a stream.
  mutating func streamOpened(_ id: HTTP2StreamID) {
    if id > lastStreamID { lastStreamID = id }
    if case .active = state { state = .active(idle: false) }
  }

  /// A stream closed. True: the idle timer starts again (no stream is open).
  mutating func streamClosed(openStreams: Int) -> Bool {
    guard openStreams == 0, case .active = state else { return false }
    state = .active(idle: true)
    return true
  }

  /// The sweeper's tick. `draining`: the server is draining; `idleExpired`: the idle deadline passed.
  mutating func tick(draining: Bool, openStreams: Int, idleExpired: Bool) -> Action {
    switch state {
    case .closing, .lingering:
      return .none
    case .draining:
      guard openStreams == 0 else { return .none }
      state = .closing
      return .goAwayAndClose(lastStreamID: lastStreamID)
    case .active(let idle):
      if draining {
        // Close once everything written so far is on the wire (writes complete in order).
        if openStreams == 0 {
          state = .closing
          return .goAwayAndClose(lastStreamID: lastStreamID)
        }
        state = .draining
        return .sendGoAway(lastStreamID: lastStreamID)
      }
      guard idle, idleExpired, openStreams == 0 else { return .none }
      state = .closing
      return .goAwayAndClose(lastStreamID: .maxID)
    }
  }

  /// A frame went out; a GOAWAY with an error code is NIOHTTP2's answer to a connection error,
  /// which it reports next through `errorCaught` (the gateway's own GOAWAYs carry NO_ERROR).
  mutating func wroteGoAway(errorCode: HTTP2ErrorCode) {
    if errorCode != .noError { errorGoAwayWritten = true }
  }

  mutating func errorCaught(_ kind: ErrorKind) -> ErrorAction {
    // A connection error's GOAWAY must be followed by closing the TCP connection (RFC 9113 §5.4.1).
    if errorGoAwayWritten {
      if state == .lingering { return .ignore }
      state = .lingering
      return .linger
    }
    switch kind {
    case .frameAfterEndStream:
      if state == .lingering { return .ignore }
      // NIOHTTP2 1.46 resets such a stream with PROTOCOL_ERROR; §5.4.1 lets an endpoint treat a
      // stream error as a connection error, so it becomes GOAWAY(STREAM_CLOSED) and a close
      // (h2spec http2/5.1/6). Only a client that breaks the protocol loses its connection.
      state = .lingering
      return .goAwayStreamClosedAndLinger(lastStreamID: lastStreamID)
    case .stream, .protocolError:
      return .ignore
    case .other:
      return .close
    }
  }
}
