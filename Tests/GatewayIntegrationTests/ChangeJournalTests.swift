import Foundation
import Testing

/// PRODUCT.md §6 "Changes" through the real binary: `POST /admin/changes`, the journal beside the
/// snapshot (followed, replayed, superseded), the edit commands, and `snapshot compact` killed at
/// every step.
@Suite("Change sets and the journal (real gateway)", .serialized)
struct ChangeJournalTests {
  static func post(_ h: GatewayHarness, _ body: String) throws -> GatewayHarness.HTTPResult {
    let r = try Shell.run("curl", ["-s", "-D", "-", "-X", "POST", "--data-binary", body, "http://127.0.0.1:\(h.adminPort)/admin/changes"])
    return GatewayHarness.parseCurl(r.stdout)
  }

  static func version(_ h: GatewayHarness) throws -> String {
    try h.admin("/admin/snapshot").json?["version"] as? String ?? ""
  }

  @Test("POST /admin/changes: validated against the live table, journaled, served at once; refused and stale edits change nothing")
  func adminChanges() throws {
    try withGateway { h in
      let v0 = try Self.version(h)
      let shop = try h.admin("/admin/shops/acme").json
      #expect(shop?["version"] as? String == v0)
      var acme = try #require(shop?["shop"] as? [String: Any])
      #expect(acme["id"] as? String == Demo.acmeID)
      #expect((shop?["apiKeys"] as? [[String: Any]])?.contains { $0["id"] as? String == "key_acme_live_secret" } == true)
      #expect(try h.admin("/admin/shops/nope").status == 404)

      // Suspend acme: its next request is refused, from this table on.
      acme["status"] = "suspended"
      let body = String(decoding: try JSONSerialization.data(withJSONObject: ["version": "c1", "base": v0, "shops": [acme]]), as: UTF8.self)
      let ok = try Self.post(h, body)
      #expect(ok.status == 200, "\(ok.body)")
      #expect(ok.json?["version"] as? String == "c1")
      #expect(try h.curl("acme.platform.localhost", "/").errorCode == "shop_suspended")

      // The same base again is stale: 409 with the current version, nothing applied.
      acme["status"] = "active"
      let stale = try Self.post(h, String(decoding: try JSONSerialization.data(withJSONObject: ["version": "c2", "base": v0, "shops": [acme]]), as: UTF8.self))
      #expect(stale.status == 409)
      #expect(stale.errorCode == "stale_base")
      #expect(stale.json?["version"] as? String == "c1")
      #expect(try h.curl("acme.platform.localhost", "/").errorCode == "shop_suspended")

      // A rule broken: 422 naming it; the table stays at c1.
      acme["customDomains"] = ["x.platform.localhost"]
      let bad = try Self.post(h, String(decoding: try JSONSerialization.data(withJSONObject: ["version": "c3", "shops": [acme]]), as: UTF8.self))
      #expect(bad.status == 422)
      #expect((bad.json?["errors"] as? [String])?.joined().contains("custom_domain_under_platform_domain") == true, "\(bad.body)")
      #expect(try Self.post(h, "{not json").status == 422)
      #expect(try Self.version(h) == "c1")

      // A key revoked: it stops resolving at once.
      let revoke = try Self.post(h, #"{"version": "c4", "base": "c1", "removeApiKeys": ["key_bibi_live_secret"]}"#)
      #expect(revoke.status == 200, "\(revoke.body)")
      let r = try h.curl(Demo.apiHost, "/v1/store/x", headers: ["Authorization: Bearer \(Demo.bibiSecret)"])
      #expect(r.status == 401, "\(r.body)")

      // Every accepted edit is one journal line after the header; the snapshot file is untouched.
      let lines = try String(contentsOfFile: h.snapshotPath + ".changes", encoding: .utf8).split(separator: "\n")
      #expect(lines.count == 3)
      #expect(lines.first?.contains("\"journalFor\":\"\(v0)\"") == true)
      let status = try h.admin("/admin/snapshot").json?["changes"] as? [String: Any]
      #expect(status?["applied"] as? Int == 2)
      #expect(status?["refused"] as? Int ?? 0 >= 2)
      let metrics = try h.admin("/metrics").body
      #expect(metrics.contains("tenant_gateway_change_sets_total{result=\"applied\"} 2"))
      #expect(metrics.contains("tenant_gateway_overlay_entries{kind=\"shops\"} 2"), "\(metrics.split(separator: "\n").filter { $0.contains("overlay") })")

      // A restart replays the journal: the same table, version and answers.
      h.signal(SIGTERM)
      while h.gatewayRunning { usleep(20_000) }
      try h.startPrewritten(upstream: false)
      #expect(try Self.version(h) == "c4")
      #expect(try h.curl("acme.platform.localhost", "/").errorCode == "shop_suspended")
    }
  }

  @Test("The journal is followed: a line another writer appends is served within 100 ms; a new snapshot supersedes the journal")
  func follow() throws {
    try withGateway { h in
      let journal = h.snapshotPath + ".changes"
      try h.waitFor(timeout: 5) { FileManager.default.fileExists(atPath: journal) }
      // 50 edits by another writer (journal lines under the lock, fsynced), each timed to the first
      // lookup that serves it; then 50 through the admin API.
      for mode in ["journal", "admin"] {
        let r = try h.python("edit_latency.py", [String(h.adminPort), mode, "50", journal])
        let stats = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        print("edit → served (\(mode)): \(r.stdout)")
        #expect(stats?["count"] as? Int == 50, "\(r.stdout) \(r.stderr)")
        #expect((stats?["p50_ms"] as? Double ?? 1e9) < 100, "\(r.stdout)")
      }
      // A line that breaks a rule is refused alone; the next one still applies.
      let bad = #"{"version": "bad", "shops": [{"id": "w-bad", "subdomain": "acme"}]}"#
      let good = #"{"version": "w-ok", "shops": [{"id": "w-ok", "subdomain": "wok"}]}"#
      let handle = try #require(FileHandle(forWritingAtPath: journal))
      handle.seekToEndOfFile()
      handle.write(Data((bad + "\n" + good + "\n").utf8))
      try handle.close()
      try h.waitFor(timeout: 5) { (try? Self.version(h)) == "w-ok" }
      #expect(try h.admin("/admin/lookup?host=wok.platform.localhost").json?["shopId"] as? String == "w-ok")

      // A fresh export replaces the snapshot: it is the new truth; the old journal moves aside.
      var doc = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: h.snapshotPath))) as? [String: Any])
      doc["version"] = "export-2"
      try JSONSerialization.data(withJSONObject: doc).write(to: URL(fileURLWithPath: h.snapshotPath), options: .atomic)
      _ = try h.admin("/admin/reload", method: "POST")
      #expect(try Self.version(h) == "export-2")
      #expect(try h.admin("/admin/lookup?host=w0.example").json?["shopId"] == nil)
      let aside = try FileManager.default.contentsOfDirectory(atPath: h.directory.path).filter { $0.hasPrefix("tenants.json.changes.superseded-") }
      #expect(aside.count == 1, "\(aside)")
      #expect(try String(contentsOfFile: journal, encoding: .utf8) == "{\"journalFor\":\"export-2\"}\n")
    }
  }

  @Test("Edit commands without a gateway journal their change; snapshot compact folds it, and a kill at every step loses no edit")
  func compactKilledAtEveryStep() throws {
    let h = try GatewayHarness()
    defer { h.stop() }
    try h.writeConfig()
    func cli(_ args: [String], input: String? = nil) throws -> CommandResult {
      try Shell.run(Paths.binary, args + ["--config", h.configPath], input: input.map { Data($0.utf8) })
    }
    // No gateway runs: each edit is validated against snapshot + journal and appended.
    let a = try cli(["domains", "add", "one.example", "acme"])
    #expect(a.status == 0, "\(a.stdout) \(a.stderr)")
    #expect(a.stdout.contains("no gateway was running"))
    #expect(try cli(["domains", "add", "two.example", "bibi-saree"]).status == 0)
    #expect(try cli(["shops", "suspend", "bibi-saree"]).status == 0)
    #expect(try cli(["keys", "add", "--shop", "acme", "--id", "key_acme_new", "--kind", "publishable", "--key-from-stdin"], input: "pk_new_key\n").status == 0)
    #expect(try cli(["keys", "revoke", "key_acme_live_secret"]).status == 0)
    let dup = try cli(["domains", "add", "one.example", "bibi-saree"])
    #expect(dup.status == 1)
    #expect(dup.stderr.contains("already mapped"), "\(dup.stderr)")

    func expectAllEdits(_ label: String) throws {
      let list = try cli(["domains", "list", "acme"])
      #expect(list.stdout.contains("one.example"), "\(label): \(list.stdout) \(list.stderr)")
      let bibi = try cli(["lookup", "two.example"])
      #expect(bibi.stdout.contains("status=suspended"), "\(label): \(bibi.stdout) \(bibi.stderr)")
      let key = try cli(["lookup", "api.platform.localhost", "--key-from-stdin"], input: "pk_new_key")
      #expect(key.stdout.contains("key_acme_new"), "\(label): \(key.stdout)")
      let revoked = try cli(["lookup", "api.platform.localhost", "--key-from-stdin"], input: Demo.acmeSecret)
      #expect(!revoked.stdout.contains("key_acme_live_secret"), "\(label): \(revoked.stdout)")
    }
    try expectAllEdits("journal")

    let fm = FileManager.default
    let pristine = (try? Data(contentsOf: URL(fileURLWithPath: h.snapshotPath)), try? Data(contentsOf: URL(fileURLWithPath: h.snapshotPath + ".changes")))
    for step in ["snapshot-written", "journal-written", "snapshot-renamed"] {
      try pristine.0!.write(to: URL(fileURLWithPath: h.snapshotPath))
      try pristine.1!.write(to: URL(fileURLWithPath: h.snapshotPath + ".changes"))
      let killed = try cli(["snapshot", "compact", "--stop-after", step])
      #expect(killed.status == 0, "\(step): \(killed.stderr)")
      try expectAllEdits("killed after \(step)")
      // And a compaction run again from there finishes the job.
      let again = try cli(["snapshot", "compact"])
      #expect(again.status == 0, "\(step): \(again.stderr)")
      try expectAllEdits("compacted after \(step)")
    }
    let done = try cli(["snapshot", "compact"])
    #expect(done.stdout.contains("0 change sets folded"), "\(done.stdout)")
    let journal = try String(contentsOfFile: h.snapshotPath + ".changes", encoding: .utf8)
    #expect(journal.split(separator: "\n").count == 1, "\(journal)")
    #expect(try cli(["check"]).status == 0)
    // Unknown fields in untouched records survive (they were copied byte for byte).
    let text = try String(contentsOfFile: h.snapshotPath, encoding: .utf8)
    #expect(text.contains("one.example") && text.contains("key_acme_new") && !text.contains("key_acme_live_secret"))
    _ = fm
    // A gateway started on the compacted pair serves every edit.
    try h.startPrewritten()
    #expect(try h.curl("bibi-saree.platform.localhost", "/").errorCode == "shop_suspended")
  }

  @Test("Past snapshot.compact_after_bytes the gateway compacts by itself, keeps serving every edit, and reloads nothing")
  func autoCompaction() throws {
    let h = try GatewayHarness()
    defer { h.stop() }
    try h.writeConfig()
    var text = try String(contentsOfFile: h.configPath, encoding: .utf8)
    text = text.replacingOccurrences(of: "snapshot: {path: \(h.snapshotPath),", with: "snapshot: {compact_after_bytes: 4096, path: \(h.snapshotPath),")
    try text.write(toFile: h.configPath, atomically: true, encoding: .utf8)
    try h.startPrewritten()
    // 40 edits of ~200 bytes: the journal passes 4 KiB at least once.
    let r = try h.python("edit_latency.py", [String(h.adminPort), "admin", "40"])
    #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
    try h.waitFor(timeout: 10) { (try? h.admin("/admin/snapshot").json?["changes"] as? [String: Any])?["compactions"] as? Int ?? 0 >= 1 }
    let snap = try h.admin("/admin/snapshot").json
    #expect(snap?["reloadsAccepted"] as? Int == 1, "a compaction is not a reload: \(snap ?? [:])")
    let file = try String(contentsOfFile: h.snapshotPath, encoding: .utf8)
    #expect(file.contains("lat-"), "the folded edits are in the snapshot file")
    // Every edit still resolves, and a restart from the compacted pair serves them all.
    let version = snap?["version"] as? String
    h.signal(SIGTERM)
    while h.gatewayRunning { usleep(20_000) }
    try h.startPrewritten(upstream: false)
    #expect(try Self.version(h) == version)
    let shops = try h.admin("/admin/snapshot").json?["shops"] as? Int ?? 0
    #expect(shops == 3 + 40, "\(shops)")
  }
}
