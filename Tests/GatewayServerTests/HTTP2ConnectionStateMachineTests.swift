import NIOHTTP2
import Testing

@testable import GatewayServer

/// Every transition of ``HTTP2ConnectionStateMachine``: active → draining → closing, the idle
/// close, and the lingering close after a connection error.
@Suite("HTTP/2 connection lifecycle state machine: drain, idle, connection errors")
struct HTTP2ConnectionStateMachineTests {
  typealias Machine = HTTP2ConnectionStateMachine

  @Test("Idle: with no stream open and the idle deadline passed, GOAWAY(maxID) and close; a stream in flight keeps it open")
  func idleClose() {
    var m = Machine()
    #expect(m.isIdle)
    let r1 = m.tick(draining: false, openStreams: 0, idleExpired: false)
    #expect(r1 == .none)
    m.streamOpened(HTTP2StreamID(1))
    #expect(!m.isIdle)
    let r2 = m.tick(draining: false, openStreams: 1, idleExpired: true)
    #expect(r2 == .none)
    let r3 = m.streamClosed(openStreams: 0)
    #expect(r3)
    #expect(m.isIdle)
    let r4 = m.tick(draining: false, openStreams: 0, idleExpired: true)
    #expect(r4 == .goAwayAndClose(lastStreamID: .maxID))
    #expect(m.state == .closing)
    let r5 = m.tick(draining: false, openStreams: 0, idleExpired: true)
    #expect(r5 == .none)  // once
  }

  @Test("Drain with streams in flight: GOAWAY(lastStreamID) at once, then, when the last stream ends, GOAWAY again and close")
  func drainWithStreams() {
    var m = Machine()
    m.streamOpened(HTTP2StreamID(1))
    m.streamOpened(HTTP2StreamID(7))
    m.streamOpened(HTTP2StreamID(3))  // a lower id does not lower lastStreamID
    #expect(m.lastStreamID == HTTP2StreamID(7))
    let r6 = m.tick(draining: true, openStreams: 3, idleExpired: false)
    #expect(r6 == .sendGoAway(lastStreamID: HTTP2StreamID(7)))
    #expect(m.state == .draining)
    let r7 = m.tick(draining: true, openStreams: 2, idleExpired: false)
    #expect(r7 == .none)
    let r8 = m.streamClosed(openStreams: 0)
    #expect(!r8)  // draining: no idle timer
    let r9 = m.tick(draining: true, openStreams: 0, idleExpired: false)
    #expect(r9 == .goAwayAndClose(lastStreamID: HTTP2StreamID(7)))
    #expect(m.state == .closing)
  }

  @Test("Drain of an idle connection: one GOAWAY and close at the first tick")
  func drainIdle() {
    var m = Machine()
    let r10 = m.tick(draining: true, openStreams: 0, idleExpired: false)
    #expect(r10 == .goAwayAndClose(lastStreamID: HTTP2StreamID(0)))
  }

  @Test(
    "Errors: stream and protocol errors keep the connection; a frame after END_STREAM is GOAWAY(STREAM_CLOSED) and a lingering close; others close",
    arguments: [
      (Machine.ErrorKind.stream, Machine.ErrorAction.ignore), (.protocolError, .ignore), (.other, .close),
      (.frameAfterEndStream, .goAwayStreamClosedAndLinger(lastStreamID: HTTP2StreamID(5))),
    ])
  func errors(_ kind: Machine.ErrorKind, _ expected: Machine.ErrorAction) {
    var m = Machine()
    m.streamOpened(HTTP2StreamID(5))
    let r11 = m.errorCaught(kind)
    #expect(r11 == expected)
    #expect(m.acceptsFrames == (expected != .goAwayStreamClosedAndLinger(lastStreamID: HTTP2StreamID(5))))
  }

  @Test("After NIOHTTP2 wrote an error GOAWAY, any error lingers (once); the gateway's own NO_ERROR GOAWAYs do not count")
  func connectionErrorLingers() {
    var m = Machine()
    m.wroteGoAway(errorCode: .noError)
    let r12 = m.errorCaught(.protocolError)
    #expect(r12 == .ignore)
    m.wroteGoAway(errorCode: .enhanceYourCalm)
    let r13 = m.errorCaught(.protocolError)
    #expect(r13 == .linger)
    #expect(!m.acceptsFrames)
    let r14 = m.errorCaught(.other)
    #expect(r14 == .ignore)  // already lingering
    let r15 = m.tick(draining: true, openStreams: 0, idleExpired: true)
    #expect(r15 == .none)
  }
}
