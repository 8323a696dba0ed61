import Foundation

/// The directory (RFC 8555 §7.1.1): the one URL configured, every other URL read from it.
public struct ACMEDirectory: Decodable, Sendable, Equatable {
  public let newNonce: String
  public let newAccount: String
  public let newOrder: String
  /// RFC 9773 (ARI); absent on CAs without it (pebble 2.4), and then renewal follows the
  /// certificate's own lifetime.
  public let renewalInfo: String?
  public let meta: Meta?

  public struct Meta: Decodable, Sendable, Equatable {
    public let termsOfService: String?
    public let externalAccountRequired: Bool?
    /// ACME profiles (draft-aaron-acme-profiles): name -> description. Absent on pebble 2.4.
    public let profiles: [String: String]?
  }

  public init(newNonce: String, newAccount: String, newOrder: String, renewalInfo: String? = nil, meta: Meta? = nil) {
    self.newNonce = newNonce
    self.newAccount = newAccount
    self.newOrder = newOrder
    self.renewalInfo = renewalInfo
    self.meta = meta
  }
}

/// An order (RFC 8555 §7.1.3), the fields the client reads.
public struct ACMEOrder: Decodable, Sendable, Equatable {
  public enum Status: String, Decodable, Sendable { case pending, ready, processing, valid, invalid }
  public let status: Status
  public let authorizations: [String]
  public let finalize: String
  public let certificate: String?
  public let error: ACMEProblem?

  public init(status: Status, authorizations: [String], finalize: String, certificate: String? = nil, error: ACMEProblem? = nil) {
    self.status = status
    self.authorizations = authorizations
    self.finalize = finalize
    self.certificate = certificate
    self.error = error
  }
}

/// An authorization (RFC 8555 §7.1.4).
public struct ACMEAuthorization: Decodable, Sendable, Equatable {
  public enum Status: String, Decodable, Sendable { case pending, valid, invalid, deactivated, expired, revoked }
  public struct Identifier: Decodable, Sendable, Equatable {
    public let type: String
    public let value: String
  }
  public let status: Status
  public let identifier: Identifier
  public let challenges: [ACMEChallenge]

  public init(status: Status, domain: String, challenges: [ACMEChallenge]) {
    self.status = status
    self.identifier = Identifier(type: "dns", value: domain)
    self.challenges = challenges
  }
}

/// A challenge (RFC 8555 §8).
public struct ACMEChallenge: Decodable, Sendable, Equatable {
  public enum Status: String, Decodable, Sendable { case pending, processing, valid, invalid }
  public let type: String
  public let url: String
  public let token: String?
  public let status: Status
  public let error: ACMEProblem?

  public init(type: String, url: String, token: String?, status: Status, error: ACMEProblem? = nil) {
    self.type = type
    self.url = url
    self.token = token
    self.status = status
    self.error = error
  }
}

/// A problem document (RFC 7807, RFC 8555 §6.7).
public struct ACMEProblem: Decodable, Sendable, Equatable, CustomStringConvertible {
  public let type: String?
  public let detail: String?
  public let status: Int?

  public init(type: String?, detail: String?, status: Int? = nil) {
    self.type = type
    self.detail = detail
    self.status = status
  }

  /// `badNonce`, `rateLimited`, … (the part after `urn:ietf:params:acme:error:`).
  public var code: String? {
    guard let type else { return nil }
    let prefix = "urn:ietf:params:acme:error:"
    return type.hasPrefix(prefix) ? String(type.dropFirst(prefix.count)) : type
  }

  public var description: String {
    [code, detail].compactMap { $0 }.joined(separator: ": ")
  }
}

/// What an ACME request got back, as the driver hands it to a state machine.
public struct ACMEResponse: Sendable, Equatable {
  public let status: Int
  public let location: String?
  /// `Retry-After` in seconds (``RetryAfter/parse(_:now:)``), if any.
  public let retryAfter: Double?
  public let body: [UInt8]

  public init(status: Int, location: String? = nil, retryAfter: Double? = nil, body: [UInt8]) {
    self.status = status
    self.location = location
    self.retryAfter = retryAfter
    self.body = body
  }

  /// The problem document of an error response.
  public var problem: ACMEProblem? {
    guard status >= 400 else { return nil }
    return (try? JSONDecoder().decode(ACMEProblem.self, from: Data(body)))
      ?? ACMEProblem(type: nil, detail: "HTTP \(status)", status: status)
  }

  func decode<T: Decodable>(_ type: T.Type) throws -> T {
    do { return try JSONDecoder().decode(T.self, from: Data(body)) } catch {
      throw ACMEError.malformedResponse("\(T.self): \(error)")
    }
  }
}

/// Failures of the ACME client, each a reason an operator can act on (shown as `lastError`).
public enum ACMEError: Error, Sendable, Equatable, CustomStringConvertible {
  case invalidConfiguration(String)
  /// The server said no (a problem document), with how long it asked us to wait if it did.
  case problem(ACMEProblem, retryAfter: Double?)
  case malformedResponse(String)
  /// A challenge or the order ended `invalid`; the detail is the CA's.
  case validationFailed(String)
  /// Polling gave up (the order or an authorization never left `pending`/`processing`).
  case timedOut(String)
  case transport(String)

  public var description: String {
    switch self {
    case .invalidConfiguration(let s): return "configuration: \(s)"
    case .problem(let p, _): return p.description
    case .malformedResponse(let s): return "malformed ACME response: \(s)"
    case .validationFailed(let s): return "validation failed: \(s)"
    case .timedOut(let s): return "timed out: \(s)"
    case .transport(let s): return "ACME server unreachable: \(s)"
    }
  }

  /// The wait the server asked for (`rateLimited` with Retry-After), a floor for the next attempt.
  public var retryAfter: Double? {
    if case .problem(_, let after) = self { return after }
    return nil
  }
}

/// `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date.
public enum RetryAfter {
  /// Seconds to wait from `now`; nil when the value is neither form. Never negative.
  public static func parse(_ value: String, now: Date) -> Double? {
    let v = value.trimmingCharacters(in: .whitespaces)
    if let seconds = Int(v), seconds >= 0 { return Double(seconds) }
    let f = DateFormatter()
    f.locale = Locale(identifier: "en_US_POSIX")
    f.timeZone = TimeZone(identifier: "GMT")
    f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
    guard let date = f.date(from: v) else { return nil }
    return max(0, date.timeIntervalSince(now))
  }
}
