import Testing

@testable import GatewayCore

/// A small table shared by the resolver and table tests.
enum Fixture {
  static let acme = "11111111-1111-4111-8111-111111111111"
  static let bibi = "22222222-2222-4222-8222-222222222222"
  static let tea = "33333333-3333-4333-8333-333333333333"
  static let platform = PlatformHosts(
    apiHosts: ["api.platform.example"], dashboardHosts: ["dashboard.platform.example"], domain: "platform.example")

  static let keys: [(id: String, shop: String, key: String, kind: String, mode: String, revoked: Bool)] = [
    ("k_acme_sk", acme, "sk_live_acme", "secret", "live", false),
    ("k_acme_sk_test", acme, "sk_test_acme", "secret", "test", false),
    ("k_acme_pk", acme, "pk_live_acme", "publishable", "live", false),
    ("k_acme_revoked", acme, "sk_live_acme_revoked", "secret", "live", true),
    ("k_bibi_sk", bibi, "sk_live_bibi", "secret", "live", false),
    ("k_bibi_pk", bibi, "pk_live_bibi", "publishable", "live", false),
    ("k_tea_sk", tea, "sk_live_tea", "secret", "live", false),
  ]

  static func table() throws -> TenantTable {
    var b = TenantTableBuilder(version: "v1", platform: platform, seed: 42)
    b.addShop(ShopInput(id: acme, subdomain: "acme", customDomains: ["shop.acme.com"], headlessMode: true,
                        allowedOrigins: ["https://acme.com", "http://localhost:3000"]))
    b.addShop(ShopInput(id: bibi, subdomain: "bibi", customDomains: ["Bibi.Example."], headlessMode: false))
    b.addShop(ShopInput(id: tea, subdomain: "tea", headlessMode: true, allowedOrigins: ["https://tea.com"], status: "suspended"))
    for k in keys {
      b.addKey(KeyInput(id: k.id, shopID: k.shop, sha256: KeyDigest.of(key: k.key).hex, kind: k.kind, mode: k.mode, revoked: k.revoked))
    }
    return try b.finish()
  }
}

@Suite("Tenant table")
struct TenantTableTests {
  func withBytes<R>(_ s: String, _ body: (UnsafeRawBufferPointer) -> R) -> R {
    var s = s
    return s.withUTF8 { body(UnsafeRawBufferPointer($0)) }
  }

  @Test("Lookups by subdomain, custom domain (normalised at build), shop id and key digest")
  func lookups() throws {
    let t = try Fixture.table()
    #expect(t.shopCount == 3)
    #expect(t.customDomainCount == 2)
    #expect(t.keyCount == 6)  // the revoked key is not stored
    let acme = try #require(withBytes("acme") { t.shop(subdomain: $0) })
    #expect(t.shopID(acme) == Fixture.acme)
    #expect(withBytes("bibi.example") { t.shop(customDomain: $0) }.map(t.shopID) == Fixture.bibi)
    #expect(withBytes("nobody") { t.shop(subdomain: $0) } == nil)
    #expect(t.shop(id: Fixture.tea).map(t.isSuspended) == true)
    let key = try #require(t.key(digest: KeyDigest.of(key: "pk_live_acme")))
    #expect(t.kind(of: key) == .publishable)
    #expect(t.mode(of: key) == .live)
    #expect(t.shop(of: key) == acme)
    #expect(t.keyID(key) == "k_acme_pk")
    #expect(t.key(digest: KeyDigest.of(key: "sk_live_acme_revoked")) == nil)
    #expect(t.mode(of: try #require(t.key(digest: KeyDigest.of(key: "sk_test_acme")))) == .test)
  }

  @Test("Origins are stored normalised and matched exactly")
  func origins() throws {
    let t = try Fixture.table()
    let acme = try #require(t.shop(id: Fixture.acme))
    #expect(t.allowedOrigins(acme) == ["https://acme.com", "http://localhost:3000"])
    #expect(withBytes("https://acme.com") { t.allowsOrigin(acme, $0) })
    #expect(!withBytes("https://acme.com.evil.com") { t.allowsOrigin(acme, $0) })
  }

  @Test("Key digests parse from hex and print back")
  func digests() {
    let d = KeyDigest.of(key: "abc")
    #expect(d.hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    #expect(KeyDigest(hex: d.hex) == d)
    #expect(KeyDigest(hex: d.hex.uppercased()) == d)
    #expect(KeyDigest(hex: "abc") == nil)
    #expect(KeyDigest(hex: String(repeating: "g", count: 64)) == nil)
  }

  @Test("A table of 100 000 shops is compact: no per-entry objects")
  func compact() throws {
    var b = TenantTableBuilder(version: "big", platform: Fixture.platform, seed: 7)
    let n = 100_000
    for i in 0..<n {
      b.addShop(ShopInput(id: "00000000-0000-4000-8000-\(pad12(i))", subdomain: "shop\(i)", customDomains: ["shop\(i).merchant.test"]))
      b.addKey(KeyInput(id: "key_\(i)", shopID: "00000000-0000-4000-8000-\(pad12(i))", sha256: KeyDigest.of(key: "sk_\(i)").hex, kind: "secret", mode: "live"))
    }
    let t = try b.finish()
    #expect(t.hostCount == 2 * n)
    // 3 entries per shop (2 hosts + 1 key): well under the 250 bytes per entry budget of issue 4/8.
    let perEntry = Double(t.byteSize) / Double(3 * n)
    #expect(perEntry < 150, "\(perEntry) bytes per entry")
    var probe = "shop77777"
    #expect(probe.withUTF8 { t.shop(subdomain: UnsafeRawBufferPointer($0)) }.map(t.shopID) == "00000000-0000-4000-8000-000000077777")
  }
}

func pad12(_ i: Int) -> String {
  let s = String(i)
  return String(repeating: "0", count: max(0, 12 - s.count)) + s
}
