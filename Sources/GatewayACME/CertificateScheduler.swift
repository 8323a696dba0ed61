import Foundation

/// Which custom domains need an order, and when (PRODUCT.md §10 "Lifecycle"), as a value that
/// returns actions. The live table is the permission check: only domains the gateway says are
/// eligible (custom domains of active shops, §9 invariant 7) are ever ordered; a client's SNI name
/// never reaches this type.
///
/// The driver feeds it the table's eligibility (whole at start, then per change set), the
/// certificates found in storage, and each order's outcome; ``due(now:)`` says which orders to
/// start now (within `maxConcurrent` and `max_orders_per_hour`) and when to ask again.
public struct CertificateScheduler: Sendable {
  /// A domain's state as `/admin/certificates` shows it (PRODUCT.md §10).
  public enum Status: String, Sendable, Equatable {
    case pending, valid, renewing, failed
    case notEligible = "not_eligible"
  }

  /// What is known of a domain's certificate in storage.
  public struct Issued: Sendable, Equatable {
    public let notBefore: Date
    public let notAfter: Date
    public let issuer: String
    public init(notBefore: Date, notAfter: Date, issuer: String) {
      self.notBefore = notBefore
      self.notAfter = notAfter
      self.issuer = issuer
    }
  }

  public struct Domain: Sendable, Equatable {
    public internal(set) var eligible: Bool
    public internal(set) var certificate: Issued?
    /// An order for it is running.
    public internal(set) var ordering = false
    /// Failures in a row (0 after a success).
    public internal(set) var failures = 0
    public internal(set) var lastError: String?
    /// When the next order may start: the renewal point, or the end of a backoff.
    public internal(set) var nextAttemptAt: Date?

    public func status(now: Date) -> Status {
      guard eligible else { return .notEligible }
      if failures > 0 { return .failed }
      guard let certificate else { return .pending }
      if ordering || (nextAttemptAt.map { $0 <= now } ?? false) || certificate.notAfter <= now { return .renewing }
      return .valid
    }
  }

  public enum Outcome: Sendable, Equatable {
    case issued(Issued)
    case failed(ACMEError)
    /// Another gateway holds the domain's lock (a fleet sharing storage): look again later, and
    /// load what it wrote.
    case heldElsewhere(retryAfter: Double)
  }

  public let renewBeforeDays: Int
  public let maxConcurrent: Int
  public private(set) var budget: OrderBudget
  public private(set) var domains: [String: Domain] = [:]
  private var running = 0
  /// Domains waiting for their `nextAttemptAt`, soonest first. Entries are never removed in place:
  /// one whose domain has changed since (another time, ordering, not eligible) is stale and is
  /// dropped when it reaches the top, so every input stays O(log n) and ``due(now:)`` touches only
  /// what is due — not all 50 000 domains on every pump.
  private var waiting = BinaryHeap<WaitingEntry>()
  /// Domains whose time has come, most urgent first, waiting for a concurrency slot or budget.
  private var ready = BinaryHeap<ReadyEntry>()

  struct WaitingEntry: Comparable, Sendable {
    let at: Date
    let name: String
    static func < (a: Self, b: Self) -> Bool { (a.at, a.name) < (b.at, b.name) }
  }

  struct ReadyEntry: Comparable, Sendable {
    /// No certificate yet (distantPast) before any renewal; among renewals the soonest expiry.
    let urgency: Date
    let name: String
    let at: Date
    static func < (a: Self, b: Self) -> Bool { (a.urgency, a.name) < (b.urgency, b.name) }
  }

  public init(renewBeforeDays: Int, maxOrdersPerHour: Int, maxConcurrent: Int) {
    self.renewBeforeDays = renewBeforeDays
    self.maxConcurrent = max(1, maxConcurrent)
    self.budget = OrderBudget(perHour: maxOrdersPerHour)
  }

  /// Number of orders running now.
  public var runningOrders: Int { running }

  // MARK: inputs

  /// The whole eligible set (start, resync): domains outside it become `not_eligible`.
  public mutating func setEligible(_ eligible: Set<String>, now: Date) {
    for (name, var d) in domains where d.eligible && !eligible.contains(name) {
      d.eligible = false
      domains[name] = d
    }
    for name in eligible { markEligible(name, now: now) }
  }

  /// A change set's effect on eligibility: proportional to the change, not the table.
  public mutating func eligibilityChanged(added: [String], removed: [String], now: Date) {
    for name in removed {
      guard var d = domains[name] else { continue }
      d.eligible = false
      domains[name] = d
    }
    for name in added { markEligible(name, now: now) }
  }

  /// A certificate found in storage (at start, or written by another gateway of the fleet).
  public mutating func certificateLoaded(_ domain: String, _ issued: Issued) {
    var d = domains[domain] ?? Domain(eligible: false)
    // Storage never moves a domain backwards (an older file than the one in memory).
    if let current = d.certificate, current.notAfter >= issued.notAfter { return }
    d.certificate = issued
    d.nextAttemptAt = renewalTime(domain, issued)
    if !d.ordering {
      d.failures = 0
      d.lastError = nil
    }
    domains[domain] = d
    schedule(domain)
  }

  /// An order started by ``due(now:)`` ended.
  public mutating func orderFinished(_ domain: String, _ outcome: Outcome, now: Date) {
    guard var d = domains[domain], d.ordering else { return }
    d.ordering = false
    running -= 1
    switch outcome {
    case .issued(let issued):
      d.certificate = issued
      d.failures = 0
      d.lastError = nil
      d.nextAttemptAt = renewalTime(domain, issued)
    case .failed(let error):
      d.failures += 1
      d.lastError = error.description
      d.nextAttemptAt = now.addingTimeInterval(
        RenewalSchedule.backoff(domain: domain, failures: d.failures, serverRetryAfter: error.retryAfter))
    case .heldElsewhere(let after):
      d.nextAttemptAt = now.addingTimeInterval(after)
    }
    domains[domain] = d
    schedule(domain)
  }

  // MARK: decisions

  /// The orders to start now, in order of urgency (no certificate first, then the soonest
  /// expiry), within the concurrency bound and the hourly budget; and when to ask again.
  public mutating func due(now: Date) -> (start: [String], nextCheck: Date?) {
    // Everything whose time has come moves to `ready` (each entry once).
    while let top = waiting.peek, top.at <= now {
      waiting.pop()
      guard isCurrent(top.name, at: top.at) else { continue }
      ready.push(ReadyEntry(urgency: domains[top.name]!.certificate?.notAfter ?? .distantPast, name: top.name, at: top.at))
    }
    var start: [String] = []
    var next: Date? = nil
    while let top = ready.peek {
      guard isCurrent(top.name, at: top.at) else {
        ready.pop()
        continue
      }
      guard running < maxConcurrent else {
        // The rest waits for a running order to finish (orderFinished, then due again).
        next = now.addingTimeInterval(1)
        break
      }
      guard budget.take(now: now) else {
        next = budget.nextSlot(now: now)
        break
      }
      ready.pop()
      domains[top.name]!.ordering = true
      running += 1
      start.append(top.name)
    }
    while let top = waiting.peek, !isCurrent(top.name, at: top.at) { waiting.pop() }
    if let at = waiting.peek?.at { next = min(next ?? at, at) }
    compactIfStale()
    return (start, next)
  }

  /// True when a handshake for `domain` should wait for an order (`handshake_wait_s`): eligible,
  /// without a certificate, and not failing (a failing domain's next try may be hours away).
  public func worthWaiting(for domain: String) -> Bool {
    guard let d = domains[domain], d.eligible, d.certificate == nil else { return false }
    return d.failures == 0
  }

  // MARK: helpers

  /// An entry still describes the domain: eligible, not ordering, due at that time.
  private func isCurrent(_ name: String, at: Date) -> Bool {
    guard let d = domains[name] else { return false }
    return d.eligible && !d.ordering && d.nextAttemptAt == at
  }

  /// Queues the domain for its `nextAttemptAt`, when it can be ordered at all.
  private mutating func schedule(_ name: String) {
    guard let d = domains[name], d.eligible, !d.ordering, let at = d.nextAttemptAt else { return }
    waiting.push(WaitingEntry(at: at, name: name))
  }

  /// Stale entries pile up when domains change often (a flapping mapping); rebuilt from the
  /// domains when the heaps hold far more than there are domains.
  private mutating func compactIfStale() {
    guard waiting.count + ready.count > 2 * domains.count + 1024 else { return }
    waiting = BinaryHeap()
    ready = BinaryHeap()
    for name in domains.keys { schedule(name) }
  }

  private mutating func markEligible(_ name: String, now: Date) {
    var d = domains[name] ?? Domain(eligible: true)
    let wasEligible = domains[name]?.eligible ?? false
    d.eligible = true
    if !wasEligible && d.certificate == nil && !d.ordering && d.failures == 0 {
      // Newly mapped: order at once.
      d.nextAttemptAt = now
    }
    if d.nextAttemptAt == nil { d.nextAttemptAt = d.certificate.map { renewalTime(name, $0) } ?? now }
    domains[name] = d
    // Every eligible domain not ordering has a current entry in `waiting` or `ready` (an
    // already eligible one has it); a newly eligible one gets its own here.
    if !wasEligible { schedule(name) }
  }

  private func renewalTime(_ domain: String, _ issued: Issued) -> Date {
    RenewalSchedule.renewalTime(
      domain: domain,
      in: RenewalSchedule.window(notBefore: issued.notBefore, notAfter: issued.notAfter, renewBeforeDays: renewBeforeDays))
  }
}

/// A binary min-heap: O(log n) push and pop, the smallest at `peek`.
struct BinaryHeap<Element: Comparable & Sendable>: Sendable {
  private var items: [Element] = []

  var count: Int { items.count }
  var peek: Element? { items.first }

  mutating func push(_ e: Element) {
    items.append(e)
    var i = items.count - 1
    while i > 0 {
      let parent = (i - 1) / 2
      guard items[i] < items[parent] else { break }
      items.swapAt(i, parent)
      i = parent
    }
  }

  @discardableResult
  mutating func pop() -> Element? {
    guard !items.isEmpty else { return nil }
    items.swapAt(0, items.count - 1)
    let top = items.removeLast()
    var i = 0
    while true {
      let l = 2 * i + 1, r = l + 1
      var m = i
      if l < items.count && items[l] < items[m] { m = l }
      if r < items.count && items[r] < items[m] { m = r }
      guard m != i else { break }
      items.swapAt(i, m)
      i = m
    }
    return top
  }
}
