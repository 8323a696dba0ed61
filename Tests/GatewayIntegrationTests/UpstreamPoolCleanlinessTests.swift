import Foundation
import Testing

/// An upstream connection goes back to its pool only in a state that is provably clean (§9.3): a
/// request that draws it must get its own answer, never bytes meant for, or left over from, another.
@Suite("Upstream pool hygiene (§9.3): real gateway, raw-bytes upstream")
struct UpstreamPoolCleanlinessTests {
  @Test("Invariant §9.3: a response the upstream sends unasked behind another never becomes a waiting request's answer")
  func unaskedResponseIsNotHandedOn() throws {
    let h = try GatewayHarness()
    defer { h.stop() }
    // One connection per event loop: the streams below queue for it, so the first one's
    // connection is handed on the moment its response ends.
    h.upstreamsYAML = """
      upstreams:
        default: {endpoints: ["http://127.0.0.1:\(h.upstreamPort)"], max_connections_per_endpoint: 1}
      """
    try h.startWithRawUpstream()
    // All on one HTTP/2 connection (one event loop): /extra/response first, the others waiting.
    let paths = ["/extra/response", "/after/1", "/after/2", "/after/3"]
    let r = try h.python("h2_paths.py", [String(h.port), "acme.platform.localhost"] + paths)
    let doc = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any]
    let answers = doc?["answers"] as? [[String: Any]] ?? []
    #expect(answers.count == paths.count, "\(r.stdout) \(r.stderr)")
    for a in answers {
      let path = a["path"] as? String ?? ""
      let body = a["body"] as? String ?? ""
      #expect(a["status"] as? Int == 200, "\(path): \(a)")
      #expect(!body.contains("bogus"), "\(path) got the answer meant for no one: \(body)")
      if path != "/extra/response" {
        #expect(body.contains("GET \(path) HTTP/1.1"), "\(path) got another request's answer: \(body)")
      }
    }
  }
}
