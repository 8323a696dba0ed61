/// Why a host (and optionally a key) resolves the way it does: the answer of `tenant-gateway lookup`
/// and `GET /admin/lookup`. Never contains a key, only the key's snapshot id.
public struct LookupExplanation: Sendable, Equatable {
  public var host: String
  /// `api`, `dashboard`, `subdomain`, `custom_domain`, or `invalid`.
  public var hostClass: String
  /// The rule that decided, in words.
  public var rule: String
  public var shopID: String?
  public var shopSubdomain: String?
  public var shopStatus: String?
  public var headlessMode: Bool?
  public var keyID: String?
  public var keyKind: String?
  public var keyMode: String?
  /// Set when the host and the key disagree, or something is unknown.
  public var problem: String?

  /// As JSON (admin API and `lookup --json`).
  public var json: String {
    var fields: [(String, String)] = [("host", host), ("hostClass", hostClass), ("rule", rule)]
    if let v = shopID { fields.append(("shopId", v)) }
    if let v = shopSubdomain { fields.append(("shopSubdomain", v)) }
    if let v = shopStatus { fields.append(("status", v)) }
    if let v = keyID { fields.append(("keyId", v)) }
    if let v = keyKind { fields.append(("keyKind", v)) }
    if let v = keyMode { fields.append(("keyMode", v)) }
    if let v = problem { fields.append(("problem", v)) }
    var out = "{"
    for (i, (k, v)) in fields.enumerated() {
      if i > 0 { out += "," }
      JSONText.appendQuoted(k, to: &out)
      out += ":"
      JSONText.appendQuoted(v, to: &out)
    }
    if let h = headlessMode { out += ",\"headlessMode\":\(h)" }
    return out + "}"
  }
}

extension TenantResolver {
  /// Explains how `rawHost` (and the key with `keyDigest`, if given) resolve in `table`.
  public func explain(host rawHost: String, keyDigest: KeyDigest? = nil, in table: TenantTable) -> LookupExplanation {
    guard let host = HostName.normalize(rawHost) else {
      return LookupExplanation(host: rawHost, hostClass: "invalid", rule: "not a valid host name", problem: "400 invalid_host")
    }
    var e = LookupExplanation(host: host, hostClass: "", rule: "")
    let (hostClass, labelLength) = settings.platform.classify(host)
    var shop: ShopRef? = nil
    var h = host
    switch hostClass {
    case .api:
      e.hostClass = "api"
      e.rule = "platform.api_hosts: the shop comes from the key"
    case .dashboard:
      e.hostClass = "dashboard"
      e.rule = "platform.dashboard_hosts: the shop comes from the session cookie"
    case .subdomain:
      e.hostClass = "subdomain"
      let label = String(host.prefix(labelLength))
      e.rule = "one label under \(settings.platform.domain): the shop whose subdomain is \"\(label)\""
      shop = h.withUTF8 { table.shop(subdomain: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer($0)[0..<labelLength])) }
      if shop == nil { e.problem = "421 unknown_host: no shop has subdomain \"\(label)\"" }
    case .customDomain:
      e.hostClass = "custom_domain"
      e.rule = "a custom domain from the snapshot"
      shop = h.withUTF8 { table.shop(customDomain: UnsafeRawBufferPointer($0)) }
      if shop == nil { e.problem = "421 unknown_host: no shop maps this domain" }
    }
    if let digest = keyDigest {
      if let key = table.key(digest: digest) {
        e.keyID = table.keyID(key)
        e.keyKind = table.kind(of: key).description
        e.keyMode = table.mode(of: key).description
        let keyShop = table.shop(of: key)
        if let s = shop, s != keyShop {
          e.problem = "403 tenant_mismatch: the key belongs to shop \(table.shopID(keyShop)), the host to shop \(table.shopID(s))"
        }
        if shop == nil && (hostClass == .api) { shop = keyShop }
        if hostClass == .api { e.rule += "; key \(e.keyID!) names the shop" }
      } else {
        e.problem = "401 invalid_api_key: no live key has this sha256 (unknown or revoked)"
      }
    }
    if let s = shop {
      e.shopID = table.shopID(s)
      e.shopSubdomain = table.subdomain(s)
      e.shopStatus = table.isSuspended(s) ? "suspended" : "active"
      e.headlessMode = table.isHeadless(s)
      if table.isSuspended(s) && e.problem == nil { e.problem = "403 shop_suspended" }
    }
    return e
  }
}
