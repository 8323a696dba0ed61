import Foundation
import GatewayCore
import GatewaySnapshot

/// JSON documents of the admin API.
public enum AdminJSON {
  public static func snapshot(_ s: SnapshotStatus) -> String {
    var out = "{\"version\":"
    JSONText.appendQuoted(s.version, to: &out)
    out += ",\"shops\":\(s.shops),\"customDomains\":\(s.customDomains),\"keys\":\(s.keys)"
    out += ",\"loadedAt\":"
    JSONText.appendQuoted(iso8601(s.loadedAt), to: &out)
    out += ",\"source\":"
    JSONText.appendQuoted(s.source, to: &out)
    out += ",\"reloadsAccepted\":\(s.accepted),\"reloadsRejected\":\(s.rejected),\"lastError\":"
    if let e = s.lastError { out += stringArray(e) } else { out += "null" }
    out += ",\"changes\":{\"source\":"
    if let c = s.changeSource { JSONText.appendQuoted(c, to: &out) } else { out += "null" }
    out += ",\"applied\":\(s.changeSetsApplied),\"refused\":\(s.changeSetsRefused),\"lastAppliedAt\":"
    if let t = s.lastChangeAt { JSONText.appendQuoted(iso8601(t), to: &out) } else { out += "null" }
    out += ",\"lastError\":"
    if let e = s.lastChangeError { out += stringArray(e) } else { out += "null" }
    out += ",\"overlayShops\":\(s.overlayShops),\"overlayHidden\":\(s.overlayHidden),\"folds\":\(s.folds)"
    out += ",\"compactions\":\(s.compactions),\"journalBytes\":\(s.journalBytes)"
    out += ",\"sourceState\":"
    if let st = s.sourceState { JSONText.appendQuoted(st, to: &out) } else { out += "null" }
    out += ",\"lastSeq\":" + (s.lastSeq.map { "\($0)" } ?? "null")
    out += ",\"resyncs\":\(s.resyncs),\"lagSeconds\":" + (s.lastChangeLagSeconds.map { String(format: "%.4f", $0) } ?? "null")
    out += ",\"refusedEntities\":\(stringArray(s.refusedEntities))}"
    out += "}"
    return out
  }

  /// `{"domain":…,"state":…,"issuer":…,"notAfter":…,"lastError":…,"nextAttemptAt":…}`, times in ISO 8601.
  public static func certificate(_ c: CertificateStatus) -> String {
    var out = "{\"domain\":"
    JSONText.appendQuoted(c.domain, to: &out)
    out += ",\"state\":"
    JSONText.appendQuoted(c.state, to: &out)
    func field(_ name: String, _ value: String?) {
      out += ",\"\(name)\":"
      if let value { JSONText.appendQuoted(value, to: &out) } else { out += "null" }
    }
    field("issuer", c.issuer)
    field("notAfter", c.notAfter.map(iso8601))
    field("lastError", c.lastError)
    field("nextAttemptAt", c.nextAttemptAt.map(iso8601))
    return out + "}"
  }

  /// `{"certificates":[…],"byState":{…}}`.
  public static func certificates(_ list: [CertificateStatus]) -> String {
    var out = "{\"certificates\":["
    out.reserveCapacity(list.count * 160)
    var byState: [String: Int] = ["pending": 0, "valid": 0, "renewing": 0, "failed": 0, "not_eligible": 0]
    for (i, c) in list.enumerated() {
      if i > 0 { out += "," }
      out += certificate(c)
      byState[c.state, default: 0] += 1
    }
    out += "],\"byState\":{"
    out += byState.sorted(by: { $0.key < $1.key }).map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",")
    return out + "}}"
  }

  /// `{"error":{"code":…,"message":…}}`, the shape of every admin error.
  public static func error(_ code: String, _ message: String) -> String {
    var out = "{\"error\":{\"code\":"
    JSONText.appendQuoted(code, to: &out)
    out += ",\"message\":"
    JSONText.appendQuoted(message, to: &out)
    return out + "}}"
  }

  /// `POST /admin/changes` accepted.
  public static func changeApplied(_ version: String, shops: Int, customDomains: Int, keys: Int) -> String {
    var out = "{\"applied\":true,\"version\":"
    JSONText.appendQuoted(version, to: &out)
    return out + ",\"shops\":\(shops),\"customDomains\":\(customDomains),\"keys\":\(keys)}"
  }

  /// `POST /admin/changes` refused: the code, every reason, and (for `stale_base`) the current version.
  public static func changeRefused(_ code: String, _ errors: [String], version: String? = nil) -> String {
    var out = "{\"applied\":false,\"error\":{\"code\":"
    JSONText.appendQuoted(code, to: &out)
    out += ",\"message\":"
    JSONText.appendQuoted(errors.first ?? code, to: &out)
    out += "},\"errors\":\(stringArray(errors))"
    if let version {
      out += ",\"version\":"
      JSONText.appendQuoted(version, to: &out)
    }
    return out + "}"
  }

  public static func reload(_ r: ReloadOutcome) -> String {
    var out = "{\"accepted\":\(r.accepted),\"version\":"
    JSONText.appendQuoted(r.version, to: &out)
    out += ",\"shops\":\(r.shops),\"customDomains\":\(r.customDomains),\"keys\":\(r.keys),\"errors\":\(stringArray(r.errors))}"
    return out
  }

  static func stringArray(_ items: [String]) -> String {
    var out = "["
    for (i, e) in items.enumerated() {
      if i > 0 { out += "," }
      JSONText.appendQuoted(e, to: &out)
    }
    return out + "]"
  }

  /// `2026-12-04T10:43:28Z`. By hand from `gmtime_r`: an `ISO8601DateFormatter` per call costs more
  /// than the rest of a 50 000-domain `/admin/certificates` together.
  static func iso8601(_ t: Double) -> String {
    var seconds = time_t(t.rounded(.down))
    var tm = tm()
    gmtime_r(&seconds, &tm)
    func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
    return "\(tm.tm_year + 1900)-\(two(tm.tm_mon + 1))-\(two(tm.tm_mday))T\(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec))Z"
  }
}
