/// Whether a failed upstream attempt is tried again, and where (PRODUCT.md §7 `retries`,
/// `retry_budget_percent`): a pure function of what happened, tested as a table.
///
/// The rules, in order:
/// 1. Never once a response byte reached the client (its status cannot change, §4).
/// 2. A keep-alive connection the upstream closed just as it was reused (a reset on a reused
///    connection, first attempt, no body byte sent): the upstream processed nothing, so the same
///    endpoint gets the request again on a fresh connection. Costs no retry and no budget: it is a
///    property of keep-alive, not of a failing upstream.
/// 3. Never once a request-body byte went out (it cannot be replayed: the body was streamed, not kept).
/// 4. Connecting failed (nothing sent): any method may go to another endpoint.
/// 5. Reset or refused after the request was sent: only an idempotent method (RFC 9110 §9.2.2).
/// 6. Either way only with `retries` left for this request and a token in the cluster's budget.
public enum RetryPolicy {
  /// Where the attempt failed.
  public enum Stage: Sendable, Equatable {
    /// Getting a connection (connect, pool wait).
    case connecting
    /// The request was being sent or its response awaited.
    case exchanging
  }

  public struct Attempt: Sendable, Equatable {
    public var failure: UpstreamFailure
    public var stage: Stage
    public var responseStarted: Bool
    public var idempotent: Bool
    public var bodyBytesSent: Int
    /// The connection had served a request before this one (keep-alive).
    public var connectionReused: Bool
    /// Attempts made so far, this one included.
    public var attempts: Int
    /// The request's `retries` not spent yet.
    public var retriesLeft: Int
    /// The cluster's retry budget has a token.
    public var budgetAvailable: Bool

    public init(
      failure: UpstreamFailure, stage: Stage, responseStarted: Bool = false, idempotent: Bool, bodyBytesSent: Int = 0,
      connectionReused: Bool = false, attempts: Int = 1, retriesLeft: Int, budgetAvailable: Bool
    ) {
      self.failure = failure
      self.stage = stage
      self.responseStarted = responseStarted
      self.idempotent = idempotent
      self.bodyBytesSent = bodyBytesSent
      self.connectionReused = connectionReused
      self.attempts = attempts
      self.retriesLeft = retriesLeft
      self.budgetAvailable = budgetAvailable
    }
  }

  public enum Decision: Sendable, Equatable {
    /// The same endpoint, on a new connection (a stale keep-alive connection).
    case sameEndpointFreshConnection
    /// Another endpoint (spends one of `retries` and a budget token).
    case anotherEndpoint
    /// Answer with the failure.
    case fail
  }

  public static func decide(_ a: Attempt) -> Decision {
    guard !a.responseStarted else { return .fail }
    if a.stage == .exchanging, a.failure == .reset, a.connectionReused, a.bodyBytesSent == 0, a.attempts == 1 {
      return .sameEndpointFreshConnection
    }
    guard a.bodyBytesSent == 0 else { return .fail }
    switch a.stage {
    case .connecting:
      break
    case .exchanging:
      guard a.idempotent, a.failure == .reset || a.failure == .connectFailed else { return .fail }
    }
    return a.retriesLeft > 0 && a.budgetAvailable ? .anotherEndpoint : .fail
  }

  /// GET, HEAD, OPTIONS, PUT, DELETE, TRACE (RFC 9110 §9.2.2).
  public static func isIdempotent(_ method: String) -> Bool {
    switch method {
    case "GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE": return true
    default: return false
    }
  }
}
