import GatewayCore

extension SnapshotParser.ParsedShop {
  var input: ShopInput {
    ShopInput(
      id: id.withBytes { String(decoding: $0, as: UTF8.self) },
      subdomain: subdomain.withBytes { String(decoding: $0, as: UTF8.self) }, customDomains: domains,
      headlessMode: headless, allowedOrigins: origins, status: status.withBytes { String(decoding: $0, as: UTF8.self) },
      rateLimit: rateLimit)
  }
}

extension SnapshotParser.ParsedKey {
  var input: KeyInput {
    func s(_ b: JSONReader.StringBytes) -> String { b.withBytes { String(decoding: $0, as: UTF8.self) } }
    return KeyInput(id: s(id), shopID: s(shop), sha256: s(sha), kind: s(kind), mode: s(mode), revoked: revoked)
  }
}

/// Change sets as JSON (PRODUCT.md §6 "Changes"): one object, one line in a journal.
public enum ChangeSetCodec {
  /// Parses one change set; field errors are reported like a snapshot's (`invalid_field`).
  public static func decode(_ bytes: UnsafeRawBufferPointer) throws(SnapshotError) -> ChangeSet {
    var reader = JSONReader(bytes)
    var change = ChangeSet(version: "")
    var sawVersion = false
    var errors = SnapshotParser.FieldErrors()
    do {
      guard try reader.peek() == UInt8(ascii: "{") else { throw reader.error("a change set is a JSON object") }
      try reader.readObject { (r, key) throws(JSONReader.ParseError) in
        switch key {
        case "version", "base":
          if try r.peek() == UInt8(ascii: "\"") {
            let v = try r.readString()
            if key == "version" {
              change.version = v
              sawVersion = true
            } else {
              change.base = v
            }
          } else if key == "base", try r.readNull() {
          } else {
            errors.add("\(key) must be a string")
            try r.skipValue()
          }
        case "shops":
          guard try isArray(&r) else { return errors.add("shops must be an array") }
          try r.readArray { (r, i) throws(JSONReader.ParseError) in
            if let s = try SnapshotParser.parseShop(&r, index: i, errors: &errors) { change.shops.append(s.input) }
          }
        case "apiKeys":
          guard try isArray(&r) else { return errors.add("apiKeys must be an array") }
          try r.readArray { (r, i) throws(JSONReader.ParseError) in
            if let k = try SnapshotParser.parseKey(&r, index: i, errors: &errors) { change.apiKeys.append(k.input) }
          }
        case "removeShops", "removeApiKeys":
          if let ids = try SnapshotParser.stringArray(&r, key, &errors) {
            if key == "removeShops" { change.removeShops = ids } else { change.removeApiKeys = ids }
          }
        default:
          try r.skipValue()
        }
      }
      try reader.expectEnd()
    } catch {
      throw .malformedJSON("malformed change set: \(error)")
    }
    if !sawVersion || change.version.isEmpty { errors.add("version is missing") }
    if let e = errors.error { throw .invalid(e) }
    return change
  }

  public static func decode(_ bytes: [UInt8]) throws(SnapshotError) -> ChangeSet {
    let r = bytes.withUnsafeBytes { raw in Result { () throws(SnapshotError) -> ChangeSet in try decode(raw) } }
    return try r.get()
  }

  /// True when the next value is an array; otherwise skips it.
  private static func isArray(_ r: inout JSONReader) throws(JSONReader.ParseError) -> Bool {
    if try r.peek() == UInt8(ascii: "[") { return true }
    try r.skipValue()
    return false
  }

  /// One line of JSON (no newline inside), fields in the order of PRODUCT.md §6.
  public static func encode(_ c: ChangeSet) -> String {
    var out = "{\"version\":"
    JSONText.appendQuoted(c.version, to: &out)
    if let base = c.base {
      out += ",\"base\":"
      JSONText.appendQuoted(base, to: &out)
    }
    if !c.shops.isEmpty { out += ",\"shops\":[" + c.shops.map(SnapshotJSON.shop).joined(separator: ",") + "]" }
    if !c.removeShops.isEmpty { out += ",\"removeShops\":" + SnapshotJSON.strings(c.removeShops) }
    if !c.apiKeys.isEmpty { out += ",\"apiKeys\":[" + c.apiKeys.map(SnapshotJSON.key).joined(separator: ",") + "]" }
    if !c.removeApiKeys.isEmpty { out += ",\"removeApiKeys\":" + SnapshotJSON.strings(c.removeApiKeys) }
    return out + "}"
  }
}

/// Snapshot records as JSON, in the snapshot's shapes (the admin API, change sets, compaction).
public enum SnapshotJSON {
  public static func shop(_ s: ShopInput) -> String {
    var out = "{\"id\":"
    JSONText.appendQuoted(s.id, to: &out)
    out += ",\"subdomain\":"
    JSONText.appendQuoted(s.subdomain, to: &out)
    out += ",\"customDomains\":" + strings(s.customDomains)
    out += ",\"headlessMode\":\(s.headlessMode),\"allowedOrigins\":" + strings(s.allowedOrigins)
    out += ",\"status\":"
    JSONText.appendQuoted(s.status, to: &out)
    if let r = s.rateLimit { out += ",\"rateLimit\":{\"rps\":\(r.rps),\"burst\":\(r.burst)}" }
    return out + "}"
  }

  public static func key(_ k: KeyInput) -> String {
    var out = "{\"id\":"
    JSONText.appendQuoted(k.id, to: &out)
    out += ",\"shopId\":"
    JSONText.appendQuoted(k.shopID, to: &out)
    out += ",\"sha256\":"
    JSONText.appendQuoted(k.sha256.lowercased(), to: &out)
    out += ",\"kind\":"
    JSONText.appendQuoted(k.kind, to: &out)
    out += ",\"mode\":"
    JSONText.appendQuoted(k.mode, to: &out)
    return out + ",\"revoked\":\(k.revoked)}"
  }

  public static func strings(_ items: [String]) -> String {
    var out = "["
    for (i, e) in items.enumerated() {
      if i > 0 { out += "," }
      JSONText.appendQuoted(e, to: &out)
    }
    return out + "]"
  }

  /// `GET /admin/shops/<id or subdomain>`: the shop in the snapshot's shape, its keys, and the
  /// table version (an edit's `base`).
  public static func shopDocument(_ table: TenantTable, _ shop: ShopRef) -> String {
    var out = "{\"version\":"
    JSONText.appendQuoted(table.version, to: &out)
    out += ",\"shop\":" + self.shop(table.shopInput(shop))
    out += ",\"apiKeys\":[" + table.keys(of: shop).map { key(table.keyInput($0)) }.joined(separator: ",") + "]}"
    return out
  }
}
