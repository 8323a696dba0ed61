import Testing

@testable import GatewayServer

/// ``HTTP2StreamStateMachine``: a stream's request end, body limit, window credit and response
/// backpressure, decided without a channel.
@Suite("HTTP/2 stream state machine: request end, body limit, credit, backpressure")
struct HTTP2StreamStateMachineTests {
  struct DataRow: CustomTestStringConvertible, Sendable {
    var name: String
    var endedBefore = false
    var bytes: Int
    var endStream = false
    var total: Int
    var forwarding = true
    var expected: HTTP2StreamStateMachine.DataAction
    var endedAfter: Bool
    var testDescription: String { name }
  }

  static let limit = 1000
  static let dataRows: [DataRow] = [
    DataRow(name: "body bytes go to the exchange", bytes: 100, total: 100, expected: .deliver(body: true, end: false), endedAfter: false),
    DataRow(name: "the last frame delivers and ends", bytes: 100, endStream: true, total: 200, expected: .deliver(body: true, end: true), endedAfter: true),
    DataRow(name: "an empty END_STREAM frame only ends", bytes: 0, endStream: true, total: 200, expected: .deliver(body: false, end: true), endedAfter: true),
    DataRow(name: "exactly the limit is allowed", bytes: 500, total: limit, expected: .deliver(body: true, end: false), endedAfter: false),
    DataRow(name: "one byte over the limit is too large", bytes: 1, total: limit + 1, expected: .tooLarge, endedAfter: false),
    DataRow(name: "over the limit with END_STREAM: too large, and the end is noted (no credit for an ended stream)", bytes: 10, endStream: true, total: limit + 10, expected: .tooLarge, endedAfter: true),
    DataRow(name: "no exchange taking bytes (refused, or answered in full): nothing delivered, never too large", bytes: 5000, total: 5000, forwarding: false, expected: .deliver(body: false, end: false), endedAfter: false),
    DataRow(name: "no exchange, END_STREAM: the end still counts", bytes: 10, endStream: true, total: 10, forwarding: false, expected: .deliver(body: false, end: true), endedAfter: true),
    DataRow(name: "END_STREAM again on an ended stream ends nothing twice", endedBefore: true, bytes: 0, endStream: true, total: 0, expected: .deliver(body: false, end: false), endedAfter: true),
  ]

  @Test("DATA on a request stream", arguments: dataRows)
  func data(_ row: DataRow) {
    var m = HTTP2StreamStateMachine(requestEnded: row.endedBefore)
    let action = m.requestData(bytes: row.bytes, endStream: row.endStream, total: row.total, limit: Self.limit, forwarding: row.forwarding)
    #expect(action == row.expected)
    #expect(m.requestEnded == row.endedAfter)
    #expect(m.stopsRequestAfterResponse == !row.endedAfter)
  }

  @Test("Trailers end the request once; trailers without END_STREAM end nothing")
  func trailers() {
    var m = HTTP2StreamStateMachine(requestEnded: false)
    // Each answer is taken before it is checked: #expect cannot hold a mutating call.
    let answers = [m.trailers(endStream: false), m.trailers(endStream: true), m.trailers(endStream: true)]
    #expect(answers == [false, true, false])
    #expect(m.requestEnded)
  }

  @Test("Request-body credit: batched at 16 KiB of what the upstream took, never after the client ended the stream")
  func credit() {
    var m = HTTP2StreamStateMachine(requestEnded: false)
    let updates = [m.upstreamConsumed(8192), m.upstreamConsumed(8191), m.upstreamConsumed(1)]
    #expect(updates == [nil, nil, 16384])
    #expect(m.uncredited == 0)
    let ending = m.requestData(bytes: 100, endStream: true, total: 100, limit: Self.limit, forwarding: true)
    #expect(ending == .deliver(body: true, end: true))
    let afterEnd = m.upstreamConsumed(20000)
    #expect(afterEnd == nil, "NIOHTTP2 would refuse a WINDOW_UPDATE for a half-closed stream")
  }

  @Test("Tunnel credit: given back when the upstream socket is writable, held while it is not, none once the client ended")
  func tunnel() {
    var m = HTTP2StreamStateMachine(requestEnded: false)
    let ends = [m.tunnelData(bytes: 300, endStream: false)]
    let blocked = m.tunnelCredit(writable: false)
    let moreEnds = [m.tunnelData(bytes: 200, endStream: false)]
    let credits = [m.tunnelCredit(writable: true), m.tunnelCredit(writable: true)]
    #expect(ends == [false] && moreEnds == [false])
    #expect(blocked == nil, "held while the upstream socket is not writable")
    #expect(credits == [500, nil], "what was held is given back once, not twice")
    let finished = m.tunnelData(bytes: 50, endStream: true)
    #expect(finished, "END_STREAM finishes the tunnel's output")
    let afterEnd = m.tunnelCredit(writable: true)
    #expect(afterEnd == nil)
  }

  @Test("Backpressure: the upstream read pauses once above 512 KiB outstanding, resumes below 128 KiB, each change once")
  func backpressure() {
    var m = HTTP2StreamStateMachine(requestEnded: true)
    let chunk = 64 * 1024
    var changes: [HTTP2StreamStateMachine.ReadChange] = []
    for _ in 0..<10 { if let c = m.wrote(chunk) { changes.append(c) } }
    #expect(changes == [.pause])
    #expect(m.upstreamPaused && m.outstanding == 10 * chunk)
    for _ in 0..<7 { if let c = m.written(chunk) { changes.append(c) } }
    #expect(changes == [.pause], "at 192 KiB still paused")
    for _ in 0..<3 { if let c = m.written(chunk) { changes.append(c) } }
    #expect(changes == [.pause, .resume])
    #expect(!m.upstreamPaused && m.outstanding == 0)
  }
}
