/// Builds a ``TenantTable`` from snapshot entries, validating every rule of PRODUCT.md §6. The
/// whole snapshot is rejected when any rule fails.
///
/// Entries are added as the snapshot is parsed and go straight into the table's arenas and indexes
/// (which grow as needed), so no intermediate copy of the document is kept: the peak memory of a
/// reload is the old table, the new table and the input. Uniqueness rules are checked on insert;
/// keys whose shop has not been seen yet (apiKeys before shops in the document) wait and are
/// resolved in ``finish()``.
public struct TenantTableBuilder {
  public var version: String
  let platform: PlatformHosts?
  let reservedSubdomains: Set<String>
  let seed: UInt64
  /// See ``TenantTable/lineage``: a fold keeps its table's; a snapshot load starts a new one.
  let lineage: UInt64

  var shopIDs = ByteArena()
  var subdomains = ByteArena()
  var shopFlags: [UInt8] = []
  var originStarts: [UInt32] = [0]
  var origins = ByteArena()
  var rateLimitShops: [Int32: RateLimitOverride] = [:]
  var shopIDIndex = SlotIndex(expected: 1024)
  var subdomainIndex = SlotIndex(expected: 1024)
  var domains = ByteArena()
  var domainShopIDs: [Int32] = []
  var domainStarts: [UInt32] = [0]
  var domainIndex = SlotIndex(expected: 1024)
  var keyDigests: [KeyDigest] = []
  var keyShops: [Int32] = []
  var keyFlags: [UInt8] = []
  var keyIDs = ByteArena()
  var keyIndex = SlotIndex(expected: 1024)
  var revokedDigests = Set<KeyDigest>()
  var pendingKeys: [PendingKey] = []
  var keyCount = 0
  var violations = ViolationLog()
  /// Tolerant mode: entities left out, with their reasons (see ``addShop(id:subdomain:customDomains:headlessMode:allowedOrigins:status:rateLimit:)``).
  public private(set) var refusals: [Refusal] = []
  let tolerant: Bool
  /// Key ids seen so far (tolerant mode refuses a repeated id at once; strict mode reports it in finish()).
  var keyIDIndexWhileBuilding = SlotIndex(expected: 64)

  /// A shop or key a tolerant build left out.
  public struct Refusal: Error, Sendable, Equatable {
    public enum Entity: String, Sendable { case shop, apiKey = "api_key" }
    public var entity: Entity
    public var id: String
    public var reasons: [String]
    public init(entity: Entity, id: String, reasons: [String]) {
      self.entity = entity
      self.id = id
      self.reasons = reasons
    }
  }

  mutating func keyViolation(_ id: UnsafeRawBufferPointer, _ rule: String, _ example: @autoclosure () -> String) {
    if tolerant {
      refusals.append(Refusal(entity: .apiKey, id: string(id), reasons: ["\(rule): \(example())"]))
    } else {
      violations.add(rule, example())
    }
  }

  /// A key whose shop was not known when it was added.
  struct PendingKey {
    var id: String
    var shopID: String
    var digest: KeyDigest
    var flags: UInt8
    var revoked: Bool
    var label: String
  }

  /// - Parameters:
  ///   - version: the snapshot's `version` (may be set later).
  ///   - platform: the configured hosts, for the rules that involve them (custom domains under the
  ///     platform domain, subdomains that shadow API or dashboard hosts). `nil` skips those rules.
  ///   - seed: hash seed; random per process by default.
  public init(
    version: String = "", platform: PlatformHosts? = nil, seed: UInt64 = UInt64.random(in: 1...UInt64.max),
    lineage: UInt64 = UInt64.random(in: 1...UInt64.max), tolerant: Bool = false
  ) {
    self.version = version
    self.lineage = lineage
    self.tolerant = tolerant
    self.platform = platform
    self.reservedSubdomains = platform?.reservedSubdomains ?? []
    self.seed = seed
  }

  /// Reserves room for the expected number of entries.
  public mutating func reserve(shops: Int, keys: Int) {
    shopIDs.reserve(elements: shops, bytes: shops * 36)
    subdomains.reserve(elements: shops, bytes: shops * 12)
    shopFlags.reserveCapacity(shops)
    originStarts.reserveCapacity(shops + 1)
    domainStarts.reserveCapacity(shops + 1)
    shopIDIndex = SlotIndex(expected: shops)
    subdomainIndex = SlotIndex(expected: shops)
    keyDigests.reserveCapacity(keys)
    keyShops.reserveCapacity(keys)
    keyFlags.reserveCapacity(keys)
    keyIDs.reserve(elements: keys, bytes: keys * 24)
    keyIndex = SlotIndex(expected: keys)
  }

  public var shopCount: Int { shopIDs.count }

  /// Adds one shop. Field errors are recorded; ``finish()`` reports them all.
  public mutating func addShop(_ shop: ShopInput) {
    var id = shop.id
    var sub = shop.subdomain
    var status = shop.status
    id.withUTF8 { i in
      sub.withUTF8 { s in
        status.withUTF8 { st in
          addShop(
            id: UnsafeRawBufferPointer(i), subdomain: UnsafeRawBufferPointer(s), customDomains: shop.customDomains,
            headlessMode: shop.headlessMode, allowedOrigins: shop.allowedOrigins, status: UnsafeRawBufferPointer(st),
            rateLimit: shop.rateLimit)
        }
      }
    }
  }

  /// Adds one shop from raw field bytes (the snapshot parser's path: no `String` per field).
  ///
  /// Every rule is checked before anything is stored. In strict mode (snapshots, change sets) a
  /// broken rule is recorded and ``finish()`` throws; in tolerant mode (a database source, where
  /// one bad row must not hide the others) the shop is left out and listed in ``refusals``.
  public mutating func addShop(
    id: UnsafeRawBufferPointer, subdomain rawSubdomain: UnsafeRawBufferPointer, customDomains: [String],
    headlessMode: Bool, allowedOrigins: [String], status: UnsafeRawBufferPointer, rateLimit: RateLimitOverride?
  ) {
    let index = shopIDs.count
    let seed = self.seed
    var local = ViolationLog()
    if !Self.isValidIdentifier(id) {
      local.add("invalid_shop_id", "shop[\(index)] id \(quoted(id))")
    }
    // Subdomain: one lowercase DNS label, not the first label of an API or dashboard host.
    var label = [UInt8](rawSubdomain)
    for j in label.indices where label[j] >= UInt8(ascii: "A") && label[j] <= UInt8(ascii: "Z") { label[j] |= 0x20 }
    let labelValid = Self.isValidLabel(label)
    if !labelValid {
      local.add("invalid_subdomain", "shop[\(index)] (\(string(id))) subdomain \(quoted(rawSubdomain)) is not one DNS label")
    } else if !reservedSubdomains.isEmpty, reservedSubdomains.contains(String(decoding: label, as: UTF8.self)) {
      local.add(
        "reserved_subdomain",
        "shop[\(index)] (\(string(id))) subdomain \(quoted(rawSubdomain)) is the first label of an API or dashboard host")
    }
    var flags: UInt8 = headlessMode ? TenantTable.flagHeadless : 0
    if bytesEqual(status, "active") {
    } else if bytesEqual(status, "suspended") {
      flags |= TenantTable.flagSuspended
    } else {
      local.add("invalid_status", "shop[\(index)] (\(string(id))) status \(quoted(status))")
    }
    if let other = shopIDIndex.find(hash: hashBytes(id, seed: seed), matches: { shopIDs.equals($0, id) }) {
      local.add("duplicate_shop_id", "shop[\(index)] and shop[\(other)] both have id \(quoted(id))")
    }
    if labelValid {
      let other = label.withUnsafeBytes { l in subdomainIndex.find(hash: hashBytes(l, seed: seed)) { subdomains.equals($0, l) } }
      if let other {
        local.add(
          "duplicate_subdomain",
          "shop[\(index)] (\(string(id))) and shop[\(other)] (\(shopIDs.string(other))) both have subdomain \(quoted(label))")
      }
    }
    var normalOrigins: [String] = []
    for origin in allowedOrigins {
      if let normal = Origin.normalize(origin, allowTrailingSlash: true) {
        normalOrigins.append(normal)
      } else {
        local.add("invalid_origin", "shop[\(index)] (\(string(id))) allowedOrigins entry \(quoted(origin))")
      }
    }
    if let rate = rateLimit, rate.rps == 0 {
      local.add("invalid_rate_limit", "shop[\(index)] (\(string(id))) rateLimit.rps must be positive")
    }
    var normalDomains: [String] = []
    for domain in customDomains {
      guard let normal = HostName.normalize(domain), !normal.hasPrefix("["), normal.contains("."), !domain.contains(":") else {
        local.add("invalid_custom_domain", "shop[\(index)] (\(string(id))) custom domain \(quoted(domain))")
        continue
      }
      if let platform {
        if platform.apiHosts.contains(normal) || platform.dashboardHosts.contains(normal) {
          local.add(
            "custom_domain_is_platform_host",
            "shop[\(index)] (\(string(id))) custom domain \(quoted(normal)) is an API or dashboard host")
          continue
        }
        if platform.isUnderPlatformDomain(normal) {
          local.add(
            "custom_domain_under_platform_domain",
            "shop[\(index)] (\(string(id))) custom domain \(quoted(normal)) is under the platform domain \(platform.domain)")
          continue
        }
      }
      var n = normal
      let other = n.withUTF8 { raw -> Int? in
        let b = UnsafeRawBufferPointer(raw)
        return domainIndex.find(hash: hashBytes(b, seed: seed)) { domains.equals($0, b) }
      }
      if let other {
        local.add(
          "duplicate_custom_domain",
          "\(quoted(normal)) is mapped by shop \(shopIDs.string(Int(domainShopIDs[other]))) and shop \(string(id))")
      } else if normalDomains.contains(normal) {
        local.add("duplicate_custom_domain", "\(quoted(normal)) is mapped twice by shop \(string(id))")
      } else {
        normalDomains.append(normal)
      }
    }
    if tolerant && !local.isEmpty {
      refusals.append(Refusal(entity: .shop, id: string(id), reasons: local.error.description.split(separator: "\n").map(String.init)))
      return
    }
    violations.merge(local)

    // Store: nothing below can fail.
    shopIDs.append(id)
    _ = shopIDIndex.insert(
      hash: hashBytes(id, seed: seed), index: index, matches: { _ in false },
      rehash: { [shopIDs] i in shopIDs.withElement(i) { hashBytes($0, seed: seed) } })
    subdomains.append(label)
    if labelValid {
      label.withUnsafeBytes { l in
        _ = subdomainIndex.insert(
          hash: hashBytes(l, seed: seed), index: index, matches: { subdomains.equals($0, l) },
          rehash: { [subdomains] i in subdomains.withElement(i) { hashBytes($0, seed: seed) } })
      }
    }
    shopFlags.append(flags)
    for o in normalOrigins { origins.append(o) }
    originStarts.append(UInt32(origins.count))
    if let rate = rateLimit { rateLimitShops[Int32(index)] = rate }
    for normal in normalDomains {
      let d = domains.append(normal)
      domainShopIDs.append(Int32(index))
      var n = normal
      n.withUTF8 { raw in
        let b = UnsafeRawBufferPointer(raw)
        _ = domainIndex.insert(
          hash: hashBytes(b, seed: seed), index: d, matches: { domains.equals($0, b) },
          rehash: { [domains] i in domains.withElement(i) { hashBytes($0, seed: seed) } })
      }
    }
    domainStarts.append(UInt32(domains.count))
  }

  /// Adds one key.
  public mutating func addKey(_ key: KeyInput) {
    var id = key.id
    var shop = key.shopID
    var sha = key.sha256
    var kind = key.kind
    var mode = key.mode
    id.withUTF8 { i in
      shop.withUTF8 { s in
        sha.withUTF8 { h in
          kind.withUTF8 { k in
            mode.withUTF8 { m in
              addKey(
                id: UnsafeRawBufferPointer(i), shopID: UnsafeRawBufferPointer(s), sha256: UnsafeRawBufferPointer(h),
                kind: UnsafeRawBufferPointer(k), mode: UnsafeRawBufferPointer(m), revoked: key.revoked)
            }
          }
        }
      }
    }
  }

  /// Adds one key from raw field bytes.
  public mutating func addKey(
    id: UnsafeRawBufferPointer, shopID: UnsafeRawBufferPointer, sha256: UnsafeRawBufferPointer,
    kind: UnsafeRawBufferPointer, mode: UnsafeRawBufferPointer, revoked: Bool
  ) {
    let n = keyCount
    keyCount += 1
    guard Self.isValidIdentifier(id) else {
      keyViolation(id, "invalid_key_id", "apiKeys[\(n)] id \(quoted(id))")
      return
    }
    guard let digest = KeyDigest(hexBytes: sha256) else {
      keyViolation(id, "invalid_key_sha256", "apiKeys[\(n)] (\(string(id))) sha256 is not 64 hex digits")
      return
    }
    var flags: UInt8 = 0
    if bytesEqual(kind, "secret") {
    } else if bytesEqual(kind, "publishable") {
      flags |= 1
    } else {
      keyViolation(id, "invalid_key_kind", "apiKeys[\(n)] (\(string(id))) kind \(quoted(kind))")
      return
    }
    if bytesEqual(mode, "live") {
    } else if bytesEqual(mode, "test") {
      flags |= 2
    } else {
      keyViolation(id, "invalid_key_mode", "apiKeys[\(n)] (\(string(id))) mode \(quoted(mode))")
      return
    }
    let shopIndex = shopIDIndex.find(hash: hashBytes(shopID, seed: seed)) { shopIDs.equals($0, shopID) }
    guard let shopIndex else {
      pendingKeys.append(
        PendingKey(id: string(id), shopID: string(shopID), digest: digest, flags: flags, revoked: revoked, label: "apiKeys[\(n)] (\(string(id)))"))
      return
    }
    insertKey(idBytes: id, label: { "apiKeys[\(n)] (\(string(id)))" }, shop: shopIndex, digest: digest, flags: flags, revoked: revoked)
  }

  private mutating func insertKey(idBytes: UnsafeRawBufferPointer, label: () -> String, shop: Int, digest: KeyDigest, flags: UInt8, revoked: Bool) {
    if revokedDigests.contains(digest) || keyIndex.find(hash: digest.bucketHash, matches: { keyDigests[$0] == digest }) != nil {
      keyViolation(idBytes, "duplicate_key_sha256", "\(label()) repeats the sha256 of an earlier key")
      return
    }
    if tolerant, !revoked, keyIDIndexWhileBuilding.find(hash: hashBytes(idBytes, seed: seed), matches: { keyIDs.equals($0, idBytes) }) != nil {
      keyViolation(idBytes, "duplicate_key_id", "\(label()) repeats the id of an earlier key")
      return
    }
    if revoked {
      // Revoked keys are not stored (they are unknown keys); kept only to catch duplicates.
      revokedDigests.insert(digest)
      return
    }
    let index = keyDigests.count
    keyDigests.append(digest)
    keyShops.append(Int32(shop))
    keyFlags.append(flags)
    keyIDs.append(idBytes)
    if tolerant {
      _ = keyIDIndexWhileBuilding.insert(
        hash: hashBytes(idBytes, seed: seed), index: index, matches: { _ in false },
        rehash: { [keyIDs, seed] i in keyIDs.withElement(i) { hashBytes($0, seed: seed) } })
    }
    _ = keyIndex.insert(
      hash: digest.bucketHash, index: index, matches: { _ in false },
      rehash: { [keyDigests] i in keyDigests[i].bucketHash })
  }

  /// Validates what is left (keys whose shop came later) and builds the table, or throws every
  /// violation found.
  public mutating func finish() throws(SnapshotValidationError) -> TenantTable {
    let pending = pendingKeys
    pendingKeys = []
    for key in pending {
      var shopID = key.shopID
      let shopIndex = shopID.withUTF8 { raw -> Int? in
        let b = UnsafeRawBufferPointer(raw)
        return shopIDIndex.find(hash: hashBytes(b, seed: seed)) { shopIDs.equals($0, b) }
      }
      guard let shopIndex else {
        if tolerant {
          refusals.append(Refusal(entity: .apiKey, id: key.id, reasons: ["key_for_unknown_shop: \(key.label) names shop \(quoted(key.shopID)), which does not exist or was refused"]))
        } else {
          violations.add("key_for_unknown_shop", "\(key.label) names shop \(quoted(key.shopID)), which does not exist")
        }
        continue
      }
      var id = key.id
      id.withUTF8 { i in
        insertKey(idBytes: UnsafeRawBufferPointer(i), label: { key.label }, shop: shopIndex, digest: key.digest, flags: key.flags, revoked: key.revoked)
      }
    }
    // Key ids name keys in change sets: unique, and each shop's keys found without a scan.
    var keyIDIndex = SlotIndex(expected: keyDigests.count)
    for k in 0..<keyDigests.count {
      let dup = keyIDs.withElement(k) { id in
        keyIDIndex.insert(hash: hashBytes(id, seed: seed), index: k, matches: { keyIDs.equals($0, id) })
      }
      if let other = dup {
        violations.add("duplicate_key_id", "apiKeys \(quoted(keyIDs.string(k))) appears twice (shops \(shopIDs.string(Int(keyShops[other]))) and \(shopIDs.string(Int(keyShops[k]))))")
      }
    }
    guard violations.isEmpty else { throw violations.error }
    var shopKeyStarts = [UInt32](repeating: 0, count: shopIDs.count + 1)
    for s in keyShops { shopKeyStarts[Int(s) + 1] += 1 }
    for i in 0..<shopIDs.count { shopKeyStarts[i + 1] += shopKeyStarts[i] }
    var shopKeys = [Int32](repeating: 0, count: keyShops.count)
    var fill = shopKeyStarts
    for (k, s) in keyShops.enumerated() {
      shopKeys[Int(fill[Int(s)])] = Int32(k)
      fill[Int(s)] += 1
    }
    let (distinctOrigins, originShopStarts, originShops, originIndex) = buildOriginIndex()
    return TenantTable(
      version: version, shopIDs: shopIDs, subdomains: subdomains, shopFlags: shopFlags, originStarts: originStarts,
      origins: origins, rateLimitShops: rateLimitShops, distinctOrigins: distinctOrigins,
      originShopStarts: originShopStarts, originShops: originShops, originIndex: originIndex,
      shopIDIndex: shopIDIndex, subdomainIndex: subdomainIndex,
      domains: domains, domainShops: domainShopIDs, domainStarts: domainStarts, domainIndex: domainIndex,
      keyDigests: keyDigests, keyShops: keyShops, keyFlags: keyFlags, keyIDs: keyIDs, keyIndex: keyIndex,
      keyIDIndex: keyIDIndex, shopKeyStarts: shopKeyStarts, shopKeys: shopKeys, seed: seed, lineage: lineage)
  }

  /// Origin → active shops that allow it, for CORS preflights on API hosts. Linear in the number
  /// of (shop, origin) pairs, on bytes: distinct origins are interned through a hash index, counted,
  /// then each shop is placed in its origin's range.
  func buildOriginIndex() -> (ByteArena, [UInt32], [Int32], SlotIndex) {
    var arena = ByteArena()
    var index = SlotIndex(expected: 64)
    var counts: [UInt32] = []
    // For each stored origin j (of an active shop), its distinct index; -1 for suspended shops.
    var distinctOf = [Int32](repeating: -1, count: origins.count)
    for shop in 0..<shopIDs.count where shopFlags[shop] & TenantTable.flagSuspended == 0 {
      for j in Int(originStarts[shop])..<Int(originStarts[shop + 1]) {
        let d: Int = origins.withElement(j) { bytes in
          let h = hashBytes(bytes, seed: seed)
          if let existing = index.find(hash: h, matches: { arena.equals($0, bytes) }) { return existing }
          let new = arena.append(bytes)
          counts.append(0)
          _ = index.insert(
            hash: h, index: new, matches: { _ in false },
            rehash: { [arena, seed] i in arena.withElement(i) { hashBytes($0, seed: seed) } })
          return new
        }
        counts[d] += 1
        distinctOf[j] = Int32(d)
      }
    }
    var starts = [UInt32](repeating: 0, count: counts.count + 1)
    for d in 0..<counts.count { starts[d + 1] = starts[d] + counts[d] }
    var shops = [Int32](repeating: 0, count: Int(starts[counts.count]))
    var fill = starts
    for shop in 0..<shopIDs.count where shopFlags[shop] & TenantTable.flagSuspended == 0 {
      for j in Int(originStarts[shop])..<Int(originStarts[shop + 1]) {
        let d = Int(distinctOf[j])
        shops[Int(fill[d])] = Int32(shop)
        fill[d] += 1
      }
    }
    return (arena, starts, shops, index)
  }
}
