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
    if isAlreadyNormal(raw) { return raw }
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

  /// Fast path (no allocation): `https://` or `http://`, a lowercase LDH host with no empty label
  /// and no trailing dot or hyphen edge, and an explicit non-default port or none.
  static func isAlreadyNormal(_ raw: String) -> Bool {
    var s = raw
    return s.withUTF8 { b -> Bool in
      let prefix: Int
      let defaultPort: Int
      if b.count > 8 && b[0] == 0x68 && b[1] == 0x74 && b[2] == 0x74 && b[3] == 0x70 && b[4] == 0x73 && b[5] == 0x3A && b[6] == 0x2F && b[7] == 0x2F {
        prefix = 8; defaultPort = 443  // https://
      } else if b.count > 7 && b[0] == 0x68 && b[1] == 0x74 && b[2] == 0x74 && b[3] == 0x70 && b[4] == 0x3A && b[5] == 0x2F && b[6] == 0x2F {
        prefix = 7; defaultPort = 80  // http://
      } else {
        return false
      }
      var i = prefix
      var labelLength = 0
      var previous: UInt8 = 0x2E
      while i < b.count && b[i] != 0x3A {
        let c = b[i]
        switch c {
        case 0x61...0x7A, 0x30...0x39: labelLength += 1
        case 0x2D:
          if previous == 0x2E { return false }
          labelLength += 1
        case 0x2E:
          if labelLength == 0 || previous == 0x2D { return false }
          labelLength = 0
        default: return false
        }
        if labelLength > 63 { return false }
        previous = c
        i += 1
      }
      if labelLength == 0 || previous == 0x2D || i - prefix > 253 { return false }
      if i == b.count { return true }
      // ":port": digits, no leading zero, not the default, at most 65535.
      i += 1
      guard i < b.count, b[i] != 0x30, b.count - i <= 5 else { return false }
      var port = 0
      while i < b.count {
        guard b[i] >= 0x30 && b[i] <= 0x39 else { return false }
        port = port * 10 + Int(b[i] - 0x30)
        i += 1
      }
      return port <= 65535 && port != defaultPort
    }
  }
}
