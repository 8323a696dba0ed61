import GatewayCore
import GatewayObservability
import GatewayUpstream
import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2

/// Extended CONNECT (RFC 8441): a WebSocket stream's upstream 101 checked and answered `:status 200`,
/// then the stream as a tunnel to the upstream socket (``HTTP2StreamTunnel``), with the stream's
/// window given back as the upstream takes the bytes.
extension HTTP2ServerHandler {
  /// The upstream switched protocols. For an extended CONNECT whose 101 checked out, the stream
  /// answers `:status 200` and becomes a tunnel to the upstream socket; anything else is cut (an
  /// ordinary HTTP/2 request never asks for an upgrade).
  func exchangeUpgraded(_ exchange: Exchange, connection upstream: UpstreamConnection) {
    let id = HTTP2StreamID(exchange.streamID)
    guard let context, let s = streams[id], s.websocketAccept != nil, let headers = s.machine.response.heldHeaders,
      let upstreamChannel = upstream.channel
    else {
      upstream.cancel()
      if let s = streams[id], s.machine.response.heldHeaders == nil, s.websocketAccept != nil {
        sendRefusal(id, GatewayRefusal.upstreamError.with(message: "The upstream's WebSocket handshake is invalid."), method: .GET)
      } else {
        reset(id, .internalError)
      }
      return
    }
    let tunnel = HTTP2StreamTunnel(client: self, streamID: id, sweeper: loop.sweeper, idleTimeout: loop.settings.idleTimeout)
    do {
      try upstreamChannel.pipeline.syncOperations.addHandler(tunnel)
    } catch {
      upstream.cancel()
      reset(id, .internalError)
      return
    }
    guard upstream.detachForTunnel() != nil else {
      upstreamChannel.close(promise: nil)
      reset(id, .internalError)
      return
    }
    context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .headers(.init(headers: headers, endStream: false)))), promise: nil)
    _ = s.machine.response.takeHeaders()
    s.tunnel = tunnel
    let early = s.earlyData
    s.earlyData = []
    for buffer in early { tunnel.send(buffer) }
    if !s.machine.stopsRequestAfterResponse { tunnel.finishOutput() }
    // Bytes that came with the 101 reach the tunnel from the decoder's removal task (Tunnel.swift).
    upstreamChannel.read()
    context.flush()
  }

  /// The upstream's 101 for an extended CONNECT: checked, and turned into the stream's `:status 200`
  /// (held until the tunnel is up, in `exchangeUpgraded`).
  func websocketAccepted(_ id: HTTP2StreamID, head: HTTPResponseHead, expectedAccept: String, requestID: String) {
    guard let s = streams[id] else { return }
    guard head.headers.first(name: "Sec-WebSocket-Accept") == expectedAccept else {
      // Left without headers: exchangeUpgraded answers 502 upstream_error.
      return
    }
    // Connection and Upgrade are hop-by-hop (dropped); the accept is between gateway and upstream.
    let headers = HTTP2Responses.forwarded(
      status: "200", from: head.headers, requestID: requestID, allowOrigin: nil, varyOrigin: false,
      dropping: "sec-websocket-accept")
    if let exchange = s.exchange { loop.forwardedHead(&s.request, status: 200, exchange: exchange) }
    s.machine.response.head(headers)
  }

  // MARK: extended CONNECT tunnels

  /// Client DATA on a WebSocket stream: to the upstream once the tunnel is up (held before), with
  /// the stream's window given back as the upstream socket takes the bytes.
  func tunnelData(_ id: HTTP2StreamID, _ data: HTTP2Frame.FramePayload.Data, state s: StreamState) {
    var bytes = 0
    if case .byteBuffer(let buffer) = data.data, buffer.readableBytes > 0 {
      bytes = buffer.readableBytes
      s.request.bodyBytes += bytes
      if let tunnel = s.tunnel {
        tunnel.send(buffer)
      } else {
        s.earlyData.append(buffer)
      }
    }
    if s.machine.tunnelData(bytes: bytes, endStream: data.endStream) { s.tunnel?.finishOutput() }
    creditTunnel(id)
  }

  func creditTunnel(_ id: HTTP2StreamID) {
    guard let context, let s = streams[id], let increment = s.machine.tunnelCredit(writable: s.tunnel?.isWritable ?? false) else { return }
    context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .windowUpdate(windowSizeIncrement: increment))), promise: nil)
    if !inReadCycle { context.flush() }
  }

  /// Upstream bytes for the stream.
  func tunnelReceived(_ id: HTTP2StreamID, _ buffer: ByteBuffer) {
    guard let context, let s = streams[id], !s.responseDone else { return }
    writeData(buffer, id: id, state: s, context: context)
    context.flush()
  }

  /// The upstream socket can take more: give the client back its window.
  func tunnelWritable(_ id: HTTP2StreamID) { creditTunnel(id) }

  /// The upstream closed: the stream ends (and is reset if the client is still sending).
  func tunnelClosed(_ id: HTTP2StreamID) {
    guard let context, let s = streams[id], !s.responseDone else { return }
    s.machine.response.finish()
    s.tunnel = nil
    let empty = context.channel.allocator.buffer(capacity: 0)
    writeLast(HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(empty), endStream: true))), id: id, context: context)
    context.flush()
  }
}
