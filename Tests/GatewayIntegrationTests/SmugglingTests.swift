import Foundation
import Testing

/// §9.4: a request that cannot be framed exactly is refused before anything is forwarded, and the
/// connection is closed. Each shape is sent raw over TLS, followed by a pipelined request that must
/// never be answered or forwarded.
@Suite("Request smuggling shapes (§9.4), raw TLS sockets")
struct SmugglingTests {
  struct Shape: CustomTestStringConvertible, Sendable {
    var name: String
    /// The request, with `{H}` for the Host header line and `{P}` for the marker path.
    var request: String
    var status = 400
    var code = "invalid_request"
    var testDescription: String { name }
  }

  static let shapes: [Shape] = [
    Shape(name: "CL.TE", request: "POST {P} HTTP/1.1\r\n{H}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG"),
    Shape(name: "TE.CL", request: "POST {P} HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n"),
    Shape(name: "duplicate Content-Length, different", request: "POST {P} HTTP/1.1\r\n{H}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
    Shape(name: "duplicate Content-Length, same", request: "POST {P} HTTP/1.1\r\n{H}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello"),
    Shape(name: "signed Content-Length", request: "POST {P} HTTP/1.1\r\n{H}Content-Length: +5\r\n\r\nhello"),
    Shape(name: "Content-Length list", request: "POST {P} HTTP/1.1\r\n{H}Content-Length: 5, 5\r\n\r\nhello"),
    Shape(name: "Transfer-Encoding: xchunked", request: "POST {P} HTTP/1.1\r\n{H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"),
    Shape(name: "Transfer-Encoding: chunked, identity", request: "POST {P} HTTP/1.1\r\n{H}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"),
    Shape(name: "Transfer-Encoding twice", request: "POST {P} HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    Shape(name: "Transfer-Encoding line starting with a space", request: "POST {P} HTTP/1.1\r\n{H}X-A: b\r\n Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello"),
    Shape(name: "huge Content-Length", request: "POST {P} HTTP/1.1\r\n{H}Content-Length: 99999999999999999999999\r\n\r\nhello"),
    Shape(name: "space before the colon", request: "POST {P} HTTP/1.1\r\n{H}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n"),
    Shape(name: "Transfer-Encoding on HTTP/1.0", request: "POST {P} HTTP/1.0\r\n{H}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    Shape(name: "obs-fold", request: "GET {P} HTTP/1.1\r\n{H}X-Folded: a\r\n b\r\n\r\n"),
    Shape(name: "bare LF line endings", request: "GET {P} HTTP/1.1\n{H}X-A: b\n\n"),
    Shape(name: "bare CR in a header value", request: "GET {P} HTTP/1.1\r\n{H}X-A: a\rb\r\n\r\n"),
    Shape(name: "NUL in a header value", request: "GET {P} HTTP/1.1\r\n{H}X-A: a\u{0}b\r\n\r\n"),
    Shape(name: "control byte in a header name", request: "GET {P} HTTP/1.1\r\n{H}X-\u{1}A: b\r\n\r\n"),
    Shape(name: "underscore in a header name", request: "GET {P} HTTP/1.1\r\n{H}X_Tenant: forged\r\n\r\n"),
    Shape(name: "invalid chunk size", request: "POST {P} HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"),
    Shape(name: "oversized chunk size", request: "POST {P} HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
    Shape(name: "bare LF after a chunk extension", request: "POST {P} HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\n5;ext\nhello\r\n0\r\n\r\n"),
    Shape(name: "control byte in a chunk extension", request: "POST {P} HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\n5;e\u{1}xt\r\nhello\r\n0\r\n\r\n"),
    Shape(name: "missing Host", request: "GET {P} HTTP/1.1\r\nX-A: b\r\n\r\n", code: "invalid_host"),
    Shape(name: "two Host headers", request: "GET {P} HTTP/1.1\r\n{H}Host: bibi-saree.platform.localhost\r\n\r\n", code: "invalid_host"),
    Shape(name: "absolute-form naming another host", request: "GET https://bibi-saree.platform.localhost{P} HTTP/1.1\r\n{H}\r\n", code: "invalid_host"),
    Shape(name: "asterisk-form on GET", request: "GET * HTTP/1.1\r\n{H}\r\n"),
    // The listener is TLS: an http:// target names a resource this request cannot be for.
    Shape(name: "absolute-form with http:// on the TLS listener", request: "GET http://acme.platform.localhost{P} HTTP/1.1\r\n{H}\r\n"),
    Shape(name: "fragment in the target", request: "GET {P}#x HTTP/1.1\r\n{H}\r\n"),
    Shape(name: "path parameter", request: "GET {P};x HTTP/1.1\r\n{H}\r\n"),
    // NIO's response encoder sends no body in any response to CONNECT, so only the status shows.
    Shape(name: "CONNECT", request: "CONNECT acme.platform.localhost:443 HTTP/1.1\r\n{H}\r\n", code: ""),
  ]

  @Test("Invariant §9.4: every smuggling shape is refused and its connection closed, nothing forwarded", arguments: shapes)
  func refused(_ shape: Shape) throws {
    try withGateway { gw in
      let marker = "/smuggle-\(abs(shape.name.hashValue))"
      let request = shape.request
        .replacingOccurrences(of: "{H}", with: "Host: acme.platform.localhost\r\n")
        .replacingOccurrences(of: "{P}", with: marker)
      // A well-formed request pipelined behind it must not be answered or forwarded either.
      let follow = "GET /after\(marker) HTTP/1.1\r\nHost: acme.platform.localhost\r\n\r\n"
      let r = try gw.raw(request + follow)
      #expect(r["status"] as? Int == shape.status, "\(r["raw"] ?? "")")
      if !shape.code.isEmpty {
        #expect((r["body"] as? String)?.contains("\"code\":\"\(shape.code)\"") == true, "\(r["raw"] ?? "")")
      }
      #expect(r["closed"] as? Bool == true, "connection left open")
      #expect(r["responses"] as? Int == 1, "the pipelined request was answered")
      let forwarded = gw.upstreamRequests().compactMap { $0["uri"] as? String }
      #expect(!forwarded.contains { $0.contains(marker) }, "forwarded: \(forwarded)")
    }
  }

  @Test("Well-formed chunk extensions (plain, quoted, 60 KB long) are dropped and the body arrives intact")
  func chunkExtensions() throws {
    try withGateway { gw in
      let head = "POST /__upload HTTP/1.1\r\nHost: acme.platform.localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
      for ext in [";ext=1", ";a=\"b;c\"", ";" + String(repeating: "x", count: 60_000)] {
        let r = try gw.raw(head + "5\(ext)\r\nhello\r\n0\r\n\r\n")
        #expect(r["status"] as? Int == 200, "\(r["raw"] ?? "")")
        // sha256("hello"): the upstream got exactly the five body bytes.
        #expect((r["body"] as? String)?.contains("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824") == true)
      }
    }
  }

  @Test("A well-formed pipelined pair is answered in order (control for the test above)")
  func pipelinedControl() throws {
    try withGateway { gw in
      let a = "GET /first HTTP/1.1\r\nHost: acme.platform.localhost\r\n\r\n"
      let b = "GET /second HTTP/1.1\r\nHost: acme.platform.localhost\r\nConnection: close\r\n\r\n"
      let r = try gw.raw(a + b)
      #expect(r["statuses"] as? [Int] == [200, 200], "\(r["raw"] ?? "")")
      #expect(gw.upstreamRequests().compactMap { $0["uri"] as? String } == ["/first", "/second"])
    }
  }

  @Test("Five pipelined requests, one with a body, are answered in order on one connection")
  func pipelinedMany() throws {
    try withGateway { gw in
      var raw = ""
      for i in 0..<5 {
        if i == 2 {
          raw += "POST /p\(i) HTTP/1.1\r\nHost: acme.platform.localhost\r\nContent-Length: 5\r\n\r\nhello"
        } else {
          raw += "GET /p\(i) HTTP/1.1\r\nHost: acme.platform.localhost\r\n\r\n"
        }
      }
      raw += "GET /last HTTP/1.1\r\nHost: acme.platform.localhost\r\nConnection: close\r\n\r\n"
      let r = try gw.raw(raw)
      #expect(r["statuses"] as? [Int] == [200, 200, 200, 200, 200, 200], "\(r["raw"] ?? "")")
      #expect(gw.upstreamRequests().compactMap { $0["uri"] as? String } == ["/p0", "/p1", "/p2", "/p3", "/p4", "/last"])
    }
  }

  @Test("A head that never completes gets 408 request_timeout and the connection closes")
  func slowHeaders() throws {
    try withGateway(limits: ["client_header_timeout_s": "1"]) { gw in
      let r = try gw.raw("GET / HTTP/1.1\r\nHost: acme.platform.localhost\r\nX-Slow: ", timeout: 4)
      #expect(r["status"] as? Int == 408, "\(r["raw"] ?? "")")
      #expect((r["body"] as? String)?.contains("request_timeout") == true)
      #expect(r["closed"] as? Bool == true)
    }
  }
}
