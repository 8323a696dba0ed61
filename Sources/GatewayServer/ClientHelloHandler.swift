import GatewayCore
import NIOCore
import NIOSSL
import NIOTLS

/// Reads the ClientHello's server name and ALPN list (``ClientHello``), lets the caller set up the
/// pipeline for them, then removes itself: the buffered bytes go on to the TLS handler the caller
/// added. The shape of NIOTLS's `SNIHandler`, with ALPN as well, which tls-alpn-01 needs.
final class ClientHelloHandler: ByteToMessageDecoder {
  typealias InboundIn = ByteBuffer
  typealias InboundOut = ByteBuffer

  private let completion: (_ serverName: String?, _ alpn: [String]) -> EventLoopFuture<Void>
  private var waiting = false

  init(completion: @escaping (_ serverName: String?, _ alpn: [String]) -> EventLoopFuture<Void>) {
    self.completion = completion
  }

  func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) -> DecodingState {
    // Once the caller is setting up the pipeline, hold the bytes until this handler is removed.
    guard !waiting else { return .needMoreData }
    let parsed = buffer.withUnsafeReadableBytes { ClientHello.parse($0) }
    switch parsed {
    case .needMore:
      // A ClientHello is bounded (ClientHello.maxLength); more is not one.
      if buffer.readableBytes > ClientHello.maxLength + 5 * 8 { complete(nil, [], context: context) }
    case .notClientHello:
      // The TLS stack refuses it as it would have (with the default certificate's context).
      complete(nil, [], context: context)
    case .hello(let name, let alpn):
      complete(name, alpn, context: context)
    }
    return .needMoreData
  }

  /// On removal: the held bytes (the ClientHello and anything after it) go on to the TLS handler.
  func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) -> DecodingState {
    if buffer.readableBytes > 0 {
      let held = buffer.readSlice(length: buffer.readableBytes)!
      context.fireChannelRead(NIOAny(held))
    }
    return .needMoreData
  }

  private func complete(_ name: String?, _ alpn: [String], context: ChannelHandlerContext) {
    waiting = true
    let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
    completion(name, alpn).hop(to: context.eventLoop).whenComplete { result in
      let context = bound.value
      switch result {
      case .success: context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
      case .failure: context.close(promise: nil)
      }
    }
  }
}

/// Closes a tls-alpn-01 validation connection once its handshake is done: the CA has read the
/// certificate, and nothing may follow on it (RFC 8737 §3; it never reaches HTTP).
final class CloseAfterHandshake: ChannelInboundHandler, RemovableChannelHandler {
  typealias InboundIn = ByteBuffer
  private let onDone: () -> Void

  init(onDone: @escaping () -> Void) { self.onDone = onDone }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    if let tls = event as? TLSUserEvent, case .handshakeCompleted = tls {
      onDone()
      context.close(promise: nil)
      return
    }
    context.fireUserInboundEventTriggered(event)
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    // Application data on a validation connection: nothing answers it.
    context.close(promise: nil)
  }

  func errorCaught(context: ChannelHandlerContext, error: Error) {
    context.close(promise: nil)
  }
}
