import GatewayUpstream
import NIOCore
import NIOHTTP1

/// Serialises the HTTP/1.1 responses of one client connection straight into `ByteBuffer`s: status
/// line and fields as they are produced (no `HTTPHeaders`, no encoder handler), then the body with
/// the framing the head announced.
///
/// Framing follows RFC 9112 §6 the way NIO's `HTTPResponseEncoder` applies it: a status that
/// cannot have a body (1xx, 204, 304) loses `Content-Length`/`Transfer-Encoding`; a body without
/// `Content-Length` is chunked for HTTP/1.1 and close-delimited for HTTP/1.0; the answer to a HEAD
/// keeps its framing fields but carries no body bytes.
struct HTTP1ResponseWriter {
  /// The body of the response in progress is sent in chunks.
  private var chunked = false
  /// The response in progress answers a HEAD: body bytes are dropped.
  private var suppressBody = false
  /// A finished head not yet written: it goes out with the first body part, copied in behind it
  /// when the head's buffer has room, so a small response is one write and one TLS record instead
  /// of three (head, body, and the end marker).
  private var held: ByteBuffer?

  /// A response head under construction.
  struct Head {
    fileprivate var buffer: ByteBuffer
    fileprivate let bodyless: Bool
    fileprivate var sawContentLength = false

    /// Adds a field (names and values as given: both come from validated or gateway-made text).
    mutating func add(_ name: String, _ value: String) {
      if name.utf8.count == 14 && equalsIgnoringCase(name, "content-length") {
        if bodyless { return }
        sawContentLength = true
      }
      buffer.writeString(name)
      buffer.writeStaticString(": ")
      buffer.writeString(value)
      buffer.writeStaticString("\r\n")
    }
  }

  /// Starts a response head: the status line.
  func beginHead(version: HTTPVersion, status: HTTPResponseStatus, allocator: ByteBufferAllocator, capacity: Int = 512) -> Head {
    var buffer = allocator.buffer(capacity: capacity)
    if version.major == 1 && version.minor == 1 && status == .ok {
      buffer.writeStaticString("HTTP/1.1 200 OK\r\n")
    } else {
      buffer.writeStaticString(version.minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ")
      buffer.writeString(String(status.code))
      buffer.writeInteger(UInt8(ascii: " "))
      buffer.writeString(status.reasonPhrase)
      buffer.writeStaticString("\r\n")
    }
    return Head(buffer: buffer, bodyless: !status.mayHaveResponseBody)
  }

  /// Ends a head and fixes the body's framing. `closeDelimited` is true when the body can only end
  /// with the connection (HTTP/1.0 without `Content-Length`): the head then says `Connection: close`
  /// (unless `closing` says the caller already added it) and the caller must close after the body.
  /// `informational`: a 1xx that another head follows (or a 101), leaving the framing state alone.
  mutating func finishHead(
    _ head: inout Head, version: HTTPVersion, requestMethod: HTTPMethod, informational: Bool = false,
    closing: Bool = false
  ) -> (bytes: ByteBuffer, closeDelimited: Bool) {
    var closeDelimited = false
    var isChunked = false
    if !head.bodyless && !head.sawContentLength {
      if version.major == 1 && version.minor >= 1 {
        head.buffer.writeStaticString("Transfer-Encoding: chunked\r\n")
        isChunked = true
      } else if requestMethod != .HEAD {
        closeDelimited = true
      }
    }
    if closeDelimited && !closing { head.buffer.writeStaticString("Connection: close\r\n") }
    head.buffer.writeStaticString("\r\n")
    if !informational {
      suppressBody = requestMethod == .HEAD
      chunked = isChunked && !suppressBody
    }
    return (head.buffer, closeDelimited)
  }

  /// Keeps a finished head (from ``finishHead(_:version:requestMethod:informational:closing:)``)
  /// to be written with the first body part, or by ``writeHeld(context:)``/``writeEnd(context:promise:)``.
  /// Give the head room for a small body when beginning it.
  mutating func hold(_ head: ByteBuffer) {
    held = head
  }

  /// Writes the held head, if any (before a flush, so a head never waits for its body).
  mutating func writeHeld(context: ChannelHandlerContext) {
    guard let head = held else { return }
    held = nil
    context.write(NIOAny(head), promise: nil)
  }

  /// Writes a part of the body (nothing for a HEAD; empty parts are skipped so they cannot end a
  /// chunked body).
  mutating func writeBody(_ buffer: ByteBuffer, context: ChannelHandlerContext) {
    guard !suppressBody else { return }
    if var head = held {
      held = nil
      if !chunked && head.writableBytes >= buffer.readableBytes {
        head.writeImmutableBuffer(buffer)
        context.write(NIOAny(head), promise: nil)
        return
      }
      context.write(NIOAny(head), promise: nil)
    }
    guard chunked else {
      context.write(NIOAny(buffer), promise: nil)
      return
    }
    HTTP1Chunks.write(buffer, to: context)
  }

  /// Ends the body (the last chunk, when chunked). `promise` completes once everything before it
  /// is written.
  mutating func writeEnd(context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
    writeHeld(context: context)
    if chunked {
      context.write(NIOAny(HTTP1Chunks.end), promise: promise)
    } else if let promise {
      // Nothing left to frame: an empty write only to learn when everything before it is out.
      context.write(NIOAny(Self.empty), promise: promise)
    }
    chunked = false
    suppressBody = false
  }

  private static let empty = ByteBuffer()
}
