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
    } else if let absolute = absoluteForm(uri) {
      // This listener is TLS: an `http://` target names a resource the request cannot be for.
      guard absolute.https else { return fail(.invalidRequest, "An http:// target is not served on the TLS listener.") }
      guard let a = HostName.normalize(String(absolute.authority)), a == host else {
        return fail(.invalidHost, "The absolute-form target names a different host than Host.")
      }
      target = absolute.rest.isEmpty ? "/" : absolute.rest
      guard target.hasPrefix("/") || target.hasPrefix("?") else { return fail(.invalidRequest, "Malformed request target.") }
      if target.hasPrefix("?") { target = "/" + target }
    } else {
      return fail(.invalidRequest, "Malformed request target.")
    }
    // Routes are matched on the normal form, and that form is what is forwarded (PRODUCT.md §3).
    let normalized: RequestPath.Normalized
    if target == "*" {
      normalized = RequestPath.Normalized(target: "*", path: "*")
    } else {
      switch RequestPath.normalize(target: target) {
      case .success(let n): normalized = n
      case .failure(let problem): return fail(.invalidRequest, problem.message)
      }
    }
    // Upgrades: WebSocket only (RFC 6455 §4.1: GET, HTTP/1.1, Connection: Upgrade, no body).
    var websocket = false
    if let upgrade {
      guard upgrade == "websocket", connectionUpgrade, head.method == .GET, head.version.minor == 1, framing == .none else {
        return fail(.invalidRequest, "Only WebSocket upgrades are supported.")
      }
      websocket = true
    }
    return .success(ValidatedRequest(host: host, target: normalized.target, path: normalized.path, body: framing, websocket: websocket))
  }

  /// `scheme://authority[/path]` → whether the scheme is https, the authority and the rest.
  static func absoluteForm(_ uri: String) -> (https: Bool, authority: Substring, rest: Substring)? {
    let lower = uri.prefix(8).lowercased()
    let schemeLength: Int
    if lower.hasPrefix("https://") { schemeLength = 8 } else if lower.hasPrefix("http://") { schemeLength = 7 } else { return nil }
    let afterScheme = uri.dropFirst(schemeLength)
    let end = afterScheme.firstIndex { $0 == "/" || $0 == "?" } ?? afterScheme.endIndex
    let authority = afterScheme[..<end]
    guard !authority.isEmpty, !authority.contains("@") else { return nil }
    return (schemeLength == 8, authority, afterScheme[end...])
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
