/// The kinds of credential a route may accept (PRODUCT.md §3 `accepts`).
public enum CredentialKind: String, Sendable, CaseIterable {
  case secretKey = "secret_key"
  case publishableKey = "publishable_key"
  case host = "host"
  case session = "session"

  /// The value of the `auth` claim in X-Tenant.
  public var claim: String { rawValue }
}

/// A set of ``CredentialKind``s as a bit set.
public struct CredentialKinds: OptionSet, Sendable, Hashable {
  public let rawValue: UInt8
  public init(rawValue: UInt8) { self.rawValue = rawValue }
  public static let secretKey = CredentialKinds(rawValue: 1)
  public static let publishableKey = CredentialKinds(rawValue: 2)
  public static let host = CredentialKinds(rawValue: 4)
  public static let session = CredentialKinds(rawValue: 8)
  public static let keys: CredentialKinds = [.secretKey, .publishableKey]

  public init(_ kind: CredentialKind) {
    switch kind {
    case .secretKey: self = .secretKey
    case .publishableKey: self = .publishableKey
    case .host: self = .host
    case .session: self = .session
    }
  }

  public init(_ kinds: [CredentialKind]) {
    self = []
    for k in kinds { insert(CredentialKinds(k)) }
  }

  /// The kind a key of `kind` counts as.
  @inlinable public static func key(_ kind: KeyKind) -> CredentialKinds {
    kind == .secret ? .secretKey : .publishableKey
  }
}

/// One prefix rule (PRODUCT.md §3 route options).
public struct Route: Sendable, Equatable {
  public var prefix: String
  public var accepts: CredentialKinds
  /// Methods a publishable key may use here (upper case); `nil` means any.
  public var publishableMethods: [String]?
  /// A JWS-shaped Bearer value here is a customer token, not a key.
  public var customerTokens: Bool
  /// A publishable-key request must carry an `Origin`.
  public var requireOrigin: Bool
  /// The upstream cluster name (also the `aud` claim).
  public var upstream: String

  public init(
    prefix: String, accepts: CredentialKinds, publishableMethods: [String]? = nil, customerTokens: Bool = false,
    requireOrigin: Bool = false, upstream: String = "default"
  ) {
    self.prefix = prefix
    self.accepts = accepts
    self.publishableMethods = publishableMethods
    self.customerTokens = customerTokens
    self.requireOrigin = requireOrigin
    self.upstream = upstream
  }
}

/// Routes compiled for matching: first prefix that matches wins; one pass over the prefixes.
///
/// Prefixes are compared ASCII-case-insensitively (PRODUCT.md §3): `/V1/admin/orders` is the admin
/// route, because backends that route case-insensitively (ASP.NET, many Node routers) would serve it
/// as one. The path itself keeps its case (see ``RequestPath``).
public struct RouteTable: Sendable {
  public let routes: [Route]
  /// Each prefix's bytes, ASCII letters lower-cased.
  @usableFromInline let prefixes: [[UInt8]]

  public init(_ routes: [Route]) {
    self.routes = routes
    self.prefixes = routes.map { $0.prefix.utf8.map(RouteTable.lowercased) }
  }

  /// The table PRODUCT.md §3 ships when `gateway.conf` has no `routes`.
  public static let `default` = RouteTable([
    Route(prefix: "/v1/admin/", accepts: [.secretKey, .session]),
    Route(prefix: "/v1/store/customers/", accepts: [.publishableKey, .secretKey, .session], customerTokens: true),
    Route(prefix: "/v1/store/", accepts: [.publishableKey, .secretKey, .session]),
    Route(prefix: "/v1/", accepts: [.secretKey, .session]),
    Route(prefix: "/", accepts: [.host, .session]),
  ])

  /// Index of the first route whose prefix starts `path` (ASCII case ignored), or `nil`.
  @inlinable
  public func match(path: UnsafeRawBufferPointer) -> Int? {
    for i in 0..<prefixes.count {
      let matched = prefixes[i].withUnsafeBufferPointer { p -> Bool in
        guard p.count <= path.count else { return false }
        for k in 0..<p.count where RouteTable.lowercased(path[k]) != p[k] { return false }
        return true
      }
      if matched { return i }
    }
    return nil
  }

  @inlinable @inline(__always)
  static func lowercased(_ b: UInt8) -> UInt8 {
    b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z") ? b | 0x20 : b
  }

  public func match(path: String) -> Int? {
    var path = path
    return path.withUTF8 { match(path: UnsafeRawBufferPointer($0)) }
  }

  /// Rules that an earlier rule shadows completely (its prefix starts theirs and it accepts at least
  /// as much): `check` warns about these.
  public var shadowedRules: [(rule: Int, by: Int)] {
    var out: [(Int, Int)] = []
    for i in routes.indices {
      for j in 0..<i where prefixes[i].starts(with: prefixes[j]) {
        out.append((i, j))
        break
      }
    }
    return out
  }
}
