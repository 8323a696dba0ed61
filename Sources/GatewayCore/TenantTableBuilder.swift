/// One shop as the snapshot describes it (PRODUCT.md §6), before validation.
public struct ShopInput: Sendable {
  public var id: String
  public var subdomain: String
  public var customDomains: [String]
  public var headlessMode: Bool
  public var allowedOrigins: [String]
  /// `active` or `suspended`; anything else is rejected.
  public var status: String
  public var rateLimit: RateLimitOverride?

  public init(
    id: String, subdomain: String, customDomains: [String] = [], headlessMode: Bool = false,
    allowedOrigins: [String] = [], status: String = "active", rateLimit: RateLimitOverride? = nil
  ) {
    self.id = id
    self.subdomain = subdomain
    self.customDomains = customDomains
    self.headlessMode = headlessMode
    self.allowedOrigins = allowedOrigins
    self.status = status
    self.rateLimit = rateLimit
  }
}

/// One API key as the snapshot describes it, before validation.
public struct KeyInput: Sendable {
  public var id: String
  public var shopID: String
  /// Lower-case (or upper-case) hex SHA-256 of the key.
  public var sha256: String
  /// `secret` or `publishable`.
  public var kind: String
  /// `live` or `test`.
  public var mode: String
  public var revoked: Bool

  public init(id: String, shopID: String, sha256: String, kind: String, mode: String, revoked: Bool = false) {
    self.id = id
    self.shopID = shopID
    self.sha256 = sha256
    self.kind = kind
    self.mode = mode
    self.revoked = revoked
  }
}

/// Every reason a snapshot was rejected, grouped by rule, naming the offending entries.
public struct SnapshotValidationError: Error, Sendable, CustomStringConvertible {
  /// One rule that failed, with up to ``SnapshotValidationError/examplesPerRule`` examples.
  public struct Violation: Sendable, Equatable {
    /// Stable rule name, e.g. `duplicate_subdomain`.
    public var rule: String
    /// The first few offending entries, described.
    public var examples: [String]
    /// How many entries broke the rule in all.
    public var count: Int

    public init(rule: String, examples: [String], count: Int) {
      self.rule = rule
      self.examples = examples
      self.count = count
    }
  }

  public static let examplesPerRule = 5
  public var violations: [Violation]

  public init(violations: [Violation]) { self.violations = violations }

  /// All rule names that failed.
  public var rules: [String] { violations.map(\.rule) }

  public var description: String {
    violations.map { v in
      let more = v.count > v.examples.count ? " (and \(v.count - v.examples.count) more)" : ""
      return "\(v.rule): \(v.examples.joined(separator: "; "))\(more)"
    }.joined(separator: "\n")
  }
}

/// Collects violations, keeping the first few examples of each rule.
struct ViolationLog {
  private(set) var order: [String] = []
  private(set) var byRule: [String: SnapshotValidationError.Violation] = [:]

  mutating func add(_ rule: String, _ example: @autoclosure () -> String) {
    if var v = byRule[rule] {
      v.count += 1
      if v.examples.count < SnapshotValidationError.examplesPerRule { v.examples.append(example()) }
      byRule[rule] = v
    } else {
      order.append(rule)
      byRule[rule] = .init(rule: rule, examples: [example()], count: 1)
    }
  }

  var isEmpty: Bool { order.isEmpty }
  var error: SnapshotValidationError { .init(violations: order.map { byRule[$0]! }) }
}

/// Builds a ``TenantTable`` from snapshot entries, validating every rule of PRODUCT.md §6. The
/// whole snapshot is rejected when any rule fails.
public struct TenantTableBuilder {
  public let version: String
  let platform: PlatformHosts?
  let reservedSubdomains: Set<String>
  let seed: UInt64

  var shopIDs = ByteArena()
  var subdomains = ByteArena()
  var shopFlags: [UInt8] = []
  var originStarts: [UInt32] = [0]
  var origins = ByteArena()
  var rateLimitShops: [Int32: RateLimitOverride] = [:]
  var domains = ByteArena()
  var domainShopIDs: [Int32] = []  // index of the shop in input order
  var pendingKeys: [KeyInput] = []
  var violations = ViolationLog()

  /// - Parameters:
  ///   - version: the snapshot's `version`.
  ///   - platform: the configured hosts, for the rules that involve them (custom domains under the
  ///     platform domain, subdomains that shadow API or dashboard hosts). `nil` skips those rules.
  ///   - seed: hash seed; random per process by default.
  public init(version: String, platform: PlatformHosts? = nil, seed: UInt64 = UInt64.random(in: 1...UInt64.max)) {
    self.version = version
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
    pendingKeys.reserveCapacity(keys)
  }

  /// Adds one shop. Field errors are recorded; ``finish()`` reports them all.
  public mutating func addShop(_ shop: ShopInput) {
    let index = shopIDs.count
    let label = "shop[\(index)]"
    if !Self.isValidIdentifier(shop.id) {
      violations.add("invalid_shop_id", "\(label) id \(quoted(shop.id))")
    }
    let subdomain = shop.subdomain.lowercased()
    if !Self.isValidLabel(subdomain) {
      violations.add("invalid_subdomain", "\(label) (\(shop.id)) subdomain \(quoted(shop.subdomain)) is not one DNS label")
    } else if reservedSubdomains.contains(subdomain) {
      violations.add(
        "reserved_subdomain", "\(label) (\(shop.id)) subdomain \(quoted(subdomain)) is the first label of an API or dashboard host")
    }
    var flags: UInt8 = shop.headlessMode ? TenantTable.flagHeadless : 0
    switch shop.status {
    case "active": break
    case "suspended": flags |= TenantTable.flagSuspended
    default: violations.add("invalid_status", "\(label) (\(shop.id)) status \(quoted(shop.status))")
    }
    shopIDs.append(shop.id)
    subdomains.append(subdomain)
    shopFlags.append(flags)
    for origin in shop.allowedOrigins {
      if let normal = Origin.normalize(origin, allowTrailingSlash: true) {
        origins.append(normal)
      } else {
        violations.add("invalid_origin", "\(label) (\(shop.id)) allowedOrigins entry \(quoted(origin))")
      }
    }
    originStarts.append(UInt32(origins.count))
    if let rate = shop.rateLimit {
      if rate.rps == 0 {
        violations.add("invalid_rate_limit", "\(label) (\(shop.id)) rateLimit.rps must be positive")
      }
      rateLimitShops[Int32(index)] = rate
    }
    for domain in shop.customDomains {
      guard let normal = HostName.normalize(domain), !normal.hasPrefix("["), normal.contains(".") else {
        violations.add("invalid_custom_domain", "\(label) (\(shop.id)) custom domain \(quoted(domain))")
        continue
      }
      if normal.utf8.contains(UInt8(ascii: ":")) || domain.contains(":") {
        violations.add("invalid_custom_domain", "\(label) (\(shop.id)) custom domain \(quoted(domain)) has a port")
        continue
      }
      if let platform {
        if platform.apiHosts.contains(normal) || platform.dashboardHosts.contains(normal) {
          violations.add(
            "custom_domain_is_platform_host", "\(label) (\(shop.id)) custom domain \(quoted(normal)) is an API or dashboard host")
          continue
        }
        if platform.isUnderPlatformDomain(normal) {
          violations.add(
            "custom_domain_under_platform_domain",
            "\(label) (\(shop.id)) custom domain \(quoted(normal)) is under the platform domain \(platform.domain)")
          continue
        }
      }
      domains.append(normal)
      domainShopIDs.append(Int32(index))
    }
  }

  /// Adds one key; it is checked against the shops in ``finish()``.
  public mutating func addKey(_ key: KeyInput) {
    pendingKeys.append(key)
  }

  /// Validates the whole snapshot and builds the table, or throws every violation found.
  public mutating func finish() throws(SnapshotValidationError) -> TenantTable {
    let shopCount = shopIDs.count
    // Shop ids and subdomains: unique.
    var shopIDIndex = SlotIndex(expected: shopCount)
    var subdomainIndex = SlotIndex(expected: shopCount)
    for i in 0..<shopCount {
      shopIDs.withElement(i) { id in
        let h = hashBytes(id, seed: seed)
        if let other = shopIDIndex.insert(hash: h, index: i, matches: { shopIDs.equals($0, id) }) {
          violations.add("duplicate_shop_id", "shop[\(i)] and shop[\(other)] both have id \(quoted(shopIDs.string(i)))")
        }
      }
      subdomains.withElement(i) { label in
        let h = hashBytes(label, seed: seed)
        if let other = subdomainIndex.insert(hash: h, index: i, matches: { subdomains.equals($0, label) }) {
          violations.add(
            "duplicate_subdomain",
            "shop[\(i)] (\(shopIDs.string(i))) and shop[\(other)] (\(shopIDs.string(other))) both have subdomain \(quoted(subdomains.string(i)))")
        }
      }
    }
    // Custom domains: each mapped once after normalisation.
    var domainIndex = SlotIndex(expected: domains.count)
    for i in 0..<domains.count {
      domains.withElement(i) { name in
        let h = hashBytes(name, seed: seed)
        if let other = domainIndex.insert(hash: h, index: i, matches: { domains.equals($0, name) }) {
          let a = shopIDs.string(Int(domainShopIDs[i]))
          let b = shopIDs.string(Int(domainShopIDs[other]))
          violations.add("duplicate_custom_domain", "\(quoted(domains.string(i))) is mapped by shop \(b) and shop \(a)")
        }
      }
    }
    // Keys: valid fields, unique digests (revoked ones included), shop exists.
    var keyDigests: [KeyDigest] = []
    var keyShops: [Int32] = []
    var keyFlags: [UInt8] = []
    var keyIDs = ByteArena()
    keyDigests.reserveCapacity(pendingKeys.count)
    keyShops.reserveCapacity(pendingKeys.count)
    keyFlags.reserveCapacity(pendingKeys.count)
    var keyIndex = SlotIndex(expected: pendingKeys.count)
    var revokedDigests = Set<KeyDigest>()
    for (n, key) in pendingKeys.enumerated() {
      let label = "apiKeys[\(n)] (\(key.id))"
      guard Self.isValidIdentifier(key.id) else {
        violations.add("invalid_key_id", "apiKeys[\(n)] id \(quoted(key.id))")
        continue
      }
      guard let digest = KeyDigest(hex: key.sha256) else {
        violations.add("invalid_key_sha256", "\(label) sha256 is not 64 hex digits")
        continue
      }
      var flags: UInt8 = 0
      switch key.kind {
      case "secret": break
      case "publishable": flags |= 1
      default:
        violations.add("invalid_key_kind", "\(label) kind \(quoted(key.kind))")
        continue
      }
      switch key.mode {
      case "live": break
      case "test": flags |= 2
      default:
        violations.add("invalid_key_mode", "\(label) mode \(quoted(key.mode))")
        continue
      }
      var shopID = key.shopID
      let shopIndex = shopID.withUTF8 { id -> Int? in
        let raw = UnsafeRawBufferPointer(id)
        return shopIDIndex.find(hash: hashBytes(raw, seed: seed)) { shopIDs.equals($0, raw) }
      }
      guard let shopIndex else {
        violations.add("key_for_unknown_shop", "\(label) names shop \(quoted(key.shopID)), which does not exist")
        continue
      }
      if revokedDigests.contains(digest)
        || keyIndex.find(hash: digest.bucketHash, matches: { keyDigests[$0] == digest }) != nil
      {
        violations.add("duplicate_key_sha256", "\(label) repeats the sha256 of an earlier key")
        continue
      }
      if key.revoked {
        revokedDigests.insert(digest)
        continue
      }
      let index = keyDigests.count
      keyDigests.append(digest)
      keyShops.append(Int32(shopIndex))
      keyFlags.append(flags)
      keyIDs.append(key.id)
      _ = keyIndex.insert(hash: digest.bucketHash, index: index) { _ in false }
    }
    guard violations.isEmpty else { throw violations.error }
    pendingKeys = []
    let (distinctOrigins, originShopStarts, originShops, originIndex) = buildOriginIndex()
    shopIDs.shrinkToFit()
    subdomains.shrinkToFit()
    domains.shrinkToFit()
    origins.shrinkToFit()
    keyIDs.shrinkToFit()
    return TenantTable(
      version: version, shopIDs: shopIDs, subdomains: subdomains, shopFlags: shopFlags, originStarts: originStarts,
      origins: origins, rateLimitShops: rateLimitShops, distinctOrigins: distinctOrigins,
      originShopStarts: originShopStarts, originShops: originShops, originIndex: originIndex,
      shopIDIndex: shopIDIndex, subdomainIndex: subdomainIndex,
      domains: domains, domainShops: domainShopIDs, domainIndex: domainIndex, keyDigests: keyDigests,
      keyShops: keyShops, keyFlags: keyFlags, keyIDs: keyIDs, keyIndex: keyIndex, seed: seed)
  }

  /// Origin → active shops that allow it, for CORS preflights on API hosts.
  func buildOriginIndex() -> (ByteArena, [UInt32], [Int32], SlotIndex) {
    // Group (origin, shop) pairs by origin; suspended shops never allow anything.
    var groups: [String: [Int32]] = [:]
    for shop in 0..<shopIDs.count where shopFlags[shop] & TenantTable.flagSuspended == 0 {
      for j in Int(originStarts[shop])..<Int(originStarts[shop + 1]) {
        groups[origins.string(j), default: []].append(Int32(shop))
      }
    }
    var arena = ByteArena()
    var starts: [UInt32] = [0]
    var shops: [Int32] = []
    var index = SlotIndex(expected: groups.count)
    for (origin, members) in groups.sorted(by: { $0.key < $1.key }) {
      let i = arena.append(origin)
      shops.append(contentsOf: members)
      starts.append(UInt32(shops.count))
      arena.withElement(i) { bytes in
        _ = index.insert(hash: hashBytes(bytes, seed: seed), index: i) { _ in false }
      }
    }
    return (arena, starts, shops, index)
  }

  /// Ids (shop and key) end up in headers and tokens: printable ASCII without quotes or spaces.
  static func isValidIdentifier(_ id: String) -> Bool {
    guard !id.isEmpty, id.utf8.count <= 128 else { return false }
    return id.utf8.allSatisfy { b in
      (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
        || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || b == UInt8(ascii: "-") || b == UInt8(ascii: "_")
        || b == UInt8(ascii: ".") || b == UInt8(ascii: ":")
    }
  }

  /// One DNS label: 1–63 of `[a-z0-9-]`, not starting or ending with `-`.
  public static func isValidLabel(_ label: String) -> Bool {
    let bytes = Array(label.utf8)
    guard !bytes.isEmpty, bytes.count <= HostName.maxLabelLength, bytes.first != UInt8(ascii: "-"),
      bytes.last != UInt8(ascii: "-")
    else { return false }
    return bytes.allSatisfy { b in
      (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9"))
        || b == UInt8(ascii: "-")
    }
  }
}

/// A value in quotes for error messages, truncated so a hostile snapshot cannot flood the log.
func quoted(_ s: String) -> String {
  let cut = s.count > 80 ? String(s.prefix(80)) + "…" : s
  var out = ""
  JSONText.appendQuoted(cut, to: &out)
  return out
}
