import Crypto
import Foundation

/// When to renew a certificate and when to retry a failure: pure functions of the certificate,
/// the domain and the configuration, so every gateway of a fleet and every restart agree.
///
/// Renewal is a *window*, not an instant: a point in it is chosen per domain by a hash, so
/// certificates issued together (50 000 at a first start) renew spread over days, not in one hour.
/// The window is where ARI (RFC 9773) plugs in: a CA's `suggestedWindow` replaces the computed one,
/// and the same per-domain point is picked inside it. ACME profiles change only the lifetime, which
/// the window is already relative to (a 6-day certificate renews in its own last third).
public enum RenewalSchedule {
  /// A renewal window (seconds since 1970 as `Date`s).
  public struct Window: Sendable, Equatable {
    public let start: Date
    public let end: Date
    public init(start: Date, end: Date) {
      self.start = start
      self.end = max(end, start)
    }
  }

  /// The window for a certificate valid `notBefore ..< notAfter`, renewing `renewBeforeDays` before
  /// expiry: it ends at `notAfter − renewBefore` and is half as long again before that. Short-lived
  /// certificates (lifetime under 3 × renewBefore) use a third of their lifetime as renewBefore.
  public static func window(notBefore: Date, notAfter: Date, renewBeforeDays: Int) -> Window {
    let lifetime = max(notAfter.timeIntervalSince(notBefore), 60)
    let renewBefore = min(Double(renewBeforeDays) * 86400, lifetime / 3)
    let end = notAfter.addingTimeInterval(-renewBefore)
    return Window(start: end.addingTimeInterval(-renewBefore / 2), end: end)
  }

  /// The domain's point in `window`: deterministic (SHA-256 of the domain and the window), uniform.
  public static func renewalTime(domain: String, in window: Window) -> Date {
    let span = window.end.timeIntervalSince(window.start)
    guard span > 0 else { return window.start }
    let seed = "\(domain)|\(Int64(window.start.timeIntervalSince1970))|\(Int64(window.end.timeIntervalSince1970))"
    return window.start.addingTimeInterval(span * unitFraction(seed))
  }

  /// The wait after the `failures`-th failure in a row (1, 2, …): 2 min doubling up to 12 h, with
  /// ±10 % per-domain jitter, and never shorter than what the CA asked for (`Retry-After`).
  /// Two minutes doubling puts failures at 0, 2, 6, 14, 30 and 62 min, so no hour holds more than
  /// Let's Encrypt's 5 failed validations per identifier per hour.
  public static func backoff(domain: String, failures: Int, serverRetryAfter: Double? = nil) -> Double {
    let n = max(1, failures)
    let base = min(120 * pow(2, Double(min(n - 1, 20))), 12 * 3600)
    let jitter = 0.9 + 0.2 * unitFraction("\(domain)|backoff|\(n)")
    return max(base * jitter, serverRetryAfter ?? 0)
  }

  /// A number in [0, 1) from SHA-256 of `seed`.
  static func unitFraction(_ seed: String) -> Double {
    let digest = Array(SHA256.hash(data: Data(seed.utf8)))
    var v: UInt64 = 0
    for b in digest.prefix(8) { v = v << 8 | UInt64(b) }
    return Double(v >> 11) / Double(UInt64(1) << 53)
  }
}

/// `max_orders_per_hour` (PRODUCT.md §7): a sliding hour of order starts.
public struct OrderBudget: Sendable, Equatable {
  public let perHour: Int
  /// Start times in the last hour, oldest first.
  private(set) var starts: [Date] = []

  public init(perHour: Int) { self.perHour = max(0, perHour) }

  /// The earliest time an order may start (`now` when one may start now).
  public func nextSlot(now: Date) -> Date {
    let recent = starts.filter { now.timeIntervalSince($0) < 3600 }
    guard recent.count >= perHour else { return now }
    guard perHour > 0 else { return .distantFuture }
    return recent[recent.count - perHour].addingTimeInterval(3600)
  }

  /// Records an order starting at `now`; false (and nothing recorded) when the hour is full.
  public mutating func take(now: Date) -> Bool {
    starts.removeAll { now.timeIntervalSince($0) >= 3600 }
    guard starts.count < perHour else { return false }
    starts.append(now)
    return true
  }
}
