import GatewayCore
import NIOHTTP1

/// A request head that passed framing validation: what resolution and forwarding need.
struct ValidatedRequest {
  /// Normalised host.
  var host: String
  /// The request target to send upstream (origin-form: path plus query).
  var target: String
  /// Path without the query (for routes and the `htu` claim).
  var path: String
  /// Request body framing.
  var body: BodyFraming
  /// `Upgrade: websocket` (HTTP/1.1): after a 101 the connection becomes a byte tunnel.
  var websocket = false
}

/// How a request body is delimited.
enum BodyFraming: Equatable {
  case none
  case contentLength(Int)
  /// HTTP/1.1 chunked, or an HTTP/2 stream without `content-length`.
  case streamed
}

/// A refusal plus whether the connection must close after it (framing errors: the next request
/// cannot be found reliably).
struct ValidationFailure: Error {
  var refusal: GatewayRefusal
  var closeConnection: Bool
}

/// Limits from `gateway.conf` `limits`, in bytes.
struct RequestLimits {
  var maxHeaderBytes: Int
  var maxHeaderCount: Int
  var maxBodyBytes: Int
  var maxURIBytes: Int
}

/// Request validation shared by HTTP/1.1 and HTTP/2 (PRODUCT.md §2, §4, §9.4). Everything here runs
/// before anything is forwarded.
enum RequestValidation {
  // MARK: HTTP/1.1

  /// Validates an HTTP/1.x request head: version, limits, header bytes, Host, target form, framing.
  static func validateHTTP1(_ head: HTTPRequestHead, limits: RequestLimits) -> Result<ValidatedRequest, ValidationFailure> {
    func fail(_ r: GatewayRefusal, _ reason: String) -> Result<ValidatedRequest, ValidationFailure> {
      .failure(ValidationFailure(refusal: r.with(message: reason), closeConnection: true))
    }
    guard head.version.major == 1, head.version.minor <= 1 else {
      return fail(.invalidRequest, "Only HTTP/1.0 and HTTP/1.1 are accepted here.")
    }
    if head.uri.utf8.count > limits.maxURIBytes { return fail(.uriTooLong, GatewayRefusal.uriTooLong.message) }
    if head.headers.count > limits.maxHeaderCount {
      return fail(.headersTooLarge, "More than \(limits.maxHeaderCount) header fields.")
    }
    var headerBytes = 0
    var hostValue: String? = nil
    var hostCount = 0
    var contentLength: String? = nil
    var contentLengthCount = 0
    var transferEncodingCount = 0
    var transferEncoding = ""
    var upgrade: String? = nil
    var connectionUpgrade = false
    for (name, value) in head.headers {
      headerBytes += name.utf8.count + value.utf8.count + 4
      if let problem = headerProblem(name: name, value: value) { return fail(.invalidRequest, problem) }
      switch name.utf8.count {
      case 4 where equalsIgnoringCase(name, "host"):
        hostCount += 1
        hostValue = value
      case 14 where equalsIgnoringCase(name, "content-length"):
        contentLengthCount += 1
        contentLength = value
      case 17 where equalsIgnoringCase(name, "transfer-encoding"):
        transferEncodingCount += 1
        transferEncoding = value
      case 7 where equalsIgnoringCase(name, "upgrade"):
        if upgrade != nil { return fail(.invalidRequest, "Several Upgrade headers.") }
        upgrade = value.trimmingASCIIWhitespace().lowercased()
      case 10 where equalsIgnoringCase(name, "connection"):
        if value.lowercased().split(separator: ",").contains(where: { $0.trimmingASCIIWhitespace() == "upgrade" }) { connectionUpgrade = true }
      default: break
      }
    }
    if headerBytes > limits.maxHeaderBytes {
      return fail(.headersTooLarge, "Request headers exceed \(limits.maxHeaderBytes) bytes.")
    }

    // Framing (RFC 9112 §6): anything ambiguous is refused, never guessed (§9.4).
    var framing = BodyFraming.none
    if transferEncodingCount > 0 {
      guard head.version.minor == 1 else {
        return fail(.invalidRequest, "Transfer-Encoding is not allowed in HTTP/1.0.")
      }
      guard contentLengthCount == 0 else {
        return fail(.invalidRequest, "Content-Length and Transfer-Encoding together are ambiguous.")
      }
      guard transferEncodingCount == 1, trimmedLowercase(transferEncoding) == "chunked" else {
        return fail(.invalidRequest, "Only Transfer-Encoding: chunked is accepted.")
      }
      framing = .streamed
    } else if contentLengthCount > 0 {
      guard contentLengthCount == 1, let cl = contentLength, let n = parseContentLength(cl) else {
        return fail(.invalidRequest, "Content-Length must be one decimal number.")
      }
      if n > limits.maxBodyBytes {
        return fail(.payloadTooLarge, "The request body is larger than \(limits.maxBodyBytes) bytes.")
      }
      framing = n == 0 ? .none : .contentLength(n)
    }
    if head.method == .CONNECT {
      return fail(.invalidRequest, "CONNECT is not supported.")
    }

    // Host (§2): exactly one on HTTP/1.1; absolute-form authority must agree.
    guard hostCount <= 1 else { return fail(.invalidHost, "Several Host headers.") }
    guard hostCount == 1, let rawHost = hostValue, let host = HostName.normalize(rawHost) else {
      return fail(.invalidHost, hostCount == 0 ? "The Host header is missing." : "The Host header is not a valid host name.")
    }

    // Target forms (RFC 9112 §3.2).
    let uri = head.uri
    var target: Substring
    if uri.hasPrefix("/") {
      target = Substring(uri)
    } else if uri == "*" {
      guard head.method == .OPTIONS else { return fail(.invalidRequest, "The asterisk form is only for OPTIONS.") }
      target = "*"
    } else if let authority = absoluteFormAuthority(uri) {
      guard let a = HostName.normalize(String(authority.authority)), a == host else {
        return fail(.invalidHost, "The absolute-form target names a different host than Host.")
      }
      target = authority.rest.isEmpty ? "/" : authority.rest
      guard target.hasPrefix("/") || target.hasPrefix("?") else { return fail(.invalidRequest, "Malformed request target.") }
      if target.hasPrefix("?") { target = "/" + target }
    } else {
      return fail(.invalidRequest, "Malformed request target.")
    }
    let path = target.firstIndex(of: "?").map { target[..<$0] } ?? target
    if target != "*", let problem = pathProblem(path) { return fail(.invalidRequest, problem) }
    // Upgrades: WebSocket only (RFC 6455 §4.1: GET, HTTP/1.1, Connection: Upgrade, no body).
    var websocket = false
    if let upgrade {
      guard upgrade == "websocket", connectionUpgrade, head.method == .GET, head.version.minor == 1, framing == .none else {
        return fail(.invalidRequest, "Only WebSocket upgrades are supported.")
      }
      websocket = true
    }
    return .success(ValidatedRequest(host: host, target: String(target), path: String(path), body: framing, websocket: websocket))
  }

  /// `scheme://authority[/path]` → authority and the rest.
  static func absoluteFormAuthority(_ uri: String) -> (authority: Substring, rest: Substring)? {
    let lower = uri.prefix(8).lowercased()
    let schemeLength: Int
    if lower.hasPrefix("https://") { schemeLength = 8 } else if lower.hasPrefix("http://") { schemeLength = 7 } else { return nil }
    let afterScheme = uri.dropFirst(schemeLength)
    let end = afterScheme.firstIndex { $0 == "/" || $0 == "?" } ?? afterScheme.endIndex
    let authority = afterScheme[..<end]
    guard !authority.isEmpty, !authority.contains("@") else { return nil }
    return (authority, afterScheme[end...])
  }

  /// Content-Length: 1*DIGIT, no sign, no list, no spaces inside.
  static func parseContentLength(_ value: String) -> Int? {
    let v = value.utf8
    guard !v.isEmpty, v.count <= 18, v.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
    return Int(value)
  }

  static func trimmedLowercase(_ s: String) -> String {
    s.trimmingASCIIWhitespace().lowercased()
  }

  /// Header names are RFC 9110 tokens without underscores (nginx and others drop or merge those,
  /// which lets `X_Tenant` smuggle past a filter for `X-Tenant`); values have no control bytes.
  /// `pseudo`: an HTTP/2 pseudo-header; its leading `:` is not part of the checked name.
  static func headerProblem(name: String, value: String, pseudo: Bool = false) -> String? {
    if name.utf8.count <= (pseudo ? 1 : 0) { return "Empty header name." }
    for b in name.utf8.dropFirst(pseudo ? 1 : 0) {
      if b == UInt8(ascii: "_") { return "Underscores are not allowed in header names." }
      if !isTokenByte(b) { return "Invalid character in a header name." }
    }
    for b in value.utf8 where (b < 0x20 && b != 0x09) || b == 0x7F {
      return "Invalid character in a header value."
    }
    return nil
  }

  @inline(__always) static func isTokenByte(_ b: UInt8) -> Bool {
    switch b {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
      return true
    case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
      UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "`"),
      UInt8(ascii: "|"), UInt8(ascii: "~"):
      return true
    default:
      return false
    }
  }

  /// Paths that a backend might normalise into a different route than the gateway matched are
  /// refused: dot segments, encoded dots, slashes and backslashes, malformed escapes. Otherwise
  /// `/v1/store/../admin/x` would pass as a storefront call and reach an admin handler.
  static func pathProblem(_ path: Substring) -> String? {
    // Read in place (a parsed target is native, contiguous UTF-8); copying it was an allocation
    // per request.
    if let problem = path.utf8.withContiguousStorageIfAvailable({ pathProblem(bytes: $0) }) { return problem }
    return Array(path.utf8).withUnsafeBufferPointer { pathProblem(bytes: $0) }
  }

  private static func pathProblem(bytes: UnsafeBufferPointer<UInt8>) -> String? {
    var i = 0
    var segmentStart = true
    while i < bytes.count {
      let b = bytes[i]
      switch b {
      case UInt8(ascii: "/"):
        segmentStart = true
        i += 1
        continue
      case UInt8(ascii: "\\"):
        return "Backslashes are not allowed in the path."
      case UInt8(ascii: "%"):
        guard i + 2 < bytes.count, isHex(bytes[i + 1]), isHex(bytes[i + 2]) else {
          return "Malformed percent-encoding in the path."
        }
        let v = hexValue(bytes[i + 1]) << 4 | hexValue(bytes[i + 2])
        if v == UInt8(ascii: ".") || v == UInt8(ascii: "/") || v == UInt8(ascii: "\\") || v < 0x20 || v == 0x7F {
          return "Encoded dots, slashes and control bytes are not allowed in the path."
        }
        i += 3
        segmentStart = false
        continue
      case UInt8(ascii: "."):
        if segmentStart {
          // "." or ".." as a whole segment.
          let next = i + 1 < bytes.count ? bytes[i + 1] : UInt8(ascii: "/")
          if next == UInt8(ascii: "/") { return "Dot segments are not allowed in the path." }
          if next == UInt8(ascii: "."), (i + 2 >= bytes.count || bytes[i + 2] == UInt8(ascii: "/")) {
            return "Dot segments are not allowed in the path."
          }
        }
      default:
        if b <= 0x20 || b >= 0x7F { return "Invalid byte in the path." }
      }
      segmentStart = false
      i += 1
    }
    return nil
  }

  static func isHex(_ b: UInt8) -> Bool {
    (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66)
  }
  static func hexValue(_ b: UInt8) -> UInt8 {
    b <= 0x39 ? b - 0x30 : (b | 0x20) - 0x61 + 10
  }
}

extension StringProtocol {
  /// Drops leading and trailing spaces and tabs.
  func trimmingASCIIWhitespace() -> String {
    var s = Substring(self)
    while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
    while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
    return String(s)
  }
}
