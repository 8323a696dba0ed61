import GatewayUpstream
import NIOCore
import NIOHTTP1

/// One side of a byte tunnel (a WebSocket after its 101): what one channel reads, the partner
/// channel writes. Backpressure: while the partner cannot take more, this side stops reading.
/// Idle for `idleTimeout` in both directions, or either side closing, ends the tunnel.
final class TunnelHandler: ChannelDuplexHandler, RemovableChannelHandler, Expirable {
  typealias InboundIn = ByteBuffer
  typealias OutboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer

  weak var partner: TunnelHandler?
  private var context: ChannelHandlerContext?
  private var reads = ReadGate()
  private var deadline: NIODeadline?
  private let sweeper: DeadlineSweeper
  private let idleTimeout: TimeAmount

  init(sweeper: DeadlineSweeper, idleTimeout: TimeAmount) {
    self.sweeper = sweeper
    self.idleTimeout = idleTimeout
  }

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
    sweeper.register(self)
    touch()
  }

  func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

  private func touch() {
    deadline = sweeper.deadline(in: idleTimeout)
    partner?.deadline = deadline
  }

  func checkDeadlines(now: NIODeadline) {
    guard let d = deadline, d <= now else { return }
    deadline = nil
    context?.close(promise: nil)
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    touch()
    partner?.send(unwrapInboundIn(data))
  }

  func channelReadComplete(context: ChannelHandlerContext) {
    partner?.context?.flush()
    context.fireChannelReadComplete()
  }

  func send(_ buffer: ByteBuffer) {
    guard let context else { return }
    context.write(wrapOutboundOut(buffer), promise: nil)
    if !context.channel.isWritable { partner?.setReadPaused(true) }
  }

  func channelWritabilityChanged(context: ChannelHandlerContext) {
    partner?.setReadPaused(!context.channel.isWritable)
    context.fireChannelWritabilityChanged()
  }

  func setReadPaused(_ paused: Bool) { reads.setPaused(paused, context: context) }

  func read(context: ChannelHandlerContext) { reads.read(context) }

  func channelInactive(context: ChannelHandlerContext) {
    deadline = nil
    partner?.context?.flush()
    partner?.context?.close(promise: nil)
    context.fireChannelInactive()
  }

  func errorCaught(context: ChannelHandlerContext, error: Error) {
    context.close(promise: nil)
  }

  /// Joins a client channel and a detached upstream channel. Both live on the same event loop.
  static func join(client: Channel, upstream: UpstreamConnection, sweeper: DeadlineSweeper, idleTimeout: TimeAmount) -> Bool {
    guard let upstreamChannel = upstream.channel else { return false }
    let a = TunnelHandler(sweeper: sweeper, idleTimeout: idleTimeout)
    let b = TunnelHandler(sweeper: sweeper, idleTimeout: idleTimeout)
    a.partner = b
    b.partner = a
    do {
      // Add first, then remove the codecs: bytes the decoders hold are passed on to the tunnel.
      try upstreamChannel.pipeline.syncOperations.addHandler(b)
      guard upstream.detachForTunnel() != nil else { return false }
      try client.pipeline.syncOperations.addHandler(a)
      // Bytes the upstream sent right behind its 101 (in the same read) reach the tunnel from the
      // task that finishes the decoder's removal, with no channelReadComplete after them: they
      // would sit unflushed until the upstream's next read, which may never come (a server that
      // greets first and then waits). Flush once that task has run (a loop runs tasks in order).
      upstreamChannel.eventLoop.assumeIsolated().execute {
        client.flush()
        upstreamChannel.flush()
      }
      // The HTTP handlers just removed may have been holding back a read (backpressure): ask both
      // sides to read, or that side would stay silent.
      upstreamChannel.read()
      client.read()
      return true
    } catch {
      return false
    }
  }
}
