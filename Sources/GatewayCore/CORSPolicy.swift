/// The answer to a CORS preflight (`OPTIONS` with `Access-Control-Request-Method`), decided at the
/// edge and never forwarded (PRODUCT.md §3).
public enum PreflightDecision: Sendable, Equatable {
  /// 204 with `Access-Control-Allow-Origin: origin` and `Access-Control-Allow-Methods: methods`.
  case allow(origin: String, methods: String)
  /// 403 (or the host/route refusal) without any CORS header.
  case refuse(GatewayRefusal)
}

extension TenantResolver {
  /// Methods a preflight may allow when the route does not limit publishable keys.
  public static let defaultCORSMethods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]

  /// Decides a preflight. Preflights carry no key, so on a shop host the host's shop decides, and
  /// on an API host the set of active shops whose `allowedOrigins` contain the Origin (an index
  /// built with the table). A dashboard host is no shop: nothing is allowed there.
  public func preflight(
    host: String, path: String, origin rawOrigin: String?, requestedMethod: String, in table: TenantTable
  ) -> PreflightDecision {
    let (hostClass, labelLength) = settings.platform.classify(host)
    var hostShop: ShopRef? = nil
    var host = host
    switch hostClass {
    case .subdomain:
      hostShop = host.withUTF8 { table.shop(subdomain: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer($0)[0..<labelLength])) }
      if hostShop == nil { return .refuse(.unknownHost) }
    case .customDomain:
      hostShop = host.withUTF8 { table.shop(customDomain: UnsafeRawBufferPointer($0)) }
      if hostShop == nil { return .refuse(.unknownHost) }
    case .dashboard:
      return .refuse(.originNotAllowed)
    case .api:
      break
    }
    guard let routeIndex = settings.routes.match(path: path) else { return .refuse(.notFound) }
    let route = settings.routes.routes[routeIndex]
    if hostClass == .api && route.accepts.intersection(.keys).isEmpty { return .refuse(.notFound) }

    guard let raw = rawOrigin, let origin = Origin.normalize(raw) else { return .refuse(.originNotAllowed) }
    var o = origin
    let allowed: Bool = o.withUTF8 { bytes in
      let b = UnsafeRawBufferPointer(bytes)
      if let shop = hostShop {
        return !table.isSuspended(shop) && table.allowsOrigin(shop, b)
      }
      return table.hasActiveShop(allowingOrigin: b)
    }
    guard allowed else {
      if let shop = hostShop, table.isSuspended(shop) { return .refuse(.shopSuspended) }
      return .refuse(.originNotAllowed)
    }
    let methods = route.publishableMethods ?? Self.defaultCORSMethods
    guard methods.contains(requestedMethod.uppercased()) else { return .refuse(.methodNotAllowedForKey) }
    return .allow(origin: origin, methods: methods.joined(separator: ", "))
  }
}
