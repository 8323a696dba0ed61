import Atomics
import Foundation
import GatewayCore

/// Where the serving table came from and how the last reload went (for `/admin/snapshot`).
public struct SnapshotStatus: Sendable {
  public var version: String
  public var shops: Int
  public var customDomains: Int
  public var keys: Int
  /// When the serving table was published (seconds since 1970).
  public var loadedAt: Double
  /// `file:PATH`, `last-known-good:PATH`, `url:URL`.
  public var source: String
  /// The last reload's error, if the last attempt failed (the older table keeps serving).
  public var lastError: [String]?
  /// When the last reload was attempted.
  public var lastAttemptAt: Double?
  /// Reloads accepted and rejected since start.
  public var accepted: Int
  public var rejected: Int
  /// Change sets applied and refused since start (PRODUCT.md §6 "Changes").
  public var changeSetsApplied = 0
  public var changeSetsRefused = 0
  /// The last refused change set's reasons.
  public var lastChangeError: [String]? = nil
  /// When the last change set was applied.
  public var lastChangeAt: Double? = nil
  /// Seconds from a change set reaching its source to its table being published (the last one).
  public var lastChangeLagSeconds: Double? = nil
  /// Shops held in the overlay over the base table, and base shops it hides.
  public var overlayShops = 0
  public var overlayHidden = 0
  /// Overlays folded into a new base, and journal compactions, since start.
  public var folds = 0
  public var compactions = 0
  /// The journal's size in bytes (file source).
  public var journalBytes = 0
  /// The change source's state: `following <path>` for a journal, `postgres <db> connected`.
  public var changeSource: String? = nil
  /// The database source: `connected` or `reconnecting since <time>`.
  public var sourceState: String? = nil
  /// The last outbox `seq` read, and whole re-reads since start.
  public var lastSeq: Int64? = nil
  public var resyncs = 0
  /// Database rows refused (entity, id, reasons), at most 100.
  public var refusedEntities: [String] = []
}

/// Holds the serving ``TenantTable`` and swaps it atomically (PRODUCT.md §6).
///
/// Request handling never takes a lock: each event loop keeps a ``TableReader`` that compares one
/// atomic generation counter per request and re-reads the atomic table reference only after a swap.
/// Requests in flight keep the table they started with (they hold a strong reference).
public final class SnapshotStore: Sendable {
  private final class Box: AtomicReference, Sendable {
    let table: TenantTable
    init(_ table: TenantTable) { self.table = table }
  }

  private let box: ManagedAtomic<Box>
  private let generationCounter = ManagedAtomic<Int>(0)
  private let statusLock = NSLock()
  nonisolated(unsafe) private var _status: SnapshotStatus

  public init(initial: TenantTable = .empty(), source: String = "none") {
    self.box = ManagedAtomic(Box(initial))
    self._status = SnapshotStatus(
      version: initial.version, shops: initial.shopCount, customDomains: initial.customDomainCount,
      keys: initial.keyCount, loadedAt: Date().timeIntervalSince1970, source: source, lastError: nil,
      lastAttemptAt: nil, accepted: 0, rejected: 0)
  }

  /// The serving table.
  public var current: TenantTable { box.load(ordering: .acquiring).table }

  /// Increments on every publish.
  public var generation: Int { generationCounter.load(ordering: .acquiring) }

  /// True once a snapshot has been loaded (for `/readyz`).
  public var isReady: Bool { generation > 0 }

  /// What a publish changed, for observers that follow the table (ACME orders for new domains).
  public enum TableChange: Sendable {
    /// A whole new table (load, reload, resync): compare everything.
    case whole(TenantTable)
    /// Change sets: only the shops they named (replaced, inserted or removed) can differ.
    case shops(old: TenantTable, new: TenantTable, ids: [String])
  }

  private let observerLock = NSLock()
  nonisolated(unsafe) private var observers: [@Sendable (TableChange) -> Void] = []

  /// Calls `observer` after every publish, on the publishing thread: it must only note the
  /// change and hand the work elsewhere. Folds (same content, new layout) are not reported.
  public func observe(_ observer: @escaping @Sendable (TableChange) -> Void) {
    observerLock.withLock { observers.append(observer) }
  }

  private func notify(_ change: TableChange) {
    let list = observerLock.withLock { observers }
    for o in list { o(change) }
  }

  /// Publishes `table` with one atomic swap.
  public func publish(_ table: TenantTable, source: String) {
    box.store(Box(table), ordering: .releasing)
    generationCounter.wrappingIncrement(ordering: .releasing)
    defer { notify(.whole(table)) }
    statusLock.withLock {
      noteTable(table)
      _status.loadedAt = Date().timeIntervalSince1970
      _status.source = source
      _status.lastError = nil
      _status.lastAttemptAt = _status.loadedAt
      _status.accepted += 1
    }
  }

  /// Publishes the result of change sets (or of a fold) with one atomic swap, but only if `expected`
  /// is still the serving table; false when something else was published meanwhile.
  /// `touchedShops`: the ids of the shops the change sets named (for observers).
  public func publish(
    changed table: TenantTable, replacing expected: TenantTable, changeSets: Int, lag: Double? = nil, isFold: Bool = false,
    touchedShops: [String] = []
  ) -> Bool {
    let old = box.load(ordering: .acquiring)
    guard old.table === expected else { return false }
    guard box.compareExchange(expected: old, desired: Box(table), ordering: .acquiringAndReleasing).exchanged else { return false }
    generationCounter.wrappingIncrement(ordering: .releasing)
    defer { if !isFold && !touchedShops.isEmpty { notify(.shops(old: expected, new: table, ids: touchedShops)) } }
    statusLock.withLock {
      noteTable(table)
      if isFold {
        _status.folds += 1
      } else if changeSets > 0 {
        _status.changeSetsApplied += changeSets
        _status.lastChangeAt = Date().timeIntervalSince1970
        if let lag { _status.lastChangeLagSeconds = lag }
      }
    }
    return true
  }

  /// Records refused change sets; the serving table is unchanged.
  public func recordRefusedChange(_ messages: [String]) {
    statusLock.withLock {
      _status.changeSetsRefused += 1
      _status.lastChangeError = messages
    }
  }

  /// Updates the change source's part of the status.
  public func updateChangeStatus(_ body: (inout SnapshotStatus) -> Void) {
    statusLock.withLock { body(&_status) }
  }

  private func noteTable(_ table: TenantTable) {
    _status.version = table.version
    _status.shops = table.shopCount
    _status.customDomains = table.customDomainCount
    _status.keys = table.keyCount
    _status.overlayShops = table.overlayShopCount
    _status.overlayHidden = table.overlayHiddenCount
  }

  /// Records a rejected reload; the serving table is unchanged.
  public func recordFailure(_ messages: [String]) {
    statusLock.withLock {
      _status.lastError = messages
      _status.lastAttemptAt = Date().timeIntervalSince1970
      _status.rejected += 1
    }
  }

  public var status: SnapshotStatus { statusLock.withLock { _status } }
}

/// A per-event-loop view of the store: one relaxed counter comparison per request, and an atomic
/// reference load only after a swap.
public struct TableReader {
  public let store: SnapshotStore
  private var seenGeneration: Int
  private var table: TenantTable

  public init(store: SnapshotStore) {
    self.store = store
    self.seenGeneration = store.generation
    self.table = store.current
  }

  /// The table to use for the request starting now.
  public mutating func current() -> TenantTable {
    let g = store.generation
    if g != seenGeneration {
      seenGeneration = g
      table = store.current
    }
    return table
  }
}
