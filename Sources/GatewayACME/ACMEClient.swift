import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// The challenges being answered now, for the listeners to read: tls-alpn-01 certificates by
/// domain (the TLS listener), http-01 key authorizations by token (the plain-HTTP listener).
/// Only an order in progress puts anything here, and it takes it out when it ends.
///
/// In a fleet, the CA's validation connection may reach any gateway behind the balancer, not the
/// one that placed the order. So each challenge is also published to a ``ChallengeMirror`` (files
/// in a shared `storage_dir`, or the PostgreSQL storage) while it is pending, and a gateway that
/// has none in memory may read it there. The caller decides when that is allowed (the table must
/// map the name), because a read is exactly what a random SNI name must never cost.
public final class ChallengeResponder: Sendable {
  private struct State {
    var tlsALPN: [String: ChallengeCertificate] = [:]
    var http01: [String: String] = [:]
    /// Challenge certificates built from another member's challenge, by domain, with the key
    /// authorization they were built for (a new order's challenge replaces the entry).
    var fromMirror: [String: (keyAuthorization: String, certificate: ChallengeCertificate)] = [:]
  }
  private let state = NIOLockedValueBox(State())
  /// Where challenges are shared with the fleet; nil: they stay in this process.
  public let mirror: ChallengeMirror?

  public init(mirror: ChallengeMirror? = nil) {
    self.mirror = mirror
  }

  /// Challenges shared through files in `sharedDirectory`.
  public convenience init(sharedDirectory: String) {
    self.init(mirror: FileChallengeMirror(directory: sharedDirectory))
  }

  /// Makes `challenge` answerable (the tls-alpn-01 certificate is built here, once), and publishes
  /// it to the mirror before the caller tells the CA to validate.
  public func provision(_ challenge: ACMEPendingChallenge) async throws {
    switch challenge.type {
    case .tlsALPN01:
      let cert = try ChallengeCertificate(domain: challenge.domain, keyAuthorization: challenge.keyAuthorization)
      state.withLockedValue { $0.tlsALPN[challenge.domain] = cert }
    case .http01:
      state.withLockedValue { $0.http01[challenge.token] = challenge.keyAuthorization }
    }
    if let mirror, let name = Self.name(of: challenge) {
      try await mirror.publish(name: name, domain: challenge.domain, keyAuthorization: challenge.keyAuthorization)
    }
  }

  public func withdraw(_ challenge: ACMEPendingChallenge) async {
    state.withLockedValue {
      switch challenge.type {
      case .tlsALPN01: $0.tlsALPN[challenge.domain] = nil
      case .http01: $0.http01[challenge.token] = nil
      }
    }
    if let mirror, let name = Self.name(of: challenge) { await mirror.withdraw(name: name) }
  }

  /// The challenge certificate for a normalised server name, while its order waits for validation.
  public func tlsALPNCertificate(for domain: String) -> ChallengeCertificate? {
    state.withLockedValue { $0.tlsALPN[domain] }
  }

  /// The body for `/.well-known/acme-challenge/<token>`, while its order waits for validation.
  public func http01KeyAuthorization(token: String) -> String? {
    state.withLockedValue { $0.http01[token] }
  }

  /// Another member's pending tls-alpn-01 challenge for `domain`, from the mirror. Call it only
  /// for a name the table maps.
  public func sharedTLSALPNCertificate(for domain: String) async -> ChallengeCertificate? {
    guard let mirror, let name = Self.fileName(type: .tlsALPN01, key: domain),
      let (named, keyAuthorization) = await mirror.read(name: name), named == domain
    else { return nil }
    if let cached = state.withLockedValue({ $0.fromMirror[domain] }), cached.keyAuthorization == keyAuthorization {
      return cached.certificate
    }
    guard let cert = try? ChallengeCertificate(domain: domain, keyAuthorization: keyAuthorization) else { return nil }
    state.withLockedValue {
      // Bounded: one entry per mapped domain with a pending order somewhere in the fleet.
      if $0.fromMirror.count >= 4096 { $0.fromMirror.removeAll() }
      $0.fromMirror[domain] = (keyAuthorization, cert)
    }
    return cert
  }

  /// Another member's pending http-01 answer for `token`, when it was placed for `host`. Call it
  /// only for a host the table maps.
  public func sharedHTTP01KeyAuthorization(token: String, host: String) async -> String? {
    guard let mirror, let name = Self.fileName(type: .http01, key: token),
      let (named, keyAuthorization) = await mirror.read(name: name), named == host
    else { return nil }
    return keyAuthorization
  }

  public var pendingCount: Int { state.withLockedValue { $0.tlsALPN.count + $0.http01.count } }

  /// `tls-alpn-01.<domain>` / `http-01.<token>`; nil for a key that could name another file (a
  /// token is base64url, a domain a normalised host name; anything else is refused, not escaped).
  public static func fileName(type: ACMEChallengeType, key: String) -> String? {
    guard !key.isEmpty, key.utf8.count <= 255, key.first != "." else { return nil }
    let allowed: (UInt8) -> Bool
    switch type {
    case .tlsALPN01:
      allowed = { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
    case .http01:
      allowed = { $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
    }
    guard key.utf8.allSatisfy(allowed) else { return nil }
    return "\(type.rawValue).\(key)"
  }

  static func name(of challenge: ACMEPendingChallenge) -> String? {
    fileName(type: challenge.type, key: challenge.type == .tlsALPN01 ? challenge.domain : challenge.token)
  }
}

/// A certificate an order brought back (the chain as the CA sent it and the order's own key), and
/// what a fleet store keeps per domain.
public struct IssuedCertificate: Sendable {
  public let domain: String
  public let chainPEM: String
  public let keyPEM: String
  public init(domain: String, chainPEM: String, keyPEM: String) {
    self.domain = domain
    self.chainPEM = chainPEM
    self.keyPEM = keyPEM
  }
}

/// The ACME driver (RFC 8555): the account, the nonce pool, signing, and an order run by carrying
/// out ``ACMEOrderStateMachine``'s actions. Every decision is the state machine's; this type only
/// does the I/O it asks for.
public actor ACMEClient {
  public struct Settings: Sendable {
    public var directoryURL: String
    public var contact: [String]
    public var caFile: String
    public var externalAccountBinding: ExternalAccountBinding?
    public var challengeTypes: [ACMEChallengeType]

    public init(directoryURL: String, contact: [String], caFile: String, externalAccountBinding: ExternalAccountBinding?, challengeTypes: [ACMEChallengeType]) {
      self.directoryURL = directoryURL
      self.contact = contact
      self.caFile = caFile
      self.externalAccountBinding = externalAccountBinding
      self.challengeTypes = challengeTypes
    }
  }

  let settings: Settings
  let http: ACMEHTTP
  let storage: ACMEStorage
  private(set) var key: ACMEAccountKey
  let responder: ChallengeResponder
  private var directory: ACMEDirectory?
  private var accountURL: String?
  /// Replay-Nonce values not used yet (RFC 8555 §7.2); every response refills it.
  private var nonces: [String] = []
  /// Requests sent (for metrics and the tests' accounting).
  public private(set) var requestsSent = 0

  public init(settings: Settings, storage: ACMEStorage, responder: ChallengeResponder, group: EventLoopGroup) throws {
    self.settings = settings
    self.storage = storage
    self.responder = responder
    self.http = try ACMEHTTP(group: group, caFile: settings.caFile)
    self.key = try storage.accountKey()
    self.accountURL = storage.accountURL(for: settings.directoryURL)
  }

  /// The account's thumbprint (the second half of every key authorization).
  public var thumbprint: String { key.thumbprint }

  /// The account key a fleet agreed on (``ACMEFleetStore/accountKey(directoryURL:proposed:)``):
  /// used from now on and kept in `storage_dir`. A different key than the one in use forgets the
  /// account URL; the next order registers, and the CA answers with the fleet's one account
  /// (RFC 8555 §7.3.1: newAccount with a known key returns that account).
  public func adoptAccountKey(pem: String) throws {
    let adopted = try ACMEAccountKey(pem: pem)
    guard adopted.thumbprint != key.thumbprint else { return }
    key = adopted
    try ACMEStorage.writeAtomically(Array(pem.utf8), to: storage.accountKeyPath, mode: 0o600)
    try? FileManager.default.removeItem(atPath: storage.accountURLPath)
    accountURL = nil
  }

  /// The key in use, PEM (to propose to a fleet store).
  public var accountKeyPEM: String { key.pemRepresentation }

  // MARK: an order

  /// Orders a certificate for `domain` and returns it with its key. Challenges are provisioned on
  /// `responder` only while the order needs them; they are withdrawn whether it succeeds or not.
  public func order(domain: String) async throws -> IssuedCertificate {
    do {
      return try await runOrder(domain: domain)
    } catch ACMEError.problem(let p, _) where p.code == "accountDoesNotExist" {
      // The CA forgot the account (a test CA restarted, an account deactivated): register again, once.
      accountURL = nil
      return try await runOrder(domain: domain)
    }
  }

  private func runOrder(domain: String) async throws -> IssuedCertificate {
    let dir = try await loadDirectory()
    let kid = try await account(dir)
    let request = try CertificateRequest(domain: domain)
    var machine = ACMEOrderStateMachine(.init(
      domain: domain, challengeTypes: settings.challengeTypes, accountThumbprint: key.thumbprint, csrDER: request.der))
    var provisioned: [ACMEPendingChallenge] = []
    let result: Result<IssuedCertificate, Error>
    do {
      result = .success(try await drive(&machine, newOrderURL: dir.newOrder, kid: kid, request: request, provisioned: &provisioned))
    } catch {
      result = .failure(error)
    }
    // Withdrawn either way (and from the fleet's mirror): a challenge never outlives its order.
    for c in provisioned { await responder.withdraw(c) }
    return try result.get()
  }

  private func drive(
    _ machine: inout ACMEOrderStateMachine, newOrderURL: String, kid: String, request: CertificateRequest,
    provisioned: inout [ACMEPendingChallenge]
  ) async throws -> IssuedCertificate {
    let domain = request.domain
    var action = machine.start(newOrderURL: newOrderURL)
    while true {
      switch action {
      case .send(let r):
        do {
          let response = try await post(r.url, payload: r.payload, signer: .kid(kid), acceptPEM: r.acceptsPEMChain)
          action = machine.received(response)
        } catch ACMEError.transport(let reason) {
          action = machine.transportFailed(reason)
        }
      case .provision(let challenge):
        provisioned.append(challenge)
        try await responder.provision(challenge)
        action = machine.challengeProvisioned()
      case .wait(let seconds):
        try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
        action = machine.waited()
      case .finished(let chain):
        return IssuedCertificate(domain: domain, chainPEM: chain, keyPEM: request.privateKey.pemRepresentation)
      case .failed(let error):
        throw error
      }
    }
  }

  // MARK: directory, account, nonces

  func loadDirectory() async throws -> ACMEDirectory {
    if let directory { return directory }
    let reply = try await exchange { try await self.http.send(.GET, self.settings.directoryURL, accept: "application/json") }
    guard reply.status == 200 else { throw ACMEError.transport("the directory \(settings.directoryURL) answered \(reply.status)") }
    let dir = try ACMEResponse(status: 200, body: reply.body).decode(ACMEDirectory.self)
    if dir.meta?.externalAccountRequired == true && settings.externalAccountBinding == nil {
      throw ACMEError.invalidConfiguration("the CA requires external account binding (tls.acme.eab_kid and eab_hmac_key_file)")
    }
    directory = dir
    return dir
  }

  /// The account URL: stored, or registered now (newAccount, signed with the JWK).
  func account(_ dir: ACMEDirectory) async throws -> String {
    if let accountURL { return accountURL }
    var payload: [String: Any] = ["termsOfServiceAgreed": true]
    if !settings.contact.isEmpty {
      payload["contact"] = settings.contact.map { $0.contains(":") ? $0 : "mailto:" + $0 }
    }
    if let eab = settings.externalAccountBinding {
      payload["externalAccountBinding"] = try JSONSerialization.jsonObject(with: JWS.externalAccountBinding(eab, url: dir.newAccount, key: key))
    }
    let body = try JSONSerialization.data(withJSONObject: payload, options: [.sortedKeys])
    let response = try await post(dir.newAccount, payload: body, signer: .jwk, acceptPEM: false)
    if let problem = response.problem { throw ACMEError.problem(problem, retryAfter: response.retryAfter) }
    guard let url = response.location else { throw ACMEError.malformedResponse("newAccount without Location") }
    try storage.saveAccountURL(url, for: settings.directoryURL)
    accountURL = url
    return url
  }

  private func nonce() async throws -> String {
    if let n = nonces.popLast() { return n }
    let dir = try await loadDirectory()
    // The exchange puts the fresh nonce in the pool.
    _ = try await exchange { try await self.http.send(.HEAD, dir.newNonce) }
    guard let n = nonces.popLast() else { throw ACMEError.malformedResponse("newNonce without Replay-Nonce") }
    return n
  }

  /// A signed POST; `badNonce` is retried with the nonce the refusal carried (RFC 8555 §6.5).
  func post(_ url: String, payload: Data?, signer: JWSSigner, acceptPEM: Bool) async throws -> ACMEResponse {
    for attempt in 0..<5 {
      let body = try JWS.sign(payload: payload, url: url, nonce: try await nonce(), signer: signer, key: key)
      let reply = try await exchange {
        try await self.http.send(.POST, url, body: Array(body), accept: acceptPEM ? "application/pem-certificate-chain" : nil)
      }
      let response = ACMEResponse(
        status: reply.status, location: reply.headers.first(name: "Location"),
        retryAfter: reply.headers.first(name: "Retry-After").flatMap { RetryAfter.parse($0, now: Date()) },
        body: reply.body)
      if response.problem?.code == "badNonce" && attempt < 4 { continue }
      return response
    }
    throw ACMEError.malformedResponse("badNonce five times in a row")
  }

  /// One HTTP exchange; its Replay-Nonce goes to the pool.
  private func exchange(_ send: @Sendable () async throws -> ACMEHTTP.Reply) async throws -> ACMEHTTP.Reply {
    requestsSent += 1
    let reply: ACMEHTTP.Reply
    do { reply = try await send() } catch let e as ACMEHTTP.Failure { throw ACMEError.transport(e.description) }
    if let n = reply.headers.first(name: "Replay-Nonce") {
      nonces.append(n)
      if nonces.count > 32 { nonces.removeFirst(nonces.count - 32) }
    }
    return reply
  }
}
