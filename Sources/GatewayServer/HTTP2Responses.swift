import GatewayCore
import NIOHPACK
import NIOHTTP1

/// What the HTTP/2 handler's responses say, apart from how they are framed: the HPACK header lists
/// of a refusal (§4), a preflight and a forwarded upstream head. The HTTP/2 twin of
/// ``HTTP1Responses``; field names lowercase (RFC 9113 §8.2.1).
enum HTTP2Responses {
  /// A refusal's headers: its JSON body's type and length, the request id, never cached, `vary:
  /// Origin` for the codes whose answer depends on it, `retry-after` for a 429.
  static func refusal(_ refusal: GatewayRefusal, requestID: String, bodyBytes: Int, retryAfter: Int?) -> HPACKHeaders {
    var headers = HPACKHeaders([
      (":status", String(refusal.status)), ("content-type", "application/json"),
      ("content-length", String(bodyBytes)), ("x-request-id", requestID), ("cache-control", "no-store"),
    ])
    if RefusalResponse.variesByOrigin(refusal) { headers.add(name: "vary", value: "Origin") }
    if let retryAfter { headers.add(name: "retry-after", value: String(retryAfter)) }
    return headers
  }

  /// A 204 preflight's CORS headers (PRODUCT.md §3).
  static func preflight(_ preflight: PreflightHeaders, origin: String, methods: String, requestID: String) -> HPACKHeaders {
    var headers = HPACKHeaders([(":status", "204")])
    for (name, value) in preflight.fields(origin: origin, methods: methods, requestID: requestID) {
      headers.add(name: name.lowercased(), value: value)
    }
    return headers
  }

  /// A response's HPACK header list: `:status`, then the upstream's headers as §5 passes them to
  /// clients, lowercased (RFC 9113 §8.2.1), minus `dropping`. `X-Request-Id`, unique per response,
  /// is never indexed: in the dynamic table it would only evict the entries that repeat.
  static func forwarded(
    status: String, from upstream: HTTPHeaders, requestID: String, allowOrigin: String?, varyOrigin: Bool,
    dropping dropped: String? = nil
  ) -> HPACKHeaders {
    var headers = HPACKHeaders()
    headers.reserveCapacity(upstream.count + 2)
    headers.add(name: ":status", value: status)
    HeaderRewrite.forEachClientResponseHeader(
      from: upstream, requestID: requestID, allowOrigin: allowOrigin, varyOrigin: varyOrigin, upgrade: false
    ) { name, value, unique in
      if let dropped, equalsIgnoringCase(name, dropped) { return }
      headers.add(name: lowercasedName(name), value: value, indexing: unique ? .nonIndexable : .indexable)
    }
    return headers
  }

  /// HTTP/2 field names are lowercase (RFC 9113 §8.2.1); skips the copy when the name already is.
  /// ASCII only (field names are tokens), written byte by byte: `String.lowercased()` is Unicode-
  /// aware and was measurable on every response field; a name of up to 15 bytes stays a small
  /// string (no allocation).
  @inline(__always)
  static func lowercasedName(_ name: String) -> String {
    let utf8 = name.utf8
    guard utf8.contains(where: { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) else { return name }
    return String(unsafeUninitializedCapacity: utf8.count) { buffer in
      var i = 0
      for b in utf8 {
        buffer[i] = b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z") ? b | 0x20 : b
        i += 1
      }
      return i
    }
  }
}
