import NIOCore
import NIOHTTP1

/// A request head already serialised as HTTP/1.1, ready for an upstream socket.
///
/// The exchange builds it once from the client's request (``UpstreamHeadWriter``) and the upstream
/// connection writes the bytes as they are: no `HTTPHeaders` of `String`s and no encoder handler
/// on the upstream leg. A retry on another connection writes the same bytes again.
public struct UpstreamRequestHead: Sendable {
  public var method: HTTPMethod
  /// `METHOD target HTTP/1.1\r\n`, the fields, and the blank line.
  public var bytes: ByteBuffer
  /// The body is sent with `Transfer-Encoding: chunked` (the writer added that field).
  public var chunked: Bool
  /// The request asks to switch protocols (`Connection: Upgrade`). Whatever the answer, the
  /// connection is never pooled after it (see ``UpstreamConnection/start(_:delegate:hasBody:)``).
  public var upgrade: Bool

  public init(method: HTTPMethod, bytes: ByteBuffer, chunked: Bool, upgrade: Bool = false) {
    self.method = method
    self.bytes = bytes
    self.chunked = chunked
    self.upgrade = upgrade
  }
}

/// Writes an HTTP/1.1 request head field by field into one buffer.
///
/// Names and values are written as given: the request side has already refused CR, LF and NUL in
/// client fields (NIOHTTP1 and NIOHTTP2 validate them), and the gateway's own values are made of
/// safe characters.
public struct UpstreamHeadWriter {
  private var buffer: ByteBuffer
  private let method: HTTPMethod
  private var chunked = false

  public init(method: HTTPMethod, target: String, capacity: Int, allocator: ByteBufferAllocator) {
    self.method = method
    buffer = allocator.buffer(capacity: capacity)
    buffer.writeString(method.rawValue)
    buffer.writeInteger(UInt8(ascii: " "))
    buffer.writeString(target)
    buffer.writeStaticString(" HTTP/1.1\r\n")
  }

  public mutating func add(name: String, value: String) {
    buffer.writeString(name)
    buffer.writeStaticString(": ")
    buffer.writeString(value)
    buffer.writeStaticString("\r\n")
  }

  /// `Transfer-Encoding: chunked`: the connection frames the body in chunks.
  public mutating func addChunkedFraming() {
    buffer.writeStaticString("Transfer-Encoding: chunked\r\n")
    chunked = true
  }

  /// Ends the head (the blank line). `mutating`, not `consuming`: consuming a `var` the caller
  /// still holds copied the buffer's storage (a second allocation per request).
  public mutating func finish() -> UpstreamRequestHead {
    buffer.writeStaticString("\r\n")
    return UpstreamRequestHead(method: method, bytes: buffer, chunked: chunked)
  }
}
