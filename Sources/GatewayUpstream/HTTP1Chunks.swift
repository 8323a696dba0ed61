import NIOCore

/// The chunked transfer coding (RFC 9112 §7.1) as both HTTP/1.1 legs write it: request bodies to an
/// upstream, re-framed response bodies to a client.
public enum HTTP1Chunks {
  /// Writes `buffer` as one chunk: size line, the bytes (not copied), CRLF. Nothing for an empty
  /// buffer, whose zero-size chunk would end the body.
  public static func write(_ buffer: ByteBuffer, to context: ChannelHandlerContext) {
    guard buffer.readableBytes > 0 else { return }
    var size = context.channel.allocator.buffer(capacity: 18)
    size.writeString(String(buffer.readableBytes, radix: 16))
    size.writeStaticString("\r\n")
    context.write(NIOAny(size), promise: nil)
    context.write(NIOAny(buffer), promise: nil)
    context.write(NIOAny(crlf), promise: nil)
  }

  /// The last chunk and the empty trailer section.
  public static let end = ByteBuffer(staticString: "0\r\n\r\n")
  private static let crlf = ByteBuffer(staticString: "\r\n")
}
