/// What the plain-HTTP listener (`listen.http_address`, PRODUCT.md §10) answers. Nothing on it is
/// ever forwarded: it serves ACME http-01 tokens, sends every known host to https, and refuses the
/// rest.
public enum PlainHTTPAnswer: Equatable, Sendable {
  /// `200 text/plain` with the key authorization (RFC 8555 §8.3).
  case challenge(keyAuthorization: String)
  /// `308` with this `Location`.
  case redirect(location: String)
  case refuse(GatewayRefusal)
}

public enum PlainHTTPRouting {
  /// The prefix of http-01 paths (RFC 8555 §8.3).
  public static let challengePrefix = "/.well-known/acme-challenge/"

  /// - Parameters:
  ///   - target: the request target as sent (origin form, or absolute form).
  ///   - hostHeader: the `Host` header, nil when absent.
  ///   - httpsPort: `listen.https_redirect_port` (omitted from the URL when 443).
  ///   - challenge: the key authorization of a pending http-01 token, if any.
  public static func answer(
    target: String, hostHeader: String?, platform: PlatformHosts, table: TenantTable, httpsPort: Int,
    challenge: (String) -> String?
  ) -> PlainHTTPAnswer {
    var pathAndQuery = target
    var authority: String? = nil
    // Absolute form (RFC 9112 §3.2.2): the authority in the target wins over Host.
    if target.lowercased().hasPrefix("http://") {
      let rest = target.dropFirst(7)
      let slash = rest.firstIndex(of: "/") ?? rest.firstIndex(of: "?") ?? rest.endIndex
      authority = String(rest[..<slash])
      pathAndQuery = rest[slash...].isEmpty ? "/" : String(rest[slash...])
      if pathAndQuery.hasPrefix("?") { pathAndQuery = "/" + pathAndQuery }
    }
    guard pathAndQuery.hasPrefix("/") || pathAndQuery == "*" else { return .refuse(.invalidRequest) }
    // The challenge first: a token is unguessable, and the CA's request may carry any Host form.
    if pathAndQuery.hasPrefix(challengePrefix) {
      let token = pathAndQuery.dropFirst(challengePrefix.count)
      if !token.isEmpty, !token.contains("/"), !token.contains("?"), let body = challenge(String(token)) {
        return .challenge(keyAuthorization: body)
      }
    }
    guard let raw = authority ?? hostHeader, let host = HostName.normalize(raw) else {
      return .refuse(.invalidHost)
    }
    // §1: an absolute-form target whose authority differs from Host is refused, as on TLS.
    if authority != nil, let hostHeader, HostName.normalize(hostHeader) != host { return .refuse(.invalidHost) }
    guard isKnown(host, platform: platform, table: table) else { return .refuse(.unknownHost) }
    let port = httpsPort == 443 ? "" : ":\(httpsPort)"
    // The host is normalised (no userinfo, no port), and the path is the client's own bytes, so the
    // Location cannot name another origin.
    return .redirect(location: "https://\(host)\(port)\(pathAndQuery == "*" ? "/" : pathAndQuery)")
  }

  /// An API or dashboard host, or a host that resolves to a shop in the table.
  static func isKnown(_ host: String, platform: PlatformHosts, table: TenantTable) -> Bool {
    var h = host
    return h.withUTF8 { buf -> Bool in
      let bytes = UnsafeRawBufferPointer(buf)
      let (kind, labelLength) = platform.classify(bytes)
      switch kind {
      case .api, .dashboard: return true
      case .subdomain: return table.shop(subdomain: UnsafeRawBufferPointer(rebasing: bytes[0..<labelLength])) != nil
      case .customDomain: return table.shop(customDomain: bytes) != nil
      }
    }
  }
}
