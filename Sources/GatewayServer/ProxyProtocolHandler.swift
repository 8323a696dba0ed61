import GatewayCore
import NIOCore

/// Reads the PROXY protocol header at the start of a connection from a trusted load balancer
/// (`listen.proxy_protocol`), then hands the connection on: `onHeader` installs the TLS pipeline
/// with the client address from the header, the bytes behind the header go to it, and this handler
/// leaves the pipeline. A malformed or missing header closes the connection; nothing is guessed.
/// The handshake deadline set for every connection also bounds a balancer that never sends one.
final class ProxyProtocolHandler: ChannelInboundHandler, RemovableChannelHandler {
  typealias InboundIn = ByteBuffer
  typealias InboundOut = ByteBuffer

  private var buffered: ByteBuffer?
  private var done = false
  /// Called once with the client address (nil: a LOCAL/UNKNOWN header; keep the connection's own).
  private let onHeader: (ChannelHandlerContext, String?) throws -> Void
  private let onRefused: (String) -> Void

  init(onHeader: @escaping (ChannelHandlerContext, String?) throws -> Void, onRefused: @escaping (String) -> Void) {
    self.onHeader = onHeader
    self.onRefused = onRefused
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    guard !done else {
      context.fireChannelRead(data)
      return
    }
    var incoming = unwrapInboundIn(data)
    if var b = buffered {
      b.writeBuffer(&incoming)
      buffered = b
    } else {
      buffered = incoming
    }
    guard let bytes = buffered else { return }
    let result = bytes.withUnsafeReadableBytes { ProxyProtocol.parse($0) }
    switch result {
    case .needMoreData:
      return
    case .invalid(let reason):
      done = true
      buffered = nil
      onRefused(reason)
      context.close(promise: nil)
    case .header(let header, let length):
      done = true
      var rest = bytes
      rest.moveReaderIndex(forwardBy: length)
      buffered = nil
      do {
        try onHeader(context, header.sourceAddress)
      } catch {
        context.close(promise: nil)
        return
      }
      if rest.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(rest)) }
      context.pipeline.syncOperations.removeHandler(self, promise: nil)
    }
  }
}
