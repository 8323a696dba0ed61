import GatewayCore
import NIOCore
import NIOHTTP1

/// What the HTTP/1.1 handler's responses say, apart from how they are written: the header lines
/// of a refusal (§4), a preflight, a forwarded upstream head and the header-timeout 408. Pure
/// composition over ``HTTP1ResponseWriter/Head``; the handler decides when, the writer how.
enum HTTP1Responses {
  /// A refusal's headers: its JSON body's type and length, the request id, never cached, `Vary:
  /// Origin` for the codes whose answer depends on it, `Retry-After` for a 429.
  static func refusal(into head: inout HTTP1ResponseWriter.Head, _ refusal: GatewayRefusal, requestID: String, bodyBytes: Int, retryAfter: Int?) {
    head.add("Content-Type", "application/json")
    head.add("Content-Length", String(bodyBytes))
    head.add("X-Request-Id", requestID)
    head.add("Cache-Control", "no-store")
    if RefusalResponse.variesByOrigin(refusal) { head.add("Vary", "Origin") }
    if let retryAfter { head.add("Retry-After", String(retryAfter)) }
  }

  /// A 204 preflight's CORS headers (PRODUCT.md §3).
  static func preflight(into head: inout HTTP1ResponseWriter.Head, _ preflight: PreflightHeaders, origin: String, methods: String, requestID: String) {
    for (name, value) in preflight.fields(origin: origin, methods: methods, requestID: requestID) {
      head.add(name, value)
    }
  }

  /// The upstream's response headers as the client may see them (``HeaderRewrite``: hop-by-hop
  /// and identity headers dropped, the request id and CORS set by the gateway).
  static func forwarded(
    into head: inout HTTP1ResponseWriter.Head, _ headers: HTTPHeaders, requestID: String, allowOrigin: String?, varyOrigin: Bool, upgrade: Bool
  ) {
    HeaderRewrite.forEachClientResponseHeader(
      from: headers, requestID: requestID, allowOrigin: allowOrigin, varyOrigin: varyOrigin, upgrade: upgrade
    ) { name, value, _ in head.add(name, value) }
  }

  /// The body size to reserve behind a response head: the upstream's `Content-Length` when it is
  /// at most 4 KiB, else nothing (a larger body goes out as its own write).
  static func bodyRoom(_ headers: HTTPHeaders) -> Int {
    guard let value = headers.first(name: "content-length"), let n = Int(value), n >= 0, n <= 4096 else { return 0 }
    return n
  }

  /// The whole 408 for a head that never completed (§4 `request_timeout`); the connection closes.
  static func headerTimeout(requestID: String) -> String {
    let body = GatewayRefusal.requestTimeout.jsonBody(requestID: requestID)
    return "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
      + "X-Request-Id: \(requestID)\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n" + body
  }

  /// Framing the parser could not accept (§9.4): 431 for a head past the limits, else 400.
  static func refusal(for parserError: HTTPParserError) -> GatewayRefusal {
    switch parserError {
    case .headerOverflow: return .headersTooLarge
    default: return .invalidRequest.with(message: "The request is malformed (\(parserError)).")
    }
  }
}
