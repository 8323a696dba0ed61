import Testing

@testable import GatewayUpstream

/// ``RetryPolicy/decide(_:)`` as a table: idempotency, bytes sent, the budget, the same endpoint.
@Suite("Retry policy (pure): when a failed upstream attempt goes again, and where")
struct RetryPolicyTests {
  struct Row: CustomTestStringConvertible, Sendable {
    var name: String
    var attempt: RetryPolicy.Attempt
    var expected: RetryPolicy.Decision
    var testDescription: String { name }
  }

  static func a(
    _ failure: UpstreamFailure, _ stage: RetryPolicy.Stage, started: Bool = false, idempotent: Bool = true, sent: Int = 0,
    reused: Bool = false, attempts: Int = 1, left: Int = 1, budget: Bool = true
  ) -> RetryPolicy.Attempt {
    .init(
      failure: failure, stage: stage, responseStarted: started, idempotent: idempotent, bodyBytesSent: sent, connectionReused: reused,
      attempts: attempts, retriesLeft: left, budgetAvailable: budget)
  }

  static let rows: [Row] = [
    // Connecting: nothing was sent, so any method may go elsewhere.
    Row(name: "connect refused, GET → another endpoint", attempt: a(.connectFailed, .connecting), expected: .anotherEndpoint),
    Row(name: "connect refused, POST → another endpoint (nothing sent)", attempt: a(.connectFailed, .connecting, idempotent: false), expected: .anotherEndpoint),
    Row(name: "connect timeout → another endpoint", attempt: a(.connectTimeout, .connecting), expected: .anotherEndpoint),
    Row(name: "pool exhausted → another endpoint", attempt: a(.poolExhausted, .connecting), expected: .anotherEndpoint),
    Row(name: "connect refused, no retries left → fail", attempt: a(.connectFailed, .connecting, left: 0), expected: .fail),
    Row(name: "connect refused, budget spent → fail", attempt: a(.connectFailed, .connecting, budget: false), expected: .fail),
    // Exchanging: only idempotent methods, only reset / refused, never with body bytes out.
    Row(name: "reset on a fresh connection, GET → another endpoint", attempt: a(.reset, .exchanging), expected: .anotherEndpoint),
    Row(name: "reset on a fresh connection, POST → fail", attempt: a(.reset, .exchanging, idempotent: false), expected: .fail),
    Row(name: "reset, PUT with body bytes sent → fail", attempt: a(.reset, .exchanging, sent: 1), expected: .fail),
    Row(name: "response timeout, GET → fail (the upstream may be working on it)", attempt: a(.responseTimeout, .exchanging), expected: .fail),
    Row(name: "malformed response, GET → fail", attempt: a(.malformedResponse, .exchanging), expected: .fail),
    Row(name: "reset after the response started → fail", attempt: a(.reset, .exchanging, started: true), expected: .fail),
    Row(name: "reset, GET, budget spent → fail", attempt: a(.reset, .exchanging, budget: false), expected: .fail),
    Row(name: "reset, GET, second attempt with no retries left → fail", attempt: a(.reset, .exchanging, attempts: 2, left: 0), expected: .fail),
    // A stale keep-alive connection: the same endpoint, fresh, free of charge, once.
    Row(name: "reset on a reused connection, first attempt → same endpoint, fresh connection", attempt: a(.reset, .exchanging, reused: true), expected: .sameEndpointFreshConnection),
    Row(name: "stale reuse, POST → same endpoint (nothing was processed)", attempt: a(.reset, .exchanging, idempotent: false, reused: true), expected: .sameEndpointFreshConnection),
    Row(name: "stale reuse, no retries and no budget → still same endpoint", attempt: a(.reset, .exchanging, reused: true, left: 0, budget: false), expected: .sameEndpointFreshConnection),
    Row(name: "stale reuse on the second attempt → another endpoint (GET)", attempt: a(.reset, .exchanging, reused: true, attempts: 2), expected: .anotherEndpoint),
    Row(name: "stale reuse with body bytes sent → fail", attempt: a(.reset, .exchanging, sent: 10, reused: true), expected: .fail),
    Row(name: "stale reuse after the response started → fail", attempt: a(.reset, .exchanging, started: true, reused: true), expected: .fail),
  ]

  @Test("Every row of the table", arguments: rows)
  func table(_ row: Row) {
    #expect(RetryPolicy.decide(row.attempt) == row.expected)
  }

  @Test("Idempotent methods (RFC 9110 §9.2.2)")
  func idempotency() {
    for m in ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"] { #expect(RetryPolicy.isIdempotent(m), "\(m)") }
    for m in ["POST", "PATCH", "CONNECT", "PROPFIND"] { #expect(!RetryPolicy.isIdempotent(m), "\(m)") }
  }
}
