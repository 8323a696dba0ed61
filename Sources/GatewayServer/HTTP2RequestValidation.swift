import GatewayCore
import GatewayObservability
import GatewayUpstream
import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2

/// HTTP/2 request validation: pseudo-headers, Host vs `:authority`, limits, body framing. NIOHTTP2's
/// own header-block validation has already refused uppercase names, connection-specific headers and
/// misplaced pseudo-headers with a stream error.
enum HTTP2RequestValidation {
  struct Validated {
    var request: ValidatedRequest
    var method: HTTPMethod
  }

  static func validate(_ headers: HPACKHeaders, endStream: Bool, limits: RequestLimits) -> Result<Validated, ValidationFailure> {
    func fail(_ r: GatewayRefusal, _ reason: String) -> Result<Validated, ValidationFailure> {
      .failure(ValidationFailure(refusal: r.with(message: reason), closeConnection: false))
    }
    var method: String?
    var scheme: String?
    var path: String?
    var authority: String?
    var extendedProtocol: String?
    var hosts: [String] = []
    var contentLength: [String] = []
    var bytes = 0
    var count = 0
    for (name, value, _) in headers {
      count += 1
      bytes += name.utf8.count + value.utf8.count + 32
      // The first byte finds pseudo-headers (String.hasPrefix compares Unicode-aware, on every field
      // of every request); only those, and fields of a matching length, are compared whole.
      let pseudo = name.utf8.first == UInt8(ascii: ":")
      if let problem = RequestValidation.headerProblem(name: name, value: value, pseudo: pseudo) {
        return fail(.invalidRequest, problem)
      }
      // RFC 9113 §8.2.1: a value with leading or trailing SP/HTAB is malformed (HTTP/1.1's parser
      // strips that whitespace; forwarded as is, it could make two readers see two values).
      if let first = value.utf8.first, let last = value.utf8.last,
        first == 0x20 || first == 0x09 || last == 0x20 || last == 0x09
      {
        return fail(.invalidRequest, "A header value starts or ends with whitespace.")
      }
      if pseudo {
        switch name {
        case ":method": method = value
        case ":scheme": scheme = value
        case ":path": path = value
        case ":authority": authority = value
        case ":protocol": extendedProtocol = value
        default: break
        }
      } else if name.utf8.count == 4, name == "host" {
        hosts.append(value)
      } else if name.utf8.count == 14, name == "content-length" {
        contentLength.append(value)
      }
    }
    if count > limits.maxHeaderCount { return fail(.headersTooLarge, "More than \(limits.maxHeaderCount) header fields.") }
    if bytes > limits.maxHeaderBytes { return fail(.headersTooLarge, "Request headers exceed \(limits.maxHeaderBytes) bytes.") }
    guard let m = method, !m.isEmpty else { return fail(.invalidRequest, ":method is missing.") }
    var httpMethod = HTTPMethod(rawValue: m)
    // Methods are case-sensitive (RFC 9110 §9.1): `get` is not GET, and `options` must not slip past
    // the preflight path. Accept what the HTTP/1.1 side's parser accepts: the methods NIO names.
    if case .RAW = httpMethod { return fail(.invalidRequest, "Unknown method.") }
    // Extended CONNECT (RFC 8441) for WebSockets only; plain CONNECT (a TCP proxy) never.
    var websocket = false
    if httpMethod == .CONNECT {
      guard let p = extendedProtocol else { return fail(.invalidRequest, "CONNECT is not supported.") }
      guard p.lowercased() == "websocket" else { return fail(.invalidRequest, "Only the websocket protocol is supported with extended CONNECT.") }
      guard !endStream, contentLength.isEmpty else { return fail(.invalidRequest, "An extended CONNECT stream carries no request body.") }
      websocket = true
      httpMethod = .GET  // resolved, authorised and forwarded as the HTTP/1.1 upgrade GET it becomes
    } else if extendedProtocol != nil {
      return fail(.invalidRequest, ":protocol is only for CONNECT.")
    }
    // This listener is TLS: `:scheme http` names a resource the request cannot be for.
    guard let s = scheme, s == "https" else { return fail(.invalidRequest, ":scheme must be https.") }
    guard let p = path, !p.isEmpty else { return fail(.invalidRequest, ":path is missing.") }
    if p.utf8.count > limits.maxURIBytes { return fail(.uriTooLong, GatewayRefusal.uriTooLong.message) }

    // Host (§2): :authority or Host; when both, they must agree; several Host fields are refused.
    guard hosts.count <= 1 else { return fail(.invalidHost, "Several host fields.") }
    guard let rawHost = authority ?? hosts.first, let host = HostName.normalize(rawHost) else {
      return fail(.invalidHost, authority == nil && hosts.isEmpty ? ":authority is missing." : "The host is not a valid host name.")
    }
    if let a = authority, let h = hosts.first {
      guard HostName.normalize(a) == HostName.normalize(h) else { return fail(.invalidHost, ":authority and host disagree.") }
    }

    // Routes are matched on the normal form, and that form is what is forwarded (PRODUCT.md §3).
    let normalized: RequestPath.Normalized
    if p == "*" {
      guard httpMethod == .OPTIONS else { return fail(.invalidRequest, "The asterisk form is only for OPTIONS.") }
      normalized = RequestPath.Normalized(target: "*", path: "*")
    } else {
      guard p.hasPrefix("/") else { return fail(.invalidRequest, "Malformed :path.") }
      switch RequestPath.normalize(target: Substring(p)) {
      case .success(let n): normalized = n
      case .failure(let problem): return fail(.invalidRequest, problem.message)
      }
    }

    var framing = BodyFraming.none
    if contentLength.count > 1 { return fail(.invalidRequest, "Several content-length fields.") }
    if let cl = contentLength.first {
      guard let n = RequestValidation.parseContentLength(cl) else { return fail(.invalidRequest, "content-length must be a decimal number.") }
      if n > limits.maxBodyBytes { return fail(.payloadTooLarge, "The request body is larger than \(limits.maxBodyBytes) bytes.") }
      framing = n == 0 ? .none : .contentLength(n)
    } else if !endStream && !websocket {
      framing = .streamed
    }
    if endStream, case .contentLength = framing { return fail(.invalidRequest, "content-length promises a body the stream does not have.") }
    return .success(
      Validated(
        request: ValidatedRequest(host: host, target: normalized.target, path: normalized.path, body: framing, websocket: websocket),
        method: httpMethod))
  }
}
