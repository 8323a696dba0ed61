import Dispatch
import Foundation
import GatewayCore
import GatewaySnapshot
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO

/// The PostgreSQL source (PRODUCT.md §6 "The PostgreSQL source"): the platform's own rows, read
/// through the views of `sql/tenant-gateway.sql`, followed through `LISTEN tenant_gateway` and the
/// `changes` outbox.
///
/// - Start: one `REPEATABLE READ` transaction reads the outbox's highest `seq` and both views,
///   rows streamed into a tolerant table builder (a row that breaks a rule is left out, logged and
///   listed; every other row is served). Version `pg:<seq>`. The database down: the last-known-good
///   copy in `state_dir`, with its journal of every change applied since.
/// - Running: a notification, or the `poll_interval_s` backstop, reads the outbox past the last
///   `seq` (and the gaps below it, see ``OutboxCursor``), re-reads those shops and keys by id and
///   applies them as one change set; an entity that breaks a rule keeps its previous record.
/// - Faults: a lost connection keeps the table serving and reconnects with backoff, then catches
///   up from the outbox, or resyncs whole when the outbox no longer reaches back.
public final class PostgresSource: @unchecked Sendable {
  /// `snapshot.postgres`, resolved.
  public struct Settings: Sendable {
    public var url: String
    public var password: String?
    public var schema: String
    /// `disable`, `prefer` or `require`.
    public var tls: String
    public var caFile: String?
    public var pollInterval: Double
    public init(url: String, password: String?, schema: String, tls: String, caFile: String?, pollInterval: Double) {
      self.url = url
      self.password = password
      self.schema = schema
      self.tls = tls
      self.caFile = caFile
      self.pollInterval = pollInterval
    }

    /// host:port/database, without user or password (for logs and the admin API).
    public var displayName: String {
      guard let u = URLComponents(string: url) else { return "postgres" }
      return "\(u.host ?? "?"):\(u.port ?? 5432)\(u.path)"
    }
  }

  public struct Failure: Error, CustomStringConvertible {
    public var description: String
  }

  let settings: Settings
  let store: SnapshotStore
  let platform: PlatformHosts
  let logger: Logger
  let lastKnownGoodPath: String
  let stateJournal: ChangeJournal
  let queue = DispatchQueue(label: "tenant-gateway.postgres")
  /// The last-known-good copy and its journal are written here, in the order they were asked
  /// for, never on `queue`: writing a million shops takes seconds (14 s measured), and the table
  /// must be serving and following the outbox meanwhile. A crash mid-write leaves the previous
  /// copy and its own journal (the copy is renamed into place; the journal reset only after it).
  let persistQueue = DispatchQueue(label: "tenant-gateway.postgres.persist")
  let folder: OverlayFolder
  let group: EventLoopGroup

  // Queue-confined.
  private var cursor = OutboxCursor()
  /// Entities whose current row breaks a rule, by `entity:id`.
  private var refused: [String: String] = [:]
  private var resyncs = 0
  private var reconnectingSince: Date?
  private let resyncRequested = NIOLockedValueBoxLite(false)

  public init(settings: Settings, store: SnapshotStore, platform: PlatformHosts, stateDirectory: String, group: EventLoopGroup, logger: Logger) {
    self.settings = settings
    self.store = store
    self.platform = platform
    self.logger = logger
    self.group = group
    lastKnownGoodPath = (stateDirectory as NSString).appendingPathComponent(SnapshotLoader.lastKnownGoodName)
    stateJournal = ChangeJournal(path: lastKnownGoodPath + ".changes")
    folder = OverlayFolder(queue: queue, store: store, platform: platform, logger: logger)
  }

  // MARK: start

  /// Reads the database; when it cannot be reached, serves the last-known-good copy (and its
  /// journal). Throws when neither is available.
  public func loadAtStart() async throws {
    do {
      let conn = try await connect()
      let read: FullRead
      do { read = try await readAll(conn) } catch {
        await Self.close(conn)
        throw error
      }
      await Self.close(conn)
      queue.sync { publishWhole(read, reason: "start") }
    } catch {
      let reason = Self.describe(error)
      guard FileManager.default.fileExists(atPath: lastKnownGoodPath) else {
        throw Failure(description: "cannot read \(settings.displayName) (\(reason)), and there is no last-known-good copy in state_dir")
      }
      let loader = SnapshotLoader(path: lastKnownGoodPath, stateDirectory: (lastKnownGoodPath as NSString).deletingLastPathComponent, platform: platform)
      var table = try loader.loadFile(lastKnownGoodPath)
      let contents = try stateJournal.read()
      var batch: [ChangeSet] = []
      for line in ChangeJournal.pending(contents, snapshotVersion: table.version) ?? [] {
        if let c = try? ChangeSetCodec.decode(line.bytes) { batch.append(c) }
      }
      if !batch.isEmpty, let t = try? table.applying(batch, platform: platform) { table = t }
      let version = table.version
      queue.sync {
        cursor = OutboxCursor(seq: Int64(version.dropFirst(3)) ?? 0)
        store.publish(table, source: "last-known-good:\(lastKnownGoodPath)")
        store.recordFailure(["postgres \(settings.displayName): \(reason)"])
        reconnectingSince = Date()
        noteState()
      }
      logger.error("database unreachable at start; serving the last-known-good copy", metadata: [
        "database": "\(settings.displayName)", "error": "\(reason)", "version": "\(version)",
      ])
    }
  }

  /// Publishes a full read (start, resync) and persists it as last-known-good. On the queue.
  private func publishWhole(_ read: FullRead, reason: String) {
    cursor = OutboxCursor(seq: read.seq)
    refused = [:]
    for r in read.refusals { noteRefusal(r) }
    store.publish(read.table, source: "postgres:\(settings.displayName)")
    logger.info("snapshot read from the database", metadata: [
      "reason": "\(reason)", "version": "\(read.table.version)", "shops": "\(read.table.shopCount)", "keys": "\(read.table.keyCount)",
      "refused": "\(read.refusals.count)", "seconds": "\(String(format: "%.3f", read.seconds))",
    ])
    let table = read.table
    persistQueue.async { [self] in
      do {
        try SnapshotWriter.write(table, to: lastKnownGoodPath)
        try stateJournal.withLock { try stateJournal.reset(for: table.version) }
      } catch {
        logger.error("cannot persist the last-known-good copy", metadata: ["path": "\(lastKnownGoodPath)", "error": "\(error)"])
      }
    }
    noteState()
  }

  /// Waits until every last-known-good write asked for so far is on disk (tests; a clean stop).
  public func flushPersistence() {
    persistQueue.sync {}
  }

  private func noteRefusal(_ r: TenantTableBuilder.Refusal) {
    let key = "\(r.entity.rawValue):\(r.id)"
    let text = "\(r.entity.rawValue) \(r.id): \(r.reasons.joined(separator: "; "))"
    if refused[key] != text {
      logger.error("database row refused; the entity keeps its previous record", metadata: [
        "entity": "\(r.entity.rawValue)", "id": "\(r.id)", "reasons": "\(r.reasons.joined(separator: "; "))",
      ])
    }
    refused[key] = text
  }

  private func noteState() {
    let state = reconnectingSince.map { "reconnecting since \(ISO8601DateFormatter().string(from: $0))" } ?? "connected"
    let seq = cursor.seq
    let list = refused.keys.sorted().prefix(100).map { refused[$0]! }
    let resyncs = self.resyncs
    store.updateChangeStatus {
      $0.changeSource = "postgres \(settings.displayName) \(state)"
      $0.sourceState = state
      $0.lastSeq = seq
      $0.resyncs = resyncs
      $0.refusedEntities = Array(list)
    }
  }

  // MARK: following

  /// Asks the running loop to read both views whole again (`SIGHUP`, `POST /admin/reload`).
  public func requestResync() {
    resyncRequested.withValue { $0 = true }
  }

  /// Follows the database until the task is cancelled: LISTEN, catch up on every notification and
  /// on the backstop poll; on any failure, reconnect with backoff and catch up (or resync).
  public func run() async {
    var backoff = 0.25
    while !Task.isCancelled {
      do {
        let conn = try await connect()
        do {
          try await follow(conn)
        } catch {
          await Self.close(conn)
          throw error
        }
        await Self.close(conn)
      } catch {
        if Task.isCancelled { break }
        queue.sync {
          if reconnectingSince == nil { reconnectingSince = Date() }
          noteState()
        }
        logger.warning("database connection lost; serving the current table, reconnecting", metadata: [
          "database": "\(settings.displayName)", "error": "\(Self.describe(error))", "retry_in_s": "\(backoff)",
        ])
        try? await Task.sleep(nanoseconds: UInt64(backoff * 1e9))
        backoff = min(backoff * 2, 30)
        continue
      }
    }
  }

  private func follow(_ conn: PostgresConnection) async throws {
    try await conn.listen(on: "tenant_gateway") { notifications in
      // Connected and listening: anything committed from here on is also notified.
      queue.sync {
        reconnectingSince = nil
        noteState()
      }
      try await catchUp(conn)
      let (ticks, tick) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
      try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask {
          for try await _ in notifications { tick.yield() }
          throw Failure(description: "the notification stream ended")
        }
        let poll = settings.pollInterval
        group.addTask {
          while !Task.isCancelled {
            try await Task.sleep(nanoseconds: UInt64(poll * 1e9))
            tick.yield()
          }
        }
        group.addTask {
          for await _ in ticks {
            if self.resyncRequested.withValue({ v -> Bool in
              defer { v = false }
              return v
            }) {
              try await self.resync(conn, reason: "requested")
            } else {
              try await self.catchUp(conn)
            }
          }
        }
        defer { group.cancelAll() }
        try await group.next()
      }
    }
  }

  private func resync(_ conn: PostgresConnection, reason: String) async throws {
    let read = try await readAll(conn)
    queue.sync {
      resyncs += 1
      publishWhole(read, reason: reason)
    }
  }

  /// Reads the outbox past the cursor, re-reads the changed rows, applies them as one change set.
  func catchUp(_ conn: PostgresConnection) async throws {
    let (from, gaps) = queue.sync { (cursor.seq, cursor.openGaps) }
    // The outbox no longer reaches back to the cursor (pruned): only a whole read is exact.
    var oldest: Int64? = nil
    for try await m in try await conn.query(PostgresQuery(unsafeSQL: "SELECT MIN(seq)::int8 FROM \(schema).changes"), logger: logger)
      .decode(Int64?.self)
    {
      oldest = m
    }
    if let oldest, from > 0, oldest > from + 1 {
      logger.warning("the outbox no longer reaches back to the last seq read; resyncing whole", metadata: [
        "last_seq": "\(from)", "oldest_in_outbox": "\(oldest)",
      ])
      try await resync(conn, reason: "outbox pruned past the last seq read")
      return
    }
    var rows: [(seq: Int64, entity: String, id: String, at: Double)] = []
    var binds = PostgresBindings()
    binds.append(from)
    binds.append(gaps)
    let outbox = PostgresQuery(
      unsafeSQL: "SELECT seq, entity, id, EXTRACT(EPOCH FROM changed_at)::float8 FROM \(schema).changes "
        + "WHERE seq > $1 OR seq = ANY($2) ORDER BY seq LIMIT 50000", binds: binds)
    for try await (seq, entity, id, at) in try await conn.query(outbox, logger: logger).decode((Int64, String, String, Double).self) {
      rows.append((seq, entity, id, at))
    }
    guard !rows.isEmpty else {
      queue.sync { cursor.expireGaps(now: Date()) }
      return
    }
    let shopIDs = Array(Set(rows.filter { $0.entity == "shop" }.map(\.id)))
    let keyIDs = Array(Set(rows.filter { $0.entity == "api_key" }.map(\.id)))
    let shops = try await reread(conn, shopIDs, select: Self.shopSelect, decode: Self.shop, id: \.id)
    let keys = try await reread(conn, keyIDs, select: Self.keySelect, decode: Self.key, id: \.id)
    let oldestChange = rows.map(\.at).min() ?? Date().timeIntervalSince1970
    queue.sync {
      let highest = max(cursor.seq, rows.map(\.seq).max() ?? cursor.seq)
      let table = store.current
      var change = ChangeSet(version: "pg:\(highest)")
      var preRefused: [TenantTableBuilder.Refusal] = []
      for id in shopIDs {
        switch shops[id] {
        case .success(let s): change.shops.append(s)
        case .failure(let r): preRefused.append(r)
        case nil: if table.shop(id: id) != nil { change.removeShops.append(id) }
        }
      }
      let removedShops = Set(change.removeShops)
      for id in keyIDs {
        switch keys[id] {
        case .success(let k):
          if k.revoked {
            if table.key(id: id) != nil { change.removeApiKeys.append(id) }
          } else {
            change.apiKeys.append(k)
          }
        case .failure(let r): preRefused.append(r)
        case nil:
          // Gone with its shop (ON DELETE CASCADE) or on its own.
          if let k = table.key(id: id), !removedShops.contains(table.shopID(table.shop(of: k))) { change.removeApiKeys.append(id) }
        }
      }
      for r in preRefused { noteRefusal(r) }
      let lag = Date().timeIntervalSince1970 - oldestChange
      apply(change, lag: lag)
      cursor.advance(past: rows.map(\.seq), now: Date())
      noteState()
    }
  }

  /// The current rows of `ids` (absent ids: deleted), each decoded or refused.
  private func reread<T>(
    _ conn: PostgresConnection, _ ids: [String], select: (String, String) -> String,
    decode: (PostgresRow) -> Result<T, TenantTableBuilder.Refusal>, id: (T) -> String
  ) async throws -> [String: Result<T, TenantTableBuilder.Refusal>] {
    guard !ids.isEmpty else { return [:] }
    var binds = PostgresBindings()
    binds.append(ids)
    var out: [String: Result<T, TenantTableBuilder.Refusal>] = [:]
    let query = PostgresQuery(unsafeSQL: select(schema, "WHERE id::text = ANY($1)"), binds: binds)
    for try await row in try await conn.query(query, logger: logger) {
      let r = decode(row)
      switch r {
      case .success(let value): out[id(value)] = r
      case .failure(let refusal): out[refusal.id] = r
      }
    }
    return out
  }

  /// Applies a change set; when it is refused, each entity alone, so only the ones that break a rule
  /// are refused (they keep their previous record). On the queue.
  private func apply(_ change: ChangeSet, lag: Double) {
    let current = store.current
    var accepted = ChangeSet(version: change.version)
    var next: TenantTable
    if let t = try? current.applying(change, platform: platform) {
      next = t
      accepted = change
    } else {
      next = current
      func attempt(_ single: ChangeSet, entity: TenantTableBuilder.Refusal.Entity, id: String, _ keep: (inout ChangeSet) -> Void) {
        do {
          next = try next.applying(single, platform: platform)
          keep(&accepted)
          refused["\(entity.rawValue):\(id)"] = nil
        } catch {
          noteRefusal(.init(entity: entity, id: id, reasons: error.description.split(separator: "\n").map(String.init)))
        }
      }
      for s in change.shops {
        attempt(ChangeSet(version: change.version, shops: [s]), entity: .shop, id: s.id) { $0.shops.append(s) }
      }
      for id in change.removeShops {
        attempt(ChangeSet(version: change.version, removeShops: [id]), entity: .shop, id: id) { $0.removeShops.append(id) }
      }
      for k in change.apiKeys {
        attempt(ChangeSet(version: change.version, apiKeys: [k]), entity: .apiKey, id: k.id) { $0.apiKeys.append(k) }
      }
      for id in change.removeApiKeys {
        attempt(ChangeSet(version: change.version, removeApiKeys: [id]), entity: .apiKey, id: id) { $0.removeApiKeys.append(id) }
      }
      if next.version != change.version {
        // Nothing applied: still move the version to the outbox position read.
        next = (try? next.applying(ChangeSet(version: change.version), platform: platform)) ?? next
      }
    }
    if accepted.entityCount > 0 || next !== current {
      for s in accepted.shops { refused["shop:\(s.id)"] = nil }
      for k in accepted.apiKeys { refused["api_key:\(k.id)"] = nil }
      guard store.publish(
        changed: next, replacing: current, changeSets: accepted.entityCount > 0 ? 1 : 0, lag: lag,
        touchedShops: accepted.shops.map(\.id) + accepted.removeShops)
      else {
        logger.error("the table changed under the database follower; change dropped", metadata: ["version": "\(change.version)"])
        return
      }
      folder.noteApplied([accepted])
      let line = ChangeSetCodec.encode(accepted)
      let base = current.version
      persistQueue.async { [self] in
        try? stateJournal.withLock { _ = try stateJournal.append([line], creatingFor: base) }
      }
      folder.maybeFold()
    }
  }
}
