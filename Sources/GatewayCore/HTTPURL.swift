/// An `http://` or `https://` URL taken apart for a client of our own: the snapshot URL source
/// and the ACME driver both dial a host and port, send `target`, and need the `Host` header as
/// written. One parser, so the two never disagree about what a URL means.
///
/// Deliberately narrow: no user-info, no percent-decoding, no query splitting. What it refuses
/// (another scheme, an empty host, a port outside 1…65535 or not a number) it refuses whole.
public struct HTTPURL: Sendable, Equatable {
  /// `true` for `https://`.
  public var tls: Bool
  /// The host to dial: a name, a dotted IPv4 literal, or an IPv6 literal without its brackets.
  public var host: String
  /// The port to dial: the explicit one, or 443 / 80.
  public var port: Int
  /// The request target: the path and query, `/` when the URL has none.
  public var target: String
  /// The authority exactly as written, for the `Host` header.
  public var hostHeader: String

  /// The name to send as TLS SNI: the host, unless it is an IP literal (RFC 6066 §3 allows
  /// only host names there, and NIOSSL refuses an address).
  public var serverName: String? {
    if host.contains(":") { return nil }
    if host.utf8.allSatisfy({ $0 == UInt8(ascii: ".") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) {
      return nil
    }
    return host
  }

  /// Parses `url`; `nil` when it is not an http(s) URL with a usable host and port.
  public init?(_ url: String) {
    let rest: Substring
    if url.hasPrefix("https://") {
      tls = true
      rest = url.dropFirst(8)
    } else if url.hasPrefix("http://") {
      tls = false
      rest = url.dropFirst(7)
    } else {
      return nil
    }
    let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
    let authority = rest[..<slash]
    if slash == rest.endIndex {
      target = "/"
    } else if rest[slash] == "?" {
      target = "/" + rest[slash...]
    } else {
      target = String(rest[slash...])
    }
    hostHeader = String(authority)
    let defaultPort = tls ? 443 : 80
    if authority.hasPrefix("[") {
      // An IPv6 literal: the colons inside the brackets are not a port separator.
      guard let close = authority.firstIndex(of: "]") else { return nil }
      host = String(authority[authority.index(after: authority.startIndex)..<close])
      let after = authority[authority.index(after: close)...]
      if after.isEmpty {
        port = defaultPort
      } else if after.hasPrefix(":"), let p = Int(after.dropFirst()) {
        port = p
      } else {
        return nil
      }
    } else if let colon = authority.lastIndex(of: ":") {
      host = String(authority[..<colon])
      guard let p = Int(authority[authority.index(after: colon)...]) else { return nil }
      port = p
    } else {
      host = String(authority)
      port = defaultPort
    }
    guard !host.isEmpty, !host.contains("@"), (1...65535).contains(port) else { return nil }
  }
}
