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
    var reader = JSONReader(bytes)
    var version: String? = nil
    var sawShops = false
    var sawKeys = false
    var fieldErrors = FieldErrors()
    var shops: [ShopInput] = []
    var keys: [KeyInput] = []
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
            if let shop = try readShop(&r, index: i, errors: &fieldErrors) { shops.append(shop) }
          }
        case "apiKeys":
          sawKeys = true
          try r.readArray { (r, i) throws(JSONReader.ParseError) in
            if let k = try readKey(&r, index: i, errors: &fieldErrors) { keys.append(k) }
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

    var builder = TenantTableBuilder(version: version ?? "", platform: platform, seed: seed)
    builder.reserve(shops: shops.count, keys: keys.count)
    for shop in shops { builder.addShop(shop) }
    shops = []
    for key in keys { builder.addKey(key) }
    keys = []
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
    var error: SnapshotValidationError? {
      count == 0 ? nil : SnapshotValidationError(violations: [.init(rule: "invalid_field", examples: log, count: count)])
    }
  }

  static func readShop(_ r: inout JSONReader, index: Int, errors: inout FieldErrors) throws(JSONReader.ParseError)
    -> ShopInput?
  {
    guard try r.peek() == UInt8(ascii: "{") else {
      errors.add("shops[\(index)] must be an object")
      try r.skipValue()
      return nil
    }
    var shop = ShopInput(id: "", subdomain: "")
    var seen = Set<String>()
    var ok = true
    var hasID = false
    var hasSubdomain = false
    try r.readObject { (r, key) throws(JSONReader.ParseError) in
      if !seen.insert(key).inserted {
        errors.add("shops[\(index)] repeats field \(key)")
        ok = false
      }
      switch key {
      case "id":
        if let v = try string(&r, "shops[\(index)].id", &errors) { shop.id = v; hasID = true } else { ok = false }
      case "subdomain":
        if let v = try string(&r, "shops[\(index)].subdomain", &errors) { shop.subdomain = v; hasSubdomain = true } else { ok = false }
      case "customDomains":
        if let v = try stringArray(&r, "shops[\(index)].customDomains", &errors) { shop.customDomains = v } else { ok = false }
      case "allowedOrigins":
        if let v = try stringArray(&r, "shops[\(index)].allowedOrigins", &errors) { shop.allowedOrigins = v } else { ok = false }
      case "headlessMode":
        if let v = try bool(&r, "shops[\(index)].headlessMode", &errors) { shop.headlessMode = v } else { ok = false }
      case "status":
        if let v = try string(&r, "shops[\(index)].status", &errors) { shop.status = v } else { ok = false }
      case "rateLimit":
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
            shop.rateLimit = RateLimitOverride(rps: UInt32(rps), burst: UInt32(b))
          } else {
            errors.add("shops[\(index)].rateLimit.burst must be a non-negative integer")
            ok = false
          }
        } else {
          errors.add("shops[\(index)].rateLimit.rps must be a non-negative integer")
          ok = false
        }
      default:
        try r.skipValue()
      }
    }
    if !hasID {
      errors.add("shops[\(index)].id is missing")
      ok = false
    }
    if !hasSubdomain {
      errors.add("shops[\(index)].subdomain is missing")
      ok = false
    }
    return ok ? shop : nil
  }

  static func readKey(_ r: inout JSONReader, index: Int, errors: inout FieldErrors) throws(JSONReader.ParseError)
    -> KeyInput?
  {
    guard try r.peek() == UInt8(ascii: "{") else {
      errors.add("apiKeys[\(index)] must be an object")
      try r.skipValue()
      return nil
    }
    var key = KeyInput(id: "", shopID: "", sha256: "", kind: "", mode: "", revoked: false)
    var seen = Set<String>()
    var ok = true
    try r.readObject { (r, field) throws(JSONReader.ParseError) in
      if !seen.insert(field).inserted {
        errors.add("apiKeys[\(index)] repeats field \(field)")
        ok = false
      }
      let path = "apiKeys[\(index)].\(field)"
      switch field {
      case "id": if let v = try string(&r, path, &errors) { key.id = v } else { ok = false }
      case "shopId": if let v = try string(&r, path, &errors) { key.shopID = v } else { ok = false }
      case "sha256": if let v = try string(&r, path, &errors) { key.sha256 = v } else { ok = false }
      case "kind": if let v = try string(&r, path, &errors) { key.kind = v } else { ok = false }
      case "mode": if let v = try string(&r, path, &errors) { key.mode = v } else { ok = false }
      case "revoked": if let v = try bool(&r, path, &errors) { key.revoked = v } else { ok = false }
      default: try r.skipValue()
      }
    }
    for (field, value) in [("id", key.id), ("shopId", key.shopID), ("sha256", key.sha256), ("kind", key.kind), ("mode", key.mode)]
    where value.isEmpty && !seen.contains(field) {
      errors.add("apiKeys[\(index)].\(field) is missing")
      ok = false
    }
    return ok ? key : nil
  }

  static func string(_ r: inout JSONReader, _ path: String, _ errors: inout FieldErrors) throws(JSONReader.ParseError)
    -> String?
  {
    if try r.peek() == UInt8(ascii: "\"") { return try r.readString() }
    errors.add("\(path) must be a string")
    try r.skipValue()
    return nil
  }

  static func bool(_ r: inout JSONReader, _ path: String, _ errors: inout FieldErrors) throws(JSONReader.ParseError)
    -> Bool?
  {
    let c = try r.peek()
    if c == UInt8(ascii: "t") || c == UInt8(ascii: "f") { return try r.readBool() }
    errors.add("\(path) must be true or false")
    try r.skipValue()
    return nil
  }

  static func number(_ r: inout JSONReader, _ path: String, _ errors: inout FieldErrors) throws(JSONReader.ParseError)
    -> Double?
  {
    let c = try r.peek()
    if c == UInt8(ascii: "-") || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) { return try r.readNumber() }
    errors.add("\(path) must be a number")
    try r.skipValue()
    return nil
  }

  static func stringArray(_ r: inout JSONReader, _ path: String, _ errors: inout FieldErrors)
    throws(JSONReader.ParseError) -> [String]?
  {
    guard try r.peek() == UInt8(ascii: "[") else {
      errors.add("\(path) must be an array of strings")
      try r.skipValue()
      return nil
    }
    var out: [String] = []
    var ok = true
    try r.readArray { (r, i) throws(JSONReader.ParseError) in
      if let s = try string(&r, "\(path)[\(i)]", &errors) { out.append(s) } else { ok = false }
    }
    return ok ? out : nil
  }
}
