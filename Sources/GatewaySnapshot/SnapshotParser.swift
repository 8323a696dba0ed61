import GatewayCore

/// Why a snapshot was not accepted: it is not JSON, or it broke validation rules.
public enum SnapshotError: Error, Sendable, CustomStringConvertible {
  /// The document could not be read.
  case unreadable(path: String, reason: String)
  /// Not valid JSON (with the byte offset).
  case malformedJSON(String)
  /// Valid JSON whose content breaks the rules of PRODUCT.md §6.
  case invalid(SnapshotValidationError)

  public var description: String {
    switch self {
    case .unreadable(let path, let reason): return "cannot read snapshot \(path): \(reason)"
    case .malformedJSON(let m): return m
    case .invalid(let v): return v.description
    }
  }

  /// One line per problem, for JSON error lists.
  public var messages: [String] {
    switch self {
    case .invalid(let v): return v.description.split(separator: "\n").map(String.init)
    default: return [description]
    }
  }
}

/// Parses the snapshot JSON of PRODUCT.md §6 straight into a ``TenantTableBuilder``: fields are read
/// as the document is walked, unknown fields skipped, and no intermediate tree is built.
public enum SnapshotParser {
  /// Counts of what a snapshot holds.
  public struct Counts: Sendable, Equatable {
    public var shops: Int
    public var customDomains: Int
    public var keys: Int
  }

  /// Parses and validates `bytes`; returns the table or every problem found.
  public static func parse(
    _ bytes: UnsafeRawBufferPointer, platform: PlatformHosts?, seed: UInt64 = UInt64.random(in: 1...UInt64.max)
  ) throws(SnapshotError) -> TenantTable {
    var builder = TenantTableBuilder(platform: platform, seed: seed)
    // A cheap size hint: a shop entry is ~250 bytes of JSON, a key ~200.
    builder.reserve(shops: bytes.count / 1000, keys: bytes.count / 700)
    var reader = JSONReader(bytes)
    var version: String? = nil
    var sawShops = false
    var sawKeys = false
    var fieldErrors = FieldErrors()
    do {
      try reader.readObject { (r, key) throws(JSONReader.ParseError) in
        switch key {
        case "version":
          if try r.peek() == UInt8(ascii: "\"") {
            version = try r.readString()
          } else {
            fieldErrors.add("version must be a string")
            try r.skipValue()
          }
        case "shops":
          sawShops = true
          try r.readArray { (r, i) throws(JSONReader.ParseError) in
            try readShop(&r, index: i, errors: &fieldErrors, into: &builder)
          }
        case "apiKeys":
          sawKeys = true
          try r.readArray { (r, i) throws(JSONReader.ParseError) in
            try readKey(&r, index: i, errors: &fieldErrors, into: &builder)
          }
        default:
          try r.skipValue()
        }
      }
      try reader.expectEnd()
    } catch {
      throw .malformedJSON(error.description)
    }
    if version == nil { fieldErrors.add("version is missing") }
    if !sawShops { fieldErrors.add("shops is missing") }
    if !sawKeys { fieldErrors.add("apiKeys is missing") }
    builder.version = version ?? ""

    var table: TenantTable? = nil
    var semantic: [SnapshotValidationError.Violation] = []
    do { table = try builder.finish() } catch { semantic = error.violations }
    // Field-type errors first, then the semantic rules.
    let all = (fieldErrors.error?.violations ?? []) + semantic
    guard all.isEmpty, let table else { throw .invalid(SnapshotValidationError(violations: all)) }
    return table
  }

  /// Parses a snapshot held in an array.
  public static func parse(_ bytes: [UInt8], platform: PlatformHosts?) throws(SnapshotError) -> TenantTable {
    let result = bytes.withUnsafeBytes { raw in
      Result { () throws(SnapshotError) -> TenantTable in try parse(raw, platform: platform) }
    }
    return try result.get()
  }

  struct FieldErrors {
    var log: [String] = []
    var count = 0
    mutating func add(_ message: String) {
      count += 1
      if log.count < SnapshotValidationError.examplesPerRule { log.append(message) }
    }
    mutating func merge(_ other: FieldErrors) {
      for m in other.log where log.count < SnapshotValidationError.examplesPerRule { log.append(m) }
      count += other.count
    }
    var error: SnapshotValidationError? {
      count == 0 ? nil : SnapshotValidationError(violations: [.init(rule: "invalid_field", examples: log, count: count)])
    }
  }


  /// One shop as parsed: field bytes (slices of the input buffer where possible) and the field
  /// errors found. Parsing has no side effects, so a streaming parser can retry it after a refill.
  struct ParsedShop {
    var id: JSONReader.StringBytes
    var subdomain: JSONReader.StringBytes
    var status: JSONReader.StringBytes
    var headless: Bool
    var domains: [String]
    var origins: [String]
    var rateLimit: RateLimitOverride?

    func add(to builder: inout TenantTableBuilder) {
      id.withBytes { i in
        subdomain.withBytes { s in
          status.withBytes { st in
            builder.addShop(
              id: i, subdomain: s, customDomains: domains, headlessMode: headless, allowedOrigins: origins, status: st,
              rateLimit: rateLimit)
          }
        }
      }
    }
  }

  static func readShop(_ r: inout JSONReader, index: Int, errors: inout FieldErrors, into builder: inout TenantTableBuilder)
    throws(JSONReader.ParseError)
  {
    var local = FieldErrors()
    let shop = try parseShop(&r, index: index, errors: &local)
    errors.merge(local)
    shop?.add(to: &builder)
  }

  static func parseShop(_ r: inout JSONReader, index: Int, errors: inout FieldErrors) throws(JSONReader.ParseError) -> ParsedShop? {
    guard try r.peek() == UInt8(ascii: "{") else {
      errors.add("shops[\(index)] must be an object")
      try r.skipValue()
      return nil
    }
    var id: JSONReader.StringBytes? = nil
    var subdomain: JSONReader.StringBytes? = nil
    var status = JSONReader.StringBytes.owned(Array("active".utf8))
    var headless = false
    var domains: [String] = []
    var origins: [String] = []
    var rateLimit: RateLimitOverride? = nil
    var seen: UInt16 = 0
    var ok = true
    try r.readObjectKeyBytes { (r, name) throws(JSONReader.ParseError) in
      let bit: UInt16
      if JSONReader.equals(name, "id") { bit = 1 }
      else if JSONReader.equals(name, "subdomain") { bit = 2 }
      else if JSONReader.equals(name, "customDomains") { bit = 4 }
      else if JSONReader.equals(name, "allowedOrigins") { bit = 8 }
      else if JSONReader.equals(name, "headlessMode") { bit = 16 }
      else if JSONReader.equals(name, "status") { bit = 32 }
      else if JSONReader.equals(name, "rateLimit") { bit = 64 }
      else {
        try r.skipValue()
        return
      }
      if seen & bit != 0 {
        errors.add("shops[\(index)] repeats field \(String(decoding: name, as: UTF8.self))")
        ok = false
      }
      seen |= bit
      switch bit {
      case 1:
        if let v = try stringBytes(&r, "shops[\(index)].id", &errors) { id = v } else { ok = false }
      case 2:
        if let v = try stringBytes(&r, "shops[\(index)].subdomain", &errors) { subdomain = v } else { ok = false }
      case 4:
        if let v = try stringArray(&r, "shops[\(index)].customDomains", &errors) { domains = v } else { ok = false }
      case 8:
        if let v = try stringArray(&r, "shops[\(index)].allowedOrigins", &errors) { origins = v } else { ok = false }
      case 16:
        if let v = try bool(&r, "shops[\(index)].headlessMode", &errors) { headless = v } else { ok = false }
      case 32:
        if let v = try stringBytes(&r, "shops[\(index)].status", &errors) { status = v } else { ok = false }
      default:  // rateLimit
        if try r.readNull() { break }
        var rps: Double? = nil
        var burst: Double? = nil
        guard try r.peek() == UInt8(ascii: "{") else {
          errors.add("shops[\(index)].rateLimit must be an object")
          try r.skipValue()
          ok = false
          break
        }
        try r.readObject { (r, k) throws(JSONReader.ParseError) in
          switch k {
          case "rps": rps = try number(&r, "shops[\(index)].rateLimit.rps", &errors)
          case "burst": burst = try number(&r, "shops[\(index)].rateLimit.burst", &errors)
          default: try r.skipValue()
          }
        }
        if let rps, rps >= 0, rps <= 1e9, rps == rps.rounded() {
          let b = burst ?? rps
          if b >= 0, b <= 1e9, b == b.rounded() {
            rateLimit = RateLimitOverride(rps: UInt32(rps), burst: UInt32(b))
          } else {
            errors.add("shops[\(index)].rateLimit.burst must be a non-negative integer")
            ok = false
          }
        } else {
          errors.add("shops[\(index)].rateLimit.rps must be a non-negative integer")
          ok = false
        }
      }
    }
    if id == nil {
      errors.add("shops[\(index)].id is missing")
      ok = false
    }
    if subdomain == nil {
      errors.add("shops[\(index)].subdomain is missing")
      ok = false
    }
    guard ok, let id, let subdomain else { return nil }
    return ParsedShop(id: id, subdomain: subdomain, status: status, headless: headless, domains: domains, origins: origins, rateLimit: rateLimit)
  }

  /// The five string fields of a key, by slot (id, shopId, sha256, kind, mode), without an array.
  struct KeyFields {
    var id, shop, sha, kind, mode: JSONReader.StringBytes?
    subscript(slot: Int) -> JSONReader.StringBytes? {
      get { [id, shop, sha, kind, mode][slot] }
      set {
        switch slot {
        case 0: id = newValue
        case 1: shop = newValue
        case 2: sha = newValue
        case 3: kind = newValue
        default: mode = newValue
        }
      }
    }
  }

  /// One key as parsed (see ``ParsedShop``).
  struct ParsedKey {
    var id, shop, sha, kind, mode: JSONReader.StringBytes
    var revoked: Bool

    func add(to builder: inout TenantTableBuilder) {
      id.withBytes { i in
        shop.withBytes { s in
          sha.withBytes { h in
            kind.withBytes { k in
              mode.withBytes { m in
                builder.addKey(id: i, shopID: s, sha256: h, kind: k, mode: m, revoked: revoked)
              }
            }
          }
        }
      }
    }
  }

  static func readKey(_ r: inout JSONReader, index: Int, errors: inout FieldErrors, into builder: inout TenantTableBuilder)
    throws(JSONReader.ParseError)
  {
    var local = FieldErrors()
    let key = try parseKey(&r, index: index, errors: &local)
    errors.merge(local)
    key?.add(to: &builder)
  }

  static func parseKey(_ r: inout JSONReader, index: Int, errors: inout FieldErrors) throws(JSONReader.ParseError) -> ParsedKey? {
    guard try r.peek() == UInt8(ascii: "{") else {
      errors.add("apiKeys[\(index)] must be an object")
      try r.skipValue()
      return nil
    }
    var fields = KeyFields()
    var revoked = false
    var seen: UInt8 = 0
    var ok = true
    try r.readObjectKeyBytes { (r, name) throws(JSONReader.ParseError) in
      let slot: Int
      if JSONReader.equals(name, "id") { slot = 0 }
      else if JSONReader.equals(name, "shopId") { slot = 1 }
      else if JSONReader.equals(name, "sha256") { slot = 2 }
      else if JSONReader.equals(name, "kind") { slot = 3 }
      else if JSONReader.equals(name, "mode") { slot = 4 }
      else if JSONReader.equals(name, "revoked") { slot = 5 }
      else {
        try r.skipValue()
        return
      }
      if seen & (1 << slot) != 0 {
        errors.add("apiKeys[\(index)] repeats field \(String(decoding: name, as: UTF8.self))")
        ok = false
      }
      seen |= 1 << slot
      if slot == 5 {
        if let v = try bool(&r, "apiKeys[\(index)].revoked", &errors) { revoked = v } else { ok = false }
      } else if let v = try stringBytes(&r, "apiKeys[\(index)].\(String(decoding: name, as: UTF8.self))", &errors) {
        fields[slot] = v
      } else {
        ok = false
      }
    }
    for (slot, name) in ["id", "shopId", "sha256", "kind", "mode"].enumerated() where fields[slot] == nil && seen & (1 << slot) == 0 {
      errors.add("apiKeys[\(index)].\(name) is missing")
      ok = false
    }
    guard ok, let id = fields.id, let shop = fields.shop, let sha = fields.sha, let kind = fields.kind, let mode = fields.mode else { return nil }
    return ParsedKey(id: id, shop: shop, sha: sha, kind: kind, mode: mode, revoked: revoked)
  }

  static func stringBytes(_ r: inout JSONReader, _ path: @autoclosure () -> String, _ errors: inout FieldErrors)
    throws(JSONReader.ParseError) -> JSONReader.StringBytes?
  {
    if try r.peek() == UInt8(ascii: "\"") { return try r.readStringBytes() }
    errors.add("\(path()) must be a string")
    try r.skipValue()
    return nil
  }

  static func string(_ r: inout JSONReader, _ path: @autoclosure () -> String, _ errors: inout FieldErrors) throws(JSONReader.ParseError)
    -> String?
  {
    if try r.peek() == UInt8(ascii: "\"") { return try r.readString() }
    errors.add("\(path()) must be a string")
    try r.skipValue()
    return nil
  }

  static func bool(_ r: inout JSONReader, _ path: @autoclosure () -> String, _ errors: inout FieldErrors) throws(JSONReader.ParseError)
    -> Bool?
  {
    let c = try r.peek()
    if c == UInt8(ascii: "t") || c == UInt8(ascii: "f") { return try r.readBool() }
    errors.add("\(path()) must be true or false")
    try r.skipValue()
    return nil
  }

  static func number(_ r: inout JSONReader, _ path: @autoclosure () -> String, _ errors: inout FieldErrors) throws(JSONReader.ParseError)
    -> Double?
  {
    let c = try r.peek()
    if c == UInt8(ascii: "-") || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) { return try r.readNumber() }
    errors.add("\(path()) must be a number")
    try r.skipValue()
    return nil
  }

  static func stringArray(_ r: inout JSONReader, _ path: @autoclosure () -> String, _ errors: inout FieldErrors)
    throws(JSONReader.ParseError) -> [String]?
  {
    guard try r.peek() == UInt8(ascii: "[") else {
      errors.add("\(path()) must be an array of strings")
      try r.skipValue()
      return nil
    }
    var out: [String] = []
    var ok = true
    try r.readArray { (r, i) throws(JSONReader.ParseError) in
      if let s = try string(&r, "\(path())[\(i)]", &errors) { out.append(s) } else { ok = false }
    }
    return ok ? out : nil
  }
}
