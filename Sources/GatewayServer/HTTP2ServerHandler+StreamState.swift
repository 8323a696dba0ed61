import NIOHTTP1
import NIOCore

extension HTTP2ServerHandler {
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
}
