import Atomics
import Foundation
import GatewayACME
import GatewayConfig
import GatewayCore
import GatewaySnapshot
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import SwiftASN1
import X509

/// Seeing it (PRODUCT.md §10): per-domain entries for `GET /admin/certificates` and `certs list`,
/// and the counts `/metrics` shows.
extension ACMECertificates {

  struct Entry: Sendable {
    let domain: String
    let state: String
    let issuer: String?
    let notAfter: Date?
    let lastError: String?
    let nextAttemptAt: Date?
  }

  /// Every domain known (eligible, or with a certificate in storage), sorted; or one.
  func entries(host: String? = nil) -> [Entry] {
    queue.sync {
      let now = Date()
      let names = host.map { [$0] } ?? scheduler.domains.keys.sorted()
      return names.compactMap { name in
        guard let d = scheduler.domains[name] else {
          return host == nil ? nil : Entry(domain: name, state: "not_eligible", issuer: nil, notAfter: nil, lastError: nil, nextAttemptAt: nil)
        }
        return Entry(
          domain: name, state: d.status(now: now).rawValue, issuer: d.certificate?.issuer, notAfter: d.certificate?.notAfter,
          lastError: d.lastError, nextAttemptAt: d.nextAttemptAt)
      }
    }
  }

  struct Stats: Sendable {
    let byState: [String: Int]
    let orders: [String: Int]
    let running: Int
    let peakRunning: Int
    let soonestNotAfter: Date?
    let pendingChallenges: Int
    /// Certificate files loaded (or failed) for handshakes, plus shared challenge files read.
    let storageReads: Int
  }

  func stats() -> Stats {
    queue.sync {
      let now = Date()
      var byState: [String: Int] = ["pending": 0, "valid": 0, "renewing": 0, "failed": 0, "not_eligible": 0]
      var soonest: Date? = nil
      for (_, d) in scheduler.domains {
        byState[d.status(now: now).rawValue, default: 0] += 1
        if d.eligible, let t = d.certificate?.notAfter { soonest = min(soonest ?? t, t) }
      }
      return Stats(
        byState: byState, orders: orderResults, running: scheduler.runningOrders, peakRunning: peakRunning, soonestNotAfter: soonest,
        pendingChallenges: responder.pendingCount, storageReads: served.stats.loads + served.stats.failures + sharedReads.load(ordering: .relaxed))
    }
  }
}
