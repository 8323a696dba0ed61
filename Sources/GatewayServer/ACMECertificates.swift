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

/// Certificates for custom domains from an ACME CA (PRODUCT.md §10), decided by the live table.
///
/// - Who gets one: a custom domain of an active shop in the serving table (§9 invariant 7),
///   checked when it is scheduled, again when its order starts, and on every handshake. A client's
///   SNI name is only ever *looked up* in the table (one probe); it can never start an order, touch
///   storage or reach the CA.
/// - When: ``CertificateScheduler`` (pure) decides; this type feeds it the table's changes (whole
///   at start, then the shops each change set names), the certificates in storage and each order's
///   outcome, and runs the orders it asks for on ``ACMEClient``.
/// - Serving: `storage_dir` has the `custom_domain_certs_dir` layout, so a
///   ``CustomDomainCertificates`` over it loads certificates by SNI on demand, as for operator
///   files.
final class ACMECertificates: @unchecked Sendable {  // mutable state confined to `queue`
  let config: GatewayConfig.ACME
  let storage: ACMEStorage
  let client: ACMEClient
  let responder: ChallengeResponder
  let served: CustomDomainCertificates
  let store: SnapshotStore
  let logger: Logger
  /// Names this process in lock files.
  let holder: String
  /// The PostgreSQL storage (certificates, account key, lock, challenges) when
  /// `tls.acme.storage: postgres`; nil: `storage_dir` is the fleet's shared storage.
  let fleet: ACMEFleetStore?
  let sharedReads = ManagedAtomic<Int>(0)
  let queue = DispatchQueue(label: "tenant-gateway.acme")
  private(set) var scheduler: CertificateScheduler
  private var started = false
  private var stopped = false
  /// Handshakes waiting for a domain's first certificate.
  private var waiters: [String: [@Sendable () -> Void]] = [:]
  private var timer: DispatchWorkItem?
  private var timerAt: Date?
  /// `issued`: this gateway's order; `stored_elsewhere`: another fleet member's certificate found in
  /// storage once the lock was taken (no order); `held_elsewhere`: the lock was taken; `failed`;
  /// `not_eligible`: the table dropped the domain before its order began.
  private(set) var orderResults: [String: Int] = ["issued": 0, "failed": 0, "held_elsewhere": 0, "stored_elsewhere": 0, "not_eligible": 0]
  /// Most concurrent orders seen (for the closing note's "peak concurrent orders").
  private(set) var peakRunning = 0
  /// Most waiters per domain: a handshake flood for one mapped domain cannot grow memory.
  static let maxWaitersPerDomain = 1024

  init(
    config: GatewayConfig.ACME, profile: TLSProfile, store: SnapshotStore, fleet: ACMEFleetStore?, group: EventLoopGroup, logger: Logger
  ) throws {
    self.config = config
    self.storage = try ACMEStorage(directory: config.storageDir)
    self.fleet = fleet
    // Challenges are mirrored (to the fleet store, or to files beside the certificates) so that
    // any gateway of a fleet answers the CA, whichever one placed the order.
    self.responder = ChallengeResponder(
      mirror: fleet ?? FileChallengeMirror(directory: (config.storageDir as NSString).appendingPathComponent("challenges")))
    var eab: ExternalAccountBinding? = nil
    if let kid = config.eabKid, let file = config.eabHMACKeyFile {
      eab = try ExternalAccountBinding(keyID: kid, hmacKeyBase64URL: try String(contentsOfFile: file, encoding: .utf8))
    }
    self.client = try ACMEClient(
      settings: .init(
        directoryURL: config.directoryURL, contact: config.contact, caFile: config.caFile ?? "", externalAccountBinding: eab,
        challengeTypes: config.challenges.compactMap(ACMEChallengeType.init(rawValue:))),
      storage: storage, responder: responder, group: group)
    self.served = CustomDomainCertificates(directory: config.storageDir, profile: profile)
    self.store = store
    self.logger = logger
    self.scheduler = CertificateScheduler(
      renewBeforeDays: config.renewBeforeDays, maxOrdersPerHour: config.maxOrdersPerHour, maxConcurrent: config.maxConcurrentOrders)
    self.holder = "\(ProcessInfo.processInfo.hostName):\(getpid())"
  }

  // MARK: eligibility (the table decides)

  /// A normalised name is eligible when the table maps it as a custom domain to an active shop.
  static func isEligible(_ name: String, in table: TenantTable) -> Bool {
    var n = name
    guard let shop = n.withUTF8({ table.shop(customDomain: UnsafeRawBufferPointer($0)) }) else { return false }
    return !table.isSuspended(shop)
  }

  static func eligibleDomains(_ table: TenantTable) -> Set<String> {
    var out = Set<String>()
    for shop in table.shops where !table.isSuspended(shop) {
      for d in table.customDomains(shop) { out.insert(d) }
    }
    return out
  }

  /// The domains the named shops give (active ones only), in one table.
  static func eligibleDomains(of shopIDs: [String], in table: TenantTable) -> Set<String> {
    var out = Set<String>()
    for id in shopIDs {
      guard let shop = table.shop(id: id), !table.isSuspended(shop) else { continue }
      for d in table.customDomains(shop) { out.insert(d) }
    }
    return out
  }

  // MARK: lifecycle

  /// Loads what storage holds (no orders for those), follows the table, starts due orders.
  func start() {
    store.observe { [weak self] change in
      guard let self else { return }
      // Computed on the publishing thread from the two immutable tables, proportional to the change.
      switch change {
      case .whole(let table):
        let eligible = Self.eligibleDomains(table)
        queue.async { self.tableChanged(whole: eligible) }
      case .shops(let old, let new, let ids):
        let before = Self.eligibleDomains(of: ids, in: old)
        let after = Self.eligibleDomains(of: ids, in: new)
        let added = Array(after.subtracting(before))
        let removed = Array(before.subtracting(after))
        guard !added.isEmpty || !removed.isEmpty else { return }
        queue.async { self.tableChanged(added: added, removed: removed) }
      }
    }
    guard let fleet else {
      queue.async { [self] in loadStorageAndFollow() }
      return
    }
    Task { [self] in
      await syncFromFleet(fleet)
      queue.async { [self] in loadStorageAndFollow() }
    }
  }

  /// With the PostgreSQL storage: the fleet's account key, and every certificate it holds copied
  /// into this gateway's `storage_dir` (its cache, which handshakes are served from). The database
  /// down: what the cache already holds serves, and orders fail (and back off) until it is back.
  private func syncFromFleet(_ fleet: ACMEFleetStore) async {
    let started = Date()
    do {
      let pem = try await fleet.accountKey(directoryURL: config.directoryURL, proposed: await client.accountKeyPEM)
      try await client.adoptAccountKey(pem: pem)
      var copied = 0
      let all = try await fleet.allCertificates()
      for stored in all {
        guard let issued = try? Self.check(stored) else { continue }
        if let local = storage.issued(stored.domain), local.notAfter >= issued.notAfter { continue }
        try storage.store(domain: stored.domain, chainPEM: stored.chainPEM, keyPEM: stored.keyPEM)
        served.installed(stored.domain)
        copied += 1
      }
      logger.info("ACME fleet storage read", metadata: [
        "store": "\(fleet.description)", "certificates": "\(all.count)", "copied_to_cache": "\(copied)",
        "seconds": "\(String(format: "%.3f", Date().timeIntervalSince(started)))",
      ])
    } catch {
      logger.error("ACME fleet storage unavailable at start; serving the certificates in storage_dir, orders wait for it", metadata: [
        "store": "\(fleet.description)", "error": "\(error)",
      ])
    }
  }

  /// Loads what `storage_dir` holds (no orders for those), then follows the table. On the queue.
  private func loadStorageAndFollow() {
    let started = Date()
    let domains = storage.storedDomains()
    for d in domains {
      if let issued = storage.issued(d) { scheduler.certificateLoaded(d, issued) }
    }
    logger.info("ACME certificates loaded from storage", metadata: [
      "storage_dir": "\(config.storageDir)", "certificates": "\(domains.count)",
      "seconds": "\(String(format: "%.3f", Date().timeIntervalSince(started)))",
    ])
    self.started = true
    // The table as it is now: changes published before `started` were not queued, but are in it.
    scheduler.setEligible(Self.eligibleDomains(store.current), now: Date())
    pump()
  }

  func stop() {
    queue.sync {
      stopped = true
      timer?.cancel()
      for (_, list) in waiters { for w in list { w() } }
      waiters = [:]
    }
    served.shutdown()
  }

  private func tableChanged(whole eligible: Set<String>) {
    guard started else { return }
    scheduler.setEligible(eligible, now: Date())
    pump()
  }

  private func tableChanged(added: [String], removed: [String]) {
    guard started else { return }
    scheduler.eligibilityChanged(added: added, removed: removed, now: Date())
    for d in removed { release(waitersOf: d) }
    pump()
  }

  // MARK: orders

  /// Starts what is due and sets the timer for the next check. On the queue.
  private func pump() {
    guard !stopped else { return }
    let (start, next) = scheduler.due(now: Date())
    peakRunning = max(peakRunning, scheduler.runningOrders)
    for domain in start {
      Task { [self] in
        let (outcome, result) = await runOrder(domain)
        queue.async { [self] in finished(domain, outcome, result: result) }
      }
    }
    arm(next)
  }

  private func arm(_ next: Date?) {
    guard let next else { return }
    if let at = timerAt, at <= next, timer != nil { return }
    timer?.cancel()
    let work = DispatchWorkItem { [weak self] in
      guard let self else { return }
      self.timer = nil
      self.timerAt = nil
      self.pump()
    }
    timer = work
    timerAt = next
    queue.asyncAfter(deadline: .now() + max(0, next.timeIntervalSinceNow), execute: work)
  }

  private func finished(_ domain: String, _ outcome: CertificateScheduler.Outcome, result: String) {
    scheduler.orderFinished(domain, outcome, now: Date())
    orderResults[result, default: 0] += 1
    switch outcome {
    case .issued(let issued) where result == "stored_elsewhere":
      logger.info("certificate found in storage (another gateway ordered it)", metadata: ["domain": "\(domain)", "not_after": "\(issued.notAfter)"])
    case .issued(let issued):
      logger.info("certificate issued", metadata: ["domain": "\(domain)", "not_after": "\(issued.notAfter)", "issuer": "\(issued.issuer)"])
    case .failed(let error):
      logger.error("certificate order failed; retrying later, any current certificate keeps serving", metadata: [
        "domain": "\(domain)", "error": "\(error)",
        "next_attempt_at": "\(scheduler.domains[domain]?.nextAttemptAt.map { "\($0)" } ?? "-")",
      ])
    case .heldElsewhere:
      break
    }
    if case .heldElsewhere = outcome {} else { release(waitersOf: domain) }
    pump()
  }

  /// One order, off the queue: the table again, the fleet's lock, storage again, then the CA.
  /// Returns the outcome for the scheduler and the `orders_total` result it counts as.
  private func runOrder(_ domain: String) async -> (CertificateScheduler.Outcome, String) {
    // Invariant 7 at the moment it matters: the table may have changed since it was scheduled.
    guard Self.isEligible(domain, in: store.current) else { return (.heldElsewhere(retryAfter: 60), "not_eligible") }
    // The lock: an advisory lock in the database, or a flock in the shared storage_dir. Either is
    // released by its server when the holder dies, so a crash never blocks a domain.
    if let fleet {
      let lock: ACMEFleetLock?
      do {
        lock = try await fleet.tryLock(domain: domain)
      } catch {
        return (.failed(.transport("the fleet storage (\(fleet.description)) is unavailable: \(error)")), "failed")
      }
      guard let lock else { return (.heldElsewhere(retryAfter: 5), "held_elsewhere") }
      let result = await orderHoldingLock(domain, fleet: fleet)
      await lock.release()
      return result
    }
    guard let lock = DomainLock.tryAcquire(storage, domain: domain, holder: holder, lease: 600) else {
      return (.heldElsewhere(retryAfter: 5), "held_elsewhere")
    }
    defer { lock.release() }
    return await orderHoldingLock(domain, fleet: nil)
  }

  private func orderHoldingLock(_ domain: String, fleet: ACMEFleetStore?) async -> (CertificateScheduler.Outcome, String) {
    // Another gateway of the fleet may have stored it while this one waited for the lock.
    if let fleet {
      if let stored = try? await fleet.certificate(domain: domain),
        let issued = try? Self.check(stored),
        !isDue(domain, issued)
      {
        do {
          try storage.store(domain: domain, chainPEM: stored.chainPEM, keyPEM: stored.keyPEM)
        } catch {
          return (.failed(.invalidConfiguration("\(error)")), "failed")
        }
        served.installed(domain)
        return (.issued(issued), "stored_elsewhere")
      }
    } else if let issued = storage.issued(domain), !isDue(domain, issued) {
      served.installed(domain)
      return (.issued(issued), "stored_elsewhere")
    }
    do {
      let certificate = try await client.order(domain: domain)
      let issued = try Self.check(certificate)
      try storage.store(domain: domain, chainPEM: certificate.chainPEM, keyPEM: certificate.keyPEM)
      served.installed(domain)
      if let fleet {
        do {
          try await fleet.save(certificate, notAfter: issued.notAfter, issuer: issued.issuer)
        } catch {
          // Served here regardless; the other gateways will order their own once they find none.
          logger.error("certificate issued but not saved to the fleet storage", metadata: ["domain": "\(domain)", "error": "\(error)"])
        }
      }
      return (.issued(issued), "issued")
    } catch let e as ACMEError {
      return (.failed(e), "failed")
    } catch {
      return (.failed(.malformedResponse("\(error)")), "failed")
    }
  }

  private func isDue(_ domain: String, _ issued: CertificateScheduler.Issued) -> Bool {
    let window = RenewalSchedule.window(notBefore: issued.notBefore, notAfter: issued.notAfter, renewBeforeDays: config.renewBeforeDays)
    return RenewalSchedule.renewalTime(domain: domain, in: window) <= Date()
  }

  /// What the CA sent is a chain whose leaf covers the domain, for the order's key, still valid.
  static func check(_ c: IssuedCertificate) throws -> CertificateScheduler.Issued {
    let pems = try PEMDocument.parseMultiple(pemString: c.chainPEM).filter { $0.discriminator == "CERTIFICATE" }
    guard let first = pems.first else { throw ACMEError.malformedResponse("the chain holds no certificate") }
    let leaf = try Certificate(pemDocument: first)
    let key = try Certificate.PrivateKey(pemEncoded: c.keyPEM)
    guard leaf.publicKey == key.publicKey else { throw ACMEError.malformedResponse("the certificate is not for the order's key") }
    let names = (try? leaf.extensions.subjectAlternativeNames).flatMap { $0 }.map { Array($0) } ?? []
    guard names.contains(GeneralName.dnsName(c.domain)) else { throw ACMEError.malformedResponse("the certificate does not name \(c.domain)") }
    guard leaf.notValidAfter > Date() else { throw ACMEError.malformedResponse("the certificate has already expired") }
    return .init(notBefore: leaf.notValidBefore, notAfter: leaf.notValidAfter, issuer: ACMEStorage.issuerName(leaf))
  }

  // MARK: handshakes

  /// The certificate to serve a custom domain's handshake: from storage if the table says the domain
  /// is eligible; for a mapped domain whose first certificate is on its way, after waiting up to
  /// `handshake_wait_s`. nil: the default certificate. Anything the table does not map costs one
  /// probe, no storage look-up and no order.
  func certificate(for name: String, on loop: EventLoop, extendDeadline: @escaping @Sendable (TimeAmount) -> Void)
    -> EventLoopFuture<CustomDomainCertificates.Loaded?>
  {
    guard Self.isEligible(name, in: store.current) else { return loop.makeSucceededFuture(nil) }
    let served = self.served
    return served.lookup(name, on: loop).flatMap { [self] loaded in
      if let loaded { return loop.makeSucceededFuture(loaded) }
      guard config.handshakeWaitSeconds > 0 else { return loop.makeSucceededFuture(nil) }
      let wait = TimeAmount.milliseconds(Int64(config.handshakeWaitSeconds * 1000))
      extendDeadline(wait + .seconds(2))
      return waitForFirstCertificate(name, on: loop, timeout: wait).flatMap {
        // Eligible still? (A removal while it waited.)
        guard Self.isEligible(name, in: self.store.current) else { return loop.makeSucceededFuture(nil) }
        return served.lookup(name, on: loop)
      }
    }
  }

  /// The tls-alpn-01 certificate for a normalised name: this gateway's own pending challenge, or,
  /// for a name the table maps, another fleet member's from the shared directory (read on the
  /// mirror, off the loop). A name the table does not map costs one probe, never a read.
  func challengeCertificate(for name: String, on loop: EventLoop) -> EventLoopFuture<ChallengeCertificate?> {
    if let own = responder.tlsALPNCertificate(for: name) { return loop.makeSucceededFuture(own) }
    guard Self.isEligible(name, in: store.current) else { return loop.makeSucceededFuture(nil) }
    let responder = self.responder
    sharedReads.wrappingIncrement(ordering: .relaxed)
    return loop.makeFutureWithTask { await responder.sharedTLSALPNCertificate(for: name) }
  }

  /// The http-01 body for `token` on `host` (normalised): this gateway's own, or, for a host the
  /// table maps, another fleet member's placed for that host (read from the mirror, off the loop).
  func http01Answer(token: String, host: String?, on loop: EventLoop) -> EventLoopFuture<String?> {
    if let own = responder.http01KeyAuthorization(token: token) { return loop.makeSucceededFuture(own) }
    guard let host, Self.isEligible(host, in: store.current) else { return loop.makeSucceededFuture(nil) }
    let responder = self.responder
    sharedReads.wrappingIncrement(ordering: .relaxed)
    return loop.makeFutureWithTask { await responder.sharedHTTP01KeyAuthorization(token: token, host: host) }
  }

  private func waitForFirstCertificate(_ name: String, on loop: EventLoop, timeout: TimeAmount) -> EventLoopFuture<Void> {
    let promise = loop.makePromise(of: Void.self)
    let timeoutTask = loop.scheduleTask(in: timeout) { promise.succeed(()) }
    queue.async { [self] in
      guard !stopped, scheduler.worthWaiting(for: name), (waiters[name]?.count ?? 0) < Self.maxWaitersPerDomain else {
        promise.succeed(())
        return
      }
      waiters[name, default: []].append {
        timeoutTask.cancel()
        promise.succeed(())
      }
    }
    return promise.futureResult
  }

  private func release(waitersOf domain: String) {
    guard let list = waiters.removeValue(forKey: domain) else { return }
    for w in list { w() }
  }
}
