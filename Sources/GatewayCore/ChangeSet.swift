/// One edit of the tenant table (PRODUCT.md §6 "Changes"): whole shop and key records that insert
/// or replace by `id`, and ids to remove. Every field but `version` is optional.
public struct ChangeSet: Sendable {
  /// Becomes the table's version once applied.
  public var version: String
  /// When set, the table's version must equal it (else `stale_base`).
  public var base: String?
  public var shops: [ShopInput]
  /// Removing a shop removes its keys.
  public var removeShops: [String]
  public var apiKeys: [KeyInput]
  public var removeApiKeys: [String]

  public init(
    version: String, base: String? = nil, shops: [ShopInput] = [], removeShops: [String] = [], apiKeys: [KeyInput] = [],
    removeApiKeys: [String] = []
  ) {
    self.version = version
    self.base = base
    self.shops = shops
    self.removeShops = removeShops
    self.apiKeys = apiKeys
    self.removeApiKeys = removeApiKeys
  }

  /// Shops and keys the change set names.
  public var entityCount: Int { shops.count + removeShops.count + apiKeys.count + removeApiKeys.count }
}

extension TenantTable {
  /// The rule name of a change set whose `base` is not the table's version.
  public static let staleBaseRule = "stale_base"

  /// This table with `changes` applied in order, or every rule the first failing one broke.
  ///
  /// The result shares this table's base arrays: the work is proportional to the overlay (the shops
  /// changed since the base was built, which ``folded()`` keeps small) and the change, never to the
  /// base. Each change set is validated against the table as it would stand after it, every rule of
  /// §6, and applied whole or not at all; the returned table carries the last one's `version`.
  /// A batch is validated once at the end (the cheap path for many change sets a second); when that
  /// fails, the caller retries them one at a time to find which one is refused.
  public func applying(_ changes: [ChangeSet], platform: PlatformHosts?) throws(SnapshotValidationError) -> TenantTable {
    var work = OverlayWork(table: self)
    var version = self.version
    for change in changes {
      guard !change.version.isEmpty else {
        throw SnapshotValidationError(violations: [.init(rule: "invalid_field", examples: ["version is missing"], count: 1)])
      }
      if let base = change.base, base != version {
        throw SnapshotValidationError(violations: [
          .init(rule: Self.staleBaseRule, examples: ["base \(quoted(base)) is not the table's version \(quoted(version))"], count: 1)
        ])
      }
      try work.apply(change)
      version = change.version
    }
    return try work.finish(version: version, platform: platform)
  }

  /// One change set (see ``applying(_:platform:)-([ChangeSet],_)``).
  public func applying(_ change: ChangeSet, platform: PlatformHosts?) throws(SnapshotValidationError) -> TenantTable {
    try applying([change], platform: platform)
  }

  /// The same content as one flat table (no overlay), in the same lineage: the fold of an overlay
  /// that has grown. Linear in the table; run off the request path.
  public func folded(platform: PlatformHosts?) throws(SnapshotValidationError) -> TenantTable {
    var builder = TenantTableBuilder(version: version, platform: platform, lineage: lineage)
    builder.reserve(shops: shopCount, keys: keyCount)
    for s in shops { builder.addShop(shopInput(s)) }
    for k in keys { builder.addKey(keyInput(k)) }
    return try builder.finish()
  }

  /// True when the overlay has grown past the point where a fold pays (more than 1/16 of the base,
  /// and at least 4 096 shops).
  public var wantsFold: Bool {
    guard let o = overlay else { return false }
    return o.segment.shopCount + o.hidden.count > max(4096, shopIDs.count / 16)
  }
}

/// The overlay being rebuilt for a change set: records by id, and the base shops hidden.
struct OverlayWork {
  let table: TenantTable
  var shops: [String: ShopInput] = [:]
  var shopOrder: [String] = []
  var keys: [String: KeyInput] = [:]
  var hidden: Set<Int32>

  init(table: TenantTable) {
    self.table = table
    hidden = table.overlay?.hidden ?? []
    if let o = table.overlay {
      let seg = o.segment
      for s in seg.shops { put(seg.shopInput(s)) }
      for k in seg.keys {
        let input = seg.keyInput(k)
        keys[input.id] = input
      }
    }
  }

  mutating func put(_ shop: ShopInput) {
    if shops.updateValue(shop, forKey: shop.id) == nil { shopOrder.append(shop.id) }
  }

  /// The base shop with this id, when it is still visible.
  func visibleBaseShop(_ id: String) -> Int? {
    var id = id
    return id.withUTF8 { raw -> Int? in
      guard let i = table.ownShop(id: UnsafeRawBufferPointer(raw)), !hidden.contains(Int32(i)) else { return nil }
      return i
    }
  }

  /// Moves base shop `i` (and all its keys) into the overlay, hiding it in the base.
  mutating func pull(_ i: Int) {
    guard hidden.insert(Int32(i)).inserted else { return }
    put(table.shopInput(ShopRef(i)))
    for k in table.shopKeys[Int(table.shopKeyStarts[i])..<Int(table.shopKeyStarts[i + 1])] {
      let input = table.keyInput(KeyRef(Int(k)))
      keys[input.id] = input
    }
  }

  mutating func apply(_ change: ChangeSet) throws(SnapshotValidationError) {
    var log = ViolationLog()
    var seenShops = Set<String>()
    for s in change.shops where !seenShops.insert(s.id).inserted {
      log.add("conflicting_change", "shop \(quoted(s.id)) appears twice in the change set")
    }
    for id in change.removeShops where seenShops.contains(id) {
      log.add("conflicting_change", "shop \(quoted(id)) is both replaced and removed")
    }
    var seenKeys = Set<String>()
    for k in change.apiKeys where !seenKeys.insert(k.id).inserted {
      log.add("conflicting_change", "key \(quoted(k.id)) appears twice in the change set")
    }
    for id in change.removeApiKeys where seenKeys.contains(id) {
      log.add("conflicting_change", "key \(quoted(id)) is both replaced and removed")
    }
    guard log.isEmpty else { throw log.error }

    for s in change.shops {
      if let i = visibleBaseShop(s.id) { pull(i) }
      put(s)
    }
    for id in change.removeShops {
      if let i = visibleBaseShop(id) { pull(i) }
      guard shops[id] != nil else {
        log.add("unknown_shop", "removeShops names \(quoted(id)), which is not a shop")
        continue
      }
      if shops.removeValue(forKey: id) != nil {
        shopOrder.removeAll { $0 == id }
        keys = keys.filter { $0.value.shopID != id }
      }
    }
    for k in change.apiKeys {
      // Where the key lived (it may move shops) and where it goes both join the overlay.
      if let old = baseKey(k.id) { pull(Int(table.keyShops[old])) }
      if let i = visibleBaseShop(k.shopID) { pull(i) }
      keys[k.id] = k.revoked ? nil : k
    }
    for id in change.removeApiKeys {
      if let old = baseKey(id) { pull(Int(table.keyShops[old])) }
      if keys.removeValue(forKey: id) == nil {
        log.add("unknown_key", "removeApiKeys names \(quoted(id)), which is not a live key")
      }
    }
    guard log.isEmpty else { throw log.error }
  }

  /// The visible base key with this id.
  func baseKey(_ id: String) -> Int? {
    var id = id
    return id.withUTF8 { raw -> Int? in
      guard let k = table.ownKey(id: UnsafeRawBufferPointer(raw)), !hidden.contains(table.keyShops[k]) else { return nil }
      return k
    }
  }

  /// Builds the overlay (validating it on its own), then checks it against the visible base.
  func finish(version: String, platform: PlatformHosts?) throws(SnapshotValidationError) -> TenantTable {
    var builder = TenantTableBuilder(version: version, platform: platform, seed: table.seed ^ 0x0FE7_1A40)
    builder.reserve(shops: shops.count, keys: keys.count)
    for id in shopOrder { builder.addShop(shops[id]!) }
    // Keys in a stable order (error messages, and the same table for the same input).
    for id in keys.keys.sorted() { builder.addKey(keys[id]!) }
    let segment = try builder.finish()

    var log = ViolationLog()
    let hides = { (i: Int) in hidden.contains(Int32(i)) }
    for s in 0..<segment.shopIDs.count {
      let id = segment.shopIDs.string(s)
      segment.subdomains.withElement(s) { label in
        if let i = table.ownShop(subdomain: label), !hides(i) {
          log.add("duplicate_subdomain", "shop \(quoted(id)) and shop \(quoted(table.shopIDs.string(i))) both have subdomain \(quoted(label))")
        }
      }
      for d in Int(segment.domainStarts[s])..<Int(segment.domainStarts[s + 1]) {
        segment.domains.withElement(d) { host in
          if let i = table.ownShop(customDomain: host), !hides(i) {
            log.add("duplicate_custom_domain", "\(quoted(host)) is mapped by shop \(table.shopIDs.string(i)) and shop \(id)")
          }
        }
      }
    }
    for k in 0..<segment.keyDigests.count {
      if let other = table.ownKey(digest: segment.keyDigests[k]), !hides(Int(table.keyShops[other])) {
        log.add("duplicate_key_sha256", "key \(quoted(segment.keyIDs.string(k))) repeats the sha256 of key \(quoted(table.keyIDs.string(other)))")
      }
      let dupID = segment.keyIDs.withElement(k) { id -> Int? in
        guard let other = table.ownKey(id: id), !hides(Int(table.keyShops[other])) else { return nil }
        return other
      }
      if dupID != nil { log.add("duplicate_key_id", "key \(quoted(segment.keyIDs.string(k))) is already a key of another shop") }
    }
    guard log.isEmpty else { throw log.error }
    let overlay: TableOverlay? =
      segment.shopIDs.count == 0 && hidden.isEmpty ? nil : TableOverlay(segment: segment, hidden: hidden, base: table)
    return TenantTable(base: table, overlay: overlay, version: version)
  }
}
