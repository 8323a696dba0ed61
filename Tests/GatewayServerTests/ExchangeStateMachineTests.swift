import GatewayCore
import GatewayUpstream
import Testing

@testable import GatewayServer

/// ``ExchangeStateMachine``: one proxied request's phases, body queueing and credit, retries and
/// how failures are answered, with no pool, connection or client.
@Suite("Exchange state machine: phases, body credit, retries, answers")
struct ExchangeStateMachineTests {
  static func get(retries: Int = 1) -> ExchangeStateMachine {
    var m = ExchangeStateMachine(idempotent: true, hasBody: false, retries: retries)
    _ = m.start(endpointAvailable: true)
    return m
  }

  @Test("No endpoint to pick: 503 upstream_unavailable at once, the exchange is over")
  func noEndpoint() {
    var m = ExchangeStateMachine(idempotent: true, hasBody: false, retries: 2)
    let answer = m.start(endpointAvailable: false)
    #expect(answer == .refuse(.upstreamUnavailable))
    #expect(m.finished && m.status == 503 && m.failure == .noHealthyEndpoint)
    let ready = m.connectionReady()
    #expect(ready == .returnUnused, "a connection that turns up later goes back unused")
  }

  @Test("A GET: connection ready, head, body, end; nothing after the end gets through")
  func happyPath() {
    var m = Self.get()
    let ready = m.connectionReady()
    #expect(ready == .start(flush: false))
    #expect(!m.finishesOnStart, "a request without a body is finished by its head")
    let head = m.responseHead(status: 200)
    #expect(head && m.responseStarted && m.status == 200)
    #expect(m.responseBody())
    let end = m.responseEnd()
    #expect(end && m.finished)
    let late = [m.responseEnd(), m.responseHead(status: 500), m.cancel()]
    #expect(late == [false, false, false])
    #expect(!m.responseBody())
  }

  @Test("Body before a connection is queued, the client paused past 256 KiB; on connect it is flushed and credited, and the request finished if it had ended")
  func queuedBody() {
    var m = ExchangeStateMachine(idempotent: false, hasBody: true, retries: 0)
    _ = m.start(endpointAvailable: true)
    let chunk = 100 * 1024
    let actions = [m.requestBody(chunk, connected: false), m.requestBody(chunk, connected: false), m.requestBody(chunk, connected: false)]
    #expect(actions == [.queue(pauseClient: false), .queue(pauseClient: false), .queue(pauseClient: true)])
    let ended = m.requestEnd()
    #expect(ended)
    let ready = m.connectionReady()
    #expect(ready == .start(flush: true))
    let flushed = m.flushed(writable: true)
    #expect(flushed == .credit(3 * chunk))
    #expect(m.bodyBytesSent == 3 * chunk && m.pendingBytes == 0)
    #expect(m.finishesOnStart)
  }

  @Test("Body on a full upstream socket pauses the client; the credit owed is given back once it drains")
  func credit() {
    var m = ExchangeStateMachine(idempotent: false, hasBody: true, retries: 0)
    _ = m.start(endpointAvailable: true)
    _ = m.connectionReady()
    let action = m.requestBody(10, connected: true)
    #expect(action == .send)
    let sent = [m.bodySent(10, writable: false), m.bodySent(20, writable: false), m.bodySent(5, writable: true)]
    #expect(sent == [.pauseClient, .pauseClient, .credit(35)], "a writable send carries what was owed")
    _ = m.bodySent(7, writable: false)
    let drained = [m.upstreamWritable(), m.upstreamWritable()]
    #expect(drained == [7, nil])
    #expect(m.bodyBytesSent == 42)
  }

  @Test("A refused connect: a GET goes to another endpoint (counted against this one); a full pool does not count; out of retries it is 503")
  func connectFailures() {
    var m = Self.get(retries: 1)
    let first = m.connectionFailed(.connectFailed, budgetAvailable: true)
    #expect(first.action == .retryAnotherEndpoint && first.countsAgainstEndpoint)
    m.retrying(anotherEndpoint: true)
    #expect(m.attempts == 2 && m.retriesLeft == 0)
    let second = m.connectionFailed(.poolExhausted, budgetAvailable: true)
    #expect(second.action == .answer(.refuse(.upstreamUnavailable)))
    #expect(!second.countsAgainstEndpoint, "a full pool says nothing about the endpoint")
    #expect(m.finished && m.status == 503)
  }

  @Test("A reset on a reused keep-alive connection: once more on the same endpoint, fresh, not counted against it")
  func staleConnection() {
    var m = Self.get(retries: 0)
    _ = m.connectionReady()
    let failed = m.exchangeFailed(.reset, responseStarted: false, reused: true, budgetAvailable: false)
    #expect(failed.action == .retrySameEndpoint && !failed.countsAgainstEndpoint)
    m.retrying(anotherEndpoint: false)
    #expect(m.attempts == 2 && m.retriesLeft == 0)
    _ = m.connectionReady()
    let again = m.exchangeFailed(.reset, responseStarted: false, reused: true, budgetAvailable: false)
    #expect(again.action == .answer(.refuse(.upstreamError)), "only the first attempt is retried that way")
    #expect(again.countsAgainstEndpoint)
  }

  @Test("A POST whose body was sent is never retried; a failure after the response head aborts and keeps the upstream's status")
  func noRetryAfterBytes() {
    var post = ExchangeStateMachine(idempotent: false, hasBody: true, retries: 3)
    _ = post.start(endpointAvailable: true)
    _ = post.connectionReady()
    _ = post.bodySent(100, writable: true)
    let failed = post.exchangeFailed(.reset, responseStarted: false, reused: true, budgetAvailable: true)
    #expect(failed.action == .answer(.refuse(.upstreamError)))
    var started = Self.get(retries: 3)
    _ = started.connectionReady()
    _ = started.responseHead(status: 200)
    let cut = started.exchangeFailed(.responseTimeout, responseStarted: true, reused: false, budgetAvailable: true)
    #expect(cut.action == .answer(.abort) && !cut.countsAgainstEndpoint)
    #expect(started.status == 200 && started.failure == .responseTimeout)
  }

  @Test("A cancelled exchange drops later body and connections, and a failure after it is ignored")
  func cancelled() {
    var m = Self.get()
    let cancelled = m.cancel()
    #expect(cancelled)
    let body = m.requestBody(10, connected: false)
    #expect(body == .drop)
    let ended = m.requestEnd()
    #expect(!ended, "nothing to finish on a connection")
    let failure = m.connectionFailed(.connectFailed, budgetAvailable: true)
    #expect(failure.action == .ignore && !failure.countsAgainstEndpoint)
    #expect(m.status == 0, "no answer was sent")
  }
}
