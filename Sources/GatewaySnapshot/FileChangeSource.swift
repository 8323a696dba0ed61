import Dispatch
import Foundation
import GatewayCore
import Logging

/// The file source with its journal (PRODUCT.md §6 "Changes"): loads the snapshot and replays the
/// journal, follows the journal as it grows, takes edits from `POST /admin/changes` (journals them,
/// then publishes), notices a compacted or replaced snapshot, compacts past
/// `snapshot.compact_after_bytes`, and folds the table's overlay when it grows.
///
/// Every table change runs on one serial queue, so change sets are applied in journal order and a
/// fold never races an edit; requests never wait for it (they read the store's atomic reference).
public final class FileChangeSource: @unchecked Sendable {
  public let loader: SnapshotLoader
  public let journal: ChangeJournal
  let store: SnapshotStore
  let compactAfterBytes: Int
  let logger: Logger
  let queue = DispatchQueue(label: "tenant-gateway.changes")
  /// The journal beside the last-known-good copy in `state_dir` (every applied change set).
  let stateJournal: ChangeJournal

  // Queue-confined state.
  /// Versions of the loaded snapshot and every change set applied to it since.
  private var applied = Set<String>()
  /// Where the follower has read the journal to.
  private var followIdentity: ChangeJournal.FileIdentity?
  private var followOffset = 0
  private let folder: OverlayFolder
  private var compacting = false
  /// Serving the last-known-good copy because the snapshot file is broken: the journal is not followed.
  private var onLastKnownGood = false
  private var snapshotSignature: SnapshotFileWatcher.Signature?
  private var timer: DispatchSourceTimer?

  /// Seconds between journal checks: a line a writer appends is served within about this.
  public static let followInterval = 0.02

  public init(loader: SnapshotLoader, journalPath: String, store: SnapshotStore, compactAfterBytes: Int, logger: Logger) {
    self.loader = loader
    self.journal = ChangeJournal(path: journalPath)
    self.store = store
    self.compactAfterBytes = compactAfterBytes
    self.logger = logger
    self.stateJournal = ChangeJournal(path: loader.lastKnownGoodPath + ".changes")
    self.folder = OverlayFolder(queue: queue, store: store, platform: loader.platform, logger: logger)
  }

  // MARK: start and reload

  /// Loads the snapshot and replays its journal; with the snapshot broken, the last-known-good
  /// copy and its own journal. Throws when neither loads.
  public func loadAtStart() throws(SnapshotError) {
    let result: Result<Void, SnapshotError> = queue.sync {
      Result { () throws(SnapshotError) in try self.loadWhole(atStart: true) }
    }
    try result.get()
  }

  /// `SIGHUP`, `POST /admin/reload`: re-reads the snapshot and the journal whole.
  public func reload() -> Result<TenantTable, SnapshotError> {
    queue.sync { () -> Result<TenantTable, SnapshotError> in
      let r = Result { () throws(SnapshotError) in try self.loadWhole(atStart: false) }
      switch r {
      case .success: return .success(self.store.current)
      case .failure(let error):
        self.store.recordFailure(error.messages)
        return .failure(error)
      }
    }
  }

  private func loadWhole(atStart: Bool) throws(SnapshotError) {
    snapshotSignature = SnapshotFileWatcher.signature(loader.path)
    let table: TenantTable
    do {
      table = try loader.loadFile(loader.path)
    } catch {
      guard atStart, FileManager.default.fileExists(atPath: loader.lastKnownGoodPath) else { throw error }
      // The snapshot is broken: serve the last-known-good copy with every edit applied to it.
      let lkg = try loader.loadFile(loader.lastKnownGoodPath)
      let replayed = replay(stateJournal, onto: lkg)
      store.publish(replayed.table, source: "last-known-good:\(loader.lastKnownGoodPath)")
      store.recordFailure(error.messages)
      applied = Set(replayed.versions + [lkg.version])
      onLastKnownGood = true
      return
    }
    onLastKnownGood = false
    loader.persistLastKnownGood(from: loader.path)
    let replayed = replay(journal, onto: table)
    try? stateJournal.reset(for: table.version, keeping: replayed.lines)
    store.publish(replayed.table, source: "file:\(loader.path)")
    applied = Set(replayed.versions + [table.version])
    noteJournalSize()
    store.updateChangeStatus { $0.changeSource = "following \(journal.path)" }
    maybeFold()
  }

  /// The journal's pending lines applied to `table` (a refused line is logged and skipped); a
  /// journal that belongs to another snapshot is moved aside and a fresh one started.
  private func replay(_ j: ChangeJournal, onto table: TenantTable) -> (table: TenantTable, versions: [String], lines: [ChangeJournal.Line]) {
    let contents: ChangeJournal.Contents
    do { contents = try j.read() } catch {
      logger.error("cannot read the journal; serving the snapshot without it", metadata: ["journal": "\(j.path)", "error": "\(error)"])
      return (table, [], [])
    }
    followIdentity = contents.identity
    followOffset = contents.end
    guard let pending = ChangeJournal.pending(contents, snapshotVersion: table.version) else {
      if contents.lines.isEmpty {
        // Only a header for the old snapshot: nothing to keep aside.
        try? j.withLock { try j.reset(for: table.version) }
        let now = ChangeJournal.identity(j.path)
        followIdentity = now?.0
        followOffset = now?.1 ?? 0
        return (table, [], [])
      }
      do {
        try j.withLock {
          let moved = try j.supersede(for: table.version)
          logger.warning("the snapshot was replaced; its old journal is moved aside", metadata: [
            "journal": "\(j.path)", "moved_to": "\(moved ?? "")", "snapshot_version": "\(table.version)",
          ])
        }
      } catch {
        logger.error("cannot move the superseded journal aside", metadata: ["journal": "\(j.path)", "error": "\(error)"])
      }
      let now = ChangeJournal.identity(j.path)
      followIdentity = now?.0
      followOffset = now?.1 ?? 0
      return (table, [], [])
    }
    if contents.identity == nil {
      try? j.withLock { _ = try j.append([], creatingFor: table.version) }
      let now = ChangeJournal.identity(j.path)
      followIdentity = now?.0
      followOffset = now?.1 ?? 0
    }
    var current = table
    var versions: [String] = []
    var lines: [ChangeJournal.Line] = []
    for line in pending {
      do {
        let change = try ChangeSetCodec.decode(line.bytes)
        current = try current.applying(change, platform: loader.platform)
        versions.append(change.version)
        lines.append(line)
      } catch {
        logger.error("journal line refused; skipped", metadata: ["journal": "\(j.path)", "version": "\(line.version)", "error": "\(error)"])
        store.recordRefusedChange(["\(line.version): \(error)"])
      }
    }
    if !pending.isEmpty {
      logger.info("journal replayed", metadata: ["journal": "\(j.path)", "change_sets": "\(versions.count)", "version": "\(current.version)"])
    }
    return (current, versions, lines)
  }

  // MARK: following

  /// Starts following the journal and the snapshot file.
  public func start(snapshotPollInterval: Double) {
    let t = DispatchSource.makeTimerSource(queue: queue)
    let every = Self.followInterval
    var sinceSnapshotCheck = 0.0
    t.schedule(deadline: .now() + every, repeating: every, leeway: .milliseconds(5))
    t.setEventHandler { [weak self] in
      guard let self else { return }
      sinceSnapshotCheck += every
      if sinceSnapshotCheck >= snapshotPollInterval {
        sinceSnapshotCheck = 0
        self.checkSnapshotFile()
      }
      if !self.onLastKnownGood { self.catchUp() }
    }
    t.resume()
    timer = t
  }

  public func stop() {
    timer?.cancel()
    timer = nil
  }

  /// The snapshot file changed: a compaction of what is served (its version is one already
  /// applied) needs nothing; anything else is a new truth, loaded whole.
  private func checkSnapshotFile() {
    let now = SnapshotFileWatcher.signature(loader.path)
    guard now != snapshotSignature, now != nil else { return }
    if let v = try? SnapshotStreamParser.version(path: loader.path), applied.contains(v), !onLastKnownGood {
      snapshotSignature = now
      // The folded lines are gone from the journal: forget their versions (the set would otherwise
      // grow with every edit for the life of the process). Keep what the journal may still show.
      if let contents = try? journal.read() {
        let keep = Set(contents.lines.map(\.version)).union([v, store.current.version])
        applied = applied.intersection(keep)
      }
      logger.info("snapshot compacted; nothing to reload", metadata: ["version": "\(v)"])
      return
    }
    do {
      try loadWhole(atStart: false)
      logger.info("snapshot reloaded", metadata: ["version": "\(store.current.version)", "shops": "\(store.current.shopCount)"])
    } catch {
      store.recordFailure(error.messages)
      logger.error("snapshot rejected; previous table keeps serving", metadata: ["error": "\(error)"])
    }
  }

  /// Applies journal lines appended since the last look (by any writer).
  private func catchUp() {
    guard let (identity, size) = ChangeJournal.identity(journal.path) else { return }
    var lines: [ChangeJournal.Line]
    if identity != followIdentity || size < followOffset {
      // Replaced (a compaction, or a writer that recreated it): read it whole, skip what is applied.
      guard let contents = try? journal.read() else { return }
      followIdentity = contents.identity
      followOffset = contents.end
      let extendsUs = contents.journalFor.map { applied.contains($0) } ?? false
        || contents.lines.contains { applied.contains($0.version) }
      guard extendsUs else { return }  // a new snapshot's journal: the snapshot check loads both
      lines = contents.lines.filter { !applied.contains($0.version) }
    } else {
      guard size > followOffset, let contents = try? journal.read(from: followOffset) else { return }
      followOffset = contents.end
      lines = contents.lines.filter { !applied.contains($0.version) }
    }
    guard !lines.isEmpty else { return }
    var changes: [ChangeSet] = []
    for line in lines {
      do { changes.append(try ChangeSetCodec.decode(line.bytes)) } catch {
        logger.error("journal line refused; skipped", metadata: ["version": "\(line.version)", "error": "\(error)"])
        store.recordRefusedChange(["\(line.version): \(error)"])
      }
    }
    _ = apply(changes, journalLines: nil)
    noteJournalSize()
  }

  // MARK: edits

  /// What became of an edit.
  public enum EditOutcome: Sendable {
    case applied(TenantTable)
    /// `base` was not the table's version (the current one is given).
    case staleBase(current: String, message: String)
    case refused([String])
    case failed(String)
  }

  /// `POST /admin/changes`: validates against the table as it stands (after catching up on the
  /// journal, under its lock), journals with fsync, then publishes.
  public func submit(_ change: ChangeSet) -> EditOutcome {
    queue.sync {
      guard !onLastKnownGood else {
        return .failed("the snapshot file is broken (serving the last-known-good copy); fix it before editing")
      }
      do {
        return try journal.withLock { () -> EditOutcome in
          catchUp()
          let current = store.current
          let attempt = Result { () throws(SnapshotValidationError) -> TenantTable in
            try current.applying(change, platform: loader.platform)
          }
          let next: TenantTable
          switch attempt {
          case .success(let t): next = t
          case .failure(let error):
            store.recordRefusedChange(error.description.split(separator: "\n").map(String.init))
            if error.rules == [TenantTable.staleBaseRule] {
              return .staleBase(current: current.version, message: error.description)
            }
            return .refused(error.description.split(separator: "\n").map(String.init))
          }
          let line = ChangeSetCodec.encode(change)
          followOffset = try journal.append([line], creatingFor: current.version)
          followIdentity = ChangeJournal.identity(journal.path)?.0
          publish(next, replacing: current, changes: [change], lines: [line])
          noteJournalSize()
          return .applied(next)
        }
      } catch {
        return .failed("\(error)")
      }
    }
  }

  /// Applies change sets that are already durable (journal lines); returns how many applied.
  private func apply(_ changes: [ChangeSet], journalLines: [String]?) -> Int {
    guard !changes.isEmpty else { return 0 }
    let current = store.current
    // One validation for the batch; when it fails, one at a time so only the bad ones are refused.
    if let next = try? current.applying(changes, platform: loader.platform) {
      publish(next, replacing: current, changes: changes, lines: changes.map(ChangeSetCodec.encode))
      return changes.count
    }
    var done = 0
    for change in changes {
      let base = store.current
      do {
        let next = try base.applying(change, platform: loader.platform)
        publish(next, replacing: base, changes: [change], lines: [ChangeSetCodec.encode(change)])
        done += 1
      } catch {
        logger.error("change set refused", metadata: ["version": "\(change.version)", "error": "\(error)"])
        store.recordRefusedChange(error.description.split(separator: "\n").map(String.init))
      }
    }
    return done
  }

  private func publish(_ next: TenantTable, replacing current: TenantTable, changes: [ChangeSet], lines: [String]) {
    let touched = changes.flatMap { $0.shops.map(\.id) + $0.removeShops }
    guard store.publish(changed: next, replacing: current, changeSets: changes.count, touchedShops: touched) else {
      logger.error("the table changed under the change queue; change sets dropped", metadata: ["version": "\(next.version)"])
      return
    }
    for c in changes { applied.insert(c.version) }
    folder.noteApplied(changes)
    try? stateJournal.withLock { _ = try stateJournal.append(lines, creatingFor: current.version) }
    maybeFold()
    maybeCompact()
  }

  private func noteJournalSize() {
    let size = ChangeJournal.identity(journal.path)?.1 ?? 0
    store.updateChangeStatus { $0.journalBytes = size }
  }

  // MARK: background work

  private func maybeFold() { folder.maybeFold() }

  /// Compacts the journal past `compact_after_bytes`, off the queue (the follower then sees a
  /// snapshot whose version is already applied, and a journal it has already read).
  private func maybeCompact() {
    guard !compacting, (ChangeJournal.identity(journal.path)?.1 ?? 0) > compactAfterBytes else { return }
    compacting = true
    let snapshotPath = loader.path
    let journal = self.journal
    let stateJournal = self.stateJournal
    let lkg = loader.lastKnownGoodPath
    DispatchQueue.global(qos: .utility).async { [self] in
      do {
        let outcome = try SnapshotCompactor.compact(snapshotPath: snapshotPath, journal: journal)
        store.updateChangeStatus { $0.compactions += 1 }
        logger.info("journal compacted", metadata: [
          "version": "\(outcome.version)", "folded": "\(outcome.folded)", "kept": "\(outcome.kept)",
          "seconds": "\(String(format: "%.3f", outcome.seconds))",
        ])
        // The last-known-good pair is compacted the same way.
        _ = try? SnapshotCompactor.compact(snapshotPath: lkg, journal: stateJournal)
      } catch {
        logger.error("journal compaction failed; will retry", metadata: ["error": "\(error)"])
      }
      queue.async { [self] in
        compacting = false
        checkSnapshotFile()
        catchUp()
      }
    }
  }
}

/// Folds a grown overlay into a new flat base in the background, for a source that applies change
/// sets on a serial queue: the fold runs off the queue; back on it, the change sets applied
/// meanwhile are re-applied to the folded base, which is published only if the serving table is
/// still of the same lineage and version.
public final class OverlayFolder: @unchecked Sendable {
  let queue: DispatchQueue
  let store: SnapshotStore
  let platform: PlatformHosts
  let logger: Logger
  // Queue-confined.
  private var base: TenantTable?
  private var since: [ChangeSet] = []

  public init(queue: DispatchQueue, store: SnapshotStore, platform: PlatformHosts, logger: Logger) {
    self.queue = queue
    self.store = store
    self.platform = platform
    self.logger = logger
  }

  /// Call on the queue after publishing change sets.
  public func noteApplied(_ changes: [ChangeSet]) {
    if base != nil { since += changes }
  }

  /// Call on the queue: starts a fold when the serving table's overlay has grown.
  public func maybeFold() {
    let table = store.current
    guard base == nil, table.wantsFold else { return }
    base = table
    since = []
    let platform = self.platform
    DispatchQueue.global(qos: .utility).async { [self] in
      let started = Date()
      let folded = Result { () throws(SnapshotValidationError) -> TenantTable in try table.folded(platform: platform) }
      queue.async { [self] in
        defer {
          base = nil
          since = []
        }
        let current = store.current
        guard case .success(let flat) = folded, current.lineage == flat.lineage else { return }
        guard let next = try? flat.applying(since, platform: platform), next.version == current.version else {
          logger.error("fold result does not match the serving table; dropped", metadata: ["version": "\(current.version)"])
          return
        }
        if store.publish(changed: next, replacing: current, changeSets: 0, isFold: true) {
          logger.info("overlay folded into a new base", metadata: [
            "version": "\(next.version)", "shops": "\(next.shopCount)", "seconds": "\(String(format: "%.3f", Date().timeIntervalSince(started)))",
          ])
        }
      }
    }
  }
}
