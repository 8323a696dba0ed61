import GatewayCore
import GatewayObservability
import Testing

@Suite("Per-shop top-K (bounded, Space-Saving)")
struct ShopTopKTests {
  func table(_ ids: [String]) throws -> TenantTable {
    var b = TenantTableBuilder(version: "v1", platform: PlatformHosts(apiHosts: ["api.p.example"], dashboardHosts: [], domain: "p.example"), seed: 7)
    for (i, id) in ids.enumerated() { b.addShop(ShopInput(id: id, subdomain: "s\(i)", headlessMode: false)) }
    return try b.finish()
  }

  @Test("Heavy shops are always kept with counts that are upper bounds; memory stays at 32 slots")
  func heavyHitters() throws {
    let ids = (0..<2000).map { "shop-\($0)" }
    let t = try table(ids)
    var topK = ShopTopK()
    var truth: [String: Int] = [:]
    var rng = SystemRandomNumberGenerator()
    for n in 0..<50_000 {
      // shop-0 gets 20 %, shop-1 10 %, the rest is spread over 2 000 shops.
      let i = n % 10 < 2 ? 0 : (n % 10 == 2 ? 1 : Int.random(in: 0..<2000, using: &rng))
      truth[ids[i], default: 0] += 1
      topK.record(ShopRef(i), in: t)
    }
    let top = topK.resolved(in: t)
    #expect(top.count <= ShopTopK.capacity)
    for heavy in ["shop-0", "shop-1"] {
      #expect((top[heavy] ?? 0) >= truth[heavy]!, "\(heavy): \(top[heavy] ?? 0) < \(truth[heavy]!)")
    }
    #expect(top.sorted { $0.value > $1.value }.first?.key == "shop-0")
  }

  @Test("Names survive a reload that moves shops to other indices; removed shops are left out")
  func acrossReloads() throws {
    var topK = ShopTopK()
    let t1 = try table(["a", "b", "c"])
    for _ in 0..<5 { topK.record(ShopRef(1), in: t1) }  // "b"
    topK.record(ShopRef(2), in: t1)  // "c"
    let t2 = try table(["b", "a"])  // "b" moved to index 0; "c" is gone
    #expect(topK.resolved(in: t2)["c"] == nil)
    topK.record(ShopRef(0), in: t2)  // "b" again, at its new index
    #expect(topK.resolved(in: t2)["b"] == 6)
  }
}
