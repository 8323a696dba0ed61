import Testing

@testable import GatewayCore

@Suite("Change sets: the table follows edits without a rebuild (§6 Changes)")
struct ChangeSetTests {
  static let platform = Fixture.platform

  func shop(_ t: TenantTable, domain: String) -> String? {
    var d = domain
    return d.withUTF8 { t.shop(customDomain: UnsafeRawBufferPointer($0)) }.map(t.shopID)
  }
  func shop(_ t: TenantTable, subdomain: String) -> String? {
    var d = subdomain
    return d.withUTF8 { t.shop(subdomain: UnsafeRawBufferPointer($0)) }.map(t.shopID)
  }
  func keyShop(_ t: TenantTable, key: String) -> String? {
    t.key(digest: KeyDigest.of(key: key)).map { t.shopID(t.shop(of: $0)) }
  }

  @Test("A shop replaced by id: new domains resolve, old ones miss, its keys follow it, the base is untouched")
  func replaceShop() throws {
    let base = try Fixture.table()
    var acme = base.shopInput(base.shop(id: Fixture.acme)!)
    acme.customDomains = ["www.acme.com"]
    acme.status = "suspended"
    let next = try base.applying(ChangeSet(version: "v2", base: "v1", shops: [acme]), platform: Self.platform)
    #expect(next.version == "v2")
    #expect(shop(next, domain: "www.acme.com") == Fixture.acme)
    #expect(shop(next, domain: "shop.acme.com") == nil)
    #expect(shop(next, subdomain: "acme") == Fixture.acme)
    #expect(next.isSuspended(next.shop(id: Fixture.acme)!))
    #expect(keyShop(next, key: "sk_live_acme") == Fixture.acme)
    #expect(next.kind(of: next.key(digest: KeyDigest.of(key: "pk_live_acme"))!) == .publishable)
    #expect(next.shopCount == 3 && next.keyCount == base.keyCount && next.customDomainCount == 2)
    // Other shops are still served from the base arrays.
    #expect(shop(next, domain: "bibi.example") == Fixture.bibi)
    #expect(keyShop(next, key: "sk_live_bibi") == Fixture.bibi)
    // The old table is unchanged (requests in flight keep it).
    #expect(shop(base, domain: "shop.acme.com") == Fixture.acme)
    #expect(!base.isSuspended(base.shop(id: Fixture.acme)!))
  }

  @Test("Removing a shop removes its keys, domains and subdomain; keys are added, moved and removed by id")
  func removeAndKeys() throws {
    let base = try Fixture.table()
    let removed = try base.applying(ChangeSet(version: "v2", removeShops: [Fixture.bibi]), platform: Self.platform)
    #expect(shop(removed, subdomain: "bibi") == nil)
    #expect(shop(removed, domain: "bibi.example") == nil)
    #expect(keyShop(removed, key: "sk_live_bibi") == nil)
    #expect(removed.shopCount == 2 && removed.keyCount == base.keyCount - 2 && removed.customDomainCount == 1)
    #expect(Array(removed.shops).map(removed.shopID).sorted() == [Fixture.acme, Fixture.tea].sorted())

    let newKey = KeyInput(id: "k_tea_pk", shopID: Fixture.tea, sha256: KeyDigest.of(key: "pk_live_tea").hex, kind: "publishable", mode: "live")
    let moved = KeyInput(id: "k_acme_sk", shopID: Fixture.tea, sha256: KeyDigest.of(key: "sk_live_acme").hex, kind: "secret", mode: "live")
    let keyed = try removed.applying(
      ChangeSet(version: "v3", base: "v2", apiKeys: [newKey, moved], removeApiKeys: ["k_acme_pk"]), platform: Self.platform)
    #expect(keyShop(keyed, key: "pk_live_tea") == Fixture.tea)
    #expect(keyShop(keyed, key: "sk_live_acme") == Fixture.tea)
    #expect(keyShop(keyed, key: "pk_live_acme") == nil)
    #expect(keyShop(keyed, key: "sk_test_acme") == Fixture.acme)
    #expect(keyed.key(id: "k_tea_pk").map(keyed.keyID) == "k_tea_pk")
    #expect(keyed.keys(of: keyed.shop(id: Fixture.tea)!).map(keyed.keyID).sorted() == ["k_acme_sk", "k_tea_pk", "k_tea_sk"])
    #expect(keyed.keyCount == Array(keyed.keys).count)
  }

  @Test("Every §6 rule is checked against the table after the change; a refused change set changes nothing")
  func validation() throws {
    let base = try Fixture.table()
    func rules(_ c: ChangeSet) -> [String] {
      do {
        _ = try base.applying(c, platform: Self.platform)
        return []
      } catch { return error.rules }
    }
    var bibi = base.shopInput(base.shop(id: Fixture.bibi)!)
    bibi.customDomains.append("shop.acme.com")
    #expect(rules(ChangeSet(version: "x", shops: [bibi])) == ["duplicate_custom_domain"])
    var sub = ShopInput(id: "new", subdomain: "acme")
    #expect(rules(ChangeSet(version: "x", shops: [sub])) == ["duplicate_subdomain"])
    sub.subdomain = "api"
    #expect(rules(ChangeSet(version: "x", shops: [sub])) == ["reserved_subdomain"])
    let under = ShopInput(id: "new", subdomain: "new", customDomains: ["x.platform.example"])
    #expect(rules(ChangeSet(version: "x", shops: [under])) == ["custom_domain_under_platform_domain"])
    let host = ShopInput(id: "new", subdomain: "new", customDomains: ["api.platform.example"])
    #expect(rules(ChangeSet(version: "x", shops: [host])) == ["custom_domain_is_platform_host"])
    let dupKey = KeyInput(id: "k_new", shopID: Fixture.tea, sha256: KeyDigest.of(key: "sk_live_acme").hex, kind: "secret", mode: "live")
    #expect(rules(ChangeSet(version: "x", apiKeys: [dupKey])) == ["duplicate_key_sha256"])
    let orphan = KeyInput(id: "k_new", shopID: "nope", sha256: KeyDigest.of(key: "zzz").hex, kind: "secret", mode: "live")
    #expect(rules(ChangeSet(version: "x", apiKeys: [orphan])) == ["key_for_unknown_shop"])
    let removedShopKey = KeyInput(id: "k_new", shopID: Fixture.bibi, sha256: KeyDigest.of(key: "zzz").hex, kind: "secret", mode: "live")
    #expect(rules(ChangeSet(version: "x", removeShops: [Fixture.bibi], apiKeys: [removedShopKey])) == ["key_for_unknown_shop"])
    #expect(rules(ChangeSet(version: "x", base: "v0")) == [TenantTable.staleBaseRule])
    #expect(rules(ChangeSet(version: "")) == ["invalid_field"])
    #expect(rules(ChangeSet(version: "x", removeShops: ["nope"])) == ["unknown_shop"])
    #expect(rules(ChangeSet(version: "x", removeApiKeys: ["k_acme_revoked"])) == ["unknown_key"])
    #expect(rules(ChangeSet(version: "x", shops: [bibi], removeShops: [Fixture.bibi])).contains("conflicting_change"))
    // Moving a domain between shops in one change set is fine: the rule is about the table after it.
    var acme = base.shopInput(base.shop(id: Fixture.acme)!)
    acme.customDomains = []
    let moved = try base.applying(ChangeSet(version: "x", shops: [acme, bibi]), platform: Self.platform)
    #expect(shop(moved, domain: "shop.acme.com") == Fixture.bibi)
    // A later change set sees earlier ones: the domain freed above can be reused.
    var tea = moved.shopInput(moved.shop(id: Fixture.tea)!)
    tea.customDomains = ["bibi.example"]
    #expect(throws: SnapshotValidationError.self) { try moved.applying(ChangeSet(version: "y", shops: [tea]), platform: Self.platform) }
    bibi.customDomains = ["shop.acme.com"]
    let freed = try moved.applying(ChangeSet(version: "y", shops: [bibi, tea]), platform: Self.platform)
    #expect(shop(freed, domain: "bibi.example") == Fixture.tea)
  }

  @Test("A batch is applied in order with one validation; base chains through it")
  func batch() throws {
    let base = try Fixture.table()
    var changes: [ChangeSet] = []
    var previous = "v1"
    for i in 0..<50 {
      let s = ShopInput(id: "shop-\(i)", subdomain: "s\(i)", customDomains: ["d\(i).example"])
      changes.append(ChangeSet(version: "b\(i)", base: previous, shops: [s]))
      previous = "b\(i)"
    }
    changes.append(ChangeSet(version: "b-rm", base: previous, removeShops: ["shop-7"]))
    let t = try base.applying(changes, platform: Self.platform)
    #expect(t.version == "b-rm")
    #expect(t.shopCount == 3 + 49)
    #expect(shop(t, domain: "d49.example") == "shop-49")
    #expect(shop(t, domain: "d7.example") == nil)
    var broken = changes
    broken[10].base = "v1"
    #expect(throws: SnapshotValidationError.self) { try base.applying(broken, platform: Self.platform) }
  }

  @Test("Folding an overlay gives the same answers from one flat table in the same lineage")
  func fold() throws {
    let base = try Fixture.table()
    var t = base
    for i in 0..<20 {
      let s = ShopInput(id: "shop-\(i)", subdomain: "s\(i)", customDomains: ["d\(i).example"], status: i % 2 == 0 ? "active" : "suspended")
      let k = KeyInput(id: "key-\(i)", shopID: "shop-\(i)", sha256: KeyDigest.of(key: "key\(i)").hex, kind: "secret", mode: "live")
      t = try t.applying(ChangeSet(version: "f\(i)", shops: [s], apiKeys: [k]), platform: Self.platform)
    }
    t = try t.applying(ChangeSet(version: "f-last", removeShops: [Fixture.tea, "shop-3"]), platform: Self.platform)
    let flat = try t.folded(platform: Self.platform)
    #expect(flat.overlayShopCount == 0 && t.overlayShopCount > 0)
    #expect(flat.lineage == base.lineage && flat.version == "f-last")
    #expect(flat.shopCount == t.shopCount && flat.keyCount == t.keyCount && flat.customDomainCount == t.customDomainCount)
    for i in 0..<20 {
      #expect(shop(flat, domain: "d\(i).example") == shop(t, domain: "d\(i).example"))
      #expect(keyShop(flat, key: "key\(i)") == keyShop(t, key: "key\(i)"))
      if let s = flat.shop(id: "shop-\(i)") { #expect(flat.isSuspended(s) == (i % 2 == 1)) }
    }
    #expect(shop(flat, subdomain: "tea") == nil)
    #expect(keyShop(flat, key: "sk_live_acme") == Fixture.acme)
    // Stable hashes (rate-limit buckets, top-K) survive change sets and folds.
    #expect(t.stableShopHash(t.shop(id: Fixture.acme)!) == base.stableShopHash(base.shop(id: Fixture.acme)!))
    #expect(flat.stableShopHash(flat.shop(id: "shop-4")!) == t.stableShopHash(t.shop(id: "shop-4")!))
  }

  @Test("CORS preflights see overlay shops and stop seeing hidden ones")
  func origins() throws {
    let base = try Fixture.table()
    var acme = base.shopInput(base.shop(id: Fixture.acme)!)
    acme.allowedOrigins = ["https://new.acme.com"]
    let t = try base.applying(ChangeSet(version: "o", shops: [acme]), platform: Self.platform)
    func allowed(_ o: String) -> Bool {
      var o = o
      return o.withUTF8 { t.hasActiveShop(allowingOrigin: UnsafeRawBufferPointer($0)) }
    }
    #expect(allowed("https://new.acme.com"))
    #expect(!allowed("https://acme.com"))
  }
}

@Suite("Tolerant builds (a database source): a row that breaks a rule is left out alone")
struct TolerantBuildTests {
  @Test("Broken shops and keys are refused with their ids; every other row builds; strict mode still refuses the whole")
  func tolerant() throws {
    func build(tolerant: Bool) -> (TenantTable?, [TenantTableBuilder.Refusal]) {
      var b = TenantTableBuilder(version: "pg:1", platform: Fixture.platform, tolerant: tolerant)
      b.addShop(ShopInput(id: "good", subdomain: "good", customDomains: ["good.example"]))
      b.addShop(ShopInput(id: "reserved", subdomain: "api"))
      b.addShop(ShopInput(id: "dupdomain", subdomain: "dup", customDomains: ["good.example"]))
      b.addShop(ShopInput(id: "badstatus", subdomain: "bs", status: "paused"))
      b.addKey(KeyInput(id: "k1", shopID: "good", sha256: KeyDigest.of(key: "a").hex, kind: "secret", mode: "live"))
      b.addKey(KeyInput(id: "k2", shopID: "reserved", sha256: KeyDigest.of(key: "b").hex, kind: "secret", mode: "live"))
      b.addKey(KeyInput(id: "k3", shopID: "good", sha256: KeyDigest.of(key: "a").hex, kind: "secret", mode: "live"))
      b.addKey(KeyInput(id: "k4", shopID: "good", sha256: "nothex", kind: "secret", mode: "live"))
      let t = try? b.finish()
      return (t, b.refusals)
    }
    let (t, refusals) = build(tolerant: true)
    let table = try #require(t)
    #expect(table.shopCount == 1 && table.keyCount == 1)
    #expect(table.shop(idOrSubdomain: "good") != nil)
    #expect(Set(refusals.map { "\($0.entity.rawValue):\($0.id)" })
      == ["shop:reserved", "shop:dupdomain", "shop:badstatus", "api_key:k2", "api_key:k3", "api_key:k4"])
    #expect(refusals.first { $0.id == "reserved" }?.reasons.joined().contains("reserved_subdomain") == true)
    #expect(refusals.first { $0.id == "k2" }?.reasons.joined().contains("key_for_unknown_shop") == true)
    let (strict, none) = build(tolerant: false)
    #expect(strict == nil && none.isEmpty)
  }
}
