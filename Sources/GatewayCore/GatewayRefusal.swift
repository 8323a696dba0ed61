/// A request the gateway answers itself instead of forwarding: one HTTP status and one stable code
/// (PRODUCT.md §4). Every client-visible error the gateway produces is one of the static members
/// below, so this file is the single place to read them all.
public struct GatewayRefusal: Error, Sendable, Hashable, CustomStringConvertible {
  /// HTTP status code sent to the client.
  public let status: Int
  /// Stable machine-readable code; clients depend on these strings.
  public let code: String
  /// Human-readable explanation. Never contains a key, token or other secret.
  public let message: String

  public init(status: Int, code: String, message: String) {
    self.status = status
    self.code = code
    self.message = message
  }

  /// The same refusal with a more specific message (the code and status stay stable).
  public func with(message: String) -> GatewayRefusal {
    GatewayRefusal(status: status, code: code, message: message)
  }

  public var description: String { "\(status) \(code)" }

  // 400
  public static let invalidHost = GatewayRefusal(
    status: 400, code: "invalid_host", message: "The request's host is missing, repeated or not a valid host name.")
  public static let invalidRequest = GatewayRefusal(
    status: 400, code: "invalid_request", message: "The request is malformed.")
  // 401
  public static let missingCredentials = GatewayRefusal(
    status: 401, code: "missing_credentials", message: "This route needs credentials and none were sent.")
  /// Unknown and revoked keys get this same refusal, byte for byte (apart from the request id).
  public static let invalidAPIKey = GatewayRefusal(
    status: 401, code: "invalid_api_key", message: "The API key is not valid.")
  public static let invalidSession = GatewayRefusal(
    status: 401, code: "invalid_session", message: "The session or customer token is not valid.")
  // 403
  public static let tenantMismatch = GatewayRefusal(
    status: 403, code: "tenant_mismatch", message: "The credentials belong to a different shop than the host.")
  public static let keyNotAllowedForRoute = GatewayRefusal(
    status: 403, code: "key_not_allowed_for_route", message: "This kind of key is not accepted on this route.")
  public static let methodNotAllowedForKey = GatewayRefusal(
    status: 403, code: "method_not_allowed_for_key", message: "This method is not allowed with this kind of key.")
  public static let headlessDisabled = GatewayRefusal(
    status: 403, code: "headless_disabled", message: "The shop does not allow headless storefront access.")
  public static let originNotAllowed = GatewayRefusal(
    status: 403, code: "origin_not_allowed", message: "The request's Origin is not allowed for this shop.")
  public static let secretKeyInBrowser = GatewayRefusal(
    status: 403, code: "secret_key_in_browser",
    message: "A secret key was sent from a browser; secret keys belong on servers only.")
  public static let shopSuspended = GatewayRefusal(
    status: 403, code: "shop_suspended", message: "The shop is suspended.")
  // 404, 408, 413, 414, 421, 429, 431
  public static let notFound = GatewayRefusal(
    status: 404, code: "not_found", message: "No route matches this path on this host.")
  public static let requestTimeout = GatewayRefusal(
    status: 408, code: "request_timeout", message: "The request was not received in time.")
  public static let payloadTooLarge = GatewayRefusal(
    status: 413, code: "payload_too_large", message: "The request body is larger than allowed.")
  public static let uriTooLong = GatewayRefusal(
    status: 414, code: "uri_too_long", message: "The request target is longer than allowed.")
  public static let unknownHost = GatewayRefusal(
    status: 421, code: "unknown_host", message: "No shop is served at this host.")
  public static let misdirectedRequest = GatewayRefusal(
    status: 421, code: "misdirected_request",
    message: "The host is not covered by the certificate of this connection.")
  public static let rateLimited = GatewayRefusal(
    status: 429, code: "rate_limited", message: "Too many requests.")
  public static let headersTooLarge = GatewayRefusal(
    status: 431, code: "headers_too_large", message: "The request headers are larger than allowed.")
  // 5xx
  public static let upstreamError = GatewayRefusal(
    status: 502, code: "upstream_error", message: "The upstream closed the connection or sent a malformed response.")
  public static let upstreamUnavailable = GatewayRefusal(
    status: 503, code: "upstream_unavailable", message: "No upstream connection is available.")
  public static let upstreamTimeout = GatewayRefusal(
    status: 504, code: "upstream_timeout", message: "The upstream did not answer in time.")

  /// Every refusal, for tests, docs and metrics label sets.
  public static let all: [GatewayRefusal] = [
    .invalidHost, .invalidRequest, .missingCredentials, .invalidAPIKey, .invalidSession, .tenantMismatch,
    .keyNotAllowedForRoute, .methodNotAllowedForKey, .headlessDisabled, .originNotAllowed, .secretKeyInBrowser,
    .shopSuspended, .notFound, .requestTimeout, .payloadTooLarge, .uriTooLong, .unknownHost, .misdirectedRequest,
    .rateLimited, .headersTooLarge, .upstreamError, .upstreamUnavailable, .upstreamTimeout,
  ]

  /// The JSON body of PRODUCT.md §4: `{"error":{"code":…,"message":…,"requestId":…}}`.
  public func jsonBody(requestID: String) -> String {
    var out = "{\"error\":{\"code\":"
    JSONText.appendQuoted(code, to: &out)
    out += ",\"message\":"
    JSONText.appendQuoted(message, to: &out)
    out += ",\"requestId\":"
    JSONText.appendQuoted(requestID, to: &out)
    out += "}}"
    return out
  }
}

/// Minimal JSON string writing for the few places that produce JSON by hand (error bodies, tokens, logs).
public enum JSONText {
  /// Appends `value` as a JSON string literal (quotes included), escaping per RFC 8259 §7.
  public static func appendQuoted(_ value: String, to out: inout String) {
    out.append("\"")
    var needsEscape = false
    for b in value.utf8 where b < 0x20 || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") {
      needsEscape = true
      break
    }
    if !needsEscape {
      out.append(value)
    } else {
      for scalar in value.unicodeScalars {
        switch scalar {
        case "\"": out.append("\\\"")
        case "\\": out.append("\\\\")
        case "\n": out.append("\\n")
        case "\r": out.append("\\r")
        case "\t": out.append("\\t")
        default:
          if scalar.value < 0x20 {
            out.append("\\u00")
            out.append(hexDigit(UInt8(scalar.value >> 4)))
            out.append(hexDigit(UInt8(scalar.value & 0xF)))
          } else {
            out.unicodeScalars.append(scalar)
          }
        }
      }
    }
    out.append("\"")
  }

  /// Appends `value` as a JSON string literal to a byte buffer.
  @inlinable
  public static func appendQuoted(bytes value: UnsafeRawBufferPointer, to out: inout [UInt8]) {
    // Fast path: nothing to escape (ids, hosts, paths): one copy.
    if !value.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
      out.append(UInt8(ascii: "\""))
      out.append(contentsOf: value)
      out.append(UInt8(ascii: "\""))
      return
    }
    appendQuotedSlow(bytes: value, to: &out)
  }

  @inlinable
  public static func appendQuoted(bytes value: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
    appendQuoted(bytes: UnsafeRawBufferPointer(value), to: &out)
  }

  @inlinable
  public static func appendQuotedSlow<C: Collection<UInt8>>(bytes value: C, to out: inout [UInt8]) {
    out.append(UInt8(ascii: "\""))
    for b in value {
      switch b {
      case UInt8(ascii: "\""): out.append(UInt8(ascii: "\\")); out.append(b)
      case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\")); out.append(b)
      case 0..<0x20:
        out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
        out.append(hexByte(b >> 4))
        out.append(hexByte(b & 0xF))
      default: out.append(b)
      }
    }
    out.append(UInt8(ascii: "\""))
  }

  /// The lower-case hex digit for a value 0…15.
  @inlinable
  public static func hexByte(_ nibble: UInt8) -> UInt8 {
    nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
  }

  static func hexDigit(_ nibble: UInt8) -> String {
    String(UnicodeScalar(hexByte(nibble)))
  }
}
