/// Which kind of host a request names, in the order PRODUCT.md §2 classifies them.
public enum HostClass: Sendable, Equatable {
  /// One of `platform.api_hosts`: the shop comes from a key.
  case api
  /// One of `platform.dashboard_hosts`: the shop comes from the session cookie.
  case dashboard
  /// `<label>.<platform domain>`: the shop with that subdomain.
  case subdomain
  /// Any other host: a merchant's custom domain from the snapshot.
  case customDomain
}

/// The configured host names: API hosts, dashboard hosts and the platform domain.
public struct PlatformHosts: Sendable {
  public let apiHosts: [String]
  public let dashboardHosts: [String]
  /// The platform domain, e.g. `platform.example`.
  public let domain: String
  /// `"." + domain`, for the suffix test.
  @usableFromInline let dotDomain: [UInt8]

  /// Builds the classifier. Names are normalised (lowercase, no trailing dot) by the caller.
  public init(apiHosts: [String], dashboardHosts: [String], domain: String) {
    self.apiHosts = apiHosts
    self.dashboardHosts = dashboardHosts
    self.domain = domain
    self.dotDomain = Array(("." + domain).utf8)
  }

  /// First labels of API and dashboard hosts under the platform domain: no shop may use them as its
  /// subdomain (§6), since those hosts are classified first.
  public var reservedSubdomains: Set<String> {
    var out = Set<String>()
    for host in apiHosts + dashboardHosts {
      if let dot = host.firstIndex(of: ".") { out.insert(String(host[..<dot])) } else { out.insert(host) }
    }
    return out
  }

  /// Classifies a normalised host. For `.subdomain`, `labelLength` is the byte length of the label.
  @inlinable
  public func classify(_ host: UnsafeRawBufferPointer) -> (HostClass, labelLength: Int) {
    for api in apiHosts where equalsUTF8(api, host) { return (.api, 0) }
    for dash in dashboardHosts where equalsUTF8(dash, host) { return (.dashboard, 0) }
    let suffix = dotDomain.count
    if host.count > suffix {
      let labelLength = host.count - suffix
      let suffixMatches = dotDomain.withUnsafeBytes { d in
        memcmpBytes(host.baseAddress! + labelLength, d.baseAddress!, suffix)
      }
      if suffixMatches && !host[0..<labelLength].contains(UInt8(ascii: ".")) {
        return (.subdomain, labelLength)
      }
    }
    return (.customDomain, 0)
  }

  /// Classifies a normalised host given as a string.
  public func classify(_ host: String) -> (HostClass, labelLength: Int) {
    var host = host
    return host.withUTF8 { classify(UnsafeRawBufferPointer($0)) }
  }

  /// True when `host` is the platform domain itself or a name under it.
  public func isUnderPlatformDomain(_ host: String) -> Bool {
    host == domain || host.hasSuffix("." + domain)
  }
}

@inlinable
func equalsUTF8(_ s: String, _ bytes: UnsafeRawBufferPointer) -> Bool {
  var s = s
  return s.withUTF8 { u in
    u.count == bytes.count && (u.count == 0 || memcmpBytes(u.baseAddress!, bytes.baseAddress!, u.count))
  }
}
