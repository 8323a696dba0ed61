import Foundation
import Testing

@testable import GatewayACME

/// Responses shaped as pebble 2.4 sends them.
enum CA {
  static let order = "https://ca/my-order/1"
  static let authz = "https://ca/authZ/1"
  static let finalize = "https://ca/finalize-order/1"
  static let cert = "https://ca/certZ/1"
  static let alpnChallenge = "https://ca/chalZ/alpn"
  static let httpChallenge = "https://ca/chalZ/http"

  static func json(_ status: Int, _ body: String, location: String? = nil, retryAfter: Double? = nil) -> ACMEResponse {
    ACMEResponse(status: status, location: location, retryAfter: retryAfter, body: Array(body.utf8))
  }
  static func orderBody(_ status: String, authorizations: [String] = [authz], certificate: Bool = false) -> String {
    let list = authorizations.map { "\"\($0)\"" }.joined(separator: ",")
    return #"{"status":"\#(status)","identifiers":[{"type":"dns","value":"shop.example"}],"authorizations":[\#(list)],"finalize":"\#(finalize)""#
      + (certificate ? #","certificate":"\#(cert)"}"# : "}")
  }
  static func authzBody(_ status: String, alpn: String = "pending", http: String = "pending", error: String? = nil) -> String {
    let err = error.map { #","error":{"type":"urn:ietf:params:acme:error:unauthorized","detail":"\#($0)","status":403}"# } ?? ""
    return #"{"status":"\#(status)","identifier":{"type":"dns","value":"shop.example"},"challenges":["#
      + #"{"type":"http-01","url":"\#(httpChallenge)","token":"tok-http","status":"\#(http)"},"#
      + #"{"type":"tls-alpn-01","url":"\#(alpnChallenge)","token":"tok-alpn","status":"\#(alpn)"\#(err)}]}"#
  }
  static let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
}

@Suite("The ACME order state machine (RFC 8555 §7.4): every transition without a network")
struct OrderStateMachineTests {
  func machine(_ types: [ACMEChallengeType] = [.tlsALPN01, .http01], maxPolls: Int = 60) -> ACMEOrderStateMachine {
    var c = ACMEOrderStateMachine.Configuration(domain: "shop.example", challengeTypes: types, accountThumbprint: "THUMB", csrDER: [1, 2, 3])
    c.maxPolls = maxPolls
    return ACMEOrderStateMachine(c)
  }

  func sent(_ a: ACMEOrderStateMachine.Action) -> ACMEOrderStateMachine.Request? {
    if case .send(let r) = a { return r }
    return nil
  }

  @Test("The whole way: new order, authorization, tls-alpn-01, poll, ready, finalize with the CSR, poll, download")
  func happyPath() throws {
    var m = machine()
    let newOrder = try #require(sent(m.start(newOrderURL: "https://ca/order-plz")))
    #expect(newOrder.url == "https://ca/order-plz")
    #expect(String(decoding: try #require(newOrder.payload), as: UTF8.self) == #"{"identifiers":[{"type":"dns","value":"shop.example"}]}"#)

    let readAuthz = try #require(sent(m.received(CA.json(201, CA.orderBody("pending"), location: CA.order))))
    #expect(readAuthz == .init(url: CA.authz, payload: nil, acceptsPEMChain: false))

    let provision = m.received(CA.json(200, CA.authzBody("pending")))
    #expect(provision == .provision(.init(type: .tlsALPN01, domain: "shop.example", token: "tok-alpn", keyAuthorization: "tok-alpn.THUMB")))

    let trigger = try #require(sent(m.challengeProvisioned()))
    #expect(trigger.url == CA.alpnChallenge)
    #expect(trigger.payload == Data("{}".utf8))

    #expect(m.received(CA.json(200, #"{"type":"tls-alpn-01","url":"x","token":"tok-alpn","status":"processing"}"#)) == .wait(seconds: 0.5))
    #expect(try #require(sent(m.waited())).url == CA.authz)
    // Still validating: wait longer (doubling), then valid.
    #expect(m.received(CA.json(200, CA.authzBody("pending", alpn: "processing"))) == .wait(seconds: 1))
    #expect(try #require(sent(m.waited())).url == CA.authz)
    let readOrder = try #require(sent(m.received(CA.json(200, CA.authzBody("valid", alpn: "valid")))))
    #expect(readOrder.url == CA.order)

    let finalize = try #require(sent(m.received(CA.json(200, CA.orderBody("ready")))))
    #expect(finalize.url == CA.finalize)
    #expect(String(decoding: try #require(finalize.payload), as: UTF8.self) == #"{"csr":"AQID"}"#)

    // Processing with a Retry-After: the CA's wait.
    #expect(m.received(CA.json(200, CA.orderBody("processing"), retryAfter: 3)) == .wait(seconds: 3))
    #expect(try #require(sent(m.waited())).url == CA.order)
    let download = try #require(sent(m.received(CA.json(200, CA.orderBody("valid", certificate: true)))))
    #expect(download == .init(url: CA.cert, payload: nil, acceptsPEMChain: true))
    #expect(m.received(CA.json(200, CA.pem)) == .finished(certificateChainPEM: CA.pem))
    #expect(m.isFinished)
  }

  @Test("The configured preference picks the challenge: http-01 first when listed first, only the listed ones")
  func challengePreference() throws {
    var m = machine([.http01, .tlsALPN01])
    _ = m.start(newOrderURL: "u")
    _ = m.received(CA.json(201, CA.orderBody("pending"), location: CA.order))
    #expect(m.received(CA.json(200, CA.authzBody("pending"))) == .provision(.init(type: .http01, domain: "shop.example", token: "tok-http", keyAuthorization: "tok-http.THUMB")))

    var only = machine([.tlsALPN01])
    _ = only.start(newOrderURL: "u")
    _ = only.received(CA.json(201, CA.orderBody("pending"), location: CA.order))
    let noALPN = #"{"status":"pending","identifier":{"type":"dns","value":"shop.example"},"challenges":[{"type":"http-01","url":"h","token":"t","status":"pending"},{"type":"dns-01","url":"d","token":"t2","status":"pending"}]}"#
    guard case .failed(.validationFailed(let why)) = only.received(CA.json(200, noALPN)) else { Issue.record("expected a failure"); return }
    #expect(why.contains("offers none of"))
  }

  @Test("An authorization already valid (a recent order for the name) goes straight to the order; a ready order finalizes at once")
  func alreadyValid() throws {
    var m = machine()
    _ = m.start(newOrderURL: "u")
    _ = m.received(CA.json(201, CA.orderBody("pending", authorizations: [CA.authz, "https://ca/authZ/2"]), location: CA.order))
    #expect(try #require(sent(m.received(CA.json(200, CA.authzBody("valid", alpn: "valid"))))).url == "https://ca/authZ/2")
    #expect(try #require(sent(m.received(CA.json(200, CA.authzBody("valid", alpn: "valid"))))).url == CA.order)

    var reused = machine()
    _ = reused.start(newOrderURL: "u")
    #expect(try #require(sent(reused.received(CA.json(201, CA.orderBody("ready"), location: CA.order)))).url == CA.finalize)
    var issued = machine()
    _ = issued.start(newOrderURL: "u")
    #expect(try #require(sent(issued.received(CA.json(200, CA.orderBody("valid", certificate: true), location: CA.order)))).url == CA.cert)
  }

  @Test("A failed validation ends the order with the CA's detail")
  func validationFails() {
    var m = machine()
    _ = m.start(newOrderURL: "u")
    _ = m.received(CA.json(201, CA.orderBody("pending"), location: CA.order))
    _ = m.received(CA.json(200, CA.authzBody("pending")))
    _ = m.challengeProvisioned()
    _ = m.received(CA.json(200, "{}"))
    _ = m.waited()
    let end = m.received(CA.json(200, CA.authzBody("invalid", alpn: "invalid", error: "Connection refused")))
    guard case .failed(.validationFailed(let why)) = end else { Issue.record("\(end)"); return }
    #expect(why.contains("tls-alpn-01") && why.contains("Connection refused"))
    #expect(m.isFinished)
  }

  @Test("A problem document fails the order and keeps the CA's Retry-After (rateLimited)")
  func problem() {
    var m = machine()
    _ = m.start(newOrderURL: "u")
    let end = m.received(CA.json(429, #"{"type":"urn:ietf:params:acme:error:rateLimited","detail":"too many","status":429}"#, retryAfter: 3600))
    #expect(end == .failed(.problem(.init(type: "urn:ietf:params:acme:error:rateLimited", detail: "too many", status: 429), retryAfter: 3600)))
    if case .failed(let e) = end {
      #expect(e.retryAfter == 3600)
      #expect(e.description == "rateLimited: too many")
    }
  }

  @Test("Polling gives up after maxPolls, never loops for ever")
  func pollingBounded() {
    var m = machine(maxPolls: 3)
    _ = m.start(newOrderURL: "u")
    _ = m.received(CA.json(201, CA.orderBody("pending"), location: CA.order))
    _ = m.received(CA.json(200, CA.authzBody("pending")))
    _ = m.challengeProvisioned()
    _ = m.received(CA.json(200, "{}"))
    var last: ACMEOrderStateMachine.Action = .wait(seconds: 0)
    for _ in 0..<5 {
      guard case .wait = last else { break }
      _ = m.waited()
      last = m.received(CA.json(200, CA.authzBody("pending", alpn: "processing")))
    }
    guard case .failed(.timedOut) = last else { Issue.record("\(last)"); return }
  }

  @Test("Malformed answers fail cleanly: no Location, not JSON, a download that is not PEM, an input in the wrong state")
  func malformed() {
    var noLocation = machine()
    _ = noLocation.start(newOrderURL: "u")
    #expect(noLocation.received(CA.json(201, CA.orderBody("pending"))) == .failed(.malformedResponse("newOrder without Location")))

    var garbage = machine()
    _ = garbage.start(newOrderURL: "u")
    guard case .failed(.malformedResponse) = garbage.received(CA.json(201, "<html>", location: CA.order)) else { Issue.record("garbage accepted"); return }

    var notPEM = machine()
    _ = notPEM.start(newOrderURL: "u")
    _ = notPEM.received(CA.json(200, CA.orderBody("valid", certificate: true), location: CA.order))
    guard case .failed(.malformedResponse) = notPEM.received(CA.json(200, "{}")) else { Issue.record("not PEM accepted"); return }

    var early = machine()
    _ = early.start(newOrderURL: "u")
    guard case .failed = early.waited() else { Issue.record("waited in creatingOrder accepted"); return }
  }

  @Test("A transport failure ends the order")
  func transport() {
    var m = machine()
    _ = m.start(newOrderURL: "u")
    #expect(m.transportFailed("connection refused") == .failed(.transport("connection refused")))
  }
}
