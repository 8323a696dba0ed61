/// A session or customer token whose signature, issuer and lifetime were verified.
public struct VerifiedToken: Sendable, Equatable {
  /// `sub`: the dashboard user, or the customer.
  public var subject: String
  /// `shop_id`: the shop the token belongs to.
  public var shopID: String
  /// `exp`, seconds since 1970.
  public var expires: Int

  public init(subject: String, shopID: String, expires: Int) {
    self.subject = subject
    self.shopID = shopID
    self.expires = expires
  }
}

/// Verifies session cookies and customer tokens (PRODUCT.md §2 "Sessions and customer tokens").
/// The resolver asks; the implementation (signatures, a per-loop cache) lives in GatewaySigning.
public protocol SessionVerifying {
  /// The verified claims, or `nil` for a bad, expired or wrongly signed token.
  mutating func verify(_ token: String) -> VerifiedToken?
}

/// The `Cookie` request header (RFC 6265 §5.4, §4.2.1): `name=value` pairs separated by `;`.
public enum CookieHeader {
  public enum Lookup: Equatable, Sendable {
    case absent
    case value(String)
    /// The cookie appears more than once (across one or several `Cookie` fields): ambiguous, so
    /// refused rather than picking one — a subdomain can plant a second cookie with the same name.
    case duplicate
  }

  /// Finds cookie `name` in one or more `Cookie` header values.
  public static func find(_ name: String, in headerValues: [String]) -> Lookup {
    var found: String? = nil
    for header in headerValues {
      for pair in header.split(separator: ";", omittingEmptySubsequences: true) {
        let trimmed = pair.drop { $0 == " " || $0 == "\t" }
        guard let eq = trimmed.firstIndex(of: "=") else { continue }
        let n = trimmed[..<eq].trimmingSpaces()
        guard n == name else { continue }
        var v = trimmed[trimmed.index(after: eq)...].trimmingSpaces()
        // cookie-value may be wrapped in DQUOTEs (RFC 6265 §4.1.1).
        if v.count >= 2, v.hasPrefix("\""), v.hasSuffix("\"") { v = v.dropFirst().dropLast() }
        if found != nil { return .duplicate }
        found = String(v)
      }
    }
    return found.map { .value($0) } ?? .absent
  }
}

extension Substring {
  func trimmingSpaces() -> Substring {
    var s = self
    while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
    while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
    return s
  }
}
