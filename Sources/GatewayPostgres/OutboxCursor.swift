import Foundation

/// Where the follower has read the outbox to. `seq` values are taken at insert, not at commit, so
/// a row can become visible after a higher one was read: every seq skipped below the highest read
/// is a *gap*, re-asked for on each read until it appears or ``gapLifetime`` passes (a rolled-back
/// insert leaves a gap for ever; a transaction open longer than that is the one change this can miss,
/// and the next resync catches it).
struct OutboxCursor {
  /// The highest seq read.
  var seq: Int64 = 0
  /// Skipped seqs, with when they were first seen missing.
  var gaps: [Int64: Date] = [:]
  static let gapLifetime: TimeInterval = 300
  static let maxGaps = 10_000

  init(seq: Int64 = 0) { self.seq = seq }

  var openGaps: [Int64] { Array(gaps.keys) }

  mutating func advance(past seqs: [Int64], now: Date) {
    for s in seqs.sorted() {
      if s > seq {
        if s - seq > 1, gaps.count < Self.maxGaps {
          for g in (seq + 1)..<min(s, seq + 1 + Int64(Self.maxGaps - gaps.count)) { gaps[g] = now }
        }
        seq = s
      } else {
        gaps[s] = nil
      }
    }
    expireGaps(now: now)
  }

  mutating func expireGaps(now: Date) {
    gaps = gaps.filter { now.timeIntervalSince($0.value) < Self.gapLifetime }
  }
}

/// A tiny lock-protected value (no NIOConcurrencyHelpers import needed here).
final class NIOLockedValueBoxLite<Value>: @unchecked Sendable {
  private let lock = NSLock()
  private var value: Value
  init(_ value: Value) { self.value = value }
  func withValue<R>(_ body: (inout Value) -> R) -> R {
    lock.lock()
    defer { lock.unlock() }
    return body(&value)
  }
}
