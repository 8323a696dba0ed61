import Foundation
import Testing

/// HTTP/2 responses that never arrived, or arrived without their body (issue 15 items 4 and 5).
@Suite("HTTP/2 responses reach the client whole (real gateway, curl, h2load, Python h2)")
struct HTTP2ResponseTests {
  /// Every order in which an upstream can end a response by closing (clients/raw_upstream.py).
  static let closings: [(path: String, complete: Bool)] = [
    ("/close/cl", true),  // Connection: close + Content-Length, closed right after the body
    ("/close/cl-late", true),  // the same, closed 200 ms after the body
    ("/close/eof", true),  // Connection: close, the body ends at EOF
    ("/close/eof-bare", true),  // no Connection header, no length: ends at EOF
    ("/close/chunked", true),  // Connection: close + chunked, closed after the last chunk
    ("/close/split", true),  // head, 100 ms, body, close
    ("/close/before-body", false),  // closed before the promised body: the response is cut
  ]

  @Test("A response whose upstream closes the connection reaches the client at once, whatever the order (HTTP/2 and HTTP/1.1)")
  func upstreamCloseOrderings() throws {
    try withRawUpstream { gw in
      for c in Self.closings {
        for http2 in [true, false] {
          let started = Date()
          let r = try gw.curl("acme.platform.localhost", c.path, http2: http2, extra: ["--max-time", "5"])
          let seconds = Date().timeIntervalSince(started)
          let name = "\(c.path) h2=\(http2)"
          // A response that hung was released only when the client sent another frame: curl then
          // hit its 5 s limit (exit 28).
          #expect(seconds < 1.5, "\(name) took \(seconds) s: \(r.diagnostic)")
          #expect(r.curlExit != 28, "\(name): timed out")
          if c.complete {
            #expect(r.status == 200 && r.curlExit == 0, "\(name): \(r.diagnostic)")
            #expect(r.body == "ok", "\(name): \(r.body)")
          } else {
            // Cut: a started response cannot change status, so the stream is reset (HTTP/2) or
            // the connection closed (HTTP/1.1); either way curl says so.
            #expect(r.curlExit != 0, "\(name): \(r.diagnostic)")
          }
        }
      }
    }
  }

  @Test("300 such responses, 100 streams at a time on one HTTP/2 connection: none holds its stream's slot")
  func closingResponsesDoNotWedge() throws {
    try withRawUpstream { gw in
      let url = "https://127.0.0.1:\(gw.port)/close/cl"
      let out = try Shell.run("timeout", ["-k", "2", "30", "h2load", "-n", "300", "-c", "1", "-m", "100", "-H", ":authority: acme.platform.localhost", url])
      let s = OperationsTests.h2loadSummary(out.stdout)
      #expect(s.succeeded == 300 && s.non2xx == 0, "\(out.stdout)")
    }
  }

  /// Refusals of requests that carry a body (`curl -d`): the client is still sending when the
  /// answer goes out, so the gateway resets the stream with NO_ERROR after it.
  static let refusals: [(name: String, host: String, path: String, headers: [String], status: Int, code: String)] = [
    ("no key", "acme.platform.localhost", "/v1/admin/x", [], 401, "missing_credentials"),
    ("another shop's key", "acme.platform.localhost", "/v1/admin/x", ["Authorization: Bearer \(Demo.bibiSecret)"], 403, "tenant_mismatch"),
    ("secret key with an Origin", Demo.apiHost, "/v1/admin/x", ["Authorization: Bearer \(Demo.acmeSecret)", "Origin: https://acme.com"],
     403, "secret_key_in_browser"),
    ("unknown key", Demo.apiHost, "/v1/admin/x", ["Authorization: Bearer sk_live_nobody_000000000000000000"], 401, "invalid_api_key"),
    ("body over max_body_bytes", Demo.apiHost, "/v1/admin/x", ["Authorization: Bearer \(Demo.acmeSecret)"], 413, "payload_too_large"),
  ]

  @Test("HTTP/2 refusals of a request with a body arrive whole: JSON body with its requestId, then RST_STREAM(NO_ERROR)")
  func refusalsKeepTheirBody() throws {
    try withGateway(limits: ["max_body_bytes": "1000"]) { gw in
      let body = gw.directory.appendingPathComponent("body.bin")
      try Data(repeating: UInt8(ascii: "b"), count: 200_000).write(to: body)
      for r in Self.refusals {
        let data = r.status == 413 ? ["--data-binary", "@\(body.path)"] : ["-d", "abcd"]
        let result = try gw.curl(r.host, r.path, headers: r.headers, method: "POST", http2: true, extra: data)
        // curl exits 18 ("partial file") when the declared body never came.
        #expect(result.curlExit == 0, "\(r.name): \(result.diagnostic)")
        #expect(result.status == r.status, "\(r.name): \(result.diagnostic)")
        #expect(result.errorCode == r.code, "\(r.name): \(result.body)")
        #expect(result.headers["content-length"] == String(result.body.utf8.count), "\(r.name): \(result.headers)")
        let requestID = ((result.json?["error"] as? [String: Any])?["requestId"] as? String)
        #expect(requestID != nil && requestID == result.headers["x-request-id"], "\(r.name): \(result.body)")
      }
      // A backend's answer to an extended CONNECT that is not a 101: its body arrives, then the
      // stream is reset (the client's side of a CONNECT stream is still open).
      let ws = try gw.python("h2_websocket.py", [String(gw.port), "acme.platform.localhost", "/v1/admin/x", "x"])
      let doc = (try? JSONSerialization.jsonObject(with: Data(ws.stdout.utf8))) as? [String: Any]
      #expect(doc?["status"] as? Int == 401, "\(ws.stdout) \(ws.stderr)")
      #expect((doc?["body"] as? String)?.contains("missing_credentials") == true, "\(ws.stdout)")
      #expect(doc?["reset"] as? Int == 0, "\(ws.stdout)")  // NO_ERROR
      let declined = try gw.python("h2_websocket.py", [String(gw.port), "acme.platform.localhost", "/", "x"])
      let d = (try? JSONSerialization.jsonObject(with: Data(declined.stdout.utf8))) as? [String: Any]
      #expect(d?["status"] as? Int == 502, "\(declined.stdout) \(declined.stderr)")
      #expect((d?["body"] as? String)?.contains("upstream_error") == true, "\(declined.stdout)")
    }
  }
}
