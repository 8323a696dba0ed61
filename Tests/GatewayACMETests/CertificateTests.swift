import Crypto
import Foundation
import SwiftASN1
import Testing
import X509

@testable import GatewayACME

@Suite("The tls-alpn-01 challenge certificate (RFC 8737 §3) and the order's CSR")
struct CertificateTests {
  @Test("Storage reads a stored chain (leaf first, then the intermediate): certificates load at start without ordering")
  func storedChainIsRead() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tgw-acme-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let storage = try ACMEStorage(directory: dir)
    let leaf = try ChallengeCertificate(domain: "shop.example", keyAuthorization: "a.b")
    let intermediate = try ChallengeCertificate(domain: "intermediate.example", keyAuthorization: "c.d")
    try storage.store(domain: "shop.example", chainPEM: leaf.certificatePEM + "\n" + intermediate.certificatePEM, keyPEM: leaf.privateKeyPEM)
    let issued = try #require(storage.issued("shop.example"))
    #expect(issued.notAfter == (try Certificate(pemEncoded: leaf.certificatePEM)).notValidAfter)
    #expect(storage.storedDomains() == ["shop.example"])
    #expect(storage.issued("other.example") == nil)
  }

  @Test("One dNSName, the critical acmeIdentifier with SHA-256 of the key authorization, self-signed")
  func challengeCertificate() throws {
    let made = try ChallengeCertificate(domain: "shop.example", keyAuthorization: "tok.THUMB")
    let cert = try Certificate(pemEncoded: made.certificatePEM)
    let ext = try #require(cert.extensions[oid: ChallengeCertificate.acmeIdentifierOID])
    #expect(ext.critical)
    // extnValue: OCTET STRING (0x04), 32 bytes (0x20), the digest.
    let digest = Array(SHA256.hash(data: Data("tok.THUMB".utf8)))
    #expect(Array(ext.value) == [0x04, 0x20] + digest)
    #expect(ChallengeCertificate.acmeIdentifierDigest(of: cert) == digest)
    let san = try #require(try cert.extensions.subjectAlternativeNames)
    #expect(Array(san) == [.dnsName("shop.example")])
    #expect(cert.issuer == cert.subject)
    // The key matches the certificate.
    let key = try P256.Signing.PrivateKey(pemRepresentation: made.privateKeyPEM)
    #expect(cert.publicKey == Certificate.PublicKey(key.publicKey))
  }

  @Test("An ordinary certificate has no acmeIdentifier digest")
  func ordinaryCertificate() throws {
    let key = P256.Signing.PrivateKey()
    let name = try DistinguishedName { CommonName("x") }
    let cert = try Certificate(
      version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey), notValidBefore: Date(), notValidAfter: Date() + 60,
      issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256, extensions: .init(), issuerPrivateKey: .init(key))
    #expect(ChallengeCertificate.acmeIdentifierDigest(of: cert) == nil)
  }

  @Test("The CSR asks for exactly the domain, signed by the order's own key")
  func csr() throws {
    let request = try CertificateRequest(domain: "shop.example")
    let csr = try CertificateSigningRequest(derEncoded: request.der)
    #expect(csr.publicKey == Certificate.PublicKey(request.privateKey.publicKey))
    let extensions = try #require(try csr.attributes.extensionRequest).extensions
    #expect(Array(try #require(try extensions.subjectAlternativeNames)) == [.dnsName("shop.example")])
    #expect(csr.publicKey.isValidSignature(csr.signature, for: csr))
  }
}

@Suite("Renewal: a window per certificate, a point per domain, backoff, the hourly budget")
struct RenewalScheduleTests {
  let issued = Date(timeIntervalSince1970: 1_796_342_400)
  var ninetyDays: Date { issued.addingTimeInterval(90 * 86400) }

  @Test("A 90-day certificate, 30 days before: the window ends 30 days before expiry and is 15 days long")
  func window() {
    let w = RenewalSchedule.window(notBefore: issued, notAfter: ninetyDays, renewBeforeDays: 30)
    #expect(w.end == ninetyDays.addingTimeInterval(-30 * 86400))
    #expect(w.start == ninetyDays.addingTimeInterval(-45 * 86400))
  }

  @Test("A short-lived certificate (6 days, ACME profiles) renews in its last third, not before it was issued")
  func shortLived() {
    let w = RenewalSchedule.window(notBefore: issued, notAfter: issued.addingTimeInterval(6 * 86400), renewBeforeDays: 30)
    #expect(w.end == issued.addingTimeInterval(4 * 86400))
    #expect(w.start == issued.addingTimeInterval(3 * 86400))
  }

  @Test("50 000 certificates issued in the same hour renew spread out: at most 300 in any hour")
  func spread() {
    let w = RenewalSchedule.window(notBefore: issued, notAfter: ninetyDays, renewBeforeDays: 30)
    var perHour: [Int: Int] = [:]
    for i in 0..<50_000 {
      let t = RenewalSchedule.renewalTime(domain: "shop\(i).example", in: w)
      #expect(t >= w.start && t <= w.end)
      perHour[Int(t.timeIntervalSince(w.start) / 3600), default: 0] += 1
    }
    // 360 hours in the window: ~139 an hour on average.
    #expect(perHour.values.max()! <= 300, "busiest hour: \(perHour.values.max()!)")
    #expect(perHour.count >= 355)
  }

  @Test("The point is deterministic (a fleet and a restart agree) and differs by domain")
  func deterministic() {
    let w = RenewalSchedule.window(notBefore: issued, notAfter: ninetyDays, renewBeforeDays: 30)
    #expect(RenewalSchedule.renewalTime(domain: "a.example", in: w) == RenewalSchedule.renewalTime(domain: "a.example", in: w))
    #expect(RenewalSchedule.renewalTime(domain: "a.example", in: w) != RenewalSchedule.renewalTime(domain: "b.example", in: w))
  }

  @Test("Backoff: 2 min doubling with ±10 %, capped at 12 h, never under the CA's Retry-After")
  func backoff() {
    for (n, base) in [(1, 120.0), (2, 240.0), (3, 480.0), (10, 43200.0), (40, 43200.0)] {
      let b = RenewalSchedule.backoff(domain: "d.example", failures: n)
      #expect(b >= base * 0.9 && b <= base * 1.1, "failure \(n): \(b)")
    }
    #expect(RenewalSchedule.backoff(domain: "d.example", failures: 1, serverRetryAfter: 7200) == 7200)
  }

  @Test("The budget admits max_orders_per_hour in a sliding hour, then says when the next slot opens")
  func budget() {
    var b = OrderBudget(perHour: 3)
    let t0 = issued
    let taken = [t0, t0 + 60, t0 + 120, t0 + 180].map { b.take(now: $0) }
    #expect(taken == [true, true, true, false])
    #expect(b.nextSlot(now: t0 + 180) == t0 + 3600)
    let afterAnHour = b.take(now: t0 + 3600)
    #expect(afterAnHour)
    var none = OrderBudget(perHour: 0)
    let noneTaken = none.take(now: t0)
    #expect(!noneTaken)
    #expect(none.nextSlot(now: t0) == .distantFuture)
  }
}

@Suite("The certificate scheduler: the table decides, orders are bounded, failures back off")
struct CertificateSchedulerTests {
  let now = Date(timeIntervalSince1970: 1_796_342_400)

  func issued(_ days: Double = 90, from start: Date? = nil) -> CertificateScheduler.Issued {
    let s = start ?? now
    return .init(notBefore: s, notAfter: s.addingTimeInterval(days * 86400), issuer: "Pebble Intermediate CA")
  }

  @Test("A flapping mapping (removed and added 10 000 times, also while its order runs) is ordered once at a time, never twice")
  func flappingDomain() {
    var s = CertificateScheduler(renewBeforeDays: 30, maxOrdersPerHour: 1_000_000, maxConcurrent: 8)
    s.setEligible(["steady.example"], now: now)
    var started: [String] = []
    for _ in 0..<10_000 {
      s.eligibilityChanged(added: [], removed: ["flap.example"], now: now)
      s.eligibilityChanged(added: ["flap.example"], removed: [], now: now)
    }
    started += s.due(now: now).start
    #expect(started.sorted() == ["flap.example", "steady.example"])
    // Flapping while its order runs starts nothing more.
    for _ in 0..<100 {
      s.eligibilityChanged(added: [], removed: ["flap.example"], now: now)
      s.eligibilityChanged(added: ["flap.example"], removed: [], now: now)
      #expect(s.due(now: now).start.isEmpty)
    }
    s.orderFinished("flap.example", .issued(issued()), now: now)
    s.orderFinished("steady.example", .issued(issued()), now: now)
    #expect(s.due(now: now).start.isEmpty)
    #expect(s.runningOrders == 0)
  }

  @Test("50 000 domains with certificates and one new: due() starts exactly the new one, and the next check is the soonest renewal")
  func manyDomainsOneDue() {
    var s = CertificateScheduler(renewBeforeDays: 30, maxOrdersPerHour: 300, maxConcurrent: 8)
    let names = (0..<50_000).map { "d\($0).example" }
    for n in names { s.certificateLoaded(n, issued()) }
    s.setEligible(Set(names + ["new.example"]), now: now)
    let (start, next) = s.due(now: now)
    #expect(start == ["new.example"])
    let soonest = names.compactMap { s.domains[$0]?.nextAttemptAt }.min()
    #expect(next == soonest)
    #expect(s.due(now: now).start.isEmpty)
  }

  @Test("An eligible domain without a certificate is ordered at once; one with a valid certificate is not")
  func newDomain() {
    var s = CertificateScheduler(renewBeforeDays: 30, maxOrdersPerHour: 300, maxConcurrent: 4)
    s.certificateLoaded("has.example", issued())
    s.setEligible(["new.example", "has.example"], now: now)
    let due = s.due(now: now)
    #expect(due.start == ["new.example"])
    #expect(s.domains["new.example"]?.status(now: now) == .pending)
    #expect(s.domains["has.example"]?.status(now: now) == .valid)
    // The next check is the renewal point of the loaded certificate.
    let w = RenewalSchedule.window(notBefore: now, notAfter: now.addingTimeInterval(90 * 86400), renewBeforeDays: 30)
    #expect(due.nextCheck == RenewalSchedule.renewalTime(domain: "has.example", in: w))
    s.orderFinished("new.example", .issued(issued()), now: now)
    #expect(s.domains["new.example"]?.status(now: now) == .valid)
    #expect(s.runningOrders == 0)
  }

  @Test("Only eligible domains are ever ordered: a loaded certificate of a domain the table does not map is not_eligible and never due")
  func onlyTheTable() {
    var s = CertificateScheduler(renewBeforeDays: 30, maxOrdersPerHour: 300, maxConcurrent: 4)
    s.certificateLoaded("gone.example", issued(1))
    s.setEligible([], now: now)
    #expect(s.due(now: now.addingTimeInterval(2 * 86400)).start.isEmpty)
    #expect(s.domains["gone.example"]?.status(now: now) == .notEligible)
    #expect(!s.worthWaiting(for: "gone.example"))
    #expect(!s.worthWaiting(for: "never-heard-of.example"))
  }

  @Test("A domain removed by a change set stops being due; added back, it is ordered again")
  func removedAndAdded() {
    var s = CertificateScheduler(renewBeforeDays: 30, maxOrdersPerHour: 300, maxConcurrent: 4)
    s.eligibilityChanged(added: ["a.example"], removed: [], now: now)
    #expect(s.worthWaiting(for: "a.example"))
    s.eligibilityChanged(added: [], removed: ["a.example"], now: now)
    #expect(s.due(now: now).start.isEmpty)
    #expect(s.domains["a.example"]?.status(now: now) == .notEligible)
    s.eligibilityChanged(added: ["a.example"], removed: [], now: now)
    #expect(s.due(now: now).start == ["a.example"])
  }

  @Test("At most maxConcurrent at once; the rest start as orders finish")
  func concurrency() {
    var s = CertificateScheduler(renewBeforeDays: 30, maxOrdersPerHour: 300, maxConcurrent: 2)
    s.setEligible(Set((0..<5).map { "d\($0).example" }), now: now)
    let first = s.due(now: now)
    #expect(first.start.count == 2)
    #expect(first.nextCheck != nil)
    #expect(s.due(now: now).start.isEmpty)
    s.orderFinished(first.start[0], .issued(issued()), now: now)
    #expect(s.due(now: now).start.count == 1)
    #expect(s.runningOrders == 2)
  }

  @Test("max_orders_per_hour: the hour's budget spent, the next check is when a slot opens")
  func hourlyBudget() {
    var s = CertificateScheduler(renewBeforeDays: 30, maxOrdersPerHour: 2, maxConcurrent: 10)
    s.setEligible(["a.example", "b.example", "c.example"], now: now)
    let due = s.due(now: now)
    #expect(due.start.count == 2)
    #expect(due.nextCheck == now.addingTimeInterval(3600))
    for d in due.start { s.orderFinished(d, .issued(issued()), now: now) }
    #expect(s.due(now: now.addingTimeInterval(60)).start.isEmpty)
    #expect(s.due(now: now.addingTimeInterval(3600)).start.count == 1)
  }

  @Test("A failure: failed with lastError and nextAttemptAt, retried after the backoff; the old certificate keeps its place")
  func failureBacksOff() throws {
    var s = CertificateScheduler(renewBeforeDays: 30, maxOrdersPerHour: 300, maxConcurrent: 4)
    s.certificateLoaded("r.example", issued(40, from: now.addingTimeInterval(-35 * 86400)))
    s.setEligible(["r.example"], now: now)
    #expect(s.domains["r.example"]?.status(now: now) == .renewing)
    #expect(s.due(now: now).start == ["r.example"])
    s.orderFinished("r.example", .failed(.validationFailed("connection refused")), now: now)
    let d = try #require(s.domains["r.example"])
    #expect(d.status(now: now) == .failed)
    #expect(d.lastError == "validation failed: connection refused")
    let retry = try #require(d.nextAttemptAt)
    #expect(retry > now.addingTimeInterval(100) && retry < now.addingTimeInterval(140))
    #expect(d.certificate != nil)
    #expect(s.due(now: now.addingTimeInterval(60)).start.isEmpty)
    #expect(s.due(now: retry).start == ["r.example"])
    s.orderFinished("r.example", .issued(issued()), now: retry)
    #expect(s.domains["r.example"]?.status(now: retry) == .valid)
    #expect(s.domains["r.example"]?.failures == 0)
  }

  @Test("A failing new domain is not worth a handshake's wait; a lock held elsewhere is looked at again later")
  func waitingAndFleet() throws {
    var s = CertificateScheduler(renewBeforeDays: 30, maxOrdersPerHour: 300, maxConcurrent: 4)
    s.setEligible(["n.example"], now: now)
    _ = s.due(now: now)
    s.orderFinished("n.example", .heldElsewhere(retryAfter: 5), now: now)
    #expect(s.worthWaiting(for: "n.example"))
    #expect(s.domains["n.example"]?.nextAttemptAt == now.addingTimeInterval(5))
    // The other gateway wrote it: loaded, valid, nothing to order.
    s.certificateLoaded("n.example", issued())
    #expect(s.due(now: now.addingTimeInterval(5)).start.isEmpty)
    #expect(s.domains["n.example"]?.status(now: now) == .valid)

    s.setEligible(["n.example", "f.example"], now: now)
    _ = s.due(now: now)
    s.orderFinished("f.example", .failed(.transport("refused")), now: now)
    #expect(!s.worthWaiting(for: "f.example"))
  }
}
