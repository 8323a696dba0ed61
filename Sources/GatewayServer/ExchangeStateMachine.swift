import GatewayCore
import GatewayUpstream

/// One proxied request's progress as a value whose methods say what to do (the shape of
/// async-http-client's `HTTPRequestStateMachine`); ``Exchange`` keeps one and carries the answers
/// out against its pool, its upstream connection and its client side.
///
/// Phases: waiting for a connection → exchanging (request head sent, body streaming; once the
/// response head is forwarded its status can no longer change) → finished. It decides:
/// - where request body goes (queued until a connection is ready, then sent), when the client's
///   body must pause (more than ``maxPendingBody`` queued, or an unwritable upstream socket) and
///   how much credit to give back once the upstream took bytes;
/// - what a failure becomes: another attempt (``RetryPolicy/decide(_:)`` on this exchange's
///   counts), a refusal with its §4 code while nothing was answered, or an abort once the
///   response started;
/// - whether a failure counts against the endpoint's passive health.
struct ExchangeStateMachine {
  enum Phase: Equatable {
    case waitingForConnection
    case exchanging
    case finished
  }

  private(set) var phase: Phase = .waitingForConnection
  /// The response head went to the client: a failure now can only abort.
  private(set) var responseStarted = false
  /// GET, HEAD, OPTIONS, PUT, DELETE, TRACE: safe to send again (RFC 9110 §9.2.2).
  let idempotent: Bool
  let hasBody: Bool
  private(set) var requestEnded = false
  /// Request body bytes handed to an upstream connection (a retry after any is unsafe for a body).
  private(set) var bodyBytesSent = 0
  /// Request body bytes queued while no connection is ready.
  private(set) var pendingBytes = 0
  /// Bytes sent while the upstream socket was not writable: credited when it is again.
  private(set) var uncredited = 0
  private(set) var attempts = 0
  private(set) var retriesLeft: Int
  /// The status the client was sent: the upstream's, or the refusal's.
  private(set) var status = 0
  private(set) var failure: UpstreamFailure?

  /// Body bytes queued before the connection is ready above which the client is paused.
  static let maxPendingBody = 256 * 1024

  init(idempotent: Bool, hasBody: Bool, retries: Int) {
    self.idempotent = idempotent
    self.hasBody = hasBody
    self.retriesLeft = retries
  }

  var finished: Bool { phase == .finished }

  /// How a failure is answered to the client.
  enum Answer: Equatable {
    /// Nothing was answered yet: the refusal with its §4 status and code.
    case refuse(GatewayRefusal)
    /// The response started: reset the stream or close the connection.
    case abort
  }

  // MARK: attempts

  /// The first attempt: `endpointAvailable` says whether the cluster had an endpoint to pick. nil:
  /// acquire a connection for it.
  mutating func start(endpointAvailable: Bool) -> Answer? {
    guard endpointAvailable else { return fail(.noHealthyEndpoint) }
    attempts = 1
    return nil
  }

  /// What to do after a failed attempt.
  enum FailureAction: Equatable {
    /// The exchange was over already: nothing.
    case ignore
    /// Again on the same endpoint, on a fresh connection (a stale keep-alive connection).
    case retrySameEndpoint
    /// On another endpoint, if the cluster has one and a retry token; else ``fail(_:)``.
    case retryAnotherEndpoint
    case answer(Answer)
  }

  /// No connection could be had. Nothing was sent, so any method may go elsewhere (the body waits
  /// queued). `countsAgainstEndpoint`: the endpoint's passive health records a failure (a full
  /// pool says nothing about the endpoint).
  mutating func connectionFailed(_ f: UpstreamFailure, budgetAvailable: Bool) -> (action: FailureAction, countsAgainstEndpoint: Bool) {
    guard !finished else { return (.ignore, false) }
    let decision = RetryPolicy.decide(attempt(f, .connecting, responseStarted: false, reused: false, budgetAvailable: budgetAvailable))
    return (act(on: decision, f), f != .poolExhausted)
  }

  /// The attempt failed on its connection (reset, timeout, malformed response); `started`: the
  /// connection had begun reading a response. A stale keep-alive connection (retried on the same
  /// endpoint) says nothing about the endpoint, and neither does a failure after the response
  /// started.
  mutating func exchangeFailed(_ f: UpstreamFailure, responseStarted started: Bool, reused: Bool, budgetAvailable: Bool)
    -> (action: FailureAction, countsAgainstEndpoint: Bool)
  {
    guard !finished else { return (.ignore, false) }
    let decision = RetryPolicy.decide(attempt(f, .exchanging, responseStarted: started, reused: reused, budgetAvailable: budgetAvailable))
    return (act(on: decision, f), decision != .sameEndpointFreshConnection && !started)
  }

  /// The retry the last failure asked for is under way (`anotherEndpoint`: it spent a retry).
  mutating func retrying(anotherEndpoint: Bool) {
    attempts += 1
    if anotherEndpoint { retriesLeft -= 1 }
    phase = .waitingForConnection
  }

  /// The exchange fails: the refusal while nothing was answered, else an abort.
  mutating func fail(_ f: UpstreamFailure) -> Answer {
    phase = .finished
    failure = f
    if responseStarted { return .abort }
    status = f.refusal.status
    return .refuse(f.refusal)
  }

  private func attempt(_ f: UpstreamFailure, _ stage: RetryPolicy.Stage, responseStarted: Bool, reused: Bool, budgetAvailable: Bool)
    -> RetryPolicy.Attempt
  {
    RetryPolicy.Attempt(
      failure: f, stage: stage, responseStarted: responseStarted, idempotent: idempotent, bodyBytesSent: bodyBytesSent,
      connectionReused: reused, attempts: attempts, retriesLeft: retriesLeft, budgetAvailable: budgetAvailable)
  }

  private mutating func act(on decision: RetryPolicy.Decision, _ f: UpstreamFailure) -> FailureAction {
    switch decision {
    case .sameEndpointFreshConnection: return .retrySameEndpoint
    case .anotherEndpoint: return .retryAnotherEndpoint
    case .fail: return .answer(fail(f))
    }
  }

  // MARK: the request

  /// What to do with request body bytes from the client.
  enum BodyAction: Equatable {
    /// The exchange is over: drop them.
    case drop
    /// Send them on the connection, then report ``bodySent(_:writable:)``.
    case send
    /// No connection yet: queue them; pause the client when the queue is over its bound.
    case queue(pauseClient: Bool)
  }

  /// Request body from the client; `connected`: a connection is attached.
  mutating func requestBody(_ bytes: Int, connected: Bool) -> BodyAction {
    guard !finished else { return .drop }
    guard connected else {
      pendingBytes += bytes
      return .queue(pauseClient: pendingBytes > Self.maxPendingBody)
    }
    return .send
  }

  /// After bytes went to the upstream socket: credit the client, or pause its body.
  enum Sent: Equatable {
    /// The socket takes more: give the client back this many bytes (and resume it).
    case credit(Int)
    /// The socket is full: pause the client's body until ``upstreamWritable()``.
    case pauseClient
  }

  /// `bytes` of body went out on the connection; `writable`: its socket still takes more.
  mutating func bodySent(_ bytes: Int, writable: Bool) -> Sent {
    bodyBytesSent += bytes
    if writable {
      defer { uncredited = 0 }
      return .credit(bytes + uncredited)
    }
    uncredited += bytes
    return .pauseClient
  }

  /// The client ended its request. True: finish it on the connection (if one is attached).
  mutating func requestEnd() -> Bool {
    requestEnded = true
    return !finished
  }

  /// What to do with a connection that became ready.
  enum ReadyAction: Equatable {
    /// The exchange is over: give the connection back unused.
    case returnUnused
    /// Start the request on it; `flush`: send the queued body, then report ``flushed(writable:)``.
    case start(flush: Bool)
  }

  mutating func connectionReady() -> ReadyAction {
    guard !finished else { return .returnUnused }
    phase = .exchanging
    return .start(flush: pendingBytes > 0)
  }

  /// The queued body went out on the new connection (see ``bodySent(_:writable:)``).
  mutating func flushed(writable: Bool) -> Sent {
    let bytes = pendingBytes
    pendingBytes = 0
    return bodySent(bytes, writable: writable)
  }

  /// The request is started on a connection: finish it there at once (the client's ended first).
  var finishesOnStart: Bool { requestEnded && hasBody }

  /// The upstream socket can take more: the credit owed, if any (the client's body resumes).
  mutating func upstreamWritable() -> Int? {
    defer { uncredited = 0 }
    return uncredited > 0 ? uncredited : nil
  }

  // MARK: the response

  /// The upstream's response head. False: the exchange is over, drop it. Passive health: a 5xx
  /// counts against the endpoint, anything else clears it.
  mutating func responseHead(status: Int) -> Bool {
    guard !finished else { return false }
    responseStarted = true
    self.status = status
    return true
  }

  /// Response body, its end, or the switch to a tunnel: false when the exchange is over. The end
  /// and the switch finish it.
  func responseBody() -> Bool { !finished }

  mutating func responseEnd() -> Bool {
    guard !finished else { return false }
    phase = .finished
    return true
  }

  mutating func upgraded() -> Bool { responseEnd() }

  /// The client went away, or the exchange became a tunnel. True: it was still running, so drop
  /// its upstream connection (never reused with a half-sent request).
  mutating func cancel() -> Bool {
    guard !finished else { return false }
    phase = .finished
    return true
  }
}
