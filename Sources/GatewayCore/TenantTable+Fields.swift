/// A shop's and a key's fields, read from the table's flat arrays by reference (``ShopRef``,
/// ``KeyRef``), without allocation on the hot path; `String` forms for the admin API and tools.
extension TenantTable {
  // MARK: shop fields

  @inlinable public func isSuspended(_ shop: ShopRef) -> Bool {
    if let o = overlay, Int(shop.index) >= o.baseShopCount {
      return o.segment.isSuspended(ShopRef(Int(shop.index) - o.baseShopCount))
    }
    return shopFlags[Int(shop.index)] & TenantTable.flagSuspended != 0
  }
  @inlinable public func isHeadless(_ shop: ShopRef) -> Bool {
    if let o = overlay, Int(shop.index) >= o.baseShopCount {
      return o.segment.isHeadless(ShopRef(Int(shop.index) - o.baseShopCount))
    }
    return shopFlags[Int(shop.index)] & TenantTable.flagHeadless != 0
  }
  /// The shop's `id` as a string.
  public func shopID(_ shop: ShopRef) -> String { withShopID(shop) { String(decoding: $0, as: UTF8.self) } }
  /// The shop's subdomain label.
  public func subdomain(_ shop: ShopRef) -> String { withSubdomain(shop) { String(decoding: $0, as: UTF8.self) } }
  /// Calls `body` with the bytes of the shop's `id`.
  @inlinable public func withShopID<R>(_ shop: ShopRef, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    if let o = overlay, Int(shop.index) >= o.baseShopCount {
      return try o.segment.withShopID(ShopRef(Int(shop.index) - o.baseShopCount), body)
    }
    return try shopIDs.withElement(Int(shop.index), body)
  }
  /// Calls `body` with the bytes of the shop's subdomain.
  @inlinable public func withSubdomain<R>(_ shop: ShopRef, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R
  {
    if let o = overlay, Int(shop.index) >= o.baseShopCount {
      return try o.segment.withSubdomain(ShopRef(Int(shop.index) - o.baseShopCount), body)
    }
    return try subdomains.withElement(Int(shop.index), body)
  }
  /// The shop's `allowedOrigins`, normalised.
  public func allowedOrigins(_ shop: ShopRef) -> [String] {
    if let o = overlay, Int(shop.index) >= o.baseShopCount {
      return o.segment.allowedOrigins(ShopRef(Int(shop.index) - o.baseShopCount))
    }
    let i = Int(shop.index)
    return (Int(originStarts[i])..<Int(originStarts[i + 1])).map { origins.string($0) }
  }
  /// True when the normalised `origin` is one of the shop's `allowedOrigins` (exact byte match).
  @inlinable
  public func allowsOrigin(_ shop: ShopRef, _ origin: UnsafeRawBufferPointer) -> Bool {
    if let o = overlay, Int(shop.index) >= o.baseShopCount {
      return o.segment.allowsOrigin(ShopRef(Int(shop.index) - o.baseShopCount), origin)
    }
    let i = Int(shop.index)
    var j = Int(originStarts[i])
    let end = Int(originStarts[i + 1])
    while j < end {
      if origins.equals(j, origin) { return true }
      j += 1
    }
    return false
  }
  /// True when an active shop's `allowedOrigins` contain the normalised `origin` (CORS preflights
  /// on API hosts; no allocation).
  @inlinable
  public func hasActiveShop(allowingOrigin origin: UnsafeRawBufferPointer) -> Bool {
    if let o = overlay {
      if o.segment.hasActiveShop(allowingOrigin: origin) { return true }
      return ownShops(allowingOrigin: origin).contains { !o.hides(Int($0)) }
    }
    return !ownShops(allowingOrigin: origin).isEmpty
  }
  @inlinable func ownShops(allowingOrigin origin: UnsafeRawBufferPointer) -> ArraySlice<Int32> {
    let h = hashBytes(origin, seed: seed)
    guard let i = originIndex.find(hash: h, matches: { distinctOrigins.equals($0, origin) }) else { return [] }
    return originShops[Int(originShopStarts[i])..<Int(originShopStarts[i + 1])]
  }

  /// The shop's id hashed with a fixed seed (equal across tables and reloads; see `stableShopHashes`).
  @inlinable public func stableShopHash(_ shop: ShopRef) -> UInt64 {
    if let o = overlay, Int(shop.index) >= o.baseShopCount {
      return o.segment.stableShopHash(ShopRef(Int(shop.index) - o.baseShopCount))
    }
    return stableShopHashes[Int(shop.index)]
  }
  /// The shop's rate-limit override, if the snapshot set one.
  /// Checked on every request: a snapshot without overrides (the usual case) costs no hash lookup.
  public func rateLimit(_ shop: ShopRef) -> RateLimitOverride? {
    if let o = overlay, Int(shop.index) >= o.baseShopCount {
      return o.segment.rateLimit(ShopRef(Int(shop.index) - o.baseShopCount))
    }
    return rateLimitShops.isEmpty ? nil : rateLimitShops[shop.index]
  }
  /// The shop's custom domains.
  public func customDomains(_ shop: ShopRef) -> [String] {
    if let o = overlay, Int(shop.index) >= o.baseShopCount {
      return o.segment.customDomains(ShopRef(Int(shop.index) - o.baseShopCount))
    }
    let i = Int(shop.index)
    return (Int(domainStarts[i])..<Int(domainStarts[i + 1])).map { domains.string($0) }
  }
  /// The shop's live keys.
  public func keys(of shop: ShopRef) -> [KeyRef] {
    if let o = overlay, Int(shop.index) >= o.baseShopCount {
      return o.segment.keys(of: ShopRef(Int(shop.index) - o.baseShopCount)).map { KeyRef(o.baseKeyCount + Int($0.index)) }
    }
    let i = Int(shop.index)
    return shopKeys[Int(shopKeyStarts[i])..<Int(shopKeyStarts[i + 1])].map { KeyRef(Int($0)) }
  }
  /// Every shop, in snapshot order (then the overlay's).
  public var shops: some Sequence<ShopRef> {
    let o = overlay
    return (0..<shopRefBound).lazy.filter { i in o.map { !$0.hides(i) } ?? true }.map(ShopRef.init)
  }

  /// The shop as a snapshot input record (the snapshot's shape; admin API, change sets, folds).
  public func shopInput(_ shop: ShopRef) -> ShopInput {
    ShopInput(
      id: shopID(shop), subdomain: subdomain(shop), customDomains: customDomains(shop), headlessMode: isHeadless(shop),
      allowedOrigins: allowedOrigins(shop), status: isSuspended(shop) ? "suspended" : "active", rateLimit: rateLimit(shop))
  }

  /// The key as a snapshot input record.
  public func keyInput(_ key: KeyRef) -> KeyInput {
    KeyInput(
      id: keyID(key), shopID: shopID(shop(of: key)), sha256: keyDigestHex(key), kind: kind(of: key).description,
      mode: mode(of: key).description, revoked: false)
  }

  // MARK: key fields

  @inlinable public func shop(of key: KeyRef) -> ShopRef {
    if let o = overlay, Int(key.index) >= o.baseKeyCount {
      return ShopRef(o.baseShopCount + Int(o.segment.keyShops[Int(key.index) - o.baseKeyCount]))
    }
    return ShopRef(Int(keyShops[Int(key.index)]))
  }
  @inlinable func keyFlag(_ key: KeyRef) -> UInt8 {
    if let o = overlay, Int(key.index) >= o.baseKeyCount { return o.segment.keyFlags[Int(key.index) - o.baseKeyCount] }
    return keyFlags[Int(key.index)]
  }
  @inlinable public func kind(of key: KeyRef) -> KeyKind { keyFlag(key) & 1 == 0 ? .secret : .publishable }
  @inlinable public func mode(of key: KeyRef) -> KeyMode { keyFlag(key) & 2 == 0 ? .live : .test }
  /// The key's snapshot `id` (never the key itself).
  public func keyID(_ key: KeyRef) -> String { withKeyID(key) { String(decoding: $0, as: UTF8.self) } }
  @inlinable public func withKeyID<R>(_ key: KeyRef, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    if let o = overlay, Int(key.index) >= o.baseKeyCount {
      return try o.segment.keyIDs.withElement(Int(key.index) - o.baseKeyCount, body)
    }
    return try keyIDs.withElement(Int(key.index), body)
  }
  /// The key's digest.
  @inlinable public func keyDigest(_ key: KeyRef) -> KeyDigest {
    if let o = overlay, Int(key.index) >= o.baseKeyCount { return o.segment.keyDigests[Int(key.index) - o.baseKeyCount] }
    return keyDigests[Int(key.index)]
  }

  /// The key's digest in hex (what the snapshot holds; safe to show).
  public func keyDigestHex(_ key: KeyRef) -> String { keyDigest(key).hex }
  /// Every live key.
  public var keys: some Sequence<KeyRef> {
    let o = overlay
    let baseKeys = keyDigests.count
    let shops = keyShops
    return (0..<(baseKeys + (o?.segment.keyCount ?? 0))).lazy.filter { k in
      guard let o, k < baseKeys else { return true }
      return !o.hides(Int(shops[k]))
    }.map(KeyRef.init)
  }
}
