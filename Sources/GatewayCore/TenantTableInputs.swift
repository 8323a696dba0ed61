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

  mutating func merge(_ other: ViolationLog) {
    for rule in other.order {
      let v = other.byRule[rule]!
      if var mine = byRule[rule] {
        mine.count += v.count
        for e in v.examples where mine.examples.count < SnapshotValidationError.examplesPerRule { mine.examples.append(e) }
        byRule[rule] = mine
      } else {
        order.append(rule)
        byRule[rule] = v
      }
    }
  }
  var error: SnapshotValidationError { .init(violations: order.map { byRule[$0]! }) }
}
