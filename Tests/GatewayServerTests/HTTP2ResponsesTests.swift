import GatewayCore
import NIOHPACK
import NIOHTTP1
import Testing

@testable import GatewayServer

/// ``HTTP2Responses``: the HPACK header lists the HTTP/2 handler frames.
@Suite("HTTP/2 response headers")
struct HTTP2ResponsesTests {
  @Test("A refusal: :status first, JSON type and length, the request id, no-store; vary for origin codes, retry-after for 429")
  func refusal() {
    let h = HTTP2Responses.refusal(.rateLimited, requestID: "rid", bodyBytes: 123, retryAfter: 2)
    #expect(h.first?.name == ":status" && h.first?.value == "429")
    #expect(h.first(name: "content-type") == "application/json" && h.first(name: "content-length") == "123")
    #expect(h.first(name: "x-request-id") == "rid" && h.first(name: "cache-control") == "no-store")
    #expect(h.first(name: "retry-after") == "2" && h.first(name: "vary") == nil)
    let origin = HTTP2Responses.refusal(.originNotAllowed, requestID: "rid", bodyBytes: 1, retryAfter: nil)
    #expect(origin.first(name: "vary") == "Origin" && origin.first(name: "retry-after") == nil)
  }

  @Test("A forwarded head: names lowercased, hop-by-hop gone, the gateway's request id never indexed, a dropped name left out")
  func forwarded() {
    let upstream = HTTPHeaders([
      ("Content-Type", "text/plain"), ("Connection", "X-Hop"), ("X-Hop", "1"), ("X-Request-Id", "upstream's"),
      ("Sec-WebSocket-Accept", "abc"),
    ])
    let h = HTTP2Responses.forwarded(
      status: "200", from: upstream, requestID: "rid", allowOrigin: "https://a.example", varyOrigin: true,
      dropping: "sec-websocket-accept")
    let names = h.map(\.name)
    #expect(names.first == ":status")
    #expect(names.allSatisfy { $0 == $0.lowercased() }, "\(names)")
    #expect(!names.contains("x-hop") && !names.contains("connection") && !names.contains("sec-websocket-accept"), "\(names)")
    #expect(h["x-request-id"] == ["rid"])
    #expect(h.first(name: "access-control-allow-origin") == "https://a.example")
    let rid = h.first { $0.name == "x-request-id" }
    #expect(rid?.indexable == .nonIndexable, "unique per response: indexing it would only evict entries that repeat")
  }

  @Test("lowercasedName keeps an already-lowercase name and lowers ASCII letters only")
  func lowercase() {
    #expect(HTTP2Responses.lowercasedName("content-type") == "content-type")
    #expect(HTTP2Responses.lowercasedName("X-Shop-Ünit") == "x-shop-Ünit")
  }
}
