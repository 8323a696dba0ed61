import GatewayUpstream
import NIOCore
import NIOHTTP1

/// NIO's HTTP/1 request parser, telling the HTTP/1.1 handler when bytes arrive so it can start the
/// header timer on a request's first byte (slowloris, §4 `client_header_timeout_s`).
///
/// A wrapper rather than a handler of its own in front of the parser: one pipeline hop less for
/// every read and every read-complete.
///
/// It also restarts the parser after an upgrade that did not happen: NIO's parser stops for good
/// after a request with `Connection: Upgrade` (the bytes after it are the new protocol's), so when
/// the upgrade is refused or answered without a 101, a fresh parser takes over the bytes that
/// follow and the connection goes on as HTTP/1.1.
struct ClientRequestDecoder: ByteToMessageDecoder {
  typealias InboundOut = HTTPServerRequestPart
  private var parser: HTTPRequestDecoder
  private let limits: NIOHTTPDecoderLimitConfiguration
  private weak var handler: BackReference<HTTP1ServerHandler>?

  init(limits: NIOHTTPDecoderLimitConfiguration, handler: HTTP1ServerHandler) {
    self.limits = limits
    parser = HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes, limitConfiguration: limits)
    self.handler = handler.backReference
  }

  mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
    guard let handler = handler?.target else { return try parser.decode(context: context, buffer: &buffer) }
    // Before parsing: the parts parsed from these bytes reach the handler within this call.
    handler.requestBytesArrived()
    if handler.parserNeedsFreshStart { restart(context: context, handler: handler) }
    handler.decoding = true
    defer { handler.decoding = false }
    let state: DecodingState
    do {
      state = try parser.decode(context: context, buffer: &buffer)
    } catch {
      // Only on a refusal: the bytes are still there (the parser moves past them on success only).
      handler.unparsedRequestLine = RequestLinePeek.read(buffer)
      throw error
    }
    // The upgrade was settled while these bytes were parsed (a refusal answers at once): go on
    // with the bytes behind it.
    if handler.parserNeedsFreshStart && buffer.readableBytes > 0 {
      restart(context: context, handler: handler)
      return .continue
    }
    return state
  }

  private mutating func restart(context: ChannelHandlerContext, handler: HTTP1ServerHandler) {
    handler.parserNeedsFreshStart = false
    parser.decoderRemoved(context: context)
    parser = HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes, limitConfiguration: limits)
    parser.decoderAdded(context: context)
  }

  mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
    try parser.decodeLast(context: context, buffer: &buffer, seenEOF: seenEOF)
  }

  mutating func decoderAdded(context: ChannelHandlerContext) { parser.decoderAdded(context: context) }
  mutating func decoderRemoved(context: ChannelHandlerContext) { parser.decoderRemoved(context: context) }
  func shouldReclaimBytes(buffer: ByteBuffer) -> Bool { parser.shouldReclaimBytes(buffer: buffer) }
}

/// The method and target of a request line the parser refused, read from the raw bytes for the
/// access log: a token, a space, the target up to the next space or line end (the log drops its query).
enum RequestLinePeek {
  static func read(_ buffer: ByteBuffer) -> (method: String, target: String)? {
    buffer.withUnsafeReadableBytes { bytes -> (method: String, target: String)? in
      let limit = min(bytes.count, 8192 + 32)
      var i = 0
      while i < limit, i < 32, Self.isToken(bytes[i]) { i += 1 }
      guard i > 0, i < limit, bytes[i] == UInt8(ascii: " ") else { return nil }
      let method = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[0..<i]), as: UTF8.self)
      let start = i + 1
      var j = start
      while j < limit, bytes[j] != 0x20, bytes[j] != 0x0D, bytes[j] != 0x0A { j += 1 }
      guard j > start else { return (method, "") }
      return (method, String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<j]), as: UTF8.self))
    }
  }

  static func isToken(_ b: UInt8) -> Bool {
    (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || "!#$%&'*+-.^_`|~".utf8.contains(b)
  }
}
