import NIOCore
import NIOHPACK
import Testing

@testable import GatewayServer

/// ``HTTP2ResponseFraming`` (END_STREAM folded into the last frame) and ``HTTP2FlowControl``.
@Suite("HTTP/2 stream: response framing and flow-control decisions (pure)")
struct HTTP2StreamFlowTests {
  static let head = HPACKHeaders([(":status", "200")])
  static func bytes(_ s: String) -> ByteBuffer { ByteBuffer(string: s) }

  @Test("A head alone ends as one HEADERS frame with END_STREAM")
  func headOnly() {
    var f = HTTP2ResponseFraming()
    f.head(Self.head)
    let (headers, last) = f.end()
    #expect(headers == nil)
    #expect(last == .headers(Self.head))
    #expect(f.done)
  }

  @Test("A body: the head goes out at the first part, each part is held until the next, the last carries END_STREAM")
  func streamedBody() {
    var f = HTTP2ResponseFraming()
    f.head(Self.head)
    let first = f.body(Self.bytes("a"))
    #expect(first == .init(headers: Self.head, data: nil))
    let second = f.body(Self.bytes("b"))
    #expect(second == .init(headers: nil, data: Self.bytes("a")))
    let (headers, last) = f.end()
    #expect(headers == nil)
    #expect(last == .data(Self.bytes("b")))
  }

  @Test("One part and the end: HEADERS at the part, then DATA with END_STREAM; a part with no head first (never from an exchange) ends the same")
  func onePart() {
    var f = HTTP2ResponseFraming()
    f.head(Self.head)
    let out = f.body(Self.bytes("x"))
    #expect(out.headers == Self.head && out.data == nil)
    let (headers, last) = f.end()
    #expect(headers == nil)
    #expect(last == .data(Self.bytes("x")))
  }

  @Test("A flush puts what is held on the wire; after the end (or a refusal) it writes nothing")
  func flush() {
    var f = HTTP2ResponseFraming()
    f.head(Self.head)
    _ = f.body(Self.bytes("x"))
    let flushed = f.flush()
    #expect(flushed == .init(headers: nil, data: Self.bytes("x")))
    var h = HTTP2ResponseFraming()
    h.head(Self.head)
    let headOnly = h.flush()  // a streaming response's head, before any body
    #expect(headOnly == .init(headers: Self.head, data: nil))
    let (_, last) = f.end()
    #expect(last == .emptyData)
    var g = HTTP2ResponseFraming()
    g.head(Self.head)
    g.finish()
    let nothing = g.flush()
    #expect(nothing == .nothing)
    #expect(g.heldHeaders == nil)
  }

  @Test("Flow control: window updates in batches, never after END_STREAM; the connection's at half the window; padding counts")
  func flowControl() {
    #expect(HTTP2FlowControl.streamWindowUpdate(uncredited: 16383, requestEnded: false) == nil)
    #expect(HTTP2FlowControl.streamWindowUpdate(uncredited: 16384, requestEnded: false) == 16384)
    #expect(HTTP2FlowControl.streamWindowUpdate(uncredited: 70000, requestEnded: true) == nil)
    #expect(HTTP2FlowControl.connectionWindowUpdate(credit: HTTP2FlowControl.connectionWindow / 2 - 1) == nil)
    #expect(HTTP2FlowControl.connectionWindowUpdate(credit: HTTP2FlowControl.connectionWindow / 2) == HTTP2FlowControl.connectionWindow / 2)
    #expect(HTTP2FlowControl.flowControlledLength(dataBytes: 100, padding: nil) == 100)
    #expect(HTTP2FlowControl.flowControlledLength(dataBytes: 100, padding: 0) == 101)
    #expect(HTTP2FlowControl.flowControlledLength(dataBytes: 100, padding: 7) == 108)
  }

  @Test("Response backpressure has hysteresis: pause above 512 KiB, resume below 128 KiB, not in between")
  func backpressure() {
    #expect(!HTTP2FlowControl.shouldPause(outstanding: 512 * 1024, paused: false))
    #expect(HTTP2FlowControl.shouldPause(outstanding: 512 * 1024 + 1, paused: false))
    #expect(!HTTP2FlowControl.shouldPause(outstanding: 600 * 1024, paused: true))
    #expect(!HTTP2FlowControl.shouldResume(outstanding: 200 * 1024, paused: true))
    #expect(HTTP2FlowControl.shouldResume(outstanding: 128 * 1024 - 1, paused: true))
    #expect(!HTTP2FlowControl.shouldResume(outstanding: 0, paused: false))
  }
}
