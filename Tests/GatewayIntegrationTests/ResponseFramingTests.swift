import Foundation
import Testing

/// The HTTP/1.1 client leg writes responses as bytes (HTTP1ResponseWriter); these pin its framing
/// on the wire with a raw TLS client, each followed by a pipelined request whose answer proves the
/// first response ended exactly where it should.
@Suite("HTTP/1.1 response framing on the client leg (real gateway, raw sockets)")
struct ResponseFramingTests {
  static let host = "Host: acme.platform.localhost\r\n"
  static let closing = "GET /second HTTP/1.1\r\n\(host)Connection: close\r\n\r\n"

  /// The first response of `raw`: head and everything up to the next status line.
  static func firstResponse(_ raw: String) -> (head: String, rest: String) {
    guard let end = raw.range(of: "\r\n\r\n") else { return (raw, "") }
    return (String(raw[..<end.lowerBound]), String(raw[end.upperBound...]))
  }

  /// Decodes a chunked body at the start of `text`; nil if malformed. Returns the body and what
  /// follows. Works on bytes: in Swift "\r\n" is one Character.
  static func dechunk(_ text: String) -> (body: String, after: String)? {
    let bytes = Array(text.utf8)
    var i = 0
    var body: [UInt8] = []
    func crlf(at j: Int) -> Bool { j + 1 < bytes.count && bytes[j] == 13 && bytes[j + 1] == 10 }
    while true {
      var j = i
      while j < bytes.count && !crlf(at: j) { j += 1 }
      guard j < bytes.count, let size = Int(String(decoding: bytes[i..<j], as: UTF8.self), radix: 16) else { return nil }
      i = j + 2
      if size == 0 {
        guard crlf(at: i) else { return nil }
        return (String(decoding: body, as: UTF8.self), String(decoding: bytes[(i + 2)...], as: UTF8.self))
      }
      guard i + size + 2 <= bytes.count, crlf(at: i + size) else { return nil }
      body += bytes[i..<(i + size)]
      i += size + 2
    }
  }

  @Test("A response head goes out when the upstream sends it, not when its body follows (HTTP/1.1 and HTTP/2)")
  func headDoesNotWaitForBody() throws {
    try withGateway { gw in
      for http2 in [false, true] {
        let r = try gw.curl(
          "acme.platform.localhost", "/__latebody", http2: http2,
          extra: ["-w", "\n%{time_starttransfer} %{time_total}"])
        #expect(r.status == 200, "\(r)")
        let lines = r.body.split(separator: "\n")
        #expect(lines.first == "late body", "\(r.body)")
        let times = (lines.last ?? "").split(separator: " ").compactMap { Double($0) }
        try #require(times.count == 2, "\(r.body)")
        // The upstream holds the body back 1.5 s: the head must have arrived well before that.
        #expect(times[0] < 1.0 && times[1] >= 1.4, "first byte after \(times[0]) s, done after \(times[1]) s (h2: \(http2))")
      }
    }
  }

  @Test("An upstream body without Content-Length is re-chunked for an HTTP/1.1 client, and the connection goes on")
  func chunkedForHTTP11() throws {
    try withGateway { gw in
      let r = try gw.raw("GET /__chunked HTTP/1.1\r\n\(Self.host)\r\n" + Self.closing)
      #expect(r["statuses"] as? [Int] == [200, 200], "\(r["raw"] ?? "")")
      let (head, rest) = Self.firstResponse(r["raw"] as? String ?? "")
      #expect(head.lowercased().contains("transfer-encoding: chunked"), "\(head)")
      #expect(!head.lowercased().contains("content-length"), "\(head)")
      let decoded = try #require(Self.dechunk(rest), "\(rest)")
      #expect(decoded.body == "hello world")
      #expect(decoded.after.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(decoded.after)")
    }
  }

  @Test("HTTP/1.0 client: the same body is close-delimited, with Connection: close, never chunked")
  func closeDelimitedForHTTP10() throws {
    try withGateway { gw in
      let r = try gw.raw("GET /__chunked HTTP/1.0\r\n\(Self.host)Connection: keep-alive\r\n\r\n")
      let (head, rest) = Self.firstResponse(r["raw"] as? String ?? "")
      #expect(head.hasPrefix("HTTP/1.0 200 OK"), "\(head)")
      #expect(head.lowercased().contains("connection: close"), "\(head)")
      #expect(!head.lowercased().contains("transfer-encoding"), "\(head)")
      #expect(rest == "hello world")
      #expect(r["closed"] as? Bool == true)
    }
  }

  @Test("HEAD: the head keeps Content-Length, no body byte follows, and the next response starts right after")
  func headHasNoBody() throws {
    try withGateway { gw in
      let r = try gw.raw("HEAD /x HTTP/1.1\r\n\(Self.host)\r\n" + Self.closing)
      #expect(r["statuses"] as? [Int] == [200, 200], "\(r["raw"] ?? "")")
      let (head, rest) = Self.firstResponse(r["raw"] as? String ?? "")
      #expect(head.lowercased().contains("content-length:"), "\(head)")
      #expect(rest.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(rest)")
      // A refusal to a HEAD has no body either.
      let refused = try gw.raw("HEAD /v1/admin/x HTTP/1.1\r\nHost: api.platform.localhost\r\n\r\n" + Self.closing.replacingOccurrences(of: "acme.platform.localhost", with: "api.platform.localhost"))
      let (refusedHead, refusedRest) = Self.firstResponse(refused["raw"] as? String ?? "")
      #expect(refusedHead.hasPrefix("HTTP/1.1 401"), "\(refusedHead)")
      // The next answer (a 404: no route for /second on the API host) starts right after the head.
      #expect(refusedRest.hasPrefix("HTTP/1.1 404"), "\(refusedRest)")
    }
  }

  @Test("204 from the upstream goes out with neither Content-Length nor Transfer-Encoding")
  func noContent() throws {
    try withGateway { gw in
      let r = try gw.raw("GET /__status/204 HTTP/1.1\r\n\(Self.host)Connection: close\r\n\r\n")
      let (head, rest) = Self.firstResponse(r["raw"] as? String ?? "")
      #expect(head.hasPrefix("HTTP/1.1 204 No Content"), "\(head)")
      #expect(!head.lowercased().contains("content-length") && !head.lowercased().contains("transfer-encoding"), "\(head)")
      #expect(rest.isEmpty, "\(rest)")
    }
  }
}
