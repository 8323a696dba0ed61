/// Origin serialisation for the `allowedOrigins` check (PRODUCT.md §3).
///
/// An origin is `scheme "://" host [":" port]` with a lowercase `http` or `https` scheme, a lowercase
/// host and the default port dropped. Matching is exact on this serialisation. Anything else —
/// `null`, userinfo, paths, queries, wildcards, other schemes, a trailing dot — is not an origin that
/// can ever match, so `normalize` returns `nil` for it.
public enum Origin {
  /// Normalises an `Origin` request header (or, with `allowTrailingSlash`, a snapshot entry, where an
  /// operator may have written `https://acme.com/`).
  public static func normalize(_ raw: String, allowTrailingSlash: Bool = false) -> String? {
    var text = Substring(raw)
    if allowTrailingSlash, text.hasSuffix("/") { text = text.dropLast() }
    guard text.utf8.count <= 300, let colon = text.firstIndex(of: ":"), text[colon...].hasPrefix("://") else {
      return nil
    }
    let scheme = text[..<colon].lowercased()
    let defaultPort: Int
    switch scheme {
    case "https": defaultPort = 443
    case "http": defaultPort = 80
    default: return nil
    }
    let authority = text[text.index(colon, offsetBy: 3)...]
    // No userinfo, path, query, fragment or wildcard; one optional port.
    for c in authority.utf8 {
      switch c {
      case UInt8(ascii: "@"), UInt8(ascii: "/"), UInt8(ascii: "?"), UInt8(ascii: "#"), UInt8(ascii: "*"),
        UInt8(ascii: "\\"), UInt8(ascii: "["), UInt8(ascii: "]"):
        return nil
      default: continue
      }
    }
    var hostPart = authority
    var port = defaultPort
    if let colon = authority.firstIndex(of: ":") {
      hostPart = authority[..<colon]
      let digits = authority[authority.index(after: colon)...]
      guard !digits.isEmpty, digits.utf8.count <= 5, digits.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
        let p = Int(digits), p > 0, p <= 65535
      else { return nil }
      port = p
    }
    // A trailing dot names a different origin in browsers; never equal to a configured one.
    guard !hostPart.isEmpty, !hostPart.hasSuffix("."), let host = HostName.normalize(String(hostPart)),
      !host.hasPrefix("[")
    else { return nil }
    return port == defaultPort ? "\(scheme)://\(host)" : "\(scheme)://\(host):\(port)"
  }
}
