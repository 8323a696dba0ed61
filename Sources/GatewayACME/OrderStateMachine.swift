import Foundation
import GatewaySigning

/// A challenge type the gateway can answer (PRODUCT.md §7 `tls.acme.challenges`).
public enum ACMEChallengeType: String, Sendable, CaseIterable, Equatable {
  /// RFC 8737, answered on the TLS listener with ALPN `acme-tls/1`.
  case tlsALPN01 = "tls-alpn-01"
  /// RFC 8555 §8.3, answered on `listen.http_address`.
  case http01 = "http-01"
}

/// A challenge the gateway must answer before the CA validates it.
public struct ACMEPendingChallenge: Sendable, Equatable, Hashable {
  public let type: ACMEChallengeType
  public let domain: String
  public let token: String
  /// `token.thumbprint` (RFC 8555 §8.1): the http-01 body; hashed into the tls-alpn-01 certificate.
  public let keyAuthorization: String
}

/// One certificate order's life (RFC 8555 §7.4), as a value that returns what to do next.
///
/// new order → each authorization (read it; answer one challenge; tell the CA; poll until valid)
/// → read the order until `ready` → finalize with the CSR → poll until `valid` → download the chain.
///
/// The driver carries the actions out: it signs and sends each ``Request`` (with the account's
/// `kid` and a fresh nonce, retrying `badNonce` itself), provisions challenges and sleeps; and it
/// withdraws every provisioned challenge when the order ends, either way. Nothing here does I/O, so
/// every transition is tested without a network (GatewayACMETests).
public struct ACMEOrderStateMachine: Sendable {
  /// A signed POST (RFC 8555 §6.3): `payload` nil is POST-as-GET.
  public struct Request: Sendable, Equatable {
    public let url: String
    public let payload: Data?
    /// Download: ask for `application/pem-certificate-chain` (RFC 8555 §7.4.2).
    public let acceptsPEMChain: Bool
  }

  public enum Action: Sendable, Equatable {
    case send(Request)
    /// Make the challenge answerable, then call ``challengeProvisioned()``.
    case provision(ACMEPendingChallenge)
    /// Sleep, then call ``waited()``.
    case wait(seconds: Double)
    /// The PEM chain, leaf first.
    case finished(certificateChainPEM: String)
    case failed(ACMEError)
  }

  public struct Configuration: Sendable, Equatable {
    public var domain: String
    /// In order of preference; the first one the CA offers is answered.
    public var challengeTypes: [ACMEChallengeType]
    /// The account key's RFC 7638 thumbprint.
    public var accountThumbprint: String
    /// DER of the CSR for ``domain`` (``CertificateRequest``).
    public var csrDER: [UInt8]
    /// Polls per wait (an authorization, the order before and after finalize) before giving up.
    public var maxPolls: Int = 60
    /// First poll interval (seconds) when the CA sends no Retry-After; doubles up to ``maxPollInterval``.
    public var pollInterval: Double = 0.5
    public var maxPollInterval: Double = 5

    public init(domain: String, challengeTypes: [ACMEChallengeType], accountThumbprint: String, csrDER: [UInt8]) {
      self.domain = domain
      self.challengeTypes = challengeTypes
      self.accountThumbprint = accountThumbprint
      self.csrDER = csrDER
    }
  }

  struct Order: Sendable, Equatable {
    let url: String
    let authorizations: [String]
    let finalize: String
  }

  enum State: Sendable, Equatable {
    case idle
    case creatingOrder
    case readingAuthorization(Order, index: Int)
    case provisioning(Order, index: Int, challengeURL: String)
    case triggeringChallenge(Order, index: Int)
    /// Waiting before, or reading, an authorization after its challenge was triggered.
    case waitingAuthorization(Order, index: Int, polls: Int)
    case pollingAuthorization(Order, index: Int, polls: Int)
    /// Reading the order: before finalize (`finalized` false, wants `ready`) or after (wants `valid`).
    case waitingOrder(Order, finalized: Bool, polls: Int)
    case pollingOrder(Order, finalized: Bool, polls: Int)
    case finalizing(Order)
    case downloading(Order)
    case finished
  }

  public let configuration: Configuration
  private(set) var state: State = .idle
  /// The Retry-After of the last response, for the next wait.
  private var retryAfter: Double?

  public init(_ configuration: Configuration) {
    self.configuration = configuration
  }

  /// True once the order has finished or failed.
  public var isFinished: Bool { state == .finished }

  /// Starts the order: POST newOrder for the one domain.
  public mutating func start(newOrderURL: String) -> Action {
    precondition(state == .idle, "an order starts once")
    state = .creatingOrder
    let payload = #"{"identifiers":[{"type":"dns","value":\#(JWS.jsonString(configuration.domain))}]}"#
    return .send(Request(url: newOrderURL, payload: Data(payload.utf8), acceptsPEMChain: false))
  }

  /// The challenge of ``Action/provision(_:)`` is answerable: tell the CA (POST `{}` to its URL).
  public mutating func challengeProvisioned() -> Action {
    guard case .provisioning(let order, let index, let url) = state else { return fail(.malformedResponse("challengeProvisioned in \(state)")) }
    state = .triggeringChallenge(order, index: index)
    return .send(Request(url: url, payload: Data("{}".utf8), acceptsPEMChain: false))
  }

  /// The wait of ``Action/wait(seconds:)`` is over.
  public mutating func waited() -> Action {
    switch state {
    case .waitingAuthorization(let order, let index, let polls):
      state = .pollingAuthorization(order, index: index, polls: polls)
      return .send(postAsGet(order.authorizations[index]))
    case .waitingOrder(let order, let finalized, let polls):
      state = .pollingOrder(order, finalized: finalized, polls: polls)
      return .send(postAsGet(order.url))
    default:
      return fail(.malformedResponse("waited in \(state)"))
    }
  }

  /// The request could not be sent or answered (after the driver's own retries).
  public mutating func transportFailed(_ reason: String) -> Action {
    fail(.transport(reason))
  }

  /// The response to the last ``Action/send(_:)``.
  public mutating func received(_ response: ACMEResponse) -> Action {
    if let problem = response.problem { return fail(.problem(problem, retryAfter: response.retryAfter)) }
    retryAfter = response.retryAfter
    do {
      switch state {
      case .creatingOrder:
        guard let url = response.location else { throw ACMEError.malformedResponse("newOrder without Location") }
        let body = try response.decode(ACMEOrder.self)
        let order = Order(url: url, authorizations: body.authorizations, finalize: body.finalize)
        return try orderRead(order, body, finalized: false, polls: 0)

      case .readingAuthorization(let order, let index):
        let authz = try response.decode(ACMEAuthorization.self)
        return try authorizationRead(order, index: index, authz)

      case .triggeringChallenge(let order, let index):
        // The challenge object; its status moves on the authorization, polled next.
        state = .waitingAuthorization(order, index: index, polls: 0)
        return .wait(seconds: nextWait(polls: 0))

      case .pollingAuthorization(let order, let index, let polls):
        let authz = try response.decode(ACMEAuthorization.self)
        switch authz.status {
        case .valid: return nextAuthorization(order, after: index)
        case .pending:
          // Still validating (its challenge `processing`), or the CA has not started.
          if let failed = authz.challenges.first(where: { $0.status == .invalid }) { throw invalid(failed) }
          guard polls + 1 < configuration.maxPolls else { throw ACMEError.timedOut("authorization for \(configuration.domain) still pending") }
          state = .waitingAuthorization(order, index: index, polls: polls + 1)
          return .wait(seconds: nextWait(polls: polls + 1))
        case .invalid, .deactivated, .expired, .revoked:
          let failed = authz.challenges.first(where: { $0.status == .invalid })
          throw failed.map(invalid) ?? ACMEError.validationFailed("authorization for \(configuration.domain) is \(authz.status.rawValue)")
        }

      case .pollingOrder(let order, let finalized, let polls):
        return try orderRead(order, try response.decode(ACMEOrder.self), finalized: finalized, polls: polls)

      case .finalizing(let order):
        return try orderRead(order, try response.decode(ACMEOrder.self), finalized: true, polls: 0)

      case .downloading:
        let pem = String(decoding: response.body, as: UTF8.self)
        guard pem.contains("-----BEGIN CERTIFICATE-----") else { throw ACMEError.malformedResponse("the certificate download is not a PEM chain") }
        state = .finished
        return .finished(certificateChainPEM: pem)

      case .idle, .provisioning, .waitingAuthorization, .waitingOrder, .finished:
        throw ACMEError.malformedResponse("a response in \(state)")
      }
    } catch let e as ACMEError {
      return fail(e)
    } catch {
      return fail(.malformedResponse("\(error)"))
    }
  }

  // MARK: transitions

  private mutating func orderRead(_ order: Order, _ body: ACMEOrder, finalized: Bool, polls: Int) throws -> Action {
    switch body.status {
    case .pending where state == .creatingOrder && !order.authorizations.isEmpty:
      // A new order: its authorizations first.
      state = .readingAuthorization(order, index: 0)
      return .send(postAsGet(order.authorizations[0]))
    case .ready where !finalized:
      state = .finalizing(order)
      let payload = #"{"csr":"\#(Base64URL.encode(configuration.csrDER))"}"#
      return .send(Request(url: order.finalize, payload: Data(payload.utf8), acceptsPEMChain: false))
    case .processing, .ready, .pending:
      return try pollOrder(order, finalized: finalized, polls: polls)
    case .valid:
      guard let certificate = body.certificate else { throw ACMEError.malformedResponse("a valid order without a certificate URL") }
      state = .downloading(order)
      return .send(Request(url: certificate, payload: nil, acceptsPEMChain: true))
    case .invalid:
      throw ACMEError.validationFailed(body.error?.description ?? "the order for \(configuration.domain) is invalid")
    }
  }

  private mutating func pollOrder(_ order: Order, finalized: Bool, polls: Int) throws -> Action {
    guard polls + 1 < configuration.maxPolls else {
      throw ACMEError.timedOut("the order for \(configuration.domain) never became \(finalized ? "valid" : "ready")")
    }
    state = .waitingOrder(order, finalized: finalized, polls: polls + 1)
    return .wait(seconds: nextWait(polls: polls + 1))
  }

  private mutating func authorizationRead(_ order: Order, index: Int, _ authz: ACMEAuthorization) throws -> Action {
    switch authz.status {
    case .valid:
      // Already proven (a recent order for the same name under this account).
      return nextAuthorization(order, after: index)
    case .pending:
      let offered = configuration.challengeTypes.lazy.compactMap { type in
        authz.challenges.first(where: { $0.type == type.rawValue && $0.token != nil }).map { (type, $0) }
      }.first
      guard let (type, challenge) = offered, let token = challenge.token else {
        throw ACMEError.validationFailed(
          "the CA offers none of \(configuration.challengeTypes.map(\.rawValue)) for \(authz.identifier.value)")
      }
      switch challenge.status {
      case .invalid: throw invalid(challenge)
      case .valid: return nextAuthorization(order, after: index)
      case .pending, .processing:
        // Processing: a trigger already sent (by an earlier attempt); it still needs answering.
        state = .provisioning(order, index: index, challengeURL: challenge.url)
        return .provision(ACMEPendingChallenge(
          type: type, domain: authz.identifier.value, token: token,
          keyAuthorization: token + "." + configuration.accountThumbprint))
      }
    case .invalid, .deactivated, .expired, .revoked:
      throw ACMEError.validationFailed("authorization for \(authz.identifier.value) is \(authz.status.rawValue)")
    }
  }

  private mutating func nextAuthorization(_ order: Order, after index: Int) -> Action {
    if index + 1 < order.authorizations.count {
      state = .readingAuthorization(order, index: index + 1)
      return .send(postAsGet(order.authorizations[index + 1]))
    }
    // Every authorization valid: read the order until the CA calls it ready.
    state = .pollingOrder(order, finalized: false, polls: 0)
    return .send(postAsGet(order.url))
  }

  private func invalid(_ challenge: ACMEChallenge) -> ACMEError {
    .validationFailed("\(challenge.type) for \(configuration.domain): \(challenge.error?.description ?? "invalid")")
  }

  private func postAsGet(_ url: String) -> Request { Request(url: url, payload: nil, acceptsPEMChain: false) }

  /// Retry-After when the CA sent one (bounded), else doubling from ``Configuration/pollInterval``.
  private func nextWait(polls: Int) -> Double {
    if let retryAfter { return min(max(retryAfter, 0.1), 60) }
    return min(configuration.pollInterval * Double(1 << min(polls, 10)), configuration.maxPollInterval)
  }

  private mutating func fail(_ error: ACMEError) -> Action {
    state = .finished
    return .failed(error)
  }
}

