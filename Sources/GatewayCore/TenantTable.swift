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

/// The immutable, compact lookup table built from one snapshot (PRODUCT.md §6).
///
/// Everything is stored in a handful of contiguous arrays: names in ``ByteArena``s, digests inline,
/// shops referred to by `Int32` index, and open-addressing ``SlotIndex``es for the three lookups
/// (subdomain, custom domain, key digest). There is no object per shop, host or key, so a table of a
/// million shops is a few dozen allocations. Tables are never mutated after building: a reload builds
/// a new one and publishes it with one atomic reference swap.
public final class TenantTable: Sendable {
  /// The snapshot's `version` string.
  public let version: String

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

  // Custom domains.
  @usableFromInline let domains: ByteArena
  @usableFromInline let domainShops: [Int32]
  @usableFromInline let domainIndex: SlotIndex

  // Keys (revoked keys are never stored: they are unknown keys).
  @usableFromInline let keyDigests: [KeyDigest]
  @usableFromInline let keyShops: [Int32]
  @usableFromInline let keyFlags: [UInt8]
  @usableFromInline let keyIDs: ByteArena
  @usableFromInline let keyIndex: SlotIndex

  @usableFromInline let seed: UInt64

  @usableFromInline static let flagHeadless: UInt8 = 1
  @usableFromInline static let flagSuspended: UInt8 = 2

  init(
    version: String, shopIDs: ByteArena, subdomains: ByteArena, shopFlags: [UInt8], originStarts: [UInt32],
    origins: ByteArena, rateLimitShops: [Int32: RateLimitOverride], distinctOrigins: ByteArena,
    originShopStarts: [UInt32], originShops: [Int32], originIndex: SlotIndex, shopIDIndex: SlotIndex,
    subdomainIndex: SlotIndex, domains: ByteArena, domainShops: [Int32], domainIndex: SlotIndex,
    keyDigests: [KeyDigest], keyShops: [Int32], keyFlags: [UInt8], keyIDs: ByteArena, keyIndex: SlotIndex,
    seed: UInt64
  ) {
    self.version = version
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
    self.domainIndex = domainIndex
    self.keyDigests = keyDigests
    self.keyShops = keyShops
    self.keyFlags = keyFlags
    self.keyIDs = keyIDs
    self.keyIndex = keyIndex
    self.seed = seed
  }

  /// An empty table (no snapshot loaded yet).
  public static func empty() -> TenantTable {
    var builder = TenantTableBuilder(version: "")
    return try! builder.finish()
  }

  // MARK: counts

  public var shopCount: Int { shopIDs.count }
  public var customDomainCount: Int { domains.count }
  public var keyCount: Int { keyDigests.count }
  /// Host names resolvable to a shop: one subdomain per shop plus every custom domain.
  public var hostCount: Int { subdomains.count + domains.count }

  /// Approximate bytes held by the table's arrays.
  public var byteSize: Int {
    shopIDs.byteSize + subdomains.byteSize + shopFlags.capacity + originStarts.capacity * 4 + origins.byteSize
      + stableShopHashes.capacity * 8
      + shopIDIndex.byteSize + subdomainIndex.byteSize + domains.byteSize + domainShops.capacity * 4
      + domainIndex.byteSize + keyDigests.capacity * 32 + keyShops.capacity * 4 + keyFlags.capacity
      + keyIDs.byteSize + keyIndex.byteSize + rateLimitShops.count * 24 + distinctOrigins.byteSize
      + originShopStarts.capacity * 4 + originShops.capacity * 4 + originIndex.byteSize
  }

  // MARK: lookups (hot path: no allocation)

  /// The shop whose subdomain label is `label` (already lowercase).
  @inlinable
  public func shop(subdomain label: UnsafeRawBufferPointer) -> ShopRef? {
    let h = hashBytes(label, seed: seed)
    return subdomainIndex.find(hash: h) { subdomains.equals($0, label) }.map(ShopRef.init)
  }

  /// The shop a custom domain (normalised) belongs to.
  @inlinable
  public func shop(customDomain host: UnsafeRawBufferPointer) -> ShopRef? {
    let h = hashBytes(host, seed: seed)
    return domainIndex.find(hash: h) { domains.equals($0, host) }.map { ShopRef(Int(domainShops[$0])) }
  }

  /// The shop whose `id` is `id`.
  @inlinable
  public func shop(id: UnsafeRawBufferPointer) -> ShopRef? {
    let h = hashBytes(id, seed: seed)
    return shopIDIndex.find(hash: h) { shopIDs.equals($0, id) }.map(ShopRef.init)
  }

  /// The shop whose `id` is `id`.
  public func shop(id: String) -> ShopRef? {
    var id = id
    return id.withUTF8 { shop(id: UnsafeRawBufferPointer($0)) }
  }

  /// The live (non-revoked) key with this digest.
  @inlinable
  public func key(digest: KeyDigest) -> KeyRef? {
    keyIndex.find(hash: digest.bucketHash) { keyDigests[$0] == digest }.map(KeyRef.init)
  }

  // MARK: shop fields

  @inlinable public func isSuspended(_ shop: ShopRef) -> Bool {
    shopFlags[Int(shop.index)] & TenantTable.flagSuspended != 0
  }
  @inlinable public func isHeadless(_ shop: ShopRef) -> Bool {
    shopFlags[Int(shop.index)] & TenantTable.flagHeadless != 0
  }
  /// The shop's `id` as a string.
  public func shopID(_ shop: ShopRef) -> String { shopIDs.string(Int(shop.index)) }
  /// The shop's subdomain label.
  public func subdomain(_ shop: ShopRef) -> String { subdomains.string(Int(shop.index)) }
  /// Calls `body` with the bytes of the shop's `id`.
  @inlinable public func withShopID<R>(_ shop: ShopRef, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    try shopIDs.withElement(Int(shop.index), body)
  }
  /// Calls `body` with the bytes of the shop's subdomain.
  @inlinable public func withSubdomain<R>(_ shop: ShopRef, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R
  {
    try subdomains.withElement(Int(shop.index), body)
  }
  /// The shop's `allowedOrigins`, normalised.
  public func allowedOrigins(_ shop: ShopRef) -> [String] {
    let i = Int(shop.index)
    return (Int(originStarts[i])..<Int(originStarts[i + 1])).map { origins.string($0) }
  }
  /// True when the normalised `origin` is one of the shop's `allowedOrigins` (exact byte match).
  @inlinable
  public func allowsOrigin(_ shop: ShopRef, _ origin: UnsafeRawBufferPointer) -> Bool {
    let i = Int(shop.index)
    var j = Int(originStarts[i])
    let end = Int(originStarts[i + 1])
    while j < end {
      if origins.equals(j, origin) { return true }
      j += 1
    }
    return false
  }
  /// The active shops whose `allowedOrigins` contain the normalised `origin` (no allocation: a
  /// range into one array).
  @inlinable
  public func shops(allowingOrigin origin: UnsafeRawBufferPointer) -> ArraySlice<Int32> {
    let h = hashBytes(origin, seed: seed)
    guard let i = originIndex.find(hash: h, matches: { distinctOrigins.equals($0, origin) }) else { return [] }
    return originShops[Int(originShopStarts[i])..<Int(originShopStarts[i + 1])]
  }

  /// The shop's rate-limit override, if the snapshot set one.
  /// The shop's id hashed with a fixed seed (equal across tables and reloads; see `stableShopHashes`).
  @inlinable public func stableShopHash(_ shop: ShopRef) -> UInt64 { stableShopHashes[Int(shop.index)] }
  /// Checked on every request: a snapshot without overrides (the usual case) costs no hash lookup.
  public func rateLimit(_ shop: ShopRef) -> RateLimitOverride? {
    rateLimitShops.isEmpty ? nil : rateLimitShops[shop.index]
  }
  /// The shop's custom domains (admin and ops tooling; scans the domain list).
  public func customDomains(_ shop: ShopRef) -> [String] {
    var out: [String] = []
    for (i, s) in domainShops.enumerated() where s == shop.index { out.append(domains.string(i)) }
    return out
  }
  /// Every shop, in snapshot order.
  public var shops: some Sequence<ShopRef> { (0..<shopCount).lazy.map(ShopRef.init) }

  // MARK: key fields

  @inlinable public func shop(of key: KeyRef) -> ShopRef { ShopRef(Int(keyShops[Int(key.index)])) }
  @inlinable public func kind(of key: KeyRef) -> KeyKind {
    keyFlags[Int(key.index)] & 1 == 0 ? .secret : .publishable
  }
  @inlinable public func mode(of key: KeyRef) -> KeyMode { keyFlags[Int(key.index)] & 2 == 0 ? .live : .test }
  /// The key's snapshot `id` (never the key itself).
  public func keyID(_ key: KeyRef) -> String { keyIDs.string(Int(key.index)) }
  @inlinable public func withKeyID<R>(_ key: KeyRef, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    try keyIDs.withElement(Int(key.index), body)
  }
  /// The key's digest.
  @inlinable public func keyDigest(_ key: KeyRef) -> KeyDigest { keyDigests[Int(key.index)] }

  /// The key's digest in hex (what the snapshot holds; safe to show).
  public func keyDigestHex(_ key: KeyRef) -> String { keyDigests[Int(key.index)].hex }
  /// Every live key.
  public var keys: some Sequence<KeyRef> { (0..<keyCount).lazy.map(KeyRef.init) }
}
