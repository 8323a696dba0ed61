import Foundation
import GatewayCore
import Testing

@testable import GatewaySnapshot

let platform = PlatformHosts(
  apiHosts: ["api.platform.example"], dashboardHosts: ["dashboard.platform.example"], domain: "platform.example")
let shopA = "11111111-1111-4111-8111-111111111111"
let shopB = "22222222-2222-4222-8222-222222222222"
let digestA = KeyDigest.of(key: "sk_a").hex
let digestB = KeyDigest.of(key: "sk_b").hex

func shop(_ id: String = shopA, subdomain: String = "acme", domains: [String] = [], origins: [String] = [], status: String = "active", extra: String = "") -> String {
  let d = domains.map { "\"\($0)\"" }.joined(separator: ",")
  let o = origins.map { "\"\($0)\"" }.joined(separator: ",")
  return "{\"id\":\"\(id)\",\"subdomain\":\"\(subdomain)\",\"customDomains\":[\(d)],\"headlessMode\":true,\"allowedOrigins\":[\(o)],\"status\":\"\(status)\"\(extra)}"
}

func key(_ id: String = "key_a", shop: String = shopA, sha: String = digestA, kind: String = "secret", mode: String = "live", revoked: Bool = false) -> String {
  "{\"id\":\"\(id)\",\"shopId\":\"\(shop)\",\"sha256\":\"\(sha)\",\"kind\":\"\(kind)\",\"mode\":\"\(mode)\",\"revoked\":\(revoked)}"
}

func document(shops: [String], keys: [String], version: String = "\"v1\"") -> String {
  "{\"version\":\(version),\"shops\":[\(shops.joined(separator: ","))],\"apiKeys\":[\(keys.joined(separator: ","))]}"
}

func parse(_ json: String) -> Result<TenantTable, SnapshotError> {
  Result { () throws(SnapshotError) -> TenantTable in try SnapshotParser.parse(Array(json.utf8), platform: platform) }
}

@Suite("Snapshot parsing and validation (§6)")
struct SnapshotParserTests {
  @Test("A valid snapshot builds; unknown fields are ignored")
  func valid() throws {
    let json = document(
      shops: [shop(domains: ["Shop.Acme.com."], origins: ["https://acme.com"], extra: ",\"future\":{\"x\":[1,2,{\"y\":null}]},\"rateLimit\":{\"rps\":50,\"burst\":100}"),
              shop(shopB, subdomain: "bibi")],
      keys: [key(), key("key_b", shop: shopB, sha: digestB, kind: "publishable", mode: "test"), key("key_r", sha: KeyDigest.of(key: "sk_r").hex, revoked: true)])
      .replacingOccurrences(of: "{\"version\"", with: "{\"generatedBy\":\"control-plane\",\"version\"")
    let t = try parse(json).get()
    #expect(t.version == "v1")
    #expect(t.shopCount == 2)
    #expect(t.keyCount == 2)
    var host = "shop.acme.com"
    #expect(host.withUTF8 { t.shop(customDomain: UnsafeRawBufferPointer($0)) }.map(t.shopID) == shopA)
    #expect(t.shop(id: shopA).flatMap(t.rateLimit) == RateLimitOverride(rps: 50, burst: 100))
  }

  @Test("The bundled sample snapshot is valid")
  func sample() throws {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("samples/tenants.json")
    let bytes = try [UInt8](Data(contentsOf: url))
    let p = PlatformHosts(apiHosts: ["api.platform.localhost"], dashboardHosts: ["dashboard.platform.localhost"], domain: "platform.localhost")
    let t = try SnapshotParser.parse(bytes, platform: p)
    #expect(t.shopCount == 3)
  }

  struct Rule: CustomTestStringConvertible, Sendable {
    var rule: String
    var json: String
    var mentions: String
    var testDescription: String { rule }
  }

  static let rules: [Rule] = [
    Rule(rule: "invalid_field", json: document(shops: [shop().replacingOccurrences(of: "\"headlessMode\":true", with: "\"headlessMode\":\"yes\"")], keys: []), mentions: "shops[0].headlessMode"),
    Rule(rule: "invalid_field", json: "{\"shops\":[],\"apiKeys\":[]}", mentions: "version is missing"),
    Rule(rule: "invalid_field", json: document(shops: [shop().replacingOccurrences(of: "\"id\":\"\(shopA)\",", with: "")], keys: []), mentions: "shops[0].id is missing"),
    Rule(rule: "invalid_shop_id", json: document(shops: [shop("bad id")], keys: []), mentions: "bad id"),
    Rule(rule: "invalid_subdomain", json: document(shops: [shop(subdomain: "a.b")], keys: []), mentions: "a.b"),
    Rule(rule: "invalid_subdomain", json: document(shops: [shop(subdomain: "-x")], keys: []), mentions: "-x"),
    Rule(rule: "reserved_subdomain", json: document(shops: [shop(subdomain: "api")], keys: []), mentions: "api"),
    Rule(rule: "reserved_subdomain", json: document(shops: [shop(subdomain: "dashboard")], keys: []), mentions: "dashboard"),
    Rule(rule: "invalid_status", json: document(shops: [shop(status: "closed")], keys: []), mentions: "closed"),
    Rule(rule: "invalid_origin", json: document(shops: [shop(origins: ["https://*.acme.com"])], keys: []), mentions: "*.acme.com"),
    Rule(rule: "invalid_custom_domain", json: document(shops: [shop(domains: ["not a domain"])], keys: []), mentions: "not a domain"),
    Rule(rule: "custom_domain_is_platform_host", json: document(shops: [shop(domains: ["api.platform.example"])], keys: []), mentions: "api.platform.example"),
    Rule(rule: "custom_domain_under_platform_domain", json: document(shops: [shop(domains: ["x.platform.example"])], keys: []), mentions: "x.platform.example"),
    Rule(rule: "duplicate_shop_id", json: document(shops: [shop(), shop(subdomain: "other")], keys: []), mentions: shopA),
    Rule(rule: "duplicate_subdomain", json: document(shops: [shop(), shop(shopB)], keys: []), mentions: "acme"),
    Rule(rule: "duplicate_custom_domain", json: document(shops: [shop(domains: ["a.com"]), shop(shopB, subdomain: "b", domains: ["A.com."])], keys: []), mentions: "a.com"),
    Rule(rule: "invalid_key_sha256", json: document(shops: [shop()], keys: [key(sha: "abc")]), mentions: "key_a"),
    Rule(rule: "invalid_key_kind", json: document(shops: [shop()], keys: [key(kind: "admin")]), mentions: "admin"),
    Rule(rule: "invalid_key_mode", json: document(shops: [shop()], keys: [key(mode: "prod")]), mentions: "prod"),
    Rule(rule: "key_for_unknown_shop", json: document(shops: [shop()], keys: [key(shop: shopB)]), mentions: shopB),
    Rule(rule: "duplicate_key_sha256", json: document(shops: [shop()], keys: [key(), key("key_a2")]), mentions: "key_a2"),
    Rule(rule: "duplicate_key_sha256", json: document(shops: [shop()], keys: [key(revoked: true), key("key_a2")]), mentions: "key_a2"),
  ]

  @Test("Each §6 rule rejects the whole snapshot and names the offending entry", arguments: rules)
  func rejects(_ r: Rule) {
    switch parse(r.json) {
    case .success: Issue.record("accepted a snapshot breaking \(r.rule)")
    case .failure(.invalid(let v)):
      #expect(v.rules.contains(r.rule), "\(v)")
      #expect(v.description.contains(r.mentions), "\(v)")
    case .failure(let other): Issue.record("unexpected \(other)")
    }
  }

  @Test(
    "Malformed JSON is rejected with the byte offset",
    arguments: ["", "{", "{\"version\":\"v\",}", "[]", "{\"version\":\"v\",\"shops\":[],\"apiKeys\":[]} x", "{\"a\":tru}",
                "{\"version\":\"\\ud800\"}", "{\"version\":\"a\u{01}b\"}", String(repeating: "[", count: 100)])
  func malformed(_ json: String) {
    switch parse(json) {
    case .failure(.malformedJSON(let m)): #expect(m.contains("byte"))
    case .failure(.invalid): break  // e.g. "[]" parses as a non-object: also rejected
    default: Issue.record("accepted malformed JSON \(json)")
    }
  }

  @Test("Many violations are summarised: first five examples, then a count")
  func summary() {
    let shops = (0..<20).map { shop("s\($0)", subdomain: "bad.\($0)") }
    guard case .failure(.invalid(let v)) = parse(document(shops: shops, keys: [])) else {
      Issue.record("accepted")
      return
    }
    let sub = v.violations.first { $0.rule == "invalid_subdomain" }
    #expect(sub?.count == 20)
    #expect(sub?.examples.count == 5)
    #expect(v.description.contains("and 15 more"))
  }

  @Test("JSON string escapes decode (\\u, surrogate pairs)")
  func escapes() throws {
    let json = document(shops: [shop(extra: ",\"note\":\"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\\\ \\/\"")], keys: [], version: "\"v\\u0031\"")
    #expect(try parse(json).get().version == "v1")
  }
}

@Suite("Snapshot store and loader")
struct SnapshotStoreTests {
  @Test("publish swaps atomically; a TableReader sees the new table at its next request")
  func swap() throws {
    let store = SnapshotStore()
    var reader = TableReader(store: store)
    #expect(!store.isReady)
    #expect(reader.current().shopCount == 0)
    let t1 = try SnapshotParser.parse(Array(document(shops: [shop()], keys: []).utf8), platform: platform)
    store.publish(t1, source: "test")
    #expect(store.isReady)
    #expect(reader.current() === t1)
    let held = reader.current()
    let t2 = try SnapshotParser.parse(Array(document(shops: [shop(), shop(shopB, subdomain: "b")], keys: []).utf8), platform: platform)
    store.publish(t2, source: "test")
    #expect(reader.current() === t2)
    #expect(held.shopCount == 1)  // a request in flight keeps its table
    store.recordFailure(["broken"])
    #expect(store.status.lastError == ["broken"])
    #expect(store.status.rejected == 1)
    #expect(reader.current() === t2)
  }

  @Test("A broken source at start falls back to the last-known-good copy; a broken reload keeps the old table")
  func lastKnownGood() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tgw-lkg-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: dir) }
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let path = dir.appendingPathComponent("tenants.json").path
    try document(shops: [shop()], keys: [key()]).write(toFile: path, atomically: true, encoding: .utf8)
    let loader = SnapshotLoader(path: path, stateDirectory: dir.appendingPathComponent("state").path, platform: platform)
    let store = SnapshotStore()
    try loader.loadAtStart(into: store)
    #expect(FileManager.default.fileExists(atPath: loader.lastKnownGoodPath))

    try "{ not json".write(toFile: path, atomically: true, encoding: .utf8)
    guard case .failure = loader.reload(into: store) else {
      Issue.record("accepted a broken reload")
      return
    }
    #expect(store.current.shopCount == 1)

    let restarted = SnapshotStore()
    try loader.loadAtStart(into: restarted)
    #expect(restarted.current.shopCount == 1)
    #expect(restarted.status.source.hasPrefix("last-known-good:"))
    #expect(restarted.status.lastError?.isEmpty == false)
  }
}

@Suite("Streaming snapshot parser")
struct SnapshotStreamParserTests {
  static func write(_ json: String) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("tgw-stream-\(UUID().uuidString).json").path
    try json.write(toFile: path, atomically: true, encoding: .utf8)
    return path
  }

  static let document: String = {
    var shops: [String] = []
    var keys: [String] = []
    for i in 0..<300 {
      let id = "00000000-0000-4000-8000-\(String(format: "%012d", i))"
      shops.append(shop(id, subdomain: "shop\(i)", domains: ["shop\(i).merchant.test"], origins: ["https://shop\(i).merchant.test"],
                        extra: ",\"note\":\"caf\\u00e9 \\\"\(i)\\\" \\\\\",\"nested\":{\"a\":[1,2.5e3,true,null]}"))
      keys.append(key("key_\(i)", shop: id, sha: KeyDigest.of(key: "sk_\(i)").hex, kind: i % 2 == 0 ? "secret" : "publishable"))
    }
    // Keys first for half the document: some keys name shops that come later.
    return "{\"apiKeys\":[\(keys.joined(separator: ",\n"))],\n\"version\":\"stream\\u002d1\",\"shops\":[\(shops.joined(separator: ",\n  "))]}\n\n"
  }()

  @Test("Tiny windows give the same table as parsing in memory", arguments: [16, 17, 61, 256, 4096, 1 << 22])
  func sameTable(_ window: Int) throws {
    let path = try Self.write(Self.document)
    defer { try? FileManager.default.removeItem(atPath: path) }
    let streamed = try SnapshotStreamParser.parse(path: path, platform: platform, seed: 9, windowSize: window)
    let inMemory = try SnapshotParser.parse(Array(Self.document.utf8), platform: platform)
    #expect(streamed.version == "stream-1")
    #expect(streamed.shopCount == inMemory.shopCount)
    #expect(streamed.keyCount == inMemory.keyCount)
    #expect(streamed.customDomainCount == 300)
    let key = try #require(streamed.key(digest: KeyDigest.of(key: "sk_299")))
    #expect(streamed.shopID(streamed.shop(of: key)) == "00000000-0000-4000-8000-000000000299")
  }

  @Test("A long load reports progress: entries, bytes and percentage only grow, and reach the whole file")
  func progress() throws {
    let path = try Self.write(Self.document)
    defer { try? FileManager.default.removeItem(atPath: path) }
    final class Reports: @unchecked Sendable {
      let lock = NSLock()
      var items: [SnapshotLoadProgress] = []
    }
    let reports = Reports()
    _ = try SnapshotStreamParser.parse(
      path: path, platform: platform, windowSize: 512,
      progress: { p in reports.lock.withLock { reports.items.append(p) } }, progressInterval: 0)
    let items = reports.items
    #expect(items.count > 10, "a report per refill with interval 0: \(items.count)")
    #expect(zip(items, items.dropFirst()).allSatisfy { $0.entries <= $1.entries && $0.bytesRead <= $1.bytesRead })
    #expect(items.last?.percent == 100)
    #expect(items.last?.totalBytes == Self.document.utf8.count)
    #expect((items.last?.entries ?? 0) >= 500, "\(items.last.map { "\($0.entries)" } ?? "")")
  }

  @Test("Errors carry the file offset; truncated documents are malformed, not accepted", arguments: [16, 4096])
  func errors(_ window: Int) throws {
    for bad in [String(Self.document.prefix(5000)), Self.document + "x", Self.document.replacingOccurrences(of: "\"shop77\"", with: "\"shop77\" x")] {
      let path = try Self.write(bad)
      defer { try? FileManager.default.removeItem(atPath: path) }
      do {
        _ = try SnapshotStreamParser.parse(path: path, platform: platform, windowSize: window)
        Issue.record("accepted a malformed document")
      } catch {
        guard case .malformedJSON(let m) = error else {
          Issue.record("\(error)")
          continue
        }
        #expect(m.contains("byte"))
      }
    }
  }

  @Test("Validation rules still apply when streaming")
  func rules() throws {
    let path = try Self.write(GatewaySnapshotTests.document(shops: [shop(), shop(shopB)], keys: [key(shop: "nope")]))
    defer { try? FileManager.default.removeItem(atPath: path) }
    let result = Result { () throws(SnapshotError) in try SnapshotStreamParser.parse(path: path, platform: platform, windowSize: 32) }
    guard case .failure(.invalid(let v)) = result else {
      Issue.record("\(result)")
      return
    }
    #expect(Set(v.rules) == ["duplicate_subdomain", "key_for_unknown_shop"])
  }
}
