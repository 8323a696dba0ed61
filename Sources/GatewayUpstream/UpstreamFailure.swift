import GatewayCore

/// Why an upstream exchange failed, and what the client is told (PRODUCT.md §4).
public enum UpstreamFailure: Error, Sendable, Equatable, CustomStringConvertible {
  /// Connection refused or unreachable: nothing was sent.
  case connectFailed
  /// No connection within the connect timeout.
  case connectTimeout
  /// The pool is at its limit and the wait for a connection timed out.
  case poolExhausted
  /// Every endpoint of the cluster is down (health checks or passive ejection).
  case noHealthyEndpoint
  /// The response head did not arrive within the response timeout.
  case responseTimeout
  /// The connection closed or reset before the response was complete.
  case reset
  /// The upstream sent something that is not valid HTTP/1.1.
  case malformedResponse

  public var refusal: GatewayRefusal {
    switch self {
    case .connectFailed, .poolExhausted, .noHealthyEndpoint: return .upstreamUnavailable
    case .connectTimeout, .responseTimeout: return .upstreamTimeout
    case .reset, .malformedResponse: return .upstreamError
    }
  }

  /// Metric label.
  public var kind: String {
    switch self {
    case .connectFailed: return "connect_failed"
    case .connectTimeout: return "connect_timeout"
    case .poolExhausted: return "pool_exhausted"
    case .noHealthyEndpoint: return "no_healthy_endpoint"
    case .responseTimeout: return "response_timeout"
    case .reset: return "reset"
    case .malformedResponse: return "malformed_response"
    }
  }

  public var description: String { kind }
}
