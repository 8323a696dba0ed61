import NIOCore
import NIOHTTP1
import Testing

@testable import GatewayServer

/// Every transition of ``HTTP1ConnectionStateMachine``, without a channel.
@Suite("HTTP/1.1 connection state machine: parts, timers, keep-alive, pipelining, reads, drain")
struct HTTP1ConnectionStateMachineTests {
  final class Answer {}
  typealias Machine = HTTP1ConnectionStateMachine<Answer>

  static let head = HTTPServerRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/"))
  static let end = HTTPServerRequestPart.end(nil)

  /// A connection with one forwarded request whose head has arrived.
  func forwarded(keepAlive: Bool = true, hasBody: Bool = false) -> (Machine, Answer) {
    var m = Machine()
    _ = m.requestBytesArrived()
    m.headReceived(keepAlive: keepAlive)
    let a = Answer()
    _ = m.forwarding(a, hasBody: hasBody)
    return (m, a)
  }

  @Test("A keep-alive exchange: idle → header timer on the first byte → head (no timer) → forwarded → end → finish → idle again")
  func keepAliveExchange() {
    var m = Machine()
    #expect(m.timer == .idle)
    let r1 = m.requestBytesArrived()
    #expect(r1 == .header)
    let r2 = m.requestBytesArrived()
    #expect(r2 == nil)  // the same request's later bytes
    let r3 = m.partArrived(Self.head)
    #expect(r3 == .process)
    m.headReceived(keepAlive: true)
    #expect(m.timer == .off)
    #expect(m.responseInProgress && m.requestInProgress)
    let a = Answer()
    let r4 = m.forwarding(a, hasBody: false)
    #expect(r4 == nil)
    #expect(m.answer === a)
    let r5 = m.requestEnded()
    #expect(r5 == .forward)
    #expect(m.awaitingResponse)
    #expect(!m.isLastResponse)
    m.responseEnded()
    let r6 = m.finishResponse()
    #expect(r6 == .init(close: false, restartParser: false, resumeRead: false))
    #expect(m.request == .idle && m.timer == .idle && !m.closing && m.answer == nil)
    let r7 = m.requestBytesArrived()
    #expect(r7 == .header)
  }

  @Test("Connection: close (or HTTP/1.0 without keep-alive) makes the response the last, and the machine closes")
  func noKeepAlive() {
    var (m, _) = forwarded(keepAlive: false)
    #expect(m.isLastResponse)
    _ = m.requestEnded()
    let r8 = m.finishResponse()
    #expect(r8.close)
    #expect(m.closing)
    let r9 = m.partArrived(Self.head)
    #expect(r9 == .drop)
  }

  @Test("A body arms the body timer on every part; its end stops it")
  func bodyTimer() {
    var (m, _) = forwarded(hasBody: true)
    #expect(m.timer == .body)
    let r10 = m.bodyArrived()
    #expect(r10 == .body)
    let r11 = m.requestEnded()
    #expect(r11 == .forward)
    #expect(m.timer == .off)
    let r12 = m.bodyArrived()
    #expect(r12 == nil)  // after the end nothing re-arms it
  }

  @Test("An early response (the client still sending) ends the connection after it")
  func earlyResponse() {
    var (m, _) = forwarded(hasBody: true)
    m.responseHeadStarting()
    #expect(m.isLastResponse)
    m.responseEnded()
    let r13 = m.finishResponse()
    #expect(r13.close)
  }

  @Test("A refusal written while the request body still arrives: the rest is read, then the response finishes; with close, at once")
  func refusalWhileBodyArrives() {
    var m = Machine()
    m.headReceived(keepAlive: true)
    m.refusing(close: false)
    let r14 = m.answerWritten()
    #expect(!r14)
    #expect(!m.responseInProgress)
    let r15 = m.requestEnded()
    #expect(r15 == .finishResponse)
    let r16 = m.finishResponse()
    #expect(!r16.close)

    var c = Machine()
    c.headReceived(keepAlive: true)
    c.refusing(close: true)
    let r17 = c.answerWritten()
    #expect(r17)
    let r18 = c.finishResponse()
    #expect(r18.close)
  }

  @Test("An upstream refusal before the request ended closes after it; after the end it keeps the connection")
  func upstreamRefusal() {
    var (m, _) = forwarded(hasBody: true)
    m.upstreamRefused()
    let r19 = m.answerWritten()
    #expect(r19)
    let r20 = m.finishResponse()
    #expect(r20.close)

    var (k, _) = forwarded()
    _ = k.requestEnded()
    k.upstreamRefused()
    let r21 = k.answerWritten()
    #expect(r21)
    let r22 = k.finishResponse()
    #expect(!r22.close)
  }

  @Test("Pipelining: parts behind an unanswered request queue, reads are held, and after the response they run in order")
  func pipelining() {
    var (m, _) = forwarded()
    _ = m.requestEnded()
    let second = HTTPServerRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/2"))
    let r23 = m.partArrived(second)
    #expect(r23 == .queue)
    let r24 = m.partArrived(Self.end)
    #expect(r24 == .queue)
    let r25 = m.readRequested()
    #expect(!r25)
    #expect(m.pendingRead)
    let r26 = m.nextQueuedPart()
    #expect(r26 == nil)  // the response is still going out
    m.responseEnded()
    let r27 = m.finishResponse()
    #expect(!r27.close)
    guard case .head(let h)? = m.nextQueuedPart() else {
      Issue.record("the queued head comes first")
      return
    }
    #expect(h.uri == "/2")
    m.headReceived(keepAlive: true)
    _ = m.forwarding(Answer(), hasBody: false)
    guard case .end? = m.nextQueuedPart() else {
      Issue.record("then its end")
      return
    }
    _ = m.requestEnded()
    let r28 = m.nextQueuedPart()
    #expect(r28 == nil)
    let r29 = m.readAfterFinish()
    #expect(r29)  // the held read goes out once the queue is empty
    #expect(!m.pendingRead)
  }

  @Test("Backpressure holds reads and a stalled body is not the client's fault; released, the held read goes out")
  func backpressure() {
    var (m, _) = forwarded(hasBody: true)
    let r30 = m.setReadPaused(true)
    #expect(!r30)
    let r31 = m.readRequested()
    #expect(!r31)
    let r32 = m.deadlinePassed()
    #expect(r32 == .rearmBody)
    #expect(m.timer == .body)
    let r33 = m.setReadPaused(false)
    #expect(r33)
    let r34 = m.readRequested()
    #expect(r34)
    let r35 = m.deadlinePassed()
    #expect(r35 == .body)
  }

  @Test("Finishing a response releases backpressure and owes the held read")
  func finishReleasesBackpressure() {
    var (m, _) = forwarded(hasBody: true)
    _ = m.setReadPaused(true)
    _ = m.readRequested()
    _ = m.requestEnded()
    m.responseEnded()
    let r36 = m.finishResponse()
    #expect(r36 == .init(close: false, restartParser: false, resumeRead: true))
    #expect(!m.readPaused)
  }

  @Test(
    "Deadlines: idle closes, an incomplete head is a 408 and closes, a stalled body is a 408; a stopped timer does nothing",
    arguments: [Machine.Timer.idle, .header, .body, .off])
  func deadlines(_ timer: Machine.Timer) {
    var m = Machine()
    switch timer {
    case .idle: break
    case .header: _ = m.requestBytesArrived()
    case .body: (m, _) = forwarded(hasBody: true)
    case .off: (m, _) = forwarded()
    }
    let expected: Machine.Timeout? = [.idle: .idle, .header: .header, .body: .body, .off: nil][timer] ?? nil
    let r37 = m.deadlinePassed()
    #expect(r37 == expected)
    #expect(m.closing == (timer == .header))
    #expect(m.timer == .off)
  }

  @Test("An upgrade holds reads until it is answered; not taken, the parser restarts (unless the connection closes); taken, the machine ends")
  func upgrades() {
    var (m, _) = forwarded()
    m.upgradeRequested()
    let r38 = m.readRequested()
    #expect(!r38)
    _ = m.requestEnded()
    m.responseEnded()
    let r39 = m.finishResponse()
    #expect(r39 == .init(close: false, restartParser: true, resumeRead: false))
    #expect(!m.upgradePending)

    var c = forwarded(keepAlive: false).0
    c.upgradeRequested()
    _ = c.requestEnded()
    let r40 = c.finishResponse()
    #expect(r40 == .init(close: true, restartParser: false, resumeRead: false))

    var t = forwarded().0
    t.upgradeRequested()
    t.upgraded()
    #expect(t.closing && t.timer == .off && t.answer == nil && !t.upgradePending)
  }

  @Test("A drain closes an idle connection, spares a brand-new one for a moment, and lets a request in flight finish with Connection: close")
  func drain() {
    var fresh = Machine()
    let r41 = fresh.drain(young: true)
    #expect(!r41)
    let r42 = fresh.drain(young: false)
    #expect(r42)
    #expect(fresh.closing)

    var served = forwarded().0
    let r43 = served.drain(young: true)
    #expect(!r43)
    #expect(served.isLastResponse)
    _ = served.requestEnded()
    served.responseEnded()
    let r44 = served.finishResponse()
    #expect(r44.close)

    var idleAfterOne = forwarded().0
    _ = idleAfterOne.requestEnded()
    _ = idleAfterOne.finishResponse()
    let r45 = idleAfterOne.drain(young: true)
    #expect(r45)  // it has served a request: no grace
  }

  @Test("A parser refusal abandons the request, and its refusal closes the connection")
  func parserFailure() {
    var (m, _) = forwarded(hasBody: true)
    m.parserFailed()
    #expect(m.answer == nil)
    let r46 = m.answerWritten()
    #expect(r46)
    let r47 = m.finishResponse()
    #expect(r47.close)
  }

  @Test("A close-delimited response is the last")
  func closeDelimited() {
    var (m, _) = forwarded()
    m.responseIsCloseDelimited()
    #expect(m.isLastResponse)
  }

  @Test("A closed connection drops everything")
  func closed() {
    var (m, _) = forwarded()
    m.closed()
    #expect(m.answer == nil && m.closing && m.timer == .off)
    let r48 = m.partArrived(Self.head)
    #expect(r48 == .drop)
  }
}
