/// A shop as an index into the tenant table's arrays.
public struct ShopRef: Hashable, Sendable {
  public let index: Int32
  @inlinable public init(_ index: Int) { self.index = Int32(truncatingIfNeeded: index) }
}

/// An API key as an index into the tenant table's arrays.
public struct KeyRef: Hashable, Sendable {
  public let index: Int32
  @inlinable public init(_ index: Int) { self.index = Int32(truncatingIfNeeded: index) }
}

/// What a key may do, from the snapshot (the gateway never reads meaning out of a key's prefix).
public enum KeyKind: UInt8, Sendable, CustomStringConvertible {
  case secret = 0
  case publishable = 1
  public var description: String { self == .secret ? "secret" : "publishable" }
}

/// Whether a key touches live or test data.
public enum KeyMode: UInt8, Sendable, CustomStringConvertible {
  case live = 0
  case test = 1
  public var description: String { self == .live ? "live" : "test" }
}

/// Per-shop rate-limit override from the snapshot's optional `rateLimit` field.
public struct RateLimitOverride: Hashable, Sendable {
  /// Requests per second, sustained.
  public var rps: UInt32
  /// Bucket size, in requests.
  public var burst: UInt32
  public init(rps: UInt32, burst: UInt32) {
    self.rps = rps
    self.burst = burst
  }
}

/// The immutable, compact lookup table built from one snapshot (PRODUCT.md §6), plus the change
/// sets applied to it since (an overlay, see ``TableOverlay``).
///
/// Everything is stored in a handful of contiguous arrays: names in ``ByteArena``s, digests inline,
/// shops referred to by `Int32` index, and open-addressing ``SlotIndex``es for the three lookups
/// (subdomain, custom domain, key digest). There is no object per shop, host or key, so a table of a
/// million shops is a few dozen allocations. Tables are never mutated after building: a reload builds
/// a new one, a change set builds a new overlay over the same arrays (``applying(_:platform:)``),
/// and either is published with one atomic reference swap.
///
/// With an overlay, refs `0 ..< base count` name the base's shops (and keys) and refs past it the
/// overlay's. A base shop the overlay replaced or removed is *hidden*: lookups that land on it miss,
/// and so do lookups of its domains and keys (the overlay holds every changed shop whole, with all
/// its keys, so a visible base key always belongs to a visible base shop).
public final class TenantTable: Sendable {
  /// The snapshot's (or the last change set's) `version` string.
  public let version: String
  /// Shared by every table derived by change sets and folds from one loaded snapshot; a new
  /// snapshot starts a new lineage (a background fold checks it before publishing).
  public let lineage: UInt64

  // Shops, all indexed by shop index.
  @usableFromInline let shopIDs: ByteArena
  @usableFromInline let subdomains: ByteArena
  @usableFromInline let shopFlags: [UInt8]
  @usableFromInline let originStarts: [UInt32]  // shop i's origins are origins[originStarts[i] ..< originStarts[i+1]]
  @usableFromInline let origins: ByteArena  // serialised origins, normalised at build time
  @usableFromInline let rateLimitShops: [Int32: RateLimitOverride]  // sparse: only shops with an override
  /// Hash of each shop id with a fixed seed: the same shop has the same value in every table, so
  /// per-shop state kept across reloads (rate-limit buckets, the metrics top-K) is keyed by it.
  /// Computed once here, at reload time, never per request.
  @usableFromInline let stableShopHashes: [UInt64]
  /// The fixed seed of ``stableShopHash(_:)``.
  public static let stableHashSeed: UInt64 = 0x5EED_0F_5409
  /// Distinct origins across all shops, and for each the active shops that allow it (CORS
  /// preflights on an API host carry no key: they are decided by this index, built at reload).
  @usableFromInline let distinctOrigins: ByteArena
  @usableFromInline let originShopStarts: [UInt32]
  @usableFromInline let originShops: [Int32]
  @usableFromInline let originIndex: SlotIndex
  @usableFromInline let shopIDIndex: SlotIndex
  @usableFromInline let subdomainIndex: SlotIndex

  // Custom domains; shop i's are domains[domainStarts[i] ..< domainStarts[i+1]].
  @usableFromInline let domains: ByteArena
  @usableFromInline let domainShops: [Int32]
  @usableFromInline let domainStarts: [UInt32]
  @usableFromInline let domainIndex: SlotIndex

  // Keys (revoked keys are never stored: they are unknown keys).
  @usableFromInline let keyDigests: [KeyDigest]
  @usableFromInline let keyShops: [Int32]
  @usableFromInline let keyFlags: [UInt8]
  @usableFromInline let keyIDs: ByteArena
  @usableFromInline let keyIndex: SlotIndex
  /// Key id → key index (change sets replace and remove keys by id).
  @usableFromInline let keyIDIndex: SlotIndex
  /// Shop i's keys are shopKeys[shopKeyStarts[i] ..< shopKeyStarts[i+1]].
  @usableFromInline let shopKeyStarts: [UInt32]
  @usableFromInline let shopKeys: [Int32]

  @usableFromInline let seed: UInt64

  /// Changes applied since the base arrays above were built (nil: the table is a snapshot's).
  @usableFromInline let overlay: TableOverlay?

  @usableFromInline static let flagHeadless: UInt8 = 1
  @usableFromInline static let flagSuspended: UInt8 = 2

  /// Shops, custom domains and keys visible (base minus hidden, plus the overlay).
  public let shopCount: Int
  public let customDomainCount: Int
  public let keyCount: Int

  init(
    version: String, shopIDs: ByteArena, subdomains: ByteArena, shopFlags: [UInt8], originStarts: [UInt32],
    origins: ByteArena, rateLimitShops: [Int32: RateLimitOverride], distinctOrigins: ByteArena,
    originShopStarts: [UInt32], originShops: [Int32], originIndex: SlotIndex, shopIDIndex: SlotIndex,
    subdomainIndex: SlotIndex, domains: ByteArena, domainShops: [Int32], domainStarts: [UInt32], domainIndex: SlotIndex,
    keyDigests: [KeyDigest], keyShops: [Int32], keyFlags: [UInt8], keyIDs: ByteArena, keyIndex: SlotIndex,
    keyIDIndex: SlotIndex, shopKeyStarts: [UInt32], shopKeys: [Int32], seed: UInt64, lineage: UInt64
  ) {
    self.version = version
    self.lineage = lineage
    self.shopIDs = shopIDs
    self.subdomains = subdomains
    self.shopFlags = shopFlags
    self.originStarts = originStarts
    self.origins = origins
    self.rateLimitShops = rateLimitShops
    self.stableShopHashes = (0..<shopIDs.count).map { i in shopIDs.withElement(i) { hashBytes($0, seed: Self.stableHashSeed) } }
    self.distinctOrigins = distinctOrigins
    self.originShopStarts = originShopStarts
    self.originShops = originShops
    self.originIndex = originIndex
    self.shopIDIndex = shopIDIndex
    self.subdomainIndex = subdomainIndex
    self.domains = domains
    self.domainShops = domainShops
    self.domainStarts = domainStarts
    self.domainIndex = domainIndex
    self.keyDigests = keyDigests
    self.keyShops = keyShops
    self.keyFlags = keyFlags
    self.keyIDs = keyIDs
    self.keyIndex = keyIndex
    self.keyIDIndex = keyIDIndex
    self.shopKeyStarts = shopKeyStarts
    self.shopKeys = shopKeys
    self.seed = seed
    self.overlay = nil
    self.shopCount = shopIDs.count
    self.customDomainCount = domains.count
    self.keyCount = keyDigests.count
  }

  /// The same base arrays (shared, not copied) under a new overlay and version.
  init(base b: TenantTable, overlay: TableOverlay?, version: String) {
    self.version = version
    self.lineage = b.lineage
    shopIDs = b.shopIDs
    subdomains = b.subdomains
    shopFlags = b.shopFlags
    originStarts = b.originStarts
    origins = b.origins
    rateLimitShops = b.rateLimitShops
    stableShopHashes = b.stableShopHashes
    distinctOrigins = b.distinctOrigins
    originShopStarts = b.originShopStarts
    originShops = b.originShops
    originIndex = b.originIndex
    shopIDIndex = b.shopIDIndex
    subdomainIndex = b.subdomainIndex
    domains = b.domains
    domainShops = b.domainShops
    domainStarts = b.domainStarts
    domainIndex = b.domainIndex
    keyDigests = b.keyDigests
    keyShops = b.keyShops
    keyFlags = b.keyFlags
    keyIDs = b.keyIDs
    keyIndex = b.keyIndex
    keyIDIndex = b.keyIDIndex
    shopKeyStarts = b.shopKeyStarts
    shopKeys = b.shopKeys
    seed = b.seed
    self.overlay = overlay
    if let o = overlay {
      shopCount = b.shopIDs.count - o.hidden.count + o.segment.shopCount
      customDomainCount = b.domains.count - o.hiddenDomains + o.segment.customDomainCount
      keyCount = b.keyDigests.count - o.hiddenKeys + o.segment.keyCount
    } else {
      shopCount = b.shopIDs.count
      customDomainCount = b.domains.count
      keyCount = b.keyDigests.count
    }
  }

  /// An empty table (no snapshot loaded yet).
  public static func empty() -> TenantTable {
    var builder = TenantTableBuilder(version: "")
    return try! builder.finish()
  }

  // MARK: counts

  /// Host names resolvable to a shop: one subdomain per shop plus every custom domain.
  public var hostCount: Int { shopCount + customDomainCount }
  /// Every `ShopRef` of this table is below this bound (hidden base shops leave gaps).
  public var shopRefBound: Int { shopIDs.count + (overlay?.segment.shopCount ?? 0) }
  /// Shops the overlay holds (changed since the base was built; 0 without one).
  public var overlayShopCount: Int { overlay?.segment.shopCount ?? 0 }
  /// Base shops the overlay replaced or removed.
  public var overlayHiddenCount: Int { overlay?.hidden.count ?? 0 }

  /// Approximate bytes held by the table's arrays.
  public var byteSize: Int {
    shopIDs.byteSize + subdomains.byteSize + shopFlags.capacity + originStarts.capacity * 4 + origins.byteSize
      + stableShopHashes.capacity * 8
      + shopIDIndex.byteSize + subdomainIndex.byteSize + domains.byteSize + domainShops.capacity * 4
      + domainStarts.capacity * 4
      + domainIndex.byteSize + keyDigests.capacity * 32 + keyShops.capacity * 4 + keyFlags.capacity
      + keyIDs.byteSize + keyIndex.byteSize + keyIDIndex.byteSize + shopKeyStarts.capacity * 4 + shopKeys.capacity * 4
      + rateLimitShops.count * 24 + distinctOrigins.byteSize
      + originShopStarts.capacity * 4 + originShops.capacity * 4 + originIndex.byteSize
      + (overlay.map { $0.segment.byteSize + $0.hidden.count * 8 } ?? 0)
  }

  // MARK: lookups in this table's own arrays (the base, ignoring any overlay)

  @inlinable func ownShop(subdomain label: UnsafeRawBufferPointer) -> Int? {
    subdomainIndex.find(hash: hashBytes(label, seed: seed)) { subdomains.equals($0, label) }
  }
  @inlinable func ownShop(customDomain host: UnsafeRawBufferPointer) -> Int? {
    domainIndex.find(hash: hashBytes(host, seed: seed)) { domains.equals($0, host) }.map { Int(domainShops[$0]) }
  }
  @inlinable func ownShop(id: UnsafeRawBufferPointer) -> Int? {
    shopIDIndex.find(hash: hashBytes(id, seed: seed)) { shopIDs.equals($0, id) }
  }
  @inlinable func ownKey(digest: KeyDigest) -> Int? {
    keyIndex.find(hash: digest.bucketHash) { keyDigests[$0] == digest }
  }
  func ownKey(id: UnsafeRawBufferPointer) -> Int? {
    keyIDIndex.find(hash: hashBytes(id, seed: seed)) { keyIDs.equals($0, id) }
  }

  // MARK: lookups (hot path: no allocation)

  /// The shop whose subdomain label is `label` (already lowercase).
  @inlinable
  public func shop(subdomain label: UnsafeRawBufferPointer) -> ShopRef? {
    if let o = overlay {
      if let j = o.segment.ownShop(subdomain: label) { return ShopRef(o.baseShopCount + j) }
      guard let i = ownShop(subdomain: label), !o.hides(i) else { return nil }
      return ShopRef(i)
    }
    return ownShop(subdomain: label).map(ShopRef.init)
  }

  /// The shop a custom domain (normalised) belongs to.
  @inlinable
  public func shop(customDomain host: UnsafeRawBufferPointer) -> ShopRef? {
    if let o = overlay {
      if let j = o.segment.ownShop(customDomain: host) { return ShopRef(o.baseShopCount + j) }
      guard let i = ownShop(customDomain: host), !o.hides(i) else { return nil }
      return ShopRef(i)
    }
    return ownShop(customDomain: host).map(ShopRef.init)
  }

  /// The shop whose `id` is `id`.
  @inlinable
  public func shop(id: UnsafeRawBufferPointer) -> ShopRef? {
    if let o = overlay {
      if let j = o.segment.ownShop(id: id) { return ShopRef(o.baseShopCount + j) }
      guard let i = ownShop(id: id), !o.hides(i) else { return nil }
      return ShopRef(i)
    }
    return ownShop(id: id).map(ShopRef.init)
  }

  /// The shop whose `id` is `id`.
  public func shop(id: String) -> ShopRef? {
    var id = id
    return id.withUTF8 { shop(id: UnsafeRawBufferPointer($0)) }
  }

  /// The shop whose id or subdomain is `idOrSubdomain` (ops tooling and the admin API).
  public func shop(idOrSubdomain: String) -> ShopRef? {
    if let s = shop(id: idOrSubdomain) { return s }
    var label = idOrSubdomain.lowercased()
    return label.withUTF8 { shop(subdomain: UnsafeRawBufferPointer($0)) }
  }

  /// The live (non-revoked) key with this digest.
  @inlinable
  public func key(digest: KeyDigest) -> KeyRef? {
    if let o = overlay {
      if let j = o.segment.ownKey(digest: digest) { return KeyRef(o.baseKeyCount + j) }
      guard let k = ownKey(digest: digest), !o.hides(Int(keyShops[k])) else { return nil }
      return KeyRef(k)
    }
    return ownKey(digest: digest).map(KeyRef.init)
  }

  /// The live key whose snapshot `id` is `id`.
  public func key(id: String) -> KeyRef? {
    var id = id
    return id.withUTF8 { raw -> KeyRef? in
      let b = UnsafeRawBufferPointer(raw)
      if let o = overlay {
        if let j = o.segment.ownKey(id: b) { return KeyRef(o.baseKeyCount + j) }
        guard let k = ownKey(id: b), !o.hides(Int(keyShops[k])) else { return nil }
        return KeyRef(k)
      }
      return ownKey(id: b).map(KeyRef.init)
    }
  }
}

/// The change sets applied to a base table since it was built: the shops they touched, whole and
/// with all their keys, in a small table of their own (`segment`), and the base shops they replaced
/// or removed (`hidden`). Rebuilt for each change set in time proportional to its own size, never
/// the base's; folded into a new base when it grows (``TenantTable/folded()``).
public final class TableOverlay: Sendable {
  @usableFromInline let segment: TenantTable
  @usableFromInline let hidden: Set<Int32>
  @usableFromInline let baseShopCount: Int
  @usableFromInline let baseKeyCount: Int
  let hiddenDomains: Int
  let hiddenKeys: Int

  init(segment: TenantTable, hidden: Set<Int32>, base: TenantTable) {
    self.segment = segment
    self.hidden = hidden
    baseShopCount = base.shopIDs.count
    baseKeyCount = base.keyDigests.count
    var d = 0
    var k = 0
    for i in hidden {
      let s = Int(i)
      d += Int(base.domainStarts[s + 1] - base.domainStarts[s])
      k += Int(base.shopKeyStarts[s + 1] - base.shopKeyStarts[s])
    }
    hiddenDomains = d
    hiddenKeys = k
  }

  @inlinable func hides(_ baseShop: Int) -> Bool { !hidden.isEmpty && hidden.contains(Int32(truncatingIfNeeded: baseShop)) }
}
