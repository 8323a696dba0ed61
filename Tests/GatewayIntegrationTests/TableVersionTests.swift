import Foundation
import Testing

/// PRODUCT.md §9 invariant 6: a request is answered from exactly one table version, the one it
/// started with — its X-Tenant and its access-log line alike — whatever reloads land meanwhile.
@Suite("One request, one table (§9.6)", .serialized)
struct TableVersionTests {
  /// The sample snapshot with its shops in another order, optionally only some of them.
  func variant(_ h: GatewayHarness, name: String, order: [Int]) throws -> String {
    let doc = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: h.snapshotPath))) as! [String: Any]
    let shops = doc["shops"] as! [[String: Any]]
    let kept = order.map { shops[$0] }
    let ids = Set(kept.compactMap { $0["id"] as? String })
    var out = doc
    out["version"] = "variant-\(name)"
    out["shops"] = kept
    out["apiKeys"] = (doc["apiKeys"] as! [[String: Any]]).filter { ids.contains($0["shopId"] as? String ?? "") }
    let path = h.directory.appendingPathComponent("snapshot-\(name).json").path
    try JSONSerialization.data(withJSONObject: out).write(to: URL(fileURLWithPath: path))
    return path
  }

  @Test("Invariant §9.6: under reloads of tables of other sizes and shop orders, every access-log line names the shop its request's X-Tenant names")
  func accessLogMatchesXTenant() throws {
    try withAccessLog { h, log in try flapUnderLoad(h, log: log) }
  }

  func flapUnderLoad(_ h: GatewayHarness, log: String) throws {
    let original = h.directory.appendingPathComponent("snapshot-original.json").path
    try FileManager.default.copyItem(atPath: h.snapshotPath, toPath: original)
    let reversed = try variant(h, name: "reversed", order: [2, 1, 0])
    let smaller = try variant(h, name: "smaller", order: [1, 0])
    let tiny = try variant(h, name: "tiny", order: [2])
    let flapper = try h.startPython(
      "reload_flapper.py", [String(h.adminPort), h.snapshotPath, "6", original, reversed, smaller, tiny],
      output: h.directory.appendingPathComponent("flapper.json").path)
    defer { GatewayHarness.terminate(flapper) }
    var loads: [Process] = []
    for host in ["acme.platform.localhost", "bibi-saree.platform.localhost"] {
      loads.append(try GatewayHarness.startProcess(
        ["timeout", "-k", "2", "20", "h2load", "-D", "5", "-c", "2", "-m", "4", "-t", "1", "-H", ":authority: \(host)",
         "https://127.0.0.1:\(h.port)/one-table"],
        output: h.directory.appendingPathComponent("h2load-\(host).txt").path))
    }
    for p in loads { p.waitUntilExit() }
    flapper.waitUntilExit()
    #expect(h.gatewayRunning, "the gateway survived: \(h.gatewayLogTail)")
    let reloads = (try? JSONSerialization.jsonObject(with: Data(contentsOf: h.directory.appendingPathComponent("flapper.json")))) as? [String: Any]
    #expect((reloads?["accepted"] as? Int ?? 0) > 20, "too few reloads to mean anything: \(reloads ?? [:])")

    // X-Tenant as the upstream received it, by request id (jti).
    var signed: [String: String] = [:]
    for r in h.upstreamRequests() {
      guard let token = (r["headers"] as? [[String]])?.first(where: { $0.first?.lowercased() == "x-tenant" })?.last,
        let c = jwtPayload(token), let jti = c["jti"] as? String, let shop = c["shop_id"] as? String
      else { continue }
      signed[jti] = shop
    }
    try h.waitFor(timeout: 5) { ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").count >= signed.count }
    var compared = 0
    var mismatches: [String] = []
    for line in try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n") {
      guard let e = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
        let id = e["request_id"] as? String, let shop = signed[id]
      else { continue }
      compared += 1
      if e["shop_id"] as? String != shop { mismatches.append("\(id): log \(e["shop_id"] ?? "none"), X-Tenant \(shop)") }
    }
    #expect(compared > 500, "too few forwarded requests compared: \(compared)")
    #expect(mismatches.isEmpty, "\(mismatches.count) of \(compared) lines name another shop: \(mismatches.prefix(5))")
  }
}
