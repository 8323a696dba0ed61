import Foundation
import GatewayCore

/// A snapshot as an editable JSON document, for the ops commands (`domains`, `snapshot diff`).
///
/// The gateway itself never builds this (it streams into a ``TenantTable``); ops tools need to
/// change a field and write the document back with every unknown field intact, which a tree does
/// simply. It holds the whole document, so it suits edits by hand; at platform scale the control
/// plane writes snapshots and fleets follow `snapshot.url`.
public struct SnapshotDocument {
  public var root: [String: Any]

  public init(root: [String: Any]) { self.root = root }

  public static func read(_ path: String) throws -> SnapshotDocument {
    let data: Data
    do { data = Data(try FileBytes.read(path)) } catch {
      throw DocumentError(message: "cannot read the snapshot \(path): \(error.description.lowercased())")
    }
    let object: Any
    do { object = try JSONSerialization.jsonObject(with: data) } catch {
      throw DocumentError(message: "\(path): the snapshot is not valid JSON")
    }
    guard let root = object as? [String: Any] else {
      throw DocumentError(message: "\(path): the snapshot is not a JSON object")
    }
    return SnapshotDocument(root: root)
  }

  public struct DocumentError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
  }

  public var version: String { root["version"] as? String ?? "" }
  public var shops: [[String: Any]] {
    get { root["shops"] as? [[String: Any]] ?? [] }
    set { root["shops"] = newValue }
  }
  public var keys: [[String: Any]] { root["apiKeys"] as? [[String: Any]] ?? [] }

  /// Serialised with sorted keys (stable diffs in version control).
  public func data() throws -> Data {
    try JSONSerialization.data(withJSONObject: root, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
  }

  /// Index of the shop with this id or subdomain.
  public func shopIndex(_ idOrSubdomain: String) -> Int? {
    shops.firstIndex { ($0["id"] as? String) == idOrSubdomain || ($0["subdomain"] as? String) == idOrSubdomain }
  }

  /// Every custom domain, normalised, with its shop id.
  public var domainOwners: [String: String] {
    var out: [String: String] = [:]
    for shop in shops {
      let id = shop["id"] as? String ?? "?"
      for d in shop["customDomains"] as? [String] ?? [] { out[HostName.normalize(d) ?? d] = id }
    }
    return out
  }
}

/// What changes between two snapshots: shops, host names (subdomains and custom domains) and keys.
public struct SnapshotDiff {
  public var shopsAdded: [String] = []
  public var shopsRemoved: [String] = []
  public var shopsChanged: [(id: String, fields: [String])] = []
  public var hostsAdded: [(host: String, shop: String)] = []
  public var hostsRemoved: [(host: String, shop: String)] = []
  public var hostsMoved: [(host: String, from: String, to: String)] = []
  public var keysAdded: [String] = []
  public var keysRemoved: [String] = []
  public var keysChanged: [(id: String, fields: [String])] = []
  public var oldVersion: String
  public var newVersion: String

  public init(old: SnapshotDocument, new: SnapshotDocument) {
    oldVersion = old.version
    newVersion = new.version
    func byID(_ items: [[String: Any]]) -> [String: [String: Any]] {
      var out: [String: [String: Any]] = [:]
      for i in items { if let id = i["id"] as? String { out[id] = i } }
      return out
    }
    // Values compared by their canonical JSON (bridged NSNumber booleans do not compare reliably).
    func canonical(_ v: Any?) -> Data {
      (try? JSONSerialization.data(withJSONObject: [v ?? NSNull()], options: [.sortedKeys])) ?? Data()
    }
    func changed(_ a: [String: Any], _ b: [String: Any]) -> [String] {
      Set(a.keys).union(b.keys).sorted().filter { k in canonical(a[k]) != canonical(b[k]) }
    }
    let oldShops = byID(old.shops)
    let newShops = byID(new.shops)
    shopsAdded = newShops.keys.filter { oldShops[$0] == nil }.sorted()
    shopsRemoved = oldShops.keys.filter { newShops[$0] == nil }.sorted()
    for (id, a) in oldShops.sorted(by: { $0.key < $1.key }) {
      if let b = newShops[id] {
        let f = changed(a, b)
        if !f.isEmpty { shopsChanged.append((id, f)) }
      }
    }
    func hosts(_ doc: SnapshotDocument) -> [String: String] {
      var out = doc.domainOwners
      for s in doc.shops { if let sub = s["subdomain"] as? String, let id = s["id"] as? String { out["<sub>" + sub.lowercased()] = id } }
      return out
    }
    let oh = hosts(old)
    let nh = hosts(new)
    let show: (String) -> String = { $0.hasPrefix("<sub>") ? String($0.dropFirst(5)) + " (subdomain)" : $0 }
    for (h, shop) in nh.sorted(by: { $0.key < $1.key }) {
      if let was = oh[h] {
        if was != shop { hostsMoved.append((show(h), was, shop)) }
      } else {
        hostsAdded.append((show(h), shop))
      }
    }
    for (h, shop) in oh.sorted(by: { $0.key < $1.key }) where nh[h] == nil { hostsRemoved.append((show(h), shop)) }
    let ok = byID(old.keys)
    let nk = byID(new.keys)
    keysAdded = nk.keys.filter { ok[$0] == nil }.sorted()
    keysRemoved = ok.keys.filter { nk[$0] == nil }.sorted()
    for (id, a) in ok.sorted(by: { $0.key < $1.key }) {
      if let b = nk[id] {
        let f = changed(a, b)
        if !f.isEmpty { keysChanged.append((id, f)) }
      }
    }
  }

  public var isEmpty: Bool {
    shopsAdded.isEmpty && shopsRemoved.isEmpty && shopsChanged.isEmpty && hostsAdded.isEmpty && hostsRemoved.isEmpty
      && hostsMoved.isEmpty && keysAdded.isEmpty && keysRemoved.isEmpty && keysChanged.isEmpty
  }

  public var text: String {
    var out = "version: \(oldVersion) -> \(newVersion)\n"
    for s in shopsAdded { out += "+ shop \(s)\n" }
    for s in shopsRemoved { out += "- shop \(s)\n" }
    for (s, f) in shopsChanged { out += "~ shop \(s): \(f.joined(separator: ", "))\n" }
    for (h, s) in hostsAdded { out += "+ host \(h) -> \(s)\n" }
    for (h, s) in hostsRemoved { out += "- host \(h) (was \(s))\n" }
    for (h, a, b) in hostsMoved { out += "~ host \(h): \(a) -> \(b)\n" }
    for k in keysAdded { out += "+ key \(k)\n" }
    for k in keysRemoved { out += "- key \(k)\n" }
    for (k, f) in keysChanged { out += "~ key \(k): \(f.joined(separator: ", "))\n" }
    if isEmpty { out += "no changes\n" }
    return out
  }

  public var json: String {
    let doc: [String: Any] = [
      "oldVersion": oldVersion, "newVersion": newVersion,
      "shops": ["added": shopsAdded, "removed": shopsRemoved, "changed": shopsChanged.map { ["id": $0.id, "fields": $0.fields] }],
      "hosts": [
        "added": hostsAdded.map { ["host": $0.host, "shop": $0.shop] }, "removed": hostsRemoved.map { ["host": $0.host, "shop": $0.shop] },
        "moved": hostsMoved.map { ["host": $0.host, "from": $0.from, "to": $0.to] },
      ],
      "keys": ["added": keysAdded, "removed": keysRemoved, "changed": keysChanged.map { ["id": $0.id, "fields": $0.fields] }],
    ]
    return String(decoding: (try? JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys])) ?? Data(), as: UTF8.self)
  }
}
