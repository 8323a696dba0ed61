import Crypto
import Foundation
import GatewayUpstream
import NIOCore
import NIOHTTP2

/// WebSockets over HTTP/2 (RFC 8441 extended CONNECT), bridged to an HTTP/1.1 upgrade upstream.
///
/// The client opens a stream with `:method CONNECT` and `:protocol websocket` (the gateway advertises
/// `SETTINGS_ENABLE_CONNECT_PROTOCOL`). After resolution and policy, exactly as for a GET, the
/// upstream gets an HTTP/1.1 `GET` with `Upgrade: websocket`, a `Sec-WebSocket-Key` the gateway made,
/// and the signed X-Tenant. Its `101` is checked (`Sec-WebSocket-Accept` must match the key) and
/// answered on the stream with `:status 200`; from then on the stream's DATA frames and the upstream
/// socket's bytes are one tunnel, with HTTP/2 flow control on one side and read backpressure on the
/// other. END_STREAM half-closes the upstream side; the upstream closing ends the stream.
enum WebSocketHandshake {
  /// A fresh `Sec-WebSocket-Key` (16 random bytes, base64; RFC 6455 §4.1).
  static func makeKey() -> String {
    var rng = SystemRandomNumberGenerator()
    let bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) }
    return Data(bytes).base64EncodedString()
  }

  /// The `Sec-WebSocket-Accept` a server must answer `key` with (RFC 6455 §4.2.2).
  static func accept(for key: String) -> String {
    let digest = Insecure.SHA1.hash(data: Data((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8))
    return Data(digest).base64EncodedString()
  }
}

/// The upstream end of an extended-CONNECT tunnel: replaces the HTTP/1.1 codecs on the upstream
/// connection after its `101` and moves bytes to and from one HTTP/2 stream.
final class HTTP2StreamTunnel: ChannelDuplexHandler, RemovableChannelHandler, Expirable {
  typealias InboundIn = ByteBuffer
  typealias OutboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer

  /// The HTTP/2 connection the stream belongs to (same event loop), through its stand-in.
  private weak var clientReference: BackReference<HTTP2ServerHandler>?
  var client: HTTP2ServerHandler? { clientReference?.target }
  let streamID: HTTP2StreamID
  private var context: ChannelHandlerContext?
  private var reads = ReadGate()
  private var deadline: NIODeadline?
  private let sweeper: DeadlineSweeper
  private let idleTimeout: TimeAmount

  init(client: HTTP2ServerHandler, streamID: HTTP2StreamID, sweeper: DeadlineSweeper, idleTimeout: TimeAmount) {
    self.clientReference = client.backReference
    self.streamID = streamID
    self.sweeper = sweeper
    self.idleTimeout = idleTimeout
  }

  var isWritable: Bool { context?.channel.isWritable ?? false }

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
    sweeper.register(self)
    touch()
  }

  func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

  /// Bytes in either direction keep the tunnel alive for `idle_timeout_s`.
  func touch() { deadline = sweeper.deadline(in: idleTimeout) }

  func checkDeadlines(now: NIODeadline) {
    guard let d = deadline, d <= now else { return }
    deadline = nil
    context?.close(promise: nil)
  }

  // MARK: from the stream

  /// Client DATA for the upstream.
  func send(_ buffer: ByteBuffer) {
    guard let context else { return }
    touch()
    context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
  }

  /// The client ended its side (END_STREAM): half-close towards the upstream, or close when the
  /// upstream channel cannot half-close.
  func finishOutput() {
    guard let context else { return }
    let channel = context.channel
    context.close(mode: .output).assumeIsolated().whenFailure { _ in channel.close(promise: nil) }
  }

  /// The stream is gone (reset, connection closed): drop the upstream connection.
  func close() {
    deadline = nil
    context?.close(promise: nil)
  }

  /// Response backpressure: the client's stream has too much unsent.
  func setReadPaused(_ paused: Bool) { reads.setPaused(paused, context: context) }

  // MARK: channel events

  func read(context: ChannelHandlerContext) { reads.read(context) }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    touch()
    client?.tunnelReceived(streamID, unwrapInboundIn(data))
  }

  func channelWritabilityChanged(context: ChannelHandlerContext) {
    if context.channel.isWritable { client?.tunnelWritable(streamID) }
    context.fireChannelWritabilityChanged()
  }

  func channelInactive(context: ChannelHandlerContext) {
    deadline = nil
    client?.tunnelClosed(streamID)
    context.fireChannelInactive()
  }

  func errorCaught(context: ChannelHandlerContext, error: Error) {
    context.close(promise: nil)
  }
}
