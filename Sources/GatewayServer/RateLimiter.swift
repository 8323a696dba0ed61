import Atomics
import GatewayCore
import NIOCore

/// Token-bucket rate limits (`limits.per_key_rps`, `limits.per_shop_rps`, `limits.burst`, and the
/// snapshot's per-shop `rateLimit`), shared by every event loop without locks.
///
/// Each limiter is a fixed array of 64-bit slots, one per hashed subject (a key's digest, a shop's
/// id), holding a GCRA "theoretical arrival time" (the generic cell rate algorithm, equivalent to a
/// token bucket): a request is allowed when it arrives no earlier than `TAT − burst tolerance`, and
/// moves TAT one interval on. One CAS per check. Memory is fixed whatever the number of keys
/// (8 MiB for keys, 2 MiB for shops); two subjects whose hashes collide share a bucket, which can
/// only make them stricter, never looser.
public final class RateLimiter: Sendable {
  private let slots: UnsafeAtomicArray
  private let mask: Int

  public init(slotsLog2: Int) {
    let n = 1 << slotsLog2
    slots = UnsafeAtomicArray(count: n)
    mask = n - 1
  }

  /// Checks one request against a bucket of `rps` per second holding `burst` requests.
  /// Returns `nil` when allowed, else the seconds until one would be (for `Retry-After`).
  public func check(hash: UInt64, rps: UInt32, burst: UInt32, now: UInt64) -> Int? {
    guard rps > 0 else { return nil }
    let interval = 1_000_000_000 / UInt64(rps)
    let tolerance = interval * UInt64(max(1, burst) - 1)
    let slot = slots[Int(truncatingIfNeeded: hash) & mask]
    while true {
      let tat = slot.load(ordering: .relaxed)
      let base = max(tat, now)
      if base - now > tolerance {
        let waitNanos = base - now - tolerance
        return max(1, Int((waitNanos + 999_999_999) / 1_000_000_000))
      }
      if slot.compareExchange(expected: tat, desired: base + interval, ordering: .relaxed).exchanged { return nil }
    }
  }
}

/// A fixed array of atomics, allocated once (never freed: limiters live as long as the process).
final class UnsafeAtomicArray: @unchecked Sendable {
  private let storage: UnsafeMutablePointer<UnsafeAtomic<UInt64>.Storage>
  let count: Int

  init(count: Int) {
    self.count = count
    storage = .allocate(capacity: count)
    storage.initialize(repeating: UnsafeAtomic<UInt64>.Storage(0), count: count)
  }

  subscript(i: Int) -> UnsafeAtomic<UInt64> { UnsafeAtomic(at: storage + i) }
}

/// The configured limits, resolved per request.
struct RateLimits: Sendable {
  let perKeyRPS: UInt32
  let perShopRPS: UInt32
  let burst: UInt32
  let keys = RateLimiter(slotsLog2: 20)
  let shops = RateLimiter(slotsLog2: 18)

  /// `nil`: allowed; else `Retry-After` seconds.
  func check(tenant: TenantContext, table: TenantTable, now: NIODeadline) -> Int? {
    let t = now.uptimeNanoseconds
    if let key = tenant.key, perKeyRPS > 0 {
      if let wait = keys.check(hash: table.keyDigest(key).w1, rps: perKeyRPS, burst: burst == 0 ? perKeyRPS : burst, now: t) {
        return wait
      }
    }
    let override = table.rateLimit(tenant.shop)
    let rps = override?.rps ?? perShopRPS
    guard rps > 0 else { return nil }
    let burst = override?.burst ?? (self.burst == 0 ? rps : self.burst)
    // Keyed by the shop's stable hash: its bucket survives reloads (its table index may not).
    return shops.check(hash: table.stableShopHash(tenant.shop), rps: rps, burst: burst, now: t)
  }
}
