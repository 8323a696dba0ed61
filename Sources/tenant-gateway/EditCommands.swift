import ArgumentParser
import Foundation
import GatewayConfig
import GatewayCore
import GatewaySnapshot

/// The shop record an edit starts from, and the table version it was read at (the edit's `base`).
struct ShopState {
  var version: String
  var shop: ShopInput
  var keys: [KeyInput]
}

/// Where edits go (PRODUCT.md §6 "Edit commands"): a running gateway's `POST /admin/changes`, or,
/// with none answering, the journal beside the snapshot (validated against snapshot + journal,
/// under the journal lock).
enum EditTarget {
  case gateway(AdminConnection)
  case offline(OfflineTable)

  static func open(_ config: GatewayConfig) throws -> EditTarget {
    let admin = AdminConnection(config: config)
    if admin.isAnswering { return .gateway(admin) }
    guard config.snapshot.path != nil else {
      throw CommandFailure("no gateway answers on \(config.admin.address), and edits without one need a file source (snapshot.path)")
    }
    return .offline(OfflineTable(config: config))
  }

  /// Builds a change set from the current state (`build` may be called again after a stale base)
  /// and applies it; prints the outcome. Refusals throw (exit 1) with every reason.
  func edit(_ build: (EditTarget) throws -> ChangeSet) throws {
    switch self {
    case .gateway(let admin):
      for attempt in 1...10 {
        let change = try build(self)
        let (status, body) = try admin.request("POST", "/admin/changes", body: ChangeSetCodec.encode(change))
        let json = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
        let code = (json["error"] as? [String: Any])?["code"] as? String
        switch status {
        case 200:
          print("applied: version \(json["version"] as? String ?? change.version)")
          return
        case 409 where code == "stale_base" && attempt < 10:
          continue  // someone else edited between our read and our write: read again
        default:
          let errors = json["errors"] as? [String] ?? [body]
          throw CommandFailure("refused (HTTP \(status) \(code ?? "")):\n  " + errors.joined(separator: "\n  "))
        }
      }
    case .offline(let offline):
      try offline.journal.withLock {
        let table = try offline.load()
        let change = try build(self)
        do {
          let next = try table.applying(change, platform: offline.config.platformHosts)
          try offline.journal.append([ChangeSetCodec.encode(change)], creatingFor: table.version)
          print("applied: version \(next.version) (journaled in \(offline.journal.path); no gateway was running)")
        } catch let e as SnapshotValidationError {
          throw CommandFailure("refused:\n  " + e.description.replacingOccurrences(of: "\n", with: "\n  "))
        }
      }
    }
  }

  /// The shop named by id or subdomain, with its keys.
  func shop(_ name: String) throws -> ShopState {
    switch self {
    case .gateway(let admin):
      let escaped = name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? name
      let (status, body) = try admin.request("GET", "/admin/shops/\(escaped)")
      guard status == 200 else {
        if status == 404 { throw CommandFailure("no shop with id or subdomain \(name)") }
        throw CommandFailure("GET /admin/shops/\(name): HTTP \(status) \(body)")
      }
      return try Self.decodeShopDocument(body)
    case .offline(let offline):
      let table = try offline.load()
      guard let s = table.shop(idOrSubdomain: name) else { throw CommandFailure("no shop with id or subdomain \(name)") }
      return ShopState(version: table.version, shop: table.shopInput(s), keys: table.keys(of: s).map(table.keyInput))
    }
  }

  /// The shop a host resolves to (a custom domain), with its keys.
  func owner(ofDomain host: String) throws -> ShopState? {
    switch self {
    case .gateway(let admin):
      let q = host.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? host
      let (status, body) = try admin.request("GET", "/admin/lookup?host=\(q)")
      guard status == 200 else { throw CommandFailure("GET /admin/lookup: HTTP \(status) \(body)") }
      let json = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
      guard json["hostClass"] as? String == "custom_domain", let id = json["shopId"] as? String else { return nil }
      return try shop(id)
    case .offline(let offline):
      let table = try offline.load()
      var h = host
      guard let s = h.withUTF8({ table.shop(customDomain: UnsafeRawBufferPointer($0)) }) else { return nil }
      return ShopState(version: table.version, shop: table.shopInput(s), keys: table.keys(of: s).map(table.keyInput))
    }
  }

  /// The shop document of `GET /admin/shops/…`, read by the change-set parser (the same field
  /// rules as a snapshot's records).
  static func decodeShopDocument(_ body: String) throws -> ShopState {
    guard let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
      let version = json["version"] as? String, let shop = json["shop"]
    else { throw CommandFailure("the gateway's shop document is not what this command expects: \(body.prefix(200))") }
    let asChange: [String: Any] = ["version": version, "shops": [shop], "apiKeys": json["apiKeys"] ?? []]
    let change: ChangeSet
    do { change = try ChangeSetCodec.decode(Array(try JSONSerialization.data(withJSONObject: asChange))) } catch {
      throw CommandFailure("the gateway's shop document does not parse: \(error)")
    }
    guard let s = change.shops.first else { throw CommandFailure("the gateway's shop document has no shop") }
    return ShopState(version: version, shop: s, keys: change.apiKeys)
  }

  /// A fresh change-set version: time, then randomness (two shells never collide).
  static func newVersion() -> String {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return "\(f.string(from: Date()))-edit-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
  }
}

/// The table as snapshot + journal, for edits with no gateway running (loaded once per command).
final class OfflineTable {
  let config: GatewayConfig
  let journal: ChangeJournal
  private var table: TenantTable?

  init(config: GatewayConfig) {
    self.config = config
    journal = ChangeJournal(path: config.snapshot.journalPath ?? "")
  }

  func load() throws -> TenantTable {
    if let table { return table }
    let path = config.snapshot.path ?? ""
    var t = try SnapshotStreamParser.parse(path: path, platform: config.platformHosts)
    let contents = try journal.read()
    guard let pending = ChangeJournal.pending(contents, snapshotVersion: t.version) else {
      throw CommandFailure("\(journal.path) belongs to another snapshot than \(path); start the gateway once (it moves the old journal aside) or remove it")
    }
    var batch: [ChangeSet] = []
    for line in pending { batch.append(try ChangeSetCodec.decode(line.bytes)) }
    if !batch.isEmpty { t = try t.applying(batch, platform: config.platformHosts) }
    table = t
    return t
  }
}

/// The running gateway's admin listener, for the edit commands.
struct AdminConnection {
  let config: GatewayConfig
  var token: String {
    guard let file = config.admin.tokenFile, let data = FileManager.default.contents(atPath: file) else { return "" }
    return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
  }

  var isAnswering: Bool { (try? request("GET", "/healthz").0) == 200 }

  func request(_ method: String, _ path: String, body: String = "") throws -> (Int, String) {
    let addr = config.admin.address
    var head = "\(method) \(path) HTTP/1.1\r\nHost: \(addr)\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n"
    if !token.isEmpty { head += "Authorization: Bearer \(token)\r\n" }
    if !body.isEmpty { head += "Content-Type: application/json\r\n" }
    guard let response = AdminClient.send(head + "\r\n" + body, host: addr.host, port: addr.port) else {
      throw CommandFailure("the gateway's admin listener (\(addr)) did not answer")
    }
    let status = response.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
    let text = response.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
    return (status, text)
  }
}

/// `apply FILE|-`: one change set (PRODUCT.md §6).
struct Apply: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Apply a change set (JSON, PRODUCT.md §6) from FILE or - (stdin): through the running gateway, or to the journal.")
  @OptionGroup var options: ConfigOptions
  @Argument(help: "The change set file, or - for stdin.") var file: String

  func run() throws {
    let config = try loadConfig(options)
    let bytes: [UInt8]
    if file == "-" {
      bytes = Array(FileHandle.standardInput.readDataToEndOfFile())
    } else {
      do { bytes = try FileBytes.read(file) } catch { throw CommandFailure("cannot read \(file): \(error)") }
    }
    let change: ChangeSet
    do { change = try ChangeSetCodec.decode(bytes) } catch {
      throw CommandFailure("\(file) is not a valid change set:\n  " + error.messages.joined(separator: "\n  "))
    }
    // The file's own base (if any) is kept: a stale one is refused rather than retried.
    try EditTarget.open(config).edit { _ in change }
  }
}

extension Domains {
  /// `domains add HOST SHOP`.
  struct Add: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Map HOST to SHOP (shop id or subdomain): one change set.")
    @OptionGroup var options: ConfigOptions
    @Argument var host: String
    @Argument var shop: String
    func run() throws {
      let config = try loadConfig(options)
      guard let normal = HostName.normalize(host) else { throw CommandFailure("\(host) is not a host name") }
      try EditTarget.open(config).edit { target in
        if let owner = try target.owner(ofDomain: normal) { throw CommandFailure("\(normal) is already mapped to shop \(owner.shop.id)") }
        var state = try target.shop(shop)
        state.shop.customDomains.append(normal)
        return ChangeSet(version: EditTarget.newVersion(), base: state.version, shops: [state.shop])
      }
    }
  }

  /// `domains remove HOST`.
  struct Remove: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Unmap HOST: one change set.")
    @OptionGroup var options: ConfigOptions
    @Argument var host: String
    func run() throws {
      let config = try loadConfig(options)
      guard let normal = HostName.normalize(host) else { throw CommandFailure("\(host) is not a host name") }
      try EditTarget.open(config).edit { target in
        guard var state = try target.owner(ofDomain: normal) else { throw CommandFailure("\(normal) is not mapped") }
        state.shop.customDomains.removeAll { $0 == normal }
        return ChangeSet(version: EditTarget.newVersion(), base: state.version, shops: [state.shop])
      }
    }
  }
}

/// `shops suspend|activate SHOP`.
struct Shops: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Suspend or activate a shop: one change set.", subcommands: [Suspend.self, Activate.self])

  static func setStatus(_ options: ConfigOptions, _ shop: String, _ status: String) throws {
    let config = try loadConfig(options)
    try EditTarget.open(config).edit { target in
      var state = try target.shop(shop)
      state.shop.status = status
      return ChangeSet(version: EditTarget.newVersion(), base: state.version, shops: [state.shop])
    }
  }

  struct Suspend: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Suspend SHOP (id or subdomain): its requests get 403 shop_suspended.")
    @OptionGroup var options: ConfigOptions
    @Argument var shop: String
    func run() throws { try Shops.setStatus(options, shop, "suspended") }
  }

  struct Activate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Activate SHOP (id or subdomain).")
    @OptionGroup var options: ConfigOptions
    @Argument var shop: String
    func run() throws { try Shops.setStatus(options, shop, "active") }
  }
}

extension Keys {
  /// `keys add --shop SHOP --id ID --kind … --mode …` (sha256 on stdin, or the key with --key-from-stdin).
  struct Add: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Add an API key to SHOP: its sha256 read from stdin (or the key itself with --key-from-stdin, hashed, never stored).")
    @OptionGroup var options: ConfigOptions
    @Option(help: "Shop id or subdomain.") var shop: String
    @Option(help: "The key's id (what logs and X-Tenant show).") var id: String
    @Option(help: "secret or publishable.") var kind: String
    @Option(help: "live or test.") var mode: String = "live"
    @Flag(help: "Read the key itself from stdin and hash it (it is never stored or sent).") var keyFromStdin = false

    func validate() throws {
      guard ["secret", "publishable"].contains(kind) else { throw ValidationError("--kind must be secret or publishable") }
      guard ["live", "test"].contains(mode) else { throw ValidationError("--mode must be live or test") }
    }

    func run() throws {
      let config = try loadConfig(options)
      var input = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
      while input.hasSuffix("\n") || input.hasSuffix("\r") { input.removeLast() }
      let sha = keyFromStdin ? KeyDigest.of(key: input).hex : input.lowercased()
      guard KeyDigest(hex: sha) != nil else {
        throw CommandFailure("stdin is not a sha256 (64 hex digits); pass --key-from-stdin to hash a key")
      }
      try EditTarget.open(config).edit { target in
        let state = try target.shop(shop)
        let key = KeyInput(id: id, shopID: state.shop.id, sha256: sha, kind: kind, mode: mode)
        return ChangeSet(version: EditTarget.newVersion(), base: state.version, apiKeys: [key])
      }
    }
  }

  /// `keys revoke ID`.
  struct Revoke: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Revoke the key with this id: it stops resolving at once.")
    @OptionGroup var options: ConfigOptions
    @Argument var id: String
    func run() throws {
      let config = try loadConfig(options)
      try EditTarget.open(config).edit { _ in ChangeSet(version: EditTarget.newVersion(), removeApiKeys: [id]) }
    }
  }
}
